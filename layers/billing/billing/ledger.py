"""An account's ledger: what the rater keeps per account between batches (pure data).

One ledger per account holds everything the rater must read and write together, so one
conditional write per account per batch keeps it consistent:
- `sequence`: the highest Kinesis sequence number applied (an int; they have up to 129
  digits). A record at or below it was applied before and is skipped on a retry.
- `version`: bumped by every write; writers (the rater, the invoice close) write only over
  the version they read, so a race is a retry, never a lost update.
- `usage` and `charges`: the open periods' aggregates and running charges.
- `closed`: periods that are invoiced; their events are rejected as PERIOD_CLOSED.
- `recent_ids` and `chunks`: the event-id digests seen in open periods. Recent ones live in
  the ledger itself; past a threshold they are spilled into immutable numbered chunks
  (1..chunks), stored beside it; `chunk_ranges` says which chunks hold each open period's
  digests, so a closed period's chunks are never needed again. See docs/table-design.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from billing.usage import MeterUsage

DIGEST_BYTES = 16  # 128-bit digests: a collision needs ~2^64 ids in one account


_blake2b = hashlib.blake2b


def id_digest(event_id: str) -> bytes:
    """The digest under which an event id is remembered for deduplication."""
    return _blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def split_digests(blob: bytes) -> list[bytes]:
    return [blob[i : i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES)]


@dataclass(frozen=True, slots=True)
class IdChunk:
    """Event-id digests spilled from a ledger, by period. Immutable once committed."""

    account_id: str
    index: int
    ids: Mapping[str, bytes]  # period -> concatenated digests

    @property
    def count(self) -> int:
        return sum(len(blob) for blob in self.ids.values()) // DIGEST_BYTES


@dataclass(frozen=True, slots=True)
class AccountLedger:
    account_id: str
    version: int = 0  # 0: never stored
    sequence: int = -1
    usage: Mapping[str, Mapping[str, MeterUsage]] = field(default_factory=dict)
    charges: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)
    closed: frozenset[str] = frozenset()
    recent_ids: Mapping[str, bytes] = field(default_factory=dict)
    chunks: int = 0
    chunk_ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def needed_chunks(self) -> list[int]:
        """The chunk indices holding digests of periods still open."""
        needed: set[int] = set()
        for period, (first, last) in self.chunk_ranges.items():
            if period not in self.closed:
                needed.update(range(first, last + 1))
        return sorted(needed)

    def open_digests(self, chunks: Iterable[IdChunk] = ()) -> set[bytes]:
        """Every digest claimed in an open period, from the ledger and its chunks."""
        seen: set[bytes] = set()
        for source in (self.recent_ids, *(chunk.ids for chunk in chunks)):
            for period, blob in source.items():
                if period not in self.closed:
                    seen.update(split_digests(blob))
        return seen

    def bumped(
        self,
        *,
        sequence: int | None = None,
        usage: Mapping[str, Mapping[str, MeterUsage]] | None = None,
        charges: Mapping[str, Mapping[str, Decimal]] | None = None,
        closed: frozenset[str] | None = None,
        recent_ids: Mapping[str, bytes] | None = None,
        chunks: int | None = None,
        chunk_ranges: Mapping[str, tuple[int, int]] | None = None,
    ) -> AccountLedger:
        """A copy with these changes and the next version."""
        return AccountLedger(
            self.account_id,
            self.version + 1,
            self.sequence if sequence is None else sequence,
            self.usage if usage is None else usage,
            self.charges if charges is None else charges,
            self.closed if closed is None else closed,
            self.recent_ids if recent_ids is None else recent_ids,
            self.chunks if chunks is None else chunks,
            self.chunk_ranges if chunk_ranges is None else chunk_ranges,
        )
