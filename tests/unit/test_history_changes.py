"""A push never adds, removes or edits a plan change that takes effect before the raters
are sure to have read it (CONTRACT.md 2a, "History is never rewritten")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billing.core.catalog import Accounts, parse_accounts
from billing.core.history import HistoryRewrite, check_push
from billing_cli.operations import PUSH_LEAD
from tests.unit.test_phases import CATALOG

pytestmark = pytest.mark.unit

# acct-1 is in Europe/Paris: 15 November 2026 starts at 2026-11-14T23:00Z (UTC+1).
MIDNIGHT = datetime(2026, 11, 14, 23, 0, tzinfo=UTC)


def accounts(*changes: tuple[str, str]) -> Accounts:
    document: dict[str, Any] = {
        "id": "acct-1",
        "name": "Customer",
        "email": "billing@customer.example",
        "plan": "starter",
        "timezone": "Europe/Paris",
        "changes": [{"effective": day, "plan": plan} for day, plan in changes],
    }
    return parse_accounts({"accounts": [document]}, CATALOG)


def test_the_lead_is_the_future_tolerance_plus_the_config_cache_time() -> None:
    assert timedelta(minutes=6) == PUSH_LEAD  # 5 minutes + 60 s (CONFIG_CACHE_SECONDS)


def test_a_change_must_take_effect_later_than_the_push_by_more_than_the_lead() -> None:
    before, after = accounts(), accounts(("2026-11-15", "pro"))
    just_in_time = MIDNIGHT - PUSH_LEAD - timedelta(microseconds=1)
    check_push(before, after, just_in_time, lead=PUSH_LEAD)
    with pytest.raises(HistoryRewrite, match=r"accounts\[0\] \(acct-1\): changes: adding"):
        check_push(before, after, MIDNIGHT - PUSH_LEAD, lead=PUSH_LEAD)


@pytest.mark.parametrize(
    ("stored", "pushed", "action"),
    [
        ((("2026-11-15", "pro"),), (), "removing"),
        ((("2026-11-15", "pro"),), (("2026-11-16", "pro"),), "removing"),  # moved later
        ((("2026-12-15", "pro"),), (("2026-11-15", "pro"),), "adding"),  # moved earlier
        ((("2026-10-01", "pro"),), (("2026-10-01", "pro"), ("2026-11-01", "starter")), "adding"),
    ],
)
def test_a_change_reaching_back_is_refused_whole(
    stored: tuple[tuple[str, str], ...], pushed: tuple[tuple[str, str], ...], action: str
) -> None:
    with pytest.raises(HistoryRewrite, match=f"changes: {action}"):
        check_push(accounts(*stored), accounts(*pushed), MIDNIGHT, lead=PUSH_LEAD)


def test_past_changes_kept_and_future_ones_edited_are_taken() -> None:
    stored = accounts(("2026-10-01", "pro"), ("2026-12-15", "starter"))
    pushed = accounts(("2026-10-01", "pro"), ("2027-01-01", "starter"))
    check_push(stored, pushed, MIDNIGHT, lead=PUSH_LEAD)
    check_push(None, accounts(("2020-01-01", "pro")), MIDNIGHT, lead=PUSH_LEAD)  # first load
