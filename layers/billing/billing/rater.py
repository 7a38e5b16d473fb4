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
from enum import StrEnum
from typing import Final

from billing.catalog import Account, Catalog, Plan
from billing.events import Rejection, UsageEvent
from billing.intake import Accepted, IsClosed, admit
from billing.invoice import usage_line
from billing.ledger import DIGEST_BYTES, AccountLedger, IdChunk, id_digest
from billing.usage import MeterUsage, filter_keys

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


@dataclass(frozen=True, slots=True)
class RecordResult:
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


@dataclass
class _AccountBatch:
    """What one account's records in this batch add up to."""

    account: Account
    plan: Plan
    sequence: int = -1
    usage: dict[tuple[str, str], MeterUsage] = field(default_factory=dict)
    digests: dict[str, bytearray] = field(default_factory=lambda: defaultdict(bytearray))
    rated: int = 0

    def add(self, accepted: Accepted, catalog: Catalog, digest: bytes) -> None:
        event, period = accepted.event, str(accepted.period)
        key = (period, event.meter)
        usage = self.usage.get(key) or MeterUsage(catalog.meters_by_name[event.meter].aggregation)
        keys = filter_keys(self.plan, event.meter, event.dimensions)
        self.usage[key] = usage.add(event.quantity, keys)
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
    batches: dict[str, _AccountBatch] = {}
    claimed: dict[str, set[bytes]] = defaultdict(set)
    for record, decoded in records:
        if isinstance(decoded, Rejection):
            result.results.append(RecordResult(record, Outcome.REJECTED, rejection=decoded))
            continue
        account_id = decoded.account_id
        ledger = ledgers.get(account_id) or AccountLedger(account_id)
        if record.sequence <= ledger.sequence:
            result.results.append(RecordResult(record, Outcome.REPLAYED, account_id))
            continue
        outcome = admit(decoded, catalog, accounts, now, _closed_periods_of(ledger))
        if isinstance(outcome, Rejection):
            result.results.append(RecordResult(record, Outcome.REJECTED, account_id, outcome))
            continue
        batch = batches.get(account_id) or batches.setdefault(
            account_id, _AccountBatch(outcome.account, outcome.plan)
        )
        batch.sequence = max(batch.sequence, record.sequence)
        digest = id_digest(decoded.event_id)
        if digest in claimed[account_id] or digest in seen.get(account_id, ()):
            result.results.append(RecordResult(record, Outcome.DUPLICATE, account_id))
            continue
        claimed[account_id].add(digest)
        batch.add(outcome, catalog, digest)
        result.results.append(RecordResult(record, Outcome.RATED, account_id))
    for account_id, batch in batches.items():
        if batch.rated:
            ledger = ledgers.get(account_id) or AccountLedger(account_id)
            result.writes[account_id] = _apply(ledger, batch, catalog)
    return result


def _closed_periods_of(ledger: AccountLedger) -> IsClosed:
    return lambda _account_id, period: str(period) in ledger.closed


def _apply(ledger: AccountLedger, batch: _AccountBatch, catalog: Catalog) -> LedgerWrite:
    usage = {period: dict(meters) for period, meters in ledger.usage.items()}
    charges = {period: dict(amounts) for period, amounts in ledger.charges.items()}
    for (period, meter), added in batch.usage.items():
        meters = usage.setdefault(period, {})
        current = meters.get(meter)
        meters[meter] = added if current is None else current.merge(added)
        amounts = charges.setdefault(period, {})
        for charge in batch.plan.charges:
            if charge.meter == meter:
                line = usage_line(charge, catalog, batch.plan.currency, meters[meter])
                amounts[charge.line_key] = line.amount.amount
    recent = {period: bytes(blob) for period, blob in ledger.recent_ids.items()}
    for period, blob in batch.digests.items():
        recent[period] = recent.get(period, b"") + bytes(blob)
    chunk, chunks = None, ledger.chunks
    if sum(map(len, recent.values())) > INLINE_IDS_MAX * DIGEST_BYTES:
        chunks += 1
        chunk, recent = IdChunk(ledger.account_id, chunks, recent), {}
    after = ledger.bumped(
        sequence=max(ledger.sequence, batch.sequence),
        usage=usage,
        charges=charges,
        recent_ids=recent,
        chunks=chunks,
    )
    return LedgerWrite(ledger, after, chunk)
