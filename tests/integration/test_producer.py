"""The producer client on moto's Kinesis: batching limits, resends of failed records only,
stable event ids, validation before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from billing.core.events import Reason
from billing_cli.producer import InvalidUsageEvent, UsageNotSent, UsageProducer

STREAM = "usage"


def event(n: int, account: str = "acct-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{n}",
        "account_id": account,
        "meter": "api_requests",
        "quantity": n,
        "timestamp": "2026-11-03T10:00:00Z",
        **extra,
    }


@pytest.fixture
def kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=1)
        yield client


def stream_records(kinesis: Any) -> list[dict[str, Any]]:
    shard = kinesis.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = kinesis.get_records(ShardIterator=iterator, Limit=10_000)[
        "Records"
    ]
    return records


class Recording:
    """A Kinesis client that records each PutRecords and refuses chosen records the first
    `refusals` times they are sent, the way a throttled shard answers."""

    def __init__(self, client: Any, refuse: set[str] = frozenset(), refusals: int = 1) -> None:
        self.client = client
        self.refuse = refuse
        self.left = dict.fromkeys(refuse, refusals)
        self.calls: list[list[bytes]] = []

    def put_records(self, Records: list[dict[str, Any]], **stream: str) -> dict[str, Any]:  # noqa: N803
        self.calls.append([entry["Data"] for entry in Records])
        results: list[dict[str, Any] | None] = []
        accepted = []
        for entry in Records:
            event_id = json.loads(entry["Data"])["event_id"]
            if self.left.get(event_id, 0) > 0:
                self.left[event_id] -= 1
                results.append(
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow"}
                )
            else:
                results.append(None)
                accepted.append(entry)
        answered = iter(
            self.client.put_records(Records=accepted, **stream)["Records"] if accepted else []
        )
        return {"Records": [result or next(answered) for result in results]}


def test_batches_hold_at_most_500_records(kinesis: Any) -> None:
    client = Recording(kinesis)
    producer = UsageProducer(STREAM, client=client)

    report = producer.send([event(n) for n in range(1, 1202)])

    assert [len(call) for call in client.calls] == [500, 500, 201]
    assert (report.sent, report.calls, report.resent) == (1201, 3, 0)
    on_stream = stream_records(kinesis)
    assert [json.loads(r["Data"])["event_id"] for r in on_stream] == [
        f"evt-{n}" for n in range(1, 1202)
    ]
    assert {r["PartitionKey"] for r in on_stream} == {"acct-1"}
    assert report.sequence_numbers == [r["SequenceNumber"] for r in on_stream]


def test_batches_hold_at_most_5_mb(kinesis: Any) -> None:
    # Each record is 16,000 bytes of data (an extra field pads it; the rater ignores it) and
    # 6 of partition key: 327 fit in 5 MiB.
    bare = len(json.dumps(event(100, note=""), separators=(",", ":")))
    events = [event(100 + n, note="x" * (16_000 - bare)) for n in range(400)]
    assert {len(json.dumps(e, separators=(",", ":"))) for e in events} == {16_000}
    client = Recording(kinesis)

    UsageProducer(STREAM, client=client).send(events)

    assert (5 * 1024 * 1024) // 16_006 == 327
    assert [len(call) for call in client.calls] == [327, 73]


def test_failed_records_alone_are_resent_byte_for_byte_with_backoff(kinesis: Any) -> None:
    client = Recording(kinesis, refuse={"evt-2", "evt-4"}, refusals=2)
    waits: list[float] = []
    producer = UsageProducer(STREAM, client=client, sleep=waits.append, base_delay_seconds=0.1)

    report = producer.send([event(n) for n in range(1, 6)])

    first, second, third = client.calls
    assert len(first) == 5
    assert second == third == [first[1], first[3]]  # the same bytes, so the same event ids
    assert (report.sent, report.calls, report.resent) == (5, 3, 4)
    assert len(waits) == 2
    assert 0 <= waits[0] <= 0.1
    assert 0 <= waits[1] <= 0.2
    ids = [json.loads(r["Data"])["event_id"] for r in stream_records(kinesis)]
    assert sorted(ids) == [f"evt-{n}" for n in range(1, 6)]
    assert len(ids) == 5


def test_records_still_refused_after_the_last_attempt_are_raised_not_dropped(
    kinesis: Any,
) -> None:
    client = Recording(kinesis, refuse={"evt-3"}, refusals=99)
    producer = UsageProducer(STREAM, client=client, sleep=lambda _: None, max_attempts=4)

    with pytest.raises(UsageNotSent) as raised:
        producer.send([event(n) for n in range(1, 5)])

    assert [json.loads(r.data)["event_id"] for r in raised.value.records] == ["evt-3"]
    assert "ProvisionedThroughputExceededException" in str(raised.value)
    assert len(client.calls) == 4
    assert producer.report.sent == 3


def test_an_invalid_event_sends_nothing_and_says_why(kinesis: Any) -> None:
    client = Recording(kinesis)
    producer = UsageProducer(STREAM, client=client)

    with pytest.raises(InvalidUsageEvent) as raised:
        producer.send([event(1), event(2, meter="API Requests")])

    assert raised.value.rejection.reason is Reason.SCHEMA_INVALID
    assert str(raised.value).startswith("SCHEMA_INVALID: meter:")
    assert client.calls == []


def test_a_float_quantity_is_refused_and_a_decimal_goes_out_exact(kinesis: Any) -> None:
    client = Recording(kinesis)
    producer = UsageProducer(STREAM, client=client)

    with pytest.raises(InvalidUsageEvent, match="is a float"):
        producer.put(event(1, quantity=0.1))
    producer.put(event(2, quantity=Decimal("0.100000000001")))
    producer.flush()

    assert client.calls == [
        [
            b'{"event_id":"evt-2","account_id":"acct-1","meter":"api_requests",'
            b'"quantity":"0.100000000001","timestamp":"2026-11-03T10:00:00Z"}'
        ]
    ]


def test_record_builds_an_event_with_a_new_id_and_a_utc_timestamp(kinesis: Any) -> None:
    client = Recording(kinesis)
    with UsageProducer(STREAM, client=client) as usage:
        first = usage.record(
            "acct-1",
            "storage_gb_hours",
            "2.5",
            timestamp=datetime(2026, 11, 3, 11, 30, tzinfo=UTC),
            dimensions={"region": "eu-west-1"},
        )
        second = usage.record("acct-1", "exports", 1)

    assert first != second
    assert len(first) == 36
    (sent,) = client.calls
    document = json.loads(sent[0])
    assert document == {
        "event_id": first,
        "account_id": "acct-1",
        "meter": "storage_gb_hours",
        "quantity": "2.5",
        "timestamp": "2026-11-03T11:30:00Z",
        "dimensions": {"region": "eu-west-1"},
    }
    assert json.loads(sent[1])["event_id"] == second


def test_a_naive_timestamp_is_refused(kinesis: Any) -> None:
    producer = UsageProducer(STREAM, client=Recording(kinesis))

    with pytest.raises(ValueError, match="aware datetime"):
        producer.record("acct-1", "exports", 1, timestamp=datetime(2026, 11, 3, 11, 30))
