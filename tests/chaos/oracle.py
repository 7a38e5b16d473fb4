"""The chaos run's oracle, written from CONTRACT.md's text alone: it imports nothing of the
project (no pricing, aggregation, period or money code), only the standard library.

Its scope is what tests/chaos/workload.py generates: it judges each record's bytes (the
rejection reasons the workload produces, in the contract's order), keeps the first accepted
event of each (account, event_id), adds up each (account, period, meter) per plan phase, and
prices each account's October and November invoices (phases, fixed fees and minimums
prorated by active days, tiers, packages, filters, discounts, tax, credits drawn across the
two periods in order). All arithmetic is Decimal, each line rounded once, half up.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

MINOR_DIGITS = {"USD": 2, "EUR": 2}
MAX_RECORD_BYTES = 16 * 1024
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Accepted:
    account: str
    meter: str
    quantity: Decimal
    instant_ns: int  # nanoseconds since the epoch
    local_day: date
    dimensions: dict[str, str]
    position: int  # on the stream


def parse_instant(text: str) -> tuple[datetime, int]:
    """An RFC 3339 timestamp: its instant (to the second, aware) and nanoseconds within it."""
    text = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    whole, offset = text[:19], text[-6:]
    fraction = text[20:-6] if len(text) > 25 and text[19] == "." else ""
    instant = datetime.fromisoformat(whole + offset)
    return instant, int(fraction.ljust(9, "0")) if fraction else 0


def epoch_ns(instant: datetime, nanos: int) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + nanos


def money(value: Decimal, currency: str) -> Decimal:
    step = Decimal(1).scaleb(-MINOR_DIGITS[currency])
    return value.quantize(step, rounding=ROUND_HALF_UP)


def money_text(value: Decimal, currency: str) -> str:
    rounded = money(value, currency)
    return format(abs(rounded) if rounded == 0 else rounded, "f")


class Oracle:
    def __init__(self, catalog: dict[str, Any], book: dict[str, Any], clock: datetime) -> None:
        self.meters = {m["name"]: m for m in catalog["meters"]}
        self.plans = {p["id"]: p for p in catalog["plans"]}
        self.accounts = {a["id"]: a for a in book["accounts"]}
        self.clock = clock
        self.outcomes: list[str] = []  # "rated", "duplicate" or the rejection reason
        self.accepted: list[Accepted] = []
        self._claimed: set[tuple[str, str]] = set()
        self._by_account: dict[str, list[Accepted]] | None = None

    def events_of(self, account_id: str) -> list[Accepted]:
        if self._by_account is None:
            self._by_account = {}
            for event in self.accepted:
                self._by_account.setdefault(event.account, []).append(event)
        return self._by_account.get(account_id, [])

    # --- judging records -------------------------------------------------------------

    def judge_all(self, records: list[bytes]) -> None:
        for position, data in enumerate(records):
            self.outcomes.append(self._judge(position, data))

    def _judge(self, position: int, data: bytes) -> str:
        if len(data) > MAX_RECORD_BYTES:
            return "TOO_LARGE"
        try:
            event = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return "MALFORMED_JSON"
        if not isinstance(event, dict) or not _schema_ok(event):
            return "SCHEMA_INVALID"
        account = self.accounts.get(event["account_id"])
        if account is None:
            return "UNKNOWN_ACCOUNT"
        if event["meter"] not in self.meters:
            return "UNKNOWN_METER"
        instant, nanos = parse_instant(event["timestamp"])
        if instant > self.clock + FUTURE_TOLERANCE:
            return "FUTURE_TIMESTAMP"
        day = instant.astimezone(ZoneInfo(account["timezone"])).date()
        if not _subscribed(account, day):
            return "NOT_SUBSCRIBED"
        key = (account["id"], event["event_id"])
        if key in self._claimed:
            return "duplicate"
        self._claimed.add(key)
        self.accepted.append(
            Accepted(
                account["id"],
                event["meter"],
                Decimal(str(event["quantity"])),
                epoch_ns(instant, nanos),
                day,
                event.get("dimensions") or {},
                position,
            )
        )
        return "rated"


def _schema_ok(event: dict[str, Any]) -> bool:
    fields = ("event_id", "account_id", "meter", "timestamp")
    if not all(isinstance(event.get(name), str) for name in fields):
        return False
    quantity = event.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int | str):
        return False
    return Decimal(str(quantity)) >= 0


def _subscribed(account: dict[str, Any], day: date) -> bool:
    start, end = account.get("start"), account.get("end")
    return (start is None or day >= date.fromisoformat(start)) and (
        end is None or day < date.fromisoformat(end)
    )


# --- periods and phases ------------------------------------------------------------------


def period_of(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def period_days(period: str) -> tuple[date, date]:
    """The period's first day and the day after its last."""
    year, month = map(int, period.split("-"))
    first = date(year, month, 1)
    return first, first + timedelta(days=calendar.monthrange(year, month)[1])


def changes_of(account: dict[str, Any]) -> list[tuple[date, str]]:
    return [(date.fromisoformat(c["effective"]), c["plan"]) for c in account.get("changes", [])]


def phase_mark(account: dict[str, Any], day: date) -> str:
    """The name suffix under which the ledger keeps a meter's usage of an event on local
    `day` (docs/table-design.md): empty for the phase the period starts in, else '@' and
    the day that phase began."""
    began = [effective for effective, _ in changes_of(account) if effective <= day]
    first, _ = period_days(period_of(day))
    return "@" + began[-1].isoformat() if began and began[-1] > first else ""


def phases(account: dict[str, Any], period: str) -> list[tuple[str, date, date]]:
    """(plan, first day, day after the last) of each phase overlapping the period and the
    subscription, in date order."""
    first, after = period_days(period)
    low = max(first, date.fromisoformat(account["start"])) if "start" in account else first
    high = min(after, date.fromisoformat(account["end"])) if "end" in account else after
    plan, cursor, result = account["plan"], low, []
    for effective, new_plan in changes_of(account):
        if effective <= low:
            plan = new_plan
        elif effective < high:
            result.append((plan, cursor, effective))
            plan, cursor = new_plan, effective
    if cursor < high:
        result.append((plan, cursor, high))
    return result


# --- aggregates --------------------------------------------------------------------------


def aggregate(meter: dict[str, Any], events: list[Accepted]) -> Decimal:
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
    latest = max(events, key=lambda e: (e.instant_ns, e.position), default=None)
    return latest.quantity if latest else Decimal(0)


def aggregates(oracle: Oracle) -> dict[tuple[str, str, str], tuple[Decimal, int]]:
    """(account, period, stored meter name) -> (quantity, events), as the ledgers must hold
    them."""
    groups: dict[tuple[str, str, str], list[Accepted]] = {}
    for event in oracle.accepted:
        account = oracle.accounts[event.account]
        name = event.meter + phase_mark(account, event.local_day)
        groups.setdefault((event.account, period_of(event.local_day), name), []).append(event)
    return {
        key: (aggregate(oracle.meters[key[2].split("@")[0]], events), len(events))
        for key, events in groups.items()
    }


# --- invoices ----------------------------------------------------------------------------


def price(quantity: Decimal, charge: dict[str, Any]) -> Decimal:
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
        tier = next(t for t in tiers if t["up_to"] is None or quantity <= Decimal(t["up_to"]))
        return quantity * Decimal(tier["unit_price"]) + Decimal(tier.get("flat_fee", "0"))
    amount, floor = Decimal(0), Decimal(0)
    for tier in tiers:  # graduated
        top = quantity if tier["up_to"] is None else min(quantity, Decimal(tier["up_to"]))
        inside = top - floor
        if inside > 0:
            amount += inside * Decimal(tier["unit_price"]) + Decimal(tier.get("flat_fee", "0"))
        if tier["up_to"] is None or quantity <= Decimal(tier["up_to"]):
            break
        floor = Decimal(tier["up_to"])
    return amount


def _passes(event: Accepted, filters: dict[str, list[str]] | None) -> bool:
    return all(event.dimensions.get(name) in values for name, values in (filters or {}).items())


def _phase_lines(
    oracle: Oracle, plan_id: str, events: list[Accepted], share: Decimal, currency: str
) -> list[dict[str, Any]]:
    plan = oracle.plans[plan_id]
    lines: list[dict[str, Any]] = []
    for charge in plan["charges"]:
        chosen = [
            e for e in events if e.meter == charge["meter"] and _passes(e, charge.get("filters"))
        ]
        quantity = aggregate(oracle.meters[charge["meter"]], chosen)
        line = {"kind": "usage", "meter": charge["meter"], "quantity": quantity}
        if charge.get("filters"):
            line["filters"] = charge["filters"]
        lines.append(line | {"amount": money(price(quantity, charge), currency)})
    if "fixed_fee" in plan:
        fee = money(Decimal(plan["fixed_fee"]) * share, currency)
        lines.append({"kind": "fixed", "quantity": Decimal(1), "amount": fee})
    if "minimum_commitment" in plan:
        floor = money(Decimal(plan["minimum_commitment"]) * share, currency)
        own = sum((line["amount"] for line in lines), Decimal(0))
        if own < floor:
            lines.append({"kind": "minimum", "quantity": Decimal(1), "amount": floor - own})
    return lines


def _months(period: str) -> int:
    year, month = map(int, period.split("-"))
    return year * 12 + month


def _discount_lines(
    account: dict[str, Any], period: str, lines: list[dict[str, Any]], currency: str
) -> None:
    for discount in account.get("discounts", []):
        begin = _months(discount["from"])
        if not begin <= _months(period) < begin + int(discount["periods"]):
            continue
        remaining = sum((line["amount"] for line in lines), Decimal(0))
        if "percent" in discount:
            cut = money(remaining * Decimal(discount["percent"]) / 100, currency)
        else:
            cut = min(Decimal(discount["amount"]), remaining)
        lines.append(
            {"kind": "discount", "discount": discount["id"], "quantity": Decimal(1), "amount": -cut}
        )


def invoice(
    oracle: Oracle, account_id: str, period: str, credit_left: dict[str, Decimal]
) -> dict[str, Any]:
    """The account's invoice for the period, drawing on `credit_left` (by grant id, what
    earlier invoices left), which it updates."""
    account = oracle.accounts[account_id]
    currency = oracle.plans[account["plan"]]["currency"]
    first, after = period_days(period)
    days = Decimal((after - first).days)
    mine = [e for e in oracle.events_of(account_id) if period_of(e.local_day) == period]
    parts = phases(account, period)
    lines: list[dict[str, Any]] = []
    for plan_id, low, high in parts:
        inside = [e for e in mine if low <= e.local_day < high]
        share = Decimal((high - low).days) / days
        tag = (
            {"plan": plan_id, "from": low.isoformat(), "to": high.isoformat()}
            if len(parts) > 1
            else {}
        )
        lines += [line | tag for line in _phase_lines(oracle, plan_id, inside, share, currency)]
    _discount_lines(account, period, lines, currency)
    subtotal = sum((line["amount"] for line in lines), Decimal(0))
    tax = money(subtotal * Decimal(account.get("tax_rate", "0")), currency)
    total = subtotal + tax
    drawn = _draw(account.get("credits", []), first, after, total, credit_left)
    applied = sum((amount for _, amount in drawn), Decimal(0))
    for line in lines:
        line["amount"] = money_text(line["amount"], currency)
    return {
        "account_id": account_id,
        "period": period,
        "currency": currency,
        "lines": lines,
        "subtotal": money_text(subtotal, currency),
        "tax": money_text(tax, currency),
        "total": money_text(total, currency),
        "credits": [{"id": grant, "amount": money_text(a, currency)} for grant, a in drawn],
        "credits_applied": money_text(applied, currency),
        "amount_due": money_text(total - applied, currency),
    }


def _draw(
    grants: list[dict[str, Any]], first: date, after: date, total: Decimal, left: dict[str, Decimal]
) -> list[tuple[str, Decimal]]:
    usable = [
        g
        for g in grants
        if after - timedelta(days=1) >= date.fromisoformat(g["granted"])
        and ("expires" not in g or first < date.fromisoformat(g["expires"]))
    ]
    usable.sort(key=lambda g: ("expires" not in g, g.get("expires", ""), g["granted"], g["id"]))
    owed, drawn = total, []
    for grant in usable:
        take = min(owed, left.setdefault(grant["id"], Decimal(grant["amount"])))
        if take > 0:
            drawn.append((grant["id"], take))
            left[grant["id"]] -= take
            owed -= take
    return drawn


def invoices(oracle: Oracle, periods: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every account's invoice for each period its subscription overlaps, in period order."""
    result = {}
    for account_id, account in oracle.accounts.items():
        left: dict[str, Decimal] = {}
        for period in periods:
            if phases(account, period):
                result[(account_id, period)] = invoice(oracle, account_id, period, left)
    return result
