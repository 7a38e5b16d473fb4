"""The webhook queue, for the calls the deliverer makes on it itself: putting one message
per endpoint for an event from the bus (the fan-out), and hiding a message it could not
deliver for the backoff's delay (receiving and deleting are the event source's)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from billing.store.errors import translated

SEND_BATCH_MAX: Final = 10  # entries in one SendMessageBatch call


class WebhookQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> None:
        with translated("delay a webhook message"):
            self._client.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )

    def send(self, bodies: Sequence[str]) -> int:
        """Put the messages on the queue, ten a call; how many it refused (StoreError when
        a call fails whole)."""
        refused = 0
        for start in range(0, len(bodies), SEND_BATCH_MAX):
            entries = [
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(bodies[start : start + SEND_BATCH_MAX])
            ]
            with translated("queue webhook deliveries"):
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            refused += len(answer.get("Failed", []))
        return refused
