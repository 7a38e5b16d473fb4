"""Rating one Kinesis batch end to end: decode, load, rate, quarantine, write.

The pure work is `billing.rater.rate_batch`; this module wires it to the stores and decides
what to report as failed so that Lambda's retry (from the lowest failed sequence number)
loses nothing and counts nothing twice:
- Rejected records are quarantined before any ledger is written. If the quarantine fails,
  no ledger is written and the whole batch is retried.
- Each account's ledger is written once, conditionally on the version read. A lost race
  reloads that account and rates its records again; throttling or an outage that outlasts
  the client's retries fails that account's records, which Lambda then delivers again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from billing.catalog import Account, Catalog
from billing.events import Rejection, UsageEvent, decode_record
from billing.ledger import AccountLedger
from billing.rater import BatchResult, LedgerWrite, RecordResult, StreamRecord, rate_batch
from billing.store.capacity import CapacityMeter
from billing.store.errors import StoreError, VersionConflict

MAX_CONFLICT_RETRIES: Final = 5


class ConfigSource(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class LedgerSource(Protocol):
    capacity: CapacityMeter

    def load(
        self, account_ids: Sequence[str], *, fresh: bool = False
    ) -> dict[str, AccountLedger]: ...
    def open_digests(self, ledger: AccountLedger) -> set[bytes]: ...
    def save(self, write: LedgerWrite) -> None: ...


class RejectSink(Protocol):
    def keep(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None: ...


@dataclass
class BatchReport:
    """What happened to a batch: every record's result, and the records to deliver again."""

    results: dict[str, RecordResult] = field(default_factory=dict)  # by sequence number
    failed: list[StreamRecord] = field(default_factory=list)
    seconds: float = 0.0
    write_units: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(str(result.outcome) for result in self.results.values())

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(
            str(result.rejection.reason)
            for result in self.results.values()
            if result.rejection is not None
        )

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response for Kinesis."""
        return {"batchItemFailures": [{"itemIdentifier": r.sequence_number} for r in self.failed]}


class RatingService:
    def __init__(
        self,
        config: ConfigSource,
        ledgers: LedgerSource,
        quarantine: RejectSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._ledgers = ledgers
        self._quarantine = quarantine
        self._clock = clock

    def process(self, records: Sequence[StreamRecord]) -> BatchReport:
        started = time.perf_counter()
        units_before = self._ledgers.capacity.write_units
        report = BatchReport()
        now = self._clock()
        decoded = [(record, decode_record(record.data)) for record in records]
        account_ids = sorted(
            {event.account_id for _, event in decoded if isinstance(event, UsageEvent)}
        )
        catalog = self._config.catalog()
        accounts = self._config.accounts(account_ids)
        ledgers = self._ledgers.load(sorted(accounts))
        seen = {a: self._ledgers.open_digests(ledger) for a, ledger in ledgers.items()}
        result = rate_batch(
            decoded, catalog=catalog, accounts=accounts, ledgers=ledgers, seen=seen, now=now
        )
        try:
            self._keep_rejected(result, now)
        except StoreError:
            # Nothing is written: the whole batch comes again, and rejections are idempotent.
            report.failed = list(records)
            return report
        self._record(report, result)
        by_account: dict[str, list[tuple[StreamRecord, UsageEvent | Rejection]]] = {}
        for record, event in decoded:
            if isinstance(event, UsageEvent):
                by_account.setdefault(event.account_id, []).append((record, event))
        for account_id, write in result.writes.items():
            mine = by_account.get(account_id, [])
            if not self._commit(account_id, write, mine, catalog, accounts, now, report):
                # Not applied: these records come again, and only then count.
                for record, _ in mine:
                    report.failed.append(record)
                    report.results.pop(record.sequence_number, None)
        report.failed.sort(key=lambda record: record.sequence)
        report.seconds = time.perf_counter() - started
        report.write_units = self._ledgers.capacity.write_units - units_before
        return report

    def _commit(
        self,
        account_id: str,
        write: LedgerWrite | None,
        records: Sequence[tuple[StreamRecord, UsageEvent | Rejection]],
        catalog: Catalog,
        accounts: dict[str, Account],
        now: datetime,
        report: BatchReport,
    ) -> bool:
        """Write one account's ledger, re-rating its records after a lost race."""
        for _ in range(MAX_CONFLICT_RETRIES):
            if write is None:
                return True
            try:
                self._ledgers.save(write)
                return True
            except VersionConflict:
                try:
                    ledger = self._ledgers.load([account_id], fresh=True)[account_id]
                    again = rate_batch(
                        records,
                        catalog=catalog,
                        accounts=accounts,
                        ledgers={account_id: ledger},
                        seen={account_id: self._ledgers.open_digests(ledger)},
                        now=now,
                    )
                    self._keep_rejected(again, now)
                except StoreError:
                    return False
                self._record(report, again)
                write = again.writes.get(account_id)
            except StoreError:
                return False
        return False

    def _keep_rejected(self, result: BatchResult, now: datetime) -> None:
        for item in result.results:
            if item.rejection is not None:
                self._quarantine.keep(item.record, item.rejection, now)

    @staticmethod
    def _record(report: BatchReport, result: BatchResult) -> None:
        for item in result.results:
            report.results[item.record.sequence_number] = item
