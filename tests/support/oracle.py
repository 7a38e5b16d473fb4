"""An oracle for rating that shares no code with `billing`: generated usage whose expected
fate is known from how it was generated, and the aggregates it must add up to.

Each generated record (`Sent`) carries what the generator meant it to be: a valid event
(its account, event id, local period, meter, quantity and region) or a bad record and the
rejection reason it must get. `oracle` then applies CONTRACT.md's rules with plain Python:
the first accepted (account, event_id) wins, a period already invoiced rejects its events,
sum / max / count over Decimal, and a filtered charge counts the events whose dimension
value it lists. The example accounts and catalog are written out here as the oracle knows
them; tests/unit/test_properties.py checks them against examples/*.yaml.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

# The invoice run's clock for November 2026 (tests/integration/conftest.py's NOW): every
# generated valid event is at or before it.
RUN_CLOCK = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
START = datetime(2026, 10, 1, tzinfo=UTC)
# The example accounts as the oracle knows them: zone, subscription start and end (local
# dates, end exclusive).
SUBSCRIPTIONS: dict[str, tuple[str, date | None, date | None]] = {
    "acct-1": ("Europe/Paris", date(2026, 10, 10), None),
    "acct-2": ("America/New_York", date(2026, 11, 16), None),
    "acct-3": ("Europe/Berlin", None, None),
    "acct-4": ("Asia/Tokyo", None, None),
    "acct-5": ("Asia/Kuwait", None, None),
    "acct-6": ("Pacific/Kiritimati", None, date(2026, 11, 21)),
}
AGGREGATIONS = {
    "api_requests": "sum",
    "storage_gb_hours": "sum",
    "seats": "max",
    "exports": "count",
}
# The example plans' filtered charges, by account: (meter, charge description) -> the
# region values an event's `region` must have to count.
EU = frozenset({"eu-west-1", "eu-central-1"})
US = frozenset({"us-east-1", "us-west-2"})
PRO_FILTERS = {("storage_gb_hours", "Storage (EU)"): EU, ("storage_gb_hours", "Storage (US)"): US}
FILTERED_CHARGES: dict[str, dict[tuple[str, str], frozenset[str]]] = {
    "acct-1": PRO_FILTERS,
    "acct-2": PRO_FILTERS,
}
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"]


def payload(
    event_id: str,
    account: str = "acct-3",
    *,
    meter: str = "api_requests",
    quantity: int | str = 1,
    at: str = "2026-11-10T10:00:00Z",
    dimensions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A usage event (schema v1) as a producer writes it."""
    document: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account,
        "meter": meter,
        "quantity": quantity,
        "timestamp": at,
    }
    if dimensions:
        document["dimensions"] = dimensions
    return document


@dataclass
class Sent:
    payload: bytes
    reason: str | None  # the rejection the generator meant, None for a valid event
    key: tuple[str, str] | None = None  # (account, event_id) of a valid event
    period: str = ""  # the event's period in its account's zone
    meter: str = ""
    quantity: Decimal = Decimal(0)
    region: str | None = None


def subscribed(account: str, instant: datetime) -> bool:
    zone, start, end = SUBSCRIPTIONS[account]
    day = instant.astimezone(ZoneInfo(zone)).date()
    return (start is None or day >= start) and (end is None or day < end)


def period_of(account: str, instant: datetime) -> str:
    local = instant.astimezone(ZoneInfo(SUBSCRIPTIONS[account][0]))
    return f"{local.year}-{local.month:02d}"


def valid(
    event_id: str, account: str, at: datetime, meter: str, quantity: int | str, region: str | None
) -> Sent:
    """A valid event of a known account, subscribed at `at`, on a meter of the catalog."""
    document = payload(
        event_id,
        account,
        meter=meter,
        quantity=quantity,
        at=at.isoformat(),
        dimensions={"region": region} if region else None,
    )
    return Sent(
        json.dumps(document).encode(),
        None,
        (account, event_id),
        period_of(account, at),
        meter,
        Decimal(str(quantity)),
        region,
    )


def resend(first: Sent, quantity: str, at: datetime | None = None) -> Sent:
    """A producer resend of `first`: the same id, another quantity, maybe another time. It
    counts, with its own quantity, only if `first` was rejected (as in an invoiced period)."""
    assert first.key is not None
    account, _ = first.key
    document = json.loads(first.payload)
    document["quantity"] = quantity
    period = first.period
    if at is not None:
        document["timestamp"] = at.isoformat()
        period = period_of(account, at)
    return Sent(
        json.dumps(document).encode(),
        None,
        first.key,
        period,
        first.meter,
        Decimal(quantity),
        first.region,
    )


# --- a seeded workload for the integration tests ----------------------------------------------


def _instant(rng: random.Random, account: str) -> datetime:
    span = int((RUN_CLOCK - START).total_seconds())
    while True:
        at = START + timedelta(seconds=rng.randint(0, span), microseconds=rng.randint(0, 999999))
        if subscribed(account, at):
            return at


def _valid(rng: random.Random, event_id: str, account: str, at: datetime) -> Sent:
    meter = rng.choice(list(AGGREGATIONS))
    quantity: int | str
    if rng.random() < 0.5:
        quantity = rng.randint(0, 5000)
    else:
        quantity = f"{rng.randint(0, 10**6)}.{rng.randint(0, 999999):06d}"
    region = rng.choice(REGIONS) if rng.random() < 0.6 else None
    return valid(event_id, account, at, meter, quantity, region)


def chaos_workload(rng: random.Random, count: int) -> list[Sent]:
    """Valid events over three periods (acct-3 busy), producer resends (some in another
    period), bad records of several reasons, and corrected resends of some bad ones."""
    accounts = list(SUBSCRIPTIONS)
    weights = [10, 8, 45, 15, 12, 10]
    sent: list[Sent] = []
    fresh: list[Sent] = []
    fixable: list[tuple[str, str]] = []  # (account, event_id) first sent with a bad meter
    for n in range(count):
        roll = rng.random()
        if roll < 0.06 and fresh:  # a producer resend: same id, new sequence number
            first = rng.choice(fresh)
            assert first.key is not None
            quantity = str(rng.randint(0, 10**6))
            # sometimes a timestamp in another period
            at = _instant(rng, first.key[0]) if rng.random() < 0.4 else None
            sent.append(resend(first, quantity, at))
            continue
        if roll < 0.075 and fixable:  # a corrected resend of a rejected record: rated
            account, event_id = fixable.pop(rng.randrange(len(fixable)))
            fixed = _valid(rng, event_id, account, _instant(rng, account))
            sent.append(fixed)
            fresh.append(fixed)
            continue
        if roll < 0.10:
            sent.append(_bad(rng, n, fixable))
            continue
        account = rng.choices(accounts, weights)[0]
        event = _valid(rng, f"evt-{n}", account, _instant(rng, account))
        sent.append(event)
        fresh.append(event)
    return sent


def _bad(rng: random.Random, n: int, fixable: list[tuple[str, str]]) -> Sent:
    account = rng.choice(["acct-1", "acct-3", "acct-4", "acct-5"])
    at = _instant(rng, account).isoformat()
    kind = rng.choice(
        [
            "MALFORMED_JSON",
            "SCHEMA_INVALID",
            "UNKNOWN_ACCOUNT",
            "UNKNOWN_METER",
            "FUTURE_TIMESTAMP",
            "NOT_SUBSCRIBED",
            "TOO_LARGE",
        ]
    )
    event_id = f"bad-{n}"
    if kind == "MALFORMED_JSON":
        return Sent(f'{{"event_id": "{event_id}", "quantity": '.encode(), kind)
    if kind == "SCHEMA_INVALID":
        document = payload(event_id, account, quantity="-1", at=at)
    elif kind == "UNKNOWN_ACCOUNT":
        document = payload(event_id, "acct-404", at=at)
    elif kind == "UNKNOWN_METER":
        document = payload(event_id, account, meter="teleports", at=at)
        fixable.append((account, event_id))
    elif kind == "FUTURE_TIMESTAMP":
        ahead = timedelta(minutes=rng.randint(6, 3 * 24 * 60))
        document = payload(event_id, account, at=(RUN_CLOCK + ahead).isoformat())
    elif kind == "NOT_SUBSCRIBED":  # acct-2 joined on 16 November
        document = payload(event_id, "acct-2", at="2026-11-10T12:00:00-05:00")
    else:
        document = payload(event_id, account, at=at, dimensions={"pad": "x" * 200})
        document["padding"] = "y" * 17_000
    return Sent(json.dumps(document).encode(), kind)


# --- the oracle ---------------------------------------------------------------------------------


@dataclass
class Oracle:
    """The expected outcome of every record and the expected aggregates."""

    outcomes: list[str]  # rated | duplicate | rejected, by position
    reasons: dict[int, str]  # position -> rejection reason
    aggregates: dict[tuple[str, str, str], tuple[Decimal, int]]  # (account, period, meter)
    # (account, period, meter, charge description) -> quantity, for filtered charges that
    # some event passed
    shares: dict[tuple[str, str, str, str], Decimal] = field(default_factory=dict)


def aggregate(meter: str, values: Sequence[Decimal]) -> Decimal:
    aggregation = AGGREGATIONS[meter]
    if aggregation == "sum":
        return sum(values, Decimal(0))
    if aggregation == "max":
        return max(values)
    return Decimal(len(values))


def oracle(sent: Sequence[Sent], closed: Collection[tuple[str, str]] = ()) -> Oracle:
    """`closed` holds the (account, period) pairs already invoiced."""
    seen: set[tuple[str, str]] = set()
    outcomes: list[str] = []
    reasons: dict[int, str] = {}
    quantities: dict[tuple[str, str, str], list[Decimal]] = {}
    shares: dict[tuple[str, str, str, str], list[Decimal]] = {}
    for position, item in enumerate(sent):
        reason = item.reason
        if reason is None and item.key is not None and (item.key[0], item.period) in closed:
            reason = "PERIOD_CLOSED"  # checked before duplicates: a rejection claims no id
        if reason is not None:
            outcomes.append("rejected")
            reasons[position] = reason
            continue
        assert item.key is not None
        if item.key in seen:
            outcomes.append("duplicate")
            continue
        seen.add(item.key)
        outcomes.append("rated")
        account = item.key[0]
        quantities.setdefault((account, item.period, item.meter), []).append(item.quantity)
        for (meter, charge), regions in FILTERED_CHARGES.get(account, {}).items():
            if meter == item.meter and item.region in regions:
                key = (account, item.period, meter, charge)
                shares.setdefault(key, []).append(item.quantity)
    return Oracle(
        outcomes,
        reasons,
        {key: (aggregate(key[2], values), len(values)) for key, values in quantities.items()},
        {key: aggregate(key[2], values) for key, values in shares.items()},
    )


def by_hand(
    outcomes: Sequence[str],
    aggregates: dict[tuple[str, str, str], tuple[Decimal, int]],
    shares: dict[tuple[str, str, str, str], Decimal] | None = None,
) -> Oracle:
    """An Oracle written out by hand: each record's outcome is "rated", "duplicate" or the
    reason it is rejected with."""
    return Oracle(
        [o if o in ("rated", "duplicate") else "rejected" for o in outcomes],
        {p: o for p, o in enumerate(outcomes) if o not in ("rated", "duplicate")},
        aggregates,
        shares or {},
    )
