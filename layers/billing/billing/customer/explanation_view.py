"""Each line of a period's invoice with what makes it: for a usage line, the meter's
aggregation and the events it counts; for every line, its price step by step (the
invoice's own `details`). The usage API's explanation, for the account's own usage
(docs/usage-api.md).

An open period is explained from the usage report (`billing.customer.usage_view`): the
invoice as it stands, to the cent. An invoiced one is explained from its invoice as
stored, whatever was pushed since (a catalog, a tax rate, a discount): its lines, steps
and totals are the document's; each usage line's events are those its charge counted in
the period's archived usage, matched by what the line is (kind, meter, filters, phase),
and left out when no charge of the catalog now is that line. The events themselves (the
first, the last, the biggest) and the records left out are the operator's `billing
explain`, which reads the raw archive: an answer of the API reads only the account's
ledger and documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from billing.core.money import plain_quantity
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.customer.daily_view import is_complete as _complete
from billing.customer.usage_view import UsageReport

_IDENTITY = ("kind", "meter", "filters", "plan", "from", "discount")


def explanation(
    report: UsageReport,
    issued: Mapping[str, Any] | None = None,
    usage: Mapping[str, MeterUsage] | None = None,
) -> dict[str, Any]:
    """The explanation of `report`'s period: of `issued` (the stored invoice's document)
    when the period is invoiced, else of the invoice the report makes now. `usage` is the
    period's usage by meter name (`by_meter_name`), for each usage line's `days`."""
    usage = usage or {}
    events = {
        _identity(charge.line.to_json()): charge.events
        for meter in report.meters
        for charge in meter.charges
    }
    # How the stored usage was added up (as it was billed), else the catalog's.
    aggregations = {meter.meter: meter.aggregation for meter in report.meters}
    aggregations |= {name: meter_usage.aggregation for name, meter_usage in usage.items()}
    document = issued if issued is not None else report.preview.to_json()
    lines = []
    for line in document["lines"]:
        explained = {key: value for key, value in line.items() if key != "details"}
        if line["kind"] == "usage":
            explained["aggregation"] = aggregations.get(line.get("meter", ""))
            counted = events.get(_identity(line))
            if counted is not None:
                explained["events"] = counted
            days = days_summary(report.period, usage.get(line.get("meter", "")))
            if days is not None:
                explained["days"] = days
        lines.append({**explained, "steps": line.get("details", [])})
    return {
        "account_id": report.account_id,
        "period": str(report.period),
        "status": report.status,
        "currency": document["currency"],
        "lines": lines,
        "subtotal": document["subtotal"],
        "tax": document["tax"],
        "total": document["total"],
        "unpriced": [view.to_json() for view in report.unpriced],
    }


def days_summary(period: Period, usage: MeterUsage | None) -> dict[str, Any] | None:
    """When the line's meter was used, from its usage by local day (kept beside its
    totals, at no cost per event): the first and last local day with usage and the day of
    the largest quantity (the earliest of equals; for `latest`, the day of the last value).
    None when no day is kept (no usage, or days not kept for the period)."""
    if usage is None or not usage.days:
        return None
    days = usage.days
    if usage.aggregation == "latest":
        busiest = max(days, key=lambda day: days[day].last or (0, 0))
    else:
        busiest = min(days, key=lambda day: (-days[day].quantity, day))

    def on(day: int) -> str:
        return date(period.year, period.month, day).isoformat()

    return {
        "first": on(min(days)),
        "last": on(max(days)),
        "busiest": {"date": on(busiest), "quantity": plain_quantity(days[busiest].quantity)},
        "complete": _complete(usage),
    }


def _identity(line: Mapping[str, Any]) -> str:
    return json.dumps({key: line[key] for key in _IDENTITY if key in line}, sort_keys=True)
