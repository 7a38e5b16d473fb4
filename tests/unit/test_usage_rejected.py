"""UsageRejected summaries (billing.core.usage_rejected): one per batch, shard, account and
period, counts by reason, the records' arrival span, ids named by the exact records
counted, and nothing of the records themselves."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.core.usage_rejected import (
    BatchRange,
    RejectedRecord,
    batch_ranges,
    summaries,
    summary_id,
)

SHARD = "shardId-000000000001"
AT = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)


def _rejected(sequence: int, account: str | None, reason: str, second: int) -> RejectedRecord:
    arrived = datetime.fromtimestamp(AT.timestamp() + second, UTC)
    return RejectedRecord(SHARD, str(sequence), account, reason, arrived)


def test_a_batchs_rejections_are_summed_by_account_period_and_reason() -> None:
    ranges = batch_ranges([(SHARD, "95"), (SHARD, "100"), (SHARD, "9")])
    rejected = [
        _rejected(9, "acct-1", "UNKNOWN_METER", 0),  # 23:59:58, November
        _rejected(20, None, "MALFORMED_JSON", 1),
        _rejected(30, "acct-1", "FUTURE_TIMESTAMP", 1),
        _rejected(40, "acct-1", "UNKNOWN_METER", 1),  # 23:59:59
        _rejected(95, "acct-1", "UNKNOWN_METER", 3),  # 00:00:01, December
    ]

    details = summaries(rejected, ranges, NOW)

    # sequence numbers compare as numbers: 9 < 95 < 100
    assert ranges == {SHARD: BatchRange(SHARD, "9", "100")}
    assert details == [
        {
            "event_id": summary_id([(SHARD, "20")]),
            "account_id": None,
            "period": "2026-11",
            "rejected": 1,
            "reasons": {"MALFORMED_JSON": 1},
            "first_record_at": "2026-11-30T23:59:59.000Z",
            "last_record_at": "2026-11-30T23:59:59.000Z",
            "shard_id": SHARD,
            "first_sequence_number": "9",
            "last_sequence_number": "100",
            "rejected_at": "2026-12-01T00:05:00.000Z",
        },
        {
            "event_id": summary_id([(SHARD, "9"), (SHARD, "30"), (SHARD, "40")]),
            "account_id": "acct-1",
            "period": "2026-11",
            "rejected": 3,  # 2 UNKNOWN_METER + 1 FUTURE_TIMESTAMP
            "reasons": {"FUTURE_TIMESTAMP": 1, "UNKNOWN_METER": 2},
            "first_record_at": "2026-11-30T23:59:58.000Z",
            "last_record_at": "2026-11-30T23:59:59.000Z",
            "shard_id": SHARD,
            "first_sequence_number": "9",
            "last_sequence_number": "100",
            "rejected_at": "2026-12-01T00:05:00.000Z",
        },
        {
            "event_id": summary_id([(SHARD, "95")]),
            "account_id": "acct-1",
            "period": "2026-12",
            "rejected": 1,
            "reasons": {"UNKNOWN_METER": 1},
            "first_record_at": "2026-12-01T00:00:01.000Z",
            "last_record_at": "2026-12-01T00:00:01.000Z",
            "shard_id": SHARD,
            "first_sequence_number": "9",
            "last_sequence_number": "100",
            "rejected_at": "2026-12-01T00:05:00.000Z",
        },
    ]


def test_the_same_records_give_the_same_id_and_any_other_set_another() -> None:
    counted = [(SHARD, "9"), (SHARD, "100")]
    # the set, not the order (nor a repeat) names the summary
    assert summary_id(counted) == summary_id([(SHARD, "100"), (SHARD, "9"), (SHARD, "9")])
    others = {
        summary_id([(SHARD, "9")]),  # fewer records
        summary_id([(SHARD, "9"), (SHARD, "100"), (SHARD, "101")]),  # one more
        summary_id([(SHARD, "10"), (SHARD, "100")]),
        summary_id([("shardId-2", "9"), ("shardId-2", "100")]),
    }
    assert summary_id(counted) not in others
    assert len(others) == 4
    # opaque: the id shows no position
    assert summary_id(counted).startswith("UsageRejected:")
    assert SHARD not in summary_id(counted)


def test_each_shard_of_a_batch_is_its_own_range() -> None:
    ranges = batch_ranges([("a", "5"), ("b", "7"), ("a", "12")])
    assert ranges == {"a": BatchRange("a", "5", "12"), "b": BatchRange("b", "7", "7")}
