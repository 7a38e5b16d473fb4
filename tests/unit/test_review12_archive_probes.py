"""Review of issue 12: the raw archive reads back exactly the records the stream carried."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from billing.archive import ArchiveCorrupt, ArchivedRecord, frame, read_archive
from billing.events import Rejection, UsageEvent, decode_record
from billing_cli.local.lambdas import LocalContext
from functions.archive_records import app as archive_records

pytestmark = pytest.mark.unit

SHARD = "shardId-000000000000"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # protobuf length-delimited field
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def kpl_aggregate(partition_keys: list[str], records: list[bytes]) -> bytes:
    """A KPL aggregated record: magic, AggregatedRecord protobuf, MD5 of the protobuf."""
    body = b"".join(_field(1, key.encode()) for key in partition_keys)
    for index, data in enumerate(records):
        record = _varint(1 << 3 | 0) + _varint(index) + _field(3, data)
        body += _field(3, record)
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def event(event_id: str, account: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": account,
            "meter": "api_requests",
            "quantity": 1000000,
            "timestamp": "2026-11-20T12:00:00Z",
        }
    ).encode()


def test_a_kpl_aggregate_the_rater_rejected_does_not_come_back_as_billable_events() -> None:
    # GIVEN a producer that puts one KPL-aggregated record holding two valid events for
    # acct-2: the rater (Lambda's Kinesis event source, no de-aggregation) sees one record
    # of binary bytes and rejects it -- nothing is billed
    inner = [event("agg-1", "acct-2"), event("agg-2", "acct-2")]
    carried = kpl_aggregate(["acct-2"], inner)
    assert isinstance(decode_record(carried), Rejection)

    # WHEN Firehose reads the same stream: it de-aggregates KPL records before its Lambda
    # processor (Kinesis Data Streams guide, "Use the KPL with Amazon Data Firehose"), so
    # the processor gets the user records, same sequence number, subsequence 0 and 1
    firehose_event: dict[str, Any] = {
        "records": [
            {
                "recordId": f"r-{sub}",
                "data": base64.b64encode(data).decode(),
                "kinesisRecordMetadata": {
                    "shardId": SHARD,
                    "partitionKey": "acct-2",
                    "approximateArrivalTimestamp": 1795176000000,
                    "sequenceNumber": "49650",
                    "subsequenceNumber": sub,
                },
            }
            for sub, data in enumerate(inner)
        ]
    }
    response = archive_records.handler(firehose_event, LocalContext("archive"))  # type: ignore[arg-type]
    body = b"".join(base64.b64decode(r["data"]) for r in response["records"])
    archived = list(read_archive(body))

    # THEN the archive should hold what the stream carried (the one aggregate), or refuse;
    # it holds two valid events for acct-2 that a replay would bill
    assert [r.data for r in archived] == [carried], [
        type(decode_record(r.data)).__name__ for r in archived
    ]
    assert not any(isinstance(decode_record(r.data), UsageEvent) for r in archived)


GOOD = frame(ArchivedRecord(SHARD, "1", 0, "acct-1", 0, b"{}")).rstrip(b"\n")


@pytest.mark.parametrize(
    "line",
    [
        GOOD.replace(b'"v":1', b'"v":true'),  # True == 1
        GOOD.replace(b'"v":1', b'"v":1.0'),  # 1.0 == 1
        GOOD.replace(b'"data":"e30="', b'"data":"AAAA","data":"e30="'),  # duplicate key
        GOOD.replace(b'"data":"e30="', b'"data":"e31="'),  # non-canonical base64
        b"  " + GOOD + b"\r",  # whitespace around the frame
    ],
)
def test_read_archive_refuses_any_line_that_frame_did_not_write(line: bytes) -> None:
    # docs: read_archive refuses "any line that is not exactly one frame"
    assert frame(next(read_archive(line + b"\n"))) != line + b"\n"
    with pytest.raises(ArchiveCorrupt):
        list(read_archive(line + b"\n"))


def test_a_truncated_archive_object_is_archive_corrupt() -> None:
    # read_archive's docstring: "a truncated or foreign object raises ArchiveCorrupt rather
    # than yield a guess" -- a gzip object cut short raises EOFError instead
    import gzip

    body = gzip.compress(GOOD + b"\n" + GOOD + b"\n")
    with pytest.raises(ArchiveCorrupt):
        list(read_archive(body[:-12]))
