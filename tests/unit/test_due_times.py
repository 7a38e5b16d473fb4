"""When a period is due for an account, as the command line says it: the same instant the
invoice run uses (the period's end in the account's zone, plus the grace time, in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.core.catalog import Account
from billing.core.periods import Period
from billing_cli.operations import due_times, not_due_yet

pytestmark = pytest.mark.unit


def account(account_id: str, zone: str) -> Account:
    return Account.model_validate(
        {
            "id": account_id,
            "name": "Probe",
            "email": f"{account_id}@probe.example",
            "plan": "pro",
            "timezone": zone,
        }
    )


def test_the_grace_hour_is_added_in_utc_across_a_clock_change() -> None:
    # Havana leaves daylight time at 01:00 on Sunday 1 November 2026, back to 00:00. October
    # ends at local midnight, 04:00 UTC; an hour later in UTC is 05:00 UTC (not 01:00 local
    # standard time, which is 06:00 UTC).
    havana = account("cuba-1", "America/Havana")
    assert due_times([havana], Period(2026, 10)) == {"cuba-1": datetime(2026, 11, 1, 5, tzinfo=UTC)}
    assert not_due_yet([havana], Period(2026, 10), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)) == []
    assert not_due_yet([havana], Period(2026, 10), datetime(2026, 11, 1, 4, 30, tzinfo=UTC)) == [
        ("cuba-1", datetime(2026, 11, 1, 5, tzinfo=UTC))
    ]
