"""Chained corrections on the pure core (billing.core.corrections): derived lines that take
up a move, a discount line a correction added and the next removes, alike lines added."""

from __future__ import annotations

from billing.core.corrections import (
    NothingToCredit,
    adjustment_note,
    correction_note,
    split_correction,
)
from billing.core.credit_notes import Credited, CreditNote
from billing.core.invoice import Invoice
from tests.unit.test_credit_notes import CREDITED_AT, invoice, issued, line


def test_usage_up_under_a_commitment_whose_top_up_shrinks_alike_issues_no_document() -> None:
    # GIVEN A 80.00 under a commitment of 100.00 (top-up 20.00): subtotal 100.00, tax 10.00
    source = issued(
        invoice(
            line("usage", "A", "80", "80.00", meter="a"),
            line("minimum", "Minimum commitment", "1", "20.00"),
            rate="0.10",
        )
    )
    # WHEN rated again: A 90.00, the top-up 10.00: the subtotal stands at 100.00 (the
    # documented "usage down 10 under a commitment that now tops it up by 10", upwards)
    corrected = invoice(
        line("usage", "A", "90", "90.00", meter="a"),
        line("minimum", "Minimum commitment", "1", "10.00"),
        rate="0.10",
    )
    split = split_correction(source, Credited(), corrected)
    # THEN no document: not a credit note of 10.00 + 1.00 (the top-up) and an adjustment of
    # 10.00 + 1.00 (A) that cancel exactly
    assert (split.credits, split.increases) == ((), ())


def test_usage_up_under_an_amount_discount_that_grows_alike_issues_no_document() -> None:
    # GIVEN A 30.00 and a 50.00 discount that takes at most what remains: −30.00, total 0.00
    source = issued(
        invoice(
            line("usage", "A", "30", "30.00", meter="a"),
            line("discount", "Discount f", "1", "-30.00", discount="f"),
            rate="0.20",
        )
    )
    # WHEN rated again: A 40.00, the discount −40.00: 0.00 still
    corrected = invoice(
        line("usage", "A", "40", "40.00", meter="a"),
        line("discount", "Discount f", "1", "-40.00", discount="f"),
        rate="0.20",
    )
    split = split_correction(source, Credited(), corrected)
    # THEN no document: not a credit note of 10.00 against an invoice of 0.00 (leaving it
    # at −10.00) and an adjustment of 10.00 that takes it back to 0.00
    assert (split.credits, split.increases) == ((), ())


def _apply(source_invoice: Invoice, credited: Credited, corrected: Invoice, key: str) -> Credited:
    """`corrected` applied as the Send function does: its credit note, then its adjustment."""
    source = issued(source_invoice)
    for number, build in ((f"CN-{key}", correction_note), (f"ADJ-{key}", adjustment_note)):
        try:
            document: CreditNote = build(
                source, credited, corrected, number=number, correction=key, reason="re-rated",
                issued_at=CREDITED_AT,
            )  # fmt: skip
        except NothingToCredit:
            continue
        credited = credited.after(document)
    return credited


def test_a_discount_line_a_correction_added_is_taken_away_by_the_next_correction() -> None:
    # GIVEN an invoice of 0.00 (A 0.00: its 10 % discount took nothing, so no line for it)
    source = invoice(line("usage", "A", "0", "0.00", meter="a"))
    # AND late events re-rated onto it: A 10.00, the discount −1.00 (a line it adds)
    late = invoice(
        line("usage", "A", "10", "10.00", meter="a"),
        line("discount", "Discount d (10%)", "1", "-1.00", discount="d"),
    )
    credited = _apply(source, Credited(), late, "late")
    # 0.00 − 1.00 (a credit note of the discount) + 10.00 (an adjustment of A) = 9.00
    assert issued(source).total.amount - credited.subtotal("USD").amount == 9
    # WHEN the discount is found not to apply to the period and it is re-rated again: A
    # 10.00, no discount line
    undiscounted = invoice(line("usage", "A", "10", "10.00", meter="a"))
    # THEN the invoice is taken to 10.00 (an adjustment of 1.00), not "an increase names
    # neither an invoice line nor a corrected line" (ValueError: the invoice can never be
    # corrected to it)
    credited = _apply(source, credited, undiscounted, "undiscounted")
    assert issued(source).total.amount - credited.subtotal("USD").amount == 10


def test_two_alike_lines_one_correction_adds_are_both_booked_on_the_invoice() -> None:
    # GIVEN an invoice of A 10.00 (no tax), and a plan that now has two charges alike (the
    # same kind, meter, filters and description: the catalog does not forbid it)
    source = invoice(line("usage", "A", "10", "10.00", meter="a"))
    seats = line("fixed", "Seat", "1", "5.00")
    # WHEN a correction adds both: an adjustment of 5.00 + 5.00 = 10.00, to 20.00
    credited = _apply(source, Credited(), invoice(source.lines[0], seats, seats), "seats")
    # THEN what the invoice stands at counts both (10.00 + 10.00 = 20.00), not one of them
    assert issued(source).total.amount - credited.subtotal("USD").amount == 20
    # AND a further correction taking A down by 1.00 is a credit note of 1.00 only: 19.00
    # (10.00 − 1.00 + 10.00), not a second charge for a seat already charged
    lowered = invoice(line("usage", "A", "9", "9.00", meter="a"), seats, seats)
    credited = _apply(source, credited, lowered, "lowered")
    assert issued(source).total.amount - credited.subtotal("USD").amount == 19
