"""Webhook delivery end to end on moto: endpoints and secrets stored, domain events on an
SQS queue as the bus's rule puts them, fanned out to one message per endpoint, a receiver
on 127.0.0.1 that verifies every signature, each endpoint's retries through the queue, and
the dead-letter queue after its last attempt."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from billing import wiring
from billing.core.webhooks.payload import (
    ROTATION_GRACE_SECONDS,
    DomainEvent,
    QueuedDelivery,
    webhook_id,
)
from billing.settings import CONFIG_TABLE, STACK_OUTPUTS
from billing.store.errors import StoreError
from billing.store.webhook_endpoints import (
    SecretVersions,
    WebhookEndpoints,
    WebhookSecrets,
    secret_prefix,
)
from billing.store.webhook_queue import WebhookQueue
from billing.webhooks.delivery import Deliverer, deliver_messages, http_post
from billing.webhooks.settings import WEBHOOK_QUEUE_ENV
from billing_cli.deployment import Deployment
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


@dataclass
class ImmediateQueue:
    """The webhook queue as the deliverer sees it, with the backoff recorded, not waited:
    a delayed message is visible again at once."""

    setup: Setup
    delays: list[int] = field(default_factory=list)

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append(seconds)
        self.setup.sqs.change_message_visibility(
            QueueUrl=self.setup.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=0
        )

    def send(self, bodies: Sequence[str]) -> int:
        return WebhookQueue(self.setup.sqs, self.setup.queue_url).send(bodies)


def _records(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SQS messages as Lambda's event source hands them to the handler."""
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
        }
        for m in messages
    ]


def _drain(setup: Setup, deliverer: Deliverer, queue: ImmediateQueue) -> None:
    """Receive and handle until the queue is empty, as Lambda's poller would."""
    while True:
        answer = setup.sqs.receive_message(
            QueueUrl=setup.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        messages = answer.get("Messages", [])
        if not messages:
            return
        failed = set(deliver_messages(_records(messages), deliverer, NOW, queue))
        for m in messages:
            if m["MessageId"] not in failed:
                setup.sqs.delete_message(QueueUrl=setup.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _dead_letters(setup: Setup) -> list[dict[str, Any]]:
    dead = setup.sqs.receive_message(QueueUrl=setup.dead_letters_url, MaxNumberOfMessages=10)
    return sorted(
        (json.loads(m["Body"]) for m in dead.get("Messages", [])),
        key=lambda body: json.dumps(body, sort_keys=True),
    )


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
    receiver.failures_left = 1  # the first request fails: that endpoint's message comes again
    queue = ImmediateQueue(setup)

    _drain(setup, Deliverer(setup.endpoints, setup.secrets), queue)

    expected = {
        webhook_id(f"InvoiceIssued:{number}", endpoint)
        for number in ("INV-1", "INV-2")
        for endpoint in (erp, crm)
    }
    assert set(receiver.accepted) == expected
    assert receiver.refused == []
    # One endpoint's message failed once and came back after the first delay; its retry
    # carried the same webhook-id and body, and went to that endpoint only: 4 + 1 requests.
    assert queue.delays == [60]
    assert len(receiver.requests) == 4 + 1
    for _, message_id, body in receiver.requests:
        assert receiver.accepted[message_id] == body
    assert not any(path == "/other" for path, _, _ in receiver.requests)


def test_a_failing_endpoint_retries_and_dead_letters_alone(
    setup: Setup, receiver: Receiver
) -> None:
    # GIVEN two endpoints for InvoiceIssued, one of them answering 500 to everything
    healthy = _register(setup, receiver, "/erp", ["InvoiceIssued"])
    failing = _register(setup, receiver, "/down", ["InvoiceIssued"])
    receiver.down.add("/down")
    for number in ("INV-8", "INV-9"):
        setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event(number)))
    queue = ImmediateQueue(setup)

    # WHEN the queue is drained, retries and all
    _drain(setup, Deliverer(setup.endpoints, setup.secrets), queue)

    # THEN the healthy endpoint received each event exactly once, whatever the other did
    to_healthy = [message_id for path, message_id, _ in receiver.requests if path == "/erp"]
    assert sorted(to_healthy) == sorted(
        webhook_id(f"InvoiceIssued:{n}", healthy) for n in ("INV-8", "INV-9")
    )
    assert set(receiver.accepted) == set(to_healthy)
    # the failing one was tried MAX_RECEIVES times per event, under one stable id each
    to_failing = [message_id for path, message_id, _ in receiver.requests if path == "/down"]
    assert sorted(to_failing) == sorted(
        webhook_id(f"InvoiceIssued:{n}", failing)
        for n in ("INV-8", "INV-9")
        for _ in range(MAX_RECEIVES)
    )
    # each of its messages backed off on its own (60, 120, 240 s), then was dead-lettered
    # naming the endpoint and carrying the event as the bus sent it
    assert sorted(queue.delays) == [60, 60, 120, 120, 240, 240]
    assert _dead_letters(setup) == sorted(
        ({"endpoint_id": failing, "event": _event(n)} for n in ("INV-8", "INV-9")),
        key=lambda body: json.dumps(body, sort_keys=True),
    )


def test_a_failing_receivers_deliveries_end_in_the_dead_letter_queue(
    setup: Setup, receiver: Receiver
) -> None:
    endpoint = _register(setup, receiver, "/down", ["InvoiceIssued"])
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-3")))
    receiver.failures_left = 1_000
    queue = ImmediateQueue(setup)

    _drain(setup, Deliverer(setup.endpoints, setup.secrets), queue)

    # Each of the MAX_RECEIVES attempts failed and was delayed by the doubling backoff.
    assert queue.delays == [60, 120, 240]
    assert len(receiver.requests) == MAX_RECEIVES
    assert len({message_id for _, message_id, _ in receiver.requests}) == 1
    assert _dead_letters(setup) == [{"endpoint_id": endpoint, "event": _event("INV-3")}]


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
    # a message queued for it before it was removed is taken and sent nowhere
    queued = QueuedDelivery(_event("INV-4"), gone.endpoint_id).for_endpoint(gone.endpoint_id)
    record = {"messageId": "m-1", "receiptHandle": "r-1", "body": queued}
    assert deliver_messages([record], deliverer, NOW, ImmediateQueue(setup)) == []


@pytest.fixture
def handler(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """deliver_webhooks' handler on this moto, as the stack configures it."""
    monkeypatch.setenv(CONFIG_TABLE.env_var, setup.endpoints._table)
    monkeypatch.setenv(WEBHOOK_QUEUE_ENV, setup.queue_url)
    deliver_webhooks.deliverer.cache_clear()
    yield deliver_webhooks.handler
    deliver_webhooks.deliverer.cache_clear()


def _received(setup: Setup) -> list[dict[str, Any]]:
    messages = setup.sqs.receive_message(
        QueueUrl=setup.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    return sorted(messages, key=lambda m: str(json.loads(m["Body"])["event"]["id"]))


def test_the_handler_fans_out_fails_back_what_an_endpoint_refused_and_calls_only_its_row(
    setup: Setup, receiver: Receiver, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.clock = None  # the handler signs with the time now
    # The receiver is on 127.0.0.1, which the deliverer on AWS refuses (the next test):
    # here the handler posts as the local runtime does.
    monkeypatch.setattr(wiring, "public_http_post", http_post)
    _register(setup, receiver, "/erp", ["InvoiceIssued"])
    receiver.failures_left = 1
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-5")))
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=json.dumps(_event("INV-6")))
    events = setup.sqs.receive_message(
        QueueUrl=setup.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]

    with recording() as calls:
        # the bus's two events become one message each for the one endpoint
        fanned = handler({"Records": _records(events)}, LocalContext("deliver-webhooks"))
        for m in events:
            setup.sqs.delete_message(QueueUrl=setup.queue_url, ReceiptHandle=m["ReceiptHandle"])
        per_endpoint = _received(setup)
        answer = handler({"Records": _records(per_endpoint)}, LocalContext("deliver-webhooks"))

    assert fanned == {"batchItemFailures": []}
    assert [json.loads(m["Body"])["event"]["id"] for m in per_endpoint] == [
        "envelope-INV-5",
        "envelope-INV-6",
    ]
    # the first request failed: its message is reported for a retry, the other delivered
    assert answer == {"batchItemFailures": [{"itemIdentifier": per_endpoint[0]["MessageId"]}]}
    assert len(receiver.accepted) == 1
    allowed = {c.action for made in FUNCTION_ACTIONS["deliver_webhooks"].values() for c in made}
    assert calls["deliver_webhooks"] == {
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "sqs:ChangeMessageVisibility",
        "sqs:SendMessage",
    }
    assert calls["deliver_webhooks"] <= allowed


def test_the_handler_on_aws_sends_nothing_to_a_loopback_endpoint(
    setup: Setup, receiver: Receiver, handler: Any
) -> None:
    # GIVEN an endpoint on 127.0.0.1 in the table (registered before loopback was tied to
    # the local runtime, on an AWS stack named UsageBilling-local), and its message
    endpoint = _register(setup, receiver, "/erp", ["InvoiceIssued"])
    queued = QueuedDelivery(_event("INV-10")).for_endpoint(endpoint)
    setup.sqs.send_message(QueueUrl=setup.queue_url, MessageBody=queued)
    [message] = setup.sqs.receive_message(QueueUrl=setup.queue_url, AttributeNames=["All"])[
        "Messages"
    ]

    # WHEN deliver_webhooks, as deployed, handles it
    answer = handler({"Records": _records([message])}, LocalContext("deliver-webhooks"))

    # THEN nothing reached the receiver, and the message failed back with its backoff (a
    # first receive: hidden retry_delay(1) = 60 s, so not visible again at once)
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert receiver.requests == []
    again = setup.sqs.receive_message(QueueUrl=setup.queue_url, MaxNumberOfMessages=10)
    assert again.get("Messages", []) == []


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


def test_a_rotated_secret_is_read_with_its_previous_version_for_the_grace_window(
    setup: Setup,
) -> None:
    endpoint = setup.endpoints.add("https://erp.example.com/hook", ["InvoiceIssued"], setup.secrets)
    name = endpoint.secret_name
    first = setup.secrets.read(name)
    now = time.time()
    grace = ROTATION_GRACE_SECONDS
    # never rotated: the one secret (Secrets Manager has no AWSPREVIOUS version of it)
    assert setup.secrets.versions(name, grace_seconds=grace, now=now) == SecretVersions(first)

    second = setup.secrets.rotate(name)

    assert second != first
    assert setup.secrets.read(name) == second
    assert setup.secrets.versions(name, grace_seconds=grace, now=now) == SecretVersions(
        second, first
    )
    # once the new version is older than the grace window, it alone signs
    later = now + grace + 60
    assert setup.secrets.versions(name, grace_seconds=grace, now=later) == SecretVersions(second)


def test_the_commands_create_secrets_under_the_stacks_key(setup: Setup) -> None:
    # GIVEN a deployment whose stack names the key webhook secrets go under (its output)
    key_arn = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    outputs = {
        STACK_OUTPUTS.config_table: setup.endpoints._table,
        STACK_OUTPUTS.webhook_secrets_key: key_arn,
    }
    deployment = Deployment("UsageBilling-test", outputs, boto3.Session(region_name=REGION), None)

    # WHEN an endpoint is added and its secret rotated, as the commands do
    secrets = deployment.webhook_secrets()
    endpoint = deployment.webhook_endpoints().add(
        "https://erp.example.com/hook", ["UsageRejected"], secrets
    )
    secrets.rotate(endpoint.secret_name)

    # THEN its secret is in Secrets Manager, under the deployment's prefix and that key
    client = boto3.client("secretsmanager", region_name=REGION)
    described = client.describe_secret(SecretId=endpoint.secret_name)
    assert described["KmsKeyId"] == key_arn
    assert endpoint.secret_name == f"{secret_prefix(setup.endpoints._table)}{endpoint.endpoint_id}"
    # and the config table's item names it without holding it
    [item] = setup.endpoints._client.scan(TableName=setup.endpoints._table)["Items"]
    assert item["secret_name"] == {"S": endpoint.secret_name}
    assert "whsec_" not in json.dumps(item)
