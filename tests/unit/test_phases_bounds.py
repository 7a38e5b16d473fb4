"""The ledger's size budget holds for accounts that change plan: the phases one period
holds must fit together in what one period may store (docs/table-design.md, "Phases")."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from bench.rater import StaticConfig
from billing.core.catalog import CatalogError, parse_accounts, parse_catalog
from billing.core.phases import PERIOD_BYTES_MAX
from billing.core.usage import period_bytes_bound
from billing.rating.service import RatingService
from billing.store.ledger_store import LedgerStore
from tests.integration.conftest import NOW
from tests.support.kinesis import shard
from tests.unit.test_ledger_bounds import (
    DYNAMODB_ITEM_MAX,
    LEDGER_BUDGET,
    KeepAll,
    SizeRecordingClient,
    meter_name,
    widest_catalog,
)

pytestmark = pytest.mark.unit


def two_plans(meters: int, filtered: int) -> dict[str, Any]:
    """The widest catalog cut to `meters` meters and `filtered` filtered charges, with a
    second plan like the first (another price), so that an account can move between them."""
    document = widest_catalog()
    document["meters"] = document["meters"][:meters]
    plan = document["plans"][0]
    plan["charges"] = plan["charges"][:filtered]
    other = {**plan, "id": "wide-2", "name": "Wide 2"}
    other["charges"] = [{**charge, "unit_price": "0.000002"} for charge in plan["charges"]]
    document["plans"].append(other)
    return document


def account(changes: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": "a" * 64,
        "name": "W",
        "email": "w@example.com",
        "plan": "wide",
        "timezone": "UTC",
        "changes": [{"effective": day, "plan": plan} for day, plan in changes],
    }


def test_one_period_may_store_what_the_widest_catalog_needs() -> None:
    catalog = parse_catalog(widest_catalog())
    # 200 × (64 + 2 × 72) + 100 × (256 + 72) = 41,600 + 32,800
    assert period_bytes_bound(catalog.plans[0], catalog.meters) == PERIOD_BYTES_MAX == 74_400


def test_changes_that_would_put_too_much_in_one_period_are_refused_naming_the_change() -> None:
    catalog = parse_catalog(two_plans(200, 100))
    # changing on the first of a month puts no two phases in one period: taken
    parse_accounts({"accounts": [account([("2026-11-01", "wide-2")])]}, catalog)
    with pytest.raises(CatalogError) as refused:
        parse_accounts(
            {"accounts": [account([("2026-11-01", "wide-2"), ("2026-12-15", "wide")])]}, catalog
        )
    assert refused.value.field == "changes[1].effective"
    assert "space the changes further apart" in refused.value.reason
    # a small catalog takes a change every few days
    small = parse_catalog(two_plans(5, 2))
    days = [
        (f"2026-11-{day:02d}", "wide-2" if n % 2 == 0 else "wide")
        for n, day in enumerate(range(2, 31, 2))
    ]
    parse_accounts({"accounts": [account(days)]}, small)


def test_ledger_writes_stay_within_budget_with_two_phases_in_every_period() -> None:
    # GIVEN 90 meters and 45 filtered charges (33,480 bytes a phase, 68,445 for two with
    # their marks: under 74,400), and an account changing plan on the 15th of each of 30
    # months, that uses every meter and filtered charge in both phases of every period
    # with the largest quantities there are
    catalog = parse_catalog(two_plans(90, 45))
    months = [(2000 + p // 12, p % 12 + 1) for p in range(30)]
    changes = [
        (f"{y}-{m:02d}-15", "wide-2" if n % 2 == 0 else "wide") for n, (y, m) in enumerate(months)
    ]
    accounts = parse_accounts({"accounts": [account(changes)]}, catalog)
    events = [
        {
            "event_id": f"e{y}-{m}-{day}-{k}",
            "account_id": "a" * 64,
            "meter": meter_name(k),
            "quantity": "999999999999999.999999999999",
            "timestamp": f"{y}-{m:02d}-{day}T10:00:00Z",
            "dimensions": {"d": f"{k:03d}".ljust(254, "v")} if k < 45 else {},
        }
        for y, m in months
        for day in ("10", "20")
        for k in range(90)
    ]
    client = SizeRecordingClient()
    service = RatingService(
        StaticConfig(catalog, accounts), LedgerStore(client, "ledger"), KeepAll(), clock=lambda: NOW
    )

    # WHEN they are rated in batches of 2,000
    counts: Counter[str] = Counter()
    records = shard([json.dumps(e).encode() for e in events])
    for start in range(0, len(records), 2000):
        report = service.process(records[start : start + 2000])
        assert report.failed == []
        counts.update(report.counts())

    # THEN every record was rated, and no ledger write came near the limit
    assert counts == {"rated": 5400}
    assert 0 < client.largest <= LEDGER_BUDGET < DYNAMODB_ITEM_MAX
