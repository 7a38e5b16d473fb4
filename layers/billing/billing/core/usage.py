"""Usage aggregates: what a period's events add up to, per account, period and meter.

Aggregates merge associatively and commutatively, so any split of a stream of events into
batches, in any order, adds up to the same thing (the rater relies on it). A meter's usage
also keeps its events' aggregate per local day of the period (`MeterUsage.days`), merged the
same way, for a per-day chart (docs/table-design.md, "Usage by day").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final, NamedTuple

from billing.core.catalog import Plan
from billing.core.events import Timestamp
from billing.core.meters import Aggregation, Meter
from billing.core.money import add, total
from billing.core.pricing import ChargeModel
from billing.core.unpriced import UNPRICED_SHARE, Unpriced, capped_unpriced, unpriced_bytes

# Where an event stands on its account's stream, for `latest`: its instant in nanoseconds
# since the epoch, then its position on the stream (billing.rating.records.stream_position:
# its shard's number, then its sequence number).
StreamOrder = tuple[int, int]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def stream_order(timestamp: Timestamp, position: int) -> StreamOrder:
    """An event's stream order: its exact instant in nanoseconds, then `position` (its
    record's `stream_position`; its line in a file, where there is no stream)."""
    since = timestamp.at - _EPOCH
    micros = (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds
    return (micros * 1000 + timestamp.nanos, position)


class Aggregate(NamedTuple):
    """A meter's aggregate over some events: `quantity` by its aggregation, `events` counted.

    `last` (`latest` only) is the stream order of the event whose quantity this is. A
    `unique_count` aggregate's quantity is the number of values its events were the first
    to bring (each event adds 1 or 0, decided by whoever remembers the values seen), so it
    adds up like a sum."""

    quantity: Decimal = Decimal(0)
    events: int = 0
    last: StreamOrder | None = None

    def add(
        self, aggregation: Aggregation, quantity: Decimal, last: StreamOrder | None = None
    ) -> Aggregate:
        return self.merge(
            aggregation,
            Aggregate(Decimal(1) if aggregation == "count" else quantity, 1, last),
        )

    @staticmethod
    def of(
        aggregation: Aggregation,
        quantities: Sequence[Decimal],
        orders: Sequence[StreamOrder] = (),
    ) -> Aggregate:
        """The aggregate of some events' quantities, added up exactly in one go (`orders`:
        the events' stream orders, for `latest`)."""
        if aggregation == "latest":
            if not quantities:
                return Aggregate()
            last, quantity = max(zip(orders, quantities, strict=True))
            return Aggregate(quantity, len(quantities), last)
        if aggregation == "max":
            quantity = max(quantities, default=Decimal(0))
        elif aggregation == "count":
            quantity = Decimal(len(quantities))
        else:  # sum, and unique_count's 1 for each value first seen
            quantity = total(quantities)
        return Aggregate(quantity, len(quantities))

    def merge(self, aggregation: Aggregation, other: Aggregate) -> Aggregate:
        if aggregation == "latest":
            # The later event on the stream wins; the quantity only breaks a tie no stream
            # makes (two events at one position), so that merging stays commutative.
            winner = max(self, other, key=_latest_key)
            return Aggregate(winner.quantity, self.events + other.events, winner.last)
        if aggregation == "max":
            combined = max(self.quantity, other.quantity)
        else:  # sum, count and unique_count add up (count's quantity is its events)
            combined = add(self.quantity, other.quantity)
        return Aggregate(combined, self.events + other.events)


def _latest_key(aggregate: Aggregate) -> tuple[bool, StreamOrder, Decimal]:
    return (aggregate.last is not None, aggregate.last or (0, 0), aggregate.quantity)


# A meter's aggregate per local day of the period, by day of the month (1-31): each day's
# `Aggregate` keeps its quantity (and, `latest`, its stream order), never an event count.
# None: not kept (the period's days outgrew DAYS_BYTES_MAX; see `capped_days`).
Days = Mapping[int, Aggregate] | None
_NO_DAYS: Final[Mapping[int, Aggregate]] = MappingProxyType({})


class MeterUsage(NamedTuple):
    """One meter's usage in a period: all its events, the share of each filtered charge,
    all its events by local day of the month, and those no charge took (billing.core.unpriced;
    None when there were none, as before it was kept)."""

    aggregation: Aggregation
    total: Aggregate = Aggregate()
    by_filter: Mapping[str, Aggregate] = MappingProxyType({})
    days: Days = _NO_DAYS
    unpriced: Unpriced | None = None

    def add(
        self,
        quantity: Decimal,
        filter_keys: Iterable[str],
        last: StreamOrder | None = None,
        day: int | None = None,
    ) -> MeterUsage:
        return self.add_shares(quantity, dict.fromkeys(filter_keys, quantity), last, day)

    def add_shares(
        self,
        quantity: Decimal,
        shares: Mapping[str, Decimal],
        last: StreamOrder | None = None,
        day: int | None = None,
    ) -> MeterUsage:
        """One event added: `quantity` to the total (and to its local `day`, when given),
        and to each filtered charge it passes its own (they differ for unique_count: a
        value may be new to one and not another)."""
        aggregation = self.aggregation
        by_filter = dict(self.by_filter)
        for key, share in shares.items():
            by_filter[key] = by_filter.get(key, Aggregate()).add(aggregation, share, last)
        days = self.days
        if day is not None and days is not None:
            days = merged_days(aggregation, days, {day: day_aggregate(aggregation, quantity, last)})
        total = self.total.add(aggregation, quantity, last)
        return MeterUsage(aggregation, total, by_filter, days, self.unpriced)

    def add_unpriced(
        self, quantity: Decimal, label: str, last: StreamOrder | None = None
    ) -> MeterUsage:
        """One event that no charge took (already added with `add`) counted as unpriced,
        under its value `label` of the filtered dimension."""
        event = Unpriced(Aggregate().add(self.aggregation, quantity, last), {label: 1})
        current = self.unpriced
        return self._replace(
            unpriced=event if current is None else current.merge(self.aggregation, event)
        )

    def merge(self, other: MeterUsage) -> MeterUsage:
        by_filter = dict(self.by_filter)
        for key, aggregate in other.by_filter.items():
            by_filter[key] = by_filter.get(key, Aggregate()).merge(self.aggregation, aggregate)
        days = self.days
        if days is None or other.days is None:
            days = None  # once a day went unkept, the period's days stay unkept
        elif other.days:
            days = merged_days(self.aggregation, days, other.days) if days else other.days
        unpriced = self.unpriced or other.unpriced
        if self.unpriced and other.unpriced:
            unpriced = self.unpriced.merge(self.aggregation, other.unpriced)
        return MeterUsage(
            self.aggregation,
            self.total.merge(self.aggregation, other.total),
            by_filter,
            days,
            unpriced,
        )

    def quantity_for(self, charge: ChargeModel) -> Decimal:
        """The quantity a charge prices: all events, or only those that pass its filters."""
        if not charge.filters:
            return self.total.quantity
        return self.by_filter.get(charge.filter_key, Aggregate()).quantity


def day_aggregate(
    aggregation: Aggregation, quantity: Decimal, last: StreamOrder | None = None
) -> Aggregate:
    """One event as its day keeps it: its quantity (1 for `count`), no event count."""
    return Aggregate(Decimal(1) if aggregation == "count" else quantity, 0, last)


def days_of(
    aggregation: Aggregation, by_day: Mapping[int, Sequence[Decimal]]
) -> dict[int, Aggregate]:
    """Some events' quantities by local day, added up per day in one go (not `latest`,
    whose days need each event's stream order: `MeterUsage.add`)."""
    days = {}
    for day, quantities in by_day.items():
        quantity = Aggregate.of(aggregation, quantities).quantity
        if not quantity.is_zero():  # a day of 0 is no day (see `merged_days`)
            days[day] = Aggregate(quantity)
    return days


def merged_days(
    aggregation: Aggregation, into: Mapping[int, Aggregate], added: Mapping[int, Aggregate]
) -> dict[int, Aggregate]:
    """Two series of days merged day by day, as their aggregation merges. A day whose
    quantity is 0 is left out, except for `latest` (whose 0 is a value): a chart reads a
    missing day as 0 anyway, and one form for it keeps a ledger read back equal to the
    ledger written."""
    result = dict(into)
    for day, aggregate in added.items():
        current = result.get(day)
        merged = aggregate if current is None else current.merge(aggregation, aggregate)
        if aggregation == "latest" or not merged.quantity.is_zero():
            result[day] = merged
    return result


# An aggregate as stored: a quantity of at most 1e15 times the events, with 12 decimals
# (under 40 characters), an event count, and JSON's punctuation.
_AGGREGATE_BYTES: Final = 72
# A `latest` aggregate also stores its event's stream order: nanoseconds since the epoch
# (at most 21 digits before year 9999) and a position (a shard number of 12 digits above a
# sequence number of at most 129).
_ORDER_BYTES: Final = 180


def _aggregate_bytes(aggregation: Aggregation) -> int:
    return _AGGREGATE_BYTES + (_ORDER_BYTES if aggregation == "latest" else 0)


# A day as stored: its quantity (under 40 characters, as above) and JSON's punctuation; a
# `latest` day also its stream order.
_DAY_BYTES: Final = 44
# The most one period's days may take as stored, all meters together (see `capped_days`):
# a month of about 30 summed meters at quantities of a few digits a day, or 3 `latest`
# meters (their days carry a stream order). It costs the ledger's log room: a write for an
# account on a small catalog touches up to 7 periods instead of 16 (docs/table-design.md).
DAYS_BYTES_MAX: Final = 8 * 1024


def _day_bytes(aggregation: Aggregation) -> int:
    return _DAY_BYTES + (_ORDER_BYTES if aggregation == "latest" else 0)


# The days are stored as one list from the first day with a quantity to the last: the days
# between without one take a 0 or a null each, and the list its brackets and first day.
_GAPS_BYTES: Final = 31 * len("null,") + len('"d":[31,]')


def days_bytes_bound(usage: MeterUsage) -> int:
    """An upper bound of the bytes a meter's days take when stored."""
    if not usage.days:
        return 0
    return len(usage.days) * _day_bytes(usage.aggregation) + _GAPS_BYTES


def usage_bytes(meters: Mapping[str, MeterUsage]) -> int:
    """An upper bound of the bytes one period's usage takes when stored (as JSON), days
    included."""
    return sum(
        len(meter)
        + 2 * _aggregate_bytes(usage.aggregation)
        + sum(len(key) + _aggregate_bytes(usage.aggregation) for key in usage.by_filter)
        + days_bytes_bound(usage)
        + unpriced_bytes(usage.unpriced)
        + (_ORDER_BYTES if usage.unpriced and usage.aggregation == "latest" else 0)
        for meter, usage in meters.items()
    )


def _stored_day_bytes(aggregate: Aggregate) -> int:
    """The bytes one day takes in the stored JSON (billing.store.ledger_items writes it)."""
    size = len(str(aggregate.quantity)) + 3  # quotes and a comma
    if aggregate.last is not None:
        size += len(str(aggregate.last[0])) + len(str(aggregate.last[1])) + 4
    return size


def capped_days(meters: Mapping[str, MeterUsage]) -> Mapping[str, MeterUsage]:
    """A period's usage whose days take at most DAYS_BYTES_MAX as stored: in name order,
    a meter whose days would take the period past it keeps no days for the rest of the
    period (None), so the ledger's size budget holds whatever an account sends. A function
    of the usage alone, so every writer (a retry, a second rater, a log applied) decides
    alike. Nearly always returns `meters` itself: their bound is checked first."""
    if sum(days_bytes_bound(usage) for usage in meters.values()) <= DAYS_BYTES_MAX:
        return meters
    result = dict(meters)
    size = 0
    for name in sorted(meters):
        usage = meters[name]
        if not usage.days:
            continue
        size += sum(_stored_day_bytes(day) for day in usage.days.values())
        if size > DAYS_BYTES_MAX:
            result[name] = usage._replace(days=None)
            size -= sum(_stored_day_bytes(day) for day in usage.days.values())
    return result


def priced_shares(meters: Mapping[str, MeterUsage], plan: Plan) -> dict[str, MeterUsage]:
    """A period's usage with only the filter shares `plan` prices: a share a charge's old
    filters counted prices nothing once the catalog changed them, and dropping it keeps a
    period within `period_bytes_bound` however often the filters change."""
    result = dict(meters)
    for meter, usage in meters.items():
        if usage.by_filter:
            priced = {c.filter_key for c in plan.filtered_charges.get(meter, ())}
            if not usage.by_filter.keys() <= priced:
                kept = {k: a for k, a in usage.by_filter.items() if k in priced}
                result[meter] = usage._replace(by_filter=kept)
    return result


def period_bytes_bound(plan: Plan, meters: Sequence[Meter]) -> int:
    """An upper bound of `usage_bytes` for any period of an account on `plan`, its days
    left out (they take at most DAYS_BYTES_MAX more, whatever the plan)."""
    aggregations = {m.name: m.aggregation for m in meters}
    return sum(len(m.name) + 2 * _aggregate_bytes(m.aggregation) for m in meters) + sum(
        len(charge.filter_key) + _aggregate_bytes(aggregations.get(charge.meter, "sum"))
        for charge in plan.charges
        if charge.filters
    )


class UsageKey(NamedTuple):
    account_id: str
    period: str
    meter: str


def filter_keys(plan: Plan, meter: str, dimensions: Mapping[str, str]) -> list[str]:
    """The filtered charges of `plan` on `meter` that an event with `dimensions` counts toward."""
    return [
        charge.filter_key
        for charge in plan.charges
        if charge.meter == meter and charge.filters and charge.accepts(dimensions)
    ]


class UsageLedger:
    """Aggregates in memory, keyed by account, period and meter, with the values each
    unique_count meter has seen (by key and share: "" for all events, else a filter key)."""

    def __init__(self) -> None:
        self.usage: dict[UsageKey, MeterUsage] = {}
        self.values: set[tuple[UsageKey, str, str]] = set()

    def add(
        self,
        key: UsageKey,
        meter: Meter,
        quantity: Decimal,
        keys: Iterable[str],
        *,
        dimensions: Mapping[str, str] | None = None,
        last: StreamOrder | None = None,
        unpriced: str | None = None,
    ) -> None:
        """One rated event; `dimensions` are read by a unique_count meter, `last` (the
        event's stream order) by a latest one; `unpriced`: its value label, when no charge
        of its meter's filtered ones took it (billing.core.unpriced)."""
        current = self.usage.get(key) or MeterUsage(meter.aggregation)
        value = (dimensions or {}).get(meter.field or "")
        if meter.aggregation != "unique_count":
            current = current.add(quantity, keys, last)
        else:
            shares = {k: self._first(key, k, value) for k in keys}
            current = current.add_shares(self._first(key, "", value), shares)
            quantity = self._first(key, UNPRICED_SHARE, value) if unpriced is not None else quantity
        if unpriced is not None:
            current = current.add_unpriced(quantity, unpriced, last)
        self.usage[key] = current

    def _first(self, key: UsageKey, share: str, value: str | None) -> Decimal:
        """1 when `value` is new to the share (and remembered), else 0; 0 with no value."""
        if value is None or (key, share, value) in self.values:
            return Decimal(0)
        self.values.add((key, share, value))
        return Decimal(1)

    def merge(self, other: UsageLedger) -> None:
        """Another ledger's usage added; only for ledgers over distinct events and values
        (a unique_count value both saw would count twice)."""
        for key, usage in other.usage.items():
            current = self.usage.get(key)
            self.usage[key] = usage if current is None else current.merge(usage)
        self.values |= other.values

    def for_account(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of one account in one period, by meter name (its unpriced values
        within their budget, as the rater keeps them)."""
        return dict(
            capped_unpriced(
                {
                    key.meter: usage
                    for key, usage in self.usage.items()
                    if key.account_id == account_id and key.period == period
                }
            )
        )
