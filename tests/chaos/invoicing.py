"""The invoicing half of the chaos run, on the local runtime (moto, the real invoice
workflow's ASL run by moto's Step Functions interpreter, the project's handlers): the rated
ledgers copied in, then

1. an Issue step invocation over the first half of the due accounts, killed (`Killed`, no
   handler runs) right after SES took the email at the middle of it;
2. two runs of the workflow at once, while SES refuses some sends (throttling) and
   EventBridge refuses some InvoiceIssued entries;
3. runs again until one has nothing left to do: the refusals stop, the killed step's email
   claim has expired.

What it gathers for the checks: every invoice document in the bucket, every email SES
took, every event the bus delivered, every run's counts.
"""

from __future__ import annotations

import email
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from typing import Any
from unittest import mock

import boto3
from botocore.exceptions import ClientError

import billing.invoicing.delivery
from billing.core.catalog import Accounts, Catalog
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.settings import EMAIL_CLAIM_LEASE_SECONDS, LEDGER_TABLE
from billing.store.events import SOURCE, EventPublisher
from billing.store.mailer import Mailer
from billing_cli.local import workflow
from billing_cli.local.runtime import EVENT_BUS, INVOICE_BUCKET, REGION, LocalAws, local_aws
from billing_cli.preview import invoice_run_clock
from functions.issue_invoices import app as issue_invoices
from tests.chaos import workload
from tests.chaos.faults import CountingDynamoDB
from tests.support.eventbridge import EventSink

ISSUE_BATCH = 98  # an account's two periods always in one batch
MAX_FINISHING_RUNS = 4


class Killed(BaseException):
    """The Issue step's function stopped (a timeout): no handler of the step runs."""


@dataclass
class Refusals:
    """SES and EventBridge refusing every `every`-th call (entry) while `on`: by count, not
    at random, so that a small run sees some whichever of two concurrent runs makes them."""

    every: int = 12
    on: bool = True
    counts: Counter[str] = field(default_factory=Counter)
    _seen: Counter[str] = field(default_factory=Counter)

    def refuse(self, what: str) -> bool:
        if not self.on:
            return False
        self._seen[what] += 1
        if self._seen[what] % self.every:
            return False
        self.counts[what] += 1
        return True


@dataclass
class InvoicingRun:
    documents: list[dict[str, Any]] = field(default_factory=list)
    emails: list[tuple[str, str]] = field(default_factory=list)  # (to, attachment name)
    issued_events: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    killed_after_emails: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def copy_ledgers(table: CountingDynamoDB, aws: LocalAws) -> int:
    """The rated ledger table's items into the local runtime's (the invoice run reads them)."""
    name = aws.tables[LEDGER_TABLE.env_var]
    items = list(table.tables.get(name, {}).values())
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        aws.dynamodb.batch_write_item(RequestItems={name: requests})
    return len(items)


@contextmanager
def refusing(refusals: Refusals) -> Iterator[None]:
    """SES answers TooManyRequests, and the bus refuses InvoiceIssued entries, at random
    while `refusals.on`."""
    init, put = Mailer.__init__, EventPublisher._put

    class RefusingSes:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def send_email(self, **request: Any) -> Any:
            if refusals.refuse("SES sends refused (TooManyRequests)"):
                raise ClientError(
                    {"Error": {"Code": "TooManyRequestsException", "Message": "injected"}},
                    "SendEmail",
                )
            return self._client.send_email(**request)

    def mailer_init(self: Mailer, client: Any, *args: Any, **kwargs: Any) -> None:
        init(self, RefusingSes(client), *args, **kwargs)

    def refusing_put(self: EventPublisher, events: Any) -> dict[int, str]:
        refused = [
            i
            for i, (kind, _) in enumerate(events)
            if kind == "InvoiceIssued"
            and refusals.refuse("InvoiceIssued entries refused by the bus")
        ]
        kept = [i for i in range(len(events)) if i not in refused]
        answer = {kept[i]: why for i, why in put(self, [events[i] for i in kept]).items()}
        return answer | dict.fromkeys(refused, "the bus refused the event (InternalFailure)")

    with (
        mock.patch.object(Mailer, "__init__", mailer_init),
        mock.patch.object(EventPublisher, "_put", refusing_put),
    ):
        yield


def killed_issue_step(items: list[dict[str, str]], now: str, kill_at: int) -> int:
    """Issue steps over `items` (batches as the Map makes them), the function killed right
    after SES took its `kill_at`-th email; the emails that left."""
    send = Mailer.send_raw
    sent = [0]

    def send_then_maybe_die(self: Mailer, raw: bytes, to: str) -> str:
        message_id = send(self, raw, to)
        sent[0] += 1
        if sent[0] == kill_at:
            raise Killed()
        return message_id

    with mock.patch.object(Mailer, "send_raw", send_then_maybe_die):
        try:
            for start in range(0, len(items), ISSUE_BATCH):
                batch = items[start : start + ISSUE_BATCH]
                step: Any = issue_invoices.handler
                step.service().handle({"issued_at": now, "items": batch})
        except Killed:
            pass
    return sent[0]


def run_workflow(aws: LocalAws, name: str, now: str) -> dict[str, Any]:
    started = time.perf_counter()
    execution = workflow.start(aws.sfn, aws.state_machine, name, {"now": now})
    answer: dict[str, Any] = workflow.wait(aws.sfn, execution, timeout=3600)
    return answer | {"seconds": round(time.perf_counter() - started, 1)}


def two_runs_at_once(aws: LocalAws, now: str) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda n=name: answers.append(run_workflow(aws, n, now)))
        for name in ("concurrent-a", "concurrent-b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _summary(name: str, counts: dict[str, Any]) -> dict[str, Any]:
    keys = ("issued", "skipped", "failed", "emailed", "undelivered", "seconds")
    return {
        "run": name,
        **{k: counts.get(k) for k in keys},
        "failures": len(counts.get("failures", [])),
    }


def finish(aws: LocalAws, now: str, refusals: Refusals, out: InvoicingRun) -> None:
    """Runs until one issues nothing and fails nothing: the refusals off from the second,
    the killed step's email claim expired (the steps' wall clock moved past its lease)."""
    real = billing.invoicing.delivery.wall_clock

    def after_the_lease() -> datetime:
        return real() + timedelta(seconds=EMAIL_CLAIM_LEASE_SECONDS + 1)

    later = mock.patch.object(billing.invoicing.delivery, "wall_clock", after_the_lease)
    with later:
        for n in range(MAX_FINISHING_RUNS):
            refusals.on = n == 0
            counts = run_workflow(aws, f"restart-{n}", now)
            out.runs.append(_summary(f"restart-{n}", counts))
            if n and not counts["issued"] and not counts["failures"]:
                return


def gather(aws: LocalAws, sink: EventSink, out: InvoicingRun) -> None:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(
        Bucket=INVOICE_BUCKET, Prefix="invoices/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".json"):
                out.documents.append(json.loads(aws.object(INVOICE_BUCKET, item["Key"])))
    for raw in aws.sent_emails():
        message = email.message_from_bytes(raw, policy=default)
        assert isinstance(message, EmailMessage)
        names = [part.get_filename() or "" for part in message.iter_attachments()]
        out.emails.append((str(message["To"]), ",".join(names)))
    out.issued_events = [e for e in sink.received() if e["detail-type"] == "InvoiceIssued"]


def event_sink() -> EventSink:
    """A queue receiving everything the project publishes on the local bus."""
    sqs = boto3.client("sqs", region_name=REGION)
    sink = EventSink(
        boto3.client("events", region_name=REGION),
        sqs,
        EVENT_BUS,
        sqs.create_queue(QueueName="chaos-sink")["QueueUrl"],
    )
    arn = sqs.get_queue_attributes(QueueUrl=sink.queue_url, AttributeNames=["QueueArn"])
    sink.events.put_rule(
        Name="chaos-all", EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": [SOURCE]})
    )
    sink.events.put_targets(
        Rule="chaos-all",
        EventBusName=EVENT_BUS,
        Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
    )
    return sink


def invoice(
    catalog: Catalog,
    accounts: Accounts,
    table: CountingDynamoDB,
    due: list[tuple[str, str]],
) -> InvoicingRun:
    """`due`: the (account, period) the run must invoice, in account then period order."""
    out = InvoicingRun()
    now = utc_text(invoice_run_clock(Period(2026, 11), accounts))
    refusals = Refusals()
    with local_aws() as aws, ExitStack() as stack:
        aws.load(catalog, accounts, now=workload.PUSHED_AT)
        copy_ledgers(table, aws)
        sink = event_sink()
        stack.enter_context(refusing(refusals))
        half = [{"account_id": a, "period": p} for a, p in due[: len(due) // 2]]
        started = time.perf_counter()
        out.killed_after_emails = killed_issue_step(half, now, max(1, len(half) // 2))
        out.runs.append(
            {"run": "killed issue step", "seconds": round(time.perf_counter() - started, 1)}
        )
        for name, counts in zip(
            ("concurrent-a", "concurrent-b"), two_runs_at_once(aws, now), strict=True
        ):
            out.runs.append(_summary(name, counts))
        finish(aws, now, refusals, out)
        gather(aws, sink, out)
    out.refusals = refusals.counts
    return out
