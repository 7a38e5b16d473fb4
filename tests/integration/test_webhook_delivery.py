"""Webhook delivery end to end on moto: endpoints and secrets stored, domain events on an
SQS queue as the bus's rule puts them, a receiver on 127.0.0.1 that verifies every
signature, retries through the queue, and the dead-letter queue after the last attempt."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from billing.core.webhooks.payload import DomainEvent, webhook_id
from billing.settings import CONFIG_TABLE
from billing.store.errors import StoreError
from billing.store.webhook_endpoints import WebhookEndpoints, WebhookSecrets, secret_prefix
from billing.webhooks.delivery import Deliverer, deliver_messages
from billing.webhooks.settings import WEBHOOK_QUEUE_ENV
from billing_cli.local.lambdas import LocalContext
from billing_cli.local.provision import create_tables
from functions.deliver_webhooks import app as deliver_webhooks
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_calls_within_permissions import recording
from tests.support.webhook_receiver import NOW, Receiver, serving_receiver

REGION = "us-east-1"
MAX_RECEIVES = 3


@dataclass
class Setup:
    endpoints: WebhookEndpoints
    secrets: WebhookSecrets
    sqs: Any
    queue_url: str
    dead_letters_url: str


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as serving:
        yield serving


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = create_tables(dynamodb, "test")[CONFIG_TABLE.env_var]
        secrets = WebhookSecrets(
            boto3.client("secretsmanager", region_name=REGION), secret_prefix(table)
        )
        sqs = boto3.client("sqs", region_name=REGION)
        dead_letters = sqs.create_queue(QueueName="webhook-dead-letters")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])
        redrive = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"]}
        queue = sqs.create_queue(
            QueueName="webhooks",
            Attributes={"RedrivePolicy": json.dumps({**redrive, "maxReceiveCount": MAX_RECEIVES})},
        )["QueueUrl"]
        yield Setup(WebhookEndpoints(dynamodb, table), secrets, sqs, queue, dead_letters)


def _event(number: str) -> dict[str, Any]:
    """An InvoiceIssued as EventBridge hands it to the queue."""
    return {
        "id": f"envelope-{number}",
        "detail-type": "InvoiceIssued",
        "source": "usage-billing",
        "time": "2026-12-01T06:00:00Z",
        "detail": {"event_id": f"InvoiceIssued:{number}", "invoice_number": number},
    }


def _drain(setup: Setup, deliverer: Deliverer, delays: list[int]) -> int:
    """Receive and deliver until the queue is empty, as Lambda's poller would; a delayed
    message is made visible at once (the delay is recorded, not waited). Receives made."""

    def delay(receipt: str, seconds: int) -> None:
        delays.append(seconds)
        setup.sqs.change_message_visibility(
            QueueUrl=setup.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
        )

    receives = 0
    while True:
        answer = setup.sqs.receive_message(
            QueueUrl=setup.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return receives
        receives += 1
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
            }
            for m in messages
        ]
        failed = set(deliver_messages(records, deliverer, NOW, delay))
        for m in messages:
            if m["MessageId"] not in failed:
                setup.sqs.delete_message(QueueUrl=setup.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _register(setup: Setup, receiver: Receiver, path: str, types: list[str]) -> str:
    endpoint = setup.endpoints.add(
        f"{receiver.url}{path}", types, setup.secrets, allow_loopback=True
    )
    receiver.secrets[path] = setup.secrets.read(endpoint.secret_name)
    return endpoint.endpoint_id


def test_every_event_reaches_each_subscribed_endpoint_once_per_id_across_retries(
    setup: Setup, receiver: Receiver
) -> None:
    erp = _register(setup, receiver, "/erp", ["InvoiceIssued"])
    crm = _register(setup, receiver, "/crm", ["InvoiceIssued", "CreditNoteIssued"])
    _register(setup, receiver, "/other", ["CreditNoteIssued"])
    for number in ("INV-1", "INV-2"):
        setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event(number)))
    receiver.failures_left = 1  # the first request fails: its message is tried again
    deliverer = Deliverer(setup.endpoints, setup.secrets)
    delays: list[int] = []

    _drain(setup, deliverer, delays)

    expected = {
        webhook_id(f"InvoiceIssued:{number}", endpoint)
        for number in ("INV-1", "INV-2")
        for endpoint in (erp, crm)
    }
    assert set(receiver.accepted) == expected
    assert receiver.refused == []
    # One message failed once and came back after the first delay; its retry carried the
    # same webhook-id and body for each endpoint as the first attempt did.
    assert delays == [60]
    assert len(receiver.requests) == 4 + 2
    for _, message_id, body in receiver.requests:
        assert receiver.accepted[message_id] == body
    assert not any(path == "/other" for path, _, _ in receiver.requests)


def test_a_failing_receivers_deliveries_end_in_the_dead_letter_queue(
    setup: Setup, receiver: Receiver
) -> None:
    _register(setup, receiver, "/down", ["InvoiceIssued"])
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-3")))
    receiver.failures_left = 1_000
    delays: list[int] = []

    _drain(setup, Deliverer(setup.endpoints, setup.secrets), delays)

    # Each of the MAX_RECEIVES attempts failed and was delayed by the doubling backoff.
    assert delays == [60, 120, 240]
    assert len(receiver.requests) == MAX_RECEIVES
    assert len({message_id for _, message_id, _ in receiver.requests}) == 1
    dead = setup.sqs.receive_message(QueueUrl=setup.dead_letters_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in dead["Messages"]]
    assert bodies == [_event("INV-3")]


def test_an_unreachable_endpoint_and_a_removed_one(setup: Setup, receiver: Receiver) -> None:
    gone = setup.endpoints.add(
        "http://127.0.0.1:9/closed", ["InvoiceIssued"], setup.secrets, allow_loopback=True
    )
    event = DomainEvent.from_eventbridge(_event("INV-4"))
    deliverer = Deliverer(setup.endpoints, setup.secrets)

    [attempt] = deliverer.deliver(event, NOW)
    assert (attempt.delivered, attempt.status) == (False, None)

    setup.endpoints.remove(gone.endpoint_id, setup.secrets)
    assert setup.endpoints.all() == []
    assert deliverer.deliver(event, NOW) == []


@pytest.fixture
def handler(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """deliver_webhooks' handler on this moto, as the stack configures it."""
    monkeypatch.setenv(CONFIG_TABLE.env_var, setup.endpoints._table)
    monkeypatch.setenv(WEBHOOK_QUEUE_ENV, setup.queue_url)
    deliver_webhooks.deliverer.cache_clear()
    yield deliver_webhooks.handler
    deliver_webhooks.deliverer.cache_clear()


def test_the_handler_fails_back_what_an_endpoint_refused_and_calls_only_its_row(
    setup: Setup, receiver: Receiver, handler: Any
) -> None:
    receiver.clock = None  # the handler signs with the time now
    _register(setup, receiver, "/erp", ["InvoiceIssued"])
    receiver.failures_left = 1
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-5")))
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-6")))
    messages = setup.sqs.receive_message(
        QueueUrl=setup.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
        }
        for m in messages
    ]

    with recording() as calls:
        answer = handler({"Records": records}, LocalContext("deliver-webhooks"))

    # the first request failed: its message is reported for a retry, the other delivered
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert len(receiver.accepted) == 1
    allowed = {c.action for made in FUNCTION_ACTIONS["deliver_webhooks"].values() for c in made}
    assert calls["deliver_webhooks"] == {
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "sqs:ChangeMessageVisibility",
    }
    assert calls["deliver_webhooks"] <= allowed


def test_a_redirect_is_not_followed_and_not_a_delivery(setup: Setup) -> None:
    # GIVEN an endpoint whose server answers every POST with a redirect elsewhere
    followed: list[str] = []

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            followed.append(self.path)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        setup.endpoints.add(
            f"http://127.0.0.1:{server.server_address[1]}/hook",
            ["InvoiceIssued"],
            setup.secrets,
            allow_loopback=True,
        )
        [attempt] = Deliverer(setup.endpoints, setup.secrets).deliver(
            DomainEvent.from_eventbridge(_event("INV-7")), NOW
        )
    finally:
        server.shutdown()
        server.server_close()

    # THEN the answer is the redirect's, not delivered, and the signed request went nowhere else
    assert (attempt.status, attempt.delivered) == (307, False)
    assert followed == ["/hook"]


def test_an_endpoint_the_table_refused_leaves_no_secret(setup: Setup) -> None:
    # GIVEN a table that does not exist, WHEN an endpoint is added THEN it fails whole
    missing = WebhookEndpoints(setup.endpoints._client, "no-such-table")
    with pytest.raises(StoreError):
        missing.add("https://erp.example.com/hook", ["InvoiceIssued"], setup.secrets)
    client = boto3.client("secretsmanager", region_name=REGION)
    assert client.list_secrets()["SecretList"] == []
