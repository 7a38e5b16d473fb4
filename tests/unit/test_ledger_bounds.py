"""The ledger item's size budget, at the catalog's limits: whatever an account sends, no
ledger write approaches DynamoDB's 400 KB (docs/table-design.md, "Item sizes")."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from bench.rater import StaticConfig
from billing.core.catalog import (
    CHARGES_PER_PLAN_MAX,
    FILTER_KEY_MAX,
    METERS_MAX,
    Accounts,
    Catalog,
    CatalogError,
    parse_accounts,
    parse_catalog,
)
from billing.rating.service import RatingService
from billing.store.capacity import item_size
from billing.store.ledger_store import LedgerStore
from billing.store.memory_dynamodb import MemoryDynamoDB
from tests.integration.conftest import NOW
from tests.support.kinesis import shard

DYNAMODB_ITEM_MAX = 400 * 1024
# The budget docs/table-design.md derives for the ledger item at the catalog's limits.
LEDGER_BUDGET = 300 * 1024


def meter_name(m: int) -> str:
    return f"m{m:03d}".ljust(64, "x")  # the longest meter name there can be


def widest_catalog(aggregation: str = "sum") -> dict[str, Any]:
    """200 meters with 64-character names; a plan with 100 charges, each on its own meter
    with a filter of 256 characters written out (`d=` and one 254-character value)."""
    meters = [{"name": meter_name(m), "unit": "u", "aggregation": aggregation} for m in range(200)]
    charges = [
        {
            "meter": meter_name(c),
            "model": "per_unit",
            "unit_price": "0.000001",
            "filters": {"d": [f"{c:03d}".ljust(254, "v")]},
        }
        for c in range(100)
    ]
    plan = {"id": "wide", "name": "Wide", "currency": "USD", "charges": charges}
    return {"meters": meters, "plans": [plan]}


class SizeRecordingClient(MemoryDynamoDB):
    """Remembers the largest ledger item written."""

    largest = 0

    def put_item(self, **request: Any) -> dict[str, Any]:
        if request["Item"]["sk"]["S"] == "LEDGER":
            self.largest = max(self.largest, item_size(request["Item"]))
        return super().put_item(**request)


def test_the_widest_catalog_is_accepted_and_one_more_of_anything_is_refused() -> None:
    document = widest_catalog()
    parse_catalog(document)
    assert (METERS_MAX, CHARGES_PER_PLAN_MAX, FILTER_KEY_MAX) == (200, 100, 256)
    too_many_meters = {
        **document,
        "meters": [*document["meters"], {**document["meters"][0], "name": "extra"}],
    }
    with pytest.raises(CatalogError, match="meters"):
        parse_catalog(too_many_meters)
    plan = document["plans"][0]
    extra_charge = {"meter": meter_name(150), "model": "per_unit", "unit_price": "1"}
    with pytest.raises(CatalogError, match="charges"):
        parse_catalog(
            {**document, "plans": [{**plan, "charges": [*plan["charges"], extra_charge]}]}
        )
    wide_filter = {**plan["charges"][0], "filters": {"d": ["x" * 255]}}  # 257 written out
    with pytest.raises(CatalogError, match="at most 256"):
        parse_catalog({**document, "plans": [{**plan, "charges": [wide_filter]}]})


@pytest.mark.parametrize("aggregation", ["sum", "latest"])
def test_ledger_writes_stay_within_budget_at_the_catalogs_limits(aggregation: str) -> None:
    # GIVEN the widest catalog (its meters summed, or `latest`, whose aggregates carry a
    # stream order), and an account that uses every meter and every filtered charge in
    # each of 30 periods with the largest quantities there are, on records with the
    # longest sequence numbers (129 digits), then sends 300 records for a meter that does
    # not exist (100 rejections a write at the most)
    catalog = parse_catalog(widest_catalog(aggregation))
    accounts = parse_accounts(
        {
            "accounts": [
                {
                    "id": "a" * 64,
                    "name": "W",
                    "email": "w@example.com",
                    "plan": "wide",
                    "timezone": "UTC",
                }
            ]
        },
        catalog,
    )
    quantity = "999999999999999.999999999999"
    events = [
        {
            "event_id": f"e{p}-{m}",
            "account_id": "a" * 64,
            "meter": meter_name(m),
            "quantity": quantity,
            "timestamp": f"{2000 + p // 12}-{p % 12 + 1:02d}-10T10:00:00Z",
            "dimensions": {"d": f"{m:03d}".ljust(254, "v")} if m < 100 else {},
        }
        for p in range(30)
        for m in range(200)
    ]
    rejected = [{**events[0], "event_id": f"r{i}", "meter": "n" * 64} for i in range(300)]

    # WHEN they are rated in batches of 2,000
    counts, _, largest = rated_in_batches(catalog, accounts, events + rejected)

    # THEN every record was handled, and no ledger write came near the limit
    assert counts == {"rated": 6000, "rejected": 300}
    assert 0 < largest <= LEDGER_BUDGET < DYNAMODB_ITEM_MAX, largest


def rated_in_batches(
    catalog: Catalog, accounts: Accounts, events: list[dict[str, Any]]
) -> tuple[Counter[str], int, int]:
    """The events rated by the rating service in batches of 2,000, on records with the
    longest sequence numbers (129 digits): their outcomes, how many were unpriced, and the
    largest ledger item written."""
    records = shard([json.dumps(e).encode() for e in events], first=10**128)
    client = SizeRecordingClient()
    service = RatingService(
        StaticConfig(catalog, accounts), LedgerStore(client, "ledger"), KeepAll(), clock=lambda: NOW
    )
    counts: Counter[str] = Counter()
    unpriced = 0
    for start in range(0, len(records), 2000):
        report = service.process(records[start : start + 2000])
        assert report.failed == []
        counts.update(report.counts())
        unpriced += report.unpriced()
    return counts, unpriced, client.largest


class KeepAll:
    def __init__(self) -> None:
        self.kept: set[tuple[str, str]] = set()

    def keep(self, record: Any, *_: Any) -> bool:
        self.kept.add((record.shard_id, record.sequence_number))
        return True

    def holds(self, shard_id: str, sequence_number: str) -> bool:
        return (shard_id, sequence_number) in self.kept

    def stage(self, *_: Any) -> None:
        pass  # kept at once below, once its write has landed

    def promote(self, *_: Any) -> bool:
        return False


@pytest.mark.parametrize("aggregation", ["sum", "latest"])
def test_unpriced_usage_at_its_largest_keeps_ledger_writes_within_budget(aggregation: str) -> None:
    # GIVEN the widest catalog, and an account that uses every meter and every filtered
    # charge in each of 30 periods as above, and also sends, in each period, events that
    # pass no filter on each of the 100 filtered meters (each then keeps an unpriced
    # aggregate): 11 distinct values of 64 characters on the first 10 meters (more values
    # than a meter keeps, on more meters than a period keeps values for), in characters
    # JSON escapes (a quote, non-ASCII) or not, and one value on the others
    catalog = parse_catalog(widest_catalog(aggregation))
    account = {"id": "a" * 64, "name": "W", "email": "w@example.com", "plan": "wide"}
    accounts = parse_accounts({"accounts": [{**account, "timezone": "UTC"}]}, catalog)
    quantity = "999999999999999.999999999999"

    def usage(event_id: str, p: int, m: int, value: str | None) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "account_id": "a" * 64,
            "meter": meter_name(m),
            "quantity": quantity,
            "timestamp": f"{2000 + p // 12}-{p % 12 + 1:02d}-10T10:00:00Z",
            "dimensions": {"d": value} if value is not None else {},
        }

    def unpriced_values(m: int) -> list[str]:
        kinds = ["\"é'", "z", "\u00e9"]
        return [(f"{m:03d}{v:02d}" + kinds[v % 3] * 64)[:256] for v in range(11 if m < 10 else 1)]

    events = [
        usage(f"e{p}-{m}", p, m, f"{m:03d}".ljust(254, "v") if m < 100 else None)
        for p in range(30)
        for m in range(200)
    ] + [
        usage(f"u{p}-{m}-{v}", p, m, value)
        for p in range(30)
        for m in range(100)
        for v, value in enumerate(unpriced_values(m))
    ]

    # WHEN they are rated in batches of 2,000
    counts, unpriced, largest = rated_in_batches(catalog, accounts, events)

    # THEN every record was rated, the unpriced ones counted (in each period 10 × 11 + 90
    # that pass no filter, and the 100 of the meters no charge prices), and no ledger
    # write came near the limit
    assert (counts, unpriced) == ({"rated": 6000 + 30 * 200}, 30 * (200 + 100))
    assert 0 < largest <= LEDGER_BUDGET < DYNAMODB_ITEM_MAX, largest
