"""Signed webhooks against inputs that once broke the deliverer, each test what
docs/webhooks.md promises: a URL with credentials refused at registration and,
stored before that, failed with the backoff like an answer that is not HTTP; the metadata
address refused; the local poller polling on; a whole exchange held to the timeout; a
customer's threshold crossed at two amounts under two webhook ids."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billing.core.spend import Crossing
from billing.core.webhooks.payload import DomainEvent, QueuedDelivery, webhook_id
from billing.core.webhooks.signing import new_secret
from billing.store.alert_claims import claim_key
from billing.store.webhook_endpoints import Endpoint, EndpointError, SecretVersions, checked_url
from billing.webhooks import delivery
from billing.webhooks.delivery import Deliverer, deliver_messages
from billing_cli.local.webhooks import WebhookPoller

NOW = 1_796_000_000
EVENT = {
    "id": "envelope-1",
    "detail-type": "InvoiceIssued",
    "source": "usage-billing",
    "time": "2026-12-01T06:00:00Z",
    "detail": {"event_id": "InvoiceIssued:INV-1"},
}


@dataclass
class OneEndpoint:
    endpoint: Endpoint

    def subscribed(self, event_type: str) -> list[Endpoint]:
        return [self.endpoint] if event_type in self.endpoint.event_types else []

    def find(self, endpoint_id: str) -> Endpoint | None:
        return self.endpoint if endpoint_id == self.endpoint.endpoint_id else None


@dataclass
class OneSecret:
    current: str = field(default_factory=new_secret)

    def versions(self, name: str, *, grace_seconds: int, now: float) -> SecretVersions:
        return SecretVersions(self.current)


@dataclass
class RecordingQueue:
    delays: list[tuple[str, int]] = field(default_factory=list)

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))

    def send(self, bodies: Sequence[str]) -> int:
        return 0


def _endpoint_message(endpoint_id: str) -> dict[str, Any]:
    """The fan-out's message for one endpoint, first received (as Lambda hands it over)."""
    return {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": QueuedDelivery(EVENT).for_endpoint(endpoint_id),
        "attributes": {"ApproximateReceiveCount": "1"},
    }


def test_an_endpoint_url_with_credentials_is_failed_back_with_its_backoff() -> None:
    url = "https://erp-user:s3cr3t-pass@erp.example.invalid/hook"
    # refused at registration (checked_url is what `billing webhooks add` applies), without
    # quoting the password; was accepted before the fix, so one may be stored already
    with pytest.raises(EndpointError, match="user name or password") as refused:
        checked_url(url, allow_loopback=False)
    assert "s3cr3t" not in str(refused.value)
    endpoint = Endpoint("we_erp", url, ("InvoiceIssued",), "s/we_erp")
    queue = RecordingQueue()
    deliverer = Deliverer(OneEndpoint(endpoint), OneSecret())  # the real http_post

    # Expected: the attempt fails like any refused connection: reported failed, made
    # visible again after retry_delay(1) = 60 s, so the 20 receives span ~28 h.
    # Before the fix: http.client.InvalidURL("nonnumeric port: 's3cr3t-pass@erp.example.invalid'")
    failed = deliver_messages([_endpoint_message("we_erp")], deliverer, NOW, queue)

    assert (failed, queue.delays) == (["m-1"], [("r-1", 60)])


@contextmanager
def not_http_receiver() -> Iterator[str]:
    """A receiver that reads the POST and answers a line that is not an HTTP status line
    (a misconfigured proxy, a TCP service on the port): its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.wfile.write(b"garbage\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_answering_no_http_status_is_failed_back_with_its_backoff() -> None:
    with not_http_receiver() as url:
        endpoint = Endpoint("we_raw", url, ("InvoiceIssued",), "s/we_raw")
        queue = RecordingQueue()
        deliverer = Deliverer(OneEndpoint(endpoint), OneSecret())

        # Expected: a failure like no answer: ["m-1"], delayed 60 s (retry_delay(1)).
        # Before the fix: http.client.BadStatusLine: garbage
        failed = deliver_messages([_endpoint_message("we_raw")], deliverer, NOW, queue)

    assert (failed, queue.delays) == (["m-1"], [("r-1", 60)])


def test_an_endpoint_on_the_metadata_address_is_refused() -> None:
    # Expected: EndpointError (a link-local address is no integrator's endpoint).
    # Before the fix: the URL back, registered.
    with pytest.raises(EndpointError):
        checked_url("https://169.254.169.254/latest/meta-data/", allow_loopback=False)


@dataclass
class OneMessageQueue:
    """SQS as the local poller calls it: one endpoint message, then none (and `stop` set,
    so the poller's loop ends after its second receive)."""

    body: str
    stop: threading.Event
    receives: int = 0
    deleted: list[str] = field(default_factory=list)
    hidden: list[tuple[str, int]] = field(default_factory=list)

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        if self.receives > 1:
            self.stop.set()
            return {}
        message = {
            "MessageId": "m-1",
            "ReceiptHandle": "r-1",
            "Body": self.body,
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
        return {"Messages": [message]}

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str) -> None:  # noqa: N803
        self.deleted.append(ReceiptHandle)

    def change_message_visibility(self, **request: Any) -> None:
        self.hidden.append((request["ReceiptHandle"], request["VisibilityTimeout"]))


def test_the_local_poller_keeps_polling_after_a_receiver_answers_garbage() -> None:
    stop = threading.Event()
    with not_http_receiver() as url:
        endpoint = Endpoint("we_raw", url, ("InvoiceIssued",), "s/we_raw")
        sqs = OneMessageQueue(QueuedDelivery(EVENT).for_endpoint("we_raw"), stop)
        poller = WebhookPoller(sqs, "local-queue", Deliverer(OneEndpoint(endpoint), OneSecret()))

        # Expected: run() returns once `stop` is set, after a second receive; the message
        # was not deleted (it comes back, as Lambda's event source would leave it).
        # Before the fix: http.client.BadStatusLine raised out of run() on the first poll.
        poller.run(stop)

    assert (sqs.receives, sqs.deleted) == (2, [])


@contextmanager
def trickling_receiver(pause: float) -> Iterator[str]:
    """A receiver that reads the POST and answers `HTTP/1.1 204 No Content` one byte at a
    time, `pause` seconds apart: each read gets a byte well within any per-read timeout."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            for byte in b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                finished.wait(pause)
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    finished = threading.Event()  # never set: only paces the bytes
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_not_complete_within_the_timeout_is_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The timeout scaled down 50 times (10 s -> 0.2 s), the receiver's pace with it: 47
    # bytes 0.05 s apart take ~2.3 s, more than 11 times the timeout, no read waiting more
    # than a quarter of it.
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.2)
    with trickling_receiver(pause=0.05) as url:
        endpoint = Endpoint("we_slow", url, ("InvoiceIssued",), "s/we_slow")
        deliverer = Deliverer(OneEndpoint(endpoint), OneSecret())

        # Expected: no answer within the timeout: a failure (status None).
        # Before the fix: status 204, delivered, after ~2.3 s.
        attempt = deliverer.attempt(endpoint, QueuedDelivery(EVENT).domain_event(), NOW)

    assert attempt.status is None


def test_two_crossings_of_one_percent_threshold_at_two_amounts_have_two_webhook_ids() -> None:
    first = Crossing("acct-1", "2026-11", "USD", Decimal("400.00"), Decimal("412.50"), "percent:80")
    second = replace(first, threshold=Decimal("800.00"), subtotal=Decimal("803.10"))
    # the claims that publish each at most once are two (they differ by the amount)
    assert claim_key(first) != claim_key(second)
    ids = [
        webhook_id(
            DomainEvent("SpendThresholdCrossed", crossing.detail(), f"e-{n}", "").key, "we_erp"
        )
        for n, crossing in enumerate((first, second))
    ]

    # Expected: two webhook ids (two events); before the fix, the same msg_... twice.
    assert ids[0] != ids[1]
