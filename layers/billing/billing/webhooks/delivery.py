"""Delivering one domain event to the endpoints subscribed to it: signed, POSTed, and, when
any endpoint fails, failed whole so the queue brings it back after `retry_delay`. An
endpoint that took it already receives it again with the same `webhook-id`, which is what
receivers dedupe on (docs/webhooks.md)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from billing.core.webhooks.payload import DomainEvent, retry_delay, webhook_id
from billing.core.webhooks.signing import signed_headers
from billing.store.errors import StoreError
from billing.store.webhook_endpoints import Endpoint

TIMEOUT_SECONDS: Final = 10
USER_AGENT: Final = "usage-billing-webhooks/1"

# POST a body with headers to a URL: the response's status, or an exception.
Post = Callable[[str, bytes, dict[str, str]], int]


class Endpoints(Protocol):
    def subscribed(self, event_type: str) -> list[Endpoint]: ...


class Secrets(Protocol):
    def read(self, name: str) -> str: ...


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


@dataclass(frozen=True, slots=True)
class Deliverer:
    endpoints: Endpoints
    secrets: Secrets
    post: Post = http_post

    def deliver(
        self, event: DomainEvent, now: int, only: Endpoint | None = None
    ) -> Sequence[Attempt]:
        """One attempt at each endpoint subscribed to the event (or at `only`)."""
        targets = [only] if only is not None else self.endpoints.subscribed(event.detail_type)
        body = event.body()
        return [self._attempt(endpoint, event, body, now) for endpoint in targets]

    def _attempt(self, endpoint: Endpoint, event: DomainEvent, body: bytes, now: int) -> Attempt:
        message_id = webhook_id(event.key, endpoint.endpoint_id)
        try:
            headers = signed_headers(self.secrets.read(endpoint.secret_name), message_id, now, body)
            status = self.post(endpoint.url, body, headers)
        except (OSError, ValueError, StoreError) as error:
            # The reason's kind only: a message could carry the URL's query string.
            return Attempt(endpoint.endpoint_id, message_id, None, type(error).__name__)
        return Attempt(endpoint.endpoint_id, message_id, status)


# Make the message with this receipt handle visible again after so many seconds.
Delay = Callable[[str, int], None]


def deliver_messages(
    records: Sequence[dict[str, Any]], deliverer: Deliverer, now: int, delay: Delay
) -> list[str]:
    """Deliver each SQS message (an EventBridge event); the ids of those to fail back to the
    queue. Each failed one is first made visible again after `retry_delay` of its receive
    count, which is the backoff: the queue's redrive policy sends it to the dead-letter
    queue after MAX_ATTEMPTS receives."""
    failed: list[str] = []
    for record in records:
        try:
            event = DomainEvent.from_eventbridge(json.loads(record["body"]))
        except (ValueError, KeyError, TypeError):
            # Not an event the rule would send: retried, then dead-lettered, for a person.
            failed.append(record["messageId"])
            continue
        if all(attempt.delivered for attempt in deliverer.deliver(event, now)):
            continue
        received = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        # If the delay fails, the message comes back after the queue's own visibility timeout.
        with contextlib.suppress(StoreError):
            delay(record["receiptHandle"], retry_delay(received))
        failed.append(record["messageId"])
    return failed
