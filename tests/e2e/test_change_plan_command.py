"""`billing accounts change-plan` and the push rule for plan changes (CONTRACT.md 2a,
"History is never rewritten") against the local runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from billing_cli import operations
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# acct-1 is in Europe/Paris (UTC+1 in November): 15 November starts at 2026-11-14T23:00Z.
# A change must take effect later than the push by more than 5 minutes + 60 s of cache.
LAST_MOMENT = datetime(2026, 11, 14, 22, 53, 59, tzinfo=UTC)
TOO_LATE = datetime(2026, 11, 14, 22, 54, 0, tzinfo=UTC)


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalAws]:
    catalog = yaml.safe_load((EXAMPLES / "catalog.yaml").read_text(encoding="utf-8"))
    pro = next(plan for plan in catalog["plans"] if plan["id"] == "pro")
    catalog["plans"].append({**pro, "id": "pro-2", "name": "Pro 2", "fixed_fee": "59.00"})
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog), encoding="utf-8")
    with local_aws() as aws:
        assert billing("catalog", "push", str(tmp_path / "catalog.yaml")).exit_code == 0
        assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0
        yield aws


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    monkeypatch.setattr(operations, "utc_now", lambda: moment)


def stored_changes(local: LocalAws, account_id: str) -> list[tuple[str, str]]:
    account = next(a for a in local.config.all_accounts() if a.id == account_id)
    return [(change.effective.isoformat(), change.plan) for change in account.changes]


def test_a_change_within_the_lead_is_refused_and_one_just_past_it_is_stored(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, TOO_LATE)  # 22:54:00 + 6 min = 23:00:00, not earlier than the midnight
    refused = billing("accounts", "change-plan", "acct-1", "--plan", "pro-2", "--on", "2026-11-15")
    assert refused.exit_code != 0
    assert "accounts[0] (acct-1): changes: adding" in refused.output
    assert "nothing was stored" in refused.output
    assert stored_changes(local, "acct-1") == []

    at(monkeypatch, LAST_MOMENT)
    done = billing(
        "accounts", "change-plan", "acct-1", "--plan", "pro-2", "--on", "2026-11-15", "--json"
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["effective"] == "2026-11-15"
    assert stored_changes(local, "acct-1") == [("2026-11-15", "pro-2")]


def test_a_change_to_the_plan_in_force_is_refused_naming_the_field(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(monkeypatch, LAST_MOMENT)
    result = billing("accounts", "change-plan", "acct-1", "--plan", "pro", "--on", "2026-12-01")
    assert result.exit_code != 0
    assert "accounts[0] (acct-1)" in result.output
    assert "changes[0].plan" in result.output


def test_pushing_a_file_without_a_change_that_took_effect_is_refused_whole(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at(monkeypatch, LAST_MOMENT)
    added = billing("accounts", "change-plan", "acct-1", "--plan", "pro-2", "--on", "2026-11-15")
    assert added.exit_code == 0, added.output
    # A week later the change is history: the examples file, without it, would remove it.
    at(monkeypatch, datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    result = billing("accounts", "push", str(EXAMPLES / "accounts.yaml"))
    assert result.exit_code != 0
    assert "accounts[0] (acct-1): changes: removing" in result.output
    # A change far enough ahead may still be added by a push.
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    document["accounts"][0]["changes"] = [
        {"effective": "2026-11-15", "plan": "pro-2"},
        {"effective": "2027-01-01", "plan": "pro"},
    ]
    path = tmp_path / "accounts-changes.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    assert billing("accounts", "push", str(path)).exit_code == 0
    assert stored_changes(local, "acct-1") == [("2026-11-15", "pro-2"), ("2027-01-01", "pro")]
