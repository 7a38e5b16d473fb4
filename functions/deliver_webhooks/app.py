"""deliver_webhooks: the webhook queue to the endpoints operators registered, signed
(billing.webhooks). An event the bus's rule put there is fanned out into one message per
subscribed endpoint, on the same queue; an endpoint's message it did not take is delayed
by the backoff and reported failed; after the queue's maximum receives it goes to the
dead-letter queue, which is alarmed. See docs/webhooks.md."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.store.webhook_queue import WebhookQueue
from billing.webhooks.delivery import Deliverer, deliver_messages

logger = Logger(service="deliver_webhooks")
metrics = Metrics(namespace="UsageBilling", service="deliver_webhooks")
tracer = Tracer(service="deliver_webhooks")


@functools.cache
def deliverer() -> tuple[Deliverer, WebhookQueue]:
    return wiring.webhook_deliverer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    delivering, queue = deliverer()
    failed = deliver_messages(records, delivering, int(time.time()), queue)
    metrics.add_metric("WebhookMessagesDelivered", MetricUnit.Count, len(records) - len(failed))
    if failed:
        metrics.add_metric("WebhookMessagesRetried", MetricUnit.Count, len(failed))
        logger.warning("webhook deliveries to retry", extra={"messages": failed})
    return {"batchItemFailures": [{"itemIdentifier": message} for message in failed]}
