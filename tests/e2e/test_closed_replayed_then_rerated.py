"""A PERIOD_CLOSED record resent (corrected into the open period) by `billing rejected
replay`, then its closed period re-rated: December bills it, and the November re-rate does
not count it again as a late event (its resend marker says it was sent on)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.local.runtime import LocalAws
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]  # the local runtime on the test clock (a fixture)

LATE = {
    "event_id": "late-nov",
    "account_id": "acct-3",
    "meter": "api_requests",
    "quantity": 100000,
    "timestamp": "2026-11-20T09:00:00+01:00",
}


def api_requests(account: str, period: str) -> tuple[str, int]:
    usage = ok("usage", account, "--period", period, "--json")
    [meter] = [m for m in usage["meters"] if m["meter"] == "api_requests"]
    return meter["quantity"], meter["events"]


def test_a_late_event_replayed_into_december_is_not_also_a_november_correction(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN November rated and invoiced, then late November API usage for acct-3 (100,000
    # requests): refused as PERIOD_CLOSED and kept in the quarantine
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    late = write_lines(tmp_path / "late.jsonl", [LATE])
    assert billing("backfill", str(late), "--json").exit_code == 0
    [row] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    # AND the operator sends it on, corrected into acct-3's open December
    fixed = {**LATE, "timestamp": "2026-12-01T09:00:00+01:00"}
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])
    replayed = ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")
    assert replayed["outcomes"]["rated"] == 1
    assert api_requests("acct-3", "2026-12") == ("100000", 1)  # December bills it
    local.firehose().drain()
    # WHEN November is re-rated with the unchanged catalog
    rerate = ok("rerate", "--period", "2026-11", "--account", "acct-3", "--json")
    # THEN the event, billed in December (100,000 x 0.000015 = 1.50 EUR), is no November
    # correction (the re-rate reports 1.79 EUR more, tax included, and 1 late event)
    assert rerate["accounts_changed"] == 0, json.dumps(rerate["changes"], indent=1)
