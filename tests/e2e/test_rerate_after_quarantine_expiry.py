"""The archive keeps every record for ever, and a re-rate tells the records the rater
refused by the quarantine's index and documents: so the quarantine keeps them as long
(stacks/ingest.py: only staged documents expire, after 7 days). A re-rate of an old
period must not count again what the rater refused then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing.store.quarantine import STAGED_PREFIX
from billing_cli.local.runtime import QUARANTINE_BUCKET, LocalAws
from tests.e2e.test_closed_replayed_then_rerated import LATE
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]  # the local runtime on the test clock (a fixture)


def test_a_re_rate_after_the_quarantine_expired_finds_what_it_found_before(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN November invoiced, late-nov refused as PERIOD_CLOSED and resent corrected into
    # December (which bills it): a re-rate of November finds nothing to correct
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    assert billing("backfill", str(write_lines(tmp_path / "l.jsonl", [LATE]))).exit_code == 0
    [row] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    fixed = {**LATE, "timestamp": "2026-12-01T09:00:00+01:00"}
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])
    ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")
    local.firehose().drain()
    before = ok("rerate", "--period", "2026-11", "--account", "acct-3", "--json")
    assert before["accounts_changed"] == 0

    # WHEN the quarantine's lifecycle has expired everything it expires (years on): the
    # staged documents, the only prefix a rule of the stack expires (tests/infra/
    # test_stack.py holds the stack to that)
    listed = local.s3.list_objects_v2(Bucket=QUARANTINE_BUCKET).get("Contents", [])
    expired = [item["Key"] for item in listed if item["Key"].startswith(STAGED_PREFIX)]
    for key in expired:
        local.s3.delete_object(Bucket=QUARANTINE_BUCKET, Key=key)
    after = ok("rerate", "--period", "2026-11", "--account", "acct-3", "--json")

    # THEN the archive still says the same: late-nov, billed in December, is no November
    # correction (else 1.50 EUR + tax billed twice)
    assert after["accounts_changed"] == 0, json.dumps(after["changes"], indent=1)
