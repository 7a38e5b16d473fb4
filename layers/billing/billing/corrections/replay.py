"""The raw archive rated again, by the rater itself, into ledgers held in memory.

A replay runs the rating service (`billing.rating.service`) over the archived records with
a ledger store on an in-memory table (`billing.store.memory_dynamodb`), so every rule is
the rater's own: decoding and the checks in their order, first seen wins per
(account, event_id) with the dedupe window, phases, unique values, `latest`. What the
archive adds, and how a replay reads it:

- **Firehose delivers at least once**: a record delivered twice is in the archive twice,
  at the same stream position. Positions are kept once (`stream_records`); two different
  records at one position mean the archive is not what the stream carried (ArchiveCorrupt).
- **The order the rater saw**: a shard's records by sequence number; shards merged by
  arrival time, so an account that moves to a child shard when the stream is resharded
  has its parent shard's records first, as the rater had them.
- **A KPL aggregate** is one record to the rater, rejected whole (MALFORMED_JSON); Firehose
  archives its parts. The parts at one position become that one rejected record again.
- **Verdicts that depended on the moment**: the rater judged FUTURE_TIMESTAMP against its
  clock, and PERIOD_CLOSED against the periods invoiced by then; a replay has neither, so
  it does not judge them again. The quarantine holds each such record with its reason, by
  stream position: those are `left_out`, refused again with the rater's reason, so they
  claim no event id, as at the rater. The replay's own clock is far ahead of any event
  (`REPLAY_CLOCK`), so it refuses none as future, and no period closes in it. A re-rate of
  an invoiced period leaves that period's own late records in: they count.
- **What a replay cannot see**: an event id claimed in a period that was closed for more
  than 35 days may be claimed again at the rater (its claim expires); a replay, where no
  period closes, keeps it claimed. Such a resend is a duplicate in the replay.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from billing.core.events import (
    KPL_AGGREGATE_MAGIC,
    Reason,
    Rejection,
    UsageEvent,
    decode_record,
)
from billing.core.usage import MeterUsage
from billing.rating.archive import ArchiveCorrupt, ArchivedRecord
from billing.rating.records import Outcome, RecordResult, StreamRecord
from billing.rating.service import ConfigSource, RatingService
from billing.store.ledger_store import LedgerStore
from billing.store.memory_dynamodb import MemoryDynamoDB

# Records judged together: Lambda's largest Kinesis batch. Larger batches load and write
# each ledger fewer times; the answer does not depend on the batching (the rater's rule).
REPLAY_BATCH: Final = 10_000
_TABLE: Final = "replay"
# Ahead of every event the rater could have accepted (the rater refused the later ones as
# FUTURE_TIMESTAMP, which the quarantine says), and far enough from datetime's end for the
# ledger's own date arithmetic (id expiry, 35 days on).
REPLAY_CLOCK: Final = datetime(9000, 1, 1, tzinfo=UTC)


def stream_records(archived: Iterable[ArchivedRecord]) -> list[StreamRecord]:
    """The records the stream carried, once each, in the order the rater read them."""
    by_position: dict[tuple[str, str], ArchivedRecord] = {}
    parts: dict[tuple[str, str], set[int]] = {}
    for record in archived:
        position = (record.shard_id, record.sequence_number)
        if record.aggregated:
            parts.setdefault(position, set()).add(record.subsequence_number)
        kept = by_position.setdefault(position, record)
        if not record.aggregated and kept.data != record.data:
            raise ArchiveCorrupt(
                f"{record.shard_id} {record.sequence_number}: two different records archived "
                "at one stream position"
            )
    shards: dict[str, list[StreamRecord]] = {}
    for position, record in by_position.items():
        # An aggregate's parts are one record, which the rater rejected by its magic bytes.
        data = KPL_AGGREGATE_MAGIC if position in parts else record.data
        shards.setdefault(record.shard_id, []).append(
            StreamRecord(
                record.shard_id,
                record.sequence_number,
                data,
                partition_key=record.partition_key,
                arrival_timestamp=record.arrival_ms / 1000,
            )
        )
    for records in shards.values():
        records.sort(key=lambda r: r.sequence)
    merged = heapq.merge(*shards.values(), key=lambda r: r.arrival_timestamp)
    return list(merged)


@dataclass(frozen=True, slots=True)
class Replayed:
    """One record's outcome in the replay, with its event when it decoded to one."""

    result: RecordResult
    event: UsageEvent | None

    @property
    def outcome(self) -> Outcome:
        return self.result.outcome

    @property
    def rejection(self) -> Rejection | None:
        return self.result.rejection


@dataclass
class Replay:
    """The replay's ledgers, and every record's outcome in stream order."""

    ledgers: LedgerStore
    records: list[Replayed] = field(default_factory=list)

    def usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The period's aggregates by stored meter name, open or closed in the replay."""
        ledger = self.ledgers.load([account_id], fresh=True)[account_id]
        if period in ledger.closed:
            return self.ledgers.archived_usage(account_id, period)
        return self.ledgers.period_usage(ledger, period)


class _KeptRejections:
    """The rating service's quarantine, in memory: a replay keeps nothing anywhere."""

    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()

    def keep(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> bool:
        position = (record.shard_id, record.sequence_number)
        kept_here = position not in self._held
        self._held.add(position)
        return kept_here

    def stage(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None:
        self._held.add((record.shard_id, record.sequence_number))

    def promote(self, shard_id: str, sequence_number: str) -> bool:
        return (shard_id, sequence_number) in self._held

    def holds(self, shard_id: str, sequence_number: str) -> bool:
        return (shard_id, sequence_number) in self._held


def replay(
    records: Sequence[StreamRecord],
    config: ConfigSource,
    left_out: Mapping[tuple[str, str], Reason] = MappingProxyType({}),
    *,
    with_events: bool = False,
    batch_size: int = REPLAY_BATCH,
) -> Replay:
    """Rate `records` (from `stream_records`) again from nothing; the records at the
    `left_out` positions (shard, sequence number) are refused with the reason given. With
    `with_events`, each record's outcome comes with its decoded event (a second decode:
    only an explanation needs them)."""
    ledgers = LedgerStore(MemoryDynamoDB(), _TABLE, sleep=lambda _: None)
    service = RatingService(
        config, ledgers, _KeptRejections(), lambda: REPLAY_CLOCK, sleep=lambda _: None
    )
    result = Replay(ledgers)
    for batch in _batches(records, batch_size):
        results: dict[tuple[str, str], RecordResult] = {}
        # A batch of the rater is one shard's: sequence numbers name records within it. A
        # shard's part goes in the order its first record arrived, so an account that
        # moved to a child shard has its parent shard's records rated first.
        for shard in _by_shard(r for r in batch if (r.shard_id, r.sequence_number) not in left_out):
            report = service.process(shard)
            if report.failed:  # nothing in memory fails: a failure is a bug, never skipped
                raise RuntimeError(f"replay: {len(report.failed)} records not rated")
            results.update(
                ((r.record.shard_id, sequence), r) for sequence, r in report.results.items()
            )
        for record in batch:
            event = _event(record) if with_events else None
            outcome = results.get((record.shard_id, record.sequence_number))
            if outcome is None:  # left out
                account_id = event.account_id if event is not None else None
                why = left_out[(record.shard_id, record.sequence_number)]
                refused = Rejection(
                    why, f"refused as {why} when it was rated (the quarantine holds it)"
                )
                outcome = RecordResult(record, Outcome.REJECTED, account_id, refused)
            result.records.append(Replayed(outcome, event))
    return result


def _batches(records: Sequence[StreamRecord], size: int) -> Iterable[Sequence[StreamRecord]]:
    for start in range(0, len(records), size):
        yield records[start : start + size]


def _by_shard(records: Iterable[StreamRecord]) -> list[list[StreamRecord]]:
    shards: dict[str, list[StreamRecord]] = {}
    for record in records:
        shards.setdefault(record.shard_id, []).append(record)
    return list(shards.values())


def _event(record: StreamRecord) -> UsageEvent | None:
    decoded = decode_record(record.data)
    return decoded if isinstance(decoded, UsageEvent) else None
