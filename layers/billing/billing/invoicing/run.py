"""The invoice run's three steps, behind the workflow's tasks: find what is due, issue
invoices (close, number, build, store, announce), and email them, each exactly once.

Each step takes and returns plain JSON-able dicts (the workflow passes them along). A
failure for one account, expected or not, is caught and reported with its reason; it never
stops the others. A step fails whole only when the batch's shared work fails (its reads,
or an error the store cannot place on one account), and is retried or left to the next
run, which finishes whatever it stored (see docs/invoicing.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.events import parse_timestamp
from billing.core.invoice import Invoice, InvoiceLine, build_invoice, invoice_number, utc_text
from billing.core.money import Money
from billing.core.periods import Period, PeriodError
from billing.core.usage import MeterUsage
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing.invoicing.message import invoice_email
from billing.settings import EMAIL_CLAIM_LEASE_SECONDS
from billing.store.documents import document_key
from billing.store.errors import StoreError, VersionConflict
from billing.store.invoice_store import Claim, InvoiceRecord
from billing.store.mailer import DeliveryUnknown, NotSent, Undeliverable

# Accounts per Map iteration: as many as one numbering transaction takes (99 records and
# the sequence item, DynamoDB's 100-item limit), so a batch's reads, numbers and events
# are shared by as many invoices as can be. A batch of 99 takes seconds on AWS.
BATCH_SIZE: Final = 99
DEFAULT_GRACE: Final = timedelta(hours=1)
EMAIL_CLAIM_LEASE: Final = timedelta(seconds=EMAIL_CLAIM_LEASE_SECONDS)
# The sequence an invoice is rendered under before it has a number: as wide as any real one.
_PROVISIONAL_SEQUENCE: Final = 999_999_999


class Config(Protocol):
    def catalog(self) -> Catalog: ...
    def all_accounts(self) -> list[Account]: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class Ledgers(Protocol):
    def load(self, account_ids: Sequence[str], *, fresh: bool = False) -> dict[str, Any]: ...
    def close_period(
        self, account_id: str, period: str, closed_at: datetime, *, ledger: Any = None
    ) -> dict[str, MeterUsage]: ...
    def open_periods(self, ledger: Any) -> set[str]: ...


class Invoices(Protocol):
    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InvoiceRecord]: ...
    def all_records(self) -> list[InvoiceRecord]: ...
    def number(
        self, keys: list[tuple[str, str]], issued_at: datetime, format_number: Any
    ) -> dict[tuple[str, str], InvoiceRecord]: ...
    def mark_stored(
        self,
        record: InvoiceRecord,
        *,
        total: str,
        subtotal: str,
        tax: str,
        currency: str,
        json_key: str,
        pdf_key: str,
        token: str,
    ) -> InvoiceRecord: ...
    def mark_announced(self, record: InvoiceRecord) -> bool: ...
    def claim_email(
        self, record: InvoiceRecord, at: datetime, token: str, *, announced: bool = False
    ) -> Claim: ...
    def release_email(self, record: InvoiceRecord, token: str) -> None: ...
    def expire_claim(self, record: InvoiceRecord, reason: str) -> bool: ...
    def reclaim_email(self, record: InvoiceRecord, at: datetime, token: str) -> bool: ...
    def restore_email(self, record: InvoiceRecord, token: str) -> None: ...
    def mark_failure_announced(self, record: InvoiceRecord) -> None: ...
    def email_result(
        self, record: InvoiceRecord, status: str, *, message_id: str = "", reason: str = ""
    ) -> None: ...


class Documents(Protocol):
    def put_new(self, key: str, body: bytes, content_type: str) -> bytes: ...
    def get(self, key: str) -> bytes: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...
    def publish_all(self, events: Sequence[tuple[str, dict[str, Any]]]) -> dict[int, str]: ...


class Sender(Protocol):
    def send_raw(self, raw: bytes, to: str) -> str: ...


def _failure(item: dict[str, str], error: Exception) -> dict[str, Any]:
    return {**item, "error": type(error).__name__, "reason": str(error)}


class RunInputError(ValueError):
    """The run's input (period, clock) cannot be used."""


class ResendRefused(ValueError):
    """The invoice cannot be resent now: not stored yet, its account unknown, or an email of
    it is being sent at this moment."""


@dataclass(frozen=True)
class RunClock:
    now: datetime
    period: Period | None

    @classmethod
    def from_input(cls, event: dict[str, Any]) -> RunClock:
        try:
            now = parse_timestamp(event["now"]).at
            period = Period.parse(event["period"]) if event.get("period") else None
        except (KeyError, TypeError, ValueError, PeriodError) as error:
            raise RunInputError(f"invoice run input: {error}") from None
        return cls(now, period)


class UnknownAccount(KeyError):
    """An invoice's account is not in the stored accounts (its profile was deleted)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(account_id)
        self.account_id = account_id

    def __str__(self) -> str:
        return f"account {self.account_id!r} is not known"


def _item(account_id: str, period: Period) -> dict[str, str]:
    return {"account_id": account_id, "period": str(period)}


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["account_id"], item["period"]


def _stored(record: InvoiceRecord | None) -> bool:
    return record is not None and record.stored


class InvoiceRun:
    def __init__(
        self,
        *,
        config: Config,
        ledgers: Ledgers,
        invoices: Invoices,
        documents: Documents,
        events: Publisher,
        mailer: Sender,
        issuer: Issuer,
        grace: timedelta = DEFAULT_GRACE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._config, self._ledgers, self._invoices = config, ledgers, invoices
        self._documents, self._events, self._mailer = documents, events, mailer
        self._issuer, self._grace, self._clock = issuer, grace, clock

    # --- 1. what is due -------------------------------------------------------------------

    def due(self, event: dict[str, Any]) -> dict[str, Any]:
        """The (account, period) pairs to invoice, in batches, and those already done.

        A period is due once it ended, in the account's zone, more than the grace time
        ago. Without a period in the input, every ended period the account's subscription
        overlaps, from its first (the one holding `start`; without a start, the earliest an
        invoice or its ledger shows) to its latest, that has no finished invoice: never
        invoiced, or left unfinished by a failed run (not stored, not announced, not
        emailed, a delivery failure not announced)."""
        clock = RunClock.from_input(event)
        accounts = self._config.all_accounts()
        # Open and closed periods in the ledgers matter only when no period is given.
        ledgers = {} if clock.period else self._ledgers.load([a.id for a in accounts], fresh=True)
        records: dict[str, dict[str, InvoiceRecord]] = {}
        for known in self._invoices.all_records():
            records.setdefault(known.account_id, {})[known.period] = known
        pending: list[dict[str, str]] = []
        skipped = 0
        for account in accounts:
            mine = records.pop(account.id, {})
            for period in self._due_periods(account, clock, ledgers.get(account.id), mine):
                record = mine.get(str(period))
                if record is not None and record.finished:
                    skipped += 1
                else:
                    pending.append(_item(account.id, period))
        # Unfinished invoices of accounts no longer in the accounts file: listed, so that
        # Issue reports each one (its account is not known) on every run until resolved.
        for account_id, orphans in sorted(records.items()):
            for period_text, record in sorted(orphans.items()):
                if not record.finished and clock.period in (None, Period.parse(period_text)):
                    pending.append(_item(account_id, Period.parse(period_text)))
        batches = [pending[i : i + BATCH_SIZE] for i in range(0, len(pending), BATCH_SIZE)]
        return {"issued_at": utc_text(clock.now), "batches": batches, "skipped": skipped}

    def _due_periods(
        self,
        account: Account,
        clock: RunClock,
        ledger: Any,
        records: dict[str, InvoiceRecord],
    ) -> list[Period]:
        tz = account.zone
        ended = clock.now - self._grace
        if clock.period is not None:
            candidates = {clock.period}
        else:
            # Every period the subscription overlaps is owed one invoice (CONTRACT.md 3),
            # from its first: the one holding `start`, or without a start the earliest an
            # invoice or the ledger shows. The latest ended period is always looked at (and
            # counted as skipped if it is done); an earlier one only while it is not done.
            latest = Period.containing(ended, tz).previous()
            shown = {Period.parse(p) for p in records}
            if ledger is not None:
                open_periods = self._ledgers.open_periods(ledger)
                shown |= {Period.parse(p) for p in (*open_periods, *ledger.closed)}
            if account.start is not None:
                first = Period.of(account.start.year, account.start.month)
            else:
                first = min(shown | {latest})
            candidates = {latest}
            period = first
            while period < latest:
                record = records.get(str(period))
                if record is None or not record.finished:
                    candidates.add(period)
                period = period.next()
        # A numbered invoice is owed its finish under its number whatever its account
        # became since (an `end` moved before the period, say): it is never dropped here,
        # else its number would be a hole no run reports.
        unfinished = {Period.parse(p) for p, r in records.items() if not r.finished}
        if clock.period is not None:
            unfinished &= candidates
        owed = {p for p in candidates if p.end(tz) <= ended and account.overlaps(p)}
        return sorted(owed | unfinished)

    # --- 2. issue -------------------------------------------------------------------------

    def issue(self, event: dict[str, Any]) -> dict[str, Any]:
        """Issue the invoices of a batch, announce them, and email those not emailed yet.

        {"issued", "skipped", "failed": [...], "emails": {"sent", "undelivered", "failed"},
        "unsent": [...]}: what it could not email goes to the Send step, with "skipped".

        In passes over the whole batch, so that reads and announcements are batched: read
        the records and ledgers, close each account's period (from then on its events are
        rejected, none slip past), number all of them in one transaction, build and store
        each, announce the stored ones (and those an earlier attempt stored but did not
        announce), then email them with the PDF still in hand (Send would read both
        documents back). A failure for one account, expected or not, is reported for that
        account only; the others go on."""
        issued_at = parse_timestamp(event["issued_at"]).at
        outcome: dict[str, Any] = {
            "issued": [],
            "skipped": [],
            "failed": [],
            "emails": {"sent": [], "undelivered": [], "failed": []},
            "unsent": [],
        }
        catalog = self._config.catalog()
        items = event["items"]
        accounts = self._config.accounts([item["account_id"] for item in items])
        # Nothing is written before this read: if it fails (throttled, say), the step
        # fails whole and the workflow's Retry runs it again.
        records = self._invoices.get_many([_key(item) for item in items])
        to_close = [item for item in items if not _stored(records.get(_key(item)))]
        self._ledgers.load(
            [item["account_id"] for item in to_close if item["account_id"] in accounts],
            fresh=True,
        )  # one batched read; each close starts from it (and reads again after a conflict)
        closed: list[tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]]] = []
        unannounced: list[_Finishing] = []
        for item in items:
            record = records.get(_key(item))
            if record is not None and record.stored:
                done = {**item, "invoice_number": record.invoice_number}
                if record.announced:
                    outcome["skipped"].append(done)  # Send emails it if it was not
                else:
                    # Stored by an attempt that stopped before the bus accepted its event
                    # (or before that was recorded): announce it now, email it if need be.
                    unannounced.append(
                        _Finishing(
                            done,
                            record,
                            accounts.get(item["account_id"]),
                            self._stored_documents(record),
                        )
                    )
                continue
            try:
                closed.append(self._close(item, catalog, accounts, issued_at))
            except Exception as error:  # this account only; a later run closes it again
                outcome["failed"].append(_failure(item, error))
        # Render before numbering: a number is spent only on an invoice that has been built
        # and rendered, so an invoice that cannot be made leaves no hole in the sequence.
        closed = self._renderable(closed, catalog, issued_at, outcome)
        try:
            numbered = self._invoices.number(
                [(account.id, item["period"]) for item, account, _, _ in closed],
                issued_at,
                invoice_number,
            )
        except StoreError as error:
            outcome["failed"].extend(_failure(item, error) for item, *_ in closed)
            numbered = {}
            closed = []
        stored = self._build_and_store(closed, numbered, catalog, outcome)
        self._announce_and_email([*stored, *unannounced], outcome)
        return outcome

    def _renderable(
        self,
        closed: list[tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]]],
        catalog: Catalog,
        issued_at: datetime,
        outcome: dict[str, Any],
    ) -> list[tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]]]:
        """The closed invoices that build and render, each tried under a provisional number
        before any number is allocated; the others are reported failed, holding no number.

        The invoice is built again under its real number after numbering, from the same
        archived usage: only the number's digits differ, and they are ASCII, so what
        rendered here renders there (docs/invoicing.md, Gap-free numbers)."""
        renderable = []
        for entry in closed:
            item, account = entry[0], entry[1]
            try:
                provisional = invoice_number(_PROVISIONAL_SEQUENCE, issued_at)
                invoice = _build(entry, catalog, provisional, issued_at)
                render_invoice_pdf(invoice, account, self._issuer)
            except Exception as error:  # this account only: its period stays closed, unnumbered
                outcome["failed"].append(_failure(item, error))
                continue
            renderable.append(entry)
        return renderable

    def _build_and_store(
        self,
        closed: list[tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]]],
        numbered: dict[tuple[str, str], InvoiceRecord],
        catalog: Catalog,
        outcome: dict[str, Any],
    ) -> list[_Finishing]:
        """Build and store each numbered invoice; those this run recorded as stored."""
        stored: list[_Finishing] = []
        for item, account, plan, usage in closed:
            record = numbered[(account.id, item["period"])]
            done = {**item, "invoice_number": record.invoice_number}
            try:
                invoice = _build(
                    (item, account, plan, usage),
                    catalog,
                    record.invoice_number,
                    datetime.fromisoformat(record.issued_at),
                )
                kept = self._store(record, invoice, account)
            except Exception as error:
                # This account only. Its record stays `numbered` (or, if the failure came
                # after the mark, `stored` and unannounced): a later run finishes it under
                # the same number.
                outcome["failed"].append(_failure(item, error))
                continue
            if kept is None:
                outcome["skipped"].append(done)
            else:
                stored_record, stored_invoice, pdf = kept
                stored.append(
                    _Finishing(done, stored_record, account, _holding(stored_invoice, pdf))
                )
        return stored

    def _announce_and_email(
        self,
        pending: list[_Finishing],
        outcome: dict[str, Any],
    ) -> None:
        # Announced together, ten to a PutEvents call. The record says `announced` only
        # once the bus accepted the event (the outbox): an event refused, or never sent
        # because the function stopped, is published by a later run.
        refused = self._events.publish_all(
            [("InvoiceIssued", announcement(each.record)) for each in pending]
        )
        for position, each in enumerate(pending):
            self._finish(each, refused.get(position), outcome)

    def _finish(
        self,
        pending: _Finishing,
        refusal: str | None,
        outcome: dict[str, Any],
    ) -> None:
        """Record the invoice's announcement if the bus accepted it, and email it if it was
        not: the claim of its email carries the announcement, so that it costs no write of
        its own; only an invoice with no email to claim is marked announced alone.

        Counted as issued by the run whose write records the announcement, as skipped when
        another run's did, as failed when the bus refused it (a later run announces it)."""
        record, account, done = pending.record, pending.account, pending.done
        emailing = not record.email_status and account is not None
        token = uuid.uuid4().hex
        # The message is made before the claim: a step that stops while making it leaves no
        # claim behind, and the next run emails the invoice.
        raw = self._message_for(pending, outcome) if emailing else None
        try:
            claim = (
                self._invoices.claim_email(record, self._now(), token, announced=refusal is None)
                if raw is not None
                else Claim(claimed=False, announced=False)
            )
            if refusal is not None:
                announced = False
            elif claim.claimed:
                announced = claim.announced
            else:
                announced = self._invoices.mark_announced(record)
        except Exception as error:
            # Not recorded as announced (a later run announces it again: consumers dedupe);
            # a claim the store may have taken expires, and is then reported (never sent
            # again automatically).
            outcome["failed"].append(_failure(done, error))
            return
        if refusal is not None:
            outcome["failed"].append({**done, "error": "StoreError", "reason": refusal})
        elif announced:
            outcome["issued"].append(done)
        else:
            outcome["skipped"].append(done)  # Send is given these anyway
        if not record.email_status and account is None:
            unknown = UnknownAccount(record.account_id)
            outcome["emails"]["failed"].append(_failure(done, unknown))
        if not claim.claimed or account is None or raw is None:
            return
        try:
            self._deliver(done, record, account, token, raw, outcome["emails"])
        except NotSent:
            # SES certainly did not take it and the claim is given back: the Send step
            # tries again.
            if refusal is not None or announced:
                outcome["unsent"].append(done)
            return
        except Exception as error:
            # As in Send: reported; a claim left behind expires and is reported then.
            outcome["emails"]["failed"].append(_failure(done, error))

    def _message_for(self, pending: _Finishing, outcome: dict[str, Any]) -> bytes | None:
        """The email of an invoice Issue finishes; None, reported, if it cannot be made."""
        assert pending.account is not None
        try:
            return self._message(pending.account, pending.contents)
        except Exception as error:  # nothing claimed: the next run tries again
            outcome["emails"]["failed"].append(_failure(pending.done, error))
            return None

    def _close(
        self,
        item: dict[str, str],
        catalog: Catalog,
        accounts: dict[str, Account],
        issued_at: datetime,
    ) -> tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]]:
        """Close the item's period in its account's ledger; the period's usage."""
        account = accounts.get(item["account_id"])
        if account is None:
            raise UnknownAccount(item["account_id"])
        period = Period.parse(item["period"])
        plan = catalog.plans_by_id.get(account.plan)
        if plan is None:
            raise CatalogError(f"plan {account.plan!r} is not in the catalog")
        # The ledger as last read or written by this store (the batch's read, or the close
        # of another of the account's periods just before): a stale one costs a conflict
        # and a fresh read, never a wrong close.
        ledger = self._ledgers.load([account.id])[account.id]
        usage = self._ledgers.close_period(account.id, str(period), issued_at, ledger=ledger)
        return item, account, plan, usage

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
        pdf = self._documents.put_new(
            pdf_key, render_invoice_pdf(invoice, account, self._issuer), "application/pdf"
        )
        document = json.loads(stored_body)
        if stored_body != body:
            invoice = _invoice_from_document(document)
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

    def _stored_documents(self, record: InvoiceRecord) -> Callable[[], tuple[Invoice, bytes]]:
        """Reads the stored invoice and PDF back, when its email needs them."""

        def read() -> tuple[Invoice, bytes]:
            document = json.loads(self._documents.get(str(record.json_key)))
            pdf = self._documents.get(str(record.pdf_key))
            return _invoice_from_document(document), pdf

        return read

    # --- 3. email -------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        """Email the batch's stored invoices not emailed yet, at most once each; the
        outcome includes the emails Issue sent (`emails`). Also finishes what an earlier
        attempt left: a claim whose holder stopped (expired), and an InvoiceDeliveryFailed
        the bus did not take."""
        if "resend" in event:
            return self.resend(event["resend"])
        before = event.get("emails") or {}
        outcome: dict[str, list[dict[str, Any]]] = {
            kind: list(before.get(kind, [])) for kind in ("sent", "undelivered", "failed")
        }
        items = [*event.get("issued", []), *event.get("skipped", [])]
        accounts = self._config.accounts([item["account_id"] for item in items])
        records = self._invoices.get_many([_key(item) for item in items])
        for item in items:
            try:
                self._send_one(item, records.get(_key(item)), accounts, outcome)
            except Exception as error:  # this invoice only; the others are still sent
                outcome["failed"].append(_failure(item, error))
        return outcome

    def _send_one(
        self,
        item: dict[str, Any],
        record: InvoiceRecord | None,
        accounts: dict[str, Account],
        outcome: dict[str, list[dict[str, Any]]],
    ) -> None:
        if record is None or not record.stored:
            return  # not issued
        if record.email_status in FAILURE_EVENTS and not record.failure_announced:
            self._announce_failure(item, record, outcome)
            return
        if record.email_status == "sending":
            self._expire_claim(item, record, outcome)
            return
        if record.email_status:
            return  # its email was sent, or tried
        account = accounts.get(item["account_id"])
        if account is None:
            raise UnknownAccount(item["account_id"])
        raw = self._message(account, self._stored_documents(record))
        token = uuid.uuid4().hex
        if self._invoices.claim_email(record, self._now(), token).claimed:
            self._deliver(item, record, account, token, raw, outcome)

    def resend(self, request: dict[str, Any]) -> dict[str, Any]:
        """An operator's resend (`billing invoices resend`): email the stored invoice again,
        byte for byte as stored, whatever became of its last email (undelivered, unknown,
        bounced, complained, or sent and lost by the customer). Refused while an email of
        it may be in flight (a claim younger than the lease).

        {"account_id", "period", "invoice_number", "status": "sent" | "undelivered" |
        "unknown" | "not_sent", "message_id" | "reason"}"""
        key = (str(request["account_id"]), str(request["period"]))
        record = self._invoices.get_many([key]).get(key)
        if record is None or not record.stored:
            raise ResendRefused(
                f"the invoice of {key[0]} for {key[1]} is not stored yet: the next invoice "
                "run finishes it"
            )
        if record.email_status == "sending" and not self._claim_expired(record):
            raise ResendRefused(f"{record.invoice_number} is being emailed right now")
        account = self._config.accounts([key[0]]).get(key[0])
        if account is None:
            raise ResendRefused(f"account {key[0]!r} is not known")
        raw = self._message(account, self._stored_documents(record))
        token = uuid.uuid4().hex
        if not self._invoices.reclaim_email(record, self._now(), token):
            raise ResendRefused(f"{record.invoice_number}'s email changed meanwhile: try again")
        item = {"account_id": key[0], "period": key[1], "invoice_number": record.invoice_number}
        outcome: dict[str, list[dict[str, Any]]] = {"sent": [], "undelivered": [], "failed": []}
        try:
            self._deliver(item, record, account, token, raw, outcome, resend=True)
        except NotSent as error:
            return {**item, "status": "not_sent", "reason": str(error)}
        if outcome["sent"]:
            return {**item, "status": "sent", "message_id": outcome["sent"][0]["message_id"]}
        if outcome["undelivered"]:
            return {**item, "status": "undelivered", "reason": outcome["undelivered"][0]["reason"]}
        return {**item, "status": "unknown", "reason": outcome["failed"][0]["reason"]}

    def _claim_expired(self, record: InvoiceRecord) -> bool:
        if record.email_claimed_at is None:
            return True  # claimed before claims had a time: its step is long gone
        return datetime.fromisoformat(record.email_claimed_at) + EMAIL_CLAIM_LEASE <= self._now()

    def _expire_claim(
        self,
        item: dict[str, Any],
        record: InvoiceRecord,
        outcome: dict[str, list[dict[str, Any]]],
    ) -> None:
        """A claim older than the lease belongs to a step that stopped while SES had the
        message (the message is made before the claim): it may have left, so it is never
        sent again automatically. It is recorded `unknown` and reported, for an operator to
        check and resend (`billing invoices resend`). A younger claim may be live: left be."""
        if not self._claim_expired(record):
            return
        reason = "the step sending it stopped: it may or may not have left"
        if self._invoices.expire_claim(record, reason):
            outcome["failed"].append({**item, "error": "DeliveryUnknown", "reason": reason})

    def _message(self, account: Account, contents: Callable[[], tuple[Invoice, bytes]]) -> bytes:
        """The invoice's email as SES sends it, from the stored invoice and PDF."""
        invoice, pdf = contents()
        return invoice_email(invoice, account, pdf, self._issuer)

    def _deliver(
        self,
        item: dict[str, Any],
        record: InvoiceRecord,
        account: Account,
        token: str,
        raw: bytes,
        outcome: dict[str, list[dict[str, Any]]],
        *,
        resend: bool = False,
    ) -> None:
        """Send the invoice's one email under the claim `token` names, and add what became
        of it to `outcome` ("sent", "undelivered" or "failed"). Raises NotSent, with the
        claim given back (a resend's: the email state as it was), when the message
        certainly did not leave."""
        try:
            message_id = self._mailer.send_raw(raw, account.email)
        except Undeliverable as error:
            self._invoices.email_result(record, "undelivered", reason=str(error))
            outcome["undelivered"].append({**item, "reason": str(error)})
            undelivered = replace(
                record, email_status="undelivered", email_reason=str(error), email_token=token
            )
            self._announce_failure(item, undelivered, outcome)
            return
        except NotSent:
            if resend:
                self._invoices.restore_email(record, token)  # as if never tried
            else:
                self._invoices.release_email(record, token)  # nothing left: a retry may send
            raise
        except DeliveryUnknown as error:
            # Perhaps sent: never again automatically. The operator sees it in the report
            # and on the record, and resends by hand if the customer did not get it.
            self._invoices.email_result(record, "unknown", reason=str(error))
            outcome["failed"].append({**item, "error": "DeliveryUnknown", "reason": str(error)})
            return
        self._invoices.email_result(record, "sent", message_id=message_id)
        outcome["sent"].append({**item, "message_id": message_id})

    def _announce_failure(
        self,
        item: dict[str, Any],
        record: InvoiceRecord,
        outcome: dict[str, list[dict[str, Any]]],
    ) -> None:
        """Publish InvoiceDeliveryFailed for an undelivered invoice, through the same outbox
        as InvoiceIssued: the record's `failure_announced` turns true only once the bus took
        it, and a later run publishes it if it did not (consumers dedupe on `event_id`)."""
        try:
            announce_delivery_failure(self._events, self._invoices, record)
        except StoreError as error:
            outcome["failed"].append(_failure(item, error))

    def _now(self) -> datetime:
        """The wall clock, which email claims expire by (not the run's clock, which a rerun
        for a past period repeats)."""
        return (self._clock or wall_clock)()


def wall_clock() -> datetime:
    return datetime.now(UTC)


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
    new event."""
    kind = FAILURE_EVENTS[str(record.email_status)]
    return {
        "event_id": f"{kind}:{record.invoice_number}:{record.email_token or ''}",
        "invoice_number": record.invoice_number,
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


def _build(
    closed: tuple[dict[str, str], Account, Plan, dict[str, MeterUsage]],
    catalog: Catalog,
    number: str,
    issued_at: datetime,
) -> Invoice:
    """The invoice of a closed (account, period) under `number`, from its archived usage."""
    item, account, plan, usage = closed
    period = Period.parse(item["period"])
    return build_invoice(account, plan, catalog, period, usage, number=number, issued_at=issued_at)


@dataclass(frozen=True)
class _Finishing:
    """A stored invoice Issue is to announce and, if it was not, email: the batch's item
    with its number, its record, its account (None if no longer known), and how to get
    the invoice and PDF for the email (held in hand, or read back from S3)."""

    done: dict[str, Any]
    record: InvoiceRecord
    account: Account | None
    contents: Callable[[], tuple[Invoice, bytes]]


def _holding(invoice: Invoice, pdf: bytes) -> Callable[[], tuple[Invoice, bytes]]:
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


def _invoice_from_document(document: dict[str, Any]) -> Invoice:
    """Enough of the stored invoice for its email (number, period, lines, totals)."""
    currency = document["currency"]
    lines = tuple(
        InvoiceLine(
            kind=line["kind"],
            description=line["description"],
            quantity=Decimal(line["quantity"]),
            amount=Money(Decimal(line["amount"]), currency),
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
    )


def execution_name(scheduled_at: datetime) -> str:
    """The invoice run's execution name for a scheduled time ('invoice-run-20261201T0100Z'):
    a schedule that fires twice for the same time starts one run."""
    return "invoice-run-" + scheduled_at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def report(results: Iterable[dict[str, Any]], skipped_before: int) -> dict[str, Any]:
    """The run's counts from its batches' results (a batch that failed whole counts all its
    accounts as failed; a batch whose emails failed whole counts its invoices as issued,
    not emailed). `issued` counts the invoices whose announcement this run recorded, so a
    run that finishes what an earlier one stored counts it (docs/invoicing.md, Counting)."""
    counts = {"issued": 0, "skipped": skipped_before, "failed": 0, "emailed": 0, "undelivered": 0}
    failures: list[dict[str, Any]] = []
    undelivered: list[dict[str, Any]] = []
    for result in results:
        if "error" in result:
            failed = result.get("items", [])
            counts["failed"] += len(failed)
            failures.extend({**item, "error": result["error"]} for item in failed)
            continue
        for name in ("issued", "skipped", "emailed"):
            counts[name] += int(result.get(name, 0))
        counts["undelivered"] += len(result.get("undelivered", []))
        undelivered.extend(result.get("undelivered", []))
        failed = [*result.get("failed", []), *result.get("send_failed", [])]
        if "send_error" in result:
            # The batch's invoices are issued; those Issue left to Send may not be emailed by
            # this run (the next run emails any that is still not), each named once.
            named = {_key(failure) for failure in failed if "account_id" in failure}
            pending = [*result.get("unsent", []), *result.get("unsent_skipped", [])]
            reason = "maybe not emailed: the Send step failed (the next run emails it if not)"
            failed.extend(
                {**item, "error": result["send_error"], "reason": reason}
                for item in pending
                if _key(item) not in named
            )
            if not pending:
                failed.append({"error": result["send_error"], "reason": "the Send step failed"})
        counts["failed"] += len(failed)
        failures.extend(failed)
    # Emails our own sending account refused (SES paused, an identity or permission
    # missing): among the failures, and counted apart because they are ours to mend.
    held = sum(1 for failure in failures if failure.get("error") == "SendingUnavailable")
    return {**counts, "held": held, "failures": failures, "undelivered_invoices": undelivered}
