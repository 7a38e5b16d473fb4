"""The webhook queue, for the one call the deliverer makes on it itself: hiding a message
it could not deliver for the backoff's delay (receiving and deleting are the event
source's)."""

from __future__ import annotations

from typing import Any

from billing.store.errors import translated


class WebhookQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> None:
        with translated("delay a webhook message"):
            self._client.change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
