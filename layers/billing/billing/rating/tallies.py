"""What one account's batch adds up to, by period and meter, before it is applied (pure).

`billing.rating.account_batch` fills them record by record; `billing.rating.rater` turns
them into the account's ledger write.
"""

from __future__ import annotations

from decimal import Decimal

from billing.core.meters import Aggregation
from billing.core.periods import Period
from billing.core.unpriced import Unpriced, merged_values
from billing.core.usage import Aggregate, MeterUsage, days_of


class Tally:
    """One meter's rated events in one period of the batch: their quantities, those of the
    events that pass each filtered charge, those of each local day, and those that pass
    none of a filtered meter's charges (with their values' counts). Added up once, when
    the batch is applied."""

    __slots__ = ("days", "quantities", "shares", "unpriced", "unpriced_values")

    def __init__(self) -> None:
        self.quantities: list[Decimal] = []
        self.shares: dict[str, list[Decimal]] = {}  # by the filtered charge's filter key
        self.days: dict[int, list[Decimal]] = {}  # by local day of the month
        self.unpriced: list[Decimal] = []
        self.unpriced_values: dict[str, int] = {}

    def usage(self, aggregation: Aggregation) -> MeterUsage:
        unpriced = None
        if self.unpriced:
            values = merged_values({}, self.unpriced_values)
            unpriced = Unpriced(Aggregate.of(aggregation, self.unpriced), values)
        total = Aggregate.of(aggregation, self.quantities)
        if len(self.days) == 1:
            # One day holds every quantity, in the same order: its sum is the total's.
            (day,) = self.days
            days = {} if total.quantity.is_zero() else {day: Aggregate(total.quantity)}
        else:
            days = days_of(aggregation, self.days)
        return MeterUsage(
            aggregation,
            total,
            {key: Aggregate.of(aggregation, shares) for key, shares in self.shares.items()},
            days,
            unpriced,
        )

    def add_unpriced(self, quantity: Decimal, label: str) -> None:
        self.unpriced.append(quantity)
        self.unpriced_values[label] = self.unpriced_values.get(label, 0) + 1


class EventTally:
    """A `unique_count` or `latest` meter's rated events in one period of the batch, added
    up event by event: a unique_count event adds 1 only to the shares its value is new
    to, and a latest one needs its stream order."""

    __slots__ = ("running",)

    def __init__(self, aggregation: Aggregation) -> None:
        self.running = MeterUsage(aggregation)


class PeriodPart:
    """What one account's batch adds to one period: tallies by meter, claimed digests."""

    __slots__ = ("digests", "label", "period", "running", "tallies")

    def __init__(self, period: Period) -> None:
        self.period = period
        self.label = str(period)
        # By stored name: the meter, with a phase's mark for a phase begun inside the period.
        self.tallies: dict[str, Tally] = {}
        self.running: dict[str, EventTally] = {}  # unique_count and latest meters
        self.digests = bytearray()
