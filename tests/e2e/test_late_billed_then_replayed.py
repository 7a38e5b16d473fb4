"""A late event billed by a re-rate of its closed period (an adjustment invoice), then
resent from the quarantine corrected into the open period: the quarantine still lists it
as a record to work on, and its event id is claimed nowhere, so nothing stops December from
billing it a second time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.local.runtime import LocalAws
from tests.e2e.test_closed_replayed_then_rerated import LATE, api_requests
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]  # the local runtime on the test clock (a fixture)


def test_a_late_event_billed_by_a_re_rate_is_not_billed_again_when_replayed(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN November invoiced, late-nov refused as PERIOD_CLOSED, and November re-rated and
    # applied: the adjustment bills it (100,000 x 0.000015 = 1.50 EUR, 1.79 with tax)
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    assert billing("backfill", str(write_lines(tmp_path / "late.jsonl", [LATE]))).exit_code == 0
    local.firehose().drain()
    applied = billing(
        "rerate", "--period", "2026-11", "--account", "acct-3", "--apply",
        "--reason", "late usage", "--json",
    )  # fmt: skip
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.output)["accounts_changed"] == 1
    # WHEN the operator then works the quarantine: late-nov, still listed unreplayed, is
    # resent corrected into acct-3's open December
    [row] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    fixed = {**LATE, "timestamp": "2026-12-01T09:00:00+01:00"}
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])
    ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")
    # THEN December does not count the event the adjustment already billed
    assert api_requests("acct-3", "2026-12") == ("0", 0)
