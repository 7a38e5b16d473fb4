"""Delivering domain events to the endpoints subscribed to them, one endpoint at a time.

A message the bus's rule put on the webhook queue is fanned out: one message per
subscribed endpoint goes back on the queue. Each of those is then delivered, signed and
POSTed, and, when its endpoint fails, delayed by `retry_delay` of its receive count and
failed back, until the queue dead-letters it: an endpoint's retries, backoff and
dead-lettering are its own, and an endpoint that took an event is not sent it again
(docs/webhooks.md)."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from billing.core.webhooks.payload import (
    ROTATION_GRACE_SECONDS,
    SECRET_CACHE_SECONDS,
    DomainEvent,
    QueuedDelivery,
    retry_delay,
    webhook_id,
)
from billing.core.webhooks.signing import signed_headers
from billing.store.errors import StoreError
from billing.store.webhook_endpoints import Endpoint, SecretVersions

TIMEOUT_SECONDS: Final = 10
USER_AGENT: Final = "usage-billing-webhooks/1"

# POST a body with headers to a URL: the response's status, or an exception.
Post = Callable[[str, bytes, dict[str, str]], int]


class Endpoints(Protocol):
    def subscribed(self, event_type: str) -> list[Endpoint]: ...
    def find(self, endpoint_id: str) -> Endpoint | None: ...


class Secrets(Protocol):
    def versions(self, name: str, *, grace_seconds: int, now: float) -> SecretVersions: ...


class Queue(Protocol):
    def delay(self, receipt_handle: str, seconds: int) -> None: ...
    def send(self, bodies: Sequence[str]) -> int: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: the signed request goes to the registered
    URL only, never on to wherever a 3xx points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER: Final = urllib.request.build_opener(_NoRedirects())


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT},
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@dataclass(frozen=True, slots=True)
class Attempt:
    endpoint_id: str
    webhook_id: str
    status: int | None  # None: no answer (refused, timed out)
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class CachedSecrets:
    """Each endpoint's signing secrets, read again once they are `ttl` seconds old: a warm
    deliverer does not read Secrets Manager for every delivery, and a rotation reaches it
    within `ttl` (so does the end of its grace window)."""

    source: Secrets
    ttl: int = SECRET_CACHE_SECONDS
    _held: dict[str, tuple[int, SecretVersions]] = field(default_factory=dict)

    def signing(self, name: str, now: int) -> tuple[str, ...]:
        held = self._held.get(name)
        if held is None or now - held[0] >= self.ttl:
            read = self.source.versions(name, grace_seconds=ROTATION_GRACE_SECONDS, now=now)
            held = self._held[name] = (now, read)
        return held[1].signing()


@dataclass
class Deliverer:
    endpoints: Endpoints
    secrets: Secrets
    post: Post = http_post
    cache: CachedSecrets = field(init=False)

    def __post_init__(self) -> None:
        self.cache = CachedSecrets(self.secrets)

    def deliver(self, event: DomainEvent, now: int) -> list[Attempt]:
        """One attempt at each endpoint subscribed to the event, from here (no queue)."""
        subscribed = self.endpoints.subscribed(event.detail_type)
        return [self.attempt(endpoint, event, now) for endpoint in subscribed]

    def attempt(self, endpoint: Endpoint, event: DomainEvent, now: int) -> Attempt:
        message_id = webhook_id(event.key, endpoint.endpoint_id)
        body = event.body()
        try:
            secrets = self.cache.signing(endpoint.secret_name, now)
            status = self.post(endpoint.url, body, signed_headers(secrets, message_id, now, body))
        except (OSError, ValueError, StoreError) as error:
            # The reason's kind only: a message could carry the URL's query string.
            return Attempt(endpoint.endpoint_id, message_id, None, type(error).__name__)
        return Attempt(endpoint.endpoint_id, message_id, status)


def deliver_messages(
    records: Sequence[dict[str, Any]], deliverer: Deliverer, now: int, queue: Queue
) -> list[str]:
    """Handle each SQS message: fan an event from the bus out to its endpoints' messages,
    or deliver an endpoint's message. The ids of those to fail back to the queue, each first
    made visible again after `retry_delay` of its receive count, which is the backoff: the
    queue's redrive policy sends it to the dead-letter queue after MAX_ATTEMPTS receives."""
    failed: list[str] = []
    for record in records:
        if _handled(record["body"], deliverer, now, queue):
            continue
        received = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        # If the delay fails, the message comes back after the queue's own visibility timeout.
        with contextlib.suppress(StoreError):
            queue.delay(record["receiptHandle"], retry_delay(received))
        failed.append(record["messageId"])
    return failed


def _handled(body: str, deliverer: Deliverer, now: int, queue: Queue) -> bool:
    try:
        message = QueuedDelivery.parse(body)
        event = message.domain_event()
    except (ValueError, KeyError, TypeError):
        # Not a message the rule or the fan-out would send: retried, then dead-lettered,
        # for a person.
        return False
    try:
        if message.endpoint_id is None:
            return _fanned_out(message, event, deliverer, queue)
        endpoint = deliverer.endpoints.find(message.endpoint_id)
    except StoreError:
        return False
    # An endpoint removed since the fan-out is sent nothing more.
    return endpoint is None or deliverer.attempt(endpoint, event, now).delivered


def _fanned_out(
    message: QueuedDelivery, event: DomainEvent, deliverer: Deliverer, queue: Queue
) -> bool:
    """One message per endpoint subscribed to the event. If any is refused, the event is
    fanned out again later: the endpoints whose message was queued get a second one, with
    the same webhook id, which their receivers dedupe."""
    subscribed = deliverer.endpoints.subscribed(event.detail_type)
    return queue.send([message.for_endpoint(e.endpoint_id) for e in subscribed]) == 0
