"""A credit note's and an adjustment invoice's email (billing.corrections.credit_note_email):
its rows signed as its PDF's, by their effect on what the customer owes (docs/invoicing.md,
*Signs on the page*), and an adjustment's due date."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

from billing.core.corrections import adjustment_note, correction_note, void_note
from billing.core.credit_notes import Credited, CreditNote, IssuedInvoice
from billing.core.seller import Issuer
from billing.corrections.credit_note_email import credit_note_email
from tests.unit.test_credit_note_pdf import ACCOUNT, INVOICE, plan_raised
from tests.unit.test_credit_notes import invoice, issued, line

SELLER = Issuer(name="Example Cloud Ltd", email="billing@cloud.example", payment_terms_days=14)
AT = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)


def sent(note: CreditNote) -> tuple[str, str, str]:
    """The email's subject, plain-text body and HTML body."""
    message = email.message_from_bytes(
        credit_note_email(note, ACCOUNT, b"%PDF-", SELLER), policy=default
    )
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    subject = " ".join(str(message["Subject"]).split())  # folded when long
    return subject, text.get_content(), html.get_content()


def example() -> IssuedInvoice:
    return IssuedInvoice.from_document(json.loads(json.dumps(INVOICE)))


def test_a_credit_notes_email_shows_what_it_credits_negative() -> None:
    # GIVEN the example invoice (100.00 + 20.00) voided
    note = void_note(example(), Credited(), number="CN-2026-000007", reason="x", issued_at=AT)
    subject, text, html = sent(note)
    # THEN the subject says "credited" of the amount; the rows are negative
    assert subject == "Credit note CN-2026-000007 for invoice INV-2026-000042: 120.00 USD credited"
    for expected in (
        "  API requests: -6.07 USD",
        "  Pro plan: -49.00 USD",
        "  Minimum commitment: -44.93 USD",
        "  Subtotal: -100.00 USD",
        "  Tax: -20.00 USD",
        "  Total credited: -120.00 USD",
    ):
        assert expected in text.splitlines(), expected
    assert "-120.00 USD" in html
    assert "Please pay" not in text
    # AND it says, as the PDF does, what becomes of money already paid (the default policy)
    assert (
        "Your credit note CN-2026-000007 for invoice INV-2026-000042 is attached (x). Any "
        "amount already paid above 0.00 USD is refunded to you."
    ) in " ".join(text.split())


def test_a_line_a_credit_note_charges_back_is_positive_and_says_charged() -> None:
    # GIVEN usage 100.00 corrected to 40.00 under a commitment of 70.00 now owed (30.00),
    # no tax: 60.00 credited, 30.00 charged back, 30.00 in all
    source = issued(invoice(line("usage", "API requests", "100", "100.00", meter="a")))
    corrected = invoice(
        line("usage", "API requests", "40", "40.00", meter="a"),
        line("minimum", "Minimum commitment", "1", "30.00"),
    )
    note = correction_note(
        source, Credited(), corrected, number="CN-2026-000008", correction="rerate:z",
        reason="Usage counted twice", issued_at=AT,
    )  # fmt: skip
    _, text, _ = sent(note)
    lines = text.splitlines()
    assert "  API requests: -60.00 USD" in lines
    assert "  Minimum commitment (charged): 30.00 USD" in lines
    assert "  Total credited: -30.00 USD" in lines


def test_an_adjustments_email_charges_positive_and_says_when_it_is_due() -> None:
    # GIVEN the example invoice's plan 3.00 higher, tax 0.60: 3.60, issued 10 December
    adjustment = adjustment_note(
        example(), Credited(), plan_raised(), number="ADJ-2026-000003", correction="rerate:x",
        reason="Plan price raised late", issued_at=AT,
    )  # fmt: skip
    subject, text, html = sent(adjustment)
    assert subject == "Adjustment invoice ADJ-2026-000003 for invoice INV-2026-000042: 3.60 USD due"
    lines = text.splitlines()
    for expected in ("  Pro plan: 3.00 USD", "  Tax: 0.60 USD", "  Total due: 3.60 USD"):
        assert expected in lines, expected
    # AND it is due on the seller's 14 days' terms from its issue: 10 + 14 = 24 December
    assert (
        "Your adjustment invoice ADJ-2026-000003 for invoice INV-2026-000042 is attached "
        "(Plan price raised late). Please pay it by Dec 24, 2026."
    ) in lines
    assert "Please pay it by Dec 24, 2026." in html
