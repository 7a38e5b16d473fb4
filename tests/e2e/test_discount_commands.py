"""`billing discounts add` against the local runtime, found as a deployed stack is: the
discount is validated and checked as `billing accounts push` would (CONTRACT.md 2a)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from billing_cli import operations
from billing_cli.local.runtime import LocalAws, local_aws
from tests.e2e.test_operator_commands import billing, push_examples

pytestmark = pytest.mark.e2e

# 3 December 2026, 09:00 UTC: December is acct-1's (Paris) current, open period.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    monkeypatch.setattr(operations, "utc_now", lambda: NOW)
    with local_aws() as aws:
        push_examples()
        yield aws


def stored_discounts(local: LocalAws, account_id: str = "acct-1") -> list[dict[str, Any]]:
    account = local.config.accounts([account_id])[account_id]
    return [d.model_dump(mode="json", exclude_none=True) for d in account.discounts]


def test_add_stores_a_discount_after_the_accounts_others(local: LocalAws) -> None:
    first = billing(
        "discounts", "add", "acct-1", "--id", "launch", "--percent", "10", "--from", "2027-01",
        "--periods", "3", "--json",
    )  # fmt: skip
    second = billing(
        "discounts", "add", "acct-1", "--id", "goodwill", "--amount", "20.00", "--from", "2027-02"
    )  # fmt: skip

    assert first.exit_code == 0, first.output
    launch = {"id": "launch", "percent": "10", "from": "2027-01", "periods": 3}
    assert json.loads(first.output) == {
        "stack": "UsageBilling-local",
        "account_id": "acct-1",
        "discount": launch,
    }
    assert second.exit_code == 0, second.output
    goodwill = {"id": "goodwill", "amount": "20.00", "from": "2027-02", "periods": 1}
    assert stored_discounts(local) == [launch, goodwill]
    assert stored_discounts(local, "acct-2") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # December is open and rated: a discount reaching it would reprice rated time
        (["--percent", "10", "--from", "2026-12"], "a discount may start from 2027-01 on"),
        (["--percent", "10", "--amount", "5", "--from", "2027-01"], "exactly one of"),
        (["--from", "2027-01"], "exactly one of"),
        (["--percent", "101", "--from", "2027-01"], "at most 100"),
        (["--amount", "0.001", "--from", "2027-01"], "more decimals than USD's minor unit"),
    ],
)
def test_add_is_refused_as_a_push_would_be(local: LocalAws, args: list[str], message: str) -> None:
    result = billing("discounts", "add", "acct-1", "--id", "launch", *args)

    assert result.exit_code != 0
    assert message in " ".join(result.output.split())  # the console wraps long lines
    assert stored_discounts(local) == []


def test_add_to_an_account_not_stored_is_refused(local: LocalAws) -> None:
    result = billing(
        "discounts", "add", "acct-99", "--id", "x", "--percent", "5", "--from", "2027-01"
    )

    assert result.exit_code != 0
    assert "account 'acct-99' is not stored" in result.output
