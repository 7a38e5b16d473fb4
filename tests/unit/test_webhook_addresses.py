"""Where a webhook may go (issue 18's review): checked_url's refusals (credentials,
spaces and stray characters, a malformed host or port, addresses that are no receiver's,
loopback only locally), what a host resolves to checked at registration and before each
POST on AWS (resolution monkeypatched: no network), the whole exchange's failures kept
inside the deliverer, and the local poller surviving a failed poll."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from billing.core.webhooks.addresses import address_refusal
from billing.core.webhooks.payload import DomainEvent, QueuedDelivery
from billing.core.webhooks.signing import new_secret
from billing.store.webhook_endpoints import Endpoint, EndpointError, SecretVersions, checked_url
from billing.webhooks import addresses
from billing.webhooks.addresses import checked_url_addresses
from billing.webhooks.delivery import Deliverer, deliver_messages, public_http_post
from billing_cli.local.webhooks import WebhookPoller

NOW = 1_796_000_000
EVENT = {
    "id": "envelope-1",
    "detail-type": "InvoiceIssued",
    "source": "usage-billing",
    "time": "2026-12-01T06:00:00Z",
    "detail": {"event_id": "InvoiceIssued:INV-1"},
}
PUBLIC = "93.184.215.14"  # a global unicast address (example.com's, once)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://erp-user:s3cr3t-pass@erp.example.com/hook", "user name or password"),
        ("https://s3cr3t-token@erp.example.com/hook", "user name or password"),
        ("https://erp.example.com/my hook", "a space"),
        ("https://erp.example.com/hook\r\nX-Injected: 1", r"U\+000D"),
        ("https://erp.example.com/h\u00e9", r"U\+00E9"),
        ("https://erp.example.com/<hook>", r"U\+003C"),
        ("https://[::1/hook", "not a valid webhook URL \\(its host is malformed\\)"),
        ("https://erp.example.com:s3cr3t/hook", "its port is invalid"),
        ("https://erp.example.com:70000/hook", "its port is invalid"),
        ("https://erp.example.com:0/hook", "port 0"),
        ("https:///hook", "must be https"),
        ("http://erp.example.com/hook", "must be https"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://10.0.0.7/hook", "private"),
        ("https://192.168.1.20/hook", "private"),
        ("https://[fd00::7]/hook", "private"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://100.64.0.1/hook", "reserved"),
        ("https://224.0.0.1/hook", "reserved"),
    ],
)
def test_a_url_no_receiver_has_is_refused_without_quoting_credentials(
    url: str, reason: str
) -> None:
    with pytest.raises(EndpointError, match=reason) as refused:
        checked_url(url, allow_loopback=False)
    assert "s3cr3t" not in str(refused.value)


def test_locally_loopback_is_allowed_and_nothing_else_more() -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "http://[::1]:9/h"):
        assert checked_url(url, allow_loopback=True) == url
    for url in ("https://10.0.0.7/hook", "http://10.0.0.7/hook", "https://169.254.169.254/"):
        with pytest.raises(EndpointError):
            checked_url(url, allow_loopback=True)


def test_public_addresses_may_be_sent_to() -> None:
    assert checked_url("https://[2606:4700::6810:84e5]/hook", allow_loopback=False)
    assert checked_url(f"https://{PUBLIC}:8443/hook?k=v", allow_loopback=False)
    assert address_refusal(PUBLIC, allow_loopback=False) is None
    assert address_refusal("fe80::1%eth0", allow_loopback=True) == "link-local"


@pytest.fixture
def resolving(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Resolution as a table (host -> addresses; a host not in it does not resolve), and
    no connection made: each one asked for is recorded and refused."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        table.setdefault("connected", []).append(f"{address[0]}:{address[1]}")
        raise ConnectionRefusedError(address)

    monkeypatch.setattr(addresses, "resolve", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    return table


def test_a_name_is_refused_if_any_address_it_resolves_to_is_not_public(
    resolving: dict[str, list[str]],
) -> None:
    resolving["erp.example.com"] = [PUBLIC]
    resolving["meta.example.com"] = ["169.254.169.254"]
    resolving["mixed.example.com"] = [PUBLIC, "10.0.0.7"]
    resolving["here.example.com"] = ["127.0.0.1"]

    assert checked_url_addresses("https://erp.example.com/h", allow_loopback=False) == [PUBLIC]
    for host, reason in [
        ("meta.example.com", "resolves to 169.254.169.254, a link-local address"),
        ("mixed.example.com", "resolves to 10.0.0.7, a private address"),
        ("here.example.com", "resolves to 127.0.0.1, a loopback address"),
        ("nowhere.example.com", "does not resolve"),
    ]:
        with pytest.raises(EndpointError, match=reason):
            checked_url_addresses(f"https://{host}/h", allow_loopback=False)
    # the local runtime's receivers: loopback, and only loopback, allowed
    assert checked_url_addresses("http://here.example.com/h", allow_loopback=True)


@dataclass
class OneEndpoint:
    endpoint: Endpoint

    def subscribed(self, event_type: str) -> list[Endpoint]:
        return [self.endpoint]

    def find(self, endpoint_id: str) -> Endpoint | None:
        return self.endpoint


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


def _delivered(url: str, post: Any) -> tuple[list[str], list[tuple[str, int]], Deliverer]:
    endpoint = Endpoint("we_1", url, ("InvoiceIssued",), "s/we_1")
    deliverer, queue = Deliverer(OneEndpoint(endpoint), OneSecret(), post), RecordingQueue()
    record = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": QueuedDelivery(EVENT).for_endpoint("we_1"),
        "attributes": {"ApproximateReceiveCount": "3"},
    }
    return deliver_messages([record], deliverer, NOW, queue), queue.delays, deliverer


def test_on_aws_a_post_goes_only_to_the_public_addresses_just_checked(
    resolving: dict[str, list[str]],
) -> None:
    # GIVEN a stored endpoint whose name now resolves to the metadata address, another to
    # a public one (whose server refuses the connection), and one over plain http
    resolving["erp.example.com"] = ["169.254.169.254"]
    resolving["crm.example.com"] = [PUBLIC]
    event = DomainEvent.from_eventbridge(EVENT)

    # WHEN each is attempted as deliver_webhooks does
    attempts = [
        Deliverer(OneEndpoint(e), OneSecret(), public_http_post).attempt(e, event, NOW)
        for e in (
            Endpoint("we_1", "https://erp.example.com/hook", ("InvoiceIssued",), "s/1"),
            Endpoint("we_2", "https://crm.example.com/hook", ("InvoiceIssued",), "s/2"),
            Endpoint("we_3", "http://127.0.0.1:9000/hook", ("InvoiceIssued",), "s/3"),
        )
    ]

    # THEN the refused ones were never connected to; the public one on its checked address
    assert [(a.status, a.error) for a in attempts] == [
        (None, "EndpointError"),
        (None, "ConnectionRefusedError"),
        (None, "EndpointError"),
    ]
    assert resolving["connected"] == [f"{PUBLIC}:443"]


def test_a_refused_address_fails_the_message_with_its_backoff(
    resolving: dict[str, list[str]],
) -> None:
    resolving["erp.example.com"] = ["10.1.2.3"]
    failed, delays, _ = _delivered("https://erp.example.com/hook", public_http_post)
    # the third receive: retry_delay(3) = 60 * 2**2 = 240 s
    assert (failed, delays) == (["m-1"], [("r-1", 240)])
    assert "connected" not in resolving


@pytest.mark.parametrize(
    "error",
    [http.client.BadStatusLine("garbage"), http.client.IncompleteRead(b""), RuntimeError("x")],
)
def test_whatever_the_exchange_raises_is_a_failure_with_its_kind_only(error: Exception) -> None:
    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        raise error

    failed, delays, deliverer = _delivered("https://erp.example.com/hook", post)

    assert (failed, delays) == (["m-1"], [("r-1", 240)])
    endpoint = deliverer.endpoints.find("we_1")
    assert endpoint is not None
    attempt = deliverer.attempt(endpoint, DomainEvent.from_eventbridge(EVENT), NOW)
    assert (attempt.status, attempt.error) == (None, type(error).__name__)


@dataclass
class FailingFirstReceive:
    """SQS whose first receive fails (the local moto server restarting, say); the second
    finds nothing and sets `stop`."""

    stop: threading.Event
    receives: int = 0

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        if self.receives == 1:
            raise RuntimeError("connection reset")
        self.stop.set()
        return {}


def test_the_local_poller_polls_on_after_a_poll_fails(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    sqs = FailingFirstReceive(stop)
    poller = WebhookPoller(sqs, "local-queue", Deliverer(OneEndpoint(_nowhere()), OneSecret()))

    poller.run(stop)

    assert sqs.receives == 2
    assert "webhooks: a poll failed (RuntimeError)" in capsys.readouterr().err


def _nowhere() -> Endpoint:
    return Endpoint("we_1", "http://127.0.0.1:9/hook", ("InvoiceIssued",), "s/we_1")
