"""Spend alerts for an account that changes plan inside the period (CONTRACT.md 2a): the
running charges a threshold is compared with are the invoice's usage lines, phase by
phase, and each crossing is still published once however often it is delivered."""

from __future__ import annotations

from billing.core.catalog import parse_accounts
from billing.store.config_store import ConfigStore
from tests.integration.test_rater_exactly_once import event
from tests.integration.test_rater_phases import ACCOUNT
from tests.integration.test_spend_alerts import Alerts, alerts, details
from tests.support.kinesis import shard
from tests.unit.test_phases import CATALOG

__all__ = ["alerts"]  # the fixture, used by name


def test_a_threshold_is_crossed_by_the_sum_of_both_phases_lines_once(alerts: Alerts) -> None:
    # GIVEN acct-ph, on starter until its local midnight starting 15 November and on pro
    # from then, rated in two batches: 1,000 api requests before, 200 after
    aws = alerts.aws
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(parse_accounts({"accounts": [ACCOUNT]}, CATALOG))
    records = shard(
        [
            event("before", "acct-ph", meter="api", quantity=1000, at="2026-11-10T12:00:00Z"),
            event("after", "acct-ph", meter="api", quantity=200, at="2026-11-20T12:00:00Z"),
        ]
    )
    service = aws.service()
    service.process(records[:1])
    service.process(records[1:])
    written = alerts.new_records()

    # WHEN the ledger's stream records are delivered twice
    assert alerts.deliver(written) == {"batchItemFailures": []}
    assert alerts.deliver(written) == {"batchItemFailures": []}

    # THEN the first write's charges are starter's 900 × 0.10 + 1.00 = 91.00 (threshold
    # 0.10), and the second's add pro's own tiers, from 0 again: 100 × 0.10 + 1.00 = 11.00,
    # 102.00 in all (threshold 100; all 1,200 under either plan would be 111.00)
    assert details(alerts.published()) == [
        ("acct-ph", "2026-11", "USD", "0.10", "91.00"),
        ("acct-ph", "2026-11", "USD", "100.00", "102.00"),
    ]
