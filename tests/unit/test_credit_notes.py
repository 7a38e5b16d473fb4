"""Credit notes (billing.core.credit_notes, billing.core.corrections): what a void and a
correction credit, the tax rule (original total − credit note total == corrected total,
to the cent) and the JSON document, every amount worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from billing.core.corrections import split_correction, void_note
from billing.core.credit_notes import (
    Credited,
    CreditNote,
    IssuedInvoice,
    credit_note_from_document,
    credit_note_number,
    remaining_total,
)
from billing.core.invoice import Invoice, InvoiceLine, LineKind
from billing.core.money import Money, multiply
from billing.core.periods import Period

D = Decimal
ISSUED = datetime(2026, 12, 1, 1, 15, tzinfo=UTC)
CREDITED_AT = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


def line(kind: LineKind, description: str, quantity: str, amount: str, **extra: str) -> InvoiceLine:
    return InvoiceLine(kind, description, D(quantity), Money(D(amount), "USD"), **extra)  # type: ignore[arg-type]


def invoice(*lines: InvoiceLine, rate: str = "0", number: str = "INV-2026-000042") -> Invoice:
    """An invoice of these lines: subtotal their sum, tax rounded once on it."""
    subtotal = sum((each.amount for each in lines), Money(D("0.00"), "USD"))
    tax = Money(multiply(subtotal.amount, D(rate)), "USD").rounded()
    return Invoice(
        invoice_number=number,
        account_id="acct-1",
        period=Period(2026, 11),
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        issued_at=ISSUED,
        currency="USD",
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        tax_rate=D(rate),
    )


def issued(source: Invoice) -> IssuedInvoice:
    """The invoice as its stored JSON reads back."""
    return IssuedInvoice.from_document(json.loads(json.dumps(source.to_json())))


def void(source: IssuedInvoice, credited: Credited | None = None, number: str = "CN-2026-000001"):  # type: ignore[no-untyped-def]
    return void_note(
        source, credited or Credited(), number=number, reason="billed twice", issued_at=CREDITED_AT
    )


# Three lines whose taxes, each rounded, come to 0.03 at 19 %; the tax of their sum is
# round(0.19 × 0.19 = 0.0361) = 0.04.
SMALL = (
    line("usage", "Exports", "6", "0.06", meter="exports"),
    line("usage", "Imports", "6", "0.06", meter="imports"),
    line("usage", "Seats", "7", "0.07", meter="seats"),
)


def test_credit_note_numbers_take_the_utc_year_of_issue() -> None:
    assert credit_note_number(1, CREDITED_AT) == "CN-2026-000001"
    new_york_new_year = datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert credit_note_number(1234567, new_york_new_year) == "CN-2027-1234567"
    with pytest.raises(ValueError, match="start at 1"):
        credit_note_number(0, CREDITED_AT)


def test_void_credits_every_line_and_the_tax_and_leaves_the_invoice_at_zero() -> None:
    # GIVEN usage 80.00, an unused charge (0 of it), a fixed fee 20.00 and a 10 % discount
    # −10.00: subtotal 90.00, tax 20 % 18.00, total 108.00
    source = issued(
        invoice(
            line("usage", "API requests", "1534000", "80.00", meter="api_requests"),
            line("usage", "Exports", "0", "0.00", meter="exports"),
            line("fixed", "Pro plan", "1", "20.00"),
            line("discount", "Discount launch (10%)", "1", "-10.00", discount="launch"),
            rate="0.20",
        )
    )
    # WHEN it is voided
    note = void(source)
    # THEN every line with something on it is credited as it was, the unused one left out
    assert [(c.invoice_line and c.invoice_line.index, str(c.amount)) for c in note.lines] == [
        (0, "80.00"),
        (2, "20.00"),
        (3, "-10.00"),
    ]
    assert (str(note.subtotal), str(note.tax), str(note.total)) == ("90.00", "18.00", "108.00")
    assert note.total == source.total
    assert str(note.invoice_total_after) == "0.00"
    assert note.correction == "void"


def test_void_takes_the_invoices_tax_not_the_sum_of_each_lines_tax() -> None:
    source = issued(invoice(*SMALL, rate="0.19"))
    assert str(source.tax) == "0.04"
    note = void(source)
    assert (str(note.subtotal), str(note.tax), str(note.total)) == ("0.19", "0.04", "0.23")


def test_partial_credit_tax_is_a_difference_of_two_roundings() -> None:
    # GIVEN 0.06 + 0.06 + 0.07 at 19 %: tax 0.04, total 0.23
    source = issued(invoice(*SMALL, rate="0.19"))
    # WHEN the first line is corrected to 0: the corrected invoice is 0.13, tax
    # round(0.13 × 0.19 = 0.0247) = 0.02, total 0.15
    corrected = invoice(
        line("usage", "Exports", "0", "0.00", meter="exports"), *SMALL[1:], rate="0.19"
    )
    split = split_correction(source, Credited(), corrected)
    # THEN the credit note's tax is 0.04 − 0.02 = 0.02, not round(0.06 × 0.19 = 0.0114) = 0.01
    assert [(str(c.quantity), str(c.amount)) for c in split.credits] == [("6", "0.06")]
    assert str(split.credit_tax) == "0.02"
    credit_total = split.credit_subtotal + split.credit_tax
    assert str(credit_total) == "0.08"
    assert source.total - credit_total == corrected.total
    assert split.increases == ()
    assert str(split.increase_tax) == "0.00"


def test_void_after_a_partial_credit_note_credits_only_what_remains() -> None:
    source = issued(invoice(*SMALL, rate="0.19"))
    corrected = invoice(
        line("usage", "Exports", "0", "0.00", meter="exports"), *SMALL[1:], rate="0.19"
    )
    split = split_correction(source, Credited(), corrected)
    first = void(source)  # stands in for the partial note: only its lines and tax count
    partial = type(first)(
        number="CN-2026-000001",
        invoice=source,
        correction="rerate-1",
        reason="meter fixed",
        issued_at=CREDITED_AT,
        lines=split.credits,
        subtotal=split.credit_subtotal,
        tax=split.credit_tax,
        invoice_total_after=corrected.total,
    )
    credited = Credited().after(partial)
    assert str(remaining_total(source, credited)) == "0.15"
    # WHEN the invoice is then voided
    note = void(source, credited, number="CN-2026-000002")
    # THEN it credits the two lines left and the tax left: 0.13 + 0.02
    assert [c.invoice_line.index for c in note.lines if c.invoice_line] == [1, 2]
    assert (str(note.subtotal), str(note.tax), str(note.total)) == ("0.13", "0.02", "0.15")
    assert partial.total + note.total == source.total
    assert str(note.invoice_total_after) == "0.00"


def test_usage_down_under_a_commitment_and_another_up_split_between_credit_and_increase() -> None:
    # GIVEN A 100.00, B 10.00 (commitment 70.00 not owed): subtotal 110.00, tax 10 % 11.00
    source = issued(
        invoice(
            line("usage", "A", "100", "100.00", meter="a"),
            line("usage", "B", "10", "10.00", meter="b"),
            rate="0.10",
        )
    )
    # WHEN rated again: A 40.00, B 15.00, so the commitment tops up 15.00: subtotal 70.00,
    # tax 7.00, total 77.00
    corrected = invoice(
        line("usage", "A", "40", "40.00", meter="a"),
        line("usage", "B", "15", "15.00", meter="b"),
        line("minimum", "Minimum commitment", "1", "15.00"),
        rate="0.10",
    )
    split = split_correction(source, Credited(), corrected)
    # THEN the credit note credits A's 60.00 less the new top-up 15.00: 45.00; after it the
    # invoice stands at 65.00, tax 6.50, so its tax is 11.00 − 6.50 = 4.50 (total 49.50)
    assert [(c.kind, str(c.quantity), str(c.amount)) for c in split.credits] == [
        ("usage", "60", "60.00"),
        ("minimum", "-1", "-15.00"),
    ]
    assert split.credits[1].invoice_line is None
    assert (str(split.credit_subtotal), str(split.credit_tax)) == ("45.00", "4.50")
    # AND B's 5.00 is an increase, taxed 7.00 − 6.50 = 0.50, for an adjustment invoice
    assert [(str(i.quantity), str(i.amount)) for i in split.increases] == [("5", "5.00")]
    assert str(split.increase_tax) == "0.50"
    credit_total = split.credit_subtotal + split.credit_tax
    increase_total = sum((i.amount for i in split.increases), split.increase_tax)
    assert source.total - credit_total + increase_total == corrected.total


def test_usage_down_that_the_commitment_tops_up_again_moves_no_money_and_splits_to_nothing() -> (
    None
):
    # GIVEN A 80.00 under a commitment of 100.00 (top-up 20.00): subtotal 100.00, tax 10.00
    source = issued(
        invoice(
            line("usage", "A", "80", "80.00", meter="a"),
            line("minimum", "Minimum commitment", "1", "20.00"),
            rate="0.10",
        )
    )
    # WHEN rated again: A 70.00, the top-up 30.00: the subtotal stands at 100.00
    corrected = invoice(
        line("usage", "A", "70", "70.00", meter="a"),
        line("minimum", "Minimum commitment", "1", "30.00"),
        rate="0.10",
    )
    split = split_correction(source, Credited(), corrected)
    # THEN neither a credit note (10.00 − 10.00 = 0.00) nor a 0.00 adjustment invoice
    assert (split.credits, split.increases) == ((), ())
    assert str(split.increase_tax) == "0.00"


def test_a_move_between_two_charge_lines_is_a_credit_and_an_increase_of_the_same_amount() -> None:
    # GIVEN A 30.00 and B 20.00, tax 10 %; corrected: A 20.00, B 30.00 (the same 50.00)
    source = issued(
        invoice(
            line("usage", "A", "30", "30.00", meter="a"),
            line("usage", "B", "20", "20.00", meter="b"),
            rate="0.10",
        )
    )
    corrected = invoice(
        line("usage", "A", "20", "20.00", meter="a"),
        line("usage", "B", "30", "30.00", meter="b"),
        rate="0.10",
    )
    split = split_correction(source, Credited(), corrected)
    # THEN A's 10.00 is credited (tax 5.00 − round(40.00 × 0.1) = 1.00) and B's 10.00 is
    # charged (tax 5.00 − 4.00 = 1.00): each line's move stays on the record
    assert [(c.description, str(c.amount)) for c in split.credits] == [("A", "10.00")]
    assert [(str(i.amount)) for i in split.increases] == ["10.00"]
    assert (str(split.credit_tax), str(split.increase_tax)) == ("1.00", "1.00")


def test_a_percent_discount_gives_back_its_share_of_what_is_credited() -> None:
    # GIVEN usage 100.00 with 10 % off (−10.00); corrected: usage 80.00, −8.00
    source = issued(
        invoice(
            line("usage", "A", "100", "100.00", meter="a"),
            line("discount", "Discount d (10%)", "1", "-10.00", discount="d"),
        )
    )
    corrected = invoice(
        line("usage", "A", "80", "80.00", meter="a"),
        line("discount", "Discount d (10%)", "1", "-8.00", discount="d"),
    )
    split = split_correction(source, Credited(), corrected)
    # THEN the credit note credits 20.00 and takes back 2.00 of the discount: 18.00
    assert [str(c.amount) for c in split.credits] == ["20.00", "-2.00"]
    assert str(split.credit_subtotal) == "18.00"
    assert split.increases == ()


def test_credited_state_reads_back_as_written() -> None:
    source = issued(invoice(*SMALL, rate="0.19"))
    credited = Credited().after(void(source))
    text = credited.to_text()
    assert json.loads(text) == {
        "lines": {"0": ["6", "0.06"], "1": ["6", "0.06"], "2": ["7", "0.07"]},
        "tax": "0.04",
        "notes": ["CN-2026-000001"],
        "documents": [["credit_note", "void"]],
    }
    assert Credited.from_text(text) == credited
    assert Credited.from_text(None) == Credited()


def test_credit_note_json_document() -> None:
    source = issued(
        invoice(
            line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
            line("fixed", "Pro plan", "1", "49.00"),
            rate="0.20",
        )
    )
    note = void(source)
    assert note.to_bytes() == (
        b"{\n"
        b'  "credit_note_number": "CN-2026-000001",\n'
        b'  "account_id": "acct-1",\n'
        b'  "invoice_number": "INV-2026-000042",\n'
        b'  "invoice_issued_at": "2026-12-01T01:15:00Z",\n'
        b'  "period": "2026-11",\n'
        b'  "correction": "void",\n'
        b'  "reason": "billed twice",\n'
        b'  "issued_at": "2026-12-10T09:30:00Z",\n'
        b'  "currency": "USD",\n'
        b'  "lines": [\n'
        b"    {\n"
        b'      "invoice_line": 0,\n'
        b'      "kind": "usage",\n'
        b'      "meter": "api_requests",\n'
        b'      "description": "API requests",\n'
        b'      "quantity": "1534000",\n'
        b'      "amount": "6.07"\n'
        b"    },\n"
        b"    {\n"
        b'      "invoice_line": 1,\n'
        b'      "kind": "fixed",\n'
        b'      "description": "Pro plan",\n'
        b'      "quantity": "1",\n'
        b'      "amount": "49.00"\n'
        b"    }\n"
        b"  ],\n"
        b'  "subtotal": "55.07",\n'
        b'  "tax": "11.01",\n'
        b'  "total": "66.08",\n'
        b'  "invoice_total": "66.08",\n'
        b'  "invoice_total_after": "0.00"\n'
        b"}\n"
    )
    again = credit_note_from_document(json.loads(note.to_bytes()), source)
    assert again == note


def note_of(source: IssuedInvoice, split: Any, number: str, corrected: Invoice) -> CreditNote:
    """The credit note a split's credits make (as the re-rate will issue it)."""
    return CreditNote(
        number=number,
        invoice=source,
        correction=f"rerate-{number}",
        reason="re-rated",
        issued_at=CREDITED_AT,
        lines=split.credits,
        subtotal=split.credit_subtotal,
        tax=split.credit_tax,
        invoice_total_after=corrected.total,
    )


def test_a_minimum_a_correction_added_is_credited_back_by_the_next_one_and_by_a_void() -> None:
    # GIVEN usage 100.00 under a commitment of 70.00 (not owed), no tax
    source = issued(invoice(line("usage", "A", "100", "100.00", meter="a")))
    # AND a first correction to 40.00, which the commitment tops up by 30.00: credited 60.00
    # on A and −30.00 on the minimum it adds (no invoice line): 30.00
    first = invoice(
        line("usage", "A", "40", "40.00", meter="a"),
        line("minimum", "Minimum commitment", "1", "30.00"),
    )
    split = split_correction(source, Credited(), first)
    assert [(c.invoice_line is None, str(c.amount)) for c in split.credits] == [
        (False, "60.00"),
        (True, "-30.00"),
    ]
    credited = Credited().after(note_of(source, split, "CN-2026-000001", first))
    assert str(remaining_total(source, credited)) == "70.00"
    assert Credited.from_text(credited.to_text()) == credited

    # WHEN a second correction puts A at 80.00: the minimum is no longer owed
    second = invoice(line("usage", "A", "80", "80.00", meter="a"))
    again = split_correction(source, credited, second)
    # THEN one adjustment of the net: A's 40.00 more, less the added minimum's 30.00 gone:
    # 70.00 + 40.00 − 30.00 = 80.00 (not a credit note of 30.00 and an adjustment of 40.00)
    assert again.credits == ()
    assert [(i.invoice_line is None, str(i.quantity), str(i.amount)) for i in again.increases] == [
        (False, "40", "40.00"),
        (True, "-1", "-30.00"),
    ]

    # AND a void instead credits what stands: A's 40.00 and the minimum's 30.00
    voided = void(source, credited, number="CN-2026-000002")
    assert [(c.kind, str(c.amount)) for c in voided.lines] == [
        ("usage", "40.00"),
        ("minimum", "30.00"),
    ]
    assert (str(voided.total), str(voided.invoice_total_after)) == ("70.00", "0.00")
