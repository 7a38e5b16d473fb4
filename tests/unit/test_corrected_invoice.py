"""The corrected invoice of a `{"correct": ...}` request (billing.corrections.corrected):
checked against the stored invoice, taxed at the stored account's rate, and keyed so the
same correction is one credit note however often it is applied."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account
from billing.core.corrections import NothingToCredit, adjustment_note, correction_note, void_note
from billing.core.credit_notes import Credited
from billing.corrections.corrected import CorrectedInvoice, corrected_invoice, correction_key
from tests.unit.test_credit_notes import CREDITED_AT, invoice, issued, line

# The stored invoice: 6.07 + 49.00 = 55.07, tax 20 % = round(11.014) = 11.01, total 66.08.
STORED = issued(
    invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("fixed", "Pro plan", "1", "49.00"),
        rate="0.2",
    )
)
ACCOUNT = Account(
    id="acct-1",
    name="Acme",
    email="billing@acme.example",
    plan="pro",
    timezone="UTC",
    tax_rate=Decimal("0.2"),
)


def document(**changes: Any) -> CorrectedInvoice:
    """The re-rated invoice: API requests at 5.53, so 54.53, tax round(10.906) = 10.91,
    total 65.44."""
    base: dict[str, Any] = {
        "invoice_number": "INV-2026-000042",
        "account_id": "acct-1",
        "period": "2026-11",
        "issued_at": "2026-12-01T01:15:00Z",
        "currency": "USD",
        "lines": [
            {"kind": "usage", "meter": "api_requests", "description": "API requests",
             "quantity": "1534000", "amount": "5.53", "unit": "requests"},
            {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
        ],
        "subtotal": "54.53",
        "tax": "10.91",
        "total": "65.44",
    }  # fmt: skip
    return CorrectedInvoice.model_validate({**base, **changes})


def test_the_corrected_invoice_credits_the_hand_computed_difference() -> None:
    corrected = corrected_invoice(document(), STORED, ACCOUNT)
    key = correction_key(corrected)
    note = correction_note(
        STORED, Credited(), corrected, number="CN-2026-000001", correction=key,
        reason="price typed wrong", issued_at=CREDITED_AT,
    )  # fmt: skip
    # 6.07 − 5.53 = 0.54; tax 11.01 − 10.91 = 0.10; 66.08 − 0.64 = 65.44, the corrected total
    assert (str(note.subtotal), str(note.tax), str(note.total)) == ("0.54", "0.10", "0.64")
    assert str(note.invoice_total_after) == "65.44"
    assert [(each.description, str(each.amount)) for each in note.lines] == [
        ("API requests", "0.54")
    ]


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"account_id": "acct-2"}, "account is 'acct-2', the stored invoice's 'acct-1'"),
        ({"period": "2026-10"}, "period is '2026-10', the stored invoice's '2026-11'"),
        ({"currency": "EUR"}, "currency is 'EUR', the stored invoice's 'USD'"),
        ({"invoice_number": "INV-2026-000043"}, "invoice number is 'INV-2026-000043'"),
        ({"subtotal": "54.54"}, "subtotal 54.54 is not 54.53"),
        # a 0 % rate in the request changes nothing: the account's 20 % is the rate
        ({"tax": "0.00", "total": "54.53"}, "tax 0.00 is not 10.91"),
    ],
)
def test_a_document_that_is_not_a_correction_of_the_stored_invoice_is_refused(
    changes: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        corrected_invoice(document(**changes), STORED, ACCOUNT)


def test_the_key_is_the_same_for_the_same_correction_and_another_for_another() -> None:
    key = correction_key(corrected_invoice(document(), STORED, ACCOUNT))
    # The unit, price steps and issue time are not what the correction is.
    again = document(issued_at="2026-12-01T01:15:00+00:00")
    assert correction_key(corrected_invoice(again, STORED, ACCOUNT)) == key
    lines = [dict(each) for each in document().model_dump(by_alias=True)["lines"]]
    lines[0]["amount"] = "5.52"
    other = document(lines=lines, subtotal="54.52", tax="10.90", total="65.42")
    assert correction_key(corrected_invoice(other, STORED, ACCOUNT)) != key
    assert key.startswith("rerate:")
    assert len(key) == len("rerate:") + 16


def test_a_correction_both_ways_is_a_credit_note_then_an_adjustment_to_the_cent() -> None:
    # GIVEN API requests down 6.07 → 5.53 and the plan up 49.00 → 50.00: the corrected
    # invoice is 55.53, tax round(11.106) = 11.11, total 66.64
    lines = [dict(each) for each in document().model_dump(by_alias=True)["lines"]]
    lines[1]["amount"] = "50.00"
    corrected = corrected_invoice(
        document(lines=lines, subtotal="55.53", tax="11.11", total="66.64"), STORED, ACCOUNT
    )
    key = correction_key(corrected)
    note = correction_note(
        STORED, Credited(), corrected, number="CN-2026-000001", correction=key,
        reason="fixed", issued_at=CREDITED_AT,
    )  # fmt: skip
    # THEN the credit note takes 0.54 and tax 11.01 − round(54.53 × 0.2 = 10.906) = 0.10
    assert (str(note.subtotal), str(note.tax), str(note.total)) == ("0.54", "0.10", "0.64")
    credited = Credited().after(note)
    adjustment = adjustment_note(
        STORED, credited, corrected, number="ADJ-2026-000001", correction=key,
        reason="fixed", issued_at=CREDITED_AT,
    )  # fmt: skip
    # AND the adjustment charges 1.00 and tax 11.11 − 10.91 = 0.20
    assert [(each.description, str(each.amount)) for each in adjustment.lines] == [
        ("Pro plan", "1.00")
    ]
    assert (str(adjustment.subtotal), str(adjustment.tax), str(adjustment.total)) == (
        "1.00",
        "0.20",
        "1.20",
    )
    # 66.08 − 0.64 + 1.20 = 66.64, the corrected total
    assert str(adjustment.invoice_total_after) == "66.64"
    assert adjustment.to_json()["adjustment_number"] == "ADJ-2026-000001"
    # AND with both booked, the invoice stands at the corrected one: nothing is left
    with pytest.raises(NothingToCredit):
        correction_note(
            STORED, credited.after(adjustment), corrected, number="CN-2026-000002",
            correction=key, reason="fixed", issued_at=CREDITED_AT,
        )  # fmt: skip
    with pytest.raises(NothingToCredit):
        adjustment_note(
            STORED, credited.after(adjustment), corrected, number="ADJ-2026-000002",
            correction=key, reason="fixed", issued_at=CREDITED_AT,
        )  # fmt: skip


def test_a_void_after_a_correction_credits_what_stands_adjustment_included() -> None:
    # GIVEN the plan charged 1.00 more by an adjustment: 56.07, tax 11.21, total 67.28
    lines = [dict(each) for each in document().model_dump(by_alias=True)["lines"]]
    lines[0]["amount"], lines[1]["amount"] = "6.07", "50.00"
    corrected = corrected_invoice(
        document(lines=lines, subtotal="56.07", tax="11.21", total="67.28"), STORED, ACCOUNT
    )
    adjustment = adjustment_note(
        STORED, Credited(), corrected, number="ADJ-2026-000001", correction="rerate:x",
        reason="fixed", issued_at=CREDITED_AT,
    )  # fmt: skip
    # 1.00 + (11.21 − 11.01 = 0.20) = 1.20; 66.08 + 1.20 = 67.28
    assert (str(adjustment.total), str(adjustment.invoice_total_after)) == ("1.20", "67.28")
    # WHEN it is voided THEN the void credits 6.07 + 50.00 + tax 11.21 = 67.28, leaving 0
    voided = void_note(
        STORED, Credited().after(adjustment), number="CN-2026-000001", reason="void",
        issued_at=CREDITED_AT,
    )  # fmt: skip
    assert [str(each.amount) for each in voided.lines] == ["6.07", "50.00"]
    assert (str(voided.tax), str(voided.total)) == ("11.21", "67.28")
    assert str(voided.invoice_total_after) == "0.00"


def test_a_tax_rate_changed_since_the_invoice_is_refused() -> None:
    # The invoice was taxed at 20 % (11.01 on 55.07); the account is at 10 % now: at that
    # rate the invoice's tax would be 5.51, so a correction would move the whole tax.
    account = ACCOUNT.model_copy(update={"tax_rate": Decimal("0.1")})
    with pytest.raises(ValueError, match=r"does not give the invoice's tax 11\.01"):
        corrected_invoice(document(), STORED, account)


@pytest.mark.parametrize(
    ("amount", "subtotal", "tax", "total", "why"),
    [
        ("5.005", "54.005", "10.80", "64.81", "finer than USD's smallest unit"),
        ("-5.00", "44.00", "8.80", "52.80", "a usage line's amount is never negative"),
    ],
)
def test_a_line_amount_the_invoice_could_not_carry_is_refused(
    amount: str, subtotal: str, tax: str, total: str, why: str
) -> None:
    lines = [
        {"kind": "usage", "meter": "api_requests", "description": "API requests",
         "quantity": "1534000", "amount": amount},
        {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
    ]  # fmt: skip
    with pytest.raises(ValueError, match=why):
        corrected_invoice(
            document(lines=lines, subtotal=subtotal, tax=tax, total=total), STORED, ACCOUNT
        )
