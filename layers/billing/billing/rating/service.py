"""Rating one Kinesis batch end to end: decode, load, rate, write, quarantine.

The pure work is `billing.rating.rater.rate_batch`; this module wires it to the stores and decides
what to report as failed so that Lambda's retry (from the lowest failed sequence number)
loses nothing and counts nothing twice:
- Each account's ledger is written once, conditionally on the version read. A lost race
  reloads that account and rates its records again; a write that did not land (throttling
  or an outage past the client's retries, a chunk that cannot be read) fails that account's
  records only, which Lambda then delivers again.
- The quarantine follows the ledger: a rejection decided for a known (or unknown) account id
  is staged before the ledger write that decides it and kept once that write has landed;
  the ledger lists it until its object is known to exist. If the object cannot be written,
  the record is delivered again and finds itself decided in the ledger, and any later
  write of the account keeps it from the staged copy. A record with no account id
  to tie it to (too large, not JSON, not an event) is rejected by its bytes alone, and kept
  before anything is written.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from billing.core.catalog import Account, Catalog
from billing.core.events import Reason, Rejection, UsageEvent
from billing.core.owed import DueHint
from billing.core.periods import Period
from billing.rating.ledger import AccountLedger, RejectedRecord, id_digest
from billing.rating.rater import (
    BatchResult,
    LedgerWrite,
    Outcome,
    RecordResult,
    StreamRecord,
    decode_batch,
    rate_batch,
    unsettled,
)
from billing.rating.unique_values import value_candidates
from billing.store.capacity import CapacityMeter
from billing.store.errors import StoreError, VersionConflict
from billing.store.retry import RERATE, Sleep

Decoded = tuple[StreamRecord, UsageEvent | Rejection]
# Told of a batch's records, their results and the batch's clock once its quarantine
# writes are done (billing.rating.rejection_summaries publishes UsageRejected summaries).
RejectionSummarySink = Callable[[Sequence[StreamRecord], Sequence[RecordResult], datetime], int]


class ConfigSource(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class LedgerSource(Protocol):
    capacity: CapacityMeter
    flushed: set[bytes]

    def token(self) -> str: ...
    def load(
        self, account_ids: Sequence[str], *, fresh: bool = False
    ) -> dict[str, AccountLedger]: ...
    def seen(
        self, ledger: AccountLedger, now: datetime, candidates: Sequence[bytes] = ()
    ) -> Container[bytes]: ...
    def chunks_at_hand(self) -> object: ...
    def save(self, write: LedgerWrite) -> None: ...


class DueHintSink(Protocol):
    def lower(self, account_id: str, hint: DueHint) -> bool: ...


class RejectSink(Protocol):
    def keep(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> bool:
        """Keep the record: True when this call kept it, False when it was kept already."""
        ...

    def stage(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None: ...
    def promote(self, shard_id: str, sequence_number: str) -> bool: ...
    def holds(self, shard_id: str, sequence_number: str) -> bool: ...


@dataclass
class BatchReport:
    """What happened to a batch: every record's result, and the records to deliver again."""

    results: dict[str, RecordResult] = field(default_factory=dict)  # by sequence number
    failed: list[StreamRecord] = field(default_factory=list)
    replays: set[str] = field(default_factory=set)  # applied by an earlier delivery
    seconds: float = 0.0
    write_units: float = 0.0
    unpublished_summaries: int = 0  # UsageRejected summaries the bus refused

    def counts(self) -> Counter[str]:
        return Counter(str(result.outcome) for result in self.results.values())

    def unpriced(self) -> int:
        """The rated events that no charge of their plan took (billing.core.unpriced)."""
        return sum(1 for result in self.results.values() if result.unpriced)

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(
            str(result.rejection.reason)
            for result in self.results.values()
            if result.rejection is not None
        )

    def fail(self, records: Sequence[StreamRecord]) -> None:
        """These records are not done: Lambda delivers them again, and only then count."""
        known = {record.sequence_number for record in self.failed}
        for record in records:
            if record.sequence_number not in known:
                self.failed.append(record)
                known.add(record.sequence_number)
            self.results.pop(record.sequence_number, None)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response for Kinesis."""
        return {"batchItemFailures": [{"itemIdentifier": r.sequence_number} for r in self.failed]}


@dataclass
class _Batch:
    """What one batch's accounts are rated against."""

    catalog: Catalog
    accounts: dict[str, Account]
    now: datetime


class RatingService:
    def __init__(
        self,
        config: ConfigSource,
        ledgers: LedgerSource,
        quarantine: RejectSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Sleep = time.sleep,
        *,
        hints: DueHintSink | None = None,
        summaries: RejectionSummarySink | None = None,
    ) -> None:
        """`hints`: the accounts' due hints, lowered for an event late for its period
        (billing.core.owed); without them (benchmarks, tests of rating alone) none is."""
        self._config = config
        self._ledgers = ledgers
        self._quarantine = quarantine
        self._hints = hints
        self._summaries = summaries
        self._clock = clock
        self._sleep = sleep
        self._kept: set[tuple[str, str]] = set()  # positions known to be in the quarantine
        # ... and those the current batch kept there itself: the rejections its summaries
        # count, so a retried batch counts none an earlier delivery kept
        self._kept_here: set[tuple[str, str]] = set()

    def process(self, records: Sequence[StreamRecord]) -> BatchReport:
        started = time.perf_counter()
        units_before = self._ledgers.capacity.write_units
        report = BatchReport()
        now = self._clock()
        self._kept_here = set()
        decoded = decode_batch(records)
        by_account: dict[str, list[Decoded]] = {}
        for record, event in decoded:
            if isinstance(event, UsageEvent):
                by_account.setdefault(event.account_id, []).append((record, event))
        batch = _Batch(self._config.catalog(), self._config.accounts(sorted(by_account)), now)
        ledgers = self._ledgers.load(sorted(by_account))
        seen: dict[str, Container[bytes]] = {}
        for account_id, ledger in ledgers.items():
            try:
                seen[account_id] = self._seen(ledger, by_account[account_id], batch)
            except StoreError:  # only this account's records wait
                report.fail([record for record, _ in by_account.pop(account_id)])
        rateable = [
            (r, e)
            for r, e in decoded
            if not isinstance(e, UsageEvent) or e.account_id in by_account
        ]
        result = self._rate(rateable, batch, ledgers, seen)
        self._record(report, result, ledgers)
        for record, event in decoded:
            if isinstance(event, Rejection) and not self._keep(record, event, now):
                report.fail([record])
        for account_id, mine in by_account.items():
            self._commit(account_id, result.writes.get(account_id), mine, batch, report)
        report.failed.sort(key=lambda record: record.sequence)
        report.seconds = time.perf_counter() - started
        report.write_units = self._ledgers.capacity.write_units - units_before
        if self._summaries is not None:
            report.unpublished_summaries = self._summaries(records, self._counted(report), now)
        return report

    def _counted(self, report: BatchReport) -> list[RecordResult]:
        """The results a summary may count: no rejection another delivery kept."""
        return [
            result
            for result in report.results.values()
            if result.rejection is None
            or (result.record.shard_id, result.record.sequence_number) in self._kept_here
        ]

    def _seen(self, ledger: AccountLedger, mine: list[Decoded], batch: _Batch) -> Container[bytes]:
        """What the account has claimed; a keyed account's claim items are looked up for
        the ids and the unique_count values its records could claim."""
        if not ledger.keyed:
            return self._ledgers.seen(ledger, batch.now, [])
        events = [event for _, event in mine if isinstance(event, UsageEvent)]
        candidates = [id_digest(event.event_id) for event in events]
        candidates += value_candidates(events, batch.accounts, batch.catalog)
        return self._ledgers.seen(ledger, batch.now, candidates)

    def _rate(
        self,
        records: Sequence[Decoded],
        batch: _Batch,
        ledgers: dict[str, AccountLedger],
        seen: dict[str, Container[bytes]],
    ) -> BatchResult:
        return rate_batch(
            records,
            catalog=batch.catalog,
            accounts=batch.accounts,
            ledgers=ledgers,
            seen=seen,
            now=batch.now,
            token=self._ledgers.token,
            chunks=self._ledgers.chunks_at_hand(),  # type: ignore[arg-type]
            settled=self._settled,
            flushed=self._ledgers.flushed,
        )

    def _commit(
        self,
        account_id: str,
        write: LedgerWrite | None,
        records: list[Decoded],
        batch: _Batch,
        report: BatchReport,
    ) -> None:
        """Write one account's ledger, re-rating its records after a lost race (the RERATE
        retry policy), and keep the rejections each landed write decided. The records no
        landed write applied are reported failed: they come again."""
        done: set[str] = set()  # records a landed write applied (replays: one before)
        try:
            for attempt in RERATE.retrying(VersionConflict, sleep=self._sleep):
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        # Another writer changed the ledger: rate what is left against it.
                        ledger = self._ledgers.load([account_id], fresh=True)[account_id]
                        again = self._rate_account(
                            _not_done(records, done | report.replays), batch, ledger
                        )
                        self._record(report, again, {account_id: ledger})
                        write = again.writes.get(account_id)
                    self._write_parts(account_id, write, records, batch, report, done)
        except StoreError:
            pass  # a write that did not land, or every race lost: its records fail below
        # Not applied (a write that did not land), or left over with no room even for one
        # (the rejections its ledger carries not known to be kept): delivered again.
        report.fail([record for record, _ in _not_done(records, done | report.replays)])

    def _write_parts(
        self,
        account_id: str,
        write: LedgerWrite | None,
        records: list[Decoded],
        batch: _Batch,
        report: BatchReport,
        done: set[str],
    ) -> None:
        """Write the account's ledger, then each write for the records it left over (too
        many rejections for one write), adding the records each applied to `done`.
        VersionConflict when another writer got there first; StoreError when one did not
        land."""
        while write is not None:
            for record, why in write.rejected:
                self._quarantine.stage(record, why, batch.now)
            self._lower_due_hint(write, batch)
            self._ledgers.save(write)
            done |= {
                record.sequence_number
                for record, _ in records
                if (result := report.results.get(record.sequence_number)) is not None
                and result.outcome is not Outcome.DEFERRED
            }
            unkept = [
                record for record, why in write.rejected if not self._keep(record, why, batch.now)
            ]
            if unkept:
                # Decided and written: delivered again, they find their decision in the ledger.
                report.fail(unkept)
            write = self._next_part(account_id, write.after, records, batch, report)

    def _lower_due_hint(self, write: LedgerWrite, batch: _Batch) -> None:
        """A write that opens a period before the current one (a late event) lowers the
        account's due hint to it first, so the invoice run finds it: a stop between the two
        leaves a hint too early, which is harmless. A hint no later is left as it is. The
        common write, into the current period or one already open, writes nothing here."""
        account = batch.accounts.get(write.after.account_id)
        if self._hints is None or account is None:
            return
        late = write.opened_before(Period.containing(batch.now, account.zone))
        if late is not None:
            self._hints.lower(account.id, DueHint.of(late, account.zone))

    def _next_part(
        self,
        account_id: str,
        ledger: AccountLedger,
        records: list[Decoded],
        batch: _Batch,
        report: BatchReport,
    ) -> LedgerWrite | None:
        """The write for the account's records a landed write left over (too many
        rejections for one write), rated against it; None when there are none."""
        left = _deferred(records, report)
        if not left:
            return None
        try:
            again = self._rate_account(left, batch, ledger)
        except StoreError:
            return None  # left over: failed by the caller
        self._record(report, again, {account_id: ledger})
        return again.writes.get(account_id)

    def _rate_account(
        self, records: list[Decoded], batch: _Batch, ledger: AccountLedger
    ) -> BatchResult:
        seen = {ledger.account_id: self._seen(ledger, records, batch)}
        return self._rate(records, batch, {ledger.account_id: ledger}, seen)

    def _keep(self, record: StreamRecord, rejection: Rejection, now: datetime) -> bool:
        try:
            kept_here = self._quarantine.keep(record, rejection, now)
        except StoreError:
            return False
        position = (record.shard_id, record.sequence_number)
        self._kept.add(position)
        if kept_here:
            self._kept_here.add(position)
        return True

    def _settled(self, rejected: RejectedRecord) -> bool:
        """Whether a rejection a landed ledger carries is kept: known here, found in the
        quarantine, or kept now from its staged copy."""
        if self._known_kept(rejected):
            return True
        position = (rejected.shard_id, rejected.sequence_number)
        if self._quarantine.promote(*position):
            self._kept.add(position)
            return True
        return False

    def _known_kept(self, rejected: RejectedRecord) -> bool:
        position = (rejected.shard_id, rejected.sequence_number)
        if position not in self._kept and self._quarantine.holds(*position):
            self._kept.add(position)
        return position in self._kept

    def _record(
        self, report: BatchReport, result: BatchResult, ledgers: dict[str, AccountLedger]
    ) -> None:
        """Take the results in; a replayed record whose rejection its ledger decided but
        has not seen kept is kept now, and counts as rejected."""
        now = self._clock()
        for item in result.results:
            taken = item
            if item.outcome is Outcome.REPLAYED and item.account_id is not None:
                report.replays.add(item.record.sequence_number)
                decided = unsettled(ledgers[item.account_id], item.record)
                if decided is not None and not self._known_kept(decided):
                    why = Rejection(Reason(decided.reason), decided.message)
                    if not self._keep(item.record, why, now):
                        report.fail([item.record])
                        continue
                    taken = RecordResult(item.record, Outcome.REJECTED, item.account_id, why)
            report.results[item.record.sequence_number] = taken


def _deferred(records: list[Decoded], report: BatchReport) -> list[Decoded]:
    """The records a write left over for the next (see rater.Outcome.DEFERRED)."""
    return [
        (record, event)
        for record, event in records
        if (result := report.results.get(record.sequence_number)) is not None
        and result.outcome is Outcome.DEFERRED
    ]


def _not_done(records: list[Decoded], done: set[str]) -> list[Decoded]:
    return [(record, event) for record, event in records if record.sequence_number not in done]
