"""The demo's workload: a realistic month of usage for a few hundred customers.

Customers are spread over the example plans, time zones and currencies; their usage is
skewed (a few large customers, a long tail); about 2% of events are resent by their
producer and about 1% are bad in one of the ways the contract names. Contracts are written
as real ones are (CONTRACT.md 2a): half the Team customers upgrade to Pro in the middle of
the month, one customer in five has a launch discount and one in seven prepaid credits.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from billing.core.catalog import Accounts, Catalog, load_catalog, parse_accounts
from billing.core.periods import Period

EXAMPLES: Final = Path(__file__).resolve().parents[3] / "examples"
_ZONES: Final = {
    "pro": ["America/New_York", "Europe/Paris", "Europe/London", "America/Los_Angeles"],
    "team": ["America/Chicago", "America/New_York", "Europe/Dublin"],
    "starter-eur": ["Europe/Berlin", "Europe/Madrid", "Europe/Rome"],
    "business-jpy": ["Asia/Tokyo"],
    "gulf-kwd": ["Asia/Kuwait"],
}
_NAMES: Final = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne",
    "Soylent", "Wonka", "Gringotts", "Oscorp", "Vandelay", "Monarch", "Aperture", "Müller",
    "Société Océane", "北斗", "Nakatomi",
]  # fmt: skip
_REGIONS: Final = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1"]


def demo_catalog() -> Catalog:
    return load_catalog(EXAMPLES / "catalog.yaml")


# Prepaid credit grants in each plan's currency, at its minor unit's digits.
_GRANTS: Final = {
    "pro": "100.00",
    "team": "50.00",
    "starter-eur": "80.00",
    "business-jpy": "10000",
    "gulf-kwd": "30.000",
}


def demo_accounts(count: int, catalog: Catalog, rng: random.Random, period: Period) -> Accounts:
    """`count` customers billed for `period`, some with an upgrade in the middle of it, a
    launch discount or prepaid credits."""
    plans = list(_ZONES)
    weights = [6, 3, 3, 1, 1]
    accounts = []
    for n in range(count):
        plan = rng.choices(plans, weights)[0]
        account: dict[str, Any] = {
            "id": f"cust-{n:04d}",
            "name": f"{rng.choice(_NAMES)} {n}",
            "email": f"billing+{n}@customer.example",
            "plan": plan,
            "timezone": rng.choice(_ZONES[plan]),
            "tax_rate": rng.choice(["0", "0.20", "0.19", "0.10"]),
        }
        if plan == "team" and n % 2 == 0:
            upgrade = date(period.year, period.month, 15).isoformat()
            account["changes"] = [{"effective": upgrade, "plan": "pro"}]
        if n % 5 == 1:
            account["discounts"] = [
                {"id": "launch", "percent": "10", "from": str(period), "periods": 3}
            ]
        if n % 7 == 3:
            granted = date(period.year, period.month, 1).isoformat()
            account["credits"] = [{"id": "prepay", "amount": _GRANTS[plan], "granted": granted}]
        accounts.append(account)
    return parse_accounts({"accounts": accounts}, catalog)


def demo_events(accounts: Accounts, period: Period, count: int, rng: random.Random) -> list[bytes]:
    """`count` records in arrival order over the period (in UTC, well inside every zone's
    month), with duplicates and bad records mixed in."""
    ids = [account.id for account in accounts.accounts]
    weights = [1 / (rank**1.1) for rank in range(1, len(ids) + 1)]
    start = datetime(period.year, period.month, 2, tzinfo=UTC)
    span = (period.days - 3) * 86_400
    sent: list[dict[str, Any]] = []
    records: list[bytes] = []
    for n in range(count):
        at = start + timedelta(seconds=span * n // count)
        roll = rng.random()
        if roll < 0.02 and sent:  # a producer resending an event it already sent
            records.append(json.dumps({**rng.choice(sent[-500:]), "quantity": 1}).encode())
            continue
        if roll < 0.03:
            records.append(_bad_record(n, ids, at, rng))
            continue
        meter = rng.choice(["api_requests", "api_requests", "storage_gb_hours", "seats", "exports"])
        event: dict[str, Any] = {
            "event_id": f"evt-{n:08d}",
            "account_id": rng.choices(ids, weights)[0],
            "meter": meter,
            "quantity": _quantity(meter, rng),
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        }
        if meter == "storage_gb_hours":
            event["dimensions"] = {"region": rng.choice(_REGIONS)}
        sent.append(event)
        records.append(json.dumps(event, separators=(",", ":")).encode())
    return records


def _quantity(meter: str, rng: random.Random) -> Any:
    if meter == "api_requests":
        return rng.randint(100, 20_000)
    if meter == "storage_gb_hours":
        return f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}"
    if meter == "seats":
        return rng.randint(1, 60)
    return 1


def _bad_record(n: int, ids: list[str], at: datetime, rng: random.Random) -> bytes:
    base = {
        "event_id": f"bad-{n}",
        "account_id": rng.choice(ids),
        "meter": "api_requests",
        "quantity": 1,
        "timestamp": at.isoformat(),
    }
    kind = rng.randrange(5)
    if kind == 0:
        return b'{"event_id": "bad-' + str(n).encode() + b'", "quantity": '
    if kind == 1:
        return json.dumps({**base, "account_id": "cust-unknown"}).encode()
    if kind == 2:
        return json.dumps({**base, "meter": "gpu_hours"}).encode()
    if kind == 3:
        return json.dumps({**base, "quantity": "-5"}).encode()
    return json.dumps({**base, "timestamp": "2099-01-01T00:00:00Z"}).encode()
