"""UsageRejected: what the bus is told of the usage records a rater batch rejected, as
summaries (docs/webhooks.md). One per batch, shard, account and period, with counts by
reason code and the span of the records' arrival: never a record's payload, its event id
or the rejection's message, which may carry what a customer sent. The quarantine holds
the records themselves (docs/quarantine.md).

Each summary's `event_id` is derived from the exact set of records it counts (their
positions on the stream): a summary counting the same records has the same id, so a
receiver dedupes it, and one counting others a different id, so a receiver never drops a
record it has not seen. The rater counts only the rejections its invocation kept in the
quarantine (billing.rating.service), so a retried batch does not count again the records
an earlier delivery kept (docs/quarantine.md, *UsageRejected: summaries on the bus*)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from billing.core.periods import Period

DETAIL_TYPE: Final = "UsageRejected"
_UTC: Final = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record a batch rejected, as far as its summary goes."""

    shard_id: str
    sequence_number: str
    account_id: str | None  # None: not an event of any account (too large, not JSON, ...)
    reason: str
    arrived_at: datetime  # when the stream took it


@dataclass(frozen=True, slots=True)
class BatchRange:
    """The sequence numbers a batch held on one shard, which its summaries name."""

    shard_id: str
    first: str
    last: str


def batch_ranges(positions: Sequence[tuple[str, str]]) -> dict[str, BatchRange]:
    """The range of each shard's (shard id, sequence number) positions, by shard."""
    by_shard: dict[str, list[str]] = {}
    for shard_id, sequence_number in positions:
        by_shard.setdefault(shard_id, []).append(sequence_number)
    return {
        shard: BatchRange(shard, min(numbers, key=int), max(numbers, key=int))
        for shard, numbers in by_shard.items()
    }


def summaries(
    rejected: Sequence[RejectedRecord], ranges: dict[str, BatchRange], rejected_at: datetime
) -> list[dict[str, Any]]:
    """The UsageRejected details for a batch's rejected records: one per shard, account
    and period (the UTC month the records arrived in), in a stable order."""
    groups: dict[tuple[str, str, str], list[RejectedRecord]] = {}
    for record in rejected:
        period = str(Period.containing(record.arrived_at, _UTC))
        groups.setdefault((record.shard_id, record.account_id or "", period), []).append(record)
    return [
        _summary(ranges[shard], account, period, records, rejected_at)
        for (shard, account, period), records in sorted(groups.items())
    ]


def _summary(
    batch: BatchRange,
    account: str,
    period: str,
    records: list[RejectedRecord],
    rejected_at: datetime,
) -> dict[str, Any]:
    arrivals = sorted(record.arrived_at for record in records)
    reasons = Counter(record.reason for record in records)
    return {
        "event_id": summary_id((record.shard_id, record.sequence_number) for record in records),
        "account_id": account or None,
        "period": period,
        "rejected": len(records),
        "reasons": dict(sorted(reasons.items())),
        "first_record_at": _iso(arrivals[0]),
        "last_record_at": _iso(arrivals[-1]),
        "shard_id": batch.shard_id,
        "first_sequence_number": batch.first,
        "last_sequence_number": batch.last,
        "rejected_at": _iso(rejected_at),
    }


def summary_id(positions: Iterable[tuple[str, str]]) -> str:
    """Opaque, and the same exactly when the summary counts the same records: the set of
    their (shard id, sequence number) positions (which name their account and period)."""
    named = "\n".join(f"{shard}/{sequence}" for shard, sequence in sorted(set(positions)))
    return f"{DETAIL_TYPE}:{hashlib.sha256(named.encode()).hexdigest()[:32]}"


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
