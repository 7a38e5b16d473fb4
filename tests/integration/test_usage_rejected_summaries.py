"""A rater batch's UsageRejected summaries, through the rating service on moto: published
once the batch's rejections are kept, one per account and period with counts by reason,
each id named by the records it counts; when Lambda delivers the batch again whole,
nothing: the first delivery decided and kept every rejection (docs/quarantine.md)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from billing.core.usage_rejected import DETAIL_TYPE, summary_id
from billing.rating.rejection_summaries import RejectionSummaries
from billing.rating.service import RatingService
from billing.store.config_store import ConfigStore
from billing.store.due_hints import DueHints
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine import Quarantine
from tests.integration.conftest import NOW, Aws
from tests.support.kinesis import shard

ARRIVED = datetime(2026, 11, 30, 23, 59, 58, tzinfo=UTC).timestamp()
GOOD = {
    "event_id": "ok-1",
    "account_id": "acct-5",
    "meter": "api_requests",
    "quantity": "10",
    "timestamp": "2026-11-10T10:00:00Z",
}


class Bus:
    """The publisher, recording what it was given; `refuse` the positions it refuses."""

    def __init__(self, refuse: bool = False) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    def publish_all(self, events: Any) -> dict[int, str]:
        self.published.extend(events)
        return dict.fromkeys(range(len(events)), "refused") if self.refuse else {}


def _service(aws: Aws, bus: Bus | RejectionSummaries) -> RatingService:
    """A cold rating service on the stores, telling `bus` its batches' summaries."""
    return RatingService(
        config=ConfigStore(aws.dynamodb, aws.config_table),
        ledgers=LedgerStore(aws.dynamodb, aws.ledger_table),
        quarantine=Quarantine(aws.s3, aws.bucket),
        clock=lambda: NOW,
        hints=DueHints(aws.dynamodb, aws.ledger_table),
        summaries=bus if isinstance(bus, RejectionSummaries) else RejectionSummaries(bus),
    )


def _batch() -> list[Any]:
    payloads: list[bytes | dict[str, Any]] = [
        GOOD,
        {**GOOD, "event_id": "bad-meter", "meter": "no_such_meter"},
        b"not json",
        {**GOOD, "event_id": "who", "account_id": "acct-unknown"},
        b"[1, 2]",
    ]
    # arrived a second apart from 23:59:58 on November 30th: the last two in December
    return [
        dataclasses.replace(record, arrival_timestamp=ARRIVED + n)
        for n, record in enumerate(shard(payloads))
    ]


def _positions(*records: Any) -> list[tuple[str, str]]:
    return [(record.shard_id, record.sequence_number) for record in records]


def _summaries(bus: Bus) -> list[dict[str, Any]]:
    assert {detail_type for detail_type, _ in bus.published} <= {DETAIL_TYPE}
    return [detail for _, detail in bus.published]


def test_a_batchs_rejections_are_published_as_summaries_once_per_id(aws: Aws) -> None:
    # GIVEN a batch of one good record and four rejected ones, across midnight UTC
    records, bus = _batch(), Bus()

    # WHEN the rating service takes it
    report = _service(aws, bus).process(records)

    # THEN one summary per account and period of arrival, counts by reason
    assert report.failed == []
    details = _summaries(bus)
    brief = [
        (d["event_id"], d["account_id"], d["period"], d["rejected"], d["reasons"]) for d in details
    ]
    assert brief == [
        # "not json" (00:00:00) and "[1, 2]" (00:00:02): no account to tie them to
        (
            summary_id(_positions(records[2], records[4])),
            None,
            "2026-12",
            2,
            {"MALFORMED_JSON": 1, "SCHEMA_INVALID": 1},
        ),
        # the unknown meter arrived at 23:59:59 on November 30th
        (summary_id(_positions(records[1])), "acct-5", "2026-11", 1, {"UNKNOWN_METER": 1}),
        (
            summary_id(_positions(records[3])),
            "acct-unknown",
            "2026-12",
            1,
            {"UNKNOWN_ACCOUNT": 1},
        ),
    ]
    assert (details[0]["first_record_at"], details[0]["last_record_at"]) == (
        "2026-12-01T00:00:00.000Z",
        "2026-12-01T00:00:02.000Z",
    )
    # nothing of the records themselves: no event id, payload or rejection message
    assert not any(word in str(details) for word in ("bad-meter", "who", "not json", "message"))

    # WHEN Lambda delivers the same batch again whole (the first invocation's answer lost)
    again = Bus()
    _service(aws, again).process(records)

    # THEN it publishes nothing: the records with an account were decided then and are
    # replays now, the others it finds kept (its quarantine writes refused): none is counted
    # again, whether or not a receiver dedupes
    assert again.published == []


def test_a_summary_the_bus_refuses_fails_no_record(aws: Aws) -> None:
    records, bus = _batch(), Bus(refuse=True)
    summaries = RejectionSummaries(bus)

    report = _service(aws, summaries).process(records)

    # the records are rated and quarantined; the three refused summaries are counted
    assert report.failed == []
    assert summaries.unpublished == report.unpublished_summaries == 3
    assert len(aws.quarantined()) == 4


def test_a_batch_with_no_rejection_publishes_nothing(aws: Aws) -> None:
    bus = Bus()
    _service(aws, bus).process(shard([GOOD, {**GOOD, "event_id": "ok-2"}]))
    assert bus.published == []
