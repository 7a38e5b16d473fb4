"""What a correction reads: the raw archive replayed for one period, and the period's
invoice as stored (issued) or as it stands (a preview from the ledger).

A period's replay reads every record that arrived from `LOOKBACK` before the period's
first possible start until now: enough for the dedupe window (an event id claimed within
35 days before makes a resend a duplicate, in whichever period its timestamp falls), so
the replay decides each of the period's records as the rater did. The records the rater
refused as PERIOD_CLOSED (the quarantine says which) are refused again; with
`count_late`, those of the period itself are rated instead (a re-rate counts late usage).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.events import UsageEvent, decode_record
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.corrections.replay import Replay, replay, stream_records
from billing.rating.archive import ArchivedRecord
from billing.rating.records import Outcome, StreamRecord
from billing.store.invoice_records import InvoiceRecord

# The dedupe window (35 days) and a day for the earliest time zone's start of the month.
LOOKBACK: Final = timedelta(days=37)
Position = tuple[str, str]  # (shard id, sequence number)


class ArchiveSource(Protocol):
    def records_between(self, start: datetime, end: datetime) -> Iterable[ArchivedRecord]: ...


class RefusalReader(Protocol):
    def refused_as_closed(self, since: datetime) -> set[Position]: ...


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
        return Counter(
            self.late[position]
            for r in self.replay.records
            if r.outcome == Outcome.RATED
            and (position := (r.result.record.shard_id, r.result.record.sequence_number))
            in self.late
        )


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
        start = datetime(period.year, period.month, 1, tzinfo=UTC) - LOOKBACK
        records = stream_records(self.archive.records_between(start, now))
        refused = self.quarantine.refused_as_closed(since=start)
        late = _late_positions(records, refused, accounts, period) if count_late else {}
        replayed = replay(
            records,
            RatingConfig(self.config, catalog),
            refused - late.keys(),
            with_events=with_events,
        )
        return PeriodReplay(replayed, len(records), late)

    def account_records(
        self, account_id: str, period: Period, now: datetime
    ) -> tuple[list[StreamRecord], set[Position]]:
        """The account's archived records of the period's lookback until `now`, in stream
        order, and the positions the rater refused as PERIOD_CLOSED."""
        start = datetime(period.year, period.month, 1, tzinfo=UTC) - LOOKBACK
        records = [
            record
            for record in stream_records(self.archive.records_between(start, now))
            if _account_of(record) == account_id
        ]
        return records, self.quarantine.refused_as_closed(since=start)

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


def _account_of(record: StreamRecord) -> str | None:
    event = decode_record(record.data)
    return event.account_id if isinstance(event, UsageEvent) else None


def _late_positions(
    records: Sequence[StreamRecord],
    refused: set[Position],
    accounts: Sequence[Account],
    period: Period,
) -> dict[Position, str]:
    """The refused records whose event is one of `accounts`' in `period`, with its
    account: the late events a re-rate of the period counts."""
    by_id = {account.id: account for account in accounts}
    late = {}
    for record in records:
        position = (record.shard_id, record.sequence_number)
        if position not in refused:
            continue
        event = decode_record(record.data)
        if not isinstance(event, UsageEvent) or event.account_id not in by_id:
            continue
        account = by_id[event.account_id]
        if Period.containing(event.timestamp.at, account.zone) == period:
            late[position] = account.id
    return late
