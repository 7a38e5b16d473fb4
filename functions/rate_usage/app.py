"""rate_usage: a Kinesis batch of usage events into the accounts' ledgers.

Thin on purpose: it checks its environment, turns the event into stream records, and hands
them to `billing.rating_service`. Partial failures go back to Lambda as batchItemFailures.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from pydantic import BaseModel

from billing.rater import StreamRecord
from billing.rating_service import BatchReport, RatingService
from billing.resources import CONFIG_TABLE, LEDGER_TABLE, QUARANTINE_BUCKET_ENV
from billing.store.config_store import ConfigStore
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine import Quarantine

logger = Logger(service="rate_usage")
metrics = Metrics(namespace="UsageBilling", service="rate_usage")
tracer = Tracer(service="rate_usage")

# Throttling is retried with backoff by the SDK first; what still fails is reported back
# to Lambda as failed records, never dropped.
_RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 10})


class Settings(BaseModel):
    ledger_table: str
    config_table: str
    quarantine_bucket: str

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            ledger_table=os.environ[LEDGER_TABLE.env_var],
            config_table=os.environ[CONFIG_TABLE.env_var],
            quarantine_bucket=os.environ[QUARANTINE_BUCKET_ENV],
        )


@functools.cache
def service() -> RatingService:
    settings = Settings.from_environment()
    dynamodb = boto3.client("dynamodb", config=_RETRIES)
    return RatingService(
        config=ConfigStore(dynamodb, settings.config_table),
        ledgers=LedgerStore(dynamodb, settings.ledger_table),
        quarantine=Quarantine(boto3.client("s3", config=_RETRIES), settings.quarantine_bucket),
    )


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
    metrics.add_metric("FailedRecords", MetricUnit.Count, len(report.failed))
    metrics.add_metric("BatchLatency", MetricUnit.Milliseconds, report.seconds * 1000)
    metrics.add_metric("WriteUnits", MetricUnit.Count, report.write_units)
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
