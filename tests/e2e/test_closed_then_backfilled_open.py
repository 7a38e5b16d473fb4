"""A PERIOD_CLOSED event sent again by its producer (`billing backfill`, not `billing
rejected replay`) with a time in the open period: rated there, first-seen of its id at the
rater. A re-rate of the closed period must not count the same event id a second time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.local.runtime import LocalAws
from tests.e2e.test_closed_replayed_then_rerated import LATE, api_requests
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]  # the local runtime on the test clock (a fixture)


def test_an_event_backfilled_into_december_after_its_november_refusal_counts_once(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN November invoiced, late-nov refused as PERIOD_CLOSED (quarantined, claims
    # nothing), then the producer backfills the same event id stamped in December: rated
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    assert billing("backfill", str(write_lines(tmp_path / "a.jsonl", [LATE]))).exit_code == 0
    december = {**LATE, "timestamp": "2026-12-01T09:00:00+01:00"}
    again = json.loads(
        billing("backfill", str(write_lines(tmp_path / "b.jsonl", [december])), "--json").output
    )
    assert again["new"] == 1
    assert api_requests("acct-3", "2026-12") == ("100000", 1)  # December bills it
    local.firehose().drain()

    # WHEN November is re-rated with the unchanged catalog
    rerate = ok("rerate", "--period", "2026-11", "--account", "acct-3", "--json")

    # THEN late-nov, billed in December, is no November correction too (else 100,000 x
    # 0.000015 = 1.50 EUR billed twice, once per period)
    assert rerate["accounts_changed"] == 0, json.dumps(rerate["changes"], indent=1)
