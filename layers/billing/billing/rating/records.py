"""A batch's stream records and what rating makes of them (pure: no AWS calls).

`StreamRecord` is a record as the stream delivers it; `RecordResult` says where it went
(`Outcome`); `LedgerWrite` is the one write that applies an account's part of a batch;
`BatchResult` holds them all. `billing.rating.rater` makes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, NamedTuple

from billing.core.events import Rejection
from billing.core.periods import Period
from billing.rating.ledger import AccountLedger, IdChunk, RejectedRecord


@dataclass(frozen=True, slots=True)
class StreamRecord:
    shard_id: str
    sequence_number: str  # decimal digits, up to 129 of them
    data: bytes
    partition_key: str = ""
    arrival_timestamp: float = 0.0

    @property
    def sequence(self) -> int:
        return int(self.sequence_number)


# A sequence number has at most 129 digits: a position's shard part sits above them.
_SEQUENCE_SPAN: Final = 10**129
_SHARD_NUMBER: Final = re.compile(r"[0-9]+$")


def stream_position(record: StreamRecord) -> int:
    """Where a record stands on its account's stream, for `latest`'s tie-break (CONTRACT.md
    2a: of events with one timestamp, the one later on the stream wins): its shard's
    number, then its sequence number. Sequence numbers are ordered within a shard only:
    after a reshard a child's are lower than its parent's. An account's records are on one
    shard at a time (its id is the partition key), and Kinesis numbers shards in the order
    it makes them (`shardId-000000000002` after its parent `…0000`), so every record of a
    parent stands before its children's."""
    found = _SHARD_NUMBER.search(record.shard_id)
    shard = int(found.group()) if found else 0
    return shard * _SEQUENCE_SPAN + record.sequence


class Outcome(StrEnum):
    RATED = "rated"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    REPLAYED = "replayed"  # applied by an earlier delivery of the same record
    DEFERRED = "deferred"  # not handled yet: left for the account's next write


class RecordResult(NamedTuple):
    record: StreamRecord
    outcome: Outcome
    account_id: str | None = None
    rejection: Rejection | None = None
    # A rated event no charge of its plan took (billing.core.unpriced): counted in metrics.
    unpriced: bool = False


@dataclass(frozen=True, slots=True)
class LedgerWrite:
    """Replace `before` (by its version) with `after`, once `chunk` (if any) is stored.

    `rejected` are the rejections this write decides: the quarantine keeps them once the
    write has landed (they are also in `after.rejections` until then)."""

    before: AccountLedger
    after: AccountLedger
    chunk: IdChunk | None = None
    rejected: tuple[tuple[StreamRecord, Rejection], ...] = ()

    def opened_before(self, current: Period) -> Period | None:
        """The earliest period before `current` that this write adds usage to and its
        ledger held none for (an event late for its period), if any. A period kept outside
        the ledger counts as opened: whether it held usage is not known without a read, and
        such late events are rarer still."""
        held = self.before.usage
        late = [
            Period.parse(period)
            for period in (*self.after.usage, *self.after.log)
            if period not in held and Period.parse(period) < current
        ]
        return min(late, default=None)


@dataclass
class BatchResult:
    results: list[RecordResult] = field(default_factory=list)
    writes: dict[str, LedgerWrite] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)  # accounts with records left over


def unsettled(ledger: AccountLedger, record: StreamRecord) -> RejectedRecord | None:
    """The rejection `ledger` decided for `record` and still waits to see quarantined."""
    for rejected in ledger.rejections:
        if (rejected.shard_id, rejected.sequence_number) == (
            record.shard_id,
            record.sequence_number,
        ):
            return rejected
    return None
