"""The invoice run's Send step: email a batch's stored invoices not emailed yet, at most
once each, and finish what an earlier attempt left. Also an operator's resend (`billing
invoices resend`), which reaches the same function, and an operator's void (`billing
invoices void`) or correction (`billing rerate --apply` on an invoiced period), which it
hands to the credit notes' service it is given (billing.corrections)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any, Final

from billing.core.catalog import Account
from billing.invoicing.delivery import FAILURE_EVENTS, Delivery
from billing.invoicing.failures import UnknownAccount, failed
from billing.invoicing.pacing import Pacer
from billing.invoicing.ports import Config, Log
from billing.invoicing.steps import (
    Emails,
    Failure,
    Numbered,
    ResendInput,
    ResendOutput,
    ResendRequest,
    SendInput,
    SendOutput,
    read,
)
from billing.store.invoice_store import InvoiceRecord
from billing.store.mailer import NotSent

_LOG: Final = logging.getLogger(__name__)


class ResendRefused(ValueError):
    """The invoice cannot be resent now: not stored yet, its account unknown, or an email of
    it is being sent at this moment."""


# The credit notes' service (billing.corrections.credit_notes.CreditNotes.handle): this
# function holds the grants and the sender's settings a credit note is issued with.
Corrections = Callable[[dict[str, Any]], dict[str, Any]]


class SendInvoices:
    def __init__(
        self,
        *,
        config: Config,
        delivery: Delivery,
        log: Log = _LOG,
        corrections: Corrections | None = None,
    ) -> None:
        self._config, self._delivery, self._log = config, delivery, log
        self._invoices = delivery.invoices
        self._corrections = corrections

    def handle(self, event: dict[str, Any], seconds_left: float | None = None) -> dict[str, Any]:
        """The task's event as SendInput (from the workflow) or ResendInput (an operator's
        `{"resend": {...}}`), its outcome as JSON; `seconds_left` before the function is
        stopped (the pacer's deadline)."""
        if isinstance(event, dict) and "resend" in event:
            return self.resend(read(ResendInput, event).resend).model_dump(mode="json")
        corrections = self._corrections
        if isinstance(event, dict) and event.keys() & {"void", "correct"} and corrections:
            return corrections(event)
        return self.send(read(SendInput, event), seconds_left).model_dump(mode="json")

    def send(self, batch: SendInput, seconds_left: float | None = None) -> SendOutput:
        """Email the batch's stored invoices not emailed yet, at most once each; the
        outcome includes the emails Issue sent (`emails`). Also finishes what an earlier
        attempt left: a claim whose holder stopped (expired), and an InvoiceDeliveryFailed
        the bus did not take.

        Emails go at the batch's pace (billing.invoicing.pacing). Those not sent for now
        (no time left, SES still throttling, our account paused) are `failed` with their
        NotSent error's name, unclaimed: pending, for the next run."""
        pacer = self._delivery.pacing.pacer(seconds_left)
        before = batch.emails
        outcome = SendOutput(
            sent=list(before.sent), undelivered=list(before.undelivered), failed=list(before.failed)
        )
        items = [*batch.issued, *batch.skipped]
        accounts = self._config.accounts([item.account_id for item in items])
        records = self._invoices.get_many([(item.account_id, item.period) for item in items])
        for item in items:
            try:
                record = records.get((item.account_id, item.period))
                self._send_one(item, record, accounts, outcome, pacer)
            except Exception as error:  # this invoice only; the others are still sent
                outcome.failed.append(failed(self._log, item, error, "email"))
        return outcome

    def _send_one(
        self,
        item: Numbered,
        record: InvoiceRecord | None,
        accounts: dict[str, Account],
        outcome: Emails,
        pacer: Pacer,
    ) -> None:
        if record is None or not record.stored:
            return  # not issued
        if record.email_status in FAILURE_EVENTS and not record.failure_announced:
            self._delivery.announce_failure(item, record, outcome)
            return
        if record.email_status == "sending":
            self._expire_claim(item, record, outcome)
            return
        if record.email_status:
            return  # its email was sent, or tried
        account = accounts.get(item.account_id)
        if account is None:
            raise UnknownAccount(item.account_id)
        if not pacer.may_send():  # pending, unclaimed: not worth a warning each
            outcome.failed.append(Failure.of(item, pacer.not_sent()))
            return
        raw = self._delivery.message(account, self._delivery.stored_documents(record))
        token = uuid.uuid4().hex
        if self._invoices.claim_email(record, self._delivery.now(), token).claimed:
            self._delivery.deliver(item, record, account, token, raw, outcome, pacer=pacer)

    def _expire_claim(self, item: Numbered, record: InvoiceRecord, outcome: Emails) -> None:
        """A claim older than the lease belongs to a step that stopped while SES had the
        message (the message is made before the claim): it may have left, so it is never
        sent again automatically. It is recorded `unknown` and reported, for an operator to
        check and resend (`billing invoices resend`). A younger claim may be live: left be."""
        if not self._delivery.claim_expired(record):
            return
        reason = "the step sending it stopped: it may or may not have left"
        if self._invoices.expire_claim(record, reason):
            outcome.failed.append(
                Failure(**item.model_dump(), error="DeliveryUnknown", reason=reason)
            )

    def resend(self, request: ResendRequest) -> ResendOutput:
        """An operator's resend (`billing invoices resend`): email the stored invoice again,
        byte for byte as stored, whatever became of its last email (undelivered, unknown,
        bounced, complained, or sent and lost by the customer). Refused (ResendRefused)
        while an email of it may be in flight (a claim younger than the lease)."""
        key = (request.account_id, request.period)
        record = self._invoices.get_many([key]).get(key)
        if record is None or not record.stored:
            raise ResendRefused(
                f"the invoice of {key[0]} for {key[1]} is not stored yet: the next invoice "
                "run finishes it"
            )
        if record.email_status == "sending" and not self._delivery.claim_expired(record):
            raise ResendRefused(f"{record.invoice_number} is being emailed right now")
        account = self._config.accounts([key[0]]).get(key[0])
        if account is None:
            raise ResendRefused(f"account {key[0]!r} is not known")
        raw = self._delivery.message(account, self._delivery.stored_documents(record))
        token = uuid.uuid4().hex
        if not self._invoices.reclaim_email(record, self._delivery.now(), token):
            raise ResendRefused(f"{record.invoice_number}'s email changed meanwhile: try again")
        item = Numbered(account_id=key[0], period=key[1], invoice_number=record.invoice_number)
        outcome = Emails()
        try:
            self._delivery.deliver(item, record, account, token, raw, outcome, resend=True)
        except NotSent as error:
            return ResendOutput(**item.model_dump(), status="not_sent", reason=str(error))
        if outcome.sent:
            return ResendOutput(
                **item.model_dump(), status="sent", message_id=outcome.sent[0].message_id
            )
        if outcome.undelivered:
            reason = outcome.undelivered[0].reason
            return ResendOutput(**item.model_dump(), status="undelivered", reason=reason)
        return ResendOutput(**item.model_dump(), status="unknown", reason=outcome.failed[0].reason)
