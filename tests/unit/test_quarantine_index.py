"""The quarantine's index (billing.store.quarantine_index): keys that sort by time within a
reason and carry the account, written before each document, once per decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from billing.core.events import Reason, Rejection
from billing.rating.rater import StreamRecord
from billing.store.quarantine import Quarantine
from billing.store.quarantine_index import IndexEntry, index_key, record_fields
from tests.support.s3_memory import FakeS3

AT = datetime(2026, 12, 1, 13, 0, 0, 250_000, tzinfo=UTC)
SHARD = "shardId-000000000000"
EVENT = (
    b'{"event_id":"e-1","account_id":"acct-1","meter":"gpu_hours","quantity":1,'
    b'"timestamp":"2026-11-05T10:00:00Z"}'
)


def test_a_key_names_reason_time_account_and_position_and_parses_back() -> None:
    key = index_key("UNKNOWN_METER", AT, "acct-1", SHARD, "42")

    assert key == f"index/UNKNOWN_METER/20261201T130000.250000Z/acct-1/{SHARD}/42"
    assert IndexEntry.parse(key) == IndexEntry("UNKNOWN_METER", AT, "acct-1", SHARD, "42")
    assert IndexEntry.parse(key).id == f"{SHARD}/42"  # type: ignore[union-attr]


def test_a_record_tied_to_no_account_is_keyed_by_a_character_no_account_id_has() -> None:
    key = index_key("MALFORMED_JSON", AT, None, SHARD, "7")

    assert "/~/" in key
    assert IndexEntry.parse(key).account_id is None  # type: ignore[union-attr]


def test_keys_sort_by_time_within_a_reason_whatever_the_zone_given() -> None:
    earlier = index_key(
        "PERIOD_CLOSED", AT.astimezone(timezone(timedelta(hours=14))), "z", SHARD, "9"
    )
    later = index_key("PERIOD_CLOSED", AT + timedelta(microseconds=1), "a", SHARD, "1")

    assert earlier < later


def test_keys_that_are_not_entries_parse_to_none() -> None:
    assert IndexEntry.parse("rejected/shardId-000000000000/1.json") is None
    assert IndexEntry.parse("index/UNKNOWN_METER/not-a-time/acct-1/s/1") is None
    assert IndexEntry.parse("index/UNKNOWN_METER/20261201T130000.000000Z/acct-1/s/x") is None
    assert IndexEntry.parse("index/UNKNOWN_METER/20261201T130000.000000Z/acct-1/s") is None


def test_record_fields_read_events_and_cloudevents_and_only_valid_account_ids() -> None:
    cloud = b'{"specversion":"1.0","id":"c-1","subject":"acct-3","type":"api_requests"}'

    assert record_fields(EVENT) == ("acct-1", "e-1")
    assert record_fields(cloud) == ("acct-3", "c-1")
    assert record_fields(b'{"event_id":"e","account_id":"a b/c"}') == (None, "e")
    assert record_fields(b"not json") == (None, None)
    assert record_fields(b"[1, 2]") == (None, None)
    assert record_fields(b"\xff\xfe") == (None, None)


def test_the_entry_is_written_before_the_document_and_once_for_a_staged_then_kept_one() -> None:
    s3 = FakeS3()
    quarantine = Quarantine(s3, "quarantine")
    record = StreamRecord(SHARD, "42", EVENT)
    why = Rejection(Reason.UNKNOWN_METER, "meter 'gpu_hours' is not in the catalog")

    quarantine.stage(record, why, AT)
    quarantine.keep(record, why, AT)

    entry = f"index/UNKNOWN_METER/20261201T130000.250000Z/acct-1/{SHARD}/42"
    assert list(s3.objects) == [
        entry,
        f"staged/{SHARD}/42.json",
        f"rejected/{SHARD}/42.json",
    ]
    assert s3.objects[entry] == b""
