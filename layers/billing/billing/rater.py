"""Rating a batch of stream records into account ledgers (pure: no AWS calls).

`rate_batch` takes the batch's decoded records and the current ledgers of the accounts in
it, and returns where every record went and, per account, the one ledger write (and at
most one chunk of spilled event ids) that applies the batch. Writing is the store's job;
if a write loses a race, the caller reloads that account's ledger and rates its records
again, which gives the same answer a clean run would.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, NamedTuple

from billing.catalog import Account, Aggregation, Catalog, Plan
from billing.events import Rejection, UsageEvent
from billing.intake import Accepted, IsClosed, admit, never_closed
from billing.invoice import charge_amount
from billing.ledger import DIGEST_BYTES, AccountLedger, IdChunk, id_digest
from billing.money import add
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
    """A mutable running aggregate for the hot loop; becomes a MeterUsage at the end."""

    __slots__ = ("aggregation", "by_filter", "events", "quantity")

    def __init__(self, aggregation: Aggregation) -> None:
        self.aggregation = aggregation
        self.quantity = Decimal(0)
        self.events = 0
        self.by_filter: dict[str, _Tally] = {}

    def add(self, quantity: Decimal) -> None:
        if self.aggregation == "max":
            self.quantity = max(self.quantity, quantity)
        else:
            self.quantity = add(
                self.quantity, Decimal(1) if self.aggregation == "count" else quantity
            )
        self.events += 1

    def usage(self) -> MeterUsage:
        return MeterUsage(
            self.aggregation,
            Aggregate(self.quantity, self.events),
            {key: Aggregate(t.quantity, t.events) for key, t in self.by_filter.items()},
        )


class _AccountBatch:
    """One account's part of the batch: its ledger, what it has claimed, what it adds up to."""

    def __init__(self, account: Account, plan: Plan, ledger: AccountLedger, seen: Set[bytes]):
        self.account, self.plan, self.ledger, self.seen = account, plan, ledger, seen
        self.is_closed: IsClosed = never_closed
        if ledger.closed:
            closed = ledger.closed
            self.is_closed = lambda _account_id, period: str(period) in closed
        self.claimed: set[bytes] = set()
        self.sequence = -1
        self.tallies: dict[tuple[Period, str], _Tally] = {}
        self.digests: dict[Period, bytearray] = defaultdict(bytearray)
        self.rated = 0

    def claim(self, digest: bytes) -> bool:
        """Claim an event id; False when it was seen before (a duplicate)."""
        if digest in self.claimed or digest in self.seen:
            return False
        self.claimed.add(digest)
        return True

    def add(self, accepted: Accepted, catalog: Catalog, digest: bytes) -> None:
        event, period = accepted.event, accepted.period
        key = (period, event.meter)
        tally = self.tallies.get(key)
        if tally is None:
            aggregation = catalog.meters_by_name[event.meter].aggregation
            tally = self.tallies[key] = _Tally(aggregation)
        tally.add(event.quantity)
        for charge in self.plan.filtered_charges.get(event.meter, ()):
            if charge.accepts(event.dimensions):
                share = tally.by_filter.get(charge.filter_key)
                if share is None:
                    share = tally.by_filter[charge.filter_key] = _Tally(tally.aggregation)
                share.add(event.quantity)
        self.digests[period] += digest
        self.rated += 1


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
            results.append(RecordResult(record, Outcome.REJECTED, rejection=decoded))
            continue
        account_id = decoded.account_id
        batch = batches.get(account_id)
        if batch is None and account_id in accounts:
            account = accounts[account_id]
            plan = catalog.plans_by_id[account.plan]
            ledger = ledgers.get(account_id) or AccountLedger(account_id)
            batch = batches[account_id] = _AccountBatch(
                account, plan, ledger, seen.get(account_id, frozenset())
            )
        sequence = record.sequence
        if batch is not None and sequence <= batch.ledger.sequence:
            results.append(RecordResult(record, Outcome.REPLAYED, account_id))
            continue
        if batch is not None:
            # Every record of a known account moves its watermark, rejected ones too: a
            # retry then replays a rejection instead of judging it again against a later
            # clock or catalog (and perhaps rating what is already in the quarantine).
            batch.sequence = max(batch.sequence, sequence)
        outcome = admit(decoded, catalog, accounts, now, batch.is_closed if batch else never_closed)
        if isinstance(outcome, Rejection):
            results.append(RecordResult(record, Outcome.REJECTED, account_id, outcome))
            continue
        assert batch is not None  # admitted, so the account is known
        digest = id_digest(decoded.event_id)
        if not batch.claim(digest):
            results.append(RecordResult(record, Outcome.DUPLICATE, account_id))
            continue
        batch.add(outcome, catalog, digest)
        results.append(RecordResult(record, Outcome.RATED, account_id))
    for account_id, batch in batches.items():
        if batch.rated:
            result.writes[account_id] = _apply(batch)
        elif batch.sequence > batch.ledger.sequence:
            ledger = batch.ledger
            result.writes[account_id] = LedgerWrite(ledger, ledger.bumped(sequence=batch.sequence))
    return result


def _apply(batch: _AccountBatch) -> LedgerWrite:
    """The batch's write for one account: merged usage, repriced charges, claimed ids."""
    ledger, plan = batch.ledger, batch.plan
    usage = {period: dict(meters) for period, meters in ledger.usage.items()}
    charges = {period: dict(amounts) for period, amounts in ledger.charges.items()}
    for (billing_period, meter), tally in batch.tallies.items():
        period = str(billing_period)
        meters = usage.setdefault(period, {})
        current, added = meters.get(meter), tally.usage()
        meters[meter] = added if current is None else current.merge(added)
        amounts = charges.setdefault(period, {})
        for charge in plan.charges_by_meter.get(meter, ()):
            amounts[charge.line_key] = charge_amount(charge, meters[meter], plan.currency)
    recent = {period: bytes(blob) for period, blob in ledger.recent_ids.items()}
    for billing_period, blob in batch.digests.items():
        period = str(billing_period)
        recent[period] = recent.get(period, b"") + bytes(blob)
    chunk, chunks, ranges = None, ledger.chunks, dict(ledger.chunk_ranges)
    if sum(map(len, recent.values())) > INLINE_IDS_MAX * DIGEST_BYTES:
        chunks += 1
        chunk, recent = IdChunk(ledger.account_id, chunks, recent), {}
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
