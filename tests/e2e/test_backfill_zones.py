"""`billing backfill` of one instant that is in December for an account in Tokyo (open) and
in November for one in New York (invoiced): each event in exactly one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.local.runtime import LocalAws
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]


def api(event_id: str, account: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "account_id": account,
        "meter": "api_requests",
        "quantity": 7,
        "timestamp": "2026-11-30T20:00:00Z",
    }


def test_one_instant_open_in_tokyo_closed_in_new_york(local: LocalAws, tmp_path: Path) -> None:
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    late = write_lines(tmp_path / "late.jsonl", [api("z-tokyo", "acct-4"), api("z-ny", "acct-2")])
    result = billing("backfill", str(late), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["new"], report["closed_period"], report["duplicates"]) == (1, 1, 0)
    [closed] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    assert (closed["event_id"], closed["account"]) == ("z-ny", "acct-2")
    usage = ok("usage", "acct-4", "--period", "2026-12", "--json")
    [meter] = [m for m in usage["meters"] if m["meter"] == "api_requests"]
    assert (meter["quantity"], meter["events"]) == ("7", 1)
