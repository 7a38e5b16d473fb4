"""A customer's own thresholds (billing.core.customer_thresholds): checked against the
account's currency, one text per amount, ids made of their definition, percentages of the
budget rounded as every amount is."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.core.customer_thresholds import CustomerThresholds, ThresholdsRefused
from billing.core.money import Money

D = Decimal


def test_thresholds_are_made_canonical_and_resolved_against_the_budget() -> None:
    # GIVEN a budget of 333.33 USD, 100 USD, and 33.33% and 80.0% of the budget
    chosen = CustomerThresholds.of(
        "USD", D("333.33"), [(D(100), None), (None, D("33.33")), (None, D("80.0"))]
    )

    # THEN each has one text (100.00, 80) and an id of it; 33.33% of 333.33 is
    # 111.098889 → 111.10, 80% is 266.664 → 266.66; listed by amount
    assert [t.id for t in chosen.thresholds] == ["amount:100.00", "percent:33.33", "percent:80"]
    assert chosen.amounts() == [
        ("amount:100.00", Money(D("100.00"), "USD")),
        ("percent:33.33", Money(D("111.10"), "USD")),
        ("percent:80", Money(D("266.66"), "USD")),
    ]
    # ... and they are stored and read back as they are
    assert CustomerThresholds.from_document(chosen.document()) == chosen


def test_a_yen_threshold_is_whole_and_half_up() -> None:
    chosen = CustomerThresholds.of("JPY", D(999), [(None, D("50"))])

    assert chosen.amounts() == [("percent:50", Money(D(500), "JPY"))]  # 499.5 → 500


@pytest.mark.parametrize(
    ("currency", "budget", "thresholds", "message"),
    [
        ("USD", None, [(D("1.005"), None)], "thresholds.0.amount: USD amounts have at most 2"),
        ("JPY", None, [(D("1.5"), None)], "thresholds.0.amount: JPY amounts have a whole number"),
        ("USD", D("0.001"), [], "budget: USD amounts have at most 2 digits"),
        ("USD", None, [(D(0), None)], "thresholds.0.amount: must be above 0"),
        ("USD", None, [(None, D(50))], "thresholds.0.percent: a percentage needs a budget"),
        ("USD", D(10), [(None, D("1000.01"))], "thresholds.0.percent: must be above 0 and at"),
        ("USD", D(10), [(None, D("12.345"))], "thresholds.0.percent: at most 2 digits"),
        ("USD", None, [(D(1), D(1))], "thresholds.0: give exactly one of amount or percent"),
        ("USD", None, [(None, None)], "thresholds.0: give exactly one of amount or percent"),
        ("USD", None, [(D(5), None), (D("5.00"), None)], "thresholds.1: amount:5.00 is given"),
        ("USD", None, [(D(n + 1), None) for n in range(11)], "thresholds: at most 10"),
    ],
)
def test_thresholds_that_cannot_be_kept_are_refused_naming_the_field(
    currency: str,
    budget: Decimal | None,
    thresholds: list[tuple[Decimal | None, Decimal | None]],
    message: str,
) -> None:
    with pytest.raises(ThresholdsRefused, match=message.replace(".", r"\.")):
        CustomerThresholds.of(currency, budget, thresholds)
