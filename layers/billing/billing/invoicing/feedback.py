"""What SES reports about an invoice's email, or a correction document's (a credit note's or
an adjustment invoice's), after it left: a permanent bounce or a complaint, recorded on the
document's record and published on the domain-event bus through its failure outbox.

The configuration set publishes these events (stacks/invoicing.py). Each email carries a
header naming its document (billing.invoicing.message): an invoice's `X-Billing-Invoice`
(account, period, number), a correction document's `X-Billing-Credit-Note` (account,
invoice, number, kind, correction). SES returns the headers with the event, so the record
is found by its key without a scan. A transient bounce (a full mailbox) changes nothing: SES
retried it already and the address is fine. An event that does not match the document's
last email (its SES message id), such as a bounce of an email an operator has since resent,
is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from billing.core.credit_notes import NUMBER_KEYS
from billing.invoicing.delivery import announce_delivery_failure
from billing.invoicing.message import CREDIT_NOTE_HEADER, INVOICE_HEADER
from billing.store.invoice_store import InvoiceRecord


class FailureOutbox(Protocol):
    def mark_failure_announced(self, record: InvoiceRecord) -> None: ...


class Invoices(FailureOutbox, Protocol):
    def record_delivery(self, account_id: str, period: str, message_id: str) -> bool: ...
    def record_feedback(
        self, account_id: str, period: str, message_id: str, status: str, reason: str
    ) -> InvoiceRecord | None: ...


class CorrectionDocuments(FailureOutbox, Protocol):
    def record_document_delivery(
        self, account_id: str, invoice_number: str, kind: str, correction: str, message_id: str
    ) -> bool: ...
    def record_document_feedback(
        self,
        account_id: str,
        invoice_number: str,
        kind: str,
        correction: str,
        message_id: str,
        status: str,
        reason: str,
    ) -> InvoiceRecord | None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Mailed:
    """The document an email's header names: what the handler's answer calls it, and its
    record's writes (SES's message id; and the status and reason of its feedback)."""

    names: dict[str, str]
    delivered: Callable[[str], bool]
    feedback: Callable[[str, str, str], InvoiceRecord | None]
    outbox: FailureOutbox


def _headers(mail: dict[str, Any]) -> dict[str, list[str]]:
    """The email's headers SES returned, by lower-case name: each value's words."""
    return {
        str(header.get("name", "")).lower(): str(header.get("value", "")).split()
        for header in mail.get("headers") or []
    }


def feedback(detail: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) the event gives the document's email, or None if it changes nothing."""
    kind = detail.get("eventType")
    if kind == "Bounce":
        bounce = detail.get("bounce") or {}
        if bounce.get("bounceType") != "Permanent":
            return None
        return "bounced", f"bounce: Permanent/{bounce.get('bounceSubType') or 'General'}"
    if kind == "Complaint":
        complaint = detail.get("complaint") or {}
        return "complained", f"complaint: {complaint.get('complaintFeedbackType') or 'unknown'}"
    return None


class EmailFeedback:
    def __init__(
        self, *, invoices: Invoices, documents: CorrectionDocuments, events: Publisher
    ) -> None:
        self._invoices, self._documents, self._events = invoices, documents, events

    def mailed(self, mail: dict[str, Any]) -> Mailed | None:
        """The invoice or correction document the email's header names, if any."""
        headers = _headers(mail)
        invoice = headers.get(INVOICE_HEADER.lower(), [])
        if len(invoice) == 3:
            account, period, _ = invoice
            return Mailed(
                names={"invoice": f"{account} {period}"},
                delivered=partial(self._invoices.record_delivery, account, period),
                feedback=partial(self._invoices.record_feedback, account, period),
                outbox=self._invoices,
            )
        document = headers.get(CREDIT_NOTE_HEADER.lower(), [])
        # (An email sent before the header named the record's key has three words: its
        # record is not found by them, and the event is ignored.)
        if len(document) == 5 and document[3] in NUMBER_KEYS:
            account, invoice_number, number, kind, correction = document
            key = (account, invoice_number, kind, correction)
            return Mailed(
                names={NUMBER_KEYS[kind]: number, "invoice_number": invoice_number},
                delivered=partial(self._documents.record_document_delivery, *key),
                feedback=partial(self._documents.record_document_feedback, *key),
                outbox=self._documents,
            )
        return None

    def handle(self, detail: dict[str, Any]) -> dict[str, str] | None:
        """Record and publish the event's bounce or complaint; what was recorded, or None.
        Raises (so that the event is delivered again) when the store or the bus fails."""
        mail = detail.get("mail") or {}
        mailed = self.mailed(mail)
        if mailed is None:
            return None
        message_id = str(mail.get("messageId", ""))
        if detail.get("eventType") == "Delivery":
            # Settles an email not known to have left (a timeout, or a step killed while
            # SES had it): it did. Nothing to publish: its document's issue event was.
            if mailed.delivered(message_id):
                return {**mailed.names, "status": "sent"}
            return None
        outcome = feedback(detail)
        if outcome is None:
            return None
        status, reason = outcome
        record = mailed.feedback(message_id, status, reason)
        if record is None:
            return None
        if not record.failure_announced:
            announce_delivery_failure(self._events, mailed.outbox, record)
        return {**record.document_numbers(), "status": status}
