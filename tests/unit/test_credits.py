"""Prepaid credit grants (CONTRACT.md 2a, Credits): validated at the edge, drawn by the
invoices of their usable periods in the contract's order. Draws worked by hand."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.catalog import Account, CatalogError, parse_accounts, parse_catalog
from billing.core.credit_draws import after, balances, draw, draw_in_order
from billing.core.credits import Grant
from billing.core.invoice import Invoice
from billing.core.money import Money
from billing.core.periods import Period
from billing.customer.credit_view import with_credits
from billing.store.invoice_records import InvoiceRecord
from tests.unit.test_invoice import CONTRACT_ACCOUNTS, CONTRACT_CATALOG

pytestmark = pytest.mark.unit

OCT, NOV, DEC, JAN = (Period.parse(p) for p in ("2026-10", "2026-11", "2026-12", "2027-01"))
ISSUED = datetime(2026, 12, 1, 1, 15, tzinfo=UTC)


def grant(gid: str, amount: str, granted: str, expires: str | None = None) -> Grant:
    return Grant.model_validate(
        {"id": gid, "amount": amount, "granted": granted, "expires": expires}
    )


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def drawn_json(draws: tuple[Any, ...]) -> list[dict[str, str]]:
    return [each.to_json() for each in draws]


# --- validation -------------------------------------------------------------------------


def accounts_with(credits: list[dict[str, Any]], plan: str = "pro") -> dict[str, Any]:
    accounts = copy.deepcopy(CONTRACT_ACCOUNTS)
    accounts["accounts"][0]["credits"] = credits
    accounts["accounts"][0]["plan"] = plan
    return accounts


def catalog_with_currencies() -> Any:
    document = copy.deepcopy(CONTRACT_CATALOG)
    for currency in ("JPY", "KWD"):
        document["plans"].append(
            {"id": currency.lower(), "name": currency, "currency": currency, "charges": []}
        )
    return parse_catalog(document)


def refusal(credits: list[dict[str, Any]], plan: str = "pro") -> str:
    with pytest.raises(CatalogError) as error:
        parse_accounts(accounts_with(credits, plan), catalog_with_currencies())
    return str(error.value)


PREPAY = {"id": "prepay-1", "amount": "500.00", "granted": "2026-10-01", "expires": "2027-10-01"}


def test_the_contracts_grant_is_taken_and_none_means_none() -> None:
    catalog = catalog_with_currencies()
    account = parse_accounts(accounts_with([PREPAY]), catalog).accounts[0]
    assert account.credits == [grant("prepay-1", "500.00", "2026-10-01", "2027-10-01")]
    assert parse_accounts(CONTRACT_ACCOUNTS, catalog).accounts[0].credits == []


@pytest.mark.parametrize(
    ("credits", "plan", "where"),
    [
        ([PREPAY, {**PREPAY, "amount": "1.00"}], "pro", "credits[1].id: 'prepay-1' appears twice"),
        ([{**PREPAY, "amount": "0"}], "pro", "credits[0].amount: must be greater than 0"),
        ([{**PREPAY, "amount": "-5"}], "pro", "credits[0].amount: must be greater than 0"),
        ([{**PREPAY, "amount": "1.001"}], "pro", "credits[0].amount: has more decimals"),
        ([{**PREPAY, "amount": "100.5"}], "jpy", "credits[0].amount: has more decimals"),
        ([{**PREPAY, "amount": "1.0001"}], "kwd", "credits[0].amount: has more decimals"),
        ([{**PREPAY, "expires": "2026-10-01"}], "pro", "credits[0].expires: must be after"),
        ([{**PREPAY, "granted": "2026-13-01"}], "pro", "credits[0].granted"),
        ([{**PREPAY, "extra": 1}], "pro", "credits[0].extra: is not a known field"),
        ([{"id": "x", "amount": "1"}], "pro", "credits[0].granted: is required"),
    ],
)
def test_a_bad_grant_is_refused_naming_account_entry_and_field(
    credits: list[dict[str, Any]], plan: str, where: str
) -> None:
    message = refusal(credits, plan)
    assert "accounts[0] (acct-1)" in message
    assert where in message


def test_whole_yen_and_three_kuwaiti_decimals_are_taken() -> None:
    catalog = catalog_with_currencies()
    for plan, amount in (("jpy", "1500"), ("kwd", "1.125")):
        account = parse_accounts(accounts_with([{**PREPAY, "amount": amount}], plan), catalog)
        assert account.accounts[0].credits[0].amount == Decimal(amount)


# --- which periods a grant pays ------------------------------------------------------------


def test_a_grant_pays_periods_whose_last_day_reaches_granted_and_first_day_is_before_expires() -> (
    None
):
    mid = grant("g", "1", "2026-11-15", "2027-01-01")
    # Oct's last day 31 Oct < 15 Nov: no. Nov's last day 30 Nov >= 15 Nov: yes.
    # Dec's first day 1 Dec < 1 Jan: yes. Jan's first day 1 Jan is not before 1 Jan: no.
    assert [mid.usable_in(p) for p in (OCT, NOV, DEC, JAN)] == [False, True, True, False]
    on_last_day = grant("g", "1", "2026-11-30", "2026-12-02")
    # Granted on Nov's last day pays Nov; expiring on 2 Dec still pays Dec (1 Dec < 2 Dec).
    assert [on_last_day.usable_in(p) for p in (OCT, NOV, DEC, JAN)] == [False, True, True, False]


# --- the draw ------------------------------------------------------------------------------


def test_the_grant_expiring_first_is_drawn_first_and_no_expiry_last() -> None:
    grants = [
        grant("forever", "100.00", "2026-10-01"),
        grant("late", "30.00", "2026-10-01", "2027-06-01"),
        grant("soon", "20.00", "2026-10-01", "2027-01-01"),
    ]
    # total 75.00: soon 20.00 (75 → 55), late 30.00 (55 → 25), forever 25.00.
    assert drawn_json(draw(grants, {}, NOV, usd("75.00"))) == [
        {"id": "soon", "amount": "20.00"},
        {"id": "late", "amount": "30.00"},
        {"id": "forever", "amount": "25.00"},
    ]


def test_ties_go_to_the_earliest_granted_then_the_smallest_id_in_plain_string_order() -> None:
    grants = [
        grant("b", "10.00", "2026-10-05", "2027-01-01"),
        grant("a", "10.00", "2026-10-05", "2027-01-01"),
        grant("Z", "10.00", "2026-10-05", "2027-01-01"),
        grant("z", "10.00", "2026-10-01", "2027-01-01"),
    ]
    # Same expiry: z granted first; then Z < a < b ('Z' is 0x5A, before 'a' 0x61).
    # total 35.00: z 10, Z 10, a 10, b 5.
    assert drawn_json(draw(grants, {}, NOV, usd("35.00"))) == [
        {"id": "z", "amount": "10.00"},
        {"id": "Z", "amount": "10.00"},
        {"id": "a", "amount": "10.00"},
        {"id": "b", "amount": "5.00"},
    ]


def test_draws_over_several_periods_partial_then_exhausted_then_expired() -> None:
    grants = [
        grant("prepay", "100.00", "2026-10-01"),
        grant("promo", "30.00", "2026-11-10", "2026-12-01"),
    ]
    totals = {OCT: usd("40.00"), NOV: usd("50.00"), DEC: usd("25.00"), JAN: usd("60.00")}
    draws, drawn = draw_in_order(grants, {}, totals)
    # Oct: promo not yet granted (Oct ends before 10 Nov): prepay 40.00 (100 → 60 left).
    # Nov: promo expires first: promo 30.00 (30 → 0), then prepay 20.00 (60 → 40).
    # Dec: promo expired (1 Dec is not before 1 Dec): prepay 25.00 (40 → 15).
    # Jan: prepay's last 15.00; 45.00 stays due.
    assert {str(p): drawn_json(d) for p, d in draws.items()} == {
        "2026-10": [{"id": "prepay", "amount": "40.00"}],
        "2026-11": [{"id": "promo", "amount": "30.00"}, {"id": "prepay", "amount": "20.00"}],
        "2026-12": [{"id": "prepay", "amount": "25.00"}],
        "2027-01": [{"id": "prepay", "amount": "15.00"}],
    }
    assert drawn == {"prepay": Decimal("100.00"), "promo": Decimal("30.00")}
    assert balances(grants, drawn) == {"prepay": Decimal("0.00"), "promo": Decimal("0.00")}


def test_a_zero_total_or_an_empty_grant_draws_nothing() -> None:
    grants = [grant("g", "10.00", "2026-10-01")]
    assert draw(grants, {}, NOV, usd("0.00")) == ()
    assert draw(grants, {"g": Decimal("10.00")}, NOV, usd("5.00")) == ()


def test_yen_and_dinar_draws_keep_the_currencys_digits() -> None:
    yen = [grant("y", "1500", "2026-10-01")]
    # 1,200 of 1,500 yen, then the last 300 of a 999 invoice.
    first = draw(yen, {}, NOV, Money(Decimal("1200"), "JPY"))
    assert drawn_json(first) == [{"id": "y", "amount": "1200"}]
    later = draw(yen, after({}, first), DEC, Money(Decimal("999"), "JPY"))
    assert drawn_json(later) == [{"id": "y", "amount": "300"}]
    dinar = [grant("k", "2", "2026-10-01")]
    # A grant written "2" draws as 1.125 of a 1.125 KWD invoice, then "0.875" is left.
    first = draw(dinar, {}, NOV, Money(Decimal("1.125"), "KWD"))
    assert drawn_json(first) == [{"id": "k", "amount": "1.125"}]
    later = draw(dinar, after({}, first), DEC, Money(Decimal("5.000"), "KWD"))
    assert drawn_json(later) == [{"id": "k", "amount": "0.875"}]


# --- properties -----------------------------------------------------------------------------

_CENTS = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))
_DAYS = st.integers(min_value=0, max_value=200)


@st.composite
def _grants(draw_: st.DrawFn) -> list[Grant]:
    count = draw_(st.integers(min_value=0, max_value=5))
    grants = []
    for index in range(count):
        granted = OCT.first_day.toordinal() + draw_(_DAYS)
        life = draw_(st.none() | st.integers(min_value=1, max_value=200))
        amount = draw_(_CENTS.filter(lambda value: value > 0))
        grants.append(
            Grant(
                id=f"g{draw_(st.integers(0, 3))}{index}",
                amount=amount,
                granted=Period.parse("2026-10").first_day.fromordinal(granted),
                expires=None if life is None else OCT.first_day.fromordinal(granted + life),
            )
        )
    return grants


@settings(max_examples=200, deadline=None)
@given(grants=_grants(), totals=st.lists(_CENTS, min_size=1, max_size=8))
def test_draws_never_exceed_the_total_nor_a_grant_and_add_up_to_what_grants_gave(
    grants: list[Grant], totals: list[Decimal]
) -> None:
    periods = [Period.of(2026 + (9 + i) // 12, (9 + i) % 12 + 1) for i in range(len(totals))]
    by_period = {p: usd(str(t)) for p, t in zip(periods, totals, strict=True)}
    draws, drawn = draw_in_order(grants, {}, by_period)
    amounts = {g.id: g.amount for g in grants}
    running: dict[str, Decimal] = {}
    for period in sorted(draws):
        # each invoice takes min(total, what its usable grants have left before it)
        usable = sum(
            (g.amount - running.get(g.id, Decimal(0)) for g in grants if g.usable_in(period)),
            Decimal(0),
        )
        taken_sum = sum((d.amount.amount for d in draws[period]), Decimal(0))
        assert taken_sum == min(by_period[period].amount, usable)
        running = after(running, draws[period])
    for period, taken in draws.items():
        assert sum((d.amount.amount for d in taken), Decimal(0)) <= by_period[period].amount
        assert all(d.amount.amount > 0 for d in taken)
        assert all(next(g for g in grants if g.id == d.grant_id).usable_in(period) for d in taken)
    consumed = sum((d.amount.amount for taken in draws.values() for d in taken), Decimal(0))
    assert consumed == sum(drawn.values(), Decimal(0))
    assert all(Decimal(0) <= drawn[gid] <= amounts[gid] for gid in drawn)


# --- the usage report's view ------------------------------------------------------------------


def test_the_report_projects_the_open_period_on_what_issued_invoices_left() -> None:
    account = Account.model_validate(
        {
            "id": "a",
            "name": "A",
            "email": "a@x.example",
            "plan": "pro",
            "timezone": "UTC",
            "credits": [
                {"id": "prepay", "amount": "100.00", "granted": "2026-10-01"},
                {
                    "id": "promo",
                    "amount": "30.00",
                    "granted": "2026-10-01",
                    "expires": "2027-01-01",
                },
            ],
        }
    )
    october = InvoiceRecord(
        "a", "2026-10", 1, "INV-2026-000001", "2026-11-01T01:00:00+00:00", "stored",
        credits='[{"id":"promo","amount":"30.00"},{"id":"prepay","amount":"15.00"}]',
    )  # fmt: skip
    preview = Invoice("", "a", NOV, *(ISSUED,) * 3, "USD", (), *(usd("70.00"),) * 3)
    drawn_preview, views = with_credits(account, preview, [october])
    # October drew promo 30.00 and prepay 15.00: prepay 85.00 left, promo 0.00. November
    # (70.00) projects prepay 70.00: 15.00 would be left, nothing due.
    assert [d.to_json() for d in drawn_preview.credits] == [{"id": "prepay", "amount": "70.00"}]
    assert str(drawn_preview.amount_due) == "0.00"
    assert [(v.grant.id, str(v.remaining), str(v.this_period)) for v in views] == [
        ("prepay", "85.00", "70.00"),
        ("promo", "0.00", "0.00"),
    ]
    # Once November is invoiced, what its record holds is shown, not a new projection
    november = replace(october, period="2026-11", credits='[{"id":"prepay","amount":"60.00"}]')
    drawn_preview, views = with_credits(account, preview, [october, november])
    assert [d.to_json() for d in drawn_preview.credits] == [{"id": "prepay", "amount": "60.00"}]
    assert [str(v.remaining) for v in views] == ["25.00", "0.00"]
