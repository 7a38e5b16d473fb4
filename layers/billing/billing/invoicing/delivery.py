"""An invoice's email, as Issue and Send both send it: the message made from the stored
invoice and PDF, its one send under the claim on its record (at the batch's pace, SES's
throttling waited out), and the event of a failed delivery (through the same outbox as
InvoiceIssued)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from billing.core.catalog import Account
from billing.core.invoice import CreditDraw, Invoice, InvoiceLine, PhaseMark
from billing.core.money import Money
from billing.core.periods import Period
from billing.invoicing.document import Issuer
from billing.invoicing.message import invoice_email
from billing.invoicing.pacing import NoTimeToSend, Pacer, Pacing
from billing.invoicing.ports import Documents, Invoices, Publisher, Sender
from billing.invoicing.steps import Emails, Failure, Numbered, Sent, Undelivered
from billing.settings import EMAIL_CLAIM_LEASE_SECONDS
from billing.store.errors import StoreError
from billing.store.invoice_store import InvoiceRecord
from billing.store.mailer import (
    DailyQuotaReached,
    DeliveryUnknown,
    NotSent,
    SendingUnavailable,
    SendThrottled,
    Undeliverable,
)
from billing.store.retry import SES_THROTTLED

EMAIL_CLAIM_LEASE: Final = timedelta(seconds=EMAIL_CLAIM_LEASE_SECONDS)

# An email pending: certainly not sent and not claimed, left for the Send step, the
# workflow's retry or the next run. A step reports it in `failed` under one of these error
# names (SES still throttling, its daily quota, our sending account refused, unreachable,
# or no time left at SES's pace); the run's report counts these as pending, not failed.
PENDING_EMAIL_ERRORS: Final = frozenset(
    kind.__name__
    for kind in (NotSent, SendThrottled, DailyQuotaReached, SendingUnavailable, NoTimeToSend)
)

# The invoice and its PDF for its email: held in hand, or read back from S3 when called.
Contents = Callable[[], tuple[Invoice, bytes]]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Delivery:
    """The stores an invoice's email goes through, and the issuer it is sent as. `clock`
    is the wall clock email claims expire by (not the run's clock, which a rerun for a past
    period repeats); `pacing` how fast a step sends (billing.invoicing.pacing)."""

    invoices: Invoices
    documents: Documents
    events: Publisher
    mailer: Sender
    issuer: Issuer
    clock: Callable[[], datetime] | None = None
    pacing: Pacing = field(default_factory=Pacing)

    def now(self) -> datetime:
        return (self.clock or wall_clock)()

    def claim_expired(self, record: InvoiceRecord) -> bool:
        if record.email_claimed_at is None:
            return True  # claimed before claims had a time: its step is long gone
        return datetime.fromisoformat(record.email_claimed_at) + EMAIL_CLAIM_LEASE <= self.now()

    def stored_documents(self, record: InvoiceRecord) -> Contents:
        """Reads the stored invoice and PDF back, when its email needs them."""

        def read() -> tuple[Invoice, bytes]:
            document = json.loads(self.documents.get(str(record.json_key)))
            pdf = self.documents.get(str(record.pdf_key))
            return invoice_from_document(document), pdf

        return read

    def message(self, account: Account, contents: Contents) -> bytes:
        """The invoice's email as SES sends it, from the stored invoice and PDF."""
        invoice, pdf = contents()
        return invoice_email(invoice, account, pdf, self.issuer)

    def deliver(
        self,
        item: Numbered,
        record: InvoiceRecord,
        account: Account,
        token: str,
        raw: bytes,
        outcome: Emails,
        *,
        resend: bool = False,
        pacer: Pacer | None = None,
    ) -> None:
        """Send the invoice's one email under the claim `token` names, at `pacer`'s turn,
        and add what became of it to `outcome` (sent, undelivered or failed). Raises
        NotSent, with the claim given back (a resend's: the email state as it was), when
        the message certainly did not leave."""
        try:
            message_id = self._send(raw, account.email, pacer or self.pacing.pacer())
        except Undeliverable as error:
            self.invoices.email_result(record, "undelivered", reason=str(error))
            outcome.undelivered.append(Undelivered(**item.model_dump(), reason=str(error)))
            undelivered = replace(
                record, email_status="undelivered", email_reason=str(error), email_token=token
            )
            self.announce_failure(item, undelivered, outcome)
            return
        except NotSent:
            if resend:
                self.invoices.restore_email(record, token)  # as if never tried
            else:
                self.invoices.release_email(record, token)  # nothing left: a retry may send
            raise
        except DeliveryUnknown as error:
            # Perhaps sent: never again automatically. The operator sees it in the report
            # and on the record, and resends by hand if the customer did not get it.
            self.invoices.email_result(record, "unknown", reason=str(error))
            outcome.failed.append(
                Failure(**item.model_dump(), error="DeliveryUnknown", reason=str(error))
            )
            return
        self.invoices.email_result(record, "sent", message_id=message_id)
        outcome.sent.append(Sent(**item.model_dump(), message_id=message_id))

    def _send(self, raw: bytes, to: str, pacer: Pacer) -> str:
        """The message through SES at the pacer's turns: its SES message id. Throttling is
        waited out (SES_THROTTLED: it certainly did not leave, so sending again is safe,
        and the caller's claim stays held meanwhile) while the pacer's deadline allows;
        anything else, and throttling after the last attempt, is raised. A send whose
        outcome is not known (DeliveryUnknown) is never made again."""

        def attempt() -> str:
            if not pacer.take_turn():
                raise NoTimeToSend()
            return self.mailer.send_raw(raw, to)

        try:
            return SES_THROTTLED.call(
                attempt, SendThrottled, sleep=pacer.sleep, in_time=pacer.can_wait
            )
        except NotSent as refusal:
            if refusal.every_send:  # the account's: the step's other sends would fail alike
                pacer.stop(refusal)
            raise

    def announce_failure(self, item: Numbered, record: InvoiceRecord, outcome: Emails) -> None:
        """Publish InvoiceDeliveryFailed for an undelivered invoice, through the same outbox
        as InvoiceIssued: the record's `failure_announced` turns true only once the bus took
        it, and a later run publishes it if it did not (consumers dedupe on `event_id`)."""
        try:
            announce_delivery_failure(self.events, self.invoices, record)
        except StoreError as error:
            outcome.failed.append(Failure.of(item, error))


# The event each failed email state publishes: SES refused the address, or the email
# bounced for good (`undelivered`, `bounced`), or the customer marked it as spam.
FAILURE_EVENTS: Final = {
    "undelivered": "InvoiceDeliveryFailed",
    "bounced": "InvoiceDeliveryFailed",
    "complained": "InvoiceEmailComplaint",
}


def delivery_failure(record: InvoiceRecord) -> dict[str, Any]:
    """The detail of the event FAILURE_EVENTS names for the record's email state, from the
    record alone (as InvoiceIssued's): the same whichever attempt publishes it. `event_id`
    names the email attempt (its claim token), so that a resent invoice failing again is a
    new event. A credit note's or an adjustment's names its number and its invoice's."""
    kind = FAILURE_EVENTS[str(record.email_status)]
    return {
        "event_id": f"{kind}:{record.invoice_number}:{record.email_token or ''}",
        **record.document_numbers(),
        "account_id": record.account_id,
        "period": record.period,
        "status": record.email_status,
        "reason": record.email_reason or "",
    }


class _FailureOutbox(Protocol):
    def mark_failure_announced(self, record: InvoiceRecord) -> None: ...


class _OnePublisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


def announce_delivery_failure(
    events: _OnePublisher, invoices: _FailureOutbox, record: InvoiceRecord
) -> None:
    """Publish the record's failed-email event, then close its outbox (`failure_announced`);
    StoreError, with the outbox left open for a later attempt, if the bus refused it."""
    events.publish(FAILURE_EVENTS[str(record.email_status)], delivery_failure(record))
    invoices.mark_failure_announced(record)


def invoice_from_document(document: dict[str, Any]) -> Invoice:
    """Enough of the stored invoice for its email (number, period, lines, totals)."""
    currency = document["currency"]
    lines = tuple(
        InvoiceLine(
            kind=line["kind"],
            description=line["description"],
            quantity=Decimal(line["quantity"]),
            amount=Money(Decimal(line["amount"]), currency),
            phase=_phase(line),
        )
        for line in document["lines"]
    )
    return Invoice(
        invoice_number=document["invoice_number"],
        account_id=document["account_id"],
        period=Period.parse(document["period"]),
        period_start=datetime.fromisoformat(document["period_start"]),
        period_end=datetime.fromisoformat(document["period_end"]),
        issued_at=datetime.fromisoformat(document["issued_at"]),
        currency=currency,
        lines=lines,
        subtotal=Money(Decimal(document["subtotal"]), currency),
        tax=Money(Decimal(document["tax"]), currency),
        total=Money(Decimal(document["total"]), currency),
        credits=tuple(
            CreditDraw(each["id"], Money(Decimal(each["amount"]), currency))
            for each in document.get("credits", [])
        ),
    )


def _phase(line: dict[str, Any]) -> PhaseMark | None:
    """A stored line's phase (CONTRACT.md 2a): its plan id stands for the plan's name."""
    if "plan" not in line:
        return None
    first, end = date.fromisoformat(line["from"]), date.fromisoformat(line["to"])
    return PhaseMark(line["plan"], line["plan"], first, end)
