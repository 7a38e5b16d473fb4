"""A push keeps what priced rated time: the account's zone, a `start` or `end` at or before
the push (plus the lead), and the order of the discounts that reach rated periods
(CONTRACT.md 2a, "History is never rewritten")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from billing.core.catalog import Accounts, parse_accounts
from billing.core.history import HistoryRewrite, check_push
from billing_cli.operations import PUSH_LEAD
from tests.unit.test_phases import CATALOG

pytestmark = pytest.mark.unit

# 3 December 2026, 09:00 UTC: December is the current period in Paris.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
LAUNCH = {"id": "launch", "percent": "10", "from": "2026-10", "periods": 6}
GOODWILL = {"id": "goodwill", "amount": "5.00", "from": "2026-10", "periods": 6}
LATER = {"id": "later", "percent": "5", "from": "2027-01", "periods": 1}


def accounts(**fields: Any) -> Accounts:
    document: dict[str, Any] = {
        "id": "acct-1",
        "name": "Customer",
        "email": "billing@customer.example",
        "plan": "starter",
        "timezone": "Europe/Paris",
        "start": "2026-10-01",
        **fields,
    }
    return parse_accounts({"accounts": [document]}, CATALOG)


def test_an_account_keeps_its_time_zone() -> None:
    with pytest.raises(HistoryRewrite, match=r"accounts\[0\] \(acct-1\): timezone: moving"):
        check_push(accounts(), accounts(timezone="Asia/Tokyo"), NOW, lead=PUSH_LEAD)


@pytest.mark.parametrize(
    ("stored", "pushed", "field"),
    [
        ({}, {"start": "2026-11-15"}, "start"),  # into invoiced and rated time
        ({"end": "2026-12-20"}, {"end": "2026-12-02"}, "end"),  # back before the push
        ({"end": "2026-12-02"}, {}, "end"),  # an ended account revived
        ({}, {"end": "2026-12-03"}, "end"),  # midnight before the push: today is rated
    ],
)
def test_start_and_end_do_not_move_across_rated_time(
    stored: dict[str, Any], pushed: dict[str, Any], field: str
) -> None:
    with pytest.raises(HistoryRewrite, match=rf"acct-1\): {field}: moving it"):
        check_push(accounts(**stored), accounts(**pushed), NOW, lead=PUSH_LEAD)


def test_start_and_end_move_between_later_midnights() -> None:
    # Paris midnight of 4 December is 3 December 23:00 UTC, well after 09:06
    check_push(accounts(), accounts(end="2026-12-04"), NOW, lead=PUSH_LEAD)
    check_push(accounts(end="2027-03-01"), accounts(end="2027-01-01"), NOW, lead=PUSH_LEAD)
    future = {"start": "2027-01-01"}
    check_push(accounts(**future), accounts(start="2027-02-01"), NOW, lead=PUSH_LEAD)


def test_discounts_reaching_rated_time_keep_their_order() -> None:
    # October's invoice: 10% then 5.00 is not 5.00 then 10% (10% of a smaller remainder)
    stored = accounts(discounts=[LAUNCH, GOODWILL])
    with pytest.raises(HistoryRewrite, match="discounts: reordering 'launch', 'goodwill'"):
        check_push(stored, accounts(discounts=[GOODWILL, LAUNCH]), NOW)


def test_a_discount_for_later_periods_may_go_anywhere() -> None:
    stored = accounts(discounts=[LAUNCH, GOODWILL])
    check_push(stored, accounts(discounts=[LATER, LAUNCH, GOODWILL]), NOW)
    check_push(stored, accounts(discounts=[LAUNCH, LATER, GOODWILL]), NOW)


def test_a_start_set_or_removed_reaches_back_to_the_beginning() -> None:
    # Stored with no start, October and November (rated, invoiced) were billed in full: a
    # start on 1 February 2027 would put them outside the subscription; removing a
    # future start would put every earlier day, rated time included, inside it.
    with pytest.raises(HistoryRewrite, match=r"\(acct-1\): start: moving it from none"):
        check_push(accounts(start=None), accounts(start="2027-02-01"), NOW, lead=PUSH_LEAD)
    with pytest.raises(HistoryRewrite, match="reaches back to the beginning"):
        check_push(accounts(start="2027-02-01"), accounts(start=None), NOW, lead=PUSH_LEAD)


def test_an_account_not_started_yet_may_change_plan_and_zone() -> None:
    # Stored to start on 1 February 2027: no time of it is rated or invoiced (rated time
    # is 3 December 2026 and before), so its plan and zone price nothing yet
    stored = accounts(start="2027-02-01")
    check_push(stored, accounts(start="2027-02-01", plan="pro"), NOW, lead=PUSH_LEAD)
    check_push(stored, accounts(start="2027-02-01", timezone="UTC"), NOW, lead=PUSH_LEAD)
    check_push(stored, accounts(start="2027-03-01", plan="pro"), NOW, lead=PUSH_LEAD)
    # but not one that starts before the push, as stored or as pushed
    with pytest.raises(HistoryRewrite, match="start: moving it"):
        check_push(stored, accounts(start="2026-12-01"), NOW, lead=PUSH_LEAD)
