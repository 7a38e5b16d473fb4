"""Unpriced `unique_count` values through the rating service on DynamoDB (docs/table-design.md,
"Unpriced usage"): the values of the events no filtered charge took are claimed under the
share `unpriced`, so a keyed account, which remembers them only in claim items looked up
for the candidates its batch could claim (`value_candidates`), must look that share up
too, else a value seen again counts again; and a lost answer, a stale writer and a
producer's resend count each unpriced event once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.core.catalog import parse_accounts, parse_catalog
from billing.rating import rater
from billing.store.config_store import ConfigStore
from billing.store.ledger_store import LEDGER_SORT_KEY
from tests.integration.conftest import Aws
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard

START = 10**50
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
AT = "2026-11-20T12:00:00Z"
CATALOG = parse_catalog(
    {
        "meters": [
            {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user"}
        ],
        "plans": [
            {
                "id": "eu",
                "name": "EU",
                "currency": "USD",
                "charges": [
                    {
                        "meter": "users",
                        "model": "per_unit",
                        "unit_price": "1",
                        "filters": {"region": ["eu"]},
                    }
                ],
            }
        ],
    }
)
ACCOUNTS = parse_accounts(
    {
        "accounts": [
            {"id": "acct-1", "name": "A", "email": "a@example.com", "plan": "eu", "timezone": "UTC"}
        ]
    },
    CATALOG,
)


def users(prefix: str, names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "account_id": "acct-1",
            "meter": "users",
            "quantity": 1,
            "timestamp": AT,
            "dimensions": {"user": name, "region": "us"},
        }
        for i, name in enumerate(names)
    ]


def test_a_keyed_accounts_unpriced_value_seen_again_counts_once(aws: Aws, monkeypatch: Any) -> None:
    # GIVEN acct-1, whose plan charges users in eu only, keyed (tests/integration/
    # test_keyed_unique_phases.py's pattern) by 91 distinct users in us: all unpriced
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 64)
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS, now=datetime(2026, 10, 1, tzinfo=UTC))
    service = aws.service(now=NOW)
    service.process(shard(users("a", [f"user{i}" for i in range(60)]), first=START))
    assert aws.ledger_store().load(["acct-1"])["acct-1"].keyed
    service.process(shard(users("b", [f"user{60 + i}" for i in range(30)]), first=START + 1000))
    service.process(shard(users("z", ["zed"]), first=START + 1500))
    ledger = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    assert not [ref for ref in ledger.chunk_refs if ref.pending]

    # WHEN a cold environment gets new event ids for 3 of those users, and a new one
    aws.service(now=NOW).process(
        shard(users("c", ["user3", "user75", "zed", "newcomer"]), first=START + 2000)
    )

    # THEN 92 distinct users, all unpriced, in 95 unpriced events, all in us
    usage = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"].usage["2026-11"]["users"]
    assert usage.total.quantity == Decimal(92)
    assert usage.unpriced is not None
    assert (usage.unpriced.total.quantity, usage.unpriced.total.events) == (Decimal(92), 95)
    assert usage.unpriced.values == {"us": 95}


def user_event(event_id: str, quantity: str, region: str | None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": "acct-1",
        "meter": "users",
        "quantity": quantity,
        "timestamp": AT,
        "dimensions": {"user": event_id, **({"region": region} if region else {})},
    }


def test_a_lost_ack_a_stale_writer_and_a_resend_count_unpriced_usage_once(aws: Aws) -> None:
    # GIVEN acct-1 (users charged in eu only); environment B read the ledger, then A rated
    # u1 (us); A's next write, with u2 (no region) and u3 (eu), lands but its answer is lost
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS, now=datetime(2026, 10, 1, tzinfo=UTC))
    env_a, env_b = aws.service(now=NOW), aws.service(now=NOW)
    env_b.process(shard([user_event("u0", "1", "eu")], first=START))
    env_a.process(shard([user_event("u1", "1", "us")], first=START + 100))
    faulty = FaultyDynamoDB(aws.dynamodb)
    faulty.fail_next(Fault.LOST_ACK, touches("acct-1", LEDGER_SORT_KEY))
    lost = shard([user_event("u2", "1", None), user_event("u3", "1", "eu")], first=START + 200)
    aws.service(faulty, now=NOW).process(lost)

    # WHEN B (stale) gets the producer's resends of u1 and u2 and a new u4 (us), and the
    # lost batch is delivered again to a cold environment
    env_b.process(
        shard(
            [user_event("u1", "1", "us"), user_event("u2", "1", None), user_event("u4", "1", "us")],
            first=START + 300,
        )
    )
    aws.service(now=NOW).process(lost)

    # THEN u1, u2 and u4 are unpriced once each: 3 users in 3 events (us 2, none 1)
    usage = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"].usage["2026-11"]["users"]
    assert usage.unpriced is not None
    assert (usage.unpriced.total.quantity, usage.unpriced.total.events) == (Decimal(3), 3)
    assert usage.unpriced.values == {"": 1, "us": 2}
    assert (usage.total.quantity, usage.total.events) == (Decimal(5), 5)
