"""Credit notes for `billing invoices list|show`: found in the invoice table, their stored
documents read back as they are (docs/invoicing.md, *Credit notes*); and an invoice's
corrections, with where they leave it, for `billing invoices show INV-…`."""

from __future__ import annotations

import json
from typing import Any, Final

from billing.core.credit_notes import (
    ADJUSTMENT,
    CREDIT_NOTE,
    NUMBER_KEYS,
    Credited,
    IssuedInvoice,
    remaining_total,
)
from billing.core.periods import Period
from billing.store.credit_notes import CreditNoteRecord
from billing.store.errors import StoreError
from billing.store.invoice_store import InvoiceRecord
from billing_cli.deployment import Deployment
from billing_cli.operations import OperationError, invoice_state

# How a correction document's number starts (billing.core.credit_notes.credit_note_number):
# what tells `billing invoices show` to look among the credit notes or the adjustments.
NUMBER_PREFIXES: Final = {"CN-": CREDIT_NOTE, "ADJ-": ADJUSTMENT}


def correction_kind(number: str) -> str | None:
    """CREDIT_NOTE or ADJUSTMENT for a correction document's number; None for an invoice's."""
    for prefix, kind in NUMBER_PREFIXES.items():
        if number.startswith(prefix):
            return kind
    return None


def credit_note_row(record: CreditNoteRecord) -> dict[str, Any]:
    """A credit note (or adjustment invoice) as the list shows it: what it corrects, why,
    and what it credits (or charges)."""
    return {
        NUMBER_KEYS[record.kind]: record.invoice_number,
        "kind": record.kind,
        "invoice_number": record.corrects,
        "account_id": record.account_id,
        "period": record.period,
        "issued_at": record.issued_at,
        "correction": record.correction,
        # the reason is kept in the document only (it is printed on the note)
        "reason": json.loads(record.document).get("reason"),
        "status": invoice_state(record),
        "currency": record.currency,
        "subtotal": record.subtotal,
        "tax": record.tax,
        "total": record.total,
    }


def list_credit_notes(
    deployment: Deployment,
    account: str | None = None,
    period: Period | None = None,
    status: str | None = None,
    kind: str = CREDIT_NOTE,
) -> list[dict[str, Any]]:
    """The deployment's credit notes (or adjustment invoices), by number, filtered as
    `list_invoices` filters."""
    store = deployment.credit_notes()
    try:
        records = store.for_account(account, kind) if account else store.all_notes(kind)
    except StoreError as error:
        raise OperationError(f"cannot read the credit notes: {error}") from None
    rows = [
        credit_note_row(record)
        for record in sorted(records, key=lambda record: record.sequence)
        if period is None or record.period == str(period)
    ]
    return [row for row in rows if status is None or row["status"] == status]


def find_credit_note(deployment: Deployment, number: str) -> CreditNoteRecord:
    """The record of the credit note (or adjustment invoice) numbered `number`, stored (a
    scan: operators' use only)."""
    try:
        records = deployment.credit_notes().all_notes(correction_kind(number) or CREDIT_NOTE)
    except StoreError as error:
        raise OperationError(f"cannot read the credit notes: {error}") from None
    for record in records:
        if record.invoice_number != number:
            continue
        if not record.stored:
            raise OperationError(
                f"{number} is numbered but not stored yet: asking again for the correction "
                f"of {record.corrects} that issued it ({record.correction}) stores it"
            )
        return record
    what = "adjustment invoice" if correction_kind(number) == ADJUSTMENT else "credit note"
    raise OperationError(f"no {what} {number} in {deployment.stack}")


def invoice_corrections(
    deployment: Deployment, record: InvoiceRecord, document: dict[str, Any]
) -> dict[str, Any]:
    """The correction documents issued against the invoice (its credit notes and adjustment
    invoices, in the order they were numbered, each as stored: `total` what it credits or
    charges) and what the invoice stands at after them: its total less what its record's
    `credited` says they took (an adjustment's counted negative)."""
    try:
        notes = deployment.credit_notes().for_invoice(record.account_id, record.invoice_number)
    except StoreError as error:
        raise OperationError(
            f"cannot read the corrections of {record.invoice_number}: {error}"
        ) from None
    credited = Credited.from_text(record.credited)
    numbered = {number: at for at, number in enumerate(credited.notes)}
    notes.sort(key=lambda note: (numbered.get(note.invoice_number, len(numbered)), note.issued_at))
    stands_at = remaining_total(IssuedInvoice.from_document(document), credited)
    return {
        "documents": [
            {
                "number": note.invoice_number,
                "kind": note.kind,
                "correction": note.correction,
                "issued_at": note.issued_at,
                "status": invoice_state(note),
                "currency": note.currency,
                "subtotal": note.subtotal,
                "tax": note.tax,
                "total": note.total,
            }
            for note in notes
        ],
        "stands_at": str(stands_at),
    }
