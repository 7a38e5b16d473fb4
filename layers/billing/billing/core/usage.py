"""Usage aggregates: what a period's events add up to, per account, period and meter.

Aggregates merge associatively and commutatively, so any split of a stream of events into
batches, in any order, adds up to the same thing (the rater relies on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Final, NamedTuple

from billing.core.catalog import Aggregation, Meter, Plan
from billing.core.money import add, total
from billing.core.pricing import ChargeModel


class Aggregate(NamedTuple):
    """A meter's aggregate over some events: `quantity` by its aggregation, `events` counted."""

    quantity: Decimal = Decimal(0)
    events: int = 0

    def add(self, aggregation: Aggregation, quantity: Decimal) -> Aggregate:
        return self.merge(
            aggregation, Aggregate(Decimal(1) if aggregation == "count" else quantity, 1)
        )

    @staticmethod
    def of(aggregation: Aggregation, quantities: Sequence[Decimal]) -> Aggregate:
        """The aggregate of some events' quantities, added up exactly in one go."""
        if aggregation == "max":
            quantity = max(quantities, default=Decimal(0))
        elif aggregation == "count":
            quantity = Decimal(len(quantities))
        else:
            quantity = total(quantities)
        return Aggregate(quantity, len(quantities))

    def merge(self, aggregation: Aggregation, other: Aggregate) -> Aggregate:
        if aggregation == "max":
            combined = max(self.quantity, other.quantity)
        else:  # sum and count both add up (count's quantity is its number of events)
            combined = add(self.quantity, other.quantity)
        return Aggregate(combined, self.events + other.events)


class MeterUsage(NamedTuple):
    """One meter's usage in a period: all its events, and the share of each filtered charge."""

    aggregation: Aggregation
    total: Aggregate = Aggregate()
    by_filter: Mapping[str, Aggregate] = MappingProxyType({})

    def add(self, quantity: Decimal, filter_keys: Iterable[str]) -> MeterUsage:
        by_filter = dict(self.by_filter)
        for key in filter_keys:
            by_filter[key] = by_filter.get(key, Aggregate()).add(self.aggregation, quantity)
        return MeterUsage(self.aggregation, self.total.add(self.aggregation, quantity), by_filter)

    def merge(self, other: MeterUsage) -> MeterUsage:
        by_filter = dict(self.by_filter)
        for key, aggregate in other.by_filter.items():
            by_filter[key] = by_filter.get(key, Aggregate()).merge(self.aggregation, aggregate)
        return MeterUsage(
            self.aggregation, self.total.merge(self.aggregation, other.total), by_filter
        )

    def quantity_for(self, charge: ChargeModel) -> Decimal:
        """The quantity a charge prices: all events, or only those that pass its filters."""
        if not charge.filters:
            return self.total.quantity
        return self.by_filter.get(charge.filter_key, Aggregate()).quantity


# An aggregate as stored: a quantity of at most 1e15 times the events, with 12 decimals
# (under 40 characters), an event count, and JSON's punctuation.
_AGGREGATE_BYTES: Final = 72


def usage_bytes(meters: Mapping[str, MeterUsage]) -> int:
    """An upper bound of the bytes one period's usage takes when stored (as JSON)."""
    return sum(
        len(meter)
        + 2 * _AGGREGATE_BYTES
        + sum(len(key) + _AGGREGATE_BYTES for key in usage.by_filter)
        for meter, usage in meters.items()
    )


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
                result[meter] = MeterUsage(usage.aggregation, usage.total, kept)
    return result


def period_bytes_bound(plan: Plan, meters: Sequence[Meter]) -> int:
    """An upper bound of `usage_bytes` for any period of an account on `plan`."""
    return sum(len(m.name) + 2 * _AGGREGATE_BYTES for m in meters) + sum(
        len(charge.filter_key) + _AGGREGATE_BYTES for charge in plan.charges if charge.filters
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
    """Aggregates in memory, keyed by account, period and meter."""

    def __init__(self) -> None:
        self.usage: dict[UsageKey, MeterUsage] = {}

    def add(self, key: UsageKey, meter: Meter, quantity: Decimal, keys: Iterable[str]) -> None:
        current = self.usage.get(key) or MeterUsage(meter.aggregation)
        self.usage[key] = current.add(quantity, keys)

    def merge(self, other: UsageLedger) -> None:
        for key, usage in other.usage.items():
            current = self.usage.get(key)
            self.usage[key] = usage if current is None else current.merge(usage)

    def for_account(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of one account in one period, by meter name."""
        return {
            key.meter: usage
            for key, usage in self.usage.items()
            if key.account_id == account_id and key.period == period
        }
