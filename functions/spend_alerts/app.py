"""spend_alerts: the ledger table's stream (NEW_AND_OLD_IMAGES) into SpendThresholdCrossed
events, each at most once per (account, period, currency, threshold), and, for a threshold
the customer set, one email to the account's address.

Thin on purpose: Powertools' BatchProcessor hands each record's old and new images to
`billing.customer.spend_alerts`; a record that fails (the bus, the store or SES unavailable)
is reported in the partial batch response and delivered again. See docs/usage-api.md.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.customer.spend_alerts import SpendAlerts

logger = Logger(service="spend_alerts")
metrics = Metrics(namespace="UsageBilling", service="spend_alerts")
tracer = Tracer(service="spend_alerts")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@functools.cache
def service() -> SpendAlerts:
    return wiring.spend_alerts()


# The metric each settled customer email counts in. `unknown` is the one an operator must
# look at: the email may or may not have left, and is never sent again by itself.
EMAIL_METRICS = {
    "sent": "SpendAlertEmailsSent",
    "undelivered": "SpendAlertEmailsUndelivered",
    "unknown": "SpendAlertEmailsUnknown",
}


def record_handler(record: DynamoDBRecord) -> None:
    change = record.raw_event.get("dynamodb", {})
    for alerted in service().handle(change.get("OldImage"), change.get("NewImage")):
        crossing = alerted.crossing
        # Which account, period and kind of threshold, never the amounts (a customer's
        # threshold id holds one).
        where = {
            "account_id": crossing.account_id,
            "period": crossing.period,
            "set_by": crossing.set_by,
        }
        if alerted.published:
            metrics.add_metric("SpendAlerts", MetricUnit.Count, 1)
            logger.info("spend threshold crossed", extra=where)
        if alerted.email is not None:
            metrics.add_metric(EMAIL_METRICS[alerted.email], MetricUnit.Count, 1)
            if alerted.email == "sent":
                logger.info("spend alert emailed", extra=where)
            else:
                logger.warning(
                    f"spend alert email {alerted.email}: not sent again by itself", extra=where
                )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric("StreamRecords", MetricUnit.Count, len(event.get("Records", [])))
    service()  # a bad setting fails the invocation here, not each record on its own
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
