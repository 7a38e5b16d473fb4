"""The invoice run's emails at SES's pace, on moto: the Issue and Send steps' real services
(built by billing.wiring from the environment), SES's answers scripted per recipient in
front of moto's SES, the pace on a fake clock (billing.invoicing.pacing). Every email is
counted where it lands, in moto's sent messages, and every invoice is emailed exactly once.
"""

from __future__ import annotations

import email
from collections import Counter
from dataclasses import dataclass, field
from email.policy import default
from itertools import pairwise
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.ses.models import ses_backends

from billing import wiring
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.invoicing.delivery import PENDING_EMAIL_ERRORS
from billing.invoicing.due import ListDue, in_batches
from billing.invoicing.pacing import Pacing
from billing.invoicing.steps import DueInput
from billing.settings import (
    EVENT_BUS_ENV,
    INVOICE_BUCKET_ENV,
    INVOICES_TABLE,
    RUN_BUCKET_ENV,
    SENDER_ENV,
)
from billing.store.invoice_store import InvoiceStore
from billing.store.mailer import Mailer
from billing.store.retry import SES_THROTTLED
from billing_cli.local.lambdas import LocalContext
from tests.integration.conftest import NOW, REGION, Aws
from tests.support.fake_time import FakeClock

SENDER = "invoices@billing.example"
ADDRESSES = {
    "acct-1": "billing@acme.example",
    "acct-2": "ap@northwind.example",
    "acct-3": "rechnungen@mueller.example",
    "acct-4": "keiri@tokyo-data.example",
    "acct-5": "finance@gulf.example",
    "acct-6": "factures@oceane.example",
}
THROTTLED = "TooManyRequestsException"


@dataclass
class Ses:
    """SES as the steps' Mailer sees it: each send to an address with a scripted answer
    left gets that answer (an error code), every other send goes to moto's SES. Each
    attempt is recorded with the invoice record's email state at that moment."""

    invoices: InvoiceStore
    clock: FakeClock
    script: dict[str, list[str]] = field(default_factory=dict)
    attempts: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    message: str = "Maximum sending rate exceeded."

    def client(self, real: Any) -> Any:
        ses = self

        class Scripted:
            def send_email(self, **request: Any) -> Any:
                (to,) = request["Destination"]["ToAddresses"]
                account = next(a for a, address in ADDRESSES.items() if address == to)
                record = ses.invoices.get(account, "2026-11")
                assert record is not None
                ses.attempts.append((to, record.email_status, record.email_token))
                ses.times.append(ses.clock.now())
                answers = ses.script.get(to, [])
                if answers:
                    code = answers.pop(0)
                    status = 500 if code == "InternalFailure" else 400
                    error = {"Code": code, "Message": ses.message}
                    meta = {"HTTPStatusCode": status}
                    raise ClientError({"Error": error, "ResponseMetadata": meta}, "SendEmail")  # type: ignore[typeddict-item]
                return real.send_email(**request)

        return Scripted()

    def tried(self, address: str) -> list[tuple[str | None, str | None]]:
        return [(status, token) for to, status, token in self.attempts if to == address]


def emailed() -> Counter[str]:
    """How many emails moto's SES took, by recipient."""
    sent = ses_backends["123456789012"][REGION].sent_messages
    messages = [email.message_from_string(m.raw_data, policy=default) for m in sent]
    return Counter(str(m["To"]).rsplit("<", 1)[1].rstrip(">") for m in messages)


@dataclass
class Run:
    """The invoice run's steps for November, one batch, on the real services."""

    aws: Aws
    ses: Ses
    clock: FakeClock
    invoices: InvoiceStore

    def due(self) -> dict[str, Any]:
        due = wiring.invoice_run("due")
        assert isinstance(due, ListDue)
        found = due.find(DueInput(now=NOW, period=Period(2026, 11)))
        (batch,) = in_batches(found.items)
        return {"issued_at": utc_text(NOW), "items": [item.model_dump() for item in batch]}

    def issue(self, seconds_left: float | None = None) -> dict[str, Any]:
        service = wiring.invoice_run("issue")
        return service.handle(self.due(), seconds_left)  # type: ignore[call-arg]

    def send(self, issued: dict[str, Any], seconds_left: float | None = None) -> dict[str, Any]:
        """The Send step as the workflow calls it after Issue (invoice_run.asl.json)."""
        event = {
            "issued_at": utc_text(NOW),
            "issued": issued["unsent"],
            "skipped": issued["skipped"],
            "emails": issued["emails"],
        }
        return wiring.invoice_run("send").handle(event, seconds_left)  # type: ignore[call-arg]

    def email_status(self, account: str) -> str | None:
        record = self.invoices.get(account, "2026-11")
        assert record is not None
        return record.email_status


@pytest.fixture
def run(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    bucket = "test-invoices"
    aws.s3.create_bucket(Bucket=bucket)
    boto3.client("events", region_name=REGION).create_event_bus(Name="billing-events")
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    monkeypatch.setenv(INVOICE_BUCKET_ENV, bucket)
    monkeypatch.setenv(RUN_BUCKET_ENV, "test-invoice-runs")  # the due step's, not written
    monkeypatch.setenv(EVENT_BUS_ENV, "billing-events")
    monkeypatch.setenv(SENDER_ENV, SENDER)
    invoices = InvoiceStore(aws.dynamodb, aws.tables[INVOICES_TABLE.env_var])
    clock = FakeClock()
    ses = Ses(invoices, clock)
    # One email a second for the batch; a step keeps 30 s before its deadline.
    pacing = Pacing(rate=lambda: 1.0, clock=clock.now, sleep=clock.sleep, margin=30)
    monkeypatch.setattr(wiring, "email_pacing", lambda settings: pacing)
    original = Mailer.__init__

    def scripted(self: Mailer, client: Any, *args: Any, **kwargs: Any) -> None:
        original(self, ses.client(client), *args, **kwargs)

    monkeypatch.setattr(Mailer, "__init__", scripted)
    aws.rate_examples()
    return Run(aws, ses, clock, invoices)


def test_a_step_out_of_time_leaves_the_rest_unclaimed_and_the_next_attempt_sends_each_once(
    run: Run,
) -> None:
    # GIVEN steps with time for two emails each at one a second (31.5 s left, 30 s margin:
    # turns at 0 and 1 s go, the one at 2 s would pass the deadline)
    # WHEN Issue runs, then Send
    issued = run.issue(seconds_left=31.5)
    sent = run.send(issued, seconds_left=31.5)

    # THEN Issue emailed two and left four to Send, unclaimed
    assert len(issued["emails"]["sent"]) == 2
    assert len(issued["unsent"]) == 4
    assert len(issued["issued"]) == 6
    # AND Send emailed two more; the last two are pending: reported as not sent yet,
    # their email never claimed, nothing sent for them
    assert len(sent["sent"]) == 4
    pending = [f for f in sent["failed"] if f["error"] == "NoTimeToSend"]
    assert len(pending) == 2
    assert sent["failed"] == pending
    assert {f["error"] for f in pending} <= PENDING_EMAIL_ERRORS
    for failure in pending:
        assert run.email_status(failure["account_id"]) is None
        assert emailed()[ADDRESSES[failure["account_id"]]] == 0
    # AND every wait was one interval, none started past a deadline
    assert run.clock.sleeps == [1.0, 1.0]

    # WHEN the Send step is made again (the workflow's retry, or the next run's)
    again = run.send(issued, seconds_left=31.5)

    # THEN it emails the two left, and no invoice was emailed twice
    by_issue = {s["account_id"] for s in issued["emails"]["sent"]}
    by_retry = {s["account_id"] for s in again["sent"]} - by_issue
    assert by_retry == {f["account_id"] for f in pending}
    assert again["failed"] == []
    assert emailed() == Counter(ADDRESSES.values())


def test_a_throttled_email_is_sent_again_under_the_same_claim_and_lands_once(run: Run) -> None:
    # GIVEN SES throttles acct-3's email twice, then takes it
    address = ADDRESSES["acct-3"]
    run.ses.script[address] = [THROTTLED, THROTTLED]

    # WHEN Issue runs (with no deadline)
    issued = run.issue()

    # THEN acct-3's email was tried three times, all under one claim, and landed once
    tries = run.ses.tried(address)
    assert len(tries) == 3
    assert {status for status, _ in tries} == {"sending"}
    assert len({token for _, token in tries}) == 1
    assert emailed() == Counter(ADDRESSES.values())
    assert len(issued["emails"]["sent"]) == 6
    assert issued["unsent"] == []
    assert run.email_status("acct-3") == "sent"
    # AND SES was never asked faster than the pace, retries included: each retry waited
    # its backoff (jittered, under a cap of at most 1 s here) and its pace's turn
    gaps = [later - earlier for earlier, later in pairwise(run.ses.times)]
    assert len(gaps) == 7
    assert all(gap >= 1.0 - 1e-9 for gap in gaps)
    assert all(gap <= max(1.0, SES_THROTTLED.wait_cap(2)) + 1e-9 for gap in gaps)


def test_throttling_beyond_the_retries_releases_the_claim_and_a_later_attempt_sends_once(
    run: Run,
) -> None:
    # GIVEN SES throttles acct-5's email through Issue's retries and Send's
    address = ADDRESSES["acct-5"]
    run.ses.script[address] = [THROTTLED] * (2 * SES_THROTTLED.attempts)

    # WHEN Issue runs, then Send
    issued = run.issue()
    sent = run.send(issued)

    # THEN each step tried it its policy's attempts and gave the claim back: pending,
    # reported by its error's name, not sent
    assert len(run.ses.tried(address)) == 2 * SES_THROTTLED.attempts
    assert [f["account_id"] for f in issued["unsent"]] == ["acct-5"]
    assert [(f["account_id"], f["error"]) for f in sent["failed"]] == [("acct-5", "SendThrottled")]
    assert run.email_status("acct-5") is None
    assert emailed()[address] == 0

    # WHEN SES takes it again and the Send step is made again
    again = run.send(issued)

    # THEN it is emailed, once
    assert again["failed"] == []
    assert emailed() == Counter(ADDRESSES.values())


def test_an_email_that_may_have_left_is_never_sent_again(run: Run) -> None:
    # GIVEN SES answers acct-2's send with a server error: it may or may not have left
    address = ADDRESSES["acct-2"]
    run.ses.script[address] = ["InternalFailure"]

    # WHEN Issue runs, then Send, twice
    issued = run.issue()
    sent = run.send(issued)
    run.send(issued)

    # THEN it was tried once, never again: recorded unknown and reported, for an operator
    assert len(run.ses.tried(address)) == 1
    assert run.email_status("acct-2") == "unknown"
    assert [(f["account_id"], f["error"]) for f in sent["failed"]] == [
        ("acct-2", "DeliveryUnknown")
    ]
    assert emailed()[address] == 0
    assert run.clock.sleeps == [1.0] * 5  # the pace between the six tries, no backoff


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        ("SendingPausedException", "paused", "SendingUnavailable"),
        ("ThrottlingException", "Daily message quota exceeded.", "DailyQuotaReached"),
    ],
)
def test_a_refusal_of_the_whole_account_stops_the_steps_sending_and_leaves_all_pending(
    run: Run, code: str, message: str, error: str
) -> None:
    # GIVEN SES refuses our account (paused, or its daily quota spent), whoever the recipient
    run.ses.script = {address: [code] * 2 for address in ADDRESSES.values()}
    run.ses.message = message

    # WHEN Issue runs, then Send
    issued = run.issue()
    sent = run.send(issued)

    # THEN each step asked SES once, and left every email unclaimed and pending, by name
    assert len(run.ses.attempts) == 2
    assert len(issued["unsent"]) == 6
    assert sorted((f["account_id"], f["error"]) for f in sent["failed"]) == [
        (account, error) for account in sorted(ADDRESSES)
    ]
    assert all(run.email_status(account) is None for account in ADDRESSES)
    assert run.clock.sleeps == []  # no turn waited for, no backoff

    # WHEN SES takes email again and the Send step is made again
    run.ses.script = {}
    again = run.send(issued)

    # THEN each invoice is emailed, once
    assert again["failed"] == []
    assert emailed() == Counter(ADDRESSES.values())


def test_a_sandbox_refusing_one_unverified_recipient_stops_nothing_else(run: Run) -> None:
    # GIVEN a sandboxed account: SES refuses acct-2's address, not verified (MessageRejected)
    address = ADDRESSES["acct-2"]
    run.ses.script[address] = ["MessageRejected"] * 2
    run.ses.message = f"Email address is not verified: {address}"

    # WHEN Issue runs, then Send
    issued = run.issue()
    sent = run.send(issued)

    # THEN the other five are emailed; acct-2's is pending as our account's problem
    assert [(f["account_id"], f["error"]) for f in sent["failed"]] == [
        ("acct-2", "SendingUnavailable")
    ]
    assert emailed() == Counter(a for a in ADDRESSES.values() if a != address)


class TimedContext(LocalContext):
    """Lambda's context, with the time left that a deployed function's context gives."""

    def get_remaining_time_in_millis(self) -> int:
        return 31_500


def test_the_handler_paces_to_the_time_lambda_leaves_it(run: Run) -> None:
    # GIVEN the deployed Issue handler, with 31.5 s left of its invocation
    from functions.issue_invoices import app as issue_invoices

    issue_invoices.handler.service.cache_clear()
    try:
        outcome = issue_invoices.handler(run.due(), TimedContext("issue_invoices"))
    finally:
        issue_invoices.handler.service.cache_clear()

    # THEN it emailed what fits before its deadline and left the rest to Send
    assert (len(outcome["emails"]["sent"]), len(outcome["unsent"])) == (2, 4)
