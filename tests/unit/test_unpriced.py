"""Unpriced usage as the rater keeps it (billing.core.unpriced): what no filtered charge of
a meter took, with its values' counts, bounded; the same bytes for any delivery of the same
records (any batch boundaries, writes that do not land, whole ranges delivered again), the
same as the local preview's, and as an oracle written from the rules by hand."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.catalog import Accounts, Catalog, parse_accounts, parse_catalog
from billing.core.unpriced import (
    METERS_WITH_VALUES,
    VALUE_CHARS,
    VALUES_BYTES_MAX,
    VALUES_PER_METER,
    Unpriced,
    capped_unpriced,
    merged_values,
    unpriced_dimension,
    value_label,
)
from billing.core.usage import Aggregate, MeterUsage, usage_bytes
from billing.rating.ledger import AccountLedger
from billing.store.ledger_items import ledger_from_item, ledger_item
from billing_cli.preview import rate_records
from tests.support.kinesis import shard
from tests.support.rater_memory import MemoryRater, deliver_any_way

D = Decimal
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
# Sum meters enough that more than METERS_WITH_VALUES of them can have unpriced values.
SUMS = [f"m{n}" for n in range(METERS_WITH_VALUES + 2)]


def eu_only(meter: str) -> dict[str, Any]:
    return {"meter": meter, "model": "per_unit", "unit_price": "1", "filters": {"region": ["eu"]}}


CATALOG: Catalog = parse_catalog(
    {
        "meters": [
            *({"name": name, "unit": "unit", "aggregation": "sum"} for name in SUMS),
            {"name": "peak", "unit": "unit", "aggregation": "max"},
            {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user"},
            {"name": "seats", "unit": "seat", "aggregation": "latest"},
            {"name": "extra", "unit": "unit", "aggregation": "sum"},  # no charge: not stored
            {"name": "open", "unit": "unit", "aggregation": "sum"},  # a charge takes it all
        ],
        "plans": [
            {
                "id": "team",
                "name": "Team",
                "currency": "USD",
                "charges": [
                    *(eu_only(name) for name in [*SUMS, "peak", "users", "seats"]),
                    {"meter": "open", "model": "per_unit", "unit_price": "1"},
                    eu_only("open"),
                ],
            }
        ],
    }
)
ACCOUNTS: Accounts = parse_accounts(
    {
        "accounts": [
            {
                "id": "acct-1",
                "name": "A",
                "email": "a@example.com",
                "plan": "team",
                "timezone": "UTC",
            }
        ]
    },
    CATALOG,
)
# More values than a meter keeps; one of them longer than VALUE_CHARS.
REGIONS = ["eu", *(f"r{n:02d}" for n in range(VALUES_PER_METER + 3)), "x" * (VALUE_CHARS + 6)]
METERS = [*SUMS, "peak", "users", "seats", "extra", "open"]


def event(n: int, meter: str, quantity: int, hour: int, **dimensions: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": f"id{n}",
        "account_id": "acct-1",
        "meter": meter,
        "quantity": quantity,
        "timestamp": f"2026-11-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z",
    }
    if dimensions:
        document["dimensions"] = dimensions
    return document


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events of every kind of meter, in regions the plan prices (eu) and not, without a
    region, with users seen again, and producer resends of earlier ids."""
    events: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 45))):
        if events and draw(st.integers(0, 6)) == 0:
            events.append({**draw(st.sampled_from(events)), "quantity": draw(st.integers(0, 9))})
            continue
        dimensions = {}
        if draw(st.integers(0, 4)) > 0:
            dimensions["region"] = draw(st.sampled_from(REGIONS))
        meter = draw(st.sampled_from(METERS))
        if meter == "users" and draw(st.integers(0, 4)) > 0:
            dimensions["user"] = draw(st.sampled_from(["u1", "u2", "u3"]))
        quantity, hour = draw(st.integers(0, 9)), draw(st.integers(0, 71))
        events.append(event(n, meter, quantity, hour, **dimensions))
    return events


def stored_use(ledger: AccountLedger | None) -> str:
    """The ledger's `use` attribute exactly as the store writes it."""
    return ledger_item(ledger)["use"]["S"] if ledger else "{}"


def deliver_anyhow(events: list[dict[str, Any]], data: st.DataObject) -> MemoryRater:
    rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    deliver_any_way(rater, shard(events), data)
    assert rater.applied_twice == []
    return rater


def oracle(events: list[dict[str, Any]]) -> dict[str, tuple[D, int, dict[str, int]]]:
    """By hand from the rules: per sum meter the first event of each id that is not in eu,
    its quantities added, its events and its values (cut to VALUE_CHARS, "" for none)
    counted, the VALUES_PER_METER smallest values kept, for the METERS_WITH_VALUES
    smallest names with unpriced events."""
    first: dict[str, dict[str, Any]] = {}
    for document in events:
        first.setdefault(document["event_id"], document)
    found: dict[str, tuple[D, int, Counter[str]]] = {}
    for document in first.values():
        region = document.get("dimensions", {}).get("region")
        if document["meter"] in SUMS and region != "eu":
            quantity, count, values = found.get(document["meter"], (D(0), 0, Counter()))
            values[(region or "")[:VALUE_CHARS]] += 1
            found[document["meter"]] = (quantity + document["quantity"], count + 1, values)
    with_values = sorted(found)[:METERS_WITH_VALUES]
    return {
        meter: (
            quantity,
            count,
            {v: values[v] for v in sorted(values)[:VALUES_PER_METER]}
            if meter in with_values
            else {},
        )
        for meter, (quantity, count, values) in found.items()
    }


def unpriced(
    usage: Mapping[str, MeterUsage], meters: list[str]
) -> dict[str, tuple[D, int, dict[str, int]]]:
    return {
        m: (u.unpriced.total.quantity, u.unpriced.total.events, dict(u.unpriced.values))
        for m, u in usage.items()
        if m in meters and u.unpriced
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), data=st.data())
def test_any_delivery_stores_the_same_unpriced_usage_as_one_batch_and_the_preview(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    # GIVEN the records rated in one batch, and delivered any way Lambda might
    once = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    assert once.deliver(shard(events)) == []
    anyhow = deliver_anyhow(events, data)

    # THEN the ledgers store the same bytes
    assert stored_use(anyhow.ledgers.get("acct-1")) == stored_use(once.ledgers.get("acct-1"))
    usage = once.ledgers["acct-1"].usage.get("2026-11", {}) if "acct-1" in once.ledgers else {}
    # ... whose unpriced usage is the local preview's, meter by meter (the preview orders
    # `latest` events by their place in the file, not by sequence number)
    raw = [json.dumps(e).encode() for e in events]
    previewed = rate_records(raw, CATALOG, ACCOUNTS, NOW).ledger.for_account("acct-1", "2026-11")
    assert unpriced(usage, METERS) == unpriced(previewed, METERS)
    # ... and the oracle's for the sum meters; a meter without a charge, or with one that
    # takes every event, keeps none
    assert unpriced(usage, SUMS) == oracle(events)
    assert all(usage[m].unpriced is None for m in ("extra", "open") if m in usage)


def test_each_kind_of_meter_keeps_its_unpriced_aggregate_by_its_aggregation() -> None:
    events = [
        event(1, "peak", 7, 1, region="us"),
        event(2, "peak", 9, 2, region="eu"),  # priced: not in the unpriced max
        event(3, "peak", 4, 3),
        event(4, "users", 1, 1, region="us", user="u1"),
        event(5, "users", 1, 2, user="u1"),  # u1 again, unpriced again: counts no more
        event(6, "users", 1, 3, region="us", user="u2"),
        event(7, "users", 1, 4, region="eu", user="u3"),  # priced
        event(8, "seats", 5, 5, region="us"),
        event(9, "seats", 6, 6),  # the latest unpriced one
        event(10, "seats", 8, 7, region="eu"),  # priced, later still
    ]
    rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    assert rater.deliver(shard(events)) == []
    usage = rater.ledgers["acct-1"].usage["2026-11"]

    # max: 7 (of 7 and 4); unique_count: u1 and u2 = 2 values in 3 events; latest: 6
    assert usage["peak"].unpriced == Unpriced(Aggregate(D(7), 2), {"": 1, "us": 1})
    assert usage["users"].unpriced == Unpriced(Aggregate(D(2), 3), {"": 1, "us": 2})
    seats = usage["seats"].unpriced
    assert seats is not None
    assert (seats.total.quantity, seats.total.events, seats.values) == (D(6), 2, {"": 1, "us": 1})
    # the totals still count every event, and the eu shares what their charges price
    assert (usage["peak"].total.quantity, usage["users"].total.quantity) == (D(9), D(3))


def test_a_ledger_with_unpriced_usage_reads_back_as_written() -> None:
    rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    events = [event(1, "seats", 5, 5, region="us"), event(2, "m0", 3, 1, region="r01")]
    assert rater.deliver(shard(events)) == []
    ledger = rater.ledgers["acct-1"]

    assert ledger_from_item("acct-1", ledger_item(ledger)) == ledger
    stored = json.loads(stored_use(ledger))["2026-11"]
    assert stored["m0"]["u"] == [["3", 1], {"r01": 1}]
    assert stored["seats"]["u"][1] == {"us": 1}


def test_merging_in_any_grouping_keeps_the_same_values() -> None:
    # GIVEN three parts' counts by value, 12 values in all
    parts = [
        {f"v{n:02d}": 1 for n in range(0, 12, 3)},
        {f"v{n:02d}": 2 for n in range(1, 12, 3)},
        {f"v{n:02d}": 3 for n in range(2, 12, 3)} | {"v00": 5},
    ]
    a, b, c = (merged_values({}, part) for part in parts)

    # THEN (a + b) + c = a + (b + c) = (a + c) + b: the 10 smallest values, exact counts
    left = merged_values(merged_values(a, b), c)
    assert left == merged_values(a, merged_values(b, c)) == merged_values(merged_values(a, c), b)
    assert left == {"v00": 6, "v01": 2, "v02": 3} | {f"v{n:02d}": n % 3 + 1 for n in range(3, 10)}


def test_a_period_keeps_values_for_its_smallest_names_only() -> None:
    one = Unpriced(Aggregate(D(1), 1), {"r": 1})
    usage = {f"m{n}": MeterUsage("sum", unpriced=one) for n in range(METERS_WITH_VALUES + 1)}

    capped = capped_unpriced(usage)

    assert [name for name, u in capped.items() if u.unpriced and u.unpriced.values] == [
        f"m{n}" for n in range(METERS_WITH_VALUES)
    ]
    last = capped[f"m{METERS_WITH_VALUES}"].unpriced
    assert last == Unpriced(Aggregate(D(1), 1), {})  # its aggregate kept


def test_the_size_bound_covers_the_largest_unpriced_usage() -> None:
    # GIVEN a meter's unpriced usage at its largest: a 1e15 × events quantity with 12
    # decimals, VALUES_PER_METER values of VALUE_CHARS characters with counts of 10 digits
    values = {chr(ord("a") + n) * VALUE_CHARS: 9_999_999_999 for n in range(VALUES_PER_METER)}
    largest = Unpriced(Aggregate(D("999999999999999999999.999999999999"), 9_999_999_999), values)
    usage = MeterUsage("sum", unpriced=largest)
    without = MeterUsage("sum")
    stored = len(json.dumps({"u": [["999999999999999999999.999999999999", 9_999_999_999], values]}))

    # THEN usage_bytes counts at least what it stores, and every meter's values together
    # stay within VALUES_BYTES_MAX
    assert usage_bytes({"m": usage}) - usage_bytes({"m": without}) >= stored
    assert METERS_WITH_VALUES * (stored - 60) <= VALUES_BYTES_MAX


def test_the_dimension_is_the_first_filtered_one_of_a_meter_charged_only_with_filters() -> None:
    plan = CATALOG.plans_by_id["team"]

    assert unpriced_dimension(plan, "m0") == "region"
    assert unpriced_dimension(plan, "open") is None  # a charge without filters takes all
    assert unpriced_dimension(plan, "extra") is None  # no charge: the total is unpriced


def test_the_bounds_give_the_same_bytes_for_any_batch_boundaries() -> None:
    # GIVEN unpriced events on every sum meter (more than METERS_WITH_VALUES of them), m0's
    # in every region but eu (more than VALUES_PER_METER values), the larger values first
    m0 = [event(n, "m0", 1, n, region=r) for n, r in enumerate(reversed(REGIONS[1:]))]
    others = [event(100 + n, name, 2, n, region="r00") for n, name in enumerate(SUMS[1:])]
    records = shard(m0 + others)

    # WHEN they come in one batch, one by one, or in batches of 3
    stored = []
    for size in (len(records), 1, 3):
        rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
        for start in range(0, len(records), size):
            assert rater.deliver(records[start : start + size]) == []
        stored.append(stored_use(rater.ledgers["acct-1"]))

    # THEN the same bytes: m0 keeps its 10 smallest values (r00..r09; r10..r12 and the
    # long one are other values), the 8 smallest names keep values (m0..m7), m8 and m9
    # their aggregate only
    assert stored[0] == stored[1] == stored[2]
    usage = json.loads(stored[0])["2026-11"]
    assert usage["m0"]["u"] == [["14", 14], {f"r{n:02d}": 1 for n in range(10)}]
    assert [name for name in SUMS if usage[name]["u"][1]] == SUMS[:METERS_WITH_VALUES]
    assert usage["m9"]["u"] == [["2", 1], {}]


def test_a_value_is_kept_by_as_many_characters_as_fit_64_bytes_as_stored() -> None:
    assert value_label("ap-south-1") == "ap-south-1"
    assert value_label(None) == ""  # the events without the dimension
    assert value_label("x" * 300) == "x" * VALUE_CHARS
    # the ledger's JSON is ASCII: é is written \u00e9 (6 bytes), so 10 of them fit 64
    assert value_label("é" * 70) == "é" * 10
    assert value_label('"' * 70) == '"' * 32  # \" each
