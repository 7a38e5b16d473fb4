"""spend_alerts against moto: the ledger table's real stream records, written by the real
rater, through the handler; one SpendThresholdCrossed event per crossing, however often a
batch is delivered."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from billing import wiring
from billing.resources import EVENT_BUS_ENV, SPEND_ALERT_THRESHOLDS_ENV
from billing_cli.local.esm import MappingSettings, deliver
from functions.rate_usage import app as rate_usage
from functions.spend_alerts import app as spend_alerts
from tests.integration.conftest import NOW, REGION, Aws
from tests.support.kinesis import shard

EXAMPLE_EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"
EVENTS = Path(__file__).resolve().parent.parent / "events"
BUS = "billing-events"


@dataclass
class LambdaContext:
    function_name: str = "spend-alerts"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:spend-alerts"
    aws_request_id: str = "request-1"


def as_delivered(value: Any) -> Any:
    """A record as boto3 parsed it, back in the JSON Lambda delivers: binary attributes as
    base64 text, the creation time as epoch seconds."""
    if isinstance(value, dict):
        return {key: as_delivered(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_delivered(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


@dataclass
class Alerts:
    aws: Aws
    events: Any
    sqs: Any
    queue_url: str
    streams: Any
    stream_arn: str
    iterators: dict[str, str]

    def new_records(self) -> list[dict[str, Any]]:
        """The stream's records since the last call, as Lambda's event source mapping
        delivers them (with the stream's ARN)."""
        records = []
        for shard_id, iterator in self.iterators.items():
            response = self.streams.get_records(ShardIterator=iterator)
            self.iterators[shard_id] = response["NextShardIterator"]
            records.extend(
                {**as_delivered(record), "eventSourceARN": self.stream_arn}
                for record in response["Records"]
            )
        return records

    def deliver(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return spend_alerts.handler({"Records": records}, LambdaContext())  # type: ignore[arg-type]

    def published(self) -> list[dict[str, Any]]:
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            if not batch.get("Messages"):
                return found
            for message in batch["Messages"]:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def alerts(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Alerts:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "UsageBilling")
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="alerts",
        EventBusName=BUS,
        EventPattern=json.dumps({"detail-type": ["SpendThresholdCrossed"]}),
    )
    events.put_targets(Rule="alerts", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    monkeypatch.setenv(EVENT_BUS_ENV, BUS)
    monkeypatch.setenv(
        SPEND_ALERT_THRESHOLDS_ENV,
        json.dumps({"USD": ["0.10", "100", "148.27", "1000"], "EUR": ["0.45"], "JPY": ["10000"]}),
    )
    service = wiring.spend_alerts()
    monkeypatch.setattr(spend_alerts, "service", lambda: service)
    stream_arn = aws.dynamodb.describe_table(TableName=aws.ledger_table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", region_name=REGION)
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterators = {
        s["ShardId"]: streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for s in shards
    }
    return Alerts(aws, events, sqs, queue_url, streams, stream_arn, iterators)


def rate_examples(aws: Aws, batch_size: int = 2) -> None:
    """The example events through the real rater, a few at a time, so that charges grow
    over many ledger writes."""
    service = aws.service()
    deliver(
        shard(EXAMPLE_EVENTS.read_bytes().splitlines()),
        lambda event: service.process(
            rate_usage.stream_records(KinesisStreamEvent(event))
        ).response(),
        MappingSettings(batch_size=batch_size),
    )


def details(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    assert {(e["source"], e["detail-type"]) for e in events} <= {
        ("usage-billing", "SpendThresholdCrossed")
    }
    return sorted(
        tuple(
            e["detail"][key]
            for key in ("account_id", "period", "currency", "threshold", "subtotal")
        )
        for e in events
    )


# With the fixture's thresholds: USD 0.10, 100, 148.27, 1000; EUR 0.45; JPY 10000. Each
# subtotal is the running usage charges right after the write that reached the threshold.
EXPECTED = [
    ("acct-1", "2026-10", "USD", "0.10", "420.00"),
    ("acct-1", "2026-10", "USD", "100.00", "420.00"),
    ("acct-1", "2026-10", "USD", "148.27", "420.00"),
    ("acct-1", "2026-11", "USD", "0.10", "6.07"),
    ("acct-1", "2026-11", "USD", "100.00", "147.77"),
    ("acct-1", "2026-11", "USD", "148.27", "148.27"),  # reached exactly: crossed
    ("acct-2", "2026-11", "USD", "0.10", "0.10"),
    ("acct-3", "2026-11", "EUR", "0.45", "1.85"),
    ("acct-4", "2026-11", "JPY", "10000", "12501"),
    ("acct-6", "2026-11", "EUR", "0.45", "0.45"),
]


def test_each_crossing_is_published_once_when_the_batch_is_delivered_twice(
    alerts: Alerts,
) -> None:
    # GIVEN the ledger writes the rater made for the example events, off the table's stream
    rate_examples(alerts.aws)
    records = alerts.new_records()
    assert {r["dynamodb"]["Keys"]["sk"]["S"] for r in records} == {"LEDGER"}

    # WHEN the batch is delivered, then delivered again (at least once), then once more
    # split in two with other boundaries
    responses = [alerts.deliver(records), alerts.deliver(records)]
    responses += [alerts.deliver(records[:7]), alerts.deliver(records[7:])]

    # THEN every crossing was published exactly once, with exact decimal strings
    assert responses == [{"batchItemFailures": []}] * 4
    assert details(alerts.published()) == EXPECTED
    # AND the claims' own stream records (not ledgers) publish nothing
    claims = alerts.new_records()
    assert len(claims) == len(EXPECTED)
    assert all(r["dynamodb"]["Keys"]["sk"]["S"].startswith("ALERT#") for r in claims)
    assert alerts.deliver(claims) == {"batchItemFailures": []}
    assert alerts.published() == []


def test_a_failed_publish_is_retried_and_then_published_once(alerts: Alerts) -> None:
    # GIVEN the rater's ledger writes, and a bus that refuses events
    rate_examples(alerts.aws)
    records = alerts.new_records()
    alerts.events.delete_event_bus(Name=BUS)

    # WHEN the batch is delivered
    failed = alerts.deliver(records)

    # THEN the records whose alerts could not be published are reported for redelivery,
    # from the first one that crossed a threshold
    assert failed["batchItemFailures"]
    first = failed["batchItemFailures"][0]["itemIdentifier"]
    assert first == records[0]["dynamodb"]["SequenceNumber"]
    assert alerts.published() == []

    # WHEN the bus is back and Lambda delivers the failed records again
    restore_bus(alerts)
    failed_ids = {f["itemIdentifier"] for f in failed["batchItemFailures"]}
    retry = [r for r in records if r["dynamodb"]["SequenceNumber"] in failed_ids]
    assert alerts.deliver(retry) == {"batchItemFailures": []}
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN every alert is published, once
    assert details(alerts.published()) == EXPECTED


def restore_bus(alerts: Alerts) -> None:
    alerts.events.create_event_bus(Name=BUS)
    queue_arn = alerts.sqs.get_queue_attributes(
        QueueUrl=alerts.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    alerts.events.put_rule(
        Name="alerts",
        EventBusName=BUS,
        EventPattern=json.dumps({"detail-type": ["SpendThresholdCrossed"]}),
    )
    alerts.events.put_targets(
        Rule="alerts", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}]
    )


def test_closing_a_period_alerts_nothing(alerts: Alerts) -> None:
    # GIVEN every alert of the examples published
    rate_examples(alerts.aws)
    alerts.deliver(alerts.new_records())
    alerts.published()
    alerts.new_records()  # the claims

    # WHEN the invoice run closes acct-1's November (archive written, ledger updated)
    alerts.aws.ledger_store().close_period("acct-1", "2026-11", NOW)
    records = alerts.new_records()

    # THEN neither the archive nor the ledger without the period publishes anything
    assert sorted(r["dynamodb"]["Keys"]["sk"]["S"] for r in records) == ["LEDGER", "USAGE#2026-11"]
    assert alerts.deliver(records) == {"batchItemFailures": []}
    assert alerts.published() == []


def test_records_of_other_items_are_ignored(alerts: Alerts) -> None:
    # GIVEN the kept stream event: an id chunk written, an archive written, a chunk expired
    event = json.loads((EVENTS / "dynamodb_stream_event.json").read_text())

    # WHEN it is delivered
    response = spend_alerts.handler(event, LambdaContext())  # type: ignore[arg-type]

    # THEN nothing fails and nothing is published
    assert response == {"batchItemFailures": []}
    assert alerts.published() == []
