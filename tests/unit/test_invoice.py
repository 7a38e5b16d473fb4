"""Invoices (CONTRACT.md sections 2-4): rounding, proration, minimum, tax, lines, JSON,
aggregations, periods in the account's zone, and the example files worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing.core.catalog import Account, Accounts, Catalog, parse_accounts, parse_catalog
from billing.core.invoice import Invoice, build_invoice, invoice_number
from billing.core.money import Money, plain, plain_quantity, round_money
from billing.core.periods import Period, zone
from billing.core.usage import MeterUsage
from billing_cli.preview import RatingRun, invoice_period, invoice_run_clock, rate_records
from tests.support.examples import EXAMPLE_INVOICES, EXAMPLE_SUMMARY

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
D = Decimal
NOV = Period(2026, 11)
ISSUED = datetime(2026, 12, 1, 1, 15, tzinfo=UTC)
# Late enough for any November event in any zone (the latest end is 2026-12-01T11:00Z).
AFTER_NOVEMBER = datetime(2026, 12, 2, tzinfo=UTC)

METERS = [
    {
        "name": "api_requests",
        "unit": "request",
        "aggregation": "sum",
        "description": "API requests",
    },
    {"name": "storage_gb_hours", "unit": "GB-hour", "aggregation": "sum"},
    {"name": "exports", "unit": "export", "aggregation": "count", "description": "Exports"},
    {"name": "seats", "unit": "seat", "aggregation": "max", "description": "Seats"},
]

# The keys CONTRACT.md section 4 shows on an invoice line.
CONTRACT_LINE_KEYS = ("kind", "meter", "filters", "description", "quantity", "amount")


def catalog_with(*plans: dict[str, Any]) -> Catalog:
    return parse_catalog({"meters": METERS, "plans": list(plans)})


def plan(
    charges: list[dict[str, Any]] | None = None, currency: str = "USD", **extra: Any
) -> dict[str, Any]:
    return {"id": "p", "name": "Test", "currency": currency, "charges": charges or [], **extra}


def accounts_of(catalog: Catalog, *accounts: dict[str, Any]) -> Accounts:
    return parse_accounts(
        {
            "accounts": [
                {
                    "id": f"acct-{number}",
                    "name": "Customer",
                    "email": "billing@customer.example",
                    "plan": "p",
                    "timezone": "Europe/Paris",
                    **fields,
                }
                for number, fields in enumerate(accounts, start=1)
            ]
        },
        catalog,
    )


def account_of(catalog: Catalog, **fields: Any) -> Account:
    return accounts_of(catalog, fields).accounts[0]


def invoice(
    catalog: Catalog,
    account: Account,
    usage: dict[str, MeterUsage] | None = None,
    period: Period = NOV,
) -> Invoice:
    return build_invoice(
        account,
        catalog.plans_by_id[account.plan],
        catalog,
        period,
        usage or {},
        number="INV-2026-000001",
        issued_at=ISSUED,
    )


def summed(quantity: str, filter_keys: tuple[str, ...] = ()) -> MeterUsage:
    return MeterUsage("sum").add(D(quantity), filter_keys)


def per_unit_invoice(unit_price: str, quantity: str, currency: str = "USD") -> Invoice:
    catalog = catalog_with(
        plan(
            [{"meter": "api_requests", "model": "per_unit", "unit_price": unit_price}],
            currency=currency,
        )
    )
    return invoice(catalog, account_of(catalog), {"api_requests": summed(quantity)})


def fee_invoice(fee: str, **account: Any) -> Invoice:
    catalog = catalog_with(plan(fixed_fee=fee))
    return invoice(catalog, account_of(catalog, **account))


def rate(
    catalog: Catalog, accounts: Accounts, lines: list[str], now: datetime = AFTER_NOVEMBER
) -> RatingRun:
    run = rate_records([line.encode() for line in lines], catalog, accounts, now)
    assert run.summary.rejected == {}, run.rejected
    return run


def event(
    event_id: str,
    meter: str,
    quantity: str,
    timestamp: str = "2026-11-10T12:00:00Z",
    account: str = "acct-1",
    dimensions: dict[str, str] | None = None,
) -> str:
    """One JSON-lines record; `quantity` is written as is (a JSON number or a quoted string)."""
    extra = f',"dimensions":{json.dumps(dimensions)}' if dimensions is not None else ""
    return (
        f'{{"event_id":"{event_id}","account_id":"{account}","meter":"{meter}",'
        f'"quantity":{quantity},"timestamp":"{timestamp}"{extra}}}'
    )


def line_view(line: dict[str, Any]) -> dict[str, Any]:
    return {key: line[key] for key in CONTRACT_LINE_KEYS if key in line}


def amounts(inv: Invoice) -> list[tuple[str, str]]:
    return [(line.kind, str(line.amount)) for line in inv.lines]


# --- rounding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "USD", "0.01"),
        ("0.015", "USD", "0.02"),
        ("0.025", "USD", "0.03"),
        ("0.0049999", "USD", "0.00"),
        ("6.068", "USD", "6.07"),
        ("1.851855", "EUR", "1.85"),
        ("12500.5", "JPY", "12501"),
        ("12500.4999", "JPY", "12500"),
        ("2470.1", "JPY", "2470"),
        ("0.0005", "KWD", "0.001"),
        ("0.0004999", "KWD", "0.000"),
        ("0.49382", "KWD", "0.494"),
        ("7", "USD", "7.00"),
        ("7", "KWD", "7.000"),
    ],
)
def test_round_money_is_half_up_to_the_currency_minor_unit(
    amount: str, currency: str, expected: str
) -> None:
    rounded = round_money(D(amount), currency)

    assert rounded == D(expected)
    assert plain(rounded) == expected


@pytest.mark.parametrize(
    ("unit_price", "quantity", "currency", "expected"),
    [
        # 5 × 0.001 = 0.005 → 0.01 (half up, not half even)
        ("0.001", "5", "USD", "0.01"),
        # 15 × 0.001 = 0.015 → 0.02
        ("0.001", "15", "USD", "0.02"),
        # 49,999 × 0.0000001 = 0.0049999 → 0.00
        ("0.0000001", "49999", "USD", "0.00"),
        # 50,002 × 0.25 = 12,500.5 → 12501 (JPY has no minor unit)
        ("0.25", "50002", "JPY", "12501"),
        # 1 × 0.5 = 0.5 → 1
        ("0.5", "1", "JPY", "1"),
        # 5 × 0.0001 = 0.0005 → 0.001 (KWD has three decimals)
        ("0.0001", "5", "KWD", "0.001"),
        # 4 × 0.0001 = 0.0004 → 0.000
        ("0.0001", "4", "KWD", "0.000"),
    ],
)
def test_usage_line_amount_rounds_half_up_to_the_plan_currency(
    unit_price: str, quantity: str, currency: str, expected: str
) -> None:
    inv = per_unit_invoice(unit_price, quantity, currency)

    assert inv.to_json()["lines"][0]["amount"] == expected
    assert inv.to_json()["subtotal"] == expected
    assert inv.to_json()["total"] == expected


def test_subtotal_is_the_sum_of_the_already_rounded_lines() -> None:
    catalog = catalog_with(
        plan(
            [
                {"meter": "api_requests", "model": "per_unit", "unit_price": "0.001"},
                {"meter": "storage_gb_hours", "model": "per_unit", "unit_price": "0.001"},
            ]
        )
    )
    usage = {"api_requests": summed("5"), "storage_gb_hours": summed("5")}

    inv = invoice(catalog, account_of(catalog), usage)

    # each line is 0.005 → 0.01; subtotal 0.01 + 0.01 = 0.02 (not round(0.010) = 0.01)
    assert amounts(inv) == [("usage", "0.01"), ("usage", "0.01")]
    assert str(inv.subtotal) == "0.02"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("-0"), "0"),
        (D("-0.00"), "0.00"),
        (D("-0E-3"), "0.000"),
        (round_money(D("-0.001"), "USD"), "0.00"),
        (round_money(D("-0.4"), "JPY"), "0"),
    ],
)
def test_negative_zero_is_never_printed(value: Decimal, expected: str) -> None:
    assert plain(value) == expected
    assert str(Money(value, "USD")) == expected
    assert plain_quantity(value) == "0"


def test_zero_invoice_prints_no_negative_zero_anywhere() -> None:
    catalog = catalog_with(
        plan(
            [
                {"meter": "api_requests", "model": "per_unit", "unit_price": "0.001"},
                {"meter": "exports", "model": "package", "package_size": 10, "package_price": "1"},
            ],
            fixed_fee="0",
        )
    )
    account = account_of(catalog, tax_rate="0.20")

    document = invoice(catalog, account).to_json()

    assert "-" not in json.dumps([document["lines"], document["subtotal"], document["total"]])
    assert (document["subtotal"], document["tax"], document["total"]) == ("0.00", "0.00", "0.00")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1534000"), "1534000"),
        (D("1.534E+6"), "1534000"),
        (D("6E+4"), "60000"),
        (D("12345.50"), "12345.5"),
        (D("5000.0"), "5000"),
        (D("1E-12"), "0.000000000001"),
        (D("0.000"), "0"),
    ],
)
def test_plain_quantity_is_exact_without_exponent_or_trailing_zeros(
    value: Decimal, expected: str
) -> None:
    assert plain_quantity(value) == expected


# --- fixed fee proration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "account", "period", "expected"),
    [
        # no start or end: the whole fee
        ("49.00", {}, NOV, "49.00"),
        # started before the period: the whole fee
        ("49.00", {"start": "2026-10-10"}, NOV, "49.00"),
        # started on the period's first day: the whole fee
        ("49.00", {"start": "2026-11-01"}, NOV, "49.00"),
        # start 16 November: days 16..30 = 15 of 30 → 30.00 × 15 / 30 = 15.00
        ("30.00", {"start": "2026-11-16"}, NOV, "15.00"),
        # end 21 November (exclusive): days 1..20 = 20 of 30 → 30.00 × 20 / 30 = 20.00
        ("30.00", {"end": "2026-11-21"}, NOV, "20.00"),
        # both: 10..19 November = 10 of 30 → 30.00 × 10 / 30 = 10.00
        ("30.00", {"start": "2026-11-10", "end": "2026-11-20"}, NOV, "10.00"),
        # ends on the period's end day (1 December, exclusive): the whole fee
        ("30.00", {"end": "2026-12-01"}, NOV, "30.00"),
        # February 2026 has 28 days: 15..28 = 14 of 28 → 28.00 × 14 / 28 = 14.00
        ("28.00", {"start": "2026-02-15"}, Period(2026, 2), "14.00"),
        # February 2028 has 29 days: 1..28 February = 28 of 29 → 29.00 × 28 / 29 = 28.00
        ("29.00", {"end": "2028-02-29"}, Period(2028, 2), "28.00"),
        # non-terminating: 49.00 × 20 / 30 = 32.6666… → 32.67
        ("49.00", {"end": "2026-11-21"}, NOV, "32.67"),
        # a single day: 10.00 × 1 / 30 = 0.3333… → 0.33
        ("10.00", {"start": "2026-11-30"}, NOV, "0.33"),
        # 20.00 × 1 / 30 = 0.6666… → 0.67
        ("20.00", {"end": "2026-11-02"}, NOV, "0.67"),
    ],
)
def test_fixed_fee_is_prorated_by_active_days(
    fee: str, account: dict[str, str], period: Period, expected: str
) -> None:
    catalog = catalog_with(plan(fixed_fee=fee))

    inv = invoice(catalog, account_of(catalog, **account), period=period)

    assert [line.to_json()["kind"] for line in inv.lines] == ["fixed"]
    fixed = inv.lines[0].to_json()
    assert (fixed["description"], fixed["quantity"], fixed["amount"]) == (
        "Test plan",
        "1",
        expected,
    )
    assert str(inv.subtotal) == expected


@pytest.mark.parametrize(
    ("currency", "fee", "account", "expected"),
    [
        # JPY: 1000 × 1 / 30 = 33.33… → 33
        ("JPY", "1000", {"start": "2026-11-30"}, "33"),
        # JPY: 5000 × 15 / 30 = 2500
        ("JPY", "5000", {"start": "2026-11-16"}, "2500"),
        # KWD: 1.000 × 20 / 30 = 0.6666… → 0.667
        ("KWD", "1.000", {"end": "2026-11-21"}, "0.667"),
    ],
)
def test_prorated_fixed_fee_rounds_to_the_currency(
    currency: str, fee: str, account: dict[str, str], expected: str
) -> None:
    catalog = catalog_with(plan(currency=currency, fixed_fee=fee))

    inv = invoice(catalog, account_of(catalog, **account))

    assert str(inv.lines[0].amount) == expected


def test_fixed_fee_in_a_dst_month_still_counts_calendar_days() -> None:
    # America/New_York, November 2026 loses an hour (DST ends 1 November) but has 30 days:
    # start 16 November → 15 of 30 → 49.00 × 15 / 30 = 24.50
    inv = fee_invoice("49.00", timezone="America/New_York", start="2026-11-16")

    assert str(inv.lines[0].amount) == "24.50"


# --- minimum commitment ----------------------------------------------------------------------


def test_minimum_line_adds_the_difference_when_subtotal_is_below_it() -> None:
    catalog = catalog_with(plan(fixed_fee="49.00", minimum_commitment="100.00"))

    inv = invoice(catalog, account_of(catalog))

    # 100.00 − 49.00 = 51.00; the subtotal includes the minimum line
    assert amounts(inv) == [("fixed", "49.00"), ("minimum", "51.00")]
    minimum = inv.lines[1].to_json()
    assert (minimum["description"], minimum["quantity"]) == ("Minimum commitment", "1")
    assert str(inv.subtotal) == "100.00"
    assert str(inv.total) == "100.00"


def test_minimum_commitment_is_prorated_like_the_fixed_fee() -> None:
    catalog = catalog_with(plan(minimum_commitment="100.00"))

    inv = invoice(catalog, account_of(catalog, start="2026-11-16"))

    # 100.00 × 15 / 30 = 50.00, all of it owed as the minimum line
    assert amounts(inv) == [("minimum", "50.00")]
    assert str(inv.subtotal) == "50.00"


def test_non_terminating_minimum_is_rounded_before_the_difference_is_taken() -> None:
    catalog = catalog_with(plan(fixed_fee="49.00", minimum_commitment="100.00"))

    inv = invoice(catalog, account_of(catalog, end="2026-11-21"))

    # fixed: 49.00 × 20 / 30 = 32.6666… → 32.67
    # minimum: 100.00 × 20 / 30 = 66.6666… → 66.67; line = 66.67 − 32.67 = 34.00
    assert amounts(inv) == [("fixed", "32.67"), ("minimum", "34.00")]
    assert str(inv.subtotal) == "66.67"


@pytest.mark.parametrize(
    ("fee", "subtotal"),
    [
        # equal: 100.00 is not below 100.00
        ("100.00", "100.00"),
        # above
        ("120.00", "120.00"),
    ],
)
def test_no_minimum_line_when_subtotal_reaches_the_commitment(fee: str, subtotal: str) -> None:
    catalog = catalog_with(plan(fixed_fee=fee, minimum_commitment="100.00"))

    inv = invoice(catalog, account_of(catalog))

    assert [line.kind for line in inv.lines] == ["fixed"]
    assert str(inv.subtotal) == subtotal


def test_minimum_compares_with_the_rounded_subtotal() -> None:
    catalog = catalog_with(
        plan(
            [{"meter": "api_requests", "model": "per_unit", "unit_price": "0.001"}],
            minimum_commitment="100.00",
        )
    )

    inv = invoice(catalog, account_of(catalog), {"api_requests": summed("99995")})

    # 99,995 × 0.001 = 99.995 → 100.00, which reaches the minimum: no minimum line
    assert amounts(inv) == [("usage", "100.00")]
    assert str(inv.subtotal) == "100.00"


def test_minimum_in_jpy_on_a_prorated_month() -> None:
    catalog = catalog_with(plan(currency="JPY", fixed_fee="5000", minimum_commitment="8000"))

    inv = invoice(catalog, account_of(catalog, start="2026-11-30"))

    # fixed: 5000 × 1 / 30 = 166.66… → 167; minimum: 8000 × 1 / 30 = 266.66… → 267
    # minimum line: 267 − 167 = 100
    assert amounts(inv) == [("fixed", "167"), ("minimum", "100")]
    assert str(inv.subtotal) == "267"


# --- tax -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fee", "tax_rate", "currency", "tax", "total"),
    [
        # 1.50 × 0.07 = 0.105 → 0.11 (exactly half: up); 1.50 + 0.11 = 1.61
        ("1.50", "0.07", "USD", "0.11", "1.61"),
        # 20.10 × 0.25 = 5.025 → 5.03; 20.10 + 5.03 = 25.13
        ("20.10", "0.25", "USD", "5.03", "25.13"),
        # 0.10 × 0.05 = 0.005 → 0.01; 0.10 + 0.01 = 0.11
        ("0.10", "0.05", "USD", "0.01", "0.11"),
        # 1.49 × 0.07 = 0.1043 → 0.10
        ("1.49", "0.07", "USD", "0.10", "1.59"),
        # 6.45 × 0.055 = 0.35475 → 0.35; 6.45 + 0.35 = 6.80
        ("6.45", "0.055", "EUR", "0.35", "6.80"),
        # 24,701 × 0.10 = 2,470.1 → 2470
        ("24701", "0.10", "JPY", "2470", "27171"),
        # 5 × 0.1 = 0.5 → 1 (JPY, exactly half)
        ("5", "0.1", "JPY", "1", "6"),
        # 1.001 × 0.5 = 0.5005 → 0.501 (KWD, exactly half)
        ("1.001", "0.5", "KWD", "0.501", "1.502"),
        # no tax rate given: 0
        ("10.00", None, "USD", "0.00", "10.00"),
    ],
)
def test_tax_is_rounded_half_up_on_the_subtotal_and_added_to_it(
    fee: str, tax_rate: str | None, currency: str, tax: str, total: str
) -> None:
    catalog = catalog_with(plan(currency=currency, fixed_fee=fee))
    account = account_of(catalog, **({"tax_rate": tax_rate} if tax_rate else {}))

    document = invoice(catalog, account).to_json()

    # Each fee is written with its currency's minor digits: the subtotal is the fee as is.
    assert (document["subtotal"], document["tax"], document["total"]) == (fee, tax, total)


def test_tax_applies_to_the_subtotal_including_the_minimum_line() -> None:
    catalog = catalog_with(plan(fixed_fee="49.00", minimum_commitment="100.00"))

    inv = invoice(catalog, account_of(catalog, tax_rate="0.20"))

    # subtotal 49.00 + minimum 51.00 = 100.00; tax 100.00 × 0.20 = 20.00
    assert (str(inv.subtotal), str(inv.tax), str(inv.total)) == ("100.00", "20.00", "120.00")


# --- lines -----------------------------------------------------------------------------------

EU = {"region": ["eu-west-1", "eu-central-1"]}
US = {"region": ["us-west-2", "us-east-1"]}
LINES_PLAN = plan(
    [
        {
            "meter": "api_requests",
            "model": "graduated",
            "tiers": [
                {"up_to": 1000000, "unit_price": "0"},
                {"up_to": 10000000, "unit_price": "0.000002", "flat_fee": "5.00"},
                {"up_to": None, "unit_price": "0.000001"},
            ],
        },
        {
            "meter": "storage_gb_hours",
            "model": "per_unit",
            "unit_price": "0.00012",
            "description": "Storage (EU)",
            "filters": EU,
        },
        {
            "meter": "storage_gb_hours",
            "model": "per_unit",
            "unit_price": "0.00010",
            "description": "Storage (US)",
            "filters": US,
        },
        {"meter": "exports", "model": "package", "package_size": 1000, "package_price": "0.50"},
    ],
    fixed_fee="49.00",
)


def test_every_charge_gets_a_usage_line_even_with_no_usage() -> None:
    catalog = catalog_with(LINES_PLAN)

    lines = [line_view(line) for line in invoice(catalog, account_of(catalog)).to_json()["lines"]]

    assert lines == [
        {
            "kind": "usage",
            "meter": "api_requests",
            "description": "API requests",
            "quantity": "0",
            "amount": "0.00",
        },
        {
            "kind": "usage",
            "meter": "storage_gb_hours",
            "filters": {"region": ["eu-west-1", "eu-central-1"]},
            "description": "Storage (EU)",
            "quantity": "0",
            "amount": "0.00",
        },
        {
            "kind": "usage",
            "meter": "storage_gb_hours",
            "filters": {"region": ["us-west-2", "us-east-1"]},
            "description": "Storage (US)",
            "quantity": "0",
            "amount": "0.00",
        },
        {
            "kind": "usage",
            "meter": "exports",
            "description": "Exports",
            "quantity": "0",
            "amount": "0.00",
        },
        {"kind": "fixed", "description": "Test plan", "quantity": "1", "amount": "49.00"},
    ]


def test_filters_appear_only_on_lines_of_filtered_charges() -> None:
    catalog = catalog_with(LINES_PLAN)

    lines = invoice(catalog, account_of(catalog)).to_json()["lines"]

    assert ["filters" in line for line in lines] == [False, True, True, False, False]
    assert ["meter" in line for line in lines] == [True, True, True, True, False]


def test_meter_without_description_is_described_by_its_name() -> None:
    catalog = catalog_with(
        plan([{"meter": "storage_gb_hours", "model": "per_unit", "unit_price": "1"}])
    )

    line = invoice(catalog, account_of(catalog)).to_json()["lines"][0]

    assert line["description"] == "storage_gb_hours"


def test_plan_without_fixed_fee_or_minimum_has_only_usage_lines() -> None:
    catalog = catalog_with(
        plan([{"meter": "api_requests", "model": "per_unit", "unit_price": "1"}])
    )

    inv = invoice(catalog, account_of(catalog))

    assert [line.kind for line in inv.lines] == ["usage"]


def test_filtered_usage_lines_price_only_the_events_that_pass_their_filters() -> None:
    catalog = catalog_with(LINES_PLAN)
    accounts = accounts_of(catalog, {})
    run = rate(
        catalog,
        accounts,
        [
            event("s1", "storage_gb_hours", '"10000"', dimensions={"region": "eu-west-1"}),
            event("s2", "storage_gb_hours", '"2000"', dimensions={"region": "eu-central-1"}),
            event("s3", "storage_gb_hours", "5000.0", dimensions={"region": "us-east-1"}),
            event("s4", "storage_gb_hours", '"500"', dimensions={"region": "ap-south-1"}),
            event("s5", "storage_gb_hours", '"700"'),
        ],
    )

    inv = invoice(catalog, accounts.accounts[0], run.ledger.for_account("acct-1", "2026-11"))

    # EU: 10,000 + 2,000 = 12,000 × 0.00012 = 1.44
    # US: 5,000 × 0.00010 = 0.5 → 0.50
    # ap-south-1 and the event without a region pass neither filter
    lines = inv.to_json()["lines"]
    assert [(line["quantity"], line["amount"]) for line in lines[1:3]] == [
        ("12000", "1.44"),
        ("5000", "0.50"),
    ]


def test_usage_line_quantities_are_exact_decimal_strings() -> None:
    catalog = catalog_with(
        plan(
            [
                {"meter": "api_requests", "model": "per_unit", "unit_price": "0"},
                {"meter": "storage_gb_hours", "model": "per_unit", "unit_price": "0"},
                {"meter": "seats", "model": "per_unit", "unit_price": "0"},
            ]
        )
    )
    accounts = accounts_of(catalog, {})
    run = rate(
        catalog,
        accounts,
        [
            # 1.534e6 as a JSON number with an exponent
            event("a", "api_requests", "1.534e6"),
            # a decimal string with trailing zeros
            event("s", "storage_gb_hours", '"12345.50"'),
            # the smallest quantity allowed
            event("t", "seats", "0.000000000001"),
        ],
    )

    inv = invoice(catalog, accounts.accounts[0], run.ledger.for_account("acct-1", "2026-11"))

    assert [line["quantity"] for line in inv.to_json()["lines"]] == [
        "1534000",
        "12345.5",
        "0.000000000001",
    ]


# --- the JSON document -----------------------------------------------------------------------

# The contract's section 2 catalog, with descriptions that give section 4's line labels.
CONTRACT_CATALOG: dict[str, Any] = {
    "meters": [
        {
            "name": "api_requests",
            "unit": "request",
            "aggregation": "sum",
            "description": "API requests",
        },
        {"name": "storage_gb_hours", "unit": "GB-hour", "aggregation": "sum"},
        {"name": "exports", "unit": "export", "aggregation": "count", "description": "Exports"},
    ],
    "plans": [
        {
            "id": "pro",
            "name": "Pro",
            "currency": "USD",
            "fixed_fee": "49.00",
            "minimum_commitment": "100.00",
            "charges": [
                {
                    "meter": "api_requests",
                    "model": "graduated",
                    "tiers": [
                        {"up_to": 1000000, "unit_price": "0"},
                        {"up_to": 10000000, "unit_price": "0.000002", "flat_fee": "5.00"},
                        {"up_to": None, "unit_price": "0.000001"},
                    ],
                },
                {
                    "meter": "storage_gb_hours",
                    "model": "per_unit",
                    "unit_price": "0.00012",
                    "description": "Storage (EU)",
                    "filters": {"region": ["eu-west-1", "eu-central-1"]},
                },
                {
                    "meter": "exports",
                    "model": "package",
                    "package_size": 1000,
                    "package_price": "0.50",
                },
            ],
        }
    ],
}
CONTRACT_ACCOUNTS: dict[str, Any] = {
    "accounts": [
        {
            "id": "acct-1",
            "name": "Acme Ltd",
            "email": "billing@acme.example",
            "plan": "pro",
            "timezone": "Europe/Paris",
            "tax_rate": "0.20",
            "start": "2026-10-10",
            "end": None,
        }
    ]
}


def contract_invoice() -> dict[str, Any]:
    catalog = parse_catalog(CONTRACT_CATALOG)
    account = parse_accounts(CONTRACT_ACCOUNTS, catalog).accounts[0]
    run = rate(
        catalog,
        parse_accounts(CONTRACT_ACCOUNTS, catalog),
        [
            event("r1", "api_requests", "1200000", "2026-11-03T09:15:00+01:00"),
            event("r2", "api_requests", '"334000"', "2026-11-17T18:40:12Z"),
        ],
    )
    return build_invoice(
        account,
        catalog.plans_by_id["pro"],
        catalog,
        Period.parse("2026-11"),
        run.ledger.for_account("acct-1", "2026-11"),
        number=invoice_number(42, ISSUED),
        issued_at=ISSUED,
    ).to_json()


def test_contract_section_4_invoice_is_reproduced_exactly() -> None:
    document = contract_invoice()
    lines = document.pop("lines")

    # api_requests: 534,000 in tier 2 at 0.000002 = 1.068, + flat fee 5.00 = 6.068 → 6.07
    # lines: 6.07 + 0.00 + 0.00 + 49.00 = 55.07 < 100.00 → minimum line 100.00 − 55.07 = 44.93
    # subtotal 100.00; tax 100.00 × 0.20 = 20.00; total 120.00
    assert document == {
        "invoice_number": "INV-2026-000042",
        "account_id": "acct-1",
        "period": "2026-11",
        "period_start": "2026-11-01T00:00:00+01:00",
        "period_end": "2026-12-01T00:00:00+01:00",
        "issued_at": "2026-12-01T01:15:00Z",
        "currency": "USD",
        "subtotal": "100.00",
        "tax": "20.00",
        "total": "120.00",
        # The contract's example draws a 120.00 grant; this account has none (no grants yet):
        # nothing drawn, all 120.00 due.
        "credits": [],
        "credits_applied": "0.00",
        "amount_due": "120.00",
    }
    assert [line_view(line) for line in lines] == [
        {
            "kind": "usage",
            "meter": "api_requests",
            "description": "API requests",
            "quantity": "1534000",
            "amount": "6.07",
        },
        {
            "kind": "usage",
            "meter": "storage_gb_hours",
            "filters": {"region": ["eu-west-1", "eu-central-1"]},
            "description": "Storage (EU)",
            "quantity": "0",
            "amount": "0.00",
        },
        {
            "kind": "usage",
            "meter": "exports",
            "description": "Exports",
            "quantity": "0",
            "amount": "0.00",
        },
        {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
        {
            "kind": "minimum",
            "description": "Minimum commitment",
            "quantity": "1",
            "amount": "44.93",
        },
    ]


def test_contract_invoice_has_exactly_the_contract_top_level_keys_in_order() -> None:
    assert list(contract_invoice()) == [
        "invoice_number",
        "account_id",
        "period",
        "period_start",
        "period_end",
        "issued_at",
        "currency",
        "lines",
        "subtotal",
        "tax",
        "total",
        "credits",
        "credits_applied",
        "amount_due",
    ]


def test_contract_invoice_lines_carry_only_documented_extras_and_survive_json() -> None:
    document = contract_invoice()

    for line in document["lines"]:
        # the contract's keys come first, in the contract's order
        assert [key for key in line if key in CONTRACT_LINE_KEYS] == [
            key for key in CONTRACT_LINE_KEYS if key in line
        ]
        assert set(line) - set(CONTRACT_LINE_KEYS) <= {"unit", "details"}
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    ("sequence", "issued_at", "expected"),
    [
        (42, ISSUED, "INV-2026-000042"),
        (1, ISSUED, "INV-2026-000001"),
        (999999, ISSUED, "INV-2026-999999"),
        (1234567, ISSUED, "INV-2026-1234567"),
    ],
)
def test_invoice_number_format(sequence: int, issued_at: datetime, expected: str) -> None:
    assert invoice_number(sequence, issued_at) == expected


def test_invoice_sequence_starts_at_1() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        invoice_number(0, ISSUED)


def test_issued_at_is_written_in_utc_with_z_whatever_zone_it_was_given_in() -> None:
    catalog = catalog_with(plan())
    account = account_of(catalog)
    paris_time = datetime(2026, 12, 1, 2, 15, tzinfo=zone("Europe/Paris"))

    document = build_invoice(
        account,
        catalog.plans_by_id["p"],
        catalog,
        NOV,
        {},
        number="INV-2026-000001",
        issued_at=paris_time,
    ).to_json()

    assert document["issued_at"] == "2026-12-01T01:15:00Z"


# --- aggregations through rate_records -------------------------------------------------------

AGGREGATION_PLAN = plan(
    [
        {"meter": "api_requests", "model": "per_unit", "unit_price": "1"},
        {"meter": "exports", "model": "per_unit", "unit_price": "1"},
        {"meter": "seats", "model": "per_unit", "unit_price": "1"},
    ]
)


def aggregated(lines: list[str]) -> dict[str, str]:
    catalog = catalog_with(AGGREGATION_PLAN)
    accounts = accounts_of(catalog, {})
    run = rate(catalog, accounts, lines)
    inv = invoice(catalog, accounts.accounts[0], run.ledger.for_account("acct-1", "2026-11"))
    return {line["meter"]: line["quantity"] for line in inv.to_json()["lines"]}


def test_sum_aggregation_adds_the_quantities() -> None:
    quantities = aggregated(
        [
            event("a1", "api_requests", "1200000"),
            event("a2", "api_requests", '"334000.5"'),
            event("a3", "api_requests", "0"),
        ]
    )

    # 1,200,000 + 334,000.5 + 0
    assert quantities["api_requests"] == "1534000.5"


def test_count_aggregation_counts_events_and_ignores_quantity() -> None:
    quantities = aggregated(
        [
            event("e1", "exports", "1", dimensions={"format": "csv"}),
            event("e2", "exports", "40"),
            event("e3", "exports", "0"),
            event("e4", "exports", '"0.5"'),
        ]
    )

    # four events, whatever their quantities (0 included)
    assert quantities["exports"] == "4"


def test_max_aggregation_is_the_peak_in_the_period() -> None:
    quantities = aggregated(
        [
            event("s1", "seats", "3", "2026-11-01T00:00:00+01:00"),
            event("s2", "seats", "12", "2026-11-12T08:00:00+01:00"),
            event("s3", "seats", "7", "2026-11-25T08:00:00+01:00"),
        ]
    )

    # the peak, not the last value (7) nor the sum (22)
    assert quantities["seats"] == "12"


def test_max_aggregation_ignores_events_of_other_periods() -> None:
    quantities = aggregated(
        [
            # 23:59:59 on 31 October in Paris: October's, not November's
            event("s0", "seats", "40", "2026-10-31T23:59:59+01:00"),
            event("s1", "seats", "3", "2026-11-01T00:00:00+01:00"),
        ]
    )

    assert quantities["seats"] == "3"


def test_aggregations_with_no_events_are_zero() -> None:
    assert aggregated([]) == {"api_requests": "0", "exports": "0", "seats": "0"}


def test_duplicate_event_id_counts_once_and_the_first_one_wins() -> None:
    catalog = catalog_with(AGGREGATION_PLAN)
    accounts = accounts_of(catalog, {})

    run = rate(
        catalog,
        accounts,
        [event("dup", "api_requests", "5"), event("dup", "api_requests", "999")],
    )

    assert run.summary.duplicates == 1
    assert run.ledger.for_account("acct-1", "2026-11")["api_requests"].total.quantity == D(5)


# --- periods in the account's zone -----------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "period"),
    [
        # 23:30 local on 30 November in New York (EST, -05:00)
        ("2026-12-01T04:30:00Z", "2026-11"),
        ("2026-11-30T23:30:00-05:00", "2026-11"),
        # local midnight on 1 December: December's
        ("2026-12-01T05:00:00Z", "2026-12"),
        # local midnight on 1 November (still EDT, -04:00)
        ("2026-11-01T04:00:00Z", "2026-11"),
        ("2026-11-01T03:59:59Z", "2026-10"),
    ],
)
def test_event_lands_in_the_period_of_the_account_zone(timestamp: str, period: str) -> None:
    catalog = catalog_with(AGGREGATION_PLAN)
    accounts = accounts_of(catalog, {"timezone": "America/New_York"})

    run = rate(catalog, accounts, [event("e", "api_requests", "1", timestamp)])

    assert [key.period for key in run.ledger.usage] == [period]


@pytest.mark.parametrize(
    ("tz", "period", "start", "end"),
    [
        # DST ends in New York on Sunday 1 November 2026 at 02:00: midnight is still EDT
        ("America/New_York", "2026-11", "2026-11-01T00:00:00-04:00", "2026-12-01T00:00:00-05:00"),
        # DST starts in Paris on Sunday 29 March 2026
        ("Europe/Paris", "2026-03", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"),
        ("Europe/Paris", "2026-11", "2026-11-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00"),
        ("Pacific/Kiritimati", "2026-11", "2026-11-01T00:00:00+14:00", "2026-12-01T00:00:00+14:00"),
        # Lord Howe's half-hour DST starts on Sunday 4 October 2026 at 02:00 (+10:30 → +11:00)
        (
            "Australia/Lord_Howe",
            "2026-10",
            "2026-10-01T00:00:00+10:30",
            "2026-11-01T00:00:00+11:00",
        ),
        # and ends on Sunday 5 April 2026 (+11:00 → +10:30)
        (
            "Australia/Lord_Howe",
            "2026-04",
            "2026-04-01T00:00:00+11:00",
            "2026-05-01T00:00:00+10:30",
        ),
        ("UTC", "2026-12", "2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_period_bounds_are_local_midnights(tz: str, period: str, start: str, end: str) -> None:
    p = Period.parse(period)

    assert p.start(zone(tz)).isoformat() == start
    assert p.end(zone(tz)).isoformat() == end


def test_lord_howe_offsets_match_zoneinfo() -> None:
    tz = zone("Australia/Lord_Howe")
    october = Period(2026, 10)

    assert october.start(tz).utcoffset() == timedelta(hours=10, minutes=30)
    assert october.end(tz).utcoffset() == timedelta(hours=11)


@pytest.mark.parametrize(
    ("period", "days"),
    [("2028-02", 29), ("2026-02", 28), ("2100-02", 28), ("2000-02", 29), ("2026-11", 30)],
)
def test_period_days(period: str, days: int) -> None:
    assert Period.parse(period).days == days


def test_invoice_period_bounds_follow_the_account_zone() -> None:
    catalog = catalog_with(plan())

    document = invoice(catalog, account_of(catalog, timezone="America/New_York")).to_json()

    assert (document["period_start"], document["period_end"]) == (
        "2026-11-01T00:00:00-04:00",
        "2026-12-01T00:00:00-05:00",
    )


# --- invoice_period --------------------------------------------------------------------------


def test_every_overlapping_account_gets_exactly_one_invoice_even_at_zero() -> None:
    catalog = catalog_with(AGGREGATION_PLAN)
    accounts = accounts_of(
        catalog,
        {},  # acct-1: always subscribed
        {"end": "2026-11-01"},  # acct-2: ended before November (end exclusive)
        {"start": "2026-12-01"},  # acct-3: starts after November
        {"start": "2026-11-30"},  # acct-4: one day in November
        {"end": "2026-11-02"},  # acct-5: one day in November
        {"start": "2026-01-01", "end": "2026-10-15"},  # acct-6: long gone
        {"start": "2027-01-01"},  # acct-7: far in the future
        {"start": "2026-10-10", "timezone": "Asia/Tokyo"},  # acct-8
    )
    run = rate(
        catalog,
        accounts,
        [
            event("a", "api_requests", "5"),
            event("b", "api_requests", "7", "2026-10-10T12:00:00Z"),
        ],
    )

    invoices = invoice_period(NOV, catalog, accounts, run.ledger, ISSUED, first_sequence=7)

    assert [(inv.account_id, inv.invoice_number) for inv in invoices] == [
        ("acct-1", "INV-2026-000007"),
        ("acct-4", "INV-2026-000008"),
        ("acct-5", "INV-2026-000009"),
        ("acct-8", "INV-2026-000010"),
    ]
    assert [str(inv.total) for inv in invoices] == ["5.00", "0.00", "0.00", "0.00"]


def test_account_with_no_overlap_gets_no_invoice() -> None:
    catalog = catalog_with(plan(fixed_fee="10.00"))
    accounts = accounts_of(catalog, {"end": "2026-11-01"}, {"start": "2026-12-01"})

    assert invoice_period(NOV, catalog, accounts, rate(catalog, accounts, []).ledger, ISSUED) == []


# --- invoice_run_clock -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        # New York's November ends 2026-12-01T05:00Z, Paris's at 2026-11-30T23:00Z: + 1 h
        (["Europe/Paris", "America/New_York"], datetime(2026, 12, 1, 6, tzinfo=UTC)),
        # Paris only: 2026-11-30T23:00Z + 1 h
        (["Europe/Paris"], datetime(2026, 12, 1, 0, tzinfo=UTC)),
        # Kiritimati (+14): 2026-11-30T10:00Z + 1 h
        (["Pacific/Kiritimati"], datetime(2026, 11, 30, 11, tzinfo=UTC)),
        # Pago Pago (-11) ends last: 2026-12-01T11:00Z + 1 h
        (["Pacific/Kiritimati", "Pacific/Pago_Pago"], datetime(2026, 12, 1, 12, tzinfo=UTC)),
    ],
)
def test_invoice_run_clock_is_the_latest_period_end_plus_one_hour(
    zones: list[str], expected: datetime
) -> None:
    catalog = catalog_with(plan())
    accounts = accounts_of(catalog, *({"timezone": tz} for tz in zones))

    assert invoice_run_clock(NOV, accounts) == expected


def test_invoice_run_clock_takes_a_grace_time() -> None:
    catalog = catalog_with(plan())
    accounts = accounts_of(catalog, {"timezone": "Europe/Paris"})

    # 2026-11-30T23:00Z + 2 h
    assert invoice_run_clock(NOV, accounts, timedelta(hours=2)) == datetime(
        2026, 12, 1, 1, tzinfo=UTC
    )


# --- the example files -----------------------------------------------------------------------

# EXAMPLE_INVOICES and the other expectations for the example files are worked out by
# hand in tests/support/examples.py.


@pytest.fixture(scope="module")
def example_run(example_catalog: Catalog, example_accounts: Accounts) -> RatingRun:
    records = (EXAMPLES / "events.jsonl").read_bytes().splitlines()
    now = invoice_run_clock(NOV, example_accounts)
    return rate_records(records, example_catalog, example_accounts, now)


@pytest.fixture(scope="module")
def example_invoices(
    example_run: RatingRun, example_catalog: Catalog, example_accounts: Accounts
) -> dict[str, dict[str, Any]]:
    now = invoice_run_clock(NOV, example_accounts)
    invoices = invoice_period(NOV, example_catalog, example_accounts, example_run.ledger, now)
    return {inv.account_id: inv.to_json() for inv in invoices}


def test_example_run_clock_is_new_york_end_of_november_plus_one_hour(
    example_accounts: Accounts,
) -> None:
    assert invoice_run_clock(NOV, example_accounts) == datetime(2026, 12, 1, 6, tzinfo=UTC)


def test_example_summary(example_run: RatingRun) -> None:
    assert example_run.summary.to_json() == EXAMPLE_SUMMARY
    assert example_run.summary.balanced


def test_example_rejections_by_line(example_run: RatingRun) -> None:
    # 0-based positions in events.jsonl
    assert [(r.position, r.rejection.reason) for r in example_run.rejected] == [
        (15, "NOT_SUBSCRIBED"),  # a2-api-early: 10 Nov, before acct-2's start
        (28, "NOT_SUBSCRIBED"),  # a6-api-late: 21 Nov local, acct-6's (exclusive) end
        (29, "MALFORMED_JSON"),  # bad-1: cut short
        (30, "UNKNOWN_ACCOUNT"),  # bad-2: acct-99
        (31, "UNKNOWN_METER"),  # bad-3: gpu_hours
        (32, "SCHEMA_INVALID"),  # bad-4: quantity "-5"
        (33, "FUTURE_TIMESTAMP"),  # bad-5: 2027-01-01
    ]


def test_example_october_seat_peak_stays_in_october(example_run: RatingRun) -> None:
    assert example_run.ledger.for_account("acct-1", "2026-10")["seats"].total.quantity == D(40)


def test_example_invoices_one_per_account(example_invoices: dict[str, dict[str, Any]]) -> None:
    assert list(example_invoices) == ["acct-1", "acct-2", "acct-3", "acct-4", "acct-5", "acct-6"]


@pytest.mark.parametrize("account_id", list(EXAMPLE_INVOICES))
def test_example_invoice(account_id: str, example_invoices: dict[str, dict[str, Any]]) -> None:
    expected = EXAMPLE_INVOICES[account_id]
    document = example_invoices[account_id]

    assert document["currency"] == expected["currency"]
    assert [
        (line["kind"], line.get("meter"), line["quantity"], line["amount"])
        for line in document["lines"]
    ] == expected["lines"]
    assert (document["subtotal"], document["tax"], document["total"]) == expected["totals"]


def test_example_totals(example_invoices: dict[str, dict[str, Any]]) -> None:
    assert {
        account: (document["total"], document["currency"])
        for account, document in example_invoices.items()
    } == {
        "acct-1": ("236.72", "USD"),
        "acct-2": ("50.00", "USD"),
        "acct-3": ("13.41", "EUR"),
        "acct-4": ("27171", "JPY"),
        "acct-5": ("19.994", "KWD"),
        "acct-6": ("6.80", "EUR"),
    }


def test_example_prorated_account_dates(example_accounts: Accounts) -> None:
    # acct-2 starts 16 Nov: 15 active days; acct-6 ends 21 Nov (exclusive): 20 active days
    assert NOV.active_days(example_accounts.by_id["acct-2"].start, None) == 15
    assert NOV.active_days(None, example_accounts.by_id["acct-6"].end) == 20
    assert example_accounts.by_id["acct-6"].end == date(2026, 11, 21)
