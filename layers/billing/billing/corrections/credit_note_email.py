"""A credit note's email (built as an invoice's: billing.invoicing.message) and its
CreditNoteIssued event, both from what its record holds."""

from __future__ import annotations

from typing import Any, Final

from billing.core.catalog import Account
from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE, NUMBER_KEYS, CreditNote
from billing.core.seller import Issuer
from billing.invoicing.message import CREDIT_NOTE_HEADER, Letter, document_email
from billing.store.credit_notes import CreditNoteRecord

CREDIT_NOTE_ISSUED: Final = "CreditNoteIssued"
ADJUSTMENT_ISSUED: Final = "AdjustmentIssued"


# A document's name and what its total is to the customer, by kind.
_WORDING: Final = {
    CREDIT_NOTE: ("Credit note", "credited"),
    ADJUSTMENT: ("Adjustment invoice", "due"),
}


def credit_note_email(note: CreditNote, account: Account, pdf: bytes, issuer: Issuer) -> bytes:
    """The email of a credit note or an adjustment invoice, its PDF attached."""
    currency, invoice = note.invoice.currency, note.invoice.number
    name, total = _WORDING[note.kind]

    def amount(value: Any) -> str:
        return f"{value} {currency}"

    rows = (
        *((line.description, amount(line.amount)) for line in note.lines),
        ("Subtotal", amount(note.subtotal)),
        ("Tax", amount(note.tax)),
        (f"Total {total}", amount(note.total)),
    )
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
                f"({note.reason}).",
                f"Your {name.lower()} <b>{note.number}</b> for invoice <b>{invoice}</b> is "
                "attached.",
            ),
            rows=rows,
        ),
        account,
        pdf,
        issuer,
    )


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
