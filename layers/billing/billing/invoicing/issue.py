"""The invoice run's Issue step, one batch at a time: close each account's period, render
each invoice before numbering, number the batch in one transaction, build and store each
invoice, announce the batch, and email each invoice with its PDF still in hand.

A failure for one account, expected or not, is reported for that account only (and
logged, an unexpected one with its traceback); the others go on. The step fails whole
only when the batch's shared work fails, and is retried or left to the next run, which
finishes whatever it stored (docs/invoicing.md, When a step fails whole)."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from billing.core.catalog import Account, Catalog, CatalogError
from billing.core.invoice import Invoice, invoice_number, utc_text
from billing.core.periods import Period
from billing.invoicing.closed import Closed, in_period_order
from billing.invoicing.delivery import Contents, Delivery, invoice_from_document
from billing.invoicing.document import render_invoice_pdf
from billing.invoicing.failures import PricedAgain, UnknownAccount, failed
from billing.invoicing.pacing import Pacer
from billing.invoicing.ports import Config, Ledgers, Log
from billing.invoicing.steps import Failure, IssueInput, IssueOutput, Item, Numbered, read
from billing.store.documents import document_key
from billing.store.errors import StoreError, VersionConflict
from billing.store.invoice_store import Claim, InvoiceRecord
from billing.store.mailer import NotSent

_LOG: Final = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finishing:
    """A stored invoice Issue is to announce and, if it was not, email: the batch's item
    with its number, its record, its account (None if no longer known), and the invoice
    and PDF for the email (held in hand, or read back from S3)."""

    done: Numbered
    record: InvoiceRecord
    account: Account | None
    contents: Contents


def _key(item: Item) -> tuple[str, str]:
    return item.account_id, item.period


def _numbered(item: Item, record: InvoiceRecord) -> Numbered:
    return Numbered(**item.model_dump(), invoice_number=record.invoice_number)


class IssueInvoices:
    def __init__(
        self, *, config: Config, ledgers: Ledgers, delivery: Delivery, log: Log = _LOG
    ) -> None:
        self._config, self._ledgers, self._delivery, self._log = config, ledgers, delivery, log
        # The records, documents and bus the invoice's email path also writes.
        self._invoices, self._documents = delivery.invoices, delivery.documents

    def handle(self, event: dict[str, Any], seconds_left: float | None = None) -> dict[str, Any]:
        """The task's event (a batch of the Map) as IssueInput, its outcome as JSON;
        `seconds_left` before the function is stopped (the pacer's deadline)."""
        return self.issue(read(IssueInput, event), seconds_left).model_dump(mode="json")

    def issue(self, batch: IssueInput, seconds_left: float | None = None) -> IssueOutput:
        """Issue the invoices of a batch, announce them, and email those not emailed yet;
        what it could not email goes to the Send step (`unsent`, with `skipped`).

        In passes over the whole batch, so that reads and announcements are batched: read
        the records and ledgers, close each account's period (from then on its events are
        rejected, none slip past), number all of them in one transaction, build and store
        each, announce the stored ones (and those an earlier attempt stored but did not
        announce), then email them with the PDF still in hand (Send would read both
        documents back). Emails go at the batch's pace; those it has no time left for go
        to Send unclaimed (billing.invoicing.pacing)."""
        pacer = self._delivery.pacing.pacer(seconds_left)
        outcome = IssueOutput()
        catalog = self._config.catalog()
        accounts = self._config.accounts([item.account_id for item in batch.items])
        # Nothing is written before this read: if it fails (throttled, say), the step
        # fails whole and the workflow's Retry runs it again.
        records = self._invoices.get_many([_key(item) for item in batch.items])
        to_close = [item for item in batch.items if not _stored(records.get(_key(item)))]
        self._ledgers.load(
            [item.account_id for item in to_close if item.account_id in accounts], fresh=True
        )  # one batched read; each close starts from it (and reads again after a conflict)
        unannounced = self._stored_before(batch.items, records, accounts, outcome)
        closed: list[Closed] = []
        for item in to_close:
            try:
                closed.append(self._close(item, catalog, accounts, batch.issued_at))
            except Exception as error:  # this account only; a later run closes it again
                outcome.failed.append(failed(self._log, item, error, "close"))
        # Render before numbering: a number is spent only on an invoice that has been built
        # and rendered, so an invoice that cannot be made leaves no hole in the sequence.
        closed = self._renderable(closed, catalog, batch.issued_at, outcome)
        # Of an account with prepaid credits, none later than a period that failed above.
        closed, held = in_period_order(closed, outcome.failed)
        outcome.failed += [failed(self._log, e.item, why, "number") for e, why in held]
        closed, numbered = self._number(closed, catalog, batch.issued_at, outcome)
        stored = self._build_and_store(closed, numbered, catalog, outcome)
        self._announce_and_email([*stored, *unannounced], outcome, pacer)
        return outcome

    def _stored_before(
        self,
        items: list[Item],
        records: dict[tuple[str, str], InvoiceRecord],
        accounts: dict[str, Account],
        outcome: IssueOutput,
    ) -> list[Finishing]:
        """The batch's invoices an earlier attempt stored: skipped if it announced them
        (Send emails any it did not), else to be announced (and emailed if need be)."""
        unannounced = []
        for item in items:
            record = records.get(_key(item))
            if record is None or not record.stored:
                continue
            done = _numbered(item, record)
            if record.announced:
                outcome.skipped.append(done)
            else:
                # Stored by an attempt that stopped before the bus accepted its event (or
                # before that was recorded): announce it now, email it if need be.
                account = accounts.get(item.account_id)
                contents = self._delivery.stored_documents(record)
                unannounced.append(Finishing(done, record, account, contents))
        return unannounced

    def _close(
        self,
        item: Item,
        catalog: Catalog,
        accounts: dict[str, Account],
        issued_at: datetime,
    ) -> Closed:
        """Close the item's period in its account's ledger; the period's usage."""
        account = accounts.get(item.account_id)
        if account is None:
            raise UnknownAccount(item.account_id)
        period = Period.parse(item.period)
        plan = catalog.plans_by_id.get(account.plan)
        if plan is None:
            raise CatalogError(f"plan {account.plan!r} is not in the catalog")
        # The ledger as last read or written by this store (the batch's read, or the close
        # of another of the account's periods just before): a stale one costs a conflict
        # and a fresh read, never a wrong close.
        ledger = self._ledgers.load([account.id])[account.id]
        usage = self._ledgers.close_period(account.id, str(period), issued_at, ledger=ledger)
        return Closed(item, account, plan, usage)

    def _renderable(
        self, closed: list[Closed], catalog: Catalog, issued_at: datetime, outcome: IssueOutput
    ) -> list[Closed]:
        """The closed invoices that build and render, each tried under a provisional number
        before any number is allocated; the others are reported failed, holding no number.

        The invoice is built again under its real number after numbering, from the same
        archived usage: only the number's digits differ, and they are ASCII, so what
        rendered here renders there (docs/invoicing.md, Gap-free numbers)."""
        renderable = []
        for entry in closed:
            try:
                invoice = entry.provisional(catalog, issued_at)
                render_invoice_pdf(invoice, entry.account, self._delivery.issuer)
            except Exception as error:  # this account only: its period stays closed, unnumbered
                outcome.failed.append(failed(self._log, entry.item, error, "render"))
                continue
            renderable.append(entry)
        return renderable

    def _number(
        self, closed: list[Closed], catalog: Catalog, issued_at: datetime, outcome: IssueOutput
    ) -> tuple[list[Closed], dict[tuple[str, str], InvoiceRecord]]:
        """Number the closed invoices in one transaction (a few, with credits to draw), the
        prepaid credits they draw taken in it; if it fails, all of them are reported failed
        (their periods stay closed, and a later run numbers them)."""
        requests = {
            (entry.account.id, entry.item.period): entry.credit_request(catalog, issued_at)
            for entry in closed
        }
        try:
            numbered = self._invoices.number(
                [(entry.account.id, entry.item.period) for entry in closed],
                issued_at,
                invoice_number,
                {key: request for key, request in requests.items() if request is not None},
            )
        except StoreError as error:
            outcome.failed.extend(
                failed(self._log, entry.item, error, "number") for entry in closed
            )
            return [], {}
        return closed, numbered

    def _build_and_store(
        self,
        closed: list[Closed],
        numbered: dict[tuple[str, str], InvoiceRecord],
        catalog: Catalog,
        outcome: IssueOutput,
    ) -> list[Finishing]:
        """Build and store each numbered invoice; those this run recorded as stored."""
        stored: list[Finishing] = []
        for entry in closed:
            record = numbered[(entry.account.id, entry.item.period)]
            done = _numbered(entry.item, record)
            try:
                invoice = entry.numbered(catalog, record)
                kept = self._store(record, invoice, entry.account)
            except Exception as error:
                # This account only. Its record stays `numbered` (or, if the failure came
                # after the mark, `stored` and unannounced): a later run finishes it under
                # the same number.
                outcome.failed.append(failed(self._log, entry.item, error, "build and store"))
                continue
            if kept is None:
                outcome.skipped.append(done)
            else:
                stored_record, stored_invoice, pdf = kept
                stored.append(
                    Finishing(done, stored_record, entry.account, _holding(stored_invoice, pdf))
                )
        return stored

    def _store(
        self, record: InvoiceRecord, invoice: Invoice, account: Account
    ) -> tuple[InvoiceRecord, Invoice, bytes] | None:
        """Store the documents and record them; the stored record, invoice and PDF (as
        stored: another attempt's, if one wrote them first), or None if a concurrent run
        recorded them first (and announces and emails it)."""
        json_key = document_key(account.id, record.period, record.invoice_number, "json")
        pdf_key = document_key(account.id, record.period, record.invoice_number, "pdf")
        body = json.dumps(invoice.to_json(), ensure_ascii=False, indent=2).encode()
        # Written once per number, never replaced: an attempt that finds them written (an
        # earlier attempt that stopped, or a racing run) records and emails those bytes.
        stored_body = self._documents.put_new(json_key, body, "application/json")
        if stored_body == body:
            pdf = self._documents.put_new(
                pdf_key,
                render_invoice_pdf(invoice, account, self._delivery.issuer),
                "application/pdf",
            )
        else:
            # Stored by an attempt under other prices (the catalog or account changed
            # since): the PDF must be that attempt's too, never this invoice's.
            pdf = self._stored_pdf(record, pdf_key)
        document = json.loads(stored_body)
        if stored_body != body:
            invoice = invoice_from_document(document)
        try:
            stored = self._invoices.mark_stored(
                record,
                total=document["total"],
                subtotal=document["subtotal"],
                tax=document["tax"],
                currency=invoice.currency,
                json_key=json_key,
                pdf_key=pdf_key,
                token=uuid.uuid4().hex,
            )
        except VersionConflict:
            return None
        return stored, invoice, pdf

    def _stored_pdf(self, record: InvoiceRecord, pdf_key: str) -> bytes:
        try:
            return self._documents.get(pdf_key)
        except StoreError:
            raise PricedAgain(
                f"invoice {record.invoice_number}'s JSON was stored from other prices than "
                "it has now (the catalog or the account changed since), and its PDF was "
                "not: nothing more is stored; it stays numbered until what changed is "
                "restored"
            ) from None

    def _announce_and_email(
        self, pending: list[Finishing], outcome: IssueOutput, pacer: Pacer
    ) -> None:
        # Announced together, ten to a PutEvents call. The record says `announced` only
        # once the bus accepted the event (the outbox): an event refused, or never sent
        # because the function stopped, is published by a later run.
        refused = self._delivery.events.publish_all(
            [("InvoiceIssued", announcement(each.record)) for each in pending]
        )
        for position, each in enumerate(pending):
            self._finish(each, refused.get(position), outcome, pacer)

    def _finish(
        self, pending: Finishing, refusal: str | None, outcome: IssueOutput, pacer: Pacer
    ) -> None:
        """Record the invoice's announcement if the bus accepted it, and email it if it was
        not: the claim of its email carries the announcement, so that it costs no write of
        its own; only an invoice with no email to claim is marked announced alone.

        Counted as issued by the run whose write records the announcement, as skipped when
        another run's did, as failed when the bus refused it (a later run announces it)."""
        record, account, done = pending.record, pending.account, pending.done
        token = uuid.uuid4().hex
        # The message is made before the claim: a step that stops while making it leaves no
        # claim behind, and the next run emails the invoice.
        emailing = not record.email_status and account is not None
        # No time left at SES's pace (or SES refused our account): announced alone, and
        # left to Send unclaimed.
        deferred = emailing and not pacer.may_send()
        raw = self._message_for(pending, outcome) if emailing and not deferred else None
        try:
            claim = self._claim_and_announce(record, raw, token, refusal)
        except Exception as error:
            # Not recorded as announced (a later run announces it again: consumers dedupe);
            # a claim the store may have taken expires, and is then reported (never sent
            # again automatically).
            outcome.failed.append(failed(self._log, done, error, "announce"))
            return
        if refusal is not None:
            outcome.failed.append(Failure(**done.model_dump(), error="StoreError", reason=refusal))
        elif claim.announced:
            outcome.issued.append(done)
        else:
            outcome.skipped.append(done)  # Send is given these anyway
        if not record.email_status and account is None:
            unknown = UnknownAccount(record.account_id)
            outcome.emails.failed.append(failed(self._log, done, unknown, "email"))
        # Send is given `skipped` anyway: the others it could not email go to `unsent`.
        for_send = refusal is not None or claim.announced
        if not claim.claimed or account is None or raw is None:
            if deferred and for_send:
                outcome.unsent.append(done)
            return
        try:
            self._delivery.deliver(done, record, account, token, raw, outcome.emails, pacer=pacer)
        except NotSent:
            # SES certainly did not take it and the claim is given back: the Send step
            # tries again.
            if for_send:
                outcome.unsent.append(done)
        except Exception as error:
            # As in Send: reported; a claim left behind expires and is reported then.
            outcome.emails.failed.append(failed(self._log, done, error, "email"))

    def _claim_and_announce(
        self, record: InvoiceRecord, raw: bytes | None, token: str, refusal: str | None
    ) -> Claim:
        """Claim the invoice's email if there is one to send, recording the announcement on
        the same write when the bus accepted it; else record the announcement alone. Whether
        this attempt holds the email, and whether its write recorded the announcement."""
        claim = (
            self._invoices.claim_email(
                record, self._delivery.now(), token, announced=refusal is None
            )
            if raw is not None
            else Claim(claimed=False, announced=False)
        )
        if refusal is not None:
            return Claim(claimed=claim.claimed, announced=False)
        if claim.claimed:
            return claim
        return Claim(claimed=False, announced=self._invoices.mark_announced(record))

    def _message_for(self, pending: Finishing, outcome: IssueOutput) -> bytes | None:
        """The email of an invoice Issue finishes; None, reported, if it cannot be made."""
        assert pending.account is not None
        try:
            return self._delivery.message(pending.account, pending.contents)
        except Exception as error:  # nothing claimed: the next run tries again
            outcome.emails.failed.append(failed(self._log, pending.done, error, "make the email"))
            return None


def _stored(record: InvoiceRecord | None) -> bool:
    return record is not None and record.stored


def _holding(invoice: Invoice, pdf: bytes) -> Contents:
    return lambda: (invoice, pdf)


def announcement(record: InvoiceRecord) -> dict[str, Any]:
    """InvoiceIssued's detail, from the stored record alone: the same, byte for byte,
    whichever run or attempt publishes it. Events are delivered at least once (an attempt
    that stops after PutEvents and before recording it announces again), so `event_id`
    is stable per invoice and consumers dedupe on it (or on the invoice number)."""
    return {
        "event_id": f"InvoiceIssued:{record.invoice_number}",
        "invoice_number": record.invoice_number,
        "account_id": record.account_id,
        "period": record.period,
        "currency": record.currency,
        "subtotal": record.subtotal,
        "tax": record.tax,
        "total": record.total,
        "issued_at": utc_text(datetime.fromisoformat(record.issued_at)),
        "json_key": record.json_key,
        "pdf_key": record.pdf_key,
    }
