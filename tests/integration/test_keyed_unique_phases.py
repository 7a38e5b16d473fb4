"""A keyed account's unique_count values under plan changes (CONTRACT 2a: distinct values).

A keyed account remembers a claimed unique_count value only in a claim item, looked up for
the candidate digests its batch could claim (`value_candidates`). The rater claims a value
under the meter's name *in its phase* (`meter@YYYY-MM-DD` for a phase begun inside the
period) and in the shares of the *phase's* plan, so the candidates must be placed the same
way (`Phases.placed`); else a value seen again in such a phase, or in a filtered share
that only the later plan has, is not found and counts again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Accounts, Catalog, parse_accounts, parse_catalog
from billing.rating import rater
from billing.store.config_store import ConfigStore
from billing.store.ledger_store import LEDGER_SORT_KEY
from tests.integration.conftest import Aws
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard

D = Decimal
START = 10**50
EU = "region=eu"

CATALOG: Catalog = parse_catalog(
    {
        "meters": [
            {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user"},
            {"name": "calls", "unit": "call", "aggregation": "sum"},
        ],
        "plans": [
            {
                "id": "basic",
                "name": "Basic",
                "currency": "USD",
                "charges": [{"meter": "users", "model": "per_unit", "unit_price": "1"}],
            },
            {
                "id": "team",
                "name": "Team",
                "currency": "USD",
                "charges": [
                    {"meter": "users", "model": "per_unit", "unit_price": "1"},
                    {
                        "meter": "users",
                        "model": "per_unit",
                        "unit_price": "1",
                        "filters": {"region": ["eu"]},
                    },
                ],
            },
        ],
    }
)
ACCOUNTS: Accounts = parse_accounts(
    {
        "accounts": [
            {
                "id": "acct-1",
                "name": "acct-1",
                "email": "b@example.com",
                "plan": "basic",
                "timezone": "UTC",
                "start": "2026-10-01",
                "changes": [{"effective": "2026-11-15", "plan": "team"}],
            }
        ]
    },
    CATALOG,
)


def users(prefix: str, names: list[str], at: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "account_id": "acct-1",
            "meter": "users",
            "quantity": 1,
            "timestamp": at,
            "dimensions": {"user": name, "region": "eu"},
        }
        for i, name in enumerate(names)
    ]


def make_keyed(aws: Aws, at: str, now: datetime) -> None:
    """The pattern of tests/integration/test_rater_unique_latest.py: 60 users make acct-1
    keyed, 30 more spill into a pending chunk, one more flushes it: from then on the values
    of these 91 users are remembered only in claim items."""
    service = aws.service(now=now)
    service.process(shard(users("a", [f"user{i}" for i in range(60)], at), first=START))
    assert aws.ledger_store().load(["acct-1"])["acct-1"].keyed
    service.process(shard(users("b", [f"user{60 + i}" for i in range(30)], at), first=START + 1000))
    service.process(shard(users("z", ["zed"], at), first=START + 1500))
    ledger = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    assert not [ref for ref in ledger.chunk_refs if ref.pending]


@pytest.fixture
def phased(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 64)
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS, now=datetime(2026, 10, 1, tzinfo=UTC))
    return aws


def test_keyed_value_seen_again_in_a_phase_begun_inside_the_period(
    phased: Aws,
) -> None:
    # GIVEN acct-1 on team from 15 Nov (a phase begun inside 2026-11: its usage is kept
    # under users@2026-11-15), keyed, with 91 distinct users on 20 Nov
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    make_keyed(phased, "2026-11-20T12:00:00Z", now)

    # WHEN a cold environment gets new event ids for 3 of those users, on the same day
    phased.service(now=now).process(
        shard(users("c", ["user3", "user75", "zed"], "2026-11-20T13:00:00Z"), first=START + 2000)
    )

    # THEN no new user: the phase still counts 91 distinct users (all events and eu share)
    ledger = phased.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    usage = ledger.usage["2026-11"]["users@2026-11-15"]
    assert (usage.total.quantity, usage.by_filter[EU].quantity) == (D(91), D(91))


def test_keyed_value_seen_again_in_a_share_only_the_later_plan_has(
    phased: Aws,
) -> None:
    # GIVEN acct-1 in 2026-12, wholly on team (its usage under the bare meter name), whose
    # eu filtered charge the base plan `basic` does not have; keyed, 91 users on 10 Dec
    now = datetime(2027, 1, 1, 6, 0, tzinfo=UTC)
    make_keyed(phased, "2026-12-10T12:00:00Z", now)

    # WHEN a cold environment gets new event ids for 3 of those users
    phased.service(now=now).process(
        shard(users("c", ["user3", "user75", "zed"], "2026-12-10T13:00:00Z"), first=START + 2000)
    )

    # THEN the eu share still counts 91 distinct users, like the total
    ledger = phased.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    usage = ledger.usage["2026-12"]["users"]
    assert (usage.total.quantity, usage.by_filter[EU].quantity) == (D(91), D(91))


def calls(prefix: str, count: int, at: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "account_id": "acct-1",
            "meter": "calls",
            "quantity": 1,
            "timestamp": at,
        }
        for i in range(count)
    ]


def test_a_returning_value_counts_again_batch_after_batch(phased: Aws) -> None:
    # GIVEN the keyed acct-1 of the first test, with 91 distinct users in the phase begun
    # on 15 Nov
    now = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    at = "2026-11-20T12:00:00Z"
    make_keyed(phased, at, now)

    # WHEN user75 (remembered in claim items only) comes back in 6 batches (new event
    # ids), each with 40 calls (new ids: the write spills its ids, the next one writes
    # their claims and drops the chunk)
    for round_ in range(6):
        batch = users(f"r{round_}-", ["user75"], at) + calls(f"k{round_}-", 40, at)
        phased.service(now=now).process(shard(batch, first=START + 10_000 * (round_ + 1)))

    # THEN user75 is still one user: 91 distinct users in the phase
    ledger = phased.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    assert ledger.usage["2026-11"]["users@2026-11-15"].total.quantity == D(91)


def test_a_stale_writer_and_a_lost_ack_count_a_phase_value_once(aws: Aws) -> None:
    # GIVEN acct-1 (not keyed) changing plan on 15 Nov; environment B saw ann in the new
    # phase, then A rated bo there; A's next write lands but its answer is lost
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS, now=datetime(2026, 10, 1, tzinfo=UTC))
    at = "2026-11-20T12:00:00Z"
    env_a, env_b = aws.service(), aws.service()
    env_b.process(shard(users("b", ["ann"], at), first=START))
    env_a.process(shard(users("a", ["bo"], at), first=START + 100))
    faulty = FaultyDynamoDB(aws.dynamodb)
    faulty.fail_next(Fault.LOST_ACK, touches("acct-1", LEDGER_SORT_KEY))
    lost = shard(users("c", ["cy", "ann"], at), first=START + 200)
    aws.service(faulty).process(lost)

    # WHEN B (stale) rates new ids for ann, bo and cy in the phase, and also on 10 Nov
    # (the phase before the change), and the lost batch is delivered again to a cold one
    env_b.process(
        shard(
            users("d", ["ann", "bo", "cy"], at) + users("e", ["ann"], "2026-11-10T12:00:00Z"),
            first=START + 300,
        )
    )
    aws.service().process(lost)

    # THEN the new phase holds ann, bo, cy (3), the first phase ann (1)
    ledger = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    usage = ledger.usage["2026-11"]
    assert (usage["users@2026-11-15"].total.quantity, usage["users"].total.quantity) == (
        D(3),
        D(1),
    )
