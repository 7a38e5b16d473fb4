"""Usage by local day, kept by the real rating service in the ledger's own write (moto):
each day's aggregate is hand-computed in the account's zone (UTC+14 for acct-a, so an
event's local day is not its UTC day), for every aggregation, and a retried, redelivered
or resent batch changes no day (docs/table-design.md, "Usage by day")."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from billing.store.config_store import ConfigStore
from billing.store.ledger_items import ledger_key
from billing.store.ledger_store import LEDGER_SORT_KEY
from tests.integration.conftest import Aws
from tests.support.customer_scenario import ACCOUNTS, ALPHA_EVENTS, CATALOG, event
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard

D = Decimal
START = 10**50


@pytest.fixture
def world(aws: Aws) -> Aws:
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS)
    return aws


def days(aws: Aws, account: str, period: str, meter: str) -> dict[int, D] | None:
    """A meter's days in a period as the ledger item holds them: quantity by day."""
    ledger = aws.ledger_store().load([account], fresh=True)[account]
    kept = ledger.usage[period][meter].days
    return None if kept is None else {day: aggregate.quantity for day, aggregate in kept.items()}


def stored_use(aws: Aws, account: str) -> dict[str, Any]:
    item = aws.dynamodb.get_item(TableName=aws.ledger_table, Key=ledger_key(account))["Item"]
    use: dict[str, Any] = json.loads(item["use"]["S"])
    return use


def outcomes(report: Any) -> dict[str, int]:
    return dict(Counter(str(r.outcome) for r in report.results.values()))


def test_days_are_the_accounts_local_days_far_from_utc(world: Aws) -> None:
    # GIVEN acct-a's events (UTC+14): a1 at 10:00Z on 31 October is local 1 November
    # WHEN they are rated
    report = world.service().process(shard(ALPHA_EVENTS, first=START))

    # THEN November's days are local ones, and a8 (10:00Z on 30 November) is December's 1st
    assert (report.failed, outcomes(report)) == ([], {"rated": 8})
    assert days(world, "acct-a", "2026-11", "api_calls") == {1: D(1200), 2: D(300), 30: D(250)}
    assert days(world, "acct-a", "2026-11", "seats") == {2: D(3), 4: D(5)}
    assert days(world, "acct-a", "2026-12", "api_calls") == {1: D(999)}
    # ... stored as one list from the first day with usage: 0 on the days between
    use = stored_use(world, "acct-a")
    assert use["2026-11"]["api_calls"]["d"] == [1, 1200, 300, *[0] * 27, 250]
    assert use["2026-11"]["seats"]["d"] == [2, 3, 0, 5]
    assert use["2026-12"]["api_calls"] == {"a": "sum", "d": [1, 999], "t": ["999", 1]}


def test_a_retried_redelivered_or_resent_batch_changes_no_day(world: Aws) -> None:
    # GIVEN acct-a's first four events, whose ledger write lands but whose answer is lost
    first_batch = shard(ALPHA_EVENTS[:4], first=START)
    faulty = FaultyDynamoDB(world.dynamodb)
    faulty.fail_next(Fault.LOST_ACK, touches("acct-a", LEDGER_SORT_KEY))
    lost = world.service(faulty).process(first_batch)
    before = stored_use(world, "acct-a")

    # WHEN Lambda delivers the batch again to a cold service, the producer resends a1..a4
    # (new sequence numbers, other timestamps), and then the rest of the stream arrives
    again = world.service().process(first_batch)
    resent_events = [{**e, "timestamp": "2026-11-20T00:00:00Z"} for e in ALPHA_EVENTS[:4]]
    resent = world.service().process(shard(resent_events, first=START + 1000))
    after_resends = stored_use(world, "acct-a")
    rest = world.service().process(shard(ALPHA_EVENTS[4:], first=START + 2000))

    # THEN the redelivery replays, the resends are duplicates, and no day moved until new
    # events came; at the end every day is as if each event had been rated once
    assert (lost.failed, outcomes(lost)) == ([], {"rated": 4})
    assert outcomes(again) == {"replayed": 4}
    assert outcomes(resent) == {"duplicate": 4}
    assert after_resends == before
    assert outcomes(rest) == {"rated": 4}
    assert days(world, "acct-a", "2026-11", "api_calls") == {1: D(1200), 2: D(300), 30: D(250)}
    assert days(world, "acct-a", "2026-11", "seats") == {2: D(3), 4: D(5)}


CHARLIE = [
    # exports (count): 2 on the 3rd, 1 on the 5th
    event("c-e1", "acct-c", "exports", 9, "2026-11-03T01:00:00Z"),
    event("c-e2", "acct-c", "exports", 4, "2026-11-03T23:00:00Z"),
    event("c-e3", "acct-c", "exports", 1, "2026-11-05T00:00:00Z"),
    # users (unique_count of `user`): ann and bo new on the 2nd, cy on the 3rd (ann again
    # adds nothing), an event without a user counts no value
    event("c-u1", "acct-c", "users", 1, "2026-11-02T10:00:00Z", user="ann"),
    event("c-u2", "acct-c", "users", 1, "2026-11-02T11:00:00Z", user="bo"),
    event("c-u3", "acct-c", "users", 1, "2026-11-03T09:00:00Z", user="ann"),
    event("c-u4", "acct-c", "users", 1, "2026-11-03T10:00:00Z", user="cy"),
    event("c-u5", "acct-c", "users", 1, "2026-11-04T10:00:00Z"),
    # level (latest): on the 2nd the one at 10:00 (2), though 7 comes later on the stream
    # with an earlier time; on the 6th two at the same instant: the later on the stream (3)
    event("c-l1", "acct-c", "level", 2, "2026-11-02T10:00:00Z"),
    event("c-l2", "acct-c", "level", 7, "2026-11-02T08:00:00Z"),
    event("c-l3", "acct-c", "level", 0, "2026-11-06T00:00:00Z"),
    event("c-l4", "acct-c", "level", 3, "2026-11-06T00:00:00Z"),
]


@pytest.mark.parametrize("cut", [1, 5, 9, 12])
def test_every_aggregation_keeps_its_days_however_the_stream_is_cut(world: Aws, cut: int) -> None:
    # GIVEN acct-c's stream, cut into two batches at `cut` (12: one batch)
    records = shard(CHARLIE, first=START)

    # WHEN it is rated, batch by batch
    service = world.service()
    reports = [service.process(part) for part in (records[:cut], records[cut:]) if part]

    # THEN each day holds its events' aggregate, as the meter aggregates them
    assert all(not report.failed for report in reports)
    assert days(world, "acct-c", "2026-11", "exports") == {3: D(2), 5: D(1)}
    assert days(world, "acct-c", "2026-11", "users") == {2: D(2), 3: D(1)}
    assert days(world, "acct-c", "2026-11", "level") == {2: D(2), 6: D(3)}
    level = stored_use(world, "acct-c")["2026-11"]["level"]
    assert [entry if entry is None else entry[0] for entry in level["d"][1:]] == [
        "2",
        None,
        None,
        None,
        "3",
    ]
