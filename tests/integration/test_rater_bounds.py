"""No item the rater writes may approach DynamoDB's 400 KB, whatever an account does: events
across thousands of periods, a flood of rejections, ids beyond what memory holds.

Expected values are computed here by hand from the generated events, not by the rater.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from billing.rating import rater
from billing.rating.rater import Outcome
from billing.store.capacity import item_size
from tests.integration.conftest import NOW, Aws
from tests.support.faults import Fault, FaultyDynamoDB
from tests.support.kinesis import shard

# The largest item the rater may write: a quarter of DynamoDB's 400 KB item limit.
ITEM_BUDGET = 100 * 1024


def event(event_id: str, at: str, quantity: int = 1, account: str = "acct-3") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": account,
        "meter": "api_requests",
        "quantity": quantity,
        "timestamp": at,
    }


def month(back: int) -> str:
    """The period `back` months before 2026-11, as YYYY-MM."""
    index = 2026 * 12 + 10 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def items(aws: Aws) -> list[dict[str, Any]]:
    pages = aws.dynamodb.get_paginator("scan").paginate(TableName=aws.ledger_table)
    return [item for page in pages for item in page["Items"]]


def test_an_account_with_events_in_1500_periods_is_rated_in_bounded_items(aws: Aws) -> None:
    # GIVEN acct-3 (no subscription start) with one event in each of the 1,500 months back
    # from November 2026 (to 1902), event i for i + 1 requests, then a producer resend of
    # every 100th id with another timestamp, all in batches of 500 on one warm service
    events = [event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(1500)]
    resends = [event(f"e{i}", "2026-11-20T10:00:00Z", quantity=999) for i in range(0, 1500, 100)]
    records = shard(events + resends)
    service = aws.service()

    # WHEN they are rated
    reports = [service.process(records[i : i + 500]) for i in range(0, len(records), 500)]

    # THEN each event is rated once and each resend is a duplicate, with no failure
    outcomes = Counter(r.outcome for report in reports for r in report.results.values())
    assert outcomes == {Outcome.RATED: 1500, Outcome.DUPLICATE: 15}
    assert all(not report.failed for report in reports)
    # ... every item stays far under DynamoDB's limit (the ledger keeps 12 periods)
    sizes = {item["sk"]["S"][:4]: 0 for item in items(aws)}
    for item in items(aws):
        kind = item["sk"]["S"][:4]
        sizes[kind] = max(sizes[kind], item_size(item))
    assert max(sizes.values()) < ITEM_BUDGET, sizes
    store = aws.ledger_store()
    ledger = store.load(["acct-3"], fresh=True)["acct-3"]
    assert sorted(ledger.usage) == [month(i) for i in reversed(range(12))]
    assert ledger.cold_until == month(12)
    # ... and each period's usage, wherever it is kept, is its one event's quantity
    for i in (0, 11, 12, 13, 700, 1499):
        usage = store.period_usage(ledger, month(i))["api_requests"].total
        assert (usage.quantity, usage.events) == (Decimal(i + 1), 1), month(i)
    assert len(store.open_periods(ledger)) == 1500


def test_closing_a_period_kept_in_its_own_item_returns_its_usage_and_rejects_later_events(
    aws: Aws,
) -> None:
    # GIVEN acct-3 with usage in 20 periods (so the 8 oldest moved out of its ledger)
    records = shard([event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(20)])
    aws.service().process(records)
    store = aws.ledger_store()

    # WHEN the oldest is invoiced (closed), and an event for it arrives afterwards
    closed = store.close_period("acct-3", month(19), NOW)
    late = aws.service().process(shard([event("late", f"{month(19)}-11T10:00:00Z")], first=10**57))

    # THEN the close returned its usage (20 requests), and the late event is PERIOD_CLOSED
    assert (closed["api_requests"].total.quantity, closed["api_requests"].total.events) == (20, 1)
    ((result),) = late.results.values()
    assert (result.outcome, str(result.rejection.reason if result.rejection else "")) == (
        Outcome.REJECTED,
        "PERIOD_CLOSED",
    )
    assert month(19) not in store.open_periods(store.load(["acct-3"], fresh=True)["acct-3"])


def test_a_batch_touching_many_periods_is_applied_in_parts_within_one_invocation(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN writes that may touch 4 periods at most, and a batch touching 10
    monkeypatch.setattr(rater, "PERIODS_PER_WRITE", 4)
    records = shard([event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(10)])

    # WHEN it is rated
    report = aws.service().process(records)

    # THEN all 10 are rated in that one invocation (three writes: 4, 4 and 2 periods)
    assert (report.failed, report.counts()) == ([], Counter({"rated": 10}))
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert ledger.version == 3
    assert sum(u["api_requests"].total.quantity for u in ledger.usage.values()) == 55


def test_a_flood_of_rejections_for_one_account_is_kept_in_parts(aws: Aws) -> None:
    # GIVEN 250 events of acct-3 for a meter the catalog does not have (UNKNOWN_METER), then
    # one good event, in one batch: more rejections than one ledger write carries (100)
    bad = [{**event(f"b{i}", "2026-11-10T10:00:00Z"), "meter": "nope"} for i in range(250)]
    records = shard([*bad, event("good", "2026-11-10T10:00:00Z")])

    # WHEN it is rated
    report = aws.service().process(records)

    # THEN every record ends in its place in that invocation, and each rejection is kept
    assert (report.failed, report.counts()) == ([], Counter({"rejected": 250, "rated": 1}))
    assert len(aws.quarantined()) == 250
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert ledger.version == 3  # 100, 100, then 50 rejections and the good event
    assert ledger.rejections  # the last write's, until a later write sees them kept
    assert item_size(next(i for i in items(aws) if i["sk"]["S"] == "LEDGER")) < ITEM_BUDGET


def test_a_later_part_that_fails_fails_only_its_own_records(aws: Aws) -> None:
    # GIVEN 250 rejected records and a good one for acct-3 in one batch, and the second of
    # the three ledger writes it needs throttled (every time)
    bad = [{**event(f"b{i}", "2026-11-10T10:00:00Z"), "meter": "nope"} for i in range(250)]
    records = shard([*bad, event("good", "2026-11-10T10:00:00Z")])
    ledger_writes = 0

    def second_write_throttled(operation: str, request: dict[str, Any]) -> Fault | None:
        nonlocal ledger_writes
        if operation == "put_item" and request["Item"]["sk"]["S"] == "LEDGER":
            ledger_writes += 1
            return Fault.THROTTLE if ledger_writes >= 2 else None
        return None

    # WHEN the batch is rated, then delivered again from the first failed record
    first = aws.service(FaultyDynamoDB(aws.dynamodb, second_write_throttled)).process(records)
    retry = aws.service().process(records[100:])

    # THEN the first write's 100 rejections stand and are kept; the other 151 records failed
    # and were judged on the retry: each record in exactly one place
    assert first.counts() == Counter({"rejected": 100})
    assert [r.sequence_number for r in first.failed] == [r.sequence_number for r in records[100:]]
    assert retry.counts() == Counter({"rejected": 150, "rated": 1})
    assert len(aws.quarantined()) == 250
