"""An independent oracle for CONTRACT.md sections 2a, 3 and 4, written from the contract's
text alone: it imports nothing from the project. It prices one period for one account from
plain dicts (the parsed YAML) and the events in stream order, and gives the invoice JSON the
contract describes (lines, subtotal, tax, total, credits, amount_due)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

MINOR = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3}


def money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-MINOR[currency]), rounding=ROUND_HALF_UP)


def text(value: Decimal, currency: str) -> str:
    rounded = money(value, currency)
    return format(rounded + 0, "f") if rounded != 0 else format(abs(rounded), "f")


@dataclass(frozen=True)
class Event:
    account: str
    meter: str
    quantity: Decimal
    at: datetime
    dimensions: dict[str, str]
    nanos: int  # the fraction of the second, to the nanosecond (datetime keeps microseconds)


def parse_event(raw: dict[str, Any]) -> Event:
    stamp = raw["timestamp"].replace("Z", "+00:00").replace("z", "+00:00")
    whole, offset = stamp[:19], stamp[-6:]
    fraction = stamp[20:-6] if stamp[19] == "." else ""
    return Event(
        raw["account_id"],
        raw["meter"],
        Decimal(str(raw["quantity"])),
        datetime.fromisoformat(whole + offset),
        raw.get("dimensions") or {},
        int(fraction.ljust(9, "0")) if fraction else 0,
    )


def tiered(quantity: Decimal, charge: dict[str, Any]) -> Decimal:
    model = charge["model"]
    if model == "per_unit":
        return quantity * Decimal(charge["unit_price"])
    if model == "package":
        packages = (quantity / Decimal(charge["package_size"])).to_integral_value(ROUND_CEILING)
        return packages * Decimal(charge["package_price"])
    tiers = charge["tiers"]
    if model == "volume":
        if quantity == 0:
            return Decimal(0)
        for tier in tiers:
            if tier["up_to"] is None or quantity <= Decimal(tier["up_to"]):
                return quantity * Decimal(tier["unit_price"]) + Decimal(tier.get("flat_fee", "0"))
    total, below = Decimal(0), Decimal(0)
    for tier in tiers:
        top = quantity if tier["up_to"] is None else min(quantity, Decimal(tier["up_to"]))
        inside = top - below
        if inside > 0:
            total += inside * Decimal(tier["unit_price"]) + Decimal(tier.get("flat_fee", "0"))
        if tier["up_to"] is not None:
            below = max(below, Decimal(tier["up_to"]))
        if quantity <= below:
            break
    return total


def passes(event: Event, filters: dict[str, list[str]] | None) -> bool:
    return all(event.dimensions.get(key) in values for key, values in (filters or {}).items())


def aggregate(meter: dict[str, Any], events: list[Event]) -> Decimal:
    kind = meter["aggregation"]
    if kind == "sum":
        return sum((e.quantity for e in events), Decimal(0))
    if kind == "count":
        return Decimal(len(events))
    if kind == "max":
        return max((e.quantity for e in events), default=Decimal(0))
    if kind == "unique_count":
        field = meter["field"]
        return Decimal(len({e.dimensions[field] for e in events if field in e.dimensions}))
    assert kind == "latest"
    best: tuple[datetime, int, int] | None = None
    value = Decimal(0)
    for position, e in enumerate(events):
        key = (e.at, e.nanos, position)  # later on the stream wins a tie
        if best is None or key >= best:
            best, value = key, e.quantity
    return value


def midnight(day: date, zone: ZoneInfo) -> datetime:
    # fold=0 on a skipped midnight takes the offset before the jump: the jump's instant.
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def iso(day: date, zone: ZoneInfo) -> str:
    return midnight(day, zone).isoformat()


def phases(account: dict[str, Any], first: date, after: date) -> list[tuple[str, date, date]]:
    start = date.fromisoformat(account["start"]) if account.get("start") else first
    end = date.fromisoformat(account["end"]) if account.get("end") else after
    low, high = max(first, start), min(after, end)
    bounds = [(date.fromisoformat(c["effective"]), c["plan"]) for c in account.get("changes", [])]
    result: list[tuple[str, date, date]] = []
    plan = account["plan"]
    cursor = low
    for effective, new_plan in bounds:
        if effective <= low:
            plan = new_plan
            continue
        if effective >= high:
            break
        result.append((plan, cursor, effective))
        plan, cursor = new_plan, effective
    if cursor < high:
        result.append((plan, cursor, high))
    return result


def period_index(text_period: str) -> int:
    year, month = map(int, text_period.split("-"))
    return year * 12 + month - 1


def invoice(
    catalog: dict[str, Any],
    account: dict[str, Any],
    raw_events: list[dict[str, Any]],
    period: str,
) -> dict[str, Any]:
    zone = ZoneInfo(account["timezone"])
    year, month = map(int, period.split("-"))
    days = calendar.monthrange(year, month)[1]
    first, after = date(year, month, 1), date(year, month, days) + timedelta(days=1)
    meters = {m["name"]: m for m in catalog["meters"]}
    plans = {p["id"]: p for p in catalog["plans"]}
    currency = plans[account["plan"]]["currency"]
    mine = [parse_event(r) for r in raw_events if r["account_id"] == account["id"]]
    parts = phases(account, first, after)
    several = len(parts) > 1
    lines: list[dict[str, Any]] = []
    for plan_id, low, high in parts:
        plan = plans[plan_id]
        inside = [e for e in mine if low <= e.at.astimezone(zone).date() < high]
        tag = {"plan": plan_id, "from": low.isoformat(), "to": high.isoformat()} if several else {}
        own = Decimal(0)
        for charge in plan.get("charges", []):
            chosen = [
                e for e in inside if e.meter == charge["meter"] and passes(e, charge.get("filters"))
            ]
            quantity = aggregate(meters[charge["meter"]], chosen)
            amount = money(tiered(quantity, charge), currency)
            own += amount
            line = {"kind": "usage", "meter": charge["meter"], "quantity": quantity}
            line["amount"] = amount
            if charge.get("filters"):
                line["filters"] = charge["filters"]
            lines.append(line | tag)
        share = Decimal((high - low).days) / Decimal(days)
        if plan.get("fixed_fee") is not None:
            amount = money(Decimal(plan["fixed_fee"]) * share, currency)
            own += amount
            lines.append({"kind": "fixed", "quantity": Decimal(1), "amount": amount} | tag)
        if plan.get("minimum_commitment") is not None:
            floor = money(Decimal(plan["minimum_commitment"]) * share, currency)
            if own < floor:
                owed = floor - own
                lines.append({"kind": "minimum", "quantity": Decimal(1), "amount": owed} | tag)
    here = period_index(period)
    for discount in account.get("discounts", []):
        begin = period_index(discount["from"])
        if not begin <= here < begin + int(discount["periods"]):
            continue
        remaining = sum((line["amount"] for line in lines), Decimal(0))
        if "percent" in discount:
            cut = money(remaining * Decimal(discount["percent"]) / 100, currency)
        else:
            cut = min(Decimal(discount["amount"]), remaining)
        ident = discount["id"]
        lines.append(
            {"kind": "discount", "discount": ident, "quantity": Decimal(1), "amount": -cut}
        )
    subtotal = sum((line["amount"] for line in lines), Decimal(0))
    tax = money(subtotal * Decimal(account.get("tax_rate") or "0"), currency)
    total = subtotal + tax
    drawn = draw(account.get("credits", []), first, after - timedelta(days=1), total)
    applied = sum((amount for _, amount in drawn), Decimal(0))
    return {
        "account_id": account["id"],
        "period": period,
        "period_start": iso(first, zone),
        "period_end": iso(after, zone),
        "currency": currency,
        "lines": [
            {k: (text(v, currency) if k == "amount" else v) for k, v in line.items()}
            for line in lines
        ],
        "subtotal": text(subtotal, currency),
        "tax": text(tax, currency),
        "total": text(total, currency),
        "credits": [{"id": i, "amount": text(a, currency)} for i, a in drawn],
        "credits_applied": text(applied, currency),
        "amount_due": text(total - applied, currency),
    }


def draw(
    grants: list[dict[str, Any]], first: date, last: date, total: Decimal
) -> list[tuple[str, Decimal]]:
    usable = [
        g
        for g in grants
        if last >= date.fromisoformat(g["granted"])
        and (g.get("expires") is None or first < date.fromisoformat(g["expires"]))
    ]
    usable.sort(
        key=lambda g: (
            g.get("expires") is None,
            g.get("expires") or "",
            g["granted"],
            g["id"],
        )
    )
    left, drawn = total, []
    for grant in usable:
        take = min(left, Decimal(grant["amount"]))
        if take > 0:
            drawn.append((grant["id"], take))
            left -= take
    return drawn
