"""Synthetic usage for the benchmarks: one shard's records, as products would send them."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.core.catalog import Accounts, Catalog, parse_accounts, parse_catalog

METERS = ["api_requests", "storage_gb_hours", "seats", "exports", "compute_ms"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2"]
# Every event falls in November 2026; the rater's clock is after it.
PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def catalog() -> Catalog:
    return parse_catalog(
        {
            "meters": [
                {"name": "api_requests", "unit": "request", "aggregation": "sum"},
                {"name": "storage_gb_hours", "unit": "GB-hour", "aggregation": "sum"},
                {"name": "seats", "unit": "seat", "aggregation": "max"},
                {"name": "exports", "unit": "export", "aggregation": "count"},
                {"name": "compute_ms", "unit": "ms", "aggregation": "sum"},
            ],
            "plans": [
                {
                    "id": "pro",
                    "name": "Pro",
                    "currency": "USD",
                    "fixed_fee": "49.00",
                    "charges": [
                        {
                            "meter": "api_requests",
                            "model": "graduated",
                            "tiers": [
                                {"up_to": 1000000, "unit_price": "0"},
                                {"up_to": None, "unit_price": "0.000002", "flat_fee": "5.00"},
                            ],
                        },
                        {
                            "meter": "storage_gb_hours",
                            "model": "per_unit",
                            "unit_price": "0.00012",
                            "filters": {"region": ["eu-west-1", "eu-central-1"]},
                        },
                        {
                            "meter": "storage_gb_hours",
                            "model": "per_unit",
                            "unit_price": "0.00010",
                            "filters": {"region": ["us-east-1", "us-west-2"]},
                        },
                        {"meter": "seats", "model": "per_unit", "unit_price": "12.00"},
                        {
                            "meter": "exports",
                            "model": "package",
                            "package_size": 1000,
                            "package_price": "0.50",
                        },
                        {"meter": "compute_ms", "model": "per_unit", "unit_price": "0.0000001"},
                    ],
                }
            ],
        }
    )


def account_id(n: int) -> str:
    return f"acct-{n:06d}"


def accounts(count: int, catalog: Catalog) -> Accounts:
    zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"]
    return parse_accounts(
        {
            "accounts": [
                {
                    "id": account_id(n),
                    "name": f"Customer {n}",
                    "email": f"billing{n}@example.com",
                    "plan": "pro",
                    "timezone": zones[n % len(zones)],
                }
                for n in range(count)
            ]
        },
        catalog,
    )


def zipf_weights(count: int, s: float) -> list[float]:
    return [1 / (rank**s) for rank in range(1, count + 1)]


def events(rng: random.Random, draw_account: Any, count: int, first_id: int = 0) -> Iterator[bytes]:
    """`count` JSON records; `draw_account()` picks each one's account."""
    for n in range(first_id, first_id + count):
        meter = rng.choice(METERS)
        event: dict[str, Any] = {
            "event_id": f"evt-{n:010d}",
            "account_id": draw_account(),
            "meter": meter,
            "quantity": rng.randint(1, 5000),
            "timestamp": (PERIOD_START + timedelta(days=3, seconds=n % 1_000_000))
            .isoformat()
            .replace("+00:00", "Z"),
        }
        if meter == "storage_gb_hours":
            event["dimensions"] = {"region": rng.choice(REGIONS)}
        yield json.dumps(event, separators=(",", ":")).encode()


def skewed(rng: random.Random, count: int, accounts: int = 1000) -> list[bytes]:
    population = [account_id(n) for n in range(accounts)]
    weights = zipf_weights(accounts, 1.2)
    return list(events(rng, lambda: rng.choices(population, weights)[0], count))


def single_account(rng: random.Random, count: int) -> list[bytes]:
    return list(events(rng, lambda: account_id(0), count))


def uniform_distinct(rng: random.Random, count: int) -> list[bytes]:
    """Every event from a different account."""
    ids = iter(range(count))
    return list(events(rng, lambda: account_id(next(ids)), count))


# The unique_b1000 workload: one unique_count meter, each account's users drawn from its
# own 10,000 distinct values in the month.
UNIQUE_VALUES = 10_000


def unique_catalog() -> Catalog:
    return parse_catalog(
        {
            "meters": [
                {
                    "name": "active_users",
                    "unit": "user",
                    "aggregation": "unique_count",
                    "field": "user_id",
                }
            ],
            "plans": [
                {
                    "id": "pro",
                    "name": "Pro",
                    "currency": "USD",
                    "charges": [
                        {
                            "meter": "active_users",
                            "model": "graduated",
                            "tiers": [
                                {"up_to": 100, "unit_price": "0"},
                                {"up_to": None, "unit_price": "0.50"},
                            ],
                        }
                    ],
                }
            ],
        }
    )


def unique_users(rng: random.Random, count: int, accounts: int = 1000) -> list[bytes]:
    """`count` events of active users, accounts Zipf 1.2, each event's user one of its
    account's UNIQUE_VALUES, uniformly."""
    population = [account_id(n) for n in range(accounts)]
    weights = zipf_weights(accounts, 1.2)
    records = []
    for n in range(count):
        event = {
            "event_id": f"usr-{n:010d}",
            "account_id": rng.choices(population, weights)[0],
            "meter": "active_users",
            "quantity": 1,
            "timestamp": (PERIOD_START + timedelta(days=3, seconds=n % 1_000_000))
            .isoformat()
            .replace("+00:00", "Z"),
            "dimensions": {"user_id": f"user-{rng.randrange(UNIQUE_VALUES):05d}"},
        }
        records.append(json.dumps(event, separators=(",", ":")).encode())
    return records
