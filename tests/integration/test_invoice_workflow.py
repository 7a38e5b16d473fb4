"""The invoice workflow: the real ASL file run by moto's Step Functions interpreter, its
tasks running the project's own handlers through the local Lambda bridge."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Any

import boto3
import pytest
from moto.ses.models import ses_backends

from billing.core.catalog import Accounts
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.settings import (
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICES_TABLE,
    RUN_BUCKET_ENV,
    SENDER_ENV,
)
from billing.store.invoice_store import InvoiceStore
from billing_cli.local import workflow
from billing_cli.local.lambdas import LocalContext, bridge, create_functions
from billing_cli.local.runtime import task_handlers
from billing_cli.preview import invoice_run_clock
from functions.send_invoices import app as send_invoices
from tests.integration.conftest import REGION, Aws
from tests.support.eventbridge import EventSink
from tests.support.examples import EXAMPLE_INVOICES, invoice_view
from tests.support.kinesis import shard

SENDER = "invoices@billing.example"
PERIOD = Period(2026, 11)
RUN_BUCKET = "test-invoice-runs"


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
    aws.s3.create_bucket(Bucket=RUN_BUCKET)
    monkeypatch.setenv(RUN_BUCKET_ENV, RUN_BUCKET)
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
        yield Stack(aws, workflow.create_invoice_run(sfn, RUN_BUCKET), sfn, bucket, sink)
    task_handlers()  # forget services bound to this test's resources


def run_clock(accounts: Accounts) -> str:
    return utc_text(invoice_run_clock(PERIOD, accounts))


def invoice_store(aws: Aws) -> InvoiceStore:
    return InvoiceStore(aws.dynamodb, aws.tables[INVOICES_TABLE.env_var])


def test_full_run_issues_stores_and_emails_one_invoice_per_account(
    stack: Stack, example_accounts: Accounts
) -> None:
    # GIVEN the example events rated into the ledgers
    stack.aws.rate_examples()
    now = run_clock(example_accounts)

    # WHEN the invoice workflow runs for November at the run clock
    counts = stack.run("run-1", period="2026-11", now=now)

    # THEN every account has one invoice, numbered 1..6 with no gap, each the one worked
    # out by hand (tests/support/examples.py)
    assert counts["failures"] == []
    assert {k: counts[k] for k in ("issued", "skipped", "failed", "emailed")} == {
        "issued": 6,
        "skipped": 0,
        "failed": 0,
        "emailed": 6,
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
        assert invoice_view(stored) == EXAMPLE_INVOICES[account.id]
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
    from billing.invoicing.issue import IssueInvoices
    from billing.invoicing.steps import Item

    original = IssueInvoices._close

    def failing(self: IssueInvoices, item: Item, *args: Any) -> Any:
        if item.account_id == "acct-3":
            raise ValueError("plan 'starter-eur' is not in the catalog")
        return original(self, item, *args)

    monkeypatch.setattr(IssueInvoices, "_close", failing)

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
    # The local Lambda bridge runs one invocation at a time, so the two runs' Issue steps
    # never write the sequence at the same moment here: the race itself is forced in
    # tests/integration/test_invoice_numbering.py.
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
    store = invoice_store(stack.aws)
    records = [store.get(a.id, "2026-11") for a in example_accounts.accounts]
    issued = [
        {"account_id": r.account_id, "period": r.period, "invoice_number": r.invoice_number}
        for r in records
        if r is not None
    ]
    assert len(issued) == 6

    # WHEN Step Functions retries the send step with the same input
    again = send_invoices.handler.service().handle(
        {"issued_at": now, "issued": issued, "skipped": []}
    )

    # THEN no second email leaves
    assert again == {"sent": [], "undelivered": [], "failed": []}
    assert len(stack.emails()) == 6


def test_a_schedule_fired_twice_for_the_same_time_starts_one_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billing.settings import STATE_MACHINE_ENV
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

    original = DocumentStore.put_new

    def failing(self: DocumentStore, key: str, body: bytes, content_type: str) -> bytes:
        if key.startswith("invoices/acct-1/2026-11/"):
            raise StoreError("store invoice document: ServiceUnavailable")
        return original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put_new", failing)
    first = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))
    assert (first["issued"], first["failed"]) == (5, 1)
    monkeypatch.setattr(DocumentStore, "put_new", original)

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


def send_step_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Send step fails whole, every attempt."""
    from billing.invoicing.send import SendInvoices
    from billing.invoicing.steps import SendInput, SendOutput

    def broken(self: SendInvoices, batch: SendInput, *args: Any) -> SendOutput:
        raise RuntimeError("send step broken")

    monkeypatch.setattr(SendInvoices, "send", broken)


def test_a_send_step_that_fails_whole_still_counts_what_the_issue_step_emailed(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Send step fails whole (every attempt), after Issue emailed what it issued
    stack.aws.rate_examples()
    send_step_broken(monkeypatch)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the report counts the emails that left, and names the Send step's failure
    assert (counts["issued"], counts["emailed"]) == (6, 6)
    assert len(stack.emails()) == 6
    assert counts["failures"] == [{"error": "RuntimeError", "reason": "the Send step failed"}]


def test_a_send_step_that_fails_whole_names_each_invoice_it_left_unemailed(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES throttles acct-3's email in the Issue step (left to Send), and Send fails whole
    stack.aws.rate_examples()
    send_step_broken(monkeypatch)
    throttled = {"rechnungen@mueller.example": "TooManyRequestsException"}
    ses_answering(monkeypatch, throttled)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the report names acct-3's invoice as not emailed, with the step's error
    (failure,) = counts["failures"]
    assert (failure["account_id"], failure["period"], failure["error"]) == (
        "acct-3",
        "2026-11",
        "RuntimeError",
    )
    assert failure["reason"] == (
        "maybe not emailed: the Send step failed (the next run emails it if not)"
    )
    record = invoice_store(stack.aws).get("acct-3", "2026-11")
    assert record is not None
    assert failure["invoice_number"] == record.invoice_number
    assert (counts["issued"], counts["emailed"]) == (6, 5)


# --- the outbox: every invoice announced, whatever stops the Issue step -------------------

ACCOUNT_IDS = [f"acct-{i}" for i in range(1, 7)]


def announced_numbers(stack: Stack) -> dict[str, int]:
    """InvoiceIssued events received since the last call, counted per invoice number; each
    event's id is checked to be the stable one consumers dedupe on."""
    counts: dict[str, int] = {}
    for event in stack.domain_events():
        if event["detail-type"] != "InvoiceIssued":
            continue
        number = event["detail"]["invoice_number"]
        assert event["detail"]["event_id"] == f"InvoiceIssued:{number}"
        counts[number] = counts.get(number, 0) + 1
    return counts


def all_numbers(stack: Stack) -> dict[str, str]:
    """Each account's November invoice number."""
    store = invoice_store(stack.aws)
    found = {a: store.get(a, "2026-11") for a in ACCOUNT_IDS}
    return {a: r.invoice_number for a, r in found.items() if r is not None}


def emailed_to(stack: Stack) -> list[str]:
    return sorted(str(m["To"]).rsplit("<", 1)[1].rstrip(">") for m in stack.emails())


def test_a_pdf_failing_to_render_fails_its_account_only_spends_no_number_and_the_next_run_issues_it(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-4's PDF fails to render with an error nobody expected, on every attempt
    stack.aws.rate_examples()
    import billing.invoicing.issue

    original = billing.invoicing.issue.render_invoice_pdf

    def failing(invoice: Any, account: Any, issuer: Any) -> bytes:
        if account.id == "acct-4":
            raise TypeError("unsupported operand type(s)")
        return original(invoice, account, issuer)

    monkeypatch.setattr(billing.invoicing.issue, "render_invoice_pdf", failing)
    now = run_clock(example_accounts)

    first = stack.run("run-1", period="2026-11", now=now)
    again = stack.run("run-1-again", period="2026-11", now=now)

    # THEN the five others are issued, announced and emailed; acct-4 alone failed, twice
    assert (first["issued"], first["skipped"], first["failed"], first["emailed"]) == (5, 0, 1, 5)
    assert [(f["account_id"], f["error"]) for f in first["failures"]] == [("acct-4", "TypeError")]
    assert [(f["account_id"], f["error"]) for f in again["failures"]] == [("acct-4", "TypeError")]
    # AND no number was spent on it: the numbers taken are 1..5, none of them a hole
    numbers = all_numbers(stack)
    assert "acct-4" not in numbers
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers.values()) == [1, 2, 3, 4, 5]
    heard = announced_numbers(stack)
    assert heard == {numbers[a]: 1 for a in ACCOUNT_IDS if a != "acct-4"}
    assert len(stack.emails()) == 5

    # WHEN the next run comes, the renderer mended
    monkeypatch.setattr(billing.invoicing.issue, "render_invoice_pdf", original)
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN acct-4's invoice takes the next number, 6, and is announced once and emailed once
    assert (second["issued"], second["skipped"], second["failed"], second["emailed"]) == (
        1,
        5,
        0,
        1,
    )
    numbers_after = all_numbers(stack)
    assert numbers_after == {**numbers, "acct-4": "INV-2026-000006"}
    assert announced_numbers(stack) == {"INV-2026-000006": 1}
    assert emailed_to(stack) == sorted(a.email for a in example_accounts.accounts)
    record = invoice_store(stack.aws).get("acct-4", "2026-11")
    assert record is not None
    assert (record.stored, record.announced, record.email_status) == (True, True, "sent")


def test_a_record_an_earlier_attempt_numbered_is_finished_under_its_number(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an attempt that numbered acct-1's invoice and stopped before storing it (S3 down)
    stack.aws.rate_examples()
    from billing.store.documents import DocumentStore
    from billing.store.errors import StoreError

    original = DocumentStore.put_new

    def failing(self: DocumentStore, key: str, body: bytes, content_type: str) -> bytes:
        if key.startswith("invoices/acct-1/"):
            raise StoreError("store invoice document: ServiceUnavailable")
        return original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put_new", failing)
    now = run_clock(example_accounts)
    first = stack.run("run-1", period="2026-11", now=now)
    assert [f["account_id"] for f in first["failures"]] == ["acct-1"]
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert record.status == "numbered"
    monkeypatch.setattr(DocumentStore, "put_new", original)

    # WHEN the next run comes
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN the invoice is stored and emailed under the number it was given
    assert (second["issued"], second["failed"]) == (1, 0)
    stored = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert stored is not None
    assert (stored.invoice_number, stored.stored) == (record.invoice_number, True)


def test_an_announcement_the_bus_refused_is_made_by_the_next_run_exactly_once(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the bus refuses acct-2's InvoiceIssued entry on every attempt of run 1
    stack.aws.rate_examples()
    from billing.store.events import EventPublisher

    original = EventPublisher._put
    refusals: list[str] = []

    def refusing(self: EventPublisher, events: Any) -> dict[int, str]:
        refused = [
            i
            for i, (kind, detail) in enumerate(events)
            if kind == "InvoiceIssued" and detail["account_id"] == "acct-2"
        ]
        kept = [i for i in range(len(events)) if i not in refused]
        failed = original(self, [events[i] for i in kept])
        answer = {kept[i]: reason for i, reason in failed.items()}
        for i in refused:
            refusals.append(events[i][1]["invoice_number"])
            answer[i] = "publish InvoiceIssued: the bus refused the event (InternalFailure)"
        return answer

    monkeypatch.setattr(EventPublisher, "_put", refusing)
    now = run_clock(example_accounts)

    first = stack.run("run-1", period="2026-11", now=now)

    # THEN acct-2 is reported failed but still emailed; its record is not announced
    assert len(refusals) == 4  # the publisher's attempts
    assert (first["issued"], first["failed"], first["emailed"]) == (5, 1, 6)
    assert first["failures"][0]["account_id"] == "acct-2"
    assert "refused" in first["failures"][0]["reason"]
    numbers = all_numbers(stack)
    assert announced_numbers(stack) == {numbers[a]: 1 for a in ACCOUNT_IDS if a != "acct-2"}
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert (record.stored, record.announced, record.email_status) == (True, False, "sent")

    # WHEN the next run comes and the bus takes it
    monkeypatch.setattr(EventPublisher, "_put", original)
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN it announces acct-2's invoice, once, and emails nobody again
    assert (second["issued"], second["skipped"], second["failed"], second["emailed"]) == (
        1,
        5,
        0,
        0,
    )
    assert announced_numbers(stack) == {numbers["acct-2"]: 1}
    assert len(stack.emails()) == 6
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert record.announced
    # AND a third run has nothing left to do
    third = stack.run("run-3", period="2026-11", now=now)
    assert (third["issued"], third["skipped"], third["failed"]) == (0, 6, 0)
    assert announced_numbers(stack) == {}


def test_an_issue_step_stopped_after_storing_is_announced_and_emailed_by_the_next_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step stops after storing every invoice, before announcing any (an
    # error the workflow does not retry: the batch fails)
    stack.aws.rate_examples()
    from billing.store.events import EventPublisher

    original = EventPublisher.publish_all
    stops: list[int] = []

    def stopping_once(self: EventPublisher, events: Any) -> dict[int, str]:
        if not stops:
            stops.append(len(events))
            raise RuntimeError("the function stopped")
        return original(self, events)

    monkeypatch.setattr(EventPublisher, "publish_all", stopping_once)
    now = run_clock(example_accounts)

    first = stack.run("run-1", period="2026-11", now=now)

    assert stops == [6]
    assert (first["issued"], first["failed"], first["emailed"]) == (0, 6, 0)
    store = invoice_store(stack.aws)
    records = [store.get(a, "2026-11") for a in ACCOUNT_IDS]
    assert [(r.stored, r.announced, r.email_status) for r in records if r] == [
        (True, False, None)
    ] * 6
    assert announced_numbers(stack) == {}
    assert stack.emails() == []

    # WHEN the next run comes
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN it announces and emails each of them, once, and counts them as its own
    assert (second["issued"], second["skipped"], second["failed"], second["emailed"]) == (
        6,
        0,
        0,
        6,
    )
    numbers = all_numbers(stack)
    assert announced_numbers(stack) == {numbers[a]: 1 for a in ACCOUNT_IDS}
    assert emailed_to(stack) == sorted(a.email for a in example_accounts.accounts)
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers.values()) == [1, 2, 3, 4, 5, 6]


def test_an_issue_step_stopped_after_announcing_announces_again_with_the_same_event_ids(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step stops after the bus accepted the events, before recording them
    stack.aws.rate_examples()
    from billing.store.events import EventPublisher

    original = EventPublisher.publish_all
    stops: list[int] = []

    def stopping_after_once(self: EventPublisher, events: Any) -> dict[int, str]:
        failed = original(self, events)
        if not stops:
            stops.append(len(events))
            raise RuntimeError("the function stopped")
        return failed

    monkeypatch.setattr(EventPublisher, "publish_all", stopping_after_once)
    now = run_clock(example_accounts)
    stack.run("run-1", period="2026-11", now=now)
    first_events = [e["detail"] for e in stack.domain_events()]

    # WHEN the next run finishes them
    second = stack.run("run-2", period="2026-11", now=now)
    second_events = [e["detail"] for e in stack.domain_events()]

    # THEN each event is delivered again (at least once), the same, so consumers dedupe
    assert (second["issued"], second["emailed"], second["failed"]) == (6, 6, 0)
    assert len(first_events) == 6
    key = "invoice_number"
    assert sorted(second_events, key=lambda d: d[key]) == sorted(first_events, key=lambda d: d[key])
    assert len({d["event_id"] for d in first_events}) == 6
    assert len(stack.emails()) == 6


def test_an_issue_step_retried_by_the_workflow_finishes_and_counts_what_it_stored(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step is throttled once after storing every invoice: the workflow
    # retries the step
    stack.aws.rate_examples()
    from billing.store.errors import Throttled
    from billing.store.events import EventPublisher

    original = EventPublisher.publish_all
    stops: list[int] = []

    def throttled_once(self: EventPublisher, events: Any) -> dict[int, str]:
        if not stops:
            stops.append(len(events))
            raise Throttled("publish InvoiceIssued: ThrottlingException")
        return original(self, events)

    monkeypatch.setattr(EventPublisher, "publish_all", throttled_once)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the retry announces and emails them, and the run counts them issued and emailed
    assert stops == [6]
    assert counts["failures"] == []
    assert (counts["issued"], counts["skipped"], counts["failed"], counts["emailed"]) == (
        6,
        0,
        0,
        6,
    )
    numbers = all_numbers(stack)
    assert announced_numbers(stack) == {numbers[a]: 1 for a in ACCOUNT_IDS}
    assert len(stack.emails()) == 6


def test_a_throttled_batch_read_is_retried_by_the_workflow(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step's first read of the batch's records is throttled
    stack.aws.rate_examples()
    from billing.store.errors import Throttled

    original = InvoiceStore.get_many
    throttled: list[int] = []

    def throttling_once(self: InvoiceStore, keys: Any) -> Any:
        if not throttled:
            throttled.append(len(keys))
            raise Throttled("load invoice records: keys left unprocessed")
        return original(self, keys)

    monkeypatch.setattr(InvoiceStore, "get_many", throttling_once)

    counts = stack.run("run-1", period="2026-11", now=run_clock(example_accounts))

    # THEN the step is retried and the batch issued, not failed whole
    assert throttled == [6]
    assert (counts["issued"], counts["failed"], counts["emailed"]) == (6, 0, 6)
    assert len(stack.emails()) == 6


# --- stored documents are immutable: what is emailed and announced is what is stored ------


def invoice_run_with(monkeypatch: pytest.MonkeyPatch, issuer_name: str) -> Any:
    """The Issue step's service as the handler builds it, but with its own issuer name, so
    that two attempts on one invoice render different bytes (settings changed between)."""
    from billing.invoicing.issue import IssueInvoices
    from billing.settings import SELLER_ENV
    from billing.wiring import invoice_run

    monkeypatch.setenv(SELLER_ENV, json.dumps({"legal_name": issuer_name}))
    run = invoice_run("issue")
    assert isinstance(run, IssueInvoices)
    return run


def test_a_late_attempt_never_overwrites_the_documents_another_attempt_stored_and_emailed(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two attempts on acct-1's invoice: the late one read the record while it was
    # `numbered`, and the other stored, announced and emailed it before the late one stores
    stack.aws.rate_examples()
    from billing.invoicing.issue import IssueInvoices

    now = run_clock(example_accounts)
    batch = {"issued_at": now, "items": [{"account_id": "acct-1", "period": "2026-11"}]}
    late = invoice_run_with(monkeypatch, "Late Attempt Ltd")
    first = invoice_run_with(monkeypatch, "First Attempt Ltd")
    original = IssueInvoices._store
    overtaken: list[str] = []

    def overtaken_once(self: IssueInvoices, record: Any, invoice: Any, account: Any) -> Any:
        if self is late and not overtaken:
            overtaken.append(record.invoice_number)
            assert first.handle(batch)["issued"]  # the first attempt finishes meanwhile
        return original(self, record, invoice, account)

    monkeypatch.setattr(IssueInvoices, "_store", overtaken_once)

    # WHEN the late attempt goes on and stores its documents
    outcome = late.handle(batch)

    # THEN it counts the invoice as skipped, and the documents stored are the first
    # attempt's, byte for byte what was emailed
    assert [item["account_id"] for item in outcome["skipped"]] == ["acct-1"]
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    (message,) = stack.emails()
    (attachment,) = message.iter_attachments()
    assert stack.document(str(record.pdf_key)) == attachment.get_content()
    stored = json.loads(stack.document(str(record.json_key)))
    (issued,) = [e["detail"] for e in stack.domain_events() if e["detail-type"] == "InvoiceIssued"]
    assert (issued["total"], issued["invoice_number"]) == (
        stored["total"],
        stored["invoice_number"],
    )


def test_an_attempt_that_finds_documents_stored_uses_them_for_the_record_and_the_email(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an attempt that stored acct-1's documents and stopped before recording them
    stack.aws.rate_examples()

    now = run_clock(example_accounts)
    batch = {"issued_at": now, "items": [{"account_id": "acct-1", "period": "2026-11"}]}
    stopped = invoice_run_with(monkeypatch, "Stopped Attempt Ltd")
    original = InvoiceStore.mark_stored

    def stopping(self: InvoiceStore, record: Any, **values: Any) -> Any:
        raise RuntimeError("the function stopped")

    monkeypatch.setattr(InvoiceStore, "mark_stored", stopping)
    assert stopped.handle(batch)["failed"]
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    pdf_key = f"invoices/acct-1/2026-11/{record.invoice_number}.pdf"
    first_pdf = stack.document(pdf_key)
    monkeypatch.setattr(InvoiceStore, "mark_stored", original)

    # WHEN another attempt, with other settings, finishes it
    outcome = invoice_run_with(monkeypatch, "Next Attempt Ltd").handle(batch)

    # THEN the stored PDF is the first one, and it is what the customer got
    assert [item["account_id"] for item in outcome["issued"]] == ["acct-1"]
    assert stack.document(pdf_key) == first_pdf
    (message,) = stack.emails()
    (attachment,) = message.iter_attachments()
    assert attachment.get_content() == first_pdf


# --- email states a retry can finish --------------------------------------------------------


class Killed(BaseException):
    """The function stopped (a timeout, out of memory): no handler of the step runs."""


def issue_alone(account_id: str, now: str) -> Any:
    """The Issue step's service, as its handler runs it, on one account's batch."""
    from functions.issue_invoices import app as issue_invoices

    return issue_invoices.handler.service().handle(
        {"issued_at": now, "items": [{"account_id": account_id, "period": "2026-11"}]}
    )


def later_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the steps' wall clock (which email claims expire by) `seconds` ahead."""
    import billing.invoicing.delivery

    real = billing.invoicing.delivery.wall_clock
    monkeypatch.setattr(
        billing.invoicing.delivery, "wall_clock", lambda: real() + timedelta(seconds=seconds)
    )


def test_a_step_killed_while_building_an_email_leaves_it_to_the_next_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step stored acct-2's invoice and was killed building its email
    stack.aws.rate_examples()
    import billing.invoicing.delivery

    original = billing.invoicing.delivery.invoice_email

    def killed(invoice: Any, account: Any, pdf: bytes, issuer: Any) -> bytes:
        raise Killed()

    monkeypatch.setattr(billing.invoicing.delivery, "invoice_email", killed)
    now = run_clock(example_accounts)
    with pytest.raises(Killed):
        issue_alone("acct-2", now)
    monkeypatch.setattr(billing.invoicing.delivery, "invoice_email", original)

    # WHEN the next run comes
    counts = stack.run("run-2", period="2026-11", now=now)

    # THEN acct-2's invoice is emailed (nothing had been handed to SES), once
    assert counts["failures"] == []
    assert emailed_to(stack) == sorted(a.email for a in example_accounts.accounts)
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert record.email_status == "sent"


def test_a_step_killed_while_sending_is_reported_once_its_claim_expired_never_sent_twice(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step was killed while SES had acct-2's email in hand
    stack.aws.rate_examples()
    from billing.settings import EMAIL_CLAIM_LEASE_SECONDS
    from billing.store.mailer import Mailer

    original = Mailer.send_raw

    def killed(self: Mailer, raw: bytes, to: str) -> str:
        raise Killed()

    monkeypatch.setattr(Mailer, "send_raw", killed)
    now = run_clock(example_accounts)
    with pytest.raises(Killed):
        issue_alone("acct-2", now)
    monkeypatch.setattr(Mailer, "send_raw", original)

    # WHEN a run comes while the claim may still be live: it leaves it alone
    live = stack.run("run-2", period="2026-11", now=now)
    assert live["failures"] == []
    assert "ap@northwind.example" not in emailed_to(stack)

    # AND a run comes after the claim expired
    later_by(monkeypatch, EMAIL_CLAIM_LEASE_SECONDS + 1)
    expired = stack.run("run-3", period="2026-11", now=now)

    # THEN it reports acct-2's email as not known to have left, and sends it no second time
    assert [(f["account_id"], f["error"]) for f in expired["failures"]] == [
        ("acct-2", "DeliveryUnknown")
    ]
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert record.email_status == "unknown"
    assert "ap@northwind.example" not in emailed_to(stack)
    assert stack.run("run-4", period="2026-11", now=now)["failures"] == []


def paused_ses(monkeypatch: pytest.MonkeyPatch, paused: list[bool]) -> None:
    """SES answers SendingPausedException while `paused[0]`, as a paused account does."""
    from botocore.exceptions import ClientError

    from billing.store.mailer import Mailer

    original = Mailer.__init__

    class Pausable:
        def __init__(self, client: Any) -> None:
            self._client = client

        def send_email(self, **request: Any) -> Any:
            if paused[0]:
                raise ClientError(
                    {"Error": {"Code": "SendingPausedException", "Message": "paused"}},
                    "SendEmail",
                )
            return self._client.send_email(**request)

    def init(self: Mailer, client: Any, *args: Any, **kwargs: Any) -> None:
        original(self, Pausable(client), *args, **kwargs)

    monkeypatch.setattr(Mailer, "__init__", init)


def ses_answering(monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    """SES answers the error code `answers[address]` for that recipient, while present."""
    from botocore.exceptions import ClientError

    from billing.store.mailer import Mailer

    original = Mailer.__init__

    class Faulty:
        def __init__(self, client: Any) -> None:
            self._client = client

        def send_email(self, **request: Any) -> Any:
            (to,) = request["Destination"]["ToAddresses"]
            if to in answers:
                error = {"Code": answers[to], "Message": "refused"}
                raise ClientError({"Error": error}, "SendEmail")  # type: ignore[arg-type]
            return self._client.send_email(**request)

    def init(self: Mailer, client: Any, *args: Any, **kwargs: Any) -> None:
        original(self, Faulty(client), *args, **kwargs)

    monkeypatch.setattr(Mailer, "__init__", init)
    task_handlers()


def test_a_paused_sending_account_is_ours_retried_and_never_blamed_on_customers(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN our SES account is paused during the run
    stack.aws.rate_examples()
    paused = [True]
    paused_ses(monkeypatch, paused)
    task_handlers()  # the services are built again, on the paused client
    now = run_clock(example_accounts)

    first = stack.run("run-1", period="2026-11", now=now)

    # THEN every invoice is issued, none emailed, none undelivered: six failures of ours
    assert (first["issued"], first["emailed"], first["undelivered"]) == (6, 0, 0)
    assert sorted((f["account_id"], f["error"]) for f in first["failures"]) == [
        (a, "SendingUnavailable") for a in ACCOUNT_IDS
    ]
    assert first["undelivered_invoices"] == []
    kinds = {e["detail-type"] for e in stack.domain_events()}
    assert kinds == {"InvoiceIssued"}  # no InvoiceDeliveryFailed
    records = [invoice_store(stack.aws).get(a, "2026-11") for a in ACCOUNT_IDS]
    assert [r.email_status for r in records if r] == [None] * 6

    # WHEN SES is healthy again and the next run comes
    paused[0] = False
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN each is emailed, once
    assert (second["emailed"], second["failed"]) == (6, 0)
    assert emailed_to(stack) == sorted(a.email for a in example_accounts.accounts)


def test_invoice_delivery_failed_the_bus_refused_is_published_by_the_next_run(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES refuses acct-5's address and the bus refuses InvoiceDeliveryFailed in run 1
    stack.aws.rate_examples()
    from billing.store.events import EventPublisher
    from billing.store.mailer import Mailer, Undeliverable

    original_send = Mailer.send_raw

    def refusing(self: Mailer, raw: bytes, to: str) -> str:
        if to == "finance@gulf.example":
            raise Undeliverable("send invoice email: BadRequestException")
        return original_send(self, raw, to)

    original_put = EventPublisher._put

    def bus_refusing(self: EventPublisher, events: Any) -> dict[int, str]:
        if any(kind == "InvoiceDeliveryFailed" for kind, _ in events):
            return dict.fromkeys(range(len(events)), "the bus refused the event")
        return original_put(self, events)

    monkeypatch.setattr(Mailer, "send_raw", refusing)
    monkeypatch.setattr(EventPublisher, "_put", bus_refusing)
    now = run_clock(example_accounts)

    first = stack.run("run-1", period="2026-11", now=now)

    assert first["undelivered"] == 1
    assert [f["account_id"] for f in first["failures"]] == ["acct-5"]
    assert [e for e in stack.domain_events() if e["detail-type"] == "InvoiceDeliveryFailed"] == []

    # WHEN the bus takes events again and the next run comes
    monkeypatch.setattr(EventPublisher, "_put", original_put)
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN InvoiceDeliveryFailed is published once, and nobody is emailed again
    failed = [e for e in stack.domain_events() if e["detail-type"] == "InvoiceDeliveryFailed"]
    assert [(e["detail"]["account_id"], e["detail"]["reason"]) for e in failed] == [
        ("acct-5", "send invoice email: BadRequestException")
    ]
    assert (second["emailed"], second["failed"]) == (0, 0)
    third = stack.run("run-3", period="2026-11", now=now)
    assert [e for e in stack.domain_events() if e["detail-type"] == "InvoiceDeliveryFailed"] == []
    assert third["failures"] == []


# --- bounces and complaints, through the configuration set's event destination ----------


def ses_event(kind: str, message: EmailMessage, message_id: str, **body: Any) -> dict[str, Any]:
    """What SES publishes on EventBridge for an email of ours (the detail, as documented)."""
    headers = [{"name": name, "value": str(value)} for name, value in message.items()]
    detail = {
        "eventType": kind,
        "mail": {
            "messageId": message_id,
            "destination": [str(message["To"])],
            "headersTruncated": False,
            "headers": headers,
            "tags": {"ses:configuration-set": ["billing-email"]},
        },
        **body,
    }
    names = {
        "Bounce": "Email Bounced",
        "Complaint": "Email Complaint Received",
        "Delivery": "Email Delivered",
    }
    return {"source": "aws.ses", "detail-type": names[kind], "detail": detail}


def sent_to(stack: Stack, address: str) -> EmailMessage:
    (message,) = [m for m in stack.emails() if address in str(m["To"])]
    return message


def test_a_permanent_bounce_is_recorded_on_the_invoice_and_published_once(
    stack: Stack, example_accounts: Accounts
) -> None:
    # GIVEN acct-2's invoice was emailed
    stack.aws.rate_examples()
    stack.run("run-1", period="2026-11", now=run_clock(example_accounts))
    stack.domain_events()
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert record.message_id
    bounce = {
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "ap@northwind.example"}],
        }
    }
    event = ses_event("Bounce", sent_to(stack, "ap@northwind.example"), record.message_id, **bounce)
    from functions.email_events import app as email_events

    email_events.service.cache_clear()

    # WHEN SES reports the permanent bounce (and EventBridge delivers it twice)
    email_events.handler(event, LocalContext("email_events"))
    email_events.handler(event, LocalContext("email_events"))

    # THEN the invoice records it, and other systems hear of it once
    bounced = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert bounced is not None
    assert (bounced.email_status, bounced.email_reason) == ("bounced", "bounce: Permanent/General")
    failures = [e["detail"] for e in stack.domain_events()]
    assert [(d["account_id"], d["status"], d["reason"]) for d in failures] == [
        ("acct-2", "bounced", "bounce: Permanent/General")
    ]
    # AND a run lists it among invoices needing nothing more, and sends nothing by itself
    again = stack.run("run-2", period="2026-11", now=run_clock(example_accounts))
    assert (again["emailed"], again["failed"]) == (0, 0)


def test_a_complaint_is_recorded_and_published_and_a_transient_bounce_changes_nothing(
    stack: Stack, example_accounts: Accounts
) -> None:
    stack.aws.rate_examples()
    stack.run("run-1", period="2026-11", now=run_clock(example_accounts))
    stack.domain_events()
    store = invoice_store(stack.aws)
    acme, gulf = store.get("acct-1", "2026-11"), store.get("acct-5", "2026-11")
    assert acme is not None
    assert gulf is not None
    from functions.email_events import app as email_events

    email_events.service.cache_clear()
    soft = {"bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}}
    complaint = {"complaint": {"complaintFeedbackType": "abuse"}}

    email_events.handler(
        ses_event("Bounce", sent_to(stack, "billing@acme.example"), str(acme.message_id), **soft),
        LocalContext("email_events"),
    )
    email_events.handler(
        ses_event(
            "Complaint", sent_to(stack, "finance@gulf.example"), str(gulf.message_id), **complaint
        ),
        LocalContext("email_events"),
    )

    assert (store.get("acct-1", "2026-11") or acme).email_status == "sent"
    complained = store.get("acct-5", "2026-11")
    assert complained is not None
    assert (complained.email_status, complained.email_reason) == (
        "complained",
        "complaint: abuse",
    )
    events = stack.domain_events()
    assert [(e["detail-type"], e["detail"]["account_id"]) for e in events] == [
        ("InvoiceEmailComplaint", "acct-5")
    ]


def test_feedback_on_an_email_that_is_not_an_invoice_is_ignored(stack: Stack) -> None:
    from functions.email_events import app as email_events

    email_events.service.cache_clear()
    message = EmailMessage()
    message["To"] = "someone@example.com"
    bounce = {"bounce": {"bounceType": "Permanent", "bounceSubType": "General"}}
    assert email_events.handler(
        ses_event("Bounce", message, "x", **bounce), LocalContext("email_events")
    ) == {"recorded": None}


def test_a_resend_waits_for_a_claim_that_may_be_live_and_then_sends_the_stored_bytes(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Issue step was killed while SES had acct-2's email in hand
    stack.aws.rate_examples()
    from billing.invoicing.send import ResendRefused
    from billing.settings import EMAIL_CLAIM_LEASE_SECONDS
    from billing.store.mailer import Mailer

    original = Mailer.send_raw

    def killed(self: Mailer, raw: bytes, to: str) -> str:
        raise Killed()

    monkeypatch.setattr(Mailer, "send_raw", killed)
    with pytest.raises(Killed):
        issue_alone("acct-2", run_clock(example_accounts))
    monkeypatch.setattr(Mailer, "send_raw", original)
    service = send_invoices.handler.service()
    request = {"resend": {"account_id": "acct-2", "period": "2026-11"}}

    # WHEN an operator resends it while the claim may still be live THEN it is refused
    with pytest.raises(ResendRefused, match="is being emailed right now"):
        service.handle(request)

    # WHEN the claim has expired THEN the resend sends the stored PDF, once
    later_by(monkeypatch, EMAIL_CLAIM_LEASE_SECONDS + 1)
    answer = service.handle(request)
    assert answer["status"] == "sent"
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert (record.email_status, record.message_id) == ("sent", answer["message_id"])
    (attachment,) = sent_to(stack, "ap@northwind.example").iter_attachments()
    assert attachment.get_content() == stack.document(str(record.pdf_key))


def test_a_delivery_report_settles_an_email_not_known_to_have_left(
    stack: Stack, example_accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SES took acct-2's email but the step was killed before recording it
    stack.aws.rate_examples()
    from billing.settings import EMAIL_CLAIM_LEASE_SECONDS
    from billing.store.mailer import Mailer
    from functions.email_events import app as email_events

    original = Mailer.send_raw

    def killed_after_sending(self: Mailer, raw: bytes, to: str) -> str:
        original(self, raw, to)
        raise Killed()

    monkeypatch.setattr(Mailer, "send_raw", killed_after_sending)
    with pytest.raises(Killed):
        issue_alone("acct-2", run_clock(example_accounts))
    monkeypatch.setattr(Mailer, "send_raw", original)
    email_events.service.cache_clear()
    stack.domain_events()

    # WHEN SES reports its delivery
    delivered = ses_event("Delivery", sent_to(stack, "ap@northwind.example"), "ses-0001")
    email_events.handler(delivered, LocalContext("email_events"))

    # THEN the invoice says sent, with SES's id, and no later run reports it or sends again
    record = invoice_store(stack.aws).get("acct-2", "2026-11")
    assert record is not None
    assert (record.email_status, record.message_id) == ("sent", "ses-0001")
    later_by(monkeypatch, EMAIL_CLAIM_LEASE_SECONDS + 1)
    after = stack.run("run-2", period="2026-11", now=run_clock(example_accounts))
    assert after["failures"] == []
    assert emailed_to(stack).count("ap@northwind.example") == 1
    assert [e for e in stack.domain_events() if e["detail-type"] != "InvoiceIssued"] == []
