"""The billed markers `billing rerate --apply` writes for the late events an invoiced
period's correction billed: written only once the Send function answered, shown by
`billing rejected list`, honoured by `billing rejected replay`, written again by an apply
run again (a stop between the answer and the markers), and never taken by a re-rate for
a resend (the correction still counts what it billed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing_cli import operations
from billing_cli.local.runtime import QUARANTINE_BUCKET, LocalAws
from tests.e2e.test_closed_replayed_then_rerated import LATE, api_requests
from tests.e2e.test_quarantine_commands import billing, local, ok, sent_examples, write_lines

pytestmark = pytest.mark.e2e
__all__ = ["local"]  # the local runtime on the test clock (a fixture)

APPLY = ("rerate", "--period", "2026-11", "--account", "acct-3", "--apply", "--reason", "late")


def late_in_quarantine(local: LocalAws, tmp_path: Path) -> dict[str, Any]:
    """November invoiced, then LATE refused as PERIOD_CLOSED: its quarantine row."""
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    assert billing("backfill", str(write_lines(tmp_path / "late.jsonl", [LATE]))).exit_code == 0
    local.firehose().drain()
    [row] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    return dict(row)


def billed_keys(local: LocalAws) -> list[str]:
    listed = local.s3.list_objects_v2(Bucket=QUARANTINE_BUCKET, Prefix="billed/")
    return [item["Key"] for item in listed.get("Contents", [])]


def resent_into_december(tmp_path: Path, row: dict[str, Any]) -> Any:
    fixed = {**LATE, "timestamp": "2026-12-01T09:00:00+01:00"}
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])
    return ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")


def test_a_refused_correction_marks_nothing_billed_and_the_record_stays_to_work(
    local: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the late event in the quarantine, and a Send function that refuses the
    # correction (another one landed first, say)
    row = late_in_quarantine(local, tmp_path)

    def refused(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise operations.OperationError("another correction landed first")

    monkeypatch.setattr(operations, "correct_invoice", refused)
    # WHEN the apply runs
    [applied] = ok(*APPLY, "--json")["applied"]
    # THEN it is refused, no marker is written, and the row is still one to work
    assert (applied["outcome"], applied["reason"]) == (
        "refused",
        "another correction landed first",
    )
    assert billed_keys(local) == []
    [listed] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    assert (listed["id"], listed["billed"], listed["replayed"]) == (row["id"], None, None)
    # AND resending it into December bills it there, once: 100,000 requests
    assert [marked["id"] for marked in resent_into_december(tmp_path, row)["replayed"]] == [
        row["id"]
    ]
    assert api_requests("acct-3", "2026-12") == ("100000", 1)


def test_a_billed_late_event_is_listed_billed_and_replay_skips_it(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN the late event billed by an adjustment of November
    row = late_in_quarantine(local, tmp_path)
    [applied] = ok(*APPLY, "--json")["applied"]
    number = applied["adjustment"]["number"]
    assert applied["outcome"] == "adjusted"
    # THEN one marker, at the record's position, naming the correction
    assert billed_keys(local) == [f"billed/{row['id']}.json"]
    [listed] = ok("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")["rejected"]
    assert {k: listed["billed"][k] for k in ("account_id", "period", "documents")} == {
        "account_id": "acct-3",
        "period": "2026-11",
        "documents": [number],
    }
    shown = ok("rejected", "show", row["id"], "--json")
    assert shown["billed"]["documents"] == [number]
    text = billing("rejected", "list", "--reason", "PERIOD_CLOSED")
    assert f"billed by the correction of 2026-11 ({number})" in text.output
    # WHEN it is replayed as it was (no fix file): skipped, named, nothing sent
    replayed = ok("rejected", "replay", "--reason", "PERIOD_CLOSED", "--json")
    assert (replayed["selected"], replayed["replayed"]) == ([], [])
    assert replayed["skipped"] == [
        {"id": row["id"], "why": f"billed by the correction of 2026-11 ({number})"}
    ]
    # AND a re-rate of November still counts it (billed there, not resent elsewhere)
    rerated = ok("rerate", "--period", "2026-11", "--account", "acct-3", "--json")
    assert [change["late_events"] for change in rerated["changes"]] == [1]


def test_an_apply_run_again_writes_a_lost_marker_again(local: LocalAws, tmp_path: Path) -> None:
    # GIVEN the late event billed, then its marker lost (the CLI stopped between the Send
    # function's answer and the marker)
    row = late_in_quarantine(local, tmp_path)
    [first] = ok(*APPLY, "--json")["applied"]
    number = first["adjustment"]["number"]
    local.s3.delete_object(Bucket=QUARANTINE_BUCKET, Key=f"billed/{row['id']}.json")
    # WHEN the apply runs again: the invoice already stands at the re-rated one
    [again] = ok(*APPLY, "--json")["applied"]
    assert (again["outcome"], again["reason"]) == ("unchanged", "the invoice stands corrected")
    # THEN the marker is back, naming the adjustment the invoice stands after, and a
    # resend is skipped: December does not count the event
    marker = json.loads(local.object(QUARANTINE_BUCKET, f"billed/{row['id']}.json"))
    assert marker["documents"] == [number]
    assert resent_into_december(tmp_path, row)["replayed"] == []
    assert api_requests("acct-3", "2026-12") == ("0", 0)
