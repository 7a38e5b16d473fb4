"""The warehouse's Firehose processor (functions/warehouse_records): each usage record as
its `raw_usage` row, one JSON object a line, for Firehose's conversion to Parquet with the
Glue table's schema (docs/warehouse.md)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from billing.warehouse.tables import RAW_USAGE
from billing_cli.local.lambdas import LocalContext
from functions.warehouse_records import app as warehouse_records

pytestmark = pytest.mark.unit

SHARD = "shardId-000000000001"
ARRIVAL_MS = 1795176000123  # 2026-11-20T12:00:00.123Z


def firehose_record(index: int, data: bytes, *, from_stream: bool = True) -> dict[str, Any]:
    record: dict[str, Any] = {
        "recordId": f"record-{index}",
        "approximateArrivalTimestamp": ARRIVAL_MS,
        "data": base64.b64encode(data).decode(),
    }
    if from_stream:
        record["kinesisRecordMetadata"] = {
            "shardId": SHARD,
            "partitionKey": "acct-5",
            "approximateArrivalTimestamp": ARRIVAL_MS,
            "sequenceNumber": f"4959{index}",
            "subsequenceNumber": "",
        }
    return record


def processed(*records: dict[str, Any]) -> list[dict[str, Any]]:
    event = {"invocationId": "i-1", "region": "us-east-1", "records": list(records)}
    context: Any = LocalContext("warehouse_records")  # what Lambda hands a handler
    response = warehouse_records.handler(event, context)
    results: list[dict[str, Any]] = response["records"]
    assert [r["recordId"] for r in results] == [r["recordId"] for r in records]
    return results


def row(result: dict[str, Any]) -> dict[str, Any]:
    assert result["result"] == "Ok"
    line = base64.b64decode(result["data"])
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1  # one object a line
    document: dict[str, Any] = json.loads(line)
    assert list(document) == list(RAW_USAGE.column_names)  # no dt: it is the prefix
    return document


def test_an_event_becomes_its_row_with_an_exact_quantity_and_utc_times() -> None:
    data = (
        b'{"event_id":"a5-sto","account_id":"acct-5","meter":"storage_gb_hours",'
        b'"quantity":"12345.5","timestamp":"2026-11-15T10:00:00.654321+03:00",'
        b'"dimensions":{"region":"me-south-1"}}'
    )
    [result] = processed(firehose_record(0, data))
    assert row(result) == {
        "shard_id": SHARD,
        "sequence_number": "49590",
        "subsequence_number": 0,
        "partition_key": "acct-5",
        "arrival_time": "2026-11-20 12:00:00.123000",
        "record": data.decode(),
        "record_base64": None,
        "event_id": "a5-sto",
        "account_id": "acct-5",
        "meter": "storage_gb_hours",
        "quantity": "12345.5",  # a string: read as decimal(38,12), never through a float
        "event_time": "2026-11-15 07:00:00.654321",  # 10:00 at +03:00
        "dimensions": '{"region": "me-south-1"}',
        "decode_problem": None,
    }


def test_a_record_that_is_no_event_keeps_its_bytes_and_says_why() -> None:
    cut_short = b'{"event_id":"bad-1","account_id":"acct-1","quantity":'
    not_text = b"\xff\xfe\x00"
    first, second = processed(firehose_record(0, cut_short), firehose_record(1, not_text))
    assert row(first)["decode_problem"] == "MALFORMED_JSON"
    assert row(first)["record"] == cut_short.decode()
    assert row(first)["event_id"] is None
    assert row(second)["record"] is None
    assert row(second)["record_base64"] == base64.b64encode(not_text).decode()
    assert row(second)["decode_problem"] == "MALFORMED_JSON"


def test_a_record_without_its_stream_position_is_left_to_firehoses_error_prefix() -> None:
    record = firehose_record(0, b"{}", from_stream=False)
    [result] = processed(record)
    assert result == {"recordId": "record-0", "result": "ProcessingFailed", "data": record["data"]}
