"""`unique_count` and `latest` through the real rating service on DynamoDB (moto): a value
counts once whatever is retried, resent or raced, in an account's ledger, chunks and claim
items alike; `latest` ties go to the record later on the stream, across batches."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from billing.core.periods import Period
from billing.customer.usage_view import usage_report
from billing.rating import rater
from billing.rating.service import BatchReport
from billing.store.config_store import ConfigStore
from billing.store.ledger_store import LEDGER_SORT_KEY
from tests.integration.conftest import NOW, Aws
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard
from tests.unit.test_unique_latest import ACCOUNTS, CATALOG, EU, event

D = Decimal

START = 10**50


@pytest.fixture
def team(aws: Aws) -> Aws:
    """The moto stack with the unique_count/latest catalog, acct-1 and acct-2 on it."""
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS)
    return aws


def outcomes(report: BatchReport) -> dict[str, int]:
    return dict(Counter(str(r.outcome) for r in report.results.values()))


def stored(aws: Aws, meter: str, account: str = "acct-1") -> tuple[D, D, int]:
    """The meter's quantity (all events, eu share) and events, as the ledger item holds it."""
    ledger = aws.ledger_store().load([account], fresh=True)[account]
    usage = ledger.usage["2026-11"][meter]
    share = usage.by_filter.get(EU)
    return usage.total.quantity, share.quantity if share else D(0), usage.total.events


def users(ids_and_values: list[tuple[str, str]], region: str = "eu") -> list[dict[str, Any]]:
    return [event(i, "users", 1, user=v, region=region) for i, v in ids_and_values]


def test_a_retried_batch_of_unique_count_events_counts_each_value_once(team: Aws) -> None:
    # GIVEN a batch of 4 events with 3 distinct users whose ledger write lands but whose
    # answer is lost (the service reads the ledger back)
    faulty = FaultyDynamoDB(team.dynamodb)
    faulty.fail_next(Fault.LOST_ACK, touches("acct-1", LEDGER_SORT_KEY))
    batch = shard(users([("e1", "ann"), ("e2", "bo"), ("e3", "ann"), ("e4", "cy")]), first=START)
    first = team.service(faulty).process(batch)

    # WHEN Lambda delivers the same batch again (same sequence numbers) to a cold service,
    # the producer resends e1..e4 (new sequence numbers), and new ids bring ann and bo again
    again = team.service().process(batch)
    resent = team.service().process(
        shard(users([("e1", "ann"), ("e2", "bo"), ("e3", "ann"), ("e4", "cy")]), first=START + 100)
    )
    seen_again = team.service().process(
        shard(
            users(
                [
                    ("e5", "ann"),
                    (
                        "e6",
                        "bo",
                    ),
                ]
            ),
            first=START + 200,
        )
    )

    # THEN ann, bo and cy count once each (3), in the total and the eu share; the events
    # rated are e1..e6 (6), the resends duplicates, the redelivery replays
    assert (first.failed, outcomes(first)) == ([], {"rated": 4})
    assert outcomes(again) == {"replayed": 4}
    assert outcomes(resent) == {"duplicate": 4}
    assert outcomes(seen_again) == {"rated": 2}
    assert stored(team, "users") == (D(3), D(3), 6)


def test_a_stale_second_writer_counts_no_value_twice(team: Aws) -> None:
    # GIVEN environments A and B; B saw acct-1 first (ann), then A rated bo and cy
    env_a, env_b = team.service(), team.service()
    env_b.process(shard(users([("e1", "ann")]), first=START))
    env_a.process(shard(users([("e2", "bo"), ("e3", "cy")], region="us"), first=START + 100))

    # WHEN B, with its stale ledger, rates new ids for bo (eu), cy (us) and dee
    report = env_b.process(
        shard(
            [
                event("e4", "users", user="bo", region="eu"),
                *users([("e5", "cy"), ("e6", "dee")], "us"),
            ],
            first=START + 200,
        )
    )

    # THEN B's write lost the race, was rated again on a fresh read: all events: ann, bo,
    # cy, dee = 4; eu share: ann (e1), bo (e4: new to the share) = 2
    assert outcomes(report) == {"rated": 3}
    assert stored(team, "users") == (D(4), D(2), 6)


def test_a_keyed_account_remembers_its_values_in_claim_items(
    team: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1 made keyed (past 64 digests) by 60 events of 60 distinct users in the eu
    # share (each event claims its id and its value twice: 180 digests), then 30 more users
    # (spilled into a pending chunk, whose claim items are written once it lands), then one
    # more, zed (its write drops the flushed chunk: from then on only the claims hold them)
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 64)
    service = team.service()
    service.process(shard(users([(f"a{i}", f"user{i}") for i in range(60)]), first=START))
    assert team.ledger_store().load(["acct-1"])["acct-1"].keyed
    service.process(
        shard(users([(f"b{i}", f"user{60 + i}") for i in range(30)]), first=START + 1000)
    )
    service.process(shard(users([("z", "zed")]), first=START + 1500))
    ledger = team.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    assert not [ref for ref in ledger.chunk_refs if ref.pending]

    # WHEN a cold environment gets new ids for users from both batches, and 2 new users
    later = team.service().process(
        shard(
            users([("c1", "user3"), ("c2", "user75"), ("c3", "user89"), ("c4", "new1")])
            + users([("c5", "new2")], region="us"),
            first=START + 2000,
        )
    )

    # THEN only new1 and new2 are new: 90 + zed + 2 = 93 users; eu share 90 + zed + new1
    # = 92; events 60 + 30 + 1 + 5 = 96
    assert outcomes(later) == {"rated": 5}
    assert stored(team, "users") == (D(93), D(92), 96)


def test_latest_ties_go_to_the_later_record_across_batches(team: Aws) -> None:
    # GIVEN seats 4 at noon (eu), then a later batch with seats 9 at the same instant and
    # seats 1 a second earlier, later on the stream
    team.service().process(
        shard([event("s1", "seats", 4, "2026-11-20T12:00:00Z", region="eu")], first=START)
    )
    team.service().process(
        shard(
            [
                event("s2", "seats", 9, "2026-11-20T13:00:00+01:00"),
                event("s3", "seats", 1, "2026-11-20T11:59:59Z", region="eu"),
            ],
            first=START + 100,
        )
    )

    # WHEN s1 is resent later on the stream with another quantity (a producer duplicate)
    resent = team.service().process(
        shard([event("s1", "seats", 5, "2026-11-20T12:00:00Z", region="eu")], first=START + 200)
    )

    # THEN all events: s2 (the same instant as s1, later on the stream) = 9; the eu share:
    # s1 = 4 (s3 is earlier); the resend changes nothing
    assert outcomes(resent) == {"duplicate": 1}
    assert stored(team, "seats") == (D(9), D(4), 3)


def test_the_usage_report_shows_distinct_users_and_latest_seats(team: Aws) -> None:
    # GIVEN ann, bo (eu) and ann again (us), and seats 3 then 5 (the latest)
    team.service().process(
        shard(
            [
                *users([("e1", "ann"), ("e2", "bo")]),
                event("e3", "users", user="ann", region="us"),
                event("s1", "seats", 3, "2026-11-10T12:00:00Z"),
                event("s2", "seats", 5, "2026-11-11T12:00:00Z"),
            ],
            first=START,
        )
    )
    ledger = team.ledger_store().load(["acct-1"], fresh=True)["acct-1"]

    # WHEN the usage API's report is made from the stored ledger
    account = ACCOUNTS.by_id["acct-1"]
    report = usage_report(account, CATALOG, ledger, Period(2026, 11), now=NOW).to_json()

    # THEN users: 2 distinct (3 events), eu share 2; seats: 5 (2 events), eu share 0; each
    # charge is priced at 1 a unit: 2 + 2 + 5 + 0 = 9
    meters = {m["meter"]: m for m in report["meters"]}
    assert (meters["users"]["quantity"], meters["users"]["events"]) == ("2", 3)
    assert [c["quantity"] for c in meters["users"]["charges"]] == ["2", "2"]
    assert (meters["seats"]["quantity"], meters["seats"]["events"]) == ("5", 2)
    assert [c["quantity"] for c in meters["seats"]["charges"]] == ["5", "0"]
    assert report["invoice_preview"]["subtotal"] == "9.00"
