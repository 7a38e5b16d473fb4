"""deliver_webhooks: the webhook queue (domain events the bus's rule put there) to the
endpoints operators registered, signed (billing.webhooks). A message any endpoint did not
take is delayed by the backoff and reported failed; after the queue's maximum receives it
goes to the dead-letter queue, which is alarmed. See docs/webhooks.md."""

from __future__ import annotations

import functools
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.webhooks.delivery import Deliverer, deliver_messages
from billing.webhooks.settings import WebhookSettings

logger = Logger(service="deliver_webhooks")
metrics = Metrics(namespace="UsageBilling", service="deliver_webhooks")
tracer = Tracer(service="deliver_webhooks")


@functools.cache
def settings() -> WebhookSettings:
    return WebhookSettings.read()


@functools.cache
def deliverer() -> Deliverer:
    return wiring.webhook_deliverer(settings())


@functools.cache
def sqs() -> Any:
    return boto3.client("sqs")


def delay(receipt_handle: str, seconds: int) -> None:
    sqs().change_message_visibility(
        QueueUrl=settings().webhook_queue_url,
        ReceiptHandle=receipt_handle,
        VisibilityTimeout=seconds,
    )


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records", [])
    failed = deliver_messages(records, deliverer(), int(time.time()), delay)
    metrics.add_metric("WebhookMessagesDelivered", MetricUnit.Count, len(records) - len(failed))
    if failed:
        metrics.add_metric("WebhookMessagesRetried", MetricUnit.Count, len(failed))
        logger.warning("webhook deliveries to retry", extra={"messages": failed})
    return {"batchItemFailures": [{"itemIdentifier": message} for message in failed]}
