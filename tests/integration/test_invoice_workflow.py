"""The invoice workflow: the real ASL file run by moto's Step Functions interpreter, its
tasks running the project's own handlers through the local Lambda bridge."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends

from billing.catalog import Accounts, Catalog
from billing.invoice import utc_text
from billing.periods import Period
from billing.pipeline import invoice_period, invoice_run_clock, rate_records
from billing.resources import (
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICES_TABLE,
    SENDER_ENV,
)
from billing.store.invoice_store import InvoiceStore
from billing_cli.local import workflow
from billing_cli.local.lambdas import LocalContext, bridge, create_functions
from billing_cli.local.runtime import task_handlers
from functions.send_invoices import app as send_invoices
from tests.integration.conftest import REGION, Aws
from tests.support.eventbridge import EventSink
from tests.support.kinesis import shard

EXAMPLE_EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
SENDER = "invoices@billing.example"
PERIOD = Period(2026, 11)


@dataclass
class Stack:
    aws: Aws
    state_machine: str
    sfn: Any
    bucket: str
    sink: EventSink

    def run(self, name: str, **run_input: Any) -> dict[str, Any]:
        execution = workflow.start(self.sfn, self.state_machine, name, run_input)
        return workflow.wait(self.sfn, execution)

    def emails(self) -> list[EmailMessage]:
        sent = ses_backends["123456789012"][REGION].sent_messages
        messages = [email.message_from_string(m.raw_data, policy=default) for m in sent]
        return [m for m in messages if isinstance(m, EmailMessage)]

    def domain_events(self) -> list[dict[str, Any]]:
        return self.sink.received()

    def document(self, key: str) -> bytes:
        body: bytes = self.aws.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


@pytest.fixture
def stack(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "UsageBilling")
    bucket = "test-invoices"
    aws.s3.create_bucket(Bucket=bucket)
    sink = EventSink.create("billing-events", REGION)
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    monkeypatch.setenv(INVOICE_BUCKET_ENV, bucket)
    monkeypatch.setenv(EVENT_BUS_ENV, "billing-events")
    monkeypatch.setenv(SENDER_ENV, SENDER)
    create_functions(
        boto3.client("lambda", region_name=REGION),
        boto3.client("iam", region_name=REGION),
        list(task_handlers()),
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    with bridge(task_handlers()):
        yield Stack(aws, workflow.create_invoice_run(sfn), sfn, bucket, sink)
    task_handlers()  # forget services bound to this test's resources


def run_clock(accounts: Accounts) -> str:
    return utc_text(invoice_run_clock(PERIOD, accounts))


def invoice_store(aws: Aws) -> InvoiceStore:
    return InvoiceStore(aws.dynamodb, aws.tables[INVOICES_TABLE.env_var])


def test_full_run_issues_stores_and_emails_one_invoice_per_account(
    stack: Stack, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN the example events rated into the ledgers
    stack.aws.rate_examples()
    now = run_clock(example_accounts)

    # WHEN the invoice workflow runs for November at the run clock
    counts = stack.run("run-1", period="2026-11", now=now)

    # THEN every account has one invoice, numbered 1..6 with no gap, equal to the oracle's
    assert counts["failures"] == []
    assert {k: counts[k] for k in ("issued", "skipped", "failed", "emailed")} == {
        "issued": 6,
        "skipped": 0,
        "failed": 0,
        "emailed": 6,
    }
    oracle_run = rate_records(
        EXAMPLE_EVENTS.read_bytes().splitlines(),
        example_catalog,
        example_accounts,
        invoice_run_clock(PERIOD, example_accounts),
    )
    expected = {
        invoice.account_id: invoice.to_json()
        for invoice in invoice_period(
            PERIOD,
            example_catalog,
            example_accounts,
            oracle_run.ledger,
            invoice_run_clock(PERIOD, example_accounts),
        )
    }
    store = invoice_store(stack.aws)
    numbers = []
    for account in example_accounts.accounts:
        record = store.get(account.id, "2026-11")
        assert record is not None
        assert record.stored
        assert record.email_status == "sent"
        numbers.append(record.sequence)
        stored = json.loads(stack.document(str(record.json_key)))
        oracle = expected[account.id]
        assert stored["total"] == oracle["total"]
        assert stored["lines"] == oracle["lines"]
        assert record.json_key == f"invoices/{account.id}/2026-11/{stored['invoice_number']}.json"
        assert stack.document(str(record.pdf_key)).startswith(b"%PDF-")
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]
    # Emails: one per account, to its address, with the PDF attached.
    emails = stack.emails()
    assert sorted(str(m["To"]).rsplit("<", 1)[1].rstrip(">") for m in emails) == sorted(
        a.email for a in example_accounts.accounts
    )
    for message in emails:
        attachments = list(message.iter_attachments())
        assert [a.get_content_type() for a in attachments] == ["application/pdf"]
    # Other systems heard of each invoice once.
    issued = [e for e in stack.domain_events() if e["detail-type"] == "InvoiceIssued"]
    assert sorted(e["detail"]["account_id"] for e in issued) == sorted(
        a.id for a in example_accounts.accounts
    )


def test_rerun_issues_and_emails_nothing_new(stack: Stack, example_accounts: Accounts) -> None:
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    stack.run("run-1", period="2026-11", now=now)
    stack.domain_events()

    counts = stack.run("run-2", period="2026-11", now=now)

    assert (counts["issued"], counts["skipped"], counts["failed"]) == (0, 6, 0)
    assert len(stack.emails()) == 6
    assert stack.domain_events() == []


def test_one_failing_account_is_reported_and_the_others_are_issued(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-3's invoice cannot be built (its plan vanished from the catalog)
    stack.aws.rate_examples()
    from billing.invoicing import InvoiceRun

    original = InvoiceRun._close

    def failing(self: InvoiceRun, item: dict[str, str], *args: Any) -> Any:
        if item["account_id"] == "acct-3":
            raise ValueError("plan 'starter-eur' is not in the catalog")
        return original(self, item, *args)

    monkeypatch.setattr(InvoiceRun, "_close", failing)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    assert (counts["issued"], counts["failed"], counts["emailed"]) == (5, 1, 5)
    assert counts["failures"][0]["account_id"] == "acct-3"
    assert "starter-eur" in counts["failures"][0]["reason"]
    store = invoice_store(stack.aws)
    assert store.get("acct-3", "2026-11") is None
    numbers = sorted(
        r.sequence for a in example_accounts.accounts if (r := store.get(a.id, "2026-11"))
    )
    assert numbers == [1, 2, 3, 4, 5]  # no number was spent on the failure


def test_two_concurrent_runs_give_each_account_one_invoice_numbered_without_gaps(
    stack: Stack, example_accounts: Accounts
) -> None:
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    outputs: list[dict[str, Any]] = []

    def run(name: str) -> None:
        outputs.append(stack.run(name, period="2026-11", now=now))

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(o["issued"] for o in outputs) == 6
    assert sum(o["issued"] + o["skipped"] for o in outputs) == 12
    store = invoice_store(stack.aws)
    records = [store.get(a.id, "2026-11") for a in example_accounts.accounts]
    assert sorted(r.sequence for r in records if r) == [1, 2, 3, 4, 5, 6]
    assert len({r.invoice_number for r in records if r}) == 6
    assert len(stack.emails()) == 6


def test_event_after_its_period_closed_is_rejected_as_period_closed(
    stack: Stack, example_accounts: Accounts
) -> None:
    stack.aws.rate_examples()
    stack.run("run-1", period="2026-11", now=run_clock(example_accounts))
    late = {
        "event_id": "late-1",
        "account_id": "acct-1",
        "meter": "api_requests",
        "quantity": 5,
        "timestamp": "2026-11-30T12:00:00Z",
    }
    report = stack.aws.service().process(shard([late], first=10**60))
    (result,) = report.results.values()
    assert result.rejection is not None
    assert result.rejection.reason == "PERIOD_CLOSED"


def test_rejected_address_leaves_the_invoice_undelivered_not_lost(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES refuses acct-5's address
    stack.aws.rate_examples()
    from billing.store.mailer import Mailer, Undeliverable

    original = Mailer.send_raw

    def refusing(self: Mailer, raw: bytes, to: str) -> str:
        if to == "finance@gulf.example":
            raise Undeliverable("send invoice email: MessageRejected")
        return original(self, raw, to)

    monkeypatch.setattr(Mailer, "send_raw", refusing)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the invoice is issued and stored, marked undelivered, and other systems are told
    assert (counts["issued"], counts["emailed"], counts["undelivered"]) == (6, 5, 1)
    record = invoice_store(stack.aws).get("acct-5", "2026-11")
    assert record is not None
    assert (record.stored, record.email_status) == (True, "undelivered")
    failures = [e for e in stack.domain_events() if e["detail-type"] == "InvoiceDeliveryFailed"]
    assert [e["detail"]["account_id"] for e in failures] == ["acct-5"]
    # AND a rerun does not try again behind the operator's back
    assert stack.run("run-2", period="2026-11", now=run_clock(example_accounts))["emailed"] == 0


def test_send_step_retried_after_sending_sends_nothing_more(
    stack: Stack, example_accounts: Accounts
) -> None:
    # GIVEN a run that issued and emailed everything
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    stack.run("run-1", period="2026-11", now=now)
    issued = [{"account_id": a.id, "period": "2026-11"} for a in example_accounts.accounts]

    # WHEN Step Functions retries the send step with the same input
    again = send_invoices.handler.service().send(
        {"issued_at": now, "issued": issued, "skipped": []}
    )

    # THEN no second email leaves
    assert again == {"sent": [], "undelivered": [], "failed": []}
    assert len(stack.emails()) == 6


def test_a_schedule_fired_twice_for_the_same_time_starts_one_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billing.resources import STATE_MACHINE_ENV
    from functions.start_invoice_run import app as start_invoice_run

    stack.aws.rate_examples()
    monkeypatch.setenv(STATE_MACHINE_ENV, stack.state_machine)
    start_invoice_run.starter.cache_clear()
    fired = {"scheduled_time": "2026-12-01T06:00:00Z"}

    first = start_invoice_run.handler(fired, LocalContext("start_invoice_run"))
    second = start_invoice_run.handler(fired, LocalContext("start_invoice_run"))

    # THEN both name the same execution, and there is one
    assert first["execution"] == second["execution"] == "invoice-run-20261201T0600Z"
    executions = stack.sfn.list_executions(stateMachineArn=stack.state_machine)["executions"]
    assert [e["name"] for e in executions] == ["invoice-run-20261201T0600Z"]
    counts = workflow.wait(stack.sfn, executions[0]["executionArn"])
    # Without a period, each account's latest period that ended over an hour ago is due
    # (November), and so is any older period its ledger holds open: acct-1's October.
    assert (counts["issued"], counts["failed"]) == (7, 0)
    october = invoice_store(stack.aws).get("acct-1", "2026-10")
    assert october is not None
    assert october.stored
    start_invoice_run.starter.cache_clear()


def test_an_email_that_may_have_left_is_never_sent_again(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES times out on acct-2's email: it may or may not have been sent
    stack.aws.rate_examples()
    from billing.store.mailer import DeliveryUnknown, Mailer

    original = Mailer.send_raw

    def timing_out(self: Mailer, raw: bytes, to: str) -> str:
        if to == "ap@northwind.example":
            raise DeliveryUnknown("send invoice email: ReadTimeoutError")
        return original(self, raw, to)

    monkeypatch.setattr(Mailer, "send_raw", timing_out)
    now = run_clock(example_accounts)

    counts = stack.run("run-1", period="2026-11", now=now)

    # THEN the run reports it, the record says so, and no later run sends it again
    assert (counts["issued"], counts["emailed"], counts["failed"]) == (6, 5, 1)
    assert counts["failures"][0]["error"] == "DeliveryUnknown"
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert record.email_status == "unknown"
    monkeypatch.setattr(Mailer, "send_raw", original)
    assert stack.run("run-2", period="2026-11", now=now)["emailed"] == 0
    assert len(stack.emails()) == 5


def test_an_invoice_left_unfinished_is_finished_by_the_next_scheduled_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN November's run numbered acct-1's invoice but could not store it (S3 down)
    stack.aws.rate_examples()
    from billing.store.documents import DocumentStore
    from billing.store.errors import StoreError

    original = DocumentStore.put

    def failing(self: DocumentStore, key: str, body: bytes, content_type: str) -> None:
        if key.startswith("invoices/acct-1/2026-11/"):
            raise StoreError("store invoice document: ServiceUnavailable")
        original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put", failing)
    first = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))
    assert (first["issued"], first["failed"]) == (5, 1)
    monkeypatch.setattr(DocumentStore, "put", original)

    # WHEN December's scheduled run comes (no period given)
    later = stack.run("run-2", now="2027-01-01T06:00:00Z")

    # THEN it finishes November's invoice under the number it already had, and emails it
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert (record.stored, record.email_status) == (True, "sent")
    numbers = sorted(
        r.sequence
        for a in example_accounts.accounts
        for p in ("2026-11",)
        if (r := invoice_store(stack.aws).get(a.id, p))
    )
    assert numbers == [1, 2, 3, 4, 5, 6]
    assert later["failed"] == 0


def test_an_email_the_issue_step_could_not_send_is_sent_by_the_send_step(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES throttles acct-4's email once: certainly not sent
    stack.aws.rate_examples()
    from billing.store.mailer import Mailer, NotSent

    original = Mailer.send_raw
    throttled: list[str] = []

    def throttling_once(self: Mailer, raw: bytes, to: str) -> str:
        if to == "keiri@tokyo-data.example" and not throttled:
            throttled.append(to)
            raise NotSent("send invoice email: TooManyRequestsException")
        return original(self, raw, to)

    monkeypatch.setattr(Mailer, "send_raw", throttling_once)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the Send step sends it: every invoice emailed once, nothing failed
    assert throttled == ["keiri@tokyo-data.example"]
    assert (counts["issued"], counts["emailed"], counts["failed"]) == (6, 6, 0)
    assert len(stack.emails()) == 6
    record = invoice_store(stack.aws).get("acct-4", "2026-11")
    assert record is not None
    assert record.email_status == "sent"


def test_a_send_step_that_fails_whole_still_counts_what_the_issue_step_emailed(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Send step fails whole (every attempt), after Issue emailed what it issued
    stack.aws.rate_examples()
    from billing.invoicing import InvoiceRun

    def broken(self: InvoiceRun, event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("send step broken")

    monkeypatch.setattr(InvoiceRun, "send", broken)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the report counts the emails that left, and names the Send step's failure
    assert (counts["issued"], counts["emailed"]) == (6, 6)
    assert len(stack.emails()) == 6
    assert counts["failures"] == [{"error": "RuntimeError", "reason": "emailing a batch failed"}]
