"""One account's part of a batch, as the rater judges it record by record (pure).

`AccountBatch.decide` says where each of the account's records goes and adds the rated
ones up by period and meter (`PeriodPart`, `Tally`); `billing.rating.rater` then turns what
it holds into the account's one ledger write. The limits of that write are the rater's,
passed in when the batch is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from billing.core.catalog import Account, Catalog, Plan
from billing.core.events import Rejection, UsageEvent
from billing.core.meters import Meter
from billing.core.periods import Period
from billing.core.pricing import Charge
from billing.core.unpriced import (
    UNPRICED_SHARE,
    unpriced_dimension,
    value_label,
)
from billing.core.usage import stream_order
from billing.rating.intake import AccountIntake, IsClosed, never_closed, unknown_account
from billing.rating.ledger import AccountLedger, RejectedRecord, id_digest
from billing.rating.records import Outcome, RecordResult, StreamRecord, stream_position
from billing.rating.tallies import EventTally, PeriodPart, Tally
from billing.rating.unique_values import ALL_EVENTS, value_digest

# The outcomes as plain names: an enum member looked up on its class costs a lookup per
# record on the hot path.
_RATED, _DUPLICATE, _REJECTED, _REPLAYED, _DEFERRED = (
    Outcome.RATED,
    Outcome.DUPLICATE,
    Outcome.REJECTED,
    Outcome.REPLAYED,
    Outcome.DEFERRED,
)


_NO_METERS: Mapping[str, Meter] = MappingProxyType({})
# Digests one write may claim: a batch's worth of event ids (Lambda's largest Kinesis batch),
# which keeps the chunk it may spill within its bound (docs/table-design.md, "Item sizes").
DIGESTS_PER_WRITE = 10_000


def intake_for(
    account: Account, catalog: Catalog, ledger: AccountLedger, now: datetime
) -> AccountIntake:
    """The checks for a known account's events: a period its ledger holds as closed is."""
    is_closed: IsClosed = never_closed
    if ledger.closed:
        closed = ledger.closed
        is_closed = lambda _account_id, period: str(period) in closed  # noqa: E731
    return AccountIntake(account, catalog, now, is_closed)


class CatalogFacts:
    """What the accounts of one batch look up in its catalog, found once for all of them:
    the meters added up event by event, the most digests an event of each meter claims
    under a set of plans, and per plan and meter what `rate` needs of its charges."""

    __slots__ = ("by_event", "claims", "meters")

    def __init__(self, meters: Mapping[str, Meter]) -> None:
        # The meters added up event by event (unique_count, latest); the others by Tally.
        self.by_event = {
            name: meter
            for name, meter in meters.items()
            if meter.aggregation in ("unique_count", "latest")
        }
        self.claims: dict[tuple[str, ...], dict[str, int]] = {}  # by the plans' ids
        self.meters: dict[tuple[str, str], _MeterFacts] = {}  # by plan id and meter

    def claims_under(self, plans: tuple[Plan, ...]) -> dict[str, int]:
        """The most digests an event of a unique_count meter claims: its id, its value in
        all events' share and in each filtered charge's (any other event: its id)."""
        key = tuple(plan.id for plan in plans)
        found = self.claims.get(key)
        if found is None:
            found = self.claims[key] = {
                name: 2 + max((len(p.filtered_charges.get(name, ())) for p in plans), default=-1)
                for name, meter in self.by_event.items()
                if meter.aggregation == "unique_count"
            }
        return found

    def of(self, plan: Plan, meter: str) -> _MeterFacts:
        found = self.meters.get((plan.id, meter))
        if found is None:
            filters = tuple(
                (charge.filter_key, tuple(charge.filters.items()))
                for charge in plan.filtered_charges.get(meter, ())
                if charge.filters
            )
            found = self.meters[plan.id, meter] = (
                unpriced_dimension(plan, meter),
                meter in plan.charges_by_meter,
                self.by_event.get(meter),
                filters,
            )
        return found


# Of a meter under a plan: its unpriced dimension (`unpriced_dimension`), whether the plan
# charges it, the meter when it is added up event by event, and its filtered charges'
# filter keys and filters.
_MeterFacts = tuple[
    str | None, bool, Meter | None, tuple[tuple[str, tuple[tuple[str, list[str]], ...]], ...]
]
_new_result = tuple.__new__  # a RecordResult without its Python-level constructor


class AccountBatch:
    """One account's part of the batch: its ledger, what it has claimed, what it adds up to.
    `intake` is None for an account id that is not known: its records are all rejected.

    A write carries at most `periods_per_write` periods and, with those its ledger still
    carries, `rejections_per_write` rejections waiting for the quarantine."""

    __slots__ = (
        "_claims",
        "_facts",
        "_filtered",
        "_part",
        "_period",
        "_phases",
        "_watermarks",
        "carried",
        "claimed",
        "deferred",
        "digests_per_write",
        "intake",
        "ledger",
        "marks",
        "parts",
        "periods_per_write",
        "plan",
        "rejected",
        "rejections_per_write",
        "seen",
        "unpriced",
    )

    def __init__(
        self,
        ledger: AccountLedger,
        seen: Container[bytes],
        settled: Callable[[RejectedRecord], bool],
        intake: AccountIntake | None,
        *,
        periods_per_write: int,
        rejections_per_write: int,
        meters: Mapping[str, Meter] = _NO_METERS,
        digests_per_write: int = DIGESTS_PER_WRITE,
        facts: CatalogFacts | None = None,
    ):
        """`facts`: the batch's, shared by its accounts (else found for this one alone)."""
        self.ledger, self.seen = ledger, seen
        self._watermarks = ledger.watermarks
        # Rejections the ledger still carries: their records' quarantine objects may be
        # missing, so the next write carries them on.
        self.carried = sum(1 for r in ledger.rejections if not settled(r))
        self.intake = intake
        self.plan: Plan | None = None
        self._phases = intake.phases if intake is not None else None
        self._facts = CatalogFacts(meters) if facts is None else facts
        self._filtered: Mapping[str, tuple[Charge, ...]] = {}
        plans: tuple[Plan, ...] = ()
        if intake is not None:
            self.plan = intake.plan
            self._filtered = intake.plan.filtered_charges
            plans = self._phases.plans if self._phases is not None else (intake.plan,)
        self._claims = self._facts.claims_under(plans)
        self.digests_per_write = digests_per_write
        self.periods_per_write = periods_per_write
        self.rejections_per_write = rejections_per_write
        self.claimed: set[bytes] = set()
        self.marks: dict[str, int] = {}  # shard -> highest sequence number handled
        self.rejected: list[tuple[StreamRecord, Rejection]] = []
        self.deferred = False
        self.parts: dict[Period, PeriodPart] = {}
        self._period: Period | None = None  # the period last rated into, and its part
        self._part: PeriodPart | None = None
        self.unpriced = False  # whether no charge took the event rated last

    def decide(self, record: StreamRecord, event: UsageEvent) -> RecordResult:
        """Where one of the account's records goes, in stream order. A record decided here
        (not replayed, not deferred) moves its shard's watermark."""
        account_id = event.account_id
        if self.deferred:
            return _new_result(RecordResult, (record, _DEFERRED, account_id, None, False))
        sequence = int(record.sequence_number)
        shard = record.shard_id
        if sequence <= self._watermarks.get(shard, -1):  # AccountLedger.replayed
            return _new_result(RecordResult, (record, _REPLAYED, account_id, None, False))
        intake = self.intake
        day = 1
        if intake is None:
            period: Period | Rejection = unknown_account(event)
        else:
            period = intake.period_of(event)
            day = intake.day  # the local day of the month it found
        if self.must_wait(period, event.meter):
            self.deferred = True
            return _new_result(RecordResult, (record, _DEFERRED, account_id, None, False))
        if isinstance(period, Rejection):
            self.rejected.append((record, period))
            result = _new_result(RecordResult, (record, _REJECTED, account_id, period, False))
        elif self.rate(event, period, id_digest(event.event_id), record, day):
            result = _new_result(RecordResult, (record, _RATED, account_id, None, self.unpriced))
        else:
            result = _new_result(RecordResult, (record, _DUPLICATE, account_id, None, False))
        marks = self.marks
        if sequence > marks.get(shard, -1):
            marks[shard] = sequence
        return result

    def must_wait(self, period: Period | Rejection, meter: str = "") -> bool:
        """Whether the write is full: of rejections waiting for the quarantine, of periods,
        or of the digests the event could claim (its id, and a unique_count value in each
        share), which bound the write's chunk (a record's outcome is decided only in the
        write that applies it)."""
        if isinstance(period, Rejection):
            return len(self.rejected) + self.carried >= self.rejections_per_write
        if len(self.claimed) + self._claims.get(meter, 1) > self.digests_per_write:
            return True
        if period is self._period:  # the part rated into last: already counted
            return False
        return period not in self.parts and len(self.parts) >= self.periods_per_write

    def rate(
        self,
        event: UsageEvent,
        period: Period,
        digest: bytes,
        record: StreamRecord | None = None,
        day: int = 1,
    ) -> bool:
        """Claim the event's id and add it up, in its period and on its local `day` of the
        month; False when the id was seen before. `record` is the event's record (where it
        stands on the stream: a `latest` meter's tie-break)."""
        claimed = self.claimed
        if digest in claimed or digest in self.seen:
            return False
        claimed.add(digest)
        part = self._part
        if period is not self._period or part is None:
            part = self.parts.get(period)
            if part is None:
                part = self.parts[period] = PeriodPart(period)
            self._period, self._part = period, part
        meter = event.meter
        part.digests += digest
        filtered, key, plan = self._filtered, meter, self.plan
        phases = self._phases
        if phases is not None:  # priced under the plan in force on the event's local day
            key, plan = phases.placed(meter, event.timestamp.at, period)
            filtered = plan.filtered_charges
        assert plan is not None  # only a known account's events are rated
        dimension, charged, by_event, filters = self._facts.of(plan, meter)
        # Counted for the rater's UnpricedEvents metric: no charge takes it.
        self.unpriced = dimension is None and not charged
        if by_event is not None:
            self._add_event(part, by_event, key, filtered, event, (record, day, dimension))
            return True
        self._add_tally(part, key, filters, event, day, dimension)
        return True

    def _add_tally(
        self,
        part: PeriodPart,
        key: str,
        filters: tuple[tuple[str, tuple[tuple[str, list[str]], ...]], ...],
        event: UsageEvent,
        day: int,
        dimension: str | None,
    ) -> None:
        """One event of a sum, count or max meter added to the batch's part (as
        `_add_event` says of the others); `filters` are its filtered charges' (filter key,
        filters), which it passes as `Charge.accepts` says."""
        quantity = event.quantity
        tally = part.tallies.get(key)
        if tally is None:
            tally = part.tallies[key] = Tally()
        tally.quantities.append(quantity)
        on_day = tally.days.get(day)
        if on_day is None:
            tally.days[day] = [quantity]
        else:
            on_day.append(quantity)
        passed = False
        dimensions = event.dimensions
        if dimensions:  # an event without dimensions passes no filter
            for filter_key, conditions in filters:
                for name, allowed in conditions:
                    if dimensions.get(name) not in allowed:
                        break
                else:
                    passed = True
                    share = tally.shares.get(filter_key)
                    if share is None:
                        share = tally.shares[filter_key] = []
                    share.append(quantity)
        if dimension is not None and not passed:
            tally.add_unpriced(quantity, value_label(dimensions.get(dimension)))
            self.unpriced = True

    def _add_event(
        self,
        part: PeriodPart,
        meter: Meter,
        key: str,
        filtered: Mapping[str, tuple[Charge, ...]],
        event: UsageEvent,
        where: tuple[StreamRecord | None, int, str | None],
    ) -> None:
        """One event of a unique_count or latest meter added to the batch's part, under
        `key` (the meter's stored name in the event's phase) with that phase's `filtered`
        charges; `where` is its record, its local day and the meter's unpriced dimension in
        the phase (None: the plan prices all of it or none)."""
        record, day, dimension = where
        tally = part.running.get(key)
        if tally is None:
            tally = part.running[key] = EventTally(meter.aggregation)
        dimensions = event.dimensions
        keys = [
            charge.filter_key
            for charge in (filtered.get(meter.name, ()) if dimensions else ())
            if charge.accepts(dimensions)
        ]
        label = value_label(dimensions.get(dimension)) if dimension and not keys else None
        if meter.aggregation == "latest":
            position = 0 if record is None else stream_position(record)
            order = stream_order(event.timestamp, position)
            tally.running = tally.running.add(event.quantity, keys, order, day)
            if label is not None:
                tally.running = tally.running.add_unpriced(event.quantity, label, order)
                self.unpriced = True
            return
        tally.running = tally.running.add_shares(
            self._first(part, meter, key, ALL_EVENTS, dimensions),
            {share: self._first(part, meter, key, share, dimensions) for share in keys},
            day=day,
        )
        if label is not None:
            first = self._first(part, meter, key, UNPRICED_SHARE, dimensions)
            tally.running = tally.running.add_unpriced(first, label)
            self.unpriced = True

    def _first(
        self,
        part: PeriodPart,
        meter: Meter,
        key: str,
        share: str,
        dimensions: Mapping[str, str],
    ) -> Decimal:
        """1 when the event's value is new to the share in this period's phase (`key`, the
        meter's stored name in it: a value is counted again in another phase), its digest
        claimed with the batch's so it commits with the ledger write; else 0; 0 with no
        value."""
        field = meter.field or ""
        value = dimensions.get(field)
        if value is None:
            return Decimal(0)
        digest = value_digest(part.label, key, field, share, value)
        if digest in self.claimed or digest in self.seen:
            return Decimal(0)
        self.claimed.add(digest)
        part.digests += digest
        return Decimal(1)
