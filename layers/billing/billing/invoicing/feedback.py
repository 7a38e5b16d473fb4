"""What SES reports about an invoice email after it left: a permanent bounce or a complaint,
recorded on the invoice and published on the domain-event bus through the invoice's outbox.

The configuration set publishes these events (stacks/invoicing.py); each invoice email
carries the `X-Billing-Invoice` header (billing.invoicing.message), which SES returns with
the event, so the invoice is found without a scan. A transient bounce (a full mailbox)
changes nothing: SES retried it already and the address is fine. An event that does not
match the invoice's last email (its SES message id), such as a bounce of an email an
operator has since resent, is ignored.
"""

from __future__ import annotations

from typing import Any, Protocol

from billing.invoicing.delivery import announce_delivery_failure
from billing.invoicing.message import INVOICE_HEADER
from billing.store.invoice_store import InvoiceRecord


class Invoices(Protocol):
    def record_delivery(self, account_id: str, period: str, message_id: str) -> bool: ...
    def record_feedback(
        self, account_id: str, period: str, message_id: str, status: str, reason: str
    ) -> InvoiceRecord | None: ...
    def mark_failure_announced(self, record: InvoiceRecord) -> None: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


def _invoice(mail: dict[str, Any]) -> tuple[str, str] | None:
    """(account, period) from the email's X-Billing-Invoice header, if it is an invoice's."""
    for header in mail.get("headers") or []:
        if str(header.get("name", "")).lower() == INVOICE_HEADER.lower():
            parts = str(header.get("value", "")).split()
            if len(parts) == 3:
                return parts[0], parts[1]
    return None


def feedback(detail: dict[str, Any]) -> tuple[str, str] | None:
    """(status, reason) the event gives the invoice's email, or None if it changes nothing."""
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
    def __init__(self, *, invoices: Invoices, events: Publisher) -> None:
        self._invoices, self._events = invoices, events

    def handle(self, detail: dict[str, Any]) -> dict[str, str] | None:
        """Record and publish the event's bounce or complaint; what was recorded, or None.
        Raises (so that the event is delivered again) when the store or the bus fails."""
        mail = detail.get("mail") or {}
        invoice, outcome = _invoice(mail), feedback(detail)
        if invoice is not None and detail.get("eventType") == "Delivery":
            # Settles an email not known to have left (a timeout, or a step killed while
            # SES had it): it did. Nothing to publish: InvoiceIssued was.
            message_id = str(mail.get("messageId", ""))
            if self._invoices.record_delivery(*invoice, message_id):
                return {"invoice": " ".join(invoice), "status": "sent"}
            return None
        if invoice is None or outcome is None:
            return None
        status, reason = outcome
        record = self._invoices.record_feedback(
            *invoice, str(mail.get("messageId", "")), status, reason
        )
        if record is None:
            return None
        if not record.failure_announced:
            announce_delivery_failure(self._events, self._invoices, record)
        return {"invoice_number": record.invoice_number, "status": status}
