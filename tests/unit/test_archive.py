"""The raw archive reads back exactly the records the stream carried, whatever they hold."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.rating.archive import (
    ArchiveCorrupt,
    ArchivedRecord,
    frame,
    frame_firehose_records,
    read_archive,
)
from billing_cli.local.lambdas import LocalContext
from functions.archive_records import app as archive_records

pytestmark = pytest.mark.unit

SHARD = "shardId-000000000000"


def firehose_event(records: list[tuple[bytes, str, str]]) -> dict[str, Any]:
    """What Firehose hands its Lambda processor when it reads a Kinesis stream."""
    return {
        "invocationId": "a7e3c0b2-0000-4000-8000-000000000001",
        "sourceKinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/usage",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/raw",
        "region": "us-east-1",
        "records": [
            {
                "recordId": f"record-{index}",
                "approximateArrivalTimestamp": 1795176000000 + index,
                "data": base64.b64encode(data).decode(),
                "kinesisRecordMetadata": {
                    "shardId": SHARD,
                    "partitionKey": partition_key,
                    "approximateArrivalTimestamp": 1795176000000 + index,
                    "sequenceNumber": sequence,
                    "subsequenceNumber": "",  # a plain record (not from an aggregate)
                },
            }
            for index, (data, partition_key, sequence) in enumerate(records)
        ],
    }


def delivered_object(response: dict[str, Any]) -> bytes:
    """The archive object Firehose writes: the processor's outputs back to back, gzipped."""
    assert all(record["result"] == "Ok" for record in response["records"])
    return gzip.compress(b"".join(base64.b64decode(r["data"]) for r in response["records"]))


def test_a_record_hiding_a_second_event_after_a_line_break_reads_back_as_one_record() -> None:
    # GIVEN a producer's record for acct-1 that is valid JSON spread over lines, the second
    # line a complete, valid event for another account (the rater saw one record)
    forged_line = json.dumps(
        {
            "event_id": "forged-1",
            "account_id": "acct-2",
            "meter": "api_requests",
            "quantity": 1000000,
            "timestamp": "2026-11-20T12:00:00Z",
        }
    )
    forged = (
        b'{"event_id": "e-1", "account_id": "acct-1", "meter": "api_requests",\n'
        + forged_line.encode()
        + b'\n: 0, "quantity": 1, "timestamp": "2026-11-20T12:00:00Z"}'
    )
    honest = b'{"event_id": "e-2", "account_id": "acct-1", "meter": "api_requests", "quantity": 2}'
    carried = [(forged, "acct-1", "49650"), (honest, "acct-1", "49651")]

    # WHEN the records go through the processor into an archive object and are read back
    body = delivered_object(
        archive_records.handler(firehose_event(carried), LocalContext("archive"))
    )  # type: ignore[arg-type]
    read = list(read_archive(body))

    # THEN exactly the two records the stream carried come back, bytes and positions intact
    assert [(r.data, r.partition_key, r.sequence_number) for r in read] == carried
    assert {r.shard_id for r in read} == {SHARD}
    # AND the old framing (the record, then a line break) would have made three "events",
    # one of them the forged event for acct-2
    naive = gzip.decompress(gzip.compress(b"".join(data + b"\n" for data, _, _ in carried)))
    assert forged_line.encode() in naive.split(b"\n")
    # AND the forged line is not a line of the archive any more
    assert forged_line.encode() not in gzip.decompress(body).split(b"\n")


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_read_back_exactly_in_order(records: list[bytes]) -> None:
    carried = [
        ArchivedRecord(SHARD, str(49000 + i), 0, f"acct-{i}\n", 1795176000000, data)
        for i, data in enumerate(records)
    ]
    body = gzip.compress(b"".join(frame(record) for record in carried))
    assert list(read_archive(body)) == carried


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_id": "e-1"}\n',  # a bare record, as the old archive held
        frame(ArchivedRecord(SHARD, "1", 0, "acct-1", 0, b"{}")).rstrip(b"\n"),  # truncated
        frame(ArchivedRecord(SHARD, "1", 0, "acct-1", 0, b"{}")).replace(b'"v":2', b'"v":1'),
        frame(ArchivedRecord(SHARD, "1", 0, "acct-1", 0, b"{}")).replace(b"e30=", b"e30*"),
    ],
)
def test_a_line_that_is_not_exactly_one_frame_is_refused(body: bytes) -> None:
    with pytest.raises(ArchiveCorrupt):
        list(read_archive(body))


def test_a_record_without_its_stream_position_is_left_to_firehose_as_failed() -> None:
    event = firehose_event([(b"{}", "acct-1", "1")])
    del event["records"][0]["kinesisRecordMetadata"]
    [result] = frame_firehose_records(event)["records"]
    assert result == {"recordId": "record-0", "result": "ProcessingFailed", "data": "e30="}


@given(
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=1, max_size=60),
    st.integers(min_value=0, max_value=2**40),
    st.booleans(),
    st.text(max_size=40),
    st.integers(min_value=0, max_value=2**50),
    st.binary(max_size=200),
)
def test_a_frame_is_exactly_json_dumps_of_its_fields(
    shard: str,
    sequence: str,
    subsequence: int,
    aggregated: bool,
    partition_key: str,
    arrival_ms: int,
    data: bytes,
) -> None:
    # The frame is written out by hand for speed; json.dumps is what it must equal.
    record = ArchivedRecord(
        shard, sequence, subsequence, partition_key, arrival_ms, data, aggregated
    )
    expected = {
        "v": 2,
        "shard_id": shard,
        "sequence_number": sequence,
        "subsequence_number": subsequence,
        "aggregated": aggregated,
        "partition_key": partition_key,
        "arrival_ms": arrival_ms,
        "data": base64.b64encode(data).decode("ascii"),
    }
    assert frame(record) == json.dumps(expected, separators=(",", ":")).encode() + b"\n"
    assert list(read_archive(frame(record))) == [record]
