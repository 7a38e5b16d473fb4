"""`billing rerate --apply` after a filter is added to a unique_count meter's plan.

The apply keeps the ledger's claims (event ids and unique values), which are those of the
old catalog's shares: a share the fix creates has none. So the apply refuses to replace a
unique_count meter's usage, and the rater's count stays right: alice counts once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing.core.catalog import load_catalog
from functions.rate_usage import app as rate_usage
from tests.support.corrections_runs import RUN_AT, billing, local_run, rate

pytestmark = pytest.mark.integration

CATALOG = """
meters:
  - name: active_users
    unit: user
    aggregation: unique_count
    field: user_id
plans:
  - id: basic
    name: Basic
    currency: USD
    charges:
      - {meter: active_users, model: per_unit, unit_price: "1.00"}
"""
FILTER = (
    '      - {meter: active_users, model: per_unit, unit_price: "0.50", filters: {region: [eu]}}\n'
)
ACCOUNTS = """
accounts:
  - {id: acct-1, name: Acme, email: billing@acme.example, plan: basic, timezone: UTC,
     start: "2026-10-01"}
"""


def event(event_id: str, user: str, region: str, day: int) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": "acct-1",
            "meter": "active_users",
            "quantity": 1,
            "timestamp": f"2026-11-{day:02d}T10:00:00Z",
            "dimensions": {"user_id": user, "region": region},
        }
    )


def charges() -> list[tuple[str, str]]:
    usage: dict[str, Any] = billing("usage", "acct-1", "--period", "2026-11")
    [meter] = usage["meters"]
    return sorted((c["quantity"], c["amount"]) for c in meter["charges"])


def test_apply_then_a_known_user_again_is_not_counted_twice(tmp_path: Path) -> None:
    # GIVEN alice (eu) and bob (us) rated under a plan with one active_users charge
    events = [event("e1", "alice", "eu", 2), event("e2", "bob", "us", 3)]
    with local_run(tmp_path, CATALOG, ACCOUNTS, events) as aws:
        # AND an EU charge added to the plan (pushed), and the open period applied
        fixed = tmp_path / "fixed.yaml"
        fixed.write_text(CATALOG + FILTER, encoding="utf-8")
        aws.config.put_catalog(load_catalog(fixed))
        rate_usage.service.cache_clear()
        rate_usage.service()._clock = lambda: RUN_AT
        applied = billing("rerate", "--period", "2026-11", "--apply")
        [outcome] = applied["applied"]
        # THEN the apply refuses: the EU share would hold alice with no claim for her
        assert outcome["outcome"] == "refused"
        assert "active_users counts distinct values" in outcome["reason"]
        # AND the live ledger is as the rater left it: the new EU share counts from now
        assert charges() == [("0", "0.00"), ("2", "2.00")]
        # WHEN the rater rates alice (eu) twice more, the EU share counts her once
        rate(aws, [event("e3", "alice", "eu", 20).encode()])
        rate(aws, [event("e4", "alice", "eu", 21).encode()])
        assert charges() == [("1", "0.50"), ("2", "2.00")]
