"""A push of the accounts file never prices again time already rated (CONTRACT.md 2a)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from billing.core.catalog import Accounts, parse_accounts, parse_catalog
from billing.core.history import HistoryRewrite, check_push
from tests.unit.test_invoice import CONTRACT_ACCOUNTS, CONTRACT_CATALOG

pytestmark = pytest.mark.unit

# 3 December 2026 in Paris (acct-1's zone): 2026-12 is the current, open period.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CATALOG = parse_catalog(
    {
        **CONTRACT_CATALOG,
        "plans": [
            *CONTRACT_CATALOG["plans"],
            {**CONTRACT_CATALOG["plans"][0], "id": "pro-2", "name": "Pro 2"},
        ],
    }
)


def accounts(**fields: Any) -> Accounts:
    document = copy.deepcopy(CONTRACT_ACCOUNTS)
    document["accounts"][0].update(fields)
    return parse_accounts(document, CATALOG)


def discount(first: str, discount_id: str = "d") -> dict[str, Any]:
    return {"id": discount_id, "percent": "10", "from": first, "periods": 1}


def test_a_first_load_takes_anything() -> None:
    check_push(None, accounts(discounts=[discount("2026-01")]), NOW)


def test_a_discount_from_the_next_period_is_taken() -> None:
    check_push(accounts(), accounts(discounts=[discount("2027-01")]), NOW)


def test_an_unchanged_discount_in_the_past_is_taken() -> None:
    past = accounts(discounts=[discount("2026-11")])
    check_push(past, accounts(discounts=[discount("2026-11")]), NOW)


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ([], [discount("2026-12")], "adding 'd' reaches back to 2026-12"),
        ([discount("2026-11")], [], "removing 'd' reaches back to 2026-11"),
        (
            [discount("2026-11")],
            [{**discount("2026-11"), "percent": "20"}],
            "changing 'd' reaches back to 2026-11",
        ),
        ([discount("2027-02")], [discount("2026-12")], "changing 'd' reaches back to 2026-12"),
    ],
)
def test_a_discount_reaching_into_rated_time_is_refused(
    before: list[dict[str, Any]], after: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(HistoryRewrite) as refused:
        check_push(accounts(discounts=before), accounts(discounts=after), NOW)
    assert str(refused.value).startswith("accounts[0] (acct-1): discounts: " + message)
    assert "a discount may start from 2027-01 on" in str(refused.value)


def test_editing_the_plan_of_a_stored_account_is_refused() -> None:
    with pytest.raises(HistoryRewrite, match=r"accounts\[0\] \(acct-1\): plan: changing 'pro'"):
        check_push(accounts(), accounts(plan="pro-2"), NOW)


# --- credit grants --------------------------------------------------------------------------


def grant(granted: str, grant_id: str = "g", amount: str = "50.00") -> dict[str, Any]:
    return {"id": grant_id, "amount": amount, "granted": granted}


def test_a_grant_dated_in_the_open_period_or_later_is_taken() -> None:
    # NOW is 3 December in Paris: December is open, not invoiced (its run starts in January)
    check_push(accounts(), accounts(credits=[grant("2026-12-01"), grant("2027-02-01", "h")]), NOW)


def test_an_unchanged_grant_from_the_past_is_taken_with_a_new_one() -> None:
    past = accounts(credits=[grant("2026-10-01")])
    check_push(past, accounts(credits=[grant("2026-10-01"), grant("2026-12-03", "h")]), NOW)


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        # 30 November would pay November, closed and invoiced (or waiting for its run)
        (
            [],
            [grant("2026-11-30")],
            r"credits\[0\]\.granted: adding 'g' granted 2026-11-30 reaches back before the "
            r"current period 2026-12",
        ),
        ([grant("2026-10-01")], [], "credits: removing 'g'"),
        ([grant("2026-10-01")], [grant("2026-10-01", amount="60.00")], "credits: changing 'g'"),
        ([grant("2027-01-01")], [grant("2027-02-01")], "credits: changing 'g'"),
    ],
)
def test_a_grant_removed_changed_or_reaching_back_is_refused_naming_account_and_field(
    before: list[dict[str, Any]], after: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(HistoryRewrite, match=r"accounts\[0\] \(acct-1\): " + message):
        check_push(accounts(credits=before), accounts(credits=after), NOW)


def test_a_first_load_takes_grants_of_any_date() -> None:
    check_push(None, accounts(credits=[grant("2020-01-01")]), NOW)
