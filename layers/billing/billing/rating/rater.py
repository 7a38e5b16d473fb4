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

import gc
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Final

from billing.core.catalog import Account, Catalog, Plan
from billing.core.events import Rejection, UsageEvent, decode_record
from billing.core.phases import phase_shares, split_key
from billing.core.usage import DAYS_BYTES_MAX, MeterUsage, period_bytes_bound, usage_bytes
from billing.rating.account_batch import (
    DIGESTS_PER_WRITE,
    AccountBatch,
    CatalogFacts,
    intake_for,
)
from billing.rating.ledger import (
    DIGEST_BYTES,
    INLINE_PERIODS_MAX,
    AccountLedger,
    ChunkRef,
    IdChunk,
    RejectedRecord,
    advanced,
    epoch_day,
    merged_usage,
    new_token,
)
from billing.rating.records import (
    BatchResult,
    LedgerWrite,
    Outcome,
    RecordResult,
    StreamRecord,
    unsettled,
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

# Usage by period, then by meter.
_ByPeriod = dict[str, Mapping[str, MeterUsage]]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a batch is decoded or rated.

    A batch allocates tens of thousands of objects that all outlive it or die by reference
    counting (no cycles); the collector would otherwise walk them, and every ledger held
    between batches, again and again while they are made (about a fifth of the rater's
    CPU). It runs as usual once the batch is done."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def decode_batch(
    records: Sequence[StreamRecord],
) -> list[tuple[StreamRecord, UsageEvent | Rejection]]:
    """Every record with its event or its rejection, in stream order."""
    with collector_paused():
        return [(record, decode_record(record.data)) for record in records]


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
    with collector_paused():
        return _rated(
            records, catalog, accounts, ledgers, seen, now, token, chunks, settled, flushed
        )


def _rated(
    records: Sequence[tuple[StreamRecord, UsageEvent | Rejection]],
    catalog: Catalog,
    accounts: Mapping[str, Account],
    ledgers: Mapping[str, AccountLedger],
    seen: Mapping[str, Container[bytes]],
    now: datetime,
    token: Callable[[], str],
    chunks: Mapping[bytes, IdChunk] | None,
    settled: Callable[[RejectedRecord], bool],
    flushed: Container[bytes],
) -> BatchResult:
    result = BatchResult()
    results = result.results
    batches: dict[str, AccountBatch] = {}
    per_write: dict[str, int] = {}  # by plan
    facts = CatalogFacts(catalog.meters_by_name)
    for record, decoded in records:
        if isinstance(decoded, Rejection):  # no account to tie it to: decided by its bytes
            results.append(RecordResult(record, Outcome.REJECTED, rejection=decoded))
            continue
        batch = batches.get(decoded.account_id)
        if batch is None:
            ledger = ledgers.get(decoded.account_id) or AccountLedger(decoded.account_id)
            batch = batches[decoded.account_id] = _open(
                accounts.get(decoded.account_id),
                catalog,
                ledger,
                seen.get(decoded.account_id, ()),
                now,
                settled,
                (per_write, facts),
            )
        results.append(batch.decide(record, decoded))
    today = epoch_day(now)
    for account_id, batch in batches.items():
        if batch.deferred:
            result.deferred.add(account_id)
        if batch.marks:
            result.writes[account_id] = _apply(
                batch, catalog, today, token(), chunks or {}, settled, flushed
            )
    return result


def _open(
    account: Account | None,
    catalog: Catalog,
    ledger: AccountLedger,
    seen: Container[bytes],
    now: datetime,
    settled: Callable[[RejectedRecord], bool],
    shared: tuple[dict[str, int], CatalogFacts],
) -> AccountBatch:
    """An account's part of the batch, with the limits of its write (read here, when the
    batch is rated, so that a test may lower them). `shared` is the batch's: the limits by
    plan, and what its accounts look up in the catalog."""
    per_write, facts = shared
    if account is None:
        return AccountBatch(
            ledger,
            seen,
            settled,
            None,
            periods_per_write=PERIODS_PER_WRITE,
            rejections_per_write=REJECTIONS_PER_WRITE,
        )
    intake = intake_for(account, catalog, ledger, now)
    if intake.phases is None:
        periods = per_write.get(intake.plan.id)
        if periods is None:
            periods = per_write[intake.plan.id] = _periods_per_write(intake.plan, catalog)
    else:
        periods = _periods_per_write(intake.plan, catalog, intake.phases.period_bytes_bound())
    return AccountBatch(
        ledger,
        seen,
        settled,
        intake,
        periods_per_write=periods,
        rejections_per_write=REJECTIONS_PER_WRITE,
        meters=catalog.meters_by_name,
        digests_per_write=DIGESTS_PER_WRITE,
        facts=facts,
    )


def _apply(
    batch: AccountBatch,
    catalog: Catalog,
    today: int,
    token: str,
    chunks: Mapping[bytes, IdChunk],
    settled: Callable[[RejectedRecord], bool],
    flushed: Container[bytes],
) -> LedgerWrite:
    """The batch's write for one account: merged usage, claimed ids, decided rejections.

    Only the periods the batch touched are copied and changed; the others are shared with
    the ledger read (ledgers are never changed in place)."""
    ledger = batch.ledger
    usage, log, recent = _added(batch, catalog, today)
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
    after = ledger.bumped(
        token=token,
        watermarks=advanced(ledger.watermarks, batch.marks),
        usage=usage,
        recent_ids=recent,
        recent_day=recent_day,
        chunk_refs=tuple(refs),
        keyed=keyed,
        rejections=_rejections(batch, settled),
        expires_at=_expiry(batch, today),
        cold_until=cold_until,
        log=log,
        moved_out=frozenset(moved_out),
    )
    return LedgerWrite(ledger, after, chunk, tuple(batch.rejected))


def _added(
    batch: AccountBatch, catalog: Catalog, today: int
) -> tuple[_ByPeriod, _ByPeriod, dict[str, bytes]]:
    """The ledger's usage with the batch's added (the log's, for a period kept outside the
    ledger), and its live inline digests with the batch's claims."""
    ledger, plan = batch.ledger, batch.plan
    usage = dict(ledger.usage)
    log: _ByPeriod = {}
    recent = ledger.live_recent_ids(today)
    for part in batch.parts.values():
        assert plan is not None  # only a known account's events are rated
        period = part.label
        added = {
            key: tally.usage(catalog.meters_by_name[split_key(key)[0]].aggregation)
            for key, tally in part.tallies.items()
        }
        added.update((key, tally.running) for key, tally in part.running.items())
        phases = batch.intake.phases if batch.intake is not None else None
        plans = {"": plan} if phases is None else phases.plans_in(part.period)
        if ledger.holds_inline(period):
            usage[period] = phase_shares(merged_usage(usage.get(period, {}), added), plans)
        else:
            log[period] = phase_shares(merged_usage(log.get(period, {}), added), plans)
        recent[period] = recent.get(period, b"") + part.digests
    return usage, log, recent


def _rejections(
    batch: AccountBatch, settled: Callable[[RejectedRecord], bool]
) -> tuple[RejectedRecord, ...]:
    """The rejections the write carries: the ledger's still unsettled, and the batch's."""
    return tuple(r for r in batch.ledger.rejections if not settled(r)) + tuple(
        RejectedRecord(
            record.shard_id, record.sequence_number, str(rejection.reason), rejection.message
        )
        for record, rejection in batch.rejected
    )


def _expiry(batch: AccountBatch, today: int) -> int | None:
    """When the ledger written for an account id that is not known may go: a week on, if
    it holds nothing but watermarks and rejections. A ledger that held more (the account
    was known, and this rater's view of the accounts is behind) never expires."""
    ledger = batch.ledger
    if batch.intake is not None or (ledger.version and ledger.expires_at is None):
        return None
    return (today + UNKNOWN_ACCOUNT_DAYS) * 86_400


def _periods_per_write(plan: Plan, catalog: Catalog, bound: int | None = None) -> int:
    """How many periods a write for an account on `plan` (or with periods of at most
    `bound` bytes, an account that changes plan) may touch: as many as keep its log (twice
    that many periods' usage, days included, at the most) within LOG_BYTES."""
    bound = (bound or period_bytes_bound(plan, catalog.meters)) + DAYS_BYTES_MAX
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


__all__ = [
    "BatchResult",
    "LedgerWrite",
    "Outcome",
    "RecordResult",
    "StreamRecord",
    "collector_paused",
    "decode_batch",
    "rate_batch",
    "unsettled",
]
