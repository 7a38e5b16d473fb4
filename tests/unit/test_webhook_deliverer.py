"""The deliverer without AWS: an event from the bus fanned out to one message per
subscribed endpoint, an endpoint's message delivered to it alone, the secrets' cache and
the two signatures of a rotation's grace window."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from billing.core.webhooks.payload import (
    ROTATION_GRACE_SECONDS,
    SECRET_CACHE_SECONDS,
    QueuedDelivery,
    webhook_id,
)
from billing.core.webhooks.signing import SignatureError, new_secret, verify
from billing.store.webhook_endpoints import Endpoint, SecretVersions
from billing.webhooks.delivery import Deliverer, deliver_messages

NOW = 1_796_000_000
ERP = Endpoint("we_erp", "https://erp.example.com/hook", ("InvoiceIssued",), "s/we_erp")
CRM = Endpoint("we_crm", "https://crm.example.com/hook", ("InvoiceIssued",), "s/we_crm")
EVENT = {
    "id": "envelope-1",
    "detail-type": "InvoiceIssued",
    "source": "usage-billing",
    "time": "2026-12-01T06:00:00Z",
    "detail": {"event_id": "InvoiceIssued:INV-1"},
}


@dataclass
class FakeEndpoints:
    registered: list[Endpoint]

    def subscribed(self, event_type: str) -> list[Endpoint]:
        return [e for e in self.registered if event_type in e.event_types]

    def find(self, endpoint_id: str) -> Endpoint | None:
        return next((e for e in self.registered if e.endpoint_id == endpoint_id), None)


@dataclass
class FakeSecrets:
    current: str = field(default_factory=new_secret)
    previous: str | None = None
    reads: int = 0

    def versions(self, name: str, *, grace_seconds: int, now: float) -> SecretVersions:
        assert grace_seconds == ROTATION_GRACE_SECONDS
        self.reads += 1
        return SecretVersions(self.current, self.previous)


@dataclass
class FakeQueue:
    sent: list[str] = field(default_factory=list)
    delays: list[tuple[str, int]] = field(default_factory=list)
    refuse: int = 0

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))

    def send(self, bodies: Sequence[str]) -> int:
        self.sent.extend(bodies)
        return self.refuse


@dataclass
class Posts:
    status: int = 204
    made: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.made.append((url, body, headers))
        return self.status


def _record(body: str, received: int = 1) -> dict[str, object]:
    return {
        "messageId": f"m-{received}",
        "receiptHandle": f"r-{received}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(received)},
    }


def test_an_event_from_the_bus_is_fanned_out_and_not_posted() -> None:
    posts, queue = Posts(), FakeQueue()
    deliverer = Deliverer(FakeEndpoints([ERP, CRM]), FakeSecrets(), posts)

    failed = deliver_messages([_record(json.dumps(EVENT))], deliverer, NOW, queue)

    assert failed == []
    assert posts.made == []
    assert [json.loads(body) for body in queue.sent] == [
        {"endpoint_id": "we_erp", "event": EVENT},
        {"endpoint_id": "we_crm", "event": EVENT},
    ]


def test_a_refused_fan_out_is_retried_with_the_backoff() -> None:
    queue = FakeQueue(refuse=1)
    deliverer = Deliverer(FakeEndpoints([ERP, CRM]), FakeSecrets(), Posts())

    failed = deliver_messages([_record(json.dumps(EVENT), received=2)], deliverer, NOW, queue)

    # the second receive failed: visible again after retry_delay(2) = 120 s
    assert (failed, queue.delays) == (["m-2"], [("r-2", 120)])


def test_an_endpoints_message_goes_to_that_endpoint_only() -> None:
    posts, queue = Posts(status=500), FakeQueue()
    deliverer = Deliverer(FakeEndpoints([ERP, CRM]), FakeSecrets(), posts)
    body = QueuedDelivery(EVENT).for_endpoint("we_crm")

    failed = deliver_messages([_record(body, received=3)], deliverer, NOW, queue)

    [(url, _, headers)] = posts.made
    assert url == CRM.url
    assert headers["webhook-id"] == webhook_id("InvoiceIssued:INV-1", "we_crm")
    # refused on the third receive: 60 * 2**2 = 240 s before the next
    assert (failed, queue.delays, queue.sent) == (["m-3"], [("r-3", 240)], [])


def test_secrets_are_read_again_once_the_cache_is_old() -> None:
    secrets, posts = FakeSecrets(), Posts()
    deliverer = Deliverer(FakeEndpoints([ERP]), secrets, posts)
    event = QueuedDelivery(EVENT).domain_event()

    for now in (NOW, NOW + SECRET_CACHE_SECONDS - 1):
        assert deliverer.attempt(ERP, event, now).delivered
    assert secrets.reads == 1
    # a rotation is seen once the cached read is SECRET_CACHE_SECONDS old
    old, secrets.current, secrets.previous = secrets.current, new_secret(), secrets.current
    deliverer.attempt(ERP, event, NOW + SECRET_CACHE_SECONDS)
    assert secrets.reads == 2
    _, body, headers = posts.made[-1]
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    for secret in (secrets.current, old):
        assert verify(secret, headers, body, now=NOW + SECRET_CACHE_SECONDS).startswith("msg_")
    # a receiver with neither secret refuses it
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(new_secret(), headers, body, now=NOW + SECRET_CACHE_SECONDS)


def test_the_grace_window_ends_with_the_previous_version() -> None:
    assert SecretVersions("whsec_new").signing() == ("whsec_new",)
    assert SecretVersions("whsec_new", "whsec_old").signing() == ("whsec_new", "whsec_old")


def test_a_message_neither_kind_is_failed_for_a_person() -> None:
    queue = FakeQueue()
    deliverer = Deliverer(FakeEndpoints([ERP]), FakeSecrets(), Posts())
    records = [_record("not json"), _record("[1]", received=2), _record('{"endpoint_id": "x"}', 3)]

    failed = deliver_messages(records, deliverer, NOW, queue)

    assert failed == ["m-1", "m-2", "m-3"]
    assert [seconds for _, seconds in queue.delays] == [60, 120, 240]
