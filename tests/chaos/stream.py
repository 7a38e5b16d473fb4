"""The usage stream, resharded in the middle of the run, and Lambda's event source mapping
over it.

moto 5 answers SplitShard and MergeShards and lists the child shards with their parents,
but keeps putting records on the closed parent (see docs/chaos.md), so the stream is
simulated here as Kinesis defines it: a record goes to the open shard whose hash key range
holds the MD5 of its partition key; a split closes its shard and opens two children over
its halves, a merge closes two adjacent shards and opens one child over both; each shard's
sequence numbers increase within it only (a child's are lower than its parent's, as can
happen). The mapping reads a child only once every parent has been read to its end.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from billing.rating.rater import StreamRecord
from billing.rating.service import BatchReport, RatingService
from tests.chaos.faults import Crash, FaultPlan
from tests.support.esm_driver import OutcomeLog

HASH_SPACE = 2**128
# The original shards' first sequence number, and (lower) the children's.
PARENT_BASE = 49590338271490256608559692538361571095921575989136588890
CHILD_BASE = 10**55


@dataclass
class Shard:
    shard_id: str
    low: int
    high: int  # exclusive
    parents: tuple[str, ...] = ()
    records: list[StreamRecord] = field(default_factory=list)
    closed: bool = False


class SimulatedStream:
    def __init__(self, shards: int) -> None:
        self.shards: dict[str, Shard] = {}
        step = HASH_SPACE // shards
        for n in range(shards):
            self._open(n * step, HASH_SPACE if n == shards - 1 else (n + 1) * step, ())
        self.events: list[str] = []

    def _open(self, low: int, high: int, parents: tuple[str, ...]) -> Shard:
        shard = Shard(f"shardId-{len(self.shards):012d}", low, high, parents)
        self.shards[shard.shard_id] = shard
        return shard

    def put(self, data: bytes, partition_key: str) -> StreamRecord:
        key = int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
        shard = next(s for s in self.shards.values() if not s.closed and s.low <= key < s.high)
        # Unique across shards (the outcome log keys records by sequence number alone).
        base = (CHILD_BASE if shard.parents else PARENT_BASE) + int(shard.shard_id[8:]) * 10**30
        sequence = str(base + len(shard.records) * 7)
        record = StreamRecord(shard.shard_id, sequence, data, partition_key)
        shard.records.append(record)
        return record

    def split(self, shard_id: str) -> tuple[str, str]:
        parent = self.shards[shard_id]
        parent.closed = True
        middle = (parent.low + parent.high) // 2
        left = self._open(parent.low, middle, (shard_id,))
        right = self._open(middle, parent.high, (shard_id,))
        self.events.append(f"split {shard_id} -> {left.shard_id}, {right.shard_id}")
        return left.shard_id, right.shard_id

    def merge(self, first: str, second: str) -> str:
        a, b = self.shards[first], self.shards[second]
        assert a.high == b.low, "only adjacent shards merge"
        a.closed = b.closed = True
        child = self._open(a.low, b.high, (first, second))
        self.events.append(f"merge {first} + {second} -> {child.shard_id}")
        return child.shard_id

    def records(self) -> list[StreamRecord]:
        return [record for shard in self.shards.values() for record in shard.records]


@dataclass
class MappingLog:
    invocations: int = 0
    crashed: int = 0
    partial_failures: int = 0
    redelivered: int = 0
    order: list[str] = field(default_factory=list)  # shards in the order they were finished
    by_environment: Counter[int] = field(default_factory=Counter)


@dataclass
class Mapping:
    """Lambda's event source mapping on the stream: one batch at a time from a shard it may
    read (parents finished), random boundaries, retries from the lowest failed record (a
    crashed invocation: from the same place), successful batches sometimes delivered
    again, each invocation on one of the warm environments at random."""

    stream: SimulatedStream
    environments: Sequence[RatingService]
    plan: FaultPlan
    rng: random.Random
    outcomes: OutcomeLog
    max_batch: int = 100
    log: MappingLog = field(default_factory=MappingLog)
    progress: Callable[[str], None] | None = None  # told at each tenth of the records

    def _tell(self, position: dict[str, int], told: int) -> int:
        total = sum(len(s.records) for s in self.stream.shards.values())
        tenth = sum(position.values()) * 10 // max(total, 1)
        if self.progress is not None and tenth > told:
            self.progress(
                f"rating: {tenth * 10}% of the records, {self.log.invocations} invocations"
            )
        return max(tenth, told)

    def run(self) -> None:
        position = dict.fromkeys(self.stream.shards, 0)
        done: set[str] = set()
        told = 0
        while len(done) < len(position):
            ready = [
                s
                for s in self.stream.shards.values()
                if s.shard_id not in done and all(p in done for p in s.parents)
            ]
            shard = self.rng.choice(ready)
            if position[shard.shard_id] >= len(shard.records):
                done.add(shard.shard_id)
                self.log.order.append(shard.shard_id)
                continue
            position[shard.shard_id] = self._deliver(shard.records, position[shard.shard_id])
            told = self._tell(position, told)

    def _deliver(self, records: list[StreamRecord], start: int) -> int:
        """One invocation from `start`; where the shard's next batch starts."""
        batch = records[start : start + self.rng.randint(1, self.max_batch)]
        chosen = self.rng.randrange(len(self.environments))
        other = self.environments[1 - chosen] if len(self.environments) == 2 else None
        self.plan.begin_invocation(self._racer(other, batch) if other else None)
        self.log.invocations += 1
        self.log.by_environment[chosen] += 1
        try:
            report = self.environments[chosen].process(batch)
        except Crash:
            self.log.crashed += 1
            return start
        self.outcomes.add(batch, report)
        if report.failed:
            self.log.partial_failures += 1
            failed = {record.sequence_number for record in report.failed}
            return start + next(i for i, r in enumerate(batch) if r.sequence_number in failed)
        if self.rng.random() < self.plan.rates.redeliver:
            self.log.redelivered += 1
            return start
        return start + len(batch)

    def _racer(self, other: RatingService, batch: list[StreamRecord]) -> Callable[[], None]:
        def race() -> None:
            report: BatchReport = other.process(batch)
            self.outcomes.add(batch, report)

        return race
