"""An account's ledger: what the rater keeps per account between batches (pure data).

One ledger item per account is the account's only commit point: a batch applies to an
account by one conditional write of it, and every other item the rater writes for the
account (id chunks) is immutable and named by its own content, written before the ledger
that refers to it. So a stale writer or a retry can add an unreferenced item, never change
one that a committed ledger counts. See docs/table-design.md.

- `version` is bumped by every write; writers (the rater, the invoice close) write only over
  the version they read. `token` is a fresh random value per write attempt: a writer that
  lost the answer to its write reads the ledger back and knows by the token whether it
  landed.
- `watermarks`: per shard, the highest sequence number of this account's records handled
  (rated, duplicate or rejected). A record at or below it is a replay. Sequence numbers are
  only ordered within a shard, so a child shard after a reshard starts its own.
- `usage`: the aggregates of the open periods kept in the ledger (at most
  INLINE_PERIODS_MAX, the latest). Running charges are not stored: they are priced from the
  aggregates with the catalog in force when they are read. Older periods, once pushed out
  (`cold_until` is the latest of them), live in items of their own, one per period (the
  period archive's item); a batch's additions to them travel in the ledger (`log`) and are
  applied to those items, exactly once each, before the next write of the ledger.
- `closed`: periods that are invoiced; their events are rejected as PERIOD_CLOSED.
- Event-id digests, for deduplication: the recent ones inline (`recent_ids`, by period of the
  event that claimed them), the rest in immutable chunks (`chunk_refs`). An account too busy
  for its digests to be held in memory (`keyed`) claims its new ids as one item per digest.
- `rejections`: rejected records this ledger's commits decided whose quarantine objects are
  not known to be written yet (the quarantine follows the ledger, never the other way).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final

from billing.core.unpriced import capped_unpriced
from billing.core.usage import MeterUsage, capped_days

DIGEST_BYTES: Final = 16  # 128-bit digests: a collision needs ~2^64 ids in one account
CHUNK_KEY_BYTES: Final = 12
# The contract keeps an event id for as long as its period is open "and in any case for 35
# days after the first one was rated".
DEDUPE_DAYS: Final = 35
# Shards remembered per account: a reshard adds one; parents are done before children.
WATERMARK_SHARDS: Final = 16
# Periods whose usage the ledger holds itself; older ones move to items of their own.
INLINE_PERIODS_MAX: Final = 12
# A chunk of more periods than this records none of them: it counts as live until its
# items expire (ID_RETENTION_DAYS), which keeps a ledger's refs small whatever the periods.
REF_PERIODS_MAX: Final = 8
ID_RETENTION_DAYS: Final = 400
ANY_PERIOD: Final = "*"

_blake2b = hashlib.blake2b
_EPOCH: Final = date(1970, 1, 1)


def id_digest(event_id: str) -> bytes:
    """The digest under which an event id is remembered for deduplication."""
    return _blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


def new_token() -> str:
    """A fresh value that names one write attempt."""
    return uuid.uuid4().hex


def split_digests(blob: bytes) -> list[bytes]:
    return [blob[i : i + DIGEST_BYTES] for i in range(0, len(blob), DIGEST_BYTES)]


def epoch_day(moment: datetime) -> int:
    """Days since 1970-01-01 of an aware datetime, in UTC: how rating days are kept."""
    return (moment.astimezone(UTC).date() - _EPOCH).days


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A rejection a committed ledger decided, until its quarantine object is known to exist."""

    shard_id: str
    sequence_number: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """What a ledger knows of one id chunk: its key, size, periods and latest rating day."""

    key: bytes  # CHUNK_KEY_BYTES of the chunk's content hash: its item's name
    count: int
    periods: frozenset[str]
    day: int  # the latest epoch day on which a digest in it was rated
    pending: bool = False  # a keyed account's chunk whose digests await their claim items

    def live(self, closed: frozenset[str], today: int) -> bool:
        """Whether its digests still count: a period open, or rated within 35 days."""
        if ANY_PERIOD in self.periods:
            return self.day + ID_RETENTION_DAYS > today
        return not self.periods <= closed or self.day + DEDUPE_DAYS >= today


@dataclass(frozen=True, slots=True)
class IdChunk:
    """Event-id digests spilled from a ledger, by period. Named by its content, so writing
    it again is harmless and no other content can ever be stored under its key."""

    account_id: str
    ids: Mapping[str, bytes]  # period -> concatenated digests
    day: int
    pending: bool = False

    @property
    def key(self) -> bytes:
        content = _blake2b(digest_size=CHUNK_KEY_BYTES)
        for period in sorted(self.ids):
            content.update(period.encode() + b"\0" + self.ids[period] + b"\0")
        content.update(str(self.day).encode())
        return content.digest()

    @property
    def count(self) -> int:
        return sum(len(blob) for blob in self.ids.values()) // DIGEST_BYTES

    def ref(self) -> ChunkRef:
        periods = frozenset(self.ids) if len(self.ids) <= REF_PERIODS_MAX else {ANY_PERIOD}
        return ChunkRef(self.key, self.count, frozenset(periods), self.day, self.pending)

    def digests(self) -> Iterable[bytes]:
        for blob in self.ids.values():
            yield from split_digests(blob)


@dataclass(frozen=True, slots=True)
class AccountLedger:
    account_id: str
    version: int = 0  # 0: never stored
    token: str = ""
    watermarks: Mapping[str, int] = field(default_factory=dict)
    usage: Mapping[str, Mapping[str, MeterUsage]] = field(default_factory=dict)
    closed: frozenset[str] = frozenset()
    recent_ids: Mapping[str, bytes] = field(default_factory=dict)
    recent_day: int = 0  # the latest epoch day on which a recent id was rated
    chunk_refs: tuple[ChunkRef, ...] = ()
    keyed: bool = False
    rejections: tuple[RejectedRecord, ...] = ()
    expires_at: int | None = None  # set on the ledger of an account not (yet) known
    cold_until: str = ""  # the latest period kept outside the ledger ("" for none)
    log: Mapping[str, Mapping[str, MeterUsage]] = field(default_factory=dict)
    # Periods of `log` that this version moved out: their entry is their whole usage and
    # replaces whatever their item holds (an archive a failed close left, say).
    moved_out: frozenset[str] = frozenset()

    def holds_inline(self, period: str) -> bool:
        """Whether the period's usage is (or would go) in the ledger itself."""
        return period in self.usage or period > self.cold_until

    def replayed(self, shard_id: str, sequence: int) -> bool:
        return sequence <= self.watermarks.get(shard_id, -1)

    def live_chunks(self, today: int) -> tuple[ChunkRef, ...]:
        return tuple(ref for ref in self.chunk_refs if ref.live(self.closed, today))

    def live_recent_ids(self, today: int) -> dict[str, bytes]:
        """The inline digests, by period, that still count (a period open, or rated within
        35 days)."""
        keep_closed = self.recent_day + DEDUPE_DAYS >= today
        return {
            period: blob
            for period, blob in self.recent_ids.items()
            if keep_closed or period not in self.closed
        }

    def recent_digests(self, today: int) -> set[bytes]:
        """The inline digests that still count, as a set."""
        return {
            blob[i : i + DIGEST_BYTES]
            for blob in self.live_recent_ids(today).values()
            for i in range(0, len(blob), DIGEST_BYTES)
        }

    def bumped(
        self,
        *,
        token: str | None = None,
        watermarks: Mapping[str, int] | None = None,
        usage: Mapping[str, Mapping[str, MeterUsage]] | None = None,
        closed: frozenset[str] | None = None,
        recent_ids: Mapping[str, bytes] | None = None,
        recent_day: int | None = None,
        chunk_refs: tuple[ChunkRef, ...] | None = None,
        keyed: bool | None = None,
        rejections: tuple[RejectedRecord, ...] | None = None,
        expires_at: int | None = None,
        cold_until: str | None = None,
        log: Mapping[str, Mapping[str, MeterUsage]] | None = None,
        moved_out: frozenset[str] = frozenset(),
    ) -> AccountLedger:
        """A copy with these changes, the next version and a new token (unless given). A
        ledger of a known account never expires: `expires_at` is kept only when given. The
        log is what the new version adds to periods kept outside it (none unless given):
        the log before must have been applied."""
        return AccountLedger(
            self.account_id,
            self.version + 1,
            new_token() if token is None else token,
            self.watermarks if watermarks is None else watermarks,
            self.usage if usage is None else usage,
            self.closed if closed is None else closed,
            self.recent_ids if recent_ids is None else recent_ids,
            self.recent_day if recent_day is None else recent_day,
            self.chunk_refs if chunk_refs is None else chunk_refs,
            self.keyed if keyed is None else keyed,
            self.rejections if rejections is None else rejections,
            expires_at,
            self.cold_until if cold_until is None else cold_until,
            {} if log is None else log,
            moved_out,
        )


def merged_usage(
    into: Mapping[str, MeterUsage], added: Mapping[str, MeterUsage]
) -> dict[str, MeterUsage]:
    """One period's usage by meter with more added to it, its days and its unpriced values
    within their budgets (`capped_days`, `capped_unpriced`): every writer of a period's
    usage (the rater, a log applied to a period item) and every reader merging a log goes
    through here, so all decide alike."""
    result = dict(into)
    for meter, usage in added.items():
        current = result.get(meter)
        result[meter] = usage if current is None else current.merge(usage)
    return dict(capped_unpriced(capped_days(result)))


def advanced(watermarks: Mapping[str, int], moves: Mapping[str, int]) -> dict[str, int]:
    """Watermarks moved up to `moves` (per shard), the shards moved last kept newest, at most
    WATERMARK_SHARDS of them (a shard closed by a reshard is finished before its children)."""
    result = {shard: mark for shard, mark in watermarks.items() if shard not in moves}
    for shard, mark in moves.items():
        result[shard] = max(mark, watermarks.get(shard, -1))
    while len(result) > WATERMARK_SHARDS:
        del result[next(iter(result))]
    return result
