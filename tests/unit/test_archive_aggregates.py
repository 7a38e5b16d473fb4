"""A record the Kinesis Producer Library aggregated: the rater rejects it whole, unopened;
Firehose opens it for the archive, and the archive reads its parts back as that one record,
which a replay must reject as the rater did, never bill as the events inside it."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from billing.core.events import Reason, Rejection, decode_record
from billing.rating.archive import (
    ArchiveCorrupt,
    frame_firehose_records,
    read_archive,
    stream_records,
)
from tests.unit.test_archive import SHARD, delivered_object, firehose_event

pytestmark = pytest.mark.unit


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def kpl_aggregate(partition_key: str, events: list[bytes]) -> bytes:
    """The KPL's aggregated record format, written out by hand from its specification:
    magic, an AggregatedRecord message (partition key table, then one Record per event:
    partition_key_index = 0, data), and the message's MD5."""
    records = b"".join(field(3, b"\x08\x00" + field(3, event)) for event in events)
    message = field(1, partition_key.encode()) + records
    return b"\xf3\x89\x9a\xc2" + message + hashlib.md5(message).digest()


def usage(event_id: str, account: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": account,
            "meter": "api_calls",
            "quantity": "1000",
            "timestamp": "2026-11-10T12:00:00Z",
        }
    ).encode()


EVENTS = [usage("e-1", "acct-1"), usage("e-2", "acct-2")]


def test_the_rater_rejects_a_kpl_aggregate_whole_without_opening_it() -> None:
    result = decode_record(kpl_aggregate("pk", EVENTS))
    assert result == Rejection(
        Reason.MALFORMED_JSON,
        "record is a KPL aggregate of several records; put one event per record",
    )


def opened_by_firehose(sequence: str, parts: list[bytes]) -> dict[str, Any]:
    """What Firehose hands the processor for an aggregate: each part under the aggregate's
    sequence number, with its own subsequence number."""
    event = firehose_event([(part, "pk", sequence) for part in parts])
    for number, record in enumerate(event["records"]):
        record["kinesisRecordMetadata"]["subsequenceNumber"] = number
    return event


@pytest.mark.parametrize("split", [False, True], ids=["one-object", "across-two-objects"])
def test_the_parts_of_an_aggregate_read_back_as_one_record_a_replay_must_reject(
    split: bool,
) -> None:
    # GIVEN a plain record, then an aggregate of two events Firehose opened, then another
    before = firehose_event([(usage("e-0", "acct-1"), "pk", "100")])
    aggregate = opened_by_firehose("200", EVENTS)
    after = firehose_event([(usage("e-3", "acct-1"), "pk", "300")])
    responses = [frame_firehose_records(e) for e in (before, aggregate, after)]
    if split:  # Firehose's buffer ended between the aggregate's parts
        first = aggregate["records"][:1]
        second = aggregate["records"][1:]
        responses[1:2] = [
            frame_firehose_records({**aggregate, "records": first}),
            frame_firehose_records({**aggregate, "records": second}),
        ]
    frames = [f for response in responses for f in read_archive(delivered_object(response))]

    # WHEN read back as the stream carried it
    records = list(stream_records(frames))

    # THEN three records: the aggregate one, aggregated, with no bytes to rate
    assert [(r.shard_id, r.sequence_number, r.aggregated) for r in records] == [
        (SHARD, "100", False),
        (SHARD, "200", True),
        (SHARD, "300", False),
    ]
    assert records[0].data == usage("e-0", "acct-1")
    assert records[2].data == usage("e-3", "acct-1")
    with pytest.raises(ArchiveCorrupt, match="KPL aggregate the rater rejected whole"):
        _ = records[1].data


def test_one_part_of_an_aggregate_is_known_by_its_subsequence_number() -> None:
    # GIVEN only the second part of an aggregate in the objects read (the first expired)
    aggregate = opened_by_firehose("200", EVENTS)
    aggregate["records"] = aggregate["records"][1:]
    frames = read_archive(delivered_object(frame_firehose_records(aggregate)))
    (record,) = stream_records(frames)
    assert record.aggregated
    assert base64.b64decode(aggregate["records"][0]["data"]) == EVENTS[1]
