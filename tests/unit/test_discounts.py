"""Discounts (CONTRACT.md 2a): validated at the edge, applied in listed order after every
usage, fixed and minimum line, never taking the subtotal below 0. Amounts worked by hand."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import CatalogError, parse_accounts, parse_catalog
from billing.core.discounts import Discount
from billing.core.invoice import build_invoice, discount_line, invoice_number
from billing.core.money import Money
from billing.core.periods import Period
from tests.unit.test_invoice import CONTRACT_ACCOUNTS, CONTRACT_CATALOG, ISSUED, event, rate

pytestmark = pytest.mark.unit


def invoice_with(discounts: list[dict[str, Any]], period: str = "2026-11") -> dict[str, Any]:
    """The contract's acct-1 (usage 6.07, fixed 49.00, minimum 44.93: 100.00 before any
    discount; tax 20%) with `discounts`."""
    accounts = copy.deepcopy(CONTRACT_ACCOUNTS)
    accounts["accounts"][0]["discounts"] = discounts
    catalog = parse_catalog(CONTRACT_CATALOG)
    parsed = parse_accounts(accounts, catalog)
    run = rate(
        catalog,
        parsed,
        [
            event("r1", "api_requests", "1200000", "2026-11-03T09:15:00+01:00"),
            event("r2", "api_requests", '"334000"', "2026-11-17T18:40:12Z"),
        ],
    )
    return build_invoice(
        parsed.accounts[0],
        catalog.plans_by_id["pro"],
        catalog,
        Period.parse(period),
        run.ledger.for_account("acct-1", period),
        number=invoice_number(42, ISSUED),
        issued_at=ISSUED,
    ).to_json()


LAUNCH = {"id": "launch", "percent": "10", "from": "2026-10", "periods": 3}
GOODWILL = {"id": "goodwill", "amount": "20.00", "from": "2026-11", "periods": 1}


def test_a_percentage_then_an_amount_in_listed_order() -> None:
    document = invoice_with([LAUNCH, GOODWILL])
    # launch: 10% of 100.00 = 10.00 → 90.00; goodwill: 20.00 of 90.00 → 70.00
    # tax 70.00 × 0.20 = 14.00; total 84.00
    assert document["lines"][-2:] == [
        {
            "kind": "discount",
            "discount": "launch",
            "description": "Discount launch (10%)",
            "quantity": "1",
            "amount": "-10.00",
        },
        {
            "kind": "discount",
            "discount": "goodwill",
            "description": "Discount goodwill",
            "quantity": "1",
            "amount": "-20.00",
        },
    ]
    assert (document["subtotal"], document["tax"], document["total"]) == ("70.00", "14.00", "84.00")
    assert (document["credits_applied"], document["amount_due"]) == ("0.00", "84.00")


def test_the_order_matters_an_amount_first_then_a_percentage() -> None:
    document = invoice_with([GOODWILL, LAUNCH])
    # goodwill: 20.00 of 100.00 → 80.00; launch: 10% of 80.00 = 8.00 → 72.00
    # tax 72.00 × 0.20 = 14.40; total 86.40
    assert [line["amount"] for line in document["lines"][-2:]] == ["-20.00", "-8.00"]
    assert (document["subtotal"], document["tax"], document["total"]) == ("72.00", "14.40", "86.40")


def test_an_amount_larger_than_what_remains_takes_only_what_remains() -> None:
    document = invoice_with([LAUNCH, {**GOODWILL, "amount": "500.00"}])
    # launch → 90.00 remains; goodwill takes min(500.00, 90.00) = 90.00 → 0.00
    assert document["lines"][-1]["amount"] == "-90.00"
    assert (document["subtotal"], document["tax"], document["total"]) == ("0.00", "0.00", "0.00")


@pytest.mark.parametrize(
    ("period", "applied"),
    [
        ("2026-10", ["launch"]),  # launch's first period (from 2026-10, 3 periods)
        ("2026-11", ["launch", "goodwill"]),  # goodwill's only period
        ("2026-12", ["launch"]),  # launch's last period
        ("2027-01", []),
    ],
)
def test_a_discount_applies_only_to_the_periods_it_names(period: str, applied: list[str]) -> None:
    document = invoice_with([LAUNCH, GOODWILL], period)
    assert [line["discount"] for line in document["lines"] if "discount" in line] == applied


@pytest.mark.parametrize(
    ("percent", "remaining", "currency", "expected"),
    [
        ("10", "100.05", "USD", "-10.01"),  # 10.005 → 10.01, half up
        ("12.5", "55.07", "USD", "-6.88"),  # 6.88375 → 6.88
        ("10", "1005", "JPY", "-101"),  # 100.5 → 101
        ("33.333", "1.000", "KWD", "-0.333"),  # 0.33333 → 0.333
        ("100", "0.00", "USD", "0.00"),  # nothing remains: 0.00, never -0.00
        ("100", "19.99", "USD", "-19.99"),
    ],
)
def test_a_percentage_is_rounded_once_half_up(
    percent: str, remaining: str, currency: str, expected: str
) -> None:
    discount = Discount.model_validate(
        {"id": "d", "percent": percent, "from": "2026-11", "periods": 1}
    )
    line = discount_line(discount, Money(Decimal(remaining), currency))
    assert str(line.amount) == expected


@pytest.mark.parametrize(
    ("discount", "message"),
    [
        ({"id": "x", "percent": "10", "amount": "1.00"}, "needs exactly one of percent or amount"),
        ({"id": "x"}, "needs exactly one of percent or amount"),
        ({"id": "x", "percent": "100.01"}, "percent: is a percentage above 0 and at most 100"),
        ({"id": "x", "percent": "0"}, "percent: must be greater than 0"),
        ({"id": "x", "amount": "1.001"}, "amount: has more decimals than USD's minor unit (2)"),
        ({"id": "x", "amount": 1.5}, "amount: must be a decimal string"),
        ({"id": "x", "percent": "10", "from": "2026-13"}, 'from: must be a period like "2026-10"'),
        ({"id": "x", "percent": "10", "periods": 0}, "periods: Input should be greater than"),
        ({"id": "launch", "percent": "5"}, "discounts[1].id: 'launch' appears twice"),
    ],
)
def test_a_bad_discount_is_refused_naming_the_account_and_field(
    discount: dict[str, Any], message: str
) -> None:
    accounts = copy.deepcopy(CONTRACT_ACCOUNTS)
    accounts["accounts"][0]["discounts"] = [LAUNCH, {"from": "2026-11", "periods": 1, **discount}]
    with pytest.raises(CatalogError) as raised:
        parse_accounts(accounts, parse_catalog(CONTRACT_CATALOG))
    assert "accounts[0] (acct-1): discounts[1]" in str(raised.value)
    assert message in str(raised.value)


def test_a_stored_account_keeps_the_contract_s_field_names() -> None:
    accounts = copy.deepcopy(CONTRACT_ACCOUNTS)
    accounts["accounts"][0]["discounts"] = [LAUNCH]
    account = parse_accounts(accounts, parse_catalog(CONTRACT_CATALOG)).accounts[0]
    stored = account.model_dump(mode="json")
    assert stored["discounts"] == [
        {"id": "launch", "percent": "10", "amount": None, "from": "2026-10", "periods": 3}
    ]
    assert type(account).model_validate(stored) == account
