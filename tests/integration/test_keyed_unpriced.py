"""A keyed account's unpriced `unique_count` values (docs/table-design.md, "Unpriced
usage"): the values of the events no filtered charge took are claimed under the share
`unpriced`; a keyed account remembers them only in claim items, looked up for the
candidates its batch could claim (`value_candidates`), so those must include that share,
else a value seen again counts again."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.core.catalog import parse_accounts, parse_catalog
from billing.rating import rater
from billing.store.config_store import ConfigStore
from tests.integration.conftest import Aws
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
