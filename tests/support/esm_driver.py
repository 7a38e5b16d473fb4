"""Driving rating services the way Lambda's Kinesis event source mapping does, with chaos.

`drive` walks one shard: it cuts a batch of random size at the current position, hands it
to one of several warm environments (each its own RatingService, with its own caches),
and moves on the way the mapping does: past the whole batch when nothing failed, to the
lowest failed sequence number after a partial failure (the next batch then starts there,
with new random boundaries), and not at all when the invocation raised.

`OutcomeLog` keeps what every delivery reported, and says what each record's final
outcome is: the last result reported for it by a delivery that did not fail it, ignoring
"replayed" (applied by an earlier delivery). A record whose only results are replays was
applied by a delivery that reported it failed (its answer was lost): its outcome is
"unknown" to the reports and only the stored state can tell.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from billing.rating.rater import Outcome, RecordResult, StreamRecord
from billing.rating.service import BatchReport

UNKNOWN = "unknown"


class Environment(Protocol):
    def process(self, records: Sequence[StreamRecord]) -> BatchReport: ...


@dataclass
class OutcomeLog:
    """Every record's reported results, delivery by delivery."""

    history: dict[str, list[RecordResult]] = field(default_factory=dict)
    failed: Counter[str] = field(default_factory=Counter)  # times reported failed
    applied_twice: list[str] = field(default_factory=list)

    def add(self, batch: Sequence[StreamRecord], report: BatchReport) -> None:
        failed = {record.sequence_number for record in report.failed}
        for record in batch:
            sequence = record.sequence_number
            if sequence in failed:
                self.failed[sequence] += 1
                continue
            result = report.results.get(sequence)
            if result is None:
                continue  # beyond a failed record of its own batch: delivered again anyway
            previous = [r for r in self.history.get(sequence, []) if r.outcome != Outcome.REPLAYED]
            if (
                result.outcome != Outcome.REPLAYED
                and previous
                and previous[-1].outcome in (Outcome.RATED, Outcome.DUPLICATE)
            ):
                self.applied_twice.append(sequence)
            self.history.setdefault(sequence, []).append(result)

    def final(self, sequence: str) -> str:
        """rated, duplicate or rejected; "unknown" when only replays were reported."""
        for result in reversed(self.history.get(sequence, [])):
            if result.outcome != Outcome.REPLAYED:
                return str(result.outcome)
        return UNKNOWN

    def finals(self, records: Sequence[StreamRecord]) -> dict[str, str]:
        return {record.sequence_number: self.final(record.sequence_number) for record in records}

    def delivered(self, sequence: str) -> bool:
        return sequence in self.history


@dataclass
class DriveLog:
    invocations: int = 0
    errors: int = 0  # invocations that raised
    partial_failures: int = 0
    environments: Counter[int] = field(default_factory=Counter)


def drive(
    records: Sequence[StreamRecord],
    environments: Sequence[Environment],
    rng: random.Random,
    outcomes: OutcomeLog,
    *,
    max_batch: int = 100,
    max_attempts_per_position: int = 50,
) -> DriveLog:
    """Deliver `records` (one shard, in order) until every record is done with."""
    log = DriveLog()
    position, stuck = 0, 0
    while position < len(records):
        if stuck >= max_attempts_per_position:
            raise AssertionError(
                f"record {records[position].sequence_number} failed {stuck} deliveries in a row"
            )
        size = rng.randint(1, max_batch)
        batch = list(records[position : position + size])
        chosen = rng.randrange(len(environments))
        log.invocations += 1
        log.environments[chosen] += 1
        try:
            report = environments[chosen].process(batch)
        except Exception:  # the invocation failed: Lambda delivers from the same position
            log.errors += 1
            stuck += 1
            continue
        outcomes.add(batch, report)
        if not report.failed:
            position += len(batch)
            stuck = 0
            continue
        log.partial_failures += 1
        failed = {record.sequence_number for record in report.failed}
        index = next(i for i, record in enumerate(batch) if record.sequence_number in failed)
        if index:
            stuck = 0
        else:
            stuck += 1
        position += index
    return log
