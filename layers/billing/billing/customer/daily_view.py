"""An account's usage by local day of a period, for a chart (pure; docs/customer-api.md).

The rater keeps each meter's aggregate per local day of the period beside its total, in
the same ledger write (docs/table-design.md, "Usage by day"). This view lists, per meter,
every local day of the period up to today (all of them once the period is over): the day's
own quantity and the period's quantity to the end of that day, both as the meter's
aggregation takes them:

- `sum`, `count`: the day's sum or count; to date, their running sum.
- `max`: the day's peak; to date, the running peak.
- `unique_count`: the values first seen in the period on that day; to date, the distinct
  values so far (their running sum).
- `latest`: the quantity of the day's latest event, none (null) on a day without one; to
  date, the latest so far.

A meter's days are `complete` when they account for its total: not so for usage rated
before days were kept (an upgrade inside a period), or for a period whose days outgrew
their budget (`billing.core.usage.capped_days`); its days are then listed as far as they
are known, and its total stays exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from billing.core.catalog import Account, Catalog
from billing.core.invoice import utc_text
from billing.core.meters import Aggregation
from billing.core.money import plain_quantity, total
from billing.core.periods import Period
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.usage_view import (
    PeriodStatus,
    by_meter_name,
    charged_meters,
    shown_meters,
)


@dataclass(frozen=True, slots=True)
class DayView:
    day: date
    quantity: Decimal | None  # None: a `latest` meter's day without an event
    to_date: Decimal | None  # None: no `latest` event yet in the period

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "quantity": None if self.quantity is None else plain_quantity(self.quantity),
            "to_date": None if self.to_date is None else plain_quantity(self.to_date),
        }


@dataclass(frozen=True, slots=True)
class DailyMeter:
    meter: str
    description: str
    unit: str | None
    aggregation: Aggregation
    quantity: Decimal  # the period's total so far, as the usage report shows it
    complete: bool
    days: tuple[DayView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "meter": self.meter,
            "description": self.description,
            "unit": self.unit,
            "aggregation": self.aggregation,
            "quantity": plain_quantity(self.quantity),
            "complete": self.complete,
            "days": [day.to_json() for day in self.days],
        }


@dataclass(frozen=True, slots=True)
class DailyUsage:
    account: Account
    period: Period
    status: PeriodStatus
    as_of: datetime
    meters: tuple[DailyMeter, ...]

    def to_json(self) -> dict[str, Any]:
        zone = self.account.zone
        return {
            "account_id": self.account.id,
            "period": str(self.period),
            "period_start": self.period.start(zone).isoformat(),
            "period_end": self.period.end(zone).isoformat(),
            "timezone": self.account.timezone,
            "status": self.status,
            "as_of": utc_text(self.as_of),
            "meters": [meter.to_json() for meter in self.meters],
        }


def daily_usage(
    account: Account,
    catalog: Catalog,
    period: Period,
    usage: Mapping[str, MeterUsage],
    *,
    status: PeriodStatus,
    now: datetime,
) -> DailyUsage:
    """The period's usage by local day, from its usage as stored (phases' names included);
    CatalogError if the account's plan is not in the catalog."""
    merged = by_meter_name(usage)
    days = _days_shown(period, now.astimezone(account.zone).date())
    meters = []
    for name in shown_meters(catalog, charged_meters(account, catalog, period), merged):
        meter = catalog.meters_by_name.get(name)
        if meter is None:  # dropped from the catalog: shown for the usage it counted
            meter_usage = merged[name]
            label, unit = name, None
        else:
            meter_usage = merged.get(name) or MeterUsage(meter.aggregation)
            label, unit = meter.label, meter.unit
        meters.append(
            DailyMeter(
                name,
                label,
                unit,
                meter_usage.aggregation,
                meter_usage.total.quantity,
                is_complete(meter_usage),
                _day_views(meter_usage, days),
            )
        )
    return DailyUsage(account, period, status, now, tuple(meters))


def _days_shown(period: Period, today: date) -> list[date]:
    """The period's local days up to `today` (all of them for a period over)."""
    end = min(period.end_day, today + timedelta(days=1))
    return [period.first_day + timedelta(days=n) for n in range((end - period.first_day).days)]


def _day_views(usage: MeterUsage, days: list[date]) -> tuple[DayView, ...]:
    aggregation = usage.aggregation
    kept = usage.days or {}
    views = []
    so_far: Aggregate | None = None
    for day in days:
        today = kept.get(day.day)
        if today is not None:
            so_far = today if so_far is None else so_far.merge(aggregation, today)
        if aggregation == "latest":
            quantity = None if today is None else today.quantity
            to_date = None if so_far is None else so_far.quantity
        else:
            quantity = Decimal(0) if today is None else today.quantity
            to_date = Decimal(0) if so_far is None else so_far.quantity
        views.append(DayView(day, quantity, to_date))
    return tuple(views)


def is_complete(usage: MeterUsage) -> bool:
    """Whether the meter's days account for its whole total (see the module's docstring)."""
    if usage.days is None:
        return False
    if usage.total.events == 0:
        return True
    days = list(usage.days.values())
    if not days:
        return False
    aggregation, expected = usage.aggregation, usage.total
    if aggregation == "latest":
        latest = max(days, key=lambda day: day.last or (0, 0))
        return (latest.quantity, latest.last) == (expected.quantity, expected.last)
    if aggregation == "max":
        return max(day.quantity for day in days) == expected.quantity
    return total(day.quantity for day in days) == expected.quantity
