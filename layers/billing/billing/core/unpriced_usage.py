"""Unpriced usage as readers show it: per meter (and phase), the quantity and events no
charge of the plan in force took, and for a filtered meter the values of its filtered
dimension those events carried (docs/contract-notes.md, "Unpriced usage").

Pure, and never on the invoice (CONTRACT.md section 4): the usage report (`billing usage`,
the usage and customer APIs) and the preview show it beside the running charges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from billing.core.catalog import Account, Catalog, Plan
from billing.core.invoice import PhaseMark
from billing.core.money import plain_quantity
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.core.unpriced import NO_VALUE, unpriced_dimension
from billing.core.usage import MeterUsage

# Why a meter's usage went unpriced: the plan has no charge on it, or it charges the meter
# only through filters and these events passed none of them.
Reason = Literal["no_charge", "no_filter_matched"]


@dataclass(frozen=True, slots=True)
class UnpricedValue:
    value: str | None  # None: the events lacked the dimension
    events: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "events": self.events}


@dataclass(frozen=True, slots=True)
class UnpricedView:
    """One meter's unpriced usage in a period (or in one phase of it)."""

    meter: str
    description: str
    unit: str | None  # None only for a meter the catalog no longer has
    reason: Reason
    quantity: Decimal
    events: int
    dimension: str | None = None  # the filtered dimension its values are of
    values: tuple[UnpricedValue, ...] = ()  # most events first, then by value
    other_events: int = 0  # events whose values are not listed (beyond the kept ones)
    phase: PhaseMark | None = None  # set when the period holds more than one phase

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "meter": self.meter,
            "description": self.description,
            "unit": self.unit,
            "reason": self.reason,
            "quantity": plain_quantity(self.quantity),
            "events": self.events,
            "dimension": self.dimension,
            "values": [value.to_json() for value in self.values],
            "other_events": self.other_events,
        }
        if self.phase is not None:
            view.update(self.phase.to_json())
        return view


def unpriced_usage(
    account: Account, catalog: Catalog, period: Period, usage: Mapping[str, MeterUsage]
) -> tuple[UnpricedView, ...]:
    """The account's unpriced usage in `period`, from its usage by stored name (meter, or
    meter and phase mark), phase by phase as the invoice prices it, meters in the
    catalog's order (then, by name, those the catalog no longer has)."""
    phases = Phases(account, catalog).in_period(period) if account.changes else []
    if len(phases) > 1:
        return tuple(
            view
            for phase in phases
            for view in _in_phase(
                phase.plan,
                catalog,
                phase.usage(usage),
                PhaseMark(phase.plan.id, phase.plan.name, phase.first, phase.end),
            )
        )
    plan = phases[0].plan if phases else catalog.plans_by_id[account.plan]
    return tuple(_in_phase(plan, catalog, usage, None))


def _in_phase(
    plan: Plan, catalog: Catalog, usage: Mapping[str, MeterUsage], mark: PhaseMark | None
) -> list[UnpricedView]:
    order = {meter.name: index for index, meter in enumerate(catalog.meters)}
    names = sorted(usage, key=lambda name: (order.get(name, len(order)), name))
    views = []
    for name in names:
        view = _meter_view(plan, catalog, name, usage[name], mark)
        if view is not None:
            views.append(view)
    return views


def _meter_view(
    plan: Plan, catalog: Catalog, name: str, usage: MeterUsage, mark: PhaseMark | None
) -> UnpricedView | None:
    meter = catalog.meters_by_name.get(name)
    description, unit = (meter.label, meter.unit) if meter else (name, None)
    if name not in plan.charges_by_meter:
        if not usage.total.events:
            return None
        total = usage.total
        return UnpricedView(
            name, description, unit, "no_charge", total.quantity, total.events, phase=mark
        )
    unpriced, dimension = usage.unpriced, unpriced_dimension(plan, name)
    # A charge without filters now takes every event: the invoice prices them all.
    if unpriced is None or not unpriced.total.events or dimension is None:
        return None
    values = sorted(unpriced.values.items(), key=lambda item: (-item[1], item[0]))
    listed = tuple(UnpricedValue(None if v == NO_VALUE else v, n) for v, n in values)
    return UnpricedView(
        name,
        description,
        unit,
        "no_filter_matched",
        unpriced.total.quantity,
        unpriced.total.events,
        dimension,
        listed,
        unpriced.total.events - sum(value.events for value in listed),
        mark,
    )
