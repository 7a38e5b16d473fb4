"""`billing credits grant` and the push rule for grants (CONTRACT.md 2a, History is never
rewritten) against the local runtime, found as a deployed stack is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from billing_cli import operations
from billing_cli.local.runtime import LocalAws, local_aws
from tests.e2e.test_operator_commands import EXAMPLES, billing, push_examples

pytestmark = pytest.mark.e2e

# 3 December 2026, 09:00 UTC: December is acct-1's (Paris) current, open period.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    monkeypatch.setattr(operations, "utc_now", lambda: NOW)
    with local_aws() as aws:
        push_examples()
        yield aws


def accounts_file(tmp_path: Path, credits: list[dict[str, Any]]) -> Path:
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    document["accounts"][0]["credits"] = credits
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def stored_credits(local: LocalAws, account_id: str = "acct-1") -> list[dict[str, Any]]:
    account = local.config.accounts([account_id])[account_id]
    return [grant.model_dump(mode="json", exclude_none=True) for grant in account.credits]


def test_grant_adds_a_credit_dated_today_in_the_accounts_zone(local: LocalAws) -> None:
    result = billing("credits", "grant", "acct-1", "--amount", "500.00", "--json")

    assert result.exit_code == 0, result.output
    entry = {"id": "grant-1", "amount": "500.00", "granted": "2026-12-03"}
    assert json.loads(result.output) == {
        "stack": "UsageBilling-local",
        "account_id": "acct-1",
        "grant": entry,
    }
    assert stored_credits(local) == [entry]
    # a second one takes the next id, and its own dates
    again = billing(
        "credits", "grant", "acct-1", "--amount", "20", "--granted", "2027-01-01",
        "--expires", "2027-04-01",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert stored_credits(local)[1] == {
        "id": "grant-2",
        "amount": "20",
        "granted": "2027-01-01",
        "expires": "2027-04-01",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # 30 November would pay November, already closed
        (["--granted", "2026-11-30"], "credits[0].granted: adding 'grant-1' granted 2026-11-30"),
        (["--amount", "1.001"], "credits[0].amount: has more decimals than USD's minor unit"),
        (["--expires", "2026-12-03"], "credits[0].expires: must be after granted"),
    ],
)
def test_grant_is_refused_as_a_push_would_be(
    local: LocalAws, args: list[str], message: str
) -> None:
    amount = [] if "--amount" in args else ["--amount", "10.00"]
    result = billing("credits", "grant", "acct-1", *amount, *args)

    assert result.exit_code == 2
    said = " ".join(result.output.split())  # as the terminal wraps it
    assert "accounts[0] (acct-1)" in said
    assert message in said
    assert stored_credits(local) == []


def test_grant_to_an_unknown_account_says_so(local: LocalAws) -> None:
    result = billing("credits", "grant", "acct-404", "--amount", "10.00")
    assert result.exit_code == 2
    assert "account 'acct-404' is not stored" in result.output


def test_a_push_removing_a_grant_is_refused_whole(local: LocalAws, tmp_path: Path) -> None:
    # GIVEN acct-1 with a grant stored
    assert billing("credits", "grant", "acct-1", "--amount", "50.00").exit_code == 0

    # WHEN the accounts file without it is pushed
    result = billing("accounts", "push", str(EXAMPLES / "accounts.yaml"))

    # THEN nothing is stored, and the message names the account and the field
    assert result.exit_code == 2
    assert "accounts[0] (acct-1): credits: removing 'grant-1'" in " ".join(result.output.split())
    assert stored_credits(local) == [{"id": "grant-1", "amount": "50.00", "granted": "2026-12-03"}]


def test_a_push_adding_a_grant_reaching_back_is_refused_and_one_from_today_taken(
    local: LocalAws, tmp_path: Path
) -> None:
    back = {"id": "p", "amount": "10.00", "granted": "2026-11-15"}
    refused = billing("accounts", "push", str(accounts_file(tmp_path, [back])))
    assert refused.exit_code == 2
    assert "accounts[0] (acct-1): credits[0].granted: adding 'p'" in " ".join(
        refused.output.split()
    )
    assert stored_credits(local) == []

    taken = billing(
        "accounts", "push", str(accounts_file(tmp_path, [{**back, "granted": "2026-12-01"}]))
    )
    assert taken.exit_code == 0, taken.output
    assert stored_credits(local) == [{"id": "p", "amount": "10.00", "granted": "2026-12-01"}]


def test_usage_shows_each_grant_and_what_the_period_draws(local: LocalAws) -> None:
    # GIVEN acct-1 (pro: 49.00 fee, 100.00 minimum, 20% tax) with a 500.00 grant from today
    assert billing("credits", "grant", "acct-1", "--amount", "500.00").exit_code == 0

    # WHEN December's usage is asked for (no events: 100.00 minimum + 20.00 tax = 120.00)
    as_json = billing("usage", "acct-1", "--period", "2026-12", "--json")
    table = billing("usage", "acct-1", "--period", "2026-12")

    # THEN the grant pays all of it: 120.00 projected, 500.00 left before it, 0.00 due
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    preview = report["invoice_preview"]
    assert (preview["total"], preview["credits_applied"], preview["amount_due"]) == (
        "120.00",
        "120.00",
        "0.00",
    )
    assert [(g["id"], g["remaining"], g["this_period"]) for g in report["credits"]] == [
        ("grant-1", "500.00", "120.00")
    ]
    assert table.exit_code == 0, table.output
    for row in ("credit grant-1 (500.00 left)", "paid with prepaid credits", "amount due"):
        assert row in table.output
