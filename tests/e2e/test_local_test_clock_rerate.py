"""`billing local` on a test clock (`billing clock advance`) rates by the test clock, while
its raw archive records the real arrival time: a re-rate takes the rater's FUTURE_TIMESTAMP
verdicts from the quarantine, so it never counts an event the rater refused as ahead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing.core.periods import Period
from billing_cli import sending
from billing_cli.local.esm import MappingSettings
from billing_cli.local.runtime import LocalAws, local_aws
from tests.e2e.test_quarantine_commands import billing, ok, rate, write_lines

pytestmark = pytest.mark.e2e

CATALOG = """
meters:
  - {name: api_requests, unit: request, aggregation: sum}
plans:
  - id: pro
    name: Pro
    currency: USD
    charges:
      - {meter: api_requests, model: per_unit, unit_price: "0.01"}
"""
ACCOUNTS = """
accounts:
  - {id: acct-1, name: Acme, email: billing@acme.example, plan: pro, timezone: UTC,
     start: "2000-01-01"}
"""
REAL_NOW = datetime.now(UTC).replace(microsecond=0)
TEST_CLOCK = REAL_NOW - timedelta(days=2)  # the local runtime's clock, behind real time
STAMPED = REAL_NOW - timedelta(days=1)  # a day after the test clock: in its future


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalAws]:
    with local_aws(clock=TEST_CLOCK) as aws:
        pollers = aws.pollers(MappingSettings(batch_size=100))
        monkeypatch.setattr(sending, "pause", lambda _seconds: rate(pollers))
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        (tmp_path / "accounts.yaml").write_text(ACCOUNTS)
        assert billing("catalog", "push", str(tmp_path / "catalog.yaml")).exit_code == 0
        assert billing("accounts", "push", str(tmp_path / "accounts.yaml")).exit_code == 0
        yield aws


def sent_ahead(local: LocalAws, tmp_path: Path) -> str:
    """An event stamped a day after the test clock, sent and refused; its period."""
    event = {
        "event_id": "ahead",
        "account_id": "acct-1",
        "meter": "api_requests",
        "quantity": 100,
        "timestamp": STAMPED.isoformat(),
    }
    sent: dict[str, Any] = json.loads(
        billing(
            "send", str(write_lines(tmp_path / "e.jsonl", [event])), "--wait", "60", "--json"
        ).output
    )
    assert sent["outcomes"]["rejected"] == {"FUTURE_TIMESTAMP": 1}
    local.firehose().drain()
    return str(Period.containing(STAMPED, ZoneInfo("UTC")))


def test_an_event_refused_as_future_by_the_rater_is_not_counted_by_the_rerate(
    local: LocalAws, tmp_path: Path
) -> None:
    period = sent_ahead(local, tmp_path)
    rerate = ok("rerate", "--period", period, "--json")
    assert rerate["accounts_changed"] == 0, json.dumps(rerate["changes"])


def test_apply_does_not_write_an_event_the_rater_refused_as_future(
    local: LocalAws, tmp_path: Path
) -> None:
    period = sent_ahead(local, tmp_path)
    applied = ok("rerate", "--period", period, "--apply", "--json")
    assert [a["outcome"] for a in applied["applied"]] == ["unchanged"], applied["applied"]
    usage = ok("usage", "acct-1", "--period", period, "--json")
    [meter] = usage["meters"]
    assert meter["quantity"] == "0"
