"""A re-rate of a whole run under the unchanged catalog finds no difference, for runs with
plan changes mid-period, unique_count and latest meters."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_billing_run_phase_aggregations import ACCOUNTS, CATALOG, EVENTS
from tests.support.corrections_runs import billing, local_run

pytestmark = pytest.mark.integration


def test_phases_unique_and_latest_invoiced_then_rerated_unchanged(tmp_path: Path) -> None:
    with local_run(tmp_path, CATALOG, ACCOUNTS, EVENTS) as aws:
        report = aws.run_invoices("nov", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"})
        assert report["issued"] == 1, report
        document = billing("rerate", "--period", "2026-11")
        assert document["accounts"] == 1
        assert document["accounts_changed"] == 0, document["changes"]


def test_phases_unique_and_latest_open_period_rerated_unchanged(tmp_path: Path) -> None:
    with local_run(tmp_path, CATALOG, ACCOUNTS, EVENTS):
        document = billing("rerate", "--period", "2026-11")
        assert document["accounts_changed"] == 0, document["changes"]
        applied = billing("rerate", "--period", "2026-11", "--apply")
        assert [a["outcome"] for a in applied["applied"]] == ["unchanged"], applied


def test_explain_puts_each_event_under_its_phase_line(tmp_path: Path) -> None:
    with local_run(tmp_path, CATALOG, ACCOUNTS, EVENTS) as aws:
        aws.run_invoices("nov", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"})
        explained = billing("explain", "acct-1", "--period", "2026-11")
    got = [
        (
            line["plan"],
            line["meter"] + ("/eu" if line.get("filters") else ""),
            line["quantity"],
            line["events"]["count"],
            line["events"]["last"]["event_id"],
        )
        for line in explained["lines"]
    ]
    # By hand from the events: basic (1-15 Nov) takes a1 a2 a3 and s1 s2 s5 (s2 the
    # latest timestamp); plus takes a4 a5 a6 (eu: a4 a6) and s3 s4.
    assert got == [
        ("basic", "active_users", "2", 3, "a3"),
        ("basic", "seats_now", "8", 3, "s2"),
        ("plus", "active_users", "2", 3, "a6"),
        ("plus", "active_users/eu", "1", 2, "a6"),
        ("plus", "seats_now", "6", 2, "s4"),
    ]
    assert explained["unpriced"] == {}
