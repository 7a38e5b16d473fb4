"""A credit note's email (built as an invoice's: billing.invoicing.message) and its
CreditNoteIssued event, both from what its record holds."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any, Final

from billing.core.catalog import Account
from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE, NUMBER_KEYS, CreditNote
from billing.core.locales import date_text
from billing.core.money import plain
from billing.core.seller import Issuer
from billing.corrections.credit_note_pdf import against_the_document, owed_effect, settlement
from billing.invoicing.document import account_locale
from billing.invoicing.message import CREDIT_NOTE_HEADER, Letter, document_email
from billing.invoicing.pdf.page import due_date
from billing.store.credit_notes import CreditNoteRecord

CREDIT_NOTE_ISSUED: Final = "CreditNoteIssued"
ADJUSTMENT_ISSUED: Final = "AdjustmentIssued"


# A document's name, what its total is to the customer, and what a line going the other
# way says, by kind.
_WORDING: Final = {
    CREDIT_NOTE: ("Credit note", "credited", "charged"),
    ADJUSTMENT: ("Adjustment invoice", "due", "credited"),
}


def credit_note_email(note: CreditNote, account: Account, pdf: bytes, issuer: Issuer) -> bytes:
    """The email of a credit note or an adjustment invoice, its PDF attached. Its rows are
    signed as the PDF's (billing.corrections.credit_note_pdf, *Signs*): a credit note's
    credits negative, what it charges back positive and saying so."""
    currency, invoice = note.invoice.currency, note.invoice.number
    name, total, against = _WORDING[note.kind]

    def amount(value: Decimal) -> str:
        return f"{plain(owed_effect(value, note.kind))} {currency}"

    def label(description: str, value: Decimal) -> str:
        return (
            f"{description} ({against})" if against_the_document(value, note.kind) else description
        )

    rows = (
        *(
            (label(line.description, line.amount.amount), amount(line.amount.amount))
            for line in note.lines
        ),
        ("Subtotal", amount(note.subtotal.amount)),
        ("Tax", amount(note.tax.amount)),
        (f"Total {total}", amount(note.total.amount)),
    )
    payable = _payable(note, account, issuer)
    return document_email(
        Letter(
            subject=f"{name} {note.number} for invoice {invoice}: {note.total} {currency} {total}",
            number=note.number,
            sent_at=note.issued_at,
            # what SES's feedback on the email finds the document's record by
            # (billing.invoicing.feedback)
            header=(
                CREDIT_NOTE_HEADER,
                f"{note.invoice.account_id} {invoice} {note.number} {note.kind} {note.correction}",
            ),
            intro=(
                f"Your {name.lower()} {note.number} for invoice {invoice} is attached "
                f"({note.reason}).{payable}",
                f"Your {name.lower()} <b>{note.number}</b> for invoice <b>{invoice}</b> is "
                f"attached.{html.escape(payable)}",
            ),
            rows=rows,
        ),
        account,
        pdf,
        issuer,
    )


def _payable(note: CreditNote, account: Account, issuer: Issuer) -> str:
    """An adjustment's due date, as its PDF states it (a bill: the seller's payment terms
    from its date of issue); a credit note's word on money already paid, as its PDF's."""
    if note.kind != ADJUSTMENT:
        after = f"{plain(note.invoice_total_after.amount)} {note.invoice.currency}"
        return f" {settlement(note, issuer, after)}"
    due = date_text(due_date(note.issued_at, issuer), account_locale(account))
    return f" Please pay it by {due}."


def issued_event(record: CreditNoteRecord) -> str:
    """The detail type announcing the record's document."""
    return ADJUSTMENT_ISSUED if record.kind == ADJUSTMENT else CREDIT_NOTE_ISSUED


def credit_note_issued(record: CreditNoteRecord) -> dict[str, Any]:
    """CreditNoteIssued's (AdjustmentIssued's) detail, from the record alone: the same
    whichever attempt publishes it (consumers dedupe on `event_id`)."""
    return {
        "event_id": f"{issued_event(record)}:{record.invoice_number}",
        NUMBER_KEYS[record.kind]: record.invoice_number,
        "invoice_number": record.corrects,
        "account_id": record.account_id,
        "period": record.period,
        "correction": record.correction,
        "currency": record.currency,
        "subtotal": record.subtotal,
        "tax": record.tax,
        "total": record.total,
        "issued_at": record.issued_at,
        "json_key": record.json_key,
        "pdf_key": record.pdf_key,
    }
