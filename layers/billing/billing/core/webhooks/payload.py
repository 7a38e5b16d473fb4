"""What a webhook carries: the event types an endpoint subscribes to, the body, the stable
id a receiver dedupes on, and how long a failing delivery waits before its next attempt."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

# The domain events an endpoint may subscribe to (their EventBridge detail types).
EVENT_TYPES: Final = (
    "InvoiceIssued",
    "InvoiceDeliveryFailed",
    "CreditNoteIssued",
    "SpendThresholdCrossed",
    "UsageRejected",
)
# What `billing webhooks test` sends: to the one endpoint, whatever it subscribes to.
TEST_EVENT: Final = "WebhookTest"

# Retries: the wait after the n-th failed attempt doubles from a minute up to two hours;
# MAX_ATTEMPTS attempts then span more than 24 hours (see retry_delay) before the message
# goes to the dead-letter queue.
FIRST_DELAY_SECONDS: Final = 60
MAX_DELAY_SECONDS: Final = 2 * 60 * 60
MAX_ATTEMPTS: Final = 20
# After `billing webhooks rotate`, deliveries are signed with the old secret too for this
# long, so a receiver can switch to the new one at its own pace (Standard Webhooks puts
# several signatures in one header); the deliverer reads a secret again this often.
ROTATION_GRACE_SECONDS: Final = 24 * 60 * 60
SECRET_CACHE_SECONDS: Final = 5 * 60
# A per-endpoint message's fields (QueuedDelivery).
ENDPOINT_FIELD: Final = "endpoint_id"
EVENT_FIELD: Final = "event"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One event from the bus, as EventBridge hands it to the queue."""

    detail_type: str
    detail: dict[str, Any]
    envelope_id: str
    time: str

    @classmethod
    def from_eventbridge(cls, event: dict[str, Any]) -> DomainEvent:
        return cls(
            detail_type=str(event["detail-type"]),
            detail=dict(event.get("detail") or {}),
            envelope_id=str(event["id"]),
            time=str(event.get("time", "")),
        )

    @property
    def key(self) -> str:
        """What names this event whichever time it was published: its own `event_id`; a
        SpendThresholdCrossed, which has none, by what it is published at most once for
        (billing.store.alert_claims' claim: an operator's threshold by its amount, a
        customer's by its id and the amount it came to, since a percentage of a budget the
        customer changed is crossed again at its new amount); else the envelope's id (a new
        one if the event is published again)."""
        if "event_id" in self.detail:
            return str(self.detail["event_id"])
        if self.detail_type == "SpendThresholdCrossed":
            d = self.detail
            threshold = (
                f"customer:{d['threshold_id']}@{d.get('threshold')}"
                if d.get("threshold_id")
                else d.get("threshold")
            )
            return (
                f"SpendThresholdCrossed:{d['account_id']}:{d['period']}:{d['currency']}:{threshold}"
            )
        return f"{self.detail_type}:{self.envelope_id}"

    def body(self) -> bytes:
        """The request body, in the payload shape Standard Webhooks suggests: the same bytes
        on every attempt (the signature's timestamp changes, the body does not)."""
        document = {"type": self.detail_type, "timestamp": self.time, "data": self.detail}
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """A webhook-queue message: an event from the bus (`endpoint_id` None), which is fanned
    out, or that event for one endpoint, which is delivered, retried and dead-lettered on
    its own. `event` is the EventBridge event as the bus's rule put it on the queue."""

    event: dict[str, Any]
    endpoint_id: str | None = None

    @classmethod
    def parse(cls, body: str) -> QueuedDelivery:
        """ValueError, KeyError or TypeError for a body neither kind of message."""
        document = json.loads(body)
        if not isinstance(document, dict):
            raise TypeError("a webhook message is a JSON object")
        if ENDPOINT_FIELD in document:
            return cls(dict(document[EVENT_FIELD]), str(document[ENDPOINT_FIELD]))
        return cls(document)

    def for_endpoint(self, endpoint_id: str) -> str:
        """The body of this event's message for one endpoint."""
        return json.dumps({ENDPOINT_FIELD: endpoint_id, EVENT_FIELD: self.event}, sort_keys=True)

    def domain_event(self) -> DomainEvent:
        return DomainEvent.from_eventbridge(self.event)


def webhook_id(event_key: str, endpoint_id: str) -> str:
    """The `webhook-id`: one per event and endpoint, the same on every attempt, and opaque
    (an event's key names an account, which the header need not show)."""
    digest = hashlib.sha256(f"{endpoint_id}\n{event_key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def retry_delay(attempt: int) -> int:
    """Seconds to wait after the `attempt`-th (from 1) failed attempt."""
    return min(FIRST_DELAY_SECONDS << (attempt - 1), MAX_DELAY_SECONDS)
