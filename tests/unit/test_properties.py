"""Property tests of the rating rules (CONTRACT.md section 3): exact Decimal arithmetic,
tiered pricing against an independent oracle, aggregates that merge in any order, and
invoices whose amounts add up and carry exactly their currency's minor unit.

The production rater's properties (any delivery of random usage, and the invoices made
from what it stored, against the oracles of tests/support) are in test_rater_properties.py."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from billing.core.catalog import (
    Accounts,
    Catalog,
    CatalogError,
    Meter,
    parse_accounts,
    parse_catalog,
)
from billing.core.invoice import Invoice
from billing.core.money import Money, MoneyError, exact, round_money
from billing.core.periods import Period
from billing.core.pricing import GraduatedCharge, PackageCharge, PerUnitCharge, VolumeCharge
from billing.core.usage import Aggregate, MeterUsage, UsageKey, UsageLedger, filter_keys
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records
from tests.support.invoice_oracle import MINOR_DIGITS, PLANS, rounded
from tests.support.invoice_oracle import price as price_oracle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SLOWER = settings(FAST, max_examples=25)


def oracle_context() -> Any:
    """Far more digits than any value here has: the oracle's arithmetic is exact."""
    return localcontext(prec=400)


def decimals(max_value: int, max_places: int, min_value: int = 0) -> st.SearchStrategy[Decimal]:
    """Exact Decimals built from an integer and an exponent (never through float)."""
    return st.integers(0, max_places).flatmap(
        lambda places: st.integers(min_value * 10**places, max_value * 10**places).map(
            lambda n: Decimal(n).scaleb(-places)
        )
    )


def text(value: Decimal) -> str:
    """A decimal string as a catalog writes it: plain, no exponent."""
    return format(value, "f")


# --- tiers and the tiered models ------------------------------------------------------------


@st.composite
def tier_lists(draw: st.DrawFn) -> list[dict[str, Decimal | None]]:
    """1 to 5 valid tiers: rising positive bounds, the last unbounded, prices and fees >= 0."""
    bounds = draw(
        st.lists(decimals(10_000, 3).filter(lambda d: d > 0), max_size=4, unique=True).map(sorted)
    )
    tiers: list[dict[str, Decimal | None]] = []
    for up_to in [*bounds, None]:
        tiers.append(
            {
                "up_to": up_to,
                "unit_price": draw(decimals(100, 6)),
                "flat_fee": draw(st.one_of(st.just(Decimal(0)), decimals(1_000, 2))),
            }
        )
    return tiers


def as_document(tiers: list[dict[str, Decimal | None]]) -> list[dict[str, str | None]]:
    return [{key: None if v is None else text(v) for key, v in tier.items()} for tier in tiers]


def graduated(tiers: list[dict[str, Decimal | None]]) -> GraduatedCharge:
    return GraduatedCharge.model_validate(
        {"meter": "m", "model": "graduated", "tiers": as_document(tiers)}
    )


def volume(tiers: list[dict[str, Decimal | None]]) -> VolumeCharge:
    return VolumeCharge.model_validate(
        {"meter": "m", "model": "volume", "tiers": as_document(tiers)}
    )


def graduated_oracle(tiers: list[dict[str, Decimal | None]], quantity: Decimal) -> Decimal:
    """Each tier (lower, up_to] prices the units inside it, and adds its flat fee once any
    quantity above 0 falls inside it."""
    total = Decimal(0)
    with oracle_context():
        lower = Decimal(0)
        for tier in tiers:
            upper = tier["up_to"]
            top = quantity if upper is None else min(quantity, upper)
            units = max(top - lower, Decimal(0))
            if units > 0:
                total += units * tier["unit_price"] + tier["flat_fee"]  # type: ignore[operator]
            if upper is None:
                break
            lower = upper
        return +total


def volume_oracle(tiers: list[dict[str, Decimal | None]], quantity: Decimal) -> Decimal:
    if quantity == 0:
        return Decimal(0)
    for tier in tiers:
        if tier["up_to"] is None or quantity <= tier["up_to"]:
            with oracle_context():
                return quantity * tier["unit_price"] + tier["flat_fee"]  # type: ignore[operator]
    raise AssertionError("the last tier is unbounded")


QUANTITIES = decimals(50_000, 6)


@FAST
@given(tiers=tier_lists(), a=QUANTITIES, b=QUANTITIES)
def test_graduated_price_is_monotone(
    tiers: list[dict[str, Decimal | None]], a: Decimal, b: Decimal
) -> None:
    charge = graduated(tiers)
    low, high = sorted((a, b))
    assert charge.price(low).amount <= charge.price(high).amount


@FAST
@given(tiers=tier_lists(), quantity=QUANTITIES)
def test_graduated_price_matches_the_oracle(
    tiers: list[dict[str, Decimal | None]], quantity: Decimal
) -> None:
    priced = graduated(tiers).price(quantity)
    assert priced.amount == graduated_oracle(tiers, quantity)
    assert priced.amount == sum((step.amount for step in priced.steps), Decimal(0))


@FAST
@given(
    tiers=tier_lists(),
    quantity=QUANTITIES,
    boundary=st.integers(0, 4),
    nudge=st.sampled_from(["-0.000001", "0", "0.000001"]),
)
def test_graduated_price_at_tier_boundaries(
    tiers: list[dict[str, Decimal | None]], quantity: Decimal, boundary: int, nudge: str
) -> None:
    # Quantities right at, just under and just over a bound (up_to is inclusive).
    bounds = [tier["up_to"] for tier in tiers if tier["up_to"] is not None]
    if bounds:
        quantity = max(bounds[boundary % len(bounds)] + Decimal(nudge), Decimal(0))
    assert graduated(tiers).price(quantity).amount == graduated_oracle(tiers, quantity)


@FAST
@given(tiers=tier_lists(), quantity=QUANTITIES)
def test_volume_price_is_non_negative_and_matches_the_oracle(
    tiers: list[dict[str, Decimal | None]], quantity: Decimal
) -> None:
    amount = volume(tiers).price(quantity).amount
    assert amount >= 0
    assert amount == volume_oracle(tiers, quantity)


@FAST
@given(
    size=decimals(10_000, 3).filter(lambda d: d > 0),
    price=decimals(1_000, 4),
    quantity=QUANTITIES,
)
def test_package_price_is_a_whole_number_of_packages(
    size: Decimal, price: Decimal, quantity: Decimal
) -> None:
    charge = PackageCharge.model_validate(
        {"meter": "m", "model": "package", "package_size": text(size), "package_price": text(price)}
    )
    amount = charge.price(quantity).amount
    assert amount >= 0
    with oracle_context():
        whole, rest = divmod(quantity, size)
        packages = whole + (1 if rest else 0)
        assert amount == packages * price
        if price:
            multiple = amount / price
            assert multiple == multiple.to_integral_value()
            assert multiple >= quantity / size
        else:
            assert amount == 0


@FAST
@given(price=decimals(1_000, 12), quantity=decimals(10**15, 12))
def test_per_unit_price_is_exact(price: Decimal, quantity: Decimal) -> None:
    charge = PerUnitCharge.model_validate(
        {"meter": "m", "model": "per_unit", "unit_price": text(price)}
    )
    with oracle_context():
        assert charge.price(quantity).amount == quantity * price


@FAST
@given(
    tiers=tier_lists(),
    size=decimals(10_000, 3).filter(lambda d: d > 0),
    price=decimals(1_000, 12),
    quantity=decimals(10**15, 12),
)
def test_every_models_amount_is_its_price_without_the_steps(
    tiers: list[dict[str, Decimal | None]], size: Decimal, price: Decimal, quantity: Decimal
) -> None:
    charges = [
        graduated(tiers),
        volume(tiers),
        PackageCharge.model_validate(
            {"meter": "m", "model": "package", "package_size": text(size), "package_price": "0.5"}
        ),
        PerUnitCharge.model_validate(
            {"meter": "m", "model": "per_unit", "unit_price": text(price)}
        ),
    ]
    for charge in charges:
        for amount_of in (quantity, Decimal(0)):
            # Equal digit for digit, exponent included: the running charge is the invoice's.
            assert repr(charge.amount(amount_of)) == repr(charge.price(amount_of).amount)
    # ...and both are the oracles' (the steps' sum is held to them above).
    assert charges[0].amount(quantity) == graduated_oracle(tiers, quantity)
    assert charges[1].amount(quantity) == volume_oracle(tiers, quantity)


# --- exactness at the contract's limits -----------------------------------------------------

# The largest quantity an event may carry: at most 1e15 with 12 digits after the point.
BIGGEST = Decimal("999999999999999.999999999999")


def test_graduated_price_is_exact_at_contract_limits() -> None:
    # One unbounded tier is per_unit by another name: the exact amount is
    # 909095909090909.090909090909 × 0.000000000011 = 10000.054999999999999999999999,
    # which rounds half up to 10000.05 (not 10000.06).
    quantity, price = Decimal("909095909090909.090909090909"), Decimal("0.000000000011")
    tiers: list[dict[str, Decimal | None]] = [
        {"up_to": None, "unit_price": price, "flat_fee": Decimal(0)}
    ]
    per_unit = PerUnitCharge.model_validate(
        {"meter": "m", "model": "per_unit", "unit_price": text(price)}
    )
    assert per_unit.price(quantity).amount == Decimal("10000.054999999999999999999999")
    for charge in (graduated(tiers), volume(tiers)):
        amount = charge.price(quantity).amount
        assert amount == Decimal("10000.054999999999999999999999"), type(charge).__name__
        assert round_money(amount, "USD") == Decimal("10000.05"), type(charge).__name__


def test_sum_aggregate_is_exact_at_contract_limits() -> None:
    usage = MeterUsage("sum")
    for _ in range(20):
        usage = usage.add(BIGGEST, [])
    with oracle_context():
        assert usage.total.quantity == BIGGEST * 20  # 19999999999999999.999999999980


def test_split_does_not_change_a_sum_at_contract_limits() -> None:
    # Ten events of 1e15 then six of 1e-12: 10000000000000000.000000000006 exactly.
    quantities = [Decimal("1000000000000000")] * 10 + [Decimal("0.000000000001")] * 6
    one_pass = MeterUsage("sum")
    for quantity in quantities:
        one_pass = one_pass.add(quantity, [])
    big, small = MeterUsage("sum"), MeterUsage("sum")
    for quantity in quantities[:10]:
        big = big.add(quantity, [])
    for quantity in quantities[10:]:
        small = small.add(quantity, [])
    # Split or not, the same events add up to the same quantity...
    assert big.merge(small).total.quantity == one_pass.total.quantity
    assert small.merge(big).total.quantity == one_pass.total.quantity
    # ...and that quantity is the exact sum.
    assert one_pass.total.quantity == Decimal("10000000000000000.000000000006")


# --- aggregates: any split, any merge order -------------------------------------------------

DIMENSIONS: list[dict[str, str]] = [
    {},
    {"region": "eu-west-1"},
    {"region": "eu-central-1"},
    {"region": "us-east-1"},
    {"region": "us-west-2"},
    {"region": "ap-south-1"},
    {"zone": "eu-west-1"},
    {"region": "eu-west-1", "tier": "gold"},
]
# acct-1 is on "pro" (storage charged through region filters), acct-3 on "starter-eur"
# (no filters at all).
LEDGER_ACCOUNTS = {"acct-1": "pro", "acct-3": "starter-eur"}

Event = tuple[str, str, Decimal, dict[str, str]]


def events(catalog: Catalog) -> st.SearchStrategy[list[Event]]:
    return st.lists(
        st.tuples(
            st.sampled_from(sorted(LEDGER_ACCOUNTS)),
            st.sampled_from([meter.name for meter in catalog.meters]),
            decimals(10**6, 6),
            st.sampled_from(DIMENSIONS),
        ),
        max_size=40,
    )


def ledger_of(batch: list[Event], catalog: Catalog) -> UsageLedger:
    ledger = UsageLedger()
    for account, meter, quantity, dimensions in batch:
        plan = catalog.plans_by_id[LEDGER_ACCOUNTS[account]]
        ledger.add(
            UsageKey(account, "2026-11", meter),
            catalog.meters_by_name[meter],
            quantity,
            filter_keys(plan, meter, dimensions),
        )
    return ledger


def passes(filters: dict[str, list[str]] | None, dimensions: dict[str, str]) -> bool:
    """The contract's filter rule: every filtered dimension has one of the listed values
    (an event without the dimension does not pass)."""
    return all(dimensions.get(key) in values for key, values in (filters or {}).items())


def aggregate_oracle(meter: Meter, quantities: list[Decimal]) -> Aggregate:
    if meter.aggregation == "count":
        return Aggregate(Decimal(len(quantities)), len(quantities))
    if meter.aggregation == "max":
        return Aggregate(max(quantities, default=Decimal(0)), len(quantities))
    with oracle_context():
        return Aggregate(sum(quantities, Decimal(0)), len(quantities))


def split(items: list[Event], cuts: list[int]) -> Iterator[list[Event]]:
    edges = [0, *sorted(cut % (len(items) + 1) for cut in cuts), len(items)]
    for start, end in itertools.pairwise(edges):
        yield items[start:end]


@FAST
@given(data=st.data())
def test_one_pass_aggregates_match_the_oracle(
    example_catalog: Catalog, data: st.DataObject
) -> None:
    batch = data.draw(events(example_catalog))
    ledger = ledger_of(batch, example_catalog)
    for account, plan_id in LEDGER_ACCOUNTS.items():
        plan = example_catalog.plans_by_id[plan_id]
        usage = ledger.for_account(account, "2026-11")
        for charge in plan.charges:
            meter = example_catalog.meters_by_name[charge.meter]
            passing = [
                quantity
                for who, name, quantity, dimensions in batch
                if who == account and name == charge.meter and passes(charge.filters, dimensions)
            ]
            expected = aggregate_oracle(meter, passing)
            if charge.meter not in usage:
                assert not passing
                continue
            assert usage[charge.meter].quantity_for(charge) == expected.quantity
            if charge.filters:
                got = usage[charge.meter].by_filter.get(charge.filter_key, Aggregate())
                assert got == expected
            else:
                assert usage[charge.meter].total == expected


@FAST
@given(data=st.data())
def test_any_split_and_merge_order_gives_the_one_pass_aggregates(
    example_catalog: Catalog, data: st.DataObject
) -> None:
    batch = data.draw(events(example_catalog))
    one_pass = ledger_of(batch, example_catalog)

    cuts = data.draw(st.lists(st.integers(0, 100), max_size=6))
    parts = [ledger_of(part, example_catalog) for part in split(batch, cuts)]
    order = data.draw(st.permutations(range(len(parts))))

    merged = UsageLedger()
    for index in order:
        merged.merge(parts[index])
    assert merged.usage == one_pass.usage

    # Any tree of merges of the MeterUsage values, not only a left fold.
    pending = [dict(part.usage) for part in parts]
    while len(pending) > 1:
        i = data.draw(st.integers(0, len(pending) - 1))
        left = pending.pop(i)
        j = data.draw(st.integers(0, len(pending) - 1))
        right = pending.pop(j)
        combined: dict[UsageKey, MeterUsage] = dict(left)
        for key, usage in right.items():
            combined[key] = combined[key].merge(usage) if key in combined else usage
        pending.append(combined)
    assert (pending[0] if pending else {}) == one_pass.usage


@FAST
@given(
    aggregation=st.sampled_from(["sum", "count", "max"]),
    quantities=st.lists(decimals(10**6, 6), min_size=1, max_size=20),
    data=st.data(),
)
def test_aggregate_merge_is_associative_and_commutative(
    aggregation: Any, quantities: list[Decimal], data: st.DataObject
) -> None:
    singles = [Aggregate().add(aggregation, quantity) for quantity in quantities]
    a, b, c = (
        data.draw(st.sampled_from(singles)),
        data.draw(st.sampled_from(singles)),
        data.draw(st.sampled_from(singles)),
    )
    assert a.merge(aggregation, b) == b.merge(aggregation, a)
    assert a.merge(aggregation, b).merge(aggregation, c) == a.merge(
        aggregation, b.merge(aggregation, c)
    )
    assert a.merge(aggregation, Aggregate()) == a
    folded = Aggregate()
    for single in singles:
        folded = folded.merge(aggregation, single)
    shuffled = Aggregate()
    for single in data.draw(st.permutations(singles)):
        shuffled = shuffled.merge(aggregation, single)
    assert folded == shuffled


# --- invoices from random usage on the example catalog --------------------------------------

PERIOD = Period(2026, 11)


@st.composite
def records(draw: st.DrawFn, catalog: Catalog, accounts: Accounts) -> list[bytes]:
    count = draw(st.integers(0, 30))
    out: list[bytes] = []
    for number in range(count):
        quantity = draw(
            st.one_of(
                decimals(2 * 10**7, 4),  # sometimes deep into the tiers
                decimals(100, 12),
            )
        )
        day = draw(st.integers(1, 30))
        seconds = draw(st.integers(0, 86_399))
        instant = datetime(2026, 11, day) + timedelta(seconds=seconds)
        event: dict[str, Any] = {
            "event_id": f"e-{number}",
            "account_id": draw(st.sampled_from([a.id for a in accounts.accounts])),
            "meter": draw(st.sampled_from([m.name for m in catalog.meters])),
            "quantity": text(quantity),
            "timestamp": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        dimensions = draw(st.sampled_from(DIMENSIONS))
        if dimensions:
            event["dimensions"] = dimensions
        out.append(json.dumps(event).encode())
    return out


def assert_no_float(value: object, where: str = "value") -> None:
    """Walk dataclasses, pydantic models, mappings and sequences: no float anywhere."""
    assert not isinstance(value, float), f"{where} is a float: {value!r}"
    if value is None or isinstance(value, str | bytes | bool | int | Decimal | date | ZoneInfo):
        return  # date covers datetime
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_no_float(getattr(value, field.name), f"{where}.{field.name}")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            assert_no_float(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            assert_no_float(key, f"{where} key")
            assert_no_float(item, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            assert_no_float(item, f"{where}[{index}]")
    else:
        raise AssertionError(f"{where}: unexpected {type(value).__name__} {value!r}")


def has_minor_digits(amount: Decimal, currency: str) -> bool:
    return amount.as_tuple().exponent == -MINOR_DIGITS[currency]


def amount_pattern(currency: str) -> re.Pattern[str]:
    digits = MINOR_DIGITS[currency]
    return re.compile(r"\d+" + (rf"\.\d{{{digits}}}" if digits else ""))


def refuse_number(text: str) -> Any:
    raise AssertionError(f"the invoice JSON has a bare number: {text}")


def check_invoice(invoice: Invoice, catalog: Catalog, accounts: Accounts) -> None:
    account = accounts.by_id[invoice.account_id]
    plan = catalog.plans_by_id[account.plan]
    currency = plan.currency
    assert invoice.currency == currency

    amounts = [line.amount for line in invoice.lines] + [invoice.subtotal, invoice.tax]
    amounts.append(invoice.total)
    for money in amounts:
        assert isinstance(money, Money)
        assert isinstance(money.amount, Decimal)
        assert money.currency == currency
        assert money.amount >= 0
        assert has_minor_digits(money.amount, currency), (currency, money.amount)

    with oracle_context():
        assert invoice.subtotal.amount == sum(
            (line.amount.amount for line in invoice.lines), Decimal(0)
        )
        expected_tax = (invoice.subtotal.amount * account.tax_rate).quantize(
            Decimal(1).scaleb(-MINOR_DIGITS[currency]), rounding=ROUND_HALF_UP
        )
        assert invoice.tax.amount == expected_tax
        assert invoice.total.amount == invoice.subtotal.amount + invoice.tax.amount
        assert invoice.total.amount == sum(
            (line.amount.amount for line in invoice.lines), invoice.tax.amount
        )

    usage_lines = [line for line in invoice.lines if line.kind == "usage"]
    # Each line's amount is its quantity priced by the oracle from the catalog's YAML,
    # rounded half up once.
    charges = PLANS[plan.id]["charges"]
    assert len(usage_lines) == len(charges)
    for line, charge in zip(usage_lines, charges, strict=True):
        assert line.meter == charge["meter"]
        assert line.amount.amount == rounded(price_oracle(charge, line.quantity), currency)
    assert [line.kind for line in invoice.lines].count("fixed") == (plan.fixed_fee is not None)
    assert_no_float(invoice, invoice.invoice_number)

    document = invoice.to_json()
    # Every amount and quantity is a string: the JSON holds no number at all.
    parsed = json.loads(json.dumps(document), parse_float=refuse_number, parse_int=refuse_number)
    assert parsed == document
    pattern = amount_pattern(currency)
    for key in ("subtotal", "tax", "total"):
        assert isinstance(document[key], str)
        assert pattern.fullmatch(document[key]), (key, document[key])
    for line in document["lines"]:
        assert pattern.fullmatch(line["amount"]), line
        assert re.fullmatch(r"\d+(\.\d*[1-9])?", line["quantity"]), line
        for detail in line.get("details", []):
            for key in ("quantity", "unit_price", "amount"):
                if key in detail:
                    assert re.fullmatch(r"\d+(\.\d+)?", detail[key]), detail


@SLOWER
@given(data=st.data())
def test_invoices_from_random_usage_add_up(
    example_catalog: Catalog, example_accounts: Accounts, data: st.DataObject
) -> None:
    batch = data.draw(records(example_catalog, example_accounts))
    now = invoice_run_clock(PERIOD, example_accounts)
    run = rate_records(batch, example_catalog, example_accounts, now)
    assert run.summary.balanced
    assert_no_float(run.ledger.usage, "ledger")

    invoices = invoice_period(PERIOD, example_catalog, example_accounts, run.ledger, now)
    # All six example accounts overlap November 2026 (acct-2 joins, acct-6 leaves in it).
    assert [invoice.account_id for invoice in invoices] == [
        account.id for account in example_accounts.accounts
    ]
    for invoice in invoices:
        check_invoice(invoice, example_catalog, example_accounts)


# --- nothing accepts a float ----------------------------------------------------------------

FLOATS = st.floats()  # any float at all, NaN and infinities included


@FAST
@given(value=FLOATS)
def test_money_refuses_floats(value: float) -> None:
    with pytest.raises(MoneyError):
        Money(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        exact(value)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        round_money(value, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(Decimal("1.00"), "USD").times(value)  # type: ignore[arg-type]
    with pytest.raises((MoneyError, TypeError)):
        Money(Decimal("1.00"), "USD") * value  # type: ignore[operator]


def test_money_refuses_the_classic_floats() -> None:
    with pytest.raises(MoneyError):
        Money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        exact(0.1)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        round_money(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(Decimal("0.10"), "USD").times(3.0)  # type: ignore[arg-type]
    assert exact("0.1") + exact("0.2") == exact("0.3")
    assert Money(Decimal("0.10"), "USD").times(3).amount == Decimal("0.30")


PRICE_KEYS = {
    "unit_price",
    "flat_fee",
    "package_price",
    "package_size",
    "fixed_fee",
    "minimum_commitment",
    "up_to",
}


def price_paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PRICE_KEYS and value is not None:
                yield (*path, key)
            else:
                yield from price_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from price_paths(value, (*path, index))


CATALOG_DOCUMENT = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text("utf-8"))
PRICE_PATHS = list(price_paths(CATALOG_DOCUMENT))


def test_the_example_has_prices_everywhere() -> None:
    assert len(PRICE_PATHS) > 20
    assert {path[-1] for path in PRICE_PATHS} == PRICE_KEYS


@FAST
@given(path=st.sampled_from(PRICE_PATHS), value=FLOATS)
def test_a_float_anywhere_in_a_price_refuses_the_catalog(
    path: tuple[str | int, ...], value: float
) -> None:
    document = copy.deepcopy(CATALOG_DOCUMENT)
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(CatalogError) as caught:
        parse_catalog(document, "catalog.yaml")
    error = caught.value
    assert error.field.endswith(str(path[-1])), str(error)
    assert error.entry.startswith(f"plans[{path[1]}] ("), str(error)
    assert "not a bare number" in error.reason, str(error)


@FAST
@given(value=FLOATS, index=st.integers(0, 5))
def test_a_float_tax_rate_refuses_the_accounts(
    example_catalog: Catalog, value: float, index: int
) -> None:
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text("utf-8"))
    document["accounts"][index]["tax_rate"] = value
    with pytest.raises(CatalogError) as caught:
        parse_accounts(document, example_catalog, "accounts.yaml")
    assert caught.value.field == "tax_rate"
    assert "not a bare number" in caught.value.reason
