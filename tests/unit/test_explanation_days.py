"""A usage line's `days` in the explanation (billing.customer.explanation_view.days_summary):
when its meter was used, from the usage by local day the rater keeps beside the totals."""

from __future__ import annotations

from decimal import Decimal

from billing.core.periods import Period
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.explanation_view import days_summary

D = Decimal
NOVEMBER = Period(2026, 11)


def test_a_sum_meters_busiest_day_is_its_largest_the_earliest_of_equals() -> None:
    # 4 Nov 7, 9 Nov 12, 21 Nov 12: 31 in all; 9 and 21 Nov tie, the earlier wins
    days = {4: Aggregate(D(7)), 9: Aggregate(D(12)), 21: Aggregate(D(12))}
    usage = MeterUsage("sum", Aggregate(D(31), 3), days=days)
    assert days_summary(NOVEMBER, usage) == {
        "first": "2026-11-04",
        "last": "2026-11-21",
        "busiest": {"date": "2026-11-09", "quantity": "12"},
        "complete": True,
    }


def test_a_latest_meters_busiest_day_is_the_day_of_its_last_value() -> None:
    # 2 Nov: 40 (stream order 10), 15 Nov: 3 (order 20): the meter stands at 3, set on 15 Nov
    days = {2: Aggregate(D(40), 0, (10, 1)), 15: Aggregate(D(3), 0, (20, 2))}
    usage = MeterUsage("latest", Aggregate(D(3), 2, (20, 2)), days=days)
    summary = days_summary(NOVEMBER, usage)
    assert summary is not None
    assert summary["busiest"] == {"date": "2026-11-15", "quantity": "3"}


def test_days_that_do_not_cover_the_total_say_so_and_none_kept_give_no_summary() -> None:
    # 100 in total, 60 of it on known days (the rest rated before days were kept)
    partial = MeterUsage("sum", Aggregate(D(100), 5), days={3: Aggregate(D(60))})
    summary = days_summary(NOVEMBER, partial)
    assert summary is not None
    assert summary["complete"] is False
    assert days_summary(NOVEMBER, MeterUsage("sum", Aggregate(D(100), 5), days=None)) is None
    assert days_summary(NOVEMBER, MeterUsage("sum")) is None
    assert days_summary(NOVEMBER, None) is None
