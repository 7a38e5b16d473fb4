"""A meter's days (billing.core.usage): merged as the aggregation merges, one form for a day
of 0, stored and read back unchanged, and kept within the period's budget."""

from __future__ import annotations

from decimal import Decimal

from billing.core.usage import (
    DAYS_BYTES_MAX,
    Aggregate,
    MeterUsage,
    capped_days,
    days_of,
    merged_days,
    usage_bytes,
)
from billing.rating.ledger import AccountLedger, merged_usage
from billing.store.ledger_items import ledger_from_item, ledger_item

D = Decimal


def test_days_merge_as_their_aggregation_and_a_day_of_0_is_no_day() -> None:
    # GIVEN two batches' days of a sum, a max and a latest meter
    first = {1: Aggregate(D(3)), 2: Aggregate(D(5))}
    second = {2: Aggregate(D("1.5")), 4: Aggregate(D(7))}

    # THEN sums add, maxima keep the larger, latest keeps the later stream order
    assert merged_days("sum", first, second) == {
        1: Aggregate(D(3)),
        2: Aggregate(D("6.5")),
        4: Aggregate(D(7)),
    }
    assert merged_days("max", first, second)[2] == Aggregate(D(5))
    latest = merged_days(
        "latest", {6: Aggregate(D(0), 0, (10, 1))}, {6: Aggregate(D(9), 0, (10, 0))}
    )
    assert latest == {6: Aggregate(D(0), 0, (10, 1))}  # a latest 0 is a value: kept
    # ... and a day whose events add up to 0 (zero quantities, or values seen before) is
    # left out, so that a ledger read back is the ledger written
    assert days_of("sum", {3: [D(0), D("0.00")], 4: [D(2)]}) == {4: Aggregate(D(2))}
    assert merged_days("unique_count", {}, {5: Aggregate(D(0))}) == {}


def test_meter_usage_adds_an_event_to_its_day_and_merges_days() -> None:
    usage = MeterUsage("count").add(D(40), (), day=3).add(D(2), (), day=3)
    other = MeterUsage("count").add(D(1), (), day=4)

    merged = usage.merge(other)

    assert merged.days == {3: Aggregate(D(2)), 4: Aggregate(D(1))}  # counted, not summed
    assert merged.total == Aggregate(D(3), 3)


def test_days_not_kept_stay_not_kept() -> None:
    dropped = MeterUsage("sum", Aggregate(D(5), 1), days=None)
    kept = MeterUsage("sum").add(D(1), (), day=2)

    assert dropped.merge(kept).days is None
    assert kept.merge(dropped).days is None
    assert dropped.add(D(1), (), day=2).days is None


def test_days_are_stored_and_read_back_unchanged() -> None:
    # GIVEN a ledger with days of every form: whole and fractional quantities, a latest
    # day with its stream order and a day without an event, and days not kept
    usage = {
        "api": MeterUsage(
            "sum", Aggregate(D("12.5"), 3), days={2: Aggregate(D(12)), 5: Aggregate(D("0.50"))}
        ),
        "level": MeterUsage(
            "latest",
            Aggregate(D(4), 2, (99, 7)),
            days={1: Aggregate(D(0), 0, (50, 3)), 3: Aggregate(D(4), 0, (99, 7))},
        ),
        "old": MeterUsage("sum", Aggregate(D(1), 1)),  # rated before days were kept
        "wide": MeterUsage("sum", Aggregate(D(1), 1), days=None),
    }
    ledger = AccountLedger("acct-1", 1, "t", usage={"2026-11": usage})

    # WHEN it is written and read back
    item = ledger_item(ledger)
    again = ledger_from_item("acct-1", item)

    # THEN it is the same ledger, whole quantities written as JSON integers
    assert again == ledger
    assert '"d":[2,12,0,0,"0.50"]' in item["use"]["S"]
    assert '"d":[1,["0",50,3],null,["4",99,7]]' in item["use"]["S"]
    assert '"d":null' in item["use"]["S"]


def month(quantity: str) -> MeterUsage:
    return MeterUsage(
        "sum",
        Aggregate(D(quantity) * 30, 30),
        days={d: Aggregate(D(quantity)) for d in range(1, 31)},
    )


def test_a_period_s_days_are_kept_within_their_budget_by_name() -> None:
    # GIVEN a period of meters whose days take about 1,000 bytes each at the largest
    # quantities (29 digits), more than the budget holds together
    big = "999999999999999.999999999999"
    meters = {f"m{n:02d}": month(big) for n in range(12)}

    # WHEN the days are capped
    capped = capped_days(meters)

    # THEN the first meters by name keep theirs, within the budget; those past it keep
    # none (their totals are untouched)
    kept = [name for name, usage in capped.items() if usage.days is not None]
    assert kept == [f"m{n:02d}" for n in range(len(kept))]
    assert 0 < len(kept) < 12
    stored = sum((len(big) + 3) * 30 for _ in kept)
    assert stored <= DAYS_BYTES_MAX < stored + (len(big) + 3) * 30
    assert all(capped[name].total == meters[name].total for name in meters)
    # ... and a merge (every writer's) caps them alike
    assert merged_usage({}, meters) == dict(capped)


def test_a_period_of_usual_days_is_left_as_it_is() -> None:
    meters = {name: month("1234") for name in ("api", "storage", "seats", "exports", "cpu")}

    assert capped_days(meters) is meters
    assert usage_bytes(meters) < DAYS_BYTES_MAX
