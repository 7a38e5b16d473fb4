"""spend_alerts against moto: the ledger table's real stream records, written by the real
rater, through the handler; one SpendThresholdCrossed event per crossing, however often a
batch is delivered."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from billing import wiring
from billing.core.spend import ThresholdsError
from billing.settings import (
    EVENT_BUS_ENV,
    SENDER_ENV,
    SPEND_ALERT_THRESHOLDS_ENV,
    SPEND_ALERTS_STREAM_FILTER,
)
from billing_cli.local.lambdas import LocalContext
from billing_cli.local.ledger_stream import as_delivered
from functions.spend_alerts import app as spend_alerts
from tests.integration.conftest import NOW, REGION, Aws
from tests.support.eventbridge import EventSink

EVENTS = Path(__file__).resolve().parent.parent / "events"
BUS = "billing-events"
SENDER = "alerts@billing.example"
CONTEXT = LocalContext("spend-alerts")


@dataclass
class Alerts:
    aws: Aws
    sink: EventSink
    streams: Any
    stream_arn: str
    iterators: dict[str, str]

    def new_records(self, *, filtered: bool = True) -> list[dict[str, Any]]:
        """The stream's records since the last call, as Lambda's event source mapping
        delivers them (with the stream's ARN): only ledger items, as the mapping's filter
        lets through (SPEND_ALERTS_STREAM_FILTER), unless `filtered` is False."""
        records = []
        for shard_id, iterator in self.iterators.items():
            response = self.streams.get_records(ShardIterator=iterator)
            self.iterators[shard_id] = response["NextShardIterator"]
            records.extend(
                {**as_delivered(record), "eventSourceARN": self.stream_arn}
                for record in response["Records"]
                if not filtered or record["dynamodb"]["Keys"]["sk"]["S"] in LEDGER_ONLY
            )
        return records

    def deliver(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return spend_alerts.handler({"Records": records}, CONTEXT)  # type: ignore[arg-type]

    def published(self) -> list[dict[str, Any]]:
        return self.sink.received()


# The sort keys the spend_alerts event source mapping lets through (the stack's filter).
LEDGER_ONLY = SPEND_ALERTS_STREAM_FILTER["dynamodb"]["Keys"]["sk"]["S"]


@pytest.fixture
def alerts(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Alerts:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "UsageBilling")
    sink = EventSink.create(BUS, REGION)
    monkeypatch.setenv(EVENT_BUS_ENV, BUS)
    monkeypatch.setenv(SENDER_ENV, SENDER)
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
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
    return Alerts(aws, sink, streams, stream_arn, iterators)


def details(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    assert {(e["source"], e["detail-type"]) for e in events} <= {
        ("usage-billing", "SpendThresholdCrossed")
    }
    assert {e["detail"]["set_by"] for e in events} <= {"operator"}
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
    alerts.aws.rate_examples(batch_size=2)  # charges grow over many writes
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
    claims = alerts.new_records(filtered=False)
    assert len(claims) == len(EXPECTED)
    assert all(r["dynamodb"]["Keys"]["sk"]["S"].startswith("ALERT#") for r in claims)
    assert alerts.deliver(claims) == {"batchItemFailures": []}
    assert alerts.published() == []


def test_a_failed_publish_is_retried_and_then_published_once(alerts: Alerts) -> None:
    # GIVEN the rater's ledger writes, and a bus that refuses events
    alerts.aws.rate_examples(batch_size=2)  # charges grow over many writes
    records = alerts.new_records()
    alerts.sink.events.delete_event_bus(Name=BUS)

    # WHEN the batch is delivered
    failed = alerts.deliver(records)

    # THEN the records whose alerts could not be published are reported for redelivery,
    # from the first one that crossed a threshold
    assert failed["batchItemFailures"]
    first = failed["batchItemFailures"][0]["itemIdentifier"]
    assert first == records[0]["dynamodb"]["SequenceNumber"]
    assert alerts.published() == []

    # WHEN the bus is back and Lambda delivers the failed records again
    alerts.sink.connect()
    failed_ids = {f["itemIdentifier"] for f in failed["batchItemFailures"]}
    retry = [r for r in records if r["dynamodb"]["SequenceNumber"] in failed_ids]
    assert alerts.deliver(retry) == {"batchItemFailures": []}
    assert alerts.deliver(records) == {"batchItemFailures": []}

    # THEN every alert is published, once
    assert details(alerts.published()) == EXPECTED


def test_closing_a_period_alerts_nothing(alerts: Alerts) -> None:
    # GIVEN every alert of the examples published
    alerts.aws.rate_examples(batch_size=2)  # charges grow over many writes
    alerts.deliver(alerts.new_records())
    alerts.published()
    alerts.new_records(filtered=False)  # the claims

    # WHEN the invoice run closes acct-1's November (archive written, ledger updated)
    alerts.aws.ledger_store().close_period("acct-1", "2026-11", NOW)
    records = alerts.new_records(filtered=False)

    # THEN neither the archive nor the ledger without the period publishes anything
    assert sorted(r["dynamodb"]["Keys"]["sk"]["S"] for r in records) == ["LEDGER", "USAGE#2026-11"]
    assert alerts.deliver(records) == {"batchItemFailures": []}
    assert alerts.published() == []


def test_records_of_other_items_are_ignored(alerts: Alerts) -> None:
    # GIVEN the kept stream event: an id chunk written, an archive written, a chunk expired
    event = json.loads((EVENTS / "dynamodb_stream_event.json").read_text())

    # WHEN it is delivered
    response = spend_alerts.handler(event, CONTEXT)  # type: ignore[arg-type]

    # THEN nothing fails and nothing is published
    assert response == {"batchItemFailures": []}
    assert alerts.published() == []


def test_a_bad_setting_fails_the_invocation_with_its_reason(
    alerts: Alerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a threshold written as a JSON number with a fraction
    monkeypatch.setenv(SPEND_ALERT_THRESHOLDS_ENV, '{"USD": [100.5]}')
    monkeypatch.setattr(spend_alerts, "service", functools.cache(wiring.spend_alerts))

    # WHEN a batch arrives, THEN the whole invocation fails, saying where and why
    with pytest.raises(ThresholdsError, match=r"USD\.0: must be a decimal string"):
        alerts.deliver([])
