"""Delivering domain events to the endpoints subscribed to them, one endpoint at a time.

A message the bus's rule put on the webhook queue is fanned out: one message per
subscribed endpoint goes back on the queue. Each of those is then delivered, signed and
POSTed, and, when its endpoint fails, delayed by `retry_delay` of its receive count and
failed back, until the queue dead-letters it: an endpoint's retries, backoff and
dead-lettering are its own, and an endpoint that took an event is not sent it again
(docs/webhooks.md)."""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

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
from billing.store.webhook_endpoints import Endpoint, SecretVersions, checked_url
from billing.webhooks.addresses import any_connection, public_connection

# The most a POST may take, from resolving the host to the answer's headers.
TIMEOUT_SECONDS: Final[float] = 10
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


# Open a TCP connection to (host, port) within a timeout: where a POST may go.
Connect = Callable[[str, int, float], socket.socket]


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's CAs and hostname checks, loaded once per container."""
    return ssl.create_default_context()


class _Exchange:
    """One POST on a thread of its own, so that TIMEOUT_SECONDS bounds the whole exchange
    (resolving, connecting, TLS, sending, the answer's status line and headers), not each
    socket read: a receiver that answers a byte at a time is cut off like a silent one.
    http.client never follows a redirect: a 3xx is an answer, and the signed request goes
    to the registered URL only."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str], connect: Connect):
        self.parts = urlsplit(url)
        self.body, self.headers, self.connect = body, headers, connect
        self.sock: socket.socket | None = None
        self.status: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.status = self._post()
        except BaseException as error:  # handed to the caller's thread, whatever it is
            self.error = error

    def _post(self) -> int:
        host, https = self.parts.hostname or "", self.parts.scheme == "https"
        port = self.parts.port or (443 if https else 80)
        self.sock = self.connect(host, port, TIMEOUT_SECONDS)
        connection: http.client.HTTPConnection
        if https:
            context = _tls()
            self.sock = context.wrap_socket(self.sock, server_hostname=host)
            connection = http.client.HTTPSConnection(host, port, context=context)
        else:
            connection = http.client.HTTPConnection(host, port)
        connection.sock = self.sock  # connected above: http.client sends on it as it is
        target = urlunsplit(("", "", self.parts.path or "/", self.parts.query, ""))
        try:
            connection.request("POST", target, self.body, self.headers)
            return int(connection.getresponse().status)
        finally:
            connection.close()

    def abort(self) -> None:
        """Wake the exchange's thread out of a read or write that outlasted the deadline."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


def _post(url: str, body: bytes, headers: dict[str, str], connect: Connect) -> int:
    sent = {**headers, "content-type": "application/json", "user-agent": USER_AGENT}
    exchange = _Exchange(url, body, sent, connect)
    worker = threading.Thread(target=exchange.run, name="webhook-post", daemon=True)
    worker.start()
    worker.join(TIMEOUT_SECONDS)
    if worker.is_alive():
        exchange.abort()
        raise TimeoutError(f"no complete answer within {TIMEOUT_SECONDS} s")
    if exchange.error is not None:
        raise exchange.error
    assert exchange.status is not None
    return exchange.status


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST where the URL points, loopback included: the local runtime's, whose receivers
    run on 127.0.0.1 (checked_url as `billing local` registers: https, or http on loopback;
    private and link-local addresses written in the URL refused)."""
    return _post(checked_url(url, allow_loopback=True), body, headers, any_connection)


def public_http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to an https URL whose host resolves to public addresses only, checked just
    before connecting to them: the deliverer's on AWS, and `billing webhooks test`'s
    against a deployment (an endpoint registered before a check existed, or pointed at an
    address since, is refused like a connection)."""
    return _post(checked_url(url, allow_loopback=False), body, headers, public_connection)


@dataclass(frozen=True, slots=True)
class Attempt:
    endpoint_id: str
    webhook_id: str
    status: int | None  # None: no answer (URL or address refused, no connection, timed out)
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
    """Posts with `post`: http_post (anywhere, loopback included) for the local runtime,
    public_http_post on AWS (billing.wiring)."""

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
            headers = signed_headers(secrets, message_id, now, body)
            status = self.post(endpoint.url, body, headers)
        except Exception as error:
            # Whatever went wrong (a refused or malformed URL, no answer in time, an answer
            # that is not HTTP: http.client's HTTPException is neither an OSError nor a
            # ValueError) is the endpoint's failure, retried with the backoff. Only the
            # reason's kind is kept: a message could quote the URL, credentials and all.
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
