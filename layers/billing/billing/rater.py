"""Rating a batch of stream records into account ledgers (pure: no AWS calls).

`rate_batch` takes the batch's decoded records and the current ledgers of the accounts in
it, and returns where every record went and, per account, the one ledger write (and at
most one chunk of spilled event ids) that applies the batch. Writing is the store's job;
if a write loses a race, the caller reloads that account's ledger and rates its records
again, which gives the same answer a clean run would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, NamedTuple

from billing.catalog import Account, Aggregation, Catalog
from billing.events import Rejection, UsageEvent
from billing.intake import AccountIntake, IsClosed, never_closed, unknown_account
from billing.invoice import charge_amount
from billing.ledger import DIGEST_BYTES, AccountLedger, IdChunk, id_digest
from billing.periods import Period
from billing.usage import Aggregate, MeterUsage

# Digests kept inside the ledger item before they are spilled into a chunk: 32 × 16 bytes
# keeps a typical ledger under 1 KB, one write unit.
INLINE_IDS_MAX: Final = 32


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


class RecordResult(NamedTuple):
    record: StreamRecord
    outcome: Outcome
    account_id: str | None = None
    rejection: Rejection | None = None


# The outcomes as plain names: an enum member looked up on its class costs a lookup per
# record on the hot path.
_RATED, _DUPLICATE, _REJECTED, _REPLAYED = (
    Outcome.RATED,
    Outcome.DUPLICATE,
    Outcome.REJECTED,
    Outcome.REPLAYED,
)


@dataclass(frozen=True, slots=True)
class LedgerWrite:
    """Replace `before` (by its version) with `after`, once `chunk` (if any) is stored."""

    before: AccountLedger
    after: AccountLedger
    chunk: IdChunk | None = None


@dataclass
class BatchResult:
    results: list[RecordResult] = field(default_factory=list)
    writes: dict[str, LedgerWrite] = field(default_factory=dict)


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
    """One account's part of the batch: its ledger, what it has claimed, what it adds up to."""

    __slots__ = (
        "_part",
        "_period",
        "claimed",
        "intake",
        "ledger",
        "parts",
        "plan",
        "seen",
        "sequence",
    )

    def __init__(
        self,
        account: Account,
        catalog: Catalog,
        ledger: AccountLedger,
        seen: Set[bytes],
        now: datetime,
    ):
        self.ledger, self.seen = ledger, seen
        is_closed: IsClosed = never_closed
        if ledger.closed:
            closed = ledger.closed
            is_closed = lambda _account_id, period: str(period) in closed  # noqa: E731
        self.intake = AccountIntake(account, catalog, now, is_closed)
        self.plan = self.intake.plan
        self.claimed: set[bytes] = set()
        self.sequence = -1
        self.parts: dict[Period, _PeriodPart] = {}
        self._period: Period | None = None  # the period last rated into, and its part
        self._part: _PeriodPart | None = None

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
            for charge in self.plan.filtered_charges.get(meter, ()):
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
    seen: Mapping[str, Set[bytes]],
    now: datetime,
) -> BatchResult:
    """Rate decoded records in stream order. `ledgers` and `seen` (the digests claimed in
    open periods) must cover every known account in the batch."""
    result = BatchResult()
    results = result.results
    batches: dict[str, _AccountBatch] = {}
    for record, decoded in records:
        if isinstance(decoded, Rejection):
            results.append(RecordResult(record, _REJECTED, rejection=decoded))
            continue
        account_id = decoded.account_id
        batch = batches.get(account_id)
        if batch is None:
            account = accounts.get(account_id)
            if account is None:
                results.append(
                    RecordResult(record, _REJECTED, account_id, unknown_account(decoded))
                )
                continue
            ledger = ledgers.get(account_id) or AccountLedger(account_id)
            batch = batches[account_id] = _AccountBatch(
                account, catalog, ledger, seen.get(account_id, frozenset()), now
            )
        sequence = record.sequence
        if sequence <= batch.ledger.sequence:
            results.append(RecordResult(record, _REPLAYED, account_id))
            continue
        # Every record of a known account moves its watermark, rejected ones too: a retry
        # then replays a rejection instead of judging it again against a later clock or
        # catalog (and perhaps rating what is already in the quarantine).
        batch.sequence = max(batch.sequence, sequence)
        period = batch.intake.period_of(decoded)
        if isinstance(period, Rejection):
            results.append(RecordResult(record, _REJECTED, account_id, period))
            continue
        if batch.rate(decoded, period, id_digest(decoded.event_id)):
            results.append(RecordResult(record, _RATED, account_id))
        else:
            results.append(RecordResult(record, _DUPLICATE, account_id))
    for account_id, batch in batches.items():
        if batch.parts:
            result.writes[account_id] = _apply(batch, catalog)
        elif batch.sequence > batch.ledger.sequence:
            ledger = batch.ledger
            result.writes[account_id] = LedgerWrite(ledger, ledger.bumped(sequence=batch.sequence))
    return result


def _apply(batch: _AccountBatch, catalog: Catalog) -> LedgerWrite:
    """The batch's write for one account: merged usage, repriced charges, claimed ids.

    Only the periods the batch touched are copied and changed; the others are shared with
    the ledger read (ledgers are never changed in place)."""
    ledger, plan = batch.ledger, batch.plan
    usage = dict(ledger.usage)
    charges = dict(ledger.charges)
    recent = dict(ledger.recent_ids)
    for part in batch.parts.values():
        period = part.label
        meters = dict(usage.get(period, {}))
        amounts = dict(charges.get(period, {}))
        for meter, tally in part.tallies.items():
            current = meters.get(meter)
            added = tally.usage(catalog.meters_by_name[meter].aggregation)
            merged = meters[meter] = added if current is None else current.merge(added)
            for charge in plan.charges_by_meter.get(meter, ()):
                amounts[charge.line_key] = charge_amount(charge, merged, plan.currency)
        usage[period], charges[period] = meters, amounts
        recent[period] = recent.get(period, b"") + part.digests
    chunk, chunks, ranges = None, ledger.chunks, ledger.chunk_ranges
    if sum(map(len, recent.values())) > INLINE_IDS_MAX * DIGEST_BYTES:
        chunks += 1
        chunk, recent, ranges = IdChunk(ledger.account_id, chunks, recent), {}, dict(ranges)
        for period in chunk.ids:
            ranges[period] = (ranges.get(period, (chunks, chunks))[0], chunks)
    after = ledger.bumped(
        sequence=max(ledger.sequence, batch.sequence),
        usage=usage,
        charges=charges,
        recent_ids=recent,
        chunks=chunks,
        chunk_ranges=ranges,
    )
    return LedgerWrite(ledger, after, chunk)
