"""A numbered invoice is owed its finish under its number, whatever its account became
after the number was spent: its subscription corrected to end before the period, or the
account removed from the accounts file. Never a silent hole in the sequence."""

from __future__ import annotations

from typing import Any

import pytest

from billing.core.catalog import Account, Accounts
from billing.settings import CONFIG_TABLE
from billing.store.config_store import PROFILE_SORT_KEY
from billing.store.documents import DocumentStore
from billing.store.errors import StoreError
from billing.store.mailer import Mailer, NotSent
from billing_cli.local.runtime import task_handlers
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the `stack` fixture)
    Stack,
    invoice_store,
    run_clock,
    stack,
)


def push_accounts(stack: Stack, accounts: list[Account]) -> None:  # noqa: F811
    """Store the accounts as `billing accounts push` does; the handlers start afresh."""
    stack.aws.push_accounts(Accounts(accounts=accounts))
    task_handlers()


def numbered_but_not_stored(
    stack: Stack,  # noqa: F811  (the fixture)
    monkeypatch: pytest.MonkeyPatch,
    now: str,
    account_id: str,
) -> str:
    """Run once with S3 refusing `account_id`'s documents; its invoice number."""
    original = DocumentStore.put_new

    def failing(self: DocumentStore, key: str, body: bytes, content_type: str) -> bytes:
        if key.startswith(f"invoices/{account_id}/"):
            raise StoreError("store invoice document: ServiceUnavailable")
        return original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put_new", failing)
    first = stack.run("run-1", period="2026-11", now=now)
    monkeypatch.setattr(DocumentStore, "put_new", original)
    assert [f["account_id"] for f in first["failures"]] == [account_id]
    record = invoice_store(stack.aws).get(account_id, "2026-11")
    assert record is not None
    assert record.status == "numbered"
    return record.invoice_number


def delete_profile(stack: Stack, account_id: str) -> None:  # noqa: F811
    """Delete the account's profile item by hand (a push never removes an account)."""
    stack.aws.dynamodb.delete_item(
        TableName=stack.aws.tables[CONFIG_TABLE.env_var],
        Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": PROFILE_SORT_KEY}},
    )
    task_handlers()


def with_fields(accounts: Accounts, account_id: str, **fields: Any) -> list[Account]:
    return [
        Account.model_validate({**a.model_dump(), **fields}) if a.id == account_id else a
        for a in accounts.accounts
    ]


@pytest.mark.parametrize("scheduled", [False, True], ids=["for-the-period", "scheduled"])
def test_a_numbered_invoice_is_finished_after_its_subscription_was_ended_before_the_period(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
    scheduled: bool,
) -> None:
    # GIVEN acct-1's November invoice numbered, not stored
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    number = numbered_but_not_stored(stack, monkeypatch, now, "acct-1")

    # AND its subscription then corrected to end on 1 November (no longer overlapping it)
    push_accounts(stack, with_fields(example_accounts, "acct-1", end="2026-11-01"))

    # WHEN the next run comes
    run_input = {"now": now} if scheduled else {"period": "2026-11", "now": now}
    second = stack.run("run-2", **run_input)

    # THEN it stores the invoice under the number it was given, and reports nothing failed
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert (record.invoice_number, record.stored, record.email_status) == (number, True, "sent")
    # (a scheduled run also issues acct-1's October, owed since its start on 10 October)
    assert (second["issued"], second["failures"]) == (2 if scheduled else 1, [])


def test_a_numbered_invoice_whose_account_was_deleted_is_reported_on_every_run(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-1's November invoice numbered, not stored, and acct-1's profile then deleted
    # from the table by hand (a push never removes an account)
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    numbered_but_not_stored(stack, monkeypatch, now, "acct-1")
    delete_profile(stack, "acct-1")

    # WHEN two more runs come, one for the period and one scheduled
    runs = [stack.run("run-2", period="2026-11", now=now), stack.run("run-3", now=now)]

    # THEN each names acct-1's invoice as failed, because its account is not known
    for report in runs:
        failures = [(f["account_id"], f["period"]) for f in report["failures"]]
        assert failures == [("acct-1", "2026-11")]
        assert "not known" in report["failures"][0]["reason"]


def test_a_stored_invoice_not_emailed_whose_account_was_deleted_is_named_as_such_every_run(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-1's invoice stored and announced, its email throttled in both steps
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    send = Mailer.send_raw

    def throttled(self: Mailer, raw: bytes, to: str) -> str:
        if to.endswith("@acme.example"):
            raise NotSent("throttled")
        return send(self, raw, to)

    monkeypatch.setattr(Mailer, "send_raw", throttled)
    stack.run("run-1", period="2026-11", now=now)
    monkeypatch.setattr(Mailer, "send_raw", send)
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert (record.stored, record.email_status) == (True, None)
    # AND acct-1's profile then deleted by hand
    delete_profile(stack, "acct-1")

    # WHEN two more runs come, THEN each names acct-1's invoice: its account is not known
    for name in ("run-2", "run-3"):
        report = stack.run(name, period="2026-11", now=now)
        reasons = [(f["account_id"], f["reason"]) for f in report["failures"]]
        assert reasons == [("acct-1", "account 'acct-1' is not known")], report
