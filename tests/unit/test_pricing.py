"""Charge models priced exactly (CONTRACT.md section 3), with the arithmetic written out.

Every expected amount is the exact, unrounded Decimal a model returns in `Priced.amount`;
rounding to the currency happens later, on the invoice line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing.core.pricing import (
    GraduatedCharge,
    PackageCharge,
    PerUnitCharge,
    PriceStep,
    VolumeCharge,
)

D = Decimal


def per_unit(unit_price: str, **extra: Any) -> PerUnitCharge:
    return PerUnitCharge.model_validate(
        {"meter": "m", "model": "per_unit", "unit_price": unit_price, **extra}
    )


def graduated(tiers: list[dict[str, Any]]) -> GraduatedCharge:
    return GraduatedCharge.model_validate({"meter": "m", "model": "graduated", "tiers": tiers})


def volume(tiers: list[dict[str, Any]]) -> VolumeCharge:
    return VolumeCharge.model_validate({"meter": "m", "model": "volume", "tiers": tiers})


def package(size: str | int, price: str) -> PackageCharge:
    return PackageCharge.model_validate(
        {"meter": "m", "model": "package", "package_size": size, "package_price": price}
    )


# --- per_unit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit_price", "quantity", "expected"),
    [
        # 10,000 GB-hours at 0.00012 = 1.2
        ("0.00012", "10000", D("1.2")),
        # 5,000 at 0.00010 = 0.5
        ("0.00010", "5000.0", D("0.5")),
        # fractional quantity: 12,345.5 at 0.00004 = 0.49382
        ("0.00004", "12345.5", D("0.49382")),
        # 123,457 at 0.000015 = 1.851855 (kept exact, not rounded here)
        ("0.000015", "123457", D("1.851855")),
        # the smallest quantity an event may carry: 1e-12 at 3 = 3e-12
        ("3", "0.000000000001", D("0.000000000003")),
        # 0.5 units at 7 = 3.5
        ("7", "0.5", D("3.5")),
        # quantity 0 costs 0
        ("0.00012", "0", D(0)),
        # a price of 0 costs 0 whatever the quantity
        ("0", "1000000", D(0)),
    ],
)
def test_per_unit_is_quantity_times_unit_price(
    unit_price: str, quantity: str, expected: Decimal
) -> None:
    priced = per_unit(unit_price).price(D(quantity))

    assert priced.amount == expected
    assert priced.steps == (PriceStep("units", D(quantity), D(unit_price), expected),)


def test_per_unit_price_is_exact_for_a_large_quantity_with_many_decimals() -> None:
    # 999,999,999,999,999.999999999999 at 0.000000000001
    # = 999.999999999999999999999999 (27 decimals, nothing cut short)
    priced = per_unit("0.000000000001").price(D("999999999999999.999999999999"))

    assert priced.amount == D("999.999999999999999999999999")


# --- graduated -------------------------------------------------------------------------------

# The contract's tiers: the first million free, then 0.000002 with a 5.00 flat fee up to ten
# million, then 0.000001.
CONTRACT_TIERS: list[dict[str, Any]] = [
    {"up_to": 1000000, "unit_price": "0"},
    {"up_to": 10000000, "unit_price": "0.000002", "flat_fee": "5.00"},
    {"up_to": None, "unit_price": "0.000001"},
]


def test_graduated_contract_example_1534000_requests_is_6_068_exactly() -> None:
    priced = graduated(CONTRACT_TIERS).price(D(1534000))

    # 1,000,000 units in tier 1 at 0 = 0
    # 534,000 units in tier 2 at 0.000002 = 1.068, + tier 2's flat fee 5.00
    # 0 + 1.068 + 5.00 = 6.068 (6.07 once rounded on the invoice line)
    assert priced.amount == D("6.068")
    assert priced.steps == (
        PriceStep("tier 1", D(1000000), D(0), D(0)),
        PriceStep("tier 2", D(534000), D("0.000002"), D("1.068")),
        PriceStep("tier 2 flat fee", D(1), None, D("5.00")),
    )


def test_graduated_up_to_is_inclusive_so_exactly_1000000_owes_no_tier_2_fee() -> None:
    priced = graduated(CONTRACT_TIERS).price(D(1000000))

    # all 1,000,000 units fall in tier 1 (up_to inclusive) at 0; tier 2 holds nothing,
    # so neither its units nor its 5.00 flat fee are owed
    assert priced.amount == D(0)
    assert priced.steps == (PriceStep("tier 1", D(1000000), D(0), D(0)),)


def test_graduated_half_a_unit_past_the_bound_owes_tier_2_units_and_flat_fee() -> None:
    priced = graduated(CONTRACT_TIERS).price(D("1000000.5"))

    # 0.5 units in tier 2 at 0.000002 = 0.000001, + flat fee 5.00 (a fraction of a unit counts)
    assert priced.amount == D("5.000001")
    assert priced.steps == (
        PriceStep("tier 1", D(1000000), D(0), D(0)),
        PriceStep("tier 2", D("0.5"), D("0.000002"), D("0.000001")),
        PriceStep("tier 2 flat fee", D(1), None, D("5.00")),
    )


def test_graduated_quantity_zero_costs_zero_with_no_steps() -> None:
    priced = graduated(CONTRACT_TIERS).price(D(0))

    assert priced.amount == D(0)
    assert priced.steps == ()


def test_graduated_quantity_into_tier_3_prices_each_tier_by_its_own_units() -> None:
    priced = graduated(CONTRACT_TIERS).price(D(12000000))

    # tier 1: 1,000,000 at 0 = 0
    # tier 2: 9,000,000 (1,000,001..10,000,000) at 0.000002 = 18, + flat fee 5.00
    # tier 3: 2,000,000 at 0.000001 = 2
    # 0 + 18 + 5 + 2 = 25
    assert priced.amount == D(25)
    assert priced.steps == (
        PriceStep("tier 1", D(1000000), D(0), D(0)),
        PriceStep("tier 2", D(9000000), D("0.000002"), D(18)),
        PriceStep("tier 2 flat fee", D(1), None, D("5.00")),
        PriceStep("tier 3", D(2000000), D("0.000001"), D(2)),
    )


def test_graduated_exactly_at_tier_2_upper_bound_stays_out_of_tier_3() -> None:
    # 9,000,000 at 0.000002 = 18, + 5.00 = 23; tier 3 holds nothing
    assert graduated(CONTRACT_TIERS).price(D(10000000)).amount == D(23)


TIER_1_FEE: list[dict[str, Any]] = [
    {"up_to": 100, "unit_price": "1", "flat_fee": "10.00"},
    {"up_to": None, "unit_price": "0.5", "flat_fee": "3.00"},
]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # 0.001 units in tier 1 at 1 = 0.001, + tier 1's flat fee 10.00
        ("0.001", D("10.001")),
        # 1 unit at 1 = 1, + 10.00
        ("1", D("11.00")),
        # 100 units (inclusive bound) at 1 = 100, + 10.00; tier 2 empty
        ("100", D("110.00")),
        # 100 at 1 + 10.00, then 0.000000000001 at 0.5 = 5e-13, + tier 2's 3.00
        ("100.000000000001", D("113.0000000000005")),
        # nothing used: no flat fee at all
        ("0", D(0)),
    ],
)
def test_graduated_tier_1_flat_fee_is_owed_for_any_quantity_above_zero(
    quantity: str, expected: Decimal
) -> None:
    assert graduated(TIER_1_FEE).price(D(quantity)).amount == expected


def test_graduated_single_unbounded_tier_is_per_unit_plus_its_flat_fee() -> None:
    charge = graduated([{"up_to": None, "unit_price": "0.25", "flat_fee": "1"}])

    # 50,002 at 0.25 = 12,500.5, + 1
    assert charge.price(D(50002)).amount == D("12501.5")


# --- volume ----------------------------------------------------------------------------------

# The example catalog's seats: up to 10 at 12.00; up to 50 at 10.00 + 20.00; beyond at 8.00
# + 50.00.
SEAT_TIERS: list[dict[str, Any]] = [
    {"up_to": 10, "unit_price": "12.00"},
    {"up_to": 50, "unit_price": "10.00", "flat_fee": "20.00"},
    {"up_to": None, "unit_price": "8.00", "flat_fee": "50.00"},
]


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # tier 1: 1 × 12.00 = 12.00
        ("1", D("12.00")),
        # exactly 10 is still tier 1 (up_to inclusive): 10 × 12.00 = 120.00, no flat fee
        ("10", D("120.00")),
        # 10.5 falls in tier 2: all 10.5 units × 10.00 = 105.00, + 20.00
        ("10.5", D("125.00")),
        # 12 in tier 2: 12 × 10.00 = 120.00, + 20.00
        ("12", D("140.00")),
        # exactly 50 is tier 2: 50 × 10.00 = 500.00, + 20.00
        ("50", D("520.00")),
        # 51 in tier 3: 51 × 8.00 = 408.00, + 50.00
        ("51", D("458.00")),
        # quantity 0 costs 0
        ("0", D(0)),
    ],
)
def test_volume_prices_all_units_at_the_tier_the_total_falls_into(
    quantity: str, expected: Decimal
) -> None:
    assert volume(SEAT_TIERS).price(D(quantity)).amount == expected


def test_volume_steps_show_all_units_in_one_tier_plus_its_flat_fee() -> None:
    priced = volume(SEAT_TIERS).price(D(12))

    assert priced.steps == (
        PriceStep("tier 2", D(12), D("10.00"), D("120.00")),
        PriceStep("tier 2 flat fee", D(1), None, D("20.00")),
    )


def test_volume_contract_kwd_tiers_60000_requests_is_19_5() -> None:
    charge = volume(
        [
            {"up_to": 50000, "unit_price": "0.0004"},
            {"up_to": None, "unit_price": "0.0003", "flat_fee": "1.500"},
        ]
    )

    # 60,000 > 50,000: all 60,000 × 0.0003 = 18.0000, + 1.500
    assert charge.price(D(60000)).amount == D("19.5")
    # exactly 50,000 is tier 1: 50,000 × 0.0004 = 20
    assert charge.price(D(50000)).amount == D(20)


def test_volume_quantity_zero_costs_zero_even_when_tier_1_has_a_flat_fee() -> None:
    charge = volume(
        [
            {"up_to": 10, "unit_price": "1", "flat_fee": "99.00"},
            {"up_to": None, "unit_price": "0.5"},
        ]
    )

    assert charge.price(D(0)).amount == D(0)
    # while any quantity above zero owes the fee: 0.5 × 1 + 99.00
    assert charge.price(D("0.5")).amount == D("99.5")


# --- package ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "packages", "expected"),
    [
        # ceil(0 / 1000) = 0 packages → 0
        ("0", 0, D(0)),
        # ceil(1 / 1000) = 1 package × 0.50
        ("1", 1, D("0.50")),
        # ceil(0.5 / 1000) = 1 package: a fraction of a unit still buys a package
        ("0.5", 1, D("0.50")),
        # exactly one package size: ceil(1000 / 1000) = 1
        ("1000", 1, D("0.50")),
        # one more: ceil(1001 / 1000) = 2 × 0.50 = 1.00
        ("1001", 2, D("1.00")),
        # ceil(2500 / 1000) = 3 × 0.50 = 1.50
        ("2500", 3, D("1.50")),
    ],
)
def test_package_is_ceil_quantity_over_size_times_price(
    quantity: str, packages: int, expected: Decimal
) -> None:
    priced = package(1000, "0.50").price(D(quantity))

    assert priced.amount == expected
    assert priced.steps == (PriceStep("packages of 1000", D(packages), D("0.50"), expected),)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        # ceil(2.5 / 2.5) = 1 × 4.00
        ("2.5", D("4.00")),
        # ceil(5 / 2.5) = 2 × 4.00
        ("5", D("8.00")),
        # ceil(5.1 / 2.5) = ceil(2.04) = 3 × 4.00
        ("5.1", D("12.00")),
        # ceil(0.1 / 2.5) = 1 × 4.00
        ("0.1", D("4.00")),
    ],
)
def test_package_with_a_fractional_package_size(quantity: str, expected: Decimal) -> None:
    assert package("2.5", "4.00").price(D(quantity)).amount == expected


def test_package_of_a_non_terminating_ratio_still_rounds_up_to_whole_packages() -> None:
    # ceil(1 / 3) = 1, ceil(3.0000000001 / 3) = 2; packages at 0.20
    assert package(3, "0.20").price(D(1)).amount == D("0.20")
    assert package(3, "0.20").price(D("3.0000000001")).amount == D("0.40")


# --- filters ---------------------------------------------------------------------------------

EU = {"region": ["eu-west-1", "eu-central-1"]}


@pytest.mark.parametrize(
    ("dimensions", "accepted"),
    [
        ({"region": "eu-west-1"}, True),
        ({"region": "eu-central-1", "bucket": "logs"}, True),
        # the filtered dimension is missing: the event does not pass
        ({}, False),
        ({"bucket": "logs"}, False),
        # a value the filter does not list does not pass
        ({"region": "us-east-1"}, False),
        ({"region": "EU-WEST-1"}, False),
    ],
)
def test_filter_accepts_only_events_whose_dimension_matches(
    dimensions: dict[str, str], accepted: bool
) -> None:
    assert per_unit("1", filters=EU).accepts(dimensions) is accepted


@pytest.mark.parametrize(
    ("dimensions", "accepted"),
    [
        ({"region": "eu-west-1", "tier": "gold"}, True),
        ({"region": "eu-west-1", "tier": "silver"}, False),
        ({"region": "eu-west-1"}, False),
        ({"tier": "gold"}, False),
    ],
)
def test_filter_on_two_dimensions_needs_both_to_match(
    dimensions: dict[str, str], accepted: bool
) -> None:
    charge = per_unit("1", filters={"region": ["eu-west-1"], "tier": ["gold"]})

    assert charge.accepts(dimensions) is accepted


def test_charge_without_filters_accepts_every_event() -> None:
    charge = per_unit("1")

    assert charge.accepts({}) is True
    assert charge.accepts({"region": "anything"}) is True


def test_filter_key_is_the_same_whatever_the_order_of_keys_and_values() -> None:
    one = per_unit("1", filters={"region": ["eu-west-1", "eu-central-1"], "tier": ["b", "a"]})
    two = per_unit("1", filters={"tier": ["a", "b"], "region": ["eu-central-1", "eu-west-1"]})

    assert one.filter_key == two.filter_key == "region=eu-central-1,eu-west-1&tier=a,b"


def test_filter_key_differs_for_different_filters_and_is_empty_without_filters() -> None:
    eu = per_unit("1", filters=EU)
    us = per_unit("1", filters={"region": ["us-east-1", "us-west-2"]})

    assert eu.filter_key != us.filter_key
    assert per_unit("1").filter_key == ""
