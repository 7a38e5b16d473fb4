"""A record the Kinesis Producer Library aggregated: the rater rejects it whole, unopened;
Firehose opens it for the archive, and the archive reads its parts back as that one record,
which a replay must reject as the rater did, never bill as the events inside it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from billing.core.events import Reason, Rejection, decode_record
from billing.rating.archive import (
    ArchivedRecord,
    NotReplayable,
    frame_firehose_records,
    read_archive,
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


def opened_by_firehose(sequence: str, parts: list[bytes], shard: str = SHARD) -> list[dict]:
    """The records Firehose hands the processor for an aggregate: each part under the
    aggregate's shard and sequence number, with its own subsequence number from 0."""
    records = firehose_event([(part, "pk", sequence) for part in parts])["records"]
    for number, record in enumerate(records):
        record["recordId"] = f"{sequence}-{number}"
        record["kinesisRecordMetadata"]["subsequenceNumber"] = number
        record["kinesisRecordMetadata"]["shardId"] = shard
    return records


def archived(*invocations: list[dict[str, Any]]) -> list[ArchivedRecord]:
    """The frames of the archive objects Firehose writes, one per processor invocation."""
    frames: list[ArchivedRecord] = []
    for records in invocations:
        event = {**firehose_event([]), "records": records}
        frames.extend(read_archive(delivered_object(frame_firehose_records(event))))
    return frames


def plain(sequence: str, data: bytes) -> list[dict[str, Any]]:
    return firehose_event([(data, "pk", sequence)])["records"]


def replayable(frames: list[ArchivedRecord]) -> list[bytes]:
    """What a replay may rate: the bytes of every frame that is not part of an aggregate."""
    found = []
    for record in frames:
        try:
            found.append(record.replay_bytes())
        except NotReplayable:
            continue
    return found


BEFORE, AFTER = usage("e-0", "acct-1"), usage("e-3", "acct-1")
OTHER_SHARD = "shardId-000000000001"


@pytest.mark.parametrize(
    "invocations",
    [
        pytest.param(
            lambda: [
                plain("100", BEFORE) + opened_by_firehose("200", EVENTS) + plain("300", AFTER)
            ],
            id="in-order",
        ),
        pytest.param(
            lambda: [
                plain("100", BEFORE) + opened_by_firehose("200", EVENTS)[:1],
                opened_by_firehose("200", EVENTS)[1:] + plain("300", AFTER),
            ],
            id="split-across-two-objects",
        ),
        pytest.param(
            lambda: [
                plain("100", BEFORE)
                + opened_by_firehose("200", EVENTS)[:1]
                + opened_by_firehose("150", [usage("x", "acct-9")], OTHER_SHARD)
                + opened_by_firehose("200", EVENTS)[1:]
                + plain("300", AFTER)
            ],
            id="another-shard-between-its-parts",
        ),
        pytest.param(
            lambda: [
                plain("100", BEFORE)
                + opened_by_firehose("200", EVENTS)[1:]
                + opened_by_firehose("200", EVENTS)[:1]
                + plain("300", AFTER)
            ],
            id="parts-out-of-order",
        ),
        pytest.param(
            lambda: [
                plain("100", BEFORE) + opened_by_firehose("200", EVENTS[:1]) + plain("300", AFTER)
            ],
            id="an-aggregate-of-one-event",
        ),
    ],
)
def test_no_part_of_an_aggregate_is_replayable_wherever_it_lands(invocations: Any) -> None:
    frames = archived(*invocations())
    replayed = replayable(frames)
    assert EVENTS[0] not in replayed
    assert EVENTS[1] not in replayed
    assert BEFORE in replayed
    assert AFTER in replayed


def test_a_plain_record_delivered_twice_stays_replayable_both_times() -> None:
    # Firehose delivers at least once: the same plain record may be archived twice in a row
    frames = archived(plain("100", BEFORE) + plain("100", BEFORE))
    assert replayable(frames) == [BEFORE, BEFORE]  # the rater's watermark drops the second


@pytest.mark.parametrize("mark", [None, ""], ids=["absent", "empty"])
def test_a_record_without_a_subsequence_number_is_plain(mark: str | None) -> None:
    records = plain("100", BEFORE)
    if mark is None:
        del records[0]["kinesisRecordMetadata"]["subsequenceNumber"]
    (frame,) = archived(records)
    assert (frame.aggregated, frame.replay_bytes()) == (False, BEFORE)


def test_a_part_is_refused_by_name() -> None:
    (first, _) = archived(opened_by_firehose("200", EVENTS))
    with pytest.raises(NotReplayable, match="a part of a KPL aggregate"):
        first.replay_bytes()
