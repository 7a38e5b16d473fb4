"""The daily view (billing.customer.daily_view): each aggregation's day and to-date figures,
the days listed, and when a meter's days do not account for its total."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.core.periods import Period
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.daily_view import daily_usage
from tests.support.customer_scenario import ACCOUNTS, CATALOG

D = Decimal
NOV = Period(2026, 11)
# 4 November, 12:00 UTC: in UTC the 4th; in Pacific/Kiritimati (UTC+14) the 5th.
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


def day(quantity: str, last: tuple[int, int] | None = None) -> Aggregate:
    return Aggregate(D(quantity), 0, last)


def view(account: str, usage: dict[str, MeterUsage], now: datetime = NOW) -> dict[str, Any]:
    found = daily_usage(
        ACCOUNTS.by_id[account], CATALOG, NOV, usage, status="open", now=now
    ).to_json()
    return {meter["meter"]: meter for meter in found["meters"]}


def figures(meter: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(d["date"][-2:], d["quantity"], d["to_date"]) for d in meter["days"]]


def test_each_aggregation_gives_its_days_and_its_figure_to_date() -> None:
    usage = {
        "api_calls": MeterUsage("sum", Aggregate(D(17), 3), days={1: day("12"), 3: day("5")}),
        "seats": MeterUsage("max", Aggregate(D(6), 2), days={2: day("6"), 3: day("4")}),
        "exports": MeterUsage("count", Aggregate(D(3), 3), days={1: day("2"), 4: day("1")}),
        "users": MeterUsage("unique_count", Aggregate(D(3), 5), days={2: day("2"), 3: day("1")}),
        "level": MeterUsage(
            "latest", Aggregate(D(0), 3, (30, 2)), days={2: day("7", (20, 1)), 3: day("0", (30, 2))}
        ),
    }

    meters = view("acct-c", usage)

    # every day of the period up to today (the 4th, in UTC), the day's own figure and the
    # period's to the end of it
    assert figures(meters["api_calls"]) == [
        ("01", "12", "12"),
        ("02", "0", "12"),
        ("03", "5", "17"),
        ("04", "0", "17"),
    ]
    assert figures(meters["seats"]) == [
        ("01", "0", "0"),
        ("02", "6", "6"),
        ("03", "4", "6"),
        ("04", "0", "6"),
    ]
    assert figures(meters["exports"]) == [
        ("01", "2", "2"),
        ("02", "0", "2"),
        ("03", "0", "2"),
        ("04", "1", "3"),
    ]
    assert figures(meters["users"]) == [
        ("01", "0", "0"),
        ("02", "2", "2"),
        ("03", "1", "3"),
        ("04", "0", "3"),
    ]
    assert figures(meters["level"]) == [
        ("01", None, None),
        ("02", "7", "7"),
        ("03", "0", "0"),
        ("04", None, "0"),
    ]
    assert all(meter["complete"] for meter in meters.values())
    assert meters["api_calls"]["quantity"] == "17"


def test_days_run_to_today_in_the_accounts_zone_and_whole_once_the_period_is_over() -> None:
    usage = {"api_calls": MeterUsage("sum", Aggregate(D(1), 1), days={5: day("1")})}

    far = view("acct-a", usage)  # Pacific/Kiritimati: already the 5th
    over = view("acct-a", usage, now=datetime(2026, 12, 20, tzinfo=UTC))
    before = view("acct-a", usage, now=datetime(2026, 10, 20, tzinfo=UTC))

    assert [d["date"] for d in far["api_calls"]["days"]][-1] == "2026-11-05"
    assert len(over["api_calls"]["days"]) == 30
    assert before["api_calls"]["days"] == []


def test_days_that_do_not_account_for_the_total_say_so() -> None:
    usage = {
        # rated before days were kept: 10 of the 15 are on no day
        "api_calls": MeterUsage("sum", Aggregate(D(15), 4), days={3: day("5")}),
        # days not kept (the period's outgrew their budget)
        "seats": MeterUsage("max", Aggregate(D(9), 1), days=None),
        # no day at all for a total
        "exports": MeterUsage("count", Aggregate(D(2), 2)),
    }

    meters = view("acct-c", usage)

    assert [meters[m]["complete"] for m in ("api_calls", "seats", "exports")] == [False] * 3
    assert figures(meters["seats"])[-1] == ("04", "0", "0")
    assert meters["seats"]["quantity"] == "9"  # the total stays exact


def test_a_meter_the_plan_charges_is_shown_without_usage_and_others_only_with_it() -> None:
    meters = view("acct-c", {})

    assert list(meters) == ["api_calls", "seats"]  # the plan's charges
    assert meters["seats"]["complete"] is True


def test_a_meters_days_in_two_phases_are_one_series() -> None:
    # GIVEN a period whose usage is kept under two phase names (a plan change on the 3rd)
    usage = {
        "api_calls": MeterUsage("sum", Aggregate(D(4), 2), days={1: day("1"), 2: day("3")}),
        "api_calls@2026-11-03": MeterUsage("sum", Aggregate(D(5), 1), days={3: day("5")}),
    }

    meters = view("acct-c", usage)

    assert figures(meters["api_calls"]) == [
        ("01", "1", "1"),
        ("02", "3", "4"),
        ("03", "5", "9"),
        ("04", "0", "9"),
    ]
    assert meters["api_calls"]["quantity"] == "9"
    assert meters["api_calls"]["complete"] is True
