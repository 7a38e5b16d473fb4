"""rate_usage: a Kinesis batch of usage events into the accounts' ledgers.

Thin on purpose: it checks its environment, turns the event into stream records, and hands
them to `billing.rating.service`. Partial failures go back to Lambda as batchItemFailures.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from billing import wiring
from billing.rating.rater import StreamRecord
from billing.rating.service import BatchReport, RatingService

logger = Logger(service="rate_usage")
metrics = Metrics(namespace="UsageBilling", service="rate_usage")
tracer = Tracer(service="rate_usage")


@functools.cache
def service() -> RatingService:
    return wiring.rating_service()


def stream_records(event: KinesisStreamEvent) -> list[StreamRecord]:
    return [
        StreamRecord(
            shard_id=record.event_id.split(":", 1)[0],
            sequence_number=record.kinesis.sequence_number,
            data=record.kinesis.data_as_bytes(),
            partition_key=record.kinesis.partition_key,
            arrival_timestamp=record.kinesis.approximate_arrival_timestamp,
        )
        for record in event.records
    ]


def publish(report: BatchReport) -> None:
    counts = report.counts()
    metrics.add_metric("EventsRated", MetricUnit.Count, counts["rated"])
    metrics.add_metric("Duplicates", MetricUnit.Count, counts["duplicate"])
    metrics.add_metric("Replayed", MetricUnit.Count, counts["replayed"])
    metrics.add_metric("Rejected", MetricUnit.Count, counts["rejected"])
    # Rated, but no charge of the account's plan took them: they are on no invoice line.
    metrics.add_metric("UnpricedEvents", MetricUnit.Count, report.unpriced())
    metrics.add_metric("FailedRecords", MetricUnit.Count, len(report.failed))
    metrics.add_metric("BatchLatency", MetricUnit.Milliseconds, report.seconds * 1000)
    metrics.add_metric("WriteUnits", MetricUnit.Count, report.write_units)
    # Summaries are best effort (a refused one fails no record): counted, so it can alarm.
    metrics.add_metric(
        "RejectionSummariesUnpublished", MetricUnit.Count, report.unpublished_summaries
    )
    for reason, count in report.rejected_by_reason().items():
        metrics.add_metric(f"Rejected_{reason}", MetricUnit.Count, count)
    logger.info(
        "batch rated",
        extra={"outcomes": dict(counts), "failed": len(report.failed), "ms": report.seconds * 1e3},
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = service().process(stream_records(KinesisStreamEvent(event)))
    publish(report)
    return report.response()
