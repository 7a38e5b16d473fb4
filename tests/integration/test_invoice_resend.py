"""An operator's resend that our SES account refused changes nothing: the invoice keeps
the email state it had, and no later run emails it again (from an independent review)."""

from __future__ import annotations

import pytest

from billing.core.catalog import Accounts
from billing_cli.local.runtime import task_handlers
from functions.send_invoices import app as send_invoices
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the `stack` fixture)
    Stack,
    emailed_to,
    invoice_store,
    paused_ses,
    run_clock,
    stack,
)

pytestmark = pytest.mark.integration


def test_a_resend_our_ses_refused_does_not_make_the_next_run_email_again(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN every invoice issued and emailed once
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    assert stack.run("run-1", period="2026-11", now=now)["emailed"] == 6
    sent = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert sent is not None
    assert sent.email_status == "sent"

    # AND an operator's resend of acct-1's invoice while our SES account is paused
    paused = [True]
    paused_ses(monkeypatch, paused)
    task_handlers()
    answer = send_invoices.handler.service().handle(
        {"resend": {"account_id": "acct-1", "period": "2026-11"}}
    )
    assert answer["status"] == "not_sent"
    paused[0] = False
    after = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert after is not None

    # WHEN the next scheduled run comes (repeating the invoice run, no operator act)
    stack.run("run-2", period="2026-11", now=now)

    # THEN the record still says its one email was sent, and nothing more was emailed
    to_acct_1 = [a for a in emailed_to(stack) if a == "billing@acme.example"]
    assert ((after.email_status, after.message_id), len(to_acct_1)) == (
        ("sent", sent.message_id),
        1,
    )
