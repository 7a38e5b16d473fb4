"""Rating a batch of stream records into account ledgers (pure: no AWS calls).

`rate_batch` takes the batch's decoded records and the current ledgers of the accounts in
it, and returns where every record went and, per account, the one ledger write (and at
most one new chunk of spilled event ids) that applies the batch. Writing is the store's
job; if a write loses a race, the caller reloads that account's ledger and rates its
records again, which gives the same answer a clean run would.

Every record of an account, rejected ones included, moves the account's watermark, so a
retry replays a decision instead of judging the record again against a later clock or
catalog. A record whose account is not known is kept in a ledger of its own for that
account id (one that expires), for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, NamedTuple

from billing.core.catalog import Account, Aggregation, Catalog, Plan
from billing.core.events import Rejection, UsageEvent
from billing.core.periods import Period
from billing.core.usage import (
    Aggregate,
    MeterUsage,
    period_bytes_bound,
    priced_shares,
    usage_bytes,
)
from billing.rating.intake import AccountIntake, IsClosed, never_closed, unknown_account
from billing.rating.ledger import (
    DIGEST_BYTES,
    INLINE_PERIODS_MAX,
    AccountLedger,
    ChunkRef,
    IdChunk,
    RejectedRecord,
    advanced,
    epoch_day,
    id_digest,
    merged_usage,
    new_token,
)

# Digests kept inside the ledger item before they are spilled into a chunk: 32 × 16 bytes
# keeps a typical ledger under 1 KB, one write unit.
INLINE_IDS_MAX: Final = 32
# A new chunk takes in the newest chunks while they are no bigger than it and under this
# many digests (8 KB): an account that spills little at a time does not pile up chunks,
# and a busy one never rewrites a large chunk.
MERGE_BELOW: Final = 512
# Past these, an account's digests no longer fit a rater's memory: it claims new ids as one
# item per digest instead (docs/table-design.md, "Producer duplicates").
CHUNKED_DIGESTS_MAX: Final = 250_000
CHUNK_REFS_MAX: Final = 200
# Rejections one ledger write may carry until their quarantine objects are written; an
# account's records past it wait for the next write of the same batch.
REJECTIONS_PER_WRITE: Final = 100
# How long the ledger of an unknown account id is kept: well past the stream's record age.
UNKNOWN_ACCOUNT_DAYS: Final = 7
# Periods one ledger write may touch: bounds what it carries for periods kept outside it
# (at most twice that many periods' usage: those touched, and those pushed out). An
# account's records past it wait for the next write of the same batch.
PERIODS_PER_WRITE: Final = 16
LOG_BYTES: Final = 128 * 1024
# Usage the ledger keeps itself, beyond its latest period.
INLINE_USAGE_BYTES: Final = 64 * 1024


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


# The outcomes as plain names: an enum member looked up on its class costs a lookup per
# record on the hot path.
_RATED, _DUPLICATE, _REJECTED, _REPLAYED, _DEFERRED = (
    Outcome.RATED,
    Outcome.DUPLICATE,
    Outcome.REJECTED,
    Outcome.REPLAYED,
    Outcome.DEFERRED,
)


@dataclass(frozen=True, slots=True)
class LedgerWrite:
    """Replace `before` (by its version) with `after`, once `chunk` (if any) is stored.

    `rejected` are the rejections this write decides: the quarantine keeps them once the
    write has landed (they are also in `after.rejections` until then)."""

    before: AccountLedger
    after: AccountLedger
    chunk: IdChunk | None = None
    rejected: tuple[tuple[StreamRecord, Rejection], ...] = ()


@dataclass
class BatchResult:
    results: list[RecordResult] = field(default_factory=list)
    writes: dict[str, LedgerWrite] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)  # accounts with records left over


class _Tally:
    """One meter's rated events in one period of the batch: their quantities, and those of
    the events that pass each filtered charge. Added up once, when the batch is applied."""

    __slots__ = ("quantities", "shares")

    def __init__(self) -> None:
        self.quantities: list[Decimal] = []
        self.shares: dict[str, list[Decimal]] = {}  # by the filtered charge's filter key

    def usage(self, aggregation: Aggregation) -> MeterUsage:
        return MeterUsage(
            aggregation,
            Aggregate.of(aggregation, self.quantities),
            {key: Aggregate.of(aggregation, shares) for key, shares in self.shares.items()},
        )


class _PeriodPart:
    """What one account's batch adds to one period: tallies by meter, claimed digests."""

    __slots__ = ("digests", "label", "tallies")

    def __init__(self, period: Period) -> None:
        self.label = str(period)
        self.tallies: dict[str, _Tally] = {}
        self.digests = bytearray()


class _AccountBatch:
    """One account's part of the batch: its ledger, what it has claimed, what it adds up to.
    `intake` is None for an account id that is not known: its records are all rejected."""

    __slots__ = (
        "_filtered",
        "_part",
        "_period",
        "carried",
        "claimed",
        "deferred",
        "intake",
        "ledger",
        "marks",
        "parts",
        "periods_per_write",
        "plan",
        "rejected",
        "seen",
    )

    def __init__(
        self,
        account: Account | None,
        catalog: Catalog,
        ledger: AccountLedger,
        seen: Container[bytes],
        now: datetime,
        settled: Callable[[RejectedRecord], bool],
        periods_per_write: dict[str, int],
    ):
        self.ledger, self.seen = ledger, seen
        # Rejections the ledger still carries: their records' quarantine objects may be
        # missing, so the next write carries them on.
        self.carried = sum(1 for r in ledger.rejections if not settled(r))
        self.intake: AccountIntake | None = None
        self.plan: Plan | None = None
        self.periods_per_write = PERIODS_PER_WRITE
        if account is not None:
            is_closed: IsClosed = never_closed
            if ledger.closed:
                closed = ledger.closed
                is_closed = lambda _account_id, period: str(period) in closed  # noqa: E731
            self.intake = AccountIntake(account, catalog, now, is_closed)
            self.plan = plan = self.intake.plan
            per_write = periods_per_write.get(plan.id)
            if per_write is None:
                per_write = periods_per_write[plan.id] = _periods_per_write(plan, catalog)
            self.periods_per_write = per_write
            self._filtered = plan.filtered_charges
        self.claimed: set[bytes] = set()
        self.marks: dict[str, int] = {}  # shard -> highest sequence number handled
        self.rejected: list[tuple[StreamRecord, Rejection]] = []
        self.deferred = False
        self.parts: dict[Period, _PeriodPart] = {}
        self._period: Period | None = None  # the period last rated into, and its part
        self._part: _PeriodPart | None = None

    def must_wait(self, period: Period | Rejection) -> bool:
        """Whether the write is full: of rejections waiting for the quarantine, or of
        periods (a record's outcome is decided only in the write that applies it)."""
        if isinstance(period, Rejection):
            return len(self.rejected) + self.carried >= REJECTIONS_PER_WRITE
        return period not in self.parts and len(self.parts) >= self.periods_per_write

    def rate(self, event: UsageEvent, period: Period, digest: bytes) -> bool:
        """Claim the event's id and add it up; False when the id was seen before."""
        if digest in self.claimed or digest in self.seen:
            return False
        self.claimed.add(digest)
        part = self._part
        if period is not self._period or part is None:
            part = self.parts.get(period)
            if part is None:
                part = self.parts[period] = _PeriodPart(period)
            self._period, self._part = period, part
        meter, quantity = event.meter, event.quantity
        tally = part.tallies.get(meter)
        if tally is None:
            tally = part.tallies[meter] = _Tally()
        tally.quantities.append(quantity)
        if event.dimensions:  # an event without dimensions passes no filter
            for charge in self._filtered.get(meter, ()):
                if charge.accepts(event.dimensions):
                    share = tally.shares.get(charge.filter_key)
                    if share is None:
                        share = tally.shares[charge.filter_key] = []
                    share.append(quantity)
        part.digests += digest
        return True


def rate_batch(
    records: Sequence[tuple[StreamRecord, UsageEvent | Rejection]],
    *,
    catalog: Catalog,
    accounts: Mapping[str, Account],
    ledgers: Mapping[str, AccountLedger],
    seen: Mapping[str, Container[bytes]],
    now: datetime,
    token: Callable[[], str] = new_token,
    chunks: Mapping[bytes, IdChunk] | None = None,
    settled: Callable[[RejectedRecord], bool] = lambda _: False,
    flushed: Container[bytes] = frozenset(),
) -> BatchResult:
    """Rate decoded records in stream order.

    `ledgers` should cover every account id in the batch (a missing one is taken as never
    stored); `seen` holds, per account, the digests claimed before (inline, in chunks and in
    claim items). `chunks` are id chunks at hand, for merging small ones into a new chunk.
    `settled` says of a rejection a ledger still carries that its quarantine object exists;
    `flushed` holds the keys of pending chunks whose claim items are written. `token` makes
    each write's token. Each ledger's `log` must have been applied (the store does it when
    it reads what the ledger has seen)."""
    result = BatchResult()
    results = result.results
    batches: dict[str, _AccountBatch] = {}
    per_write: dict[str, int] = {}  # by plan
    for record, decoded in records:
        if isinstance(decoded, Rejection):  # no account to tie it to: decided by its bytes
            results.append(RecordResult(record, _REJECTED, rejection=decoded))
            continue
        account_id = decoded.account_id
        batch = batches.get(account_id)
        if batch is None:
            ledger = ledgers.get(account_id) or AccountLedger(account_id)
            batch = batches[account_id] = _AccountBatch(
                accounts.get(account_id),
                catalog,
                ledger,
                seen.get(account_id, ()),
                now,
                settled,
                per_write,
            )
        if batch.deferred:
            results.append(RecordResult(record, _DEFERRED, account_id))
            continue
        sequence = record.sequence
        shard = record.shard_id
        if batch.ledger.replayed(shard, sequence):
            results.append(RecordResult(record, _REPLAYED, account_id))
            continue
        intake = batch.intake
        period = unknown_account(decoded) if intake is None else intake.period_of(decoded)
        if batch.must_wait(period):
            batch.deferred = True
            result.deferred.add(account_id)
            results.append(RecordResult(record, _DEFERRED, account_id))
            continue
        if isinstance(period, Rejection):
            batch.rejected.append((record, period))
            results.append(RecordResult(record, _REJECTED, account_id, period))
        elif batch.rate(decoded, period, id_digest(decoded.event_id)):
            results.append(RecordResult(record, _RATED, account_id))
        else:
            results.append(RecordResult(record, _DUPLICATE, account_id))
        marks = batch.marks
        if sequence > marks.get(shard, -1):
            marks[shard] = sequence
    for account_id, batch in batches.items():
        if batch.marks:
            result.writes[account_id] = _apply(
                batch, catalog, now, token(), chunks or {}, settled, flushed
            )
    return result


def _apply(
    batch: _AccountBatch,
    catalog: Catalog,
    now: datetime,
    token: str,
    chunks: Mapping[bytes, IdChunk],
    settled: Callable[[RejectedRecord], bool],
    flushed: Container[bytes],
) -> LedgerWrite:
    """The batch's write for one account: merged usage, claimed ids, decided rejections.

    Only the periods the batch touched are copied and changed; the others are shared with
    the ledger read (ledgers are never changed in place)."""
    ledger, plan = batch.ledger, batch.plan
    today = epoch_day(now)
    usage = dict(ledger.usage)
    log: dict[str, dict[str, MeterUsage]] = {}
    recent = ledger.live_recent_ids(today)
    for part in batch.parts.values():
        assert plan is not None  # only a known account's events are rated
        period = part.label
        added = {
            meter: tally.usage(catalog.meters_by_name[meter].aggregation)
            for meter, tally in part.tallies.items()
        }
        if ledger.holds_inline(period):
            usage[period] = priced_shares(merged_usage(usage.get(period, {}), added), plan)
        else:
            log[period] = priced_shares(merged_usage(log.get(period, {}), added), plan)
        recent[period] = recent.get(period, b"") + part.digests
    cold_until = ledger.cold_until
    moved_out: set[str] = set()
    for period in _pushed_out(usage):
        # The oldest move out: every period kept outside is older than those kept inside.
        log[period] = dict(usage.pop(period))
        moved_out.add(period)
        cold_until = max(cold_until, period)
    recent_day = today if batch.parts else ledger.recent_day
    refs = [
        ref
        for ref in ledger.live_chunks(today)
        if not (ref.pending and ref.key in flushed)  # its digests are claim items now
    ]
    chunk = None
    if sum(map(len, recent.values())) > INLINE_IDS_MAX * DIGEST_BYTES:
        chunk, refs = _spill(ledger, recent, max(recent_day, ledger.recent_day), refs, chunks)
        recent = {}
    keyed = ledger.keyed or (
        len(refs) >= CHUNK_REFS_MAX or sum(r.count for r in refs) >= CHUNKED_DIGESTS_MAX
    )
    rejections = tuple(r for r in ledger.rejections if not settled(r)) + tuple(
        RejectedRecord(
            record.shard_id, record.sequence_number, str(rejection.reason), rejection.message
        )
        for record, rejection in batch.rejected
    )
    after = ledger.bumped(
        token=token,
        watermarks=advanced(ledger.watermarks, batch.marks),
        usage=usage,
        recent_ids=recent,
        recent_day=recent_day,
        chunk_refs=tuple(refs),
        keyed=keyed,
        rejections=rejections,
        expires_at=_expiry(batch, today),
        cold_until=cold_until,
        log=log,
        moved_out=frozenset(moved_out),
    )
    return LedgerWrite(ledger, after, chunk, tuple(batch.rejected))


def _expiry(batch: _AccountBatch, today: int) -> int | None:
    """When the ledger written for an account id that is not known may go: a week on, if
    it holds nothing but watermarks and rejections. A ledger that held more (the account
    was known, and this rater's view of the accounts is behind) never expires."""
    ledger = batch.ledger
    if batch.intake is not None or (ledger.version and ledger.expires_at is None):
        return None
    return (today + UNKNOWN_ACCOUNT_DAYS) * 86_400


def _periods_per_write(plan: Plan, catalog: Catalog) -> int:
    """How many periods a write for an account on `plan` may touch: as many as keep its
    log (twice that many periods' usage at the most) within LOG_BYTES."""
    bound = period_bytes_bound(plan, catalog.meters)
    return max(1, min(PERIODS_PER_WRITE, LOG_BYTES // (2 * bound)))


def _pushed_out(usage: Mapping[str, Mapping[str, MeterUsage]]) -> list[str]:
    """The oldest periods, past INLINE_PERIODS_MAX or INLINE_USAGE_BYTES (the latest stays)."""
    periods = sorted(usage)
    out = periods[: max(0, len(periods) - INLINE_PERIODS_MAX)]
    kept = periods[len(out) :]
    if len(kept) > 1:
        size = sum(usage_bytes(usage[period]) for period in kept)
        while len(kept) > 1 and size > INLINE_USAGE_BYTES:
            size -= usage_bytes(usage[kept[0]])
            out.append(kept.pop(0))
    return out


def _spill(
    ledger: AccountLedger,
    recent: Mapping[str, bytes],
    day: int,
    refs: list[ChunkRef],
    chunks: Mapping[bytes, IdChunk],
) -> tuple[IdChunk, list[ChunkRef]]:
    """Move the inline digests into a new chunk, taking in the newest small chunks.

    A keyed account's new chunk is pending: its digests become claim items once it is
    committed, and it is never merged (it leaves the ledger once they are written)."""
    ids = dict(recent)
    count = sum(map(len, ids.values())) // DIGEST_BYTES
    if not ledger.keyed:
        while refs and not refs[-1].pending and refs[-1].count < MERGE_BELOW:
            newest = refs[-1]
            held = chunks.get(newest.key)
            if held is None or newest.count > count:
                break
            refs.pop()
            for period, blob in held.ids.items():
                ids[period] = blob + ids.get(period, b"")
            count += newest.count
            day = max(day, newest.day)
    chunk = IdChunk(ledger.account_id, ids, day, pending=ledger.keyed)
    return chunk, [*refs, chunk.ref()]


def unsettled(ledger: AccountLedger, record: StreamRecord) -> RejectedRecord | None:
    """The rejection `ledger` decided for `record` and still waits to see quarantined."""
    for rejected in ledger.rejections:
        if (rejected.shard_id, rejected.sequence_number) == (
            record.shard_id,
            record.sequence_number,
        ):
            return rejected
    return None


__all__ = [
    "BatchResult",
    "LedgerWrite",
    "Outcome",
    "RecordResult",
    "StreamRecord",
    "rate_batch",
    "unsettled",
]
