"""What a correction reads: the raw archive replayed for one period, and the period's
invoice as stored (issued) or as it stands (a preview from the ledger).

A period's replay reads every record that arrived from the earliest moment one of its
accounts' live claims could come from until now (`lookback_start`), so that a resend of
an event id the rater still counts as claimed is a duplicate in the replay too. The rater
keeps a claim for as long as its period is open, and for 35 days after it was last rated
into once the period is closed; a keyed account's claims and a chunk of many periods live
400 days (billing.rating.ledger). So the start is the earliest of: 37 days before the
period (the 35-day window and a day for the earliest time zone), and a day before each
period the accounts' ledgers still hold claims for.

The records the rater refused for a verdict that depended on the moment or on the
configuration then (PERIOD_CLOSED, FUTURE_TIMESTAMP, UNKNOWN_ACCOUNT, UNKNOWN_METER,
NOT_SUBSCRIBED: the quarantine says which) are refused again; with `count_late`, the
period's own PERIOD_CLOSED records are rated instead (a re-rate counts late usage), except
those an operator has resent since (`billing rejected replay`: counted where they were
resent) and those whose event id the rater took from another record (a producer's resend
or a backfill, perhaps stamped into an open period): first-seen wins per (account,
event_id) among what the rater counted, and a record it refused was not counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from billing.core.catalog import Account, Catalog
from billing.core.events import Reason, UsageEvent, decode_record
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.corrections.replay import Replay, replay, stream_records
from billing.rating.archive import ArchivedRecord
from billing.rating.ledger import ANY_PERIOD, ID_RETENTION_DAYS, AccountLedger
from billing.rating.records import Outcome, StreamRecord
from billing.store.invoice_records import InvoiceRecord

# The dedupe window (35 days) and a day for the earliest time zone's start of the month.
LOOKBACK: Final = timedelta(days=37)
_UTC_ZONE: Final = ZoneInfo("UTC")
Position = tuple[str, str]  # (shard id, sequence number)


class ArchiveSource(Protocol):
    def records_between(self, start: datetime, end: datetime) -> Iterable[ArchivedRecord]: ...


class RefusalReader(Protocol):
    def rater_refusals(self, among: Container[Position]) -> dict[Position, Reason]: ...
    def resent(self, positions: Iterable[Position]) -> set[Position]: ...


class ConfigReader(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...
    def all_accounts(self) -> list[Account]: ...


class LedgerReader(Protocol):
    def load(self, account_ids: Sequence[str], *, fresh: bool = False) -> Any: ...
    def period_usage(self, ledger: Any, period: str) -> dict[str, MeterUsage]: ...
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]: ...


class InvoiceReader(Protocol):
    def for_account(self, account_id: str) -> list[InvoiceRecord]: ...


class DocumentReader(Protocol):
    def get(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class StoredInvoice:
    """The period's invoice as issued, or (not issued) as the ledger's usage makes it now."""

    document: Mapping[str, Any]
    record: InvoiceRecord | None

    @property
    def issued(self) -> bool:
        return self.record is not None


@dataclass
class PeriodReplay:
    replay: Replay
    records_read: int
    late: dict[Position, str] = field(default_factory=dict)  # counted late events' accounts

    def late_events(self) -> Counter[str]:
        """Per account, the late events the replay rated (a resend among them is not)."""
        return Counter(self.late_rated().values())

    def late_rated(self) -> dict[Position, str]:
        """The late records the replay rated, with their account: what a correction of
        the period bills (`billing rerate --apply` marks them billed)."""
        return {
            position: self.late[position]
            for r in self.replay.records
            if r.outcome == Outcome.RATED
            and (position := (r.result.record.shard_id, r.result.record.sequence_number))
            in self.late
        }


class RatingConfig:
    """The live accounts under a chosen catalog: what a replay rates against."""

    def __init__(self, live: ConfigReader, catalog: Catalog) -> None:
        self._live, self._catalog = live, catalog

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return self._live.accounts(account_ids)


@dataclass
class CorrectionSources:
    archive: ArchiveSource
    config: ConfigReader
    ledgers: LedgerReader
    invoices: InvoiceReader
    documents: DocumentReader
    quarantine: RefusalReader

    def accounts(self, period: Period, account_id: str | None) -> list[Account]:
        """The one account named (LookupError if unknown), or every one the period bills."""
        if account_id is not None:
            found = self.config.accounts([account_id])
            if account_id not in found:
                raise LookupError(f"no account {account_id!r}")
            return [found[account_id]]
        return [a for a in self.config.all_accounts() if a.overlaps(period)]

    def replayed(
        self,
        period: Period,
        accounts: Sequence[Account],
        catalog: Catalog,
        *,
        count_late: bool,
        now: datetime,
        with_events: bool = False,
    ) -> PeriodReplay:
        start = self.lookback_start(period, accounts, now)
        records = stream_records(self.archive.records_between(start, now))
        refused = self.quarantine.rater_refusals(_positions(records))
        late = _late_positions(records, refused, accounts, period) if count_late else {}
        for position in self.quarantine.resent(late):
            del late[position]
        replayed = replay(
            records,
            RatingConfig(self.config, catalog),
            {position: why for position, why in refused.items() if position not in late},
            with_events=with_events,
        )
        return PeriodReplay(replayed, len(records), late)

    def account_records(
        self, account: Account, period: Period, now: datetime
    ) -> tuple[list[StreamRecord], dict[Position, Reason]]:
        """The account's archived records from its lookback until `now`, in stream order,
        and the positions the rater refused for a verdict the replay takes as it was."""
        start = self.lookback_start(period, [account], now)
        records = [
            record
            for record in stream_records(self.archive.records_between(start, now))
            if _account_of(record) == account.id
        ]
        return records, self.quarantine.rater_refusals(_positions(records))

    def lookback_start(
        self, period: Period, accounts: Sequence[Account], now: datetime
    ) -> datetime:
        """The earliest arrival a record the replay must see can have (the module's
        docstring): one read of the accounts' ledgers."""
        start = _month_start(period) - LOOKBACK
        ledgers = self.ledgers.load([account.id for account in accounts], fresh=True)
        for ledger in ledgers.values():
            for label in claimed_periods(ledger, now):
                start = min(start, _month_start(Period.parse(label)) - timedelta(days=1))
        return start

    def stored_invoice(self, account: Account, period: Period) -> StoredInvoice:
        issued = [r for r in self.invoices.for_account(account.id) if r.period == str(period)]
        if issued and issued[0].json_key is not None:
            document = json.loads(self.documents.get(issued[0].json_key))
            return StoredInvoice(document, issued[0])
        ledger = self.ledgers.load([account.id], fresh=True)[account.id]
        label = str(period)
        usage = (
            self.ledgers.archived_usage(account.id, label)
            if label in ledger.closed
            else self.ledgers.period_usage(ledger, label)
        )
        preview = invoice_json(
            account, self.config.catalog(), period, usage, "PREVIEW", datetime.now(UTC)
        )
        return StoredInvoice(preview, None)


def invoice_json(
    account: Account,
    catalog: Catalog,
    period: Period,
    usage: Mapping[str, MeterUsage],
    number: str,
    issued_at: datetime,
) -> dict[str, Any]:
    plan = catalog.plans_by_id[account.plan]
    built = build_invoice(account, plan, catalog, period, usage, number=number, issued_at=issued_at)
    return built.to_json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def claimed_periods(ledger: AccountLedger, now: datetime) -> set[str]:
    """The periods whose event ids `ledger` may still count as claimed at `now`: those it
    holds digests for, and (a keyed account, a chunk of too many periods to name) every
    period closed within ID_RETENTION_DAYS."""
    labels = set(ledger.recent_ids) | set(ledger.usage) | set(ledger.log)
    for ref in ledger.chunk_refs:
        labels |= ref.periods - {ANY_PERIOD}
    if ledger.keyed or any(ANY_PERIOD in ref.periods for ref in ledger.chunk_refs):
        oldest = now - timedelta(days=ID_RETENTION_DAYS)
        labels |= {p for p in ledger.closed if Period.parse(p).end(_UTC_ZONE) >= oldest}
    return labels


def _positions(records: Iterable[StreamRecord]) -> set[Position]:
    return {(record.shard_id, record.sequence_number) for record in records}


def _month_start(period: Period) -> datetime:
    return datetime(period.year, period.month, 1, tzinfo=UTC)


def _account_of(record: StreamRecord) -> str | None:
    event = decode_record(record.data)
    return event.account_id if isinstance(event, UsageEvent) else None


def _late_positions(
    records: Sequence[StreamRecord],
    refused: Mapping[Position, Reason],
    accounts: Sequence[Account],
    period: Period,
) -> dict[Position, str]:
    """The records refused as PERIOD_CLOSED whose event is one of `accounts`' in `period`,
    with its account: the late events a re-rate of the period counts. Not one whose event
    id another record the rater did not refuse carries: that record counted it (or was a
    duplicate of one that did), wherever its timestamp put it."""
    by_id = {account.id: account for account in accounts}
    if Reason.PERIOD_CLOSED not in refused.values():
        return {}  # no late event: no record read twice
    taken = {
        (event.account_id, event.event_id)
        for record in records
        if (record.shard_id, record.sequence_number) not in refused
        and isinstance(event := decode_record(record.data), UsageEvent)
    }
    late = {}
    for record in records:
        position = (record.shard_id, record.sequence_number)
        if refused.get(position) != Reason.PERIOD_CLOSED:
            continue
        event = decode_record(record.data)
        if not isinstance(event, UsageEvent) or event.account_id not in by_id:
            continue
        if (event.account_id, event.event_id) in taken:
            continue  # counted from the record that carried it to the rater
        account = by_id[event.account_id]
        if Period.containing(event.timestamp.at, account.zone) == period:
            late[position] = account.id
    return late
