"""The quarantine as a work queue (`billing rejected list|show|replay`), and what the
service did with what `billing send --wait` and `billing backfill` put on the stream,
against the local runtime on a test clock, rated by its event source mapping pollers (run
where a wait would sleep: nothing races a deadline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from billing.store.quarantine_index import INDEX_PREFIX
from billing_cli import sending
from billing_cli.local.esm import MappingSettings, ShardPoller
from billing_cli.local.runtime import QUARANTINE_BUCKET, LocalAws, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# After November 2026 ended everywhere, plus the grace time.
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
# examples/events.jsonl: 34 lines, 2 refused before sending (lines 30 and 33); of the 32
# sent, a1-api-002's resend is a duplicate, a2-api-early (before acct-2's start) and
# a6-api-late (after acct-6's end) are NOT_SUBSCRIBED, bad-2 UNKNOWN_ACCOUNT, bad-3
# UNKNOWN_METER, bad-5 (2027) FUTURE_TIMESTAMP: 32 - 1 - 5 = 26 rated.
EXAMPLE_OUTCOMES = {
    "rated": 26,
    "duplicates": 1,
    "rejected": {
        "FUTURE_TIMESTAMP": 1,
        "NOT_SUBSCRIBED": 2,
        "UNKNOWN_ACCOUNT": 1,
        "UNKNOWN_METER": 1,
    },
    "pending": 0,
}


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> Any:
    result = billing(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """The local runtime on the test clock; a wait for outcomes runs its pollers once."""
    with local_aws(clock=DECEMBER) as aws:
        pollers = aws.pollers(MappingSettings(batch_size=100))
        monkeypatch.setattr(sending, "pause", lambda _seconds: rate(pollers))
        assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
        assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0
        yield aws


def rate(pollers: list[ShardPoller]) -> None:
    while sum(poller.poll() for poller in pollers):
        pass


def sent_examples() -> dict[str, Any]:
    result = billing("send", str(EXAMPLES / "events.jsonl"), "--wait", "60", "--json")
    assert result.exit_code == 1, result.output  # two lines refused before sending
    report: dict[str, Any] = json.loads(result.output)
    return report


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def api_requests(account: str, period: str) -> tuple[str, int]:
    usage = ok("usage", account, "--period", period, "--json")
    [meter] = [m for m in usage["meters"] if m["meter"] == "api_requests"]
    return meter["quantity"], meter["events"]


# --- billing send --wait ---------------------------------------------------------------


def test_send_with_wait_reports_each_sent_records_outcome_exactly(local: LocalAws) -> None:
    report = sent_examples()

    assert (report["records"], report["sent"], report["not_sent"]) == (34, 32, 0)
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [
        (30, "MALFORMED_JSON"),
        (33, "SCHEMA_INVALID"),
    ]
    assert report["outcomes"] == EXAMPLE_OUTCOMES


def test_send_whose_wait_ends_first_says_how_many_are_still_pending(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a wait that ends before the rater polls (nothing rates in between)
    monkeypatch.setattr(sending, "pause", lambda _seconds: None)

    result = billing("send", str(EXAMPLES / "events.jsonl"), "--wait", "0")

    assert result.exit_code == 1
    assert "32 of 34 records sent" in result.output
    assert "still pending: 32" in result.output


def test_sending_the_file_again_counts_every_record_a_duplicate_or_rejected(
    local: LocalAws,
) -> None:
    sent_examples()

    again = sent_examples()

    # the 27 accepted ids are all claimed now; the 5 rejected claimed nothing and are
    # rejected again, for the same reasons
    assert again["outcomes"] == {**EXAMPLE_OUTCOMES, "rated": 0, "duplicates": 27}


# --- billing rejected list / show --------------------------------------------------------


def test_list_shows_each_rejection_newest_first_and_filters_by_listing_the_index(
    local: LocalAws,
) -> None:
    sent_examples()

    everything = ok("rejected", "list", "--json")
    not_subscribed = ok("rejected", "list", "--reason", "NOT_SUBSCRIBED", "--json")
    of_acct_1 = ok("rejected", "list", "--account", "acct-1", "--json")
    later = ok("rejected", "list", "--since", "2026-12-01T13:00:01Z", "--json")

    rows = everything["rejected"]
    # one batch, one time: newest first is then the stream's order reversed
    assert [(r["reason"], r["event_id"], r["account"]) for r in rows] == [
        ("FUTURE_TIMESTAMP", "bad-5", "acct-1"),
        ("UNKNOWN_METER", "bad-3", "acct-1"),
        ("UNKNOWN_ACCOUNT", "bad-2", "acct-99"),
        ("NOT_SUBSCRIBED", "a6-api-late", "acct-6"),
        ("NOT_SUBSCRIBED", "a2-api-early", "acct-2"),
    ]
    assert all(r["rejected_at"] == "2026-12-01T13:00:00Z" for r in rows)
    assert all(r["message"] and r["replayed"] is None for r in rows)
    assert all(r["id"].startswith("shardId-") and "/" in r["id"] for r in rows)
    # no filter: one list request per reason, then a document and a marker per row
    assert everything["s3_requests"] == {"list": 8, "get": 10, "put": 0}
    assert [r["event_id"] for r in not_subscribed["rejected"]] == ["a6-api-late", "a2-api-early"]
    assert not_subscribed["s3_requests"] == {"list": 1, "get": 4, "put": 0}
    assert [r["event_id"] for r in of_acct_1["rejected"]] == ["bad-5", "bad-3"]
    assert of_acct_1["s3_requests"] == {"list": 8, "get": 4, "put": 0}  # the rest by key
    assert (later["rejected"], later["s3_requests"]["get"]) == ([], 0)


def test_show_prints_the_whole_document_with_the_raw_record(local: LocalAws) -> None:
    sent_examples()
    [row] = ok("rejected", "list", "--reason", "UNKNOWN_ACCOUNT", "--json")["rejected"]

    shown = ok("rejected", "show", row["id"], "--json")
    missing = billing("rejected", "show", "shardId-000000000000/1")
    malformed = billing("rejected", "show", "not-an-id")

    line_31 = (EXAMPLES / "events.jsonl").read_text().splitlines()[30]
    shard_id, sequence_number = row["id"].split("/")
    assert shown == {
        "id": row["id"],
        "reason": "UNKNOWN_ACCOUNT",
        "message": shown["message"],
        "shard_id": shard_id,
        "sequence_number": sequence_number,
        "rejected_at": "2026-12-01T13:00:00Z",
        "raw": line_31,
        "replayed": None,
    }
    assert "acct-99" in shown["message"]
    assert (missing.exit_code, malformed.exit_code) == (2, 2)
    assert "no rejected record shardId-000000000000/1" in missing.output


def test_list_skips_an_index_entry_whose_document_was_never_kept(local: LocalAws) -> None:
    # GIVEN an index entry written before a ledger write that did not land (its record was
    # then rated on a later delivery): no document
    sent_examples()
    stale = f"{INDEX_PREFIX}UNKNOWN_METER/20261201T130000.000000Z/acct-1/shardId-000000000000/7"
    local.s3.put_object(Bucket=QUARANTINE_BUCKET, Key=stale, Body=b"")

    listed = ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")

    assert [r["event_id"] for r in listed["rejected"]] == ["bad-3"]
    assert listed["matched"] == 2


# --- billing rejected replay -------------------------------------------------------------


def test_replay_with_a_fix_file_rates_the_corrected_event_once(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN bad-3 rejected for its meter (gpu_hours): acct-1 has 2 API request events
    sent_examples()
    assert api_requests("acct-1", "2026-11") == ("1534000", 2)
    [row] = ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")["rejected"]
    fixed = {
        "event_id": "bad-3",
        "account_id": "acct-1",
        "meter": "api_requests",
        "quantity": 1,
        "timestamp": "2026-11-05T10:00:00Z",
    }
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])

    # WHEN it is replayed corrected, then the same fix file again
    first = ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")
    second = ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")

    # THEN it is rated once, and marked: the second run sends nothing
    assert first["outcomes"] == {"rated": 1, "duplicates": 0, "rejected": {}, "pending": 0}
    [replayed] = first["replayed"]
    assert (replayed["id"], replayed["corrected"]) == (row["id"], True)
    assert second["selected"] == []
    assert second["skipped"] == [{"id": row["id"], "why": "replayed at 2026-12-01T13:00:00Z"}]
    assert "outcomes" not in second
    assert api_requests("acct-1", "2026-11") == ("1534001", 3)
    [listed] = ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")["rejected"]
    assert listed["replayed"]["as"] == replayed["as"]
    text = billing("rejected", "list", "--reason", "UNKNOWN_METER").output
    assert f"  replayed as {replayed['as']} at 2026-12-01T13:00:00Z" in text


def test_a_replay_stopped_before_its_marker_is_sent_again_and_counts_once(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN bad-3 replayed corrected, and its marker lost (a stop between the stream
    # taking the record and the marker being written)
    sent_examples()
    [row] = ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")["rejected"]
    fixed = {
        "event_id": "bad-3",
        "account_id": "acct-1",
        "meter": "api_requests",
        "quantity": 1,
        "timestamp": "2026-11-05T10:00:00Z",
    }
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"id": row["id"], "record": fixed}])
    ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")
    local.s3.delete_object(Bucket=QUARANTINE_BUCKET, Key=f"replayed/{row['id']}.json")

    # WHEN replayed again
    again = ok("rejected", "replay", "--fix-file", str(fixes), "--wait", "60", "--json")

    # THEN it is sent again, and the rater's dedupe counts it once
    assert again["outcomes"] == {"rated": 0, "duplicates": 1, "rejected": {}, "pending": 0}
    assert api_requests("acct-1", "2026-11") == ("1534001", 3)


def test_replay_as_is_after_adding_the_missing_account(local: LocalAws, tmp_path: Path) -> None:
    # GIVEN bad-2 rejected for acct-99, which is then added
    sent_examples()
    accounts = (EXAMPLES / "accounts.yaml").read_text() + (
        "  - id: acct-99\n    name: Late Co\n    email: ap@late.example\n    plan: pro\n"
        "    timezone: UTC\n"
    )
    (tmp_path / "accounts.yaml").write_text(accounts)
    assert billing("accounts", "push", str(tmp_path / "accounts.yaml")).exit_code == 0
    rate_usage.service.cache_clear()  # a rater that starts now reads the accounts afresh

    dry = ok("rejected", "replay", "--reason", "UNKNOWN_ACCOUNT", "--dry-run", "--json")
    done = ok("rejected", "replay", "--reason", "UNKNOWN_ACCOUNT", "--wait", "60", "--json")

    assert (len(dry["selected"]), dry["replayed"]) == (1, [])
    assert done["selected"] == dry["selected"]
    assert done["outcomes"] == {"rated": 1, "duplicates": 0, "rejected": {}, "pending": 0}
    assert api_requests("acct-99", "2026-11") == ("1", 1)


def test_a_fix_file_line_not_naming_an_id_is_refused(local: LocalAws, tmp_path: Path) -> None:
    fixes = write_lines(tmp_path / "fixes.jsonl", [{"record": {"event_id": "x"}}])

    result = billing("rejected", "replay", "--fix-file", str(fixes))
    mixed = billing("rejected", "replay", "--fix-file", str(fixes), "--reason", "UNKNOWN_METER")

    assert result.exit_code == 2
    assert "fixes.jsonl:1" in result.output
    assert mixed.exit_code == 2


# --- billing backfill --------------------------------------------------------------------


def test_backfill_puts_each_late_event_in_exactly_one_place(
    local: LocalAws, tmp_path: Path
) -> None:
    # GIVEN November rated and invoiced (closed) for every account
    sent_examples()
    assert ok("invoices", "run", "--period", "2026-11", "--json")["report"]["issued"] == 6
    late = write_lines(
        tmp_path / "late.jsonl",
        [
            # new: December is open
            {
                "event_id": "late-1",
                "account_id": "acct-1",
                "meter": "api_requests",
                "quantity": 10,
                "timestamp": "2026-12-01T10:00:00Z",
            },
            # the same event again: a duplicate of the line before
            {
                "event_id": "late-1",
                "account_id": "acct-1",
                "meter": "api_requests",
                "quantity": 10,
                "timestamp": "2026-12-01T10:00:00Z",
            },
            # an id rated in November, now with a December time: still a duplicate
            {
                "event_id": "a1-api-001",
                "account_id": "acct-1",
                "meter": "api_requests",
                "quantity": 5,
                "timestamp": "2026-12-01T09:00:00Z",
            },
            # a new id for the invoiced November: PERIOD_CLOSED, kept for a re-rate
            {
                "event_id": "late-nov",
                "account_id": "acct-3",
                "meter": "exports",
                "quantity": 1,
                "timestamp": "2026-11-20T09:00:00+01:00",
            },
            # an unknown meter: rejected by the rater
            {
                "event_id": "late-2",
                "account_id": "acct-1",
                "meter": "gpu_hours",
                "quantity": 1,
                "timestamp": "2026-12-01T10:00:00Z",
            },
            # not JSON: refused before it is sent
            '{"event_id": "late-3",',
        ],
    )

    result = billing("backfill", str(late), "--json")
    text = billing("rejected", "list", "--reason", "PERIOD_CLOSED", "--json")

    assert result.exit_code == 1, result.output  # one line refused
    report = json.loads(result.output)
    assert report == {
        "records": 6,
        "new": 1,
        "duplicates": 2,
        "closed_period": 1,
        "rejected": {"UNKNOWN_METER": 1},
        "refused": {"MALFORMED_JSON": 1},
        "pending": 0,
        "not_sent": 0,
    }
    placed = report["new"] + report["duplicates"] + report["closed_period"]
    assert placed + sum(report["rejected"].values()) + sum(report["refused"].values()) == 6
    assert api_requests("acct-1", "2026-12") == ("10", 1)
    [closed] = json.loads(text.output)["rejected"]
    assert (closed["event_id"], closed["account"]) == ("late-nov", "acct-3")


def test_backfill_text_says_a_closed_period_event_is_kept_for_a_re_rate(
    local: LocalAws, tmp_path: Path
) -> None:
    sent_examples()
    late = write_lines(
        tmp_path / "late.jsonl",
        [
            {
                "event_id": "late-dec",
                "account_id": "acct-2",
                "meter": "api_requests",
                "quantity": 3,
                "timestamp": "2026-12-01T08:00:00Z",
            }
        ],
    )

    result = billing("backfill", str(late))

    assert result.exit_code == 0, result.output
    assert "1 events: 1 new (rated), 0 duplicates" in result.output
    assert "closed period: 0 (PERIOD_CLOSED, kept in the quarantine for a re-rate)" in result.output


def test_reindex_indexes_documents_kept_before_the_index_existed(local: LocalAws) -> None:
    # GIVEN rejections whose index entries are gone (kept by a rater before the index)
    sent_examples()
    before = ok("rejected", "list", "--json")["rejected"]
    listing = local.s3.list_objects_v2(Bucket=QUARANTINE_BUCKET, Prefix=INDEX_PREFIX)
    for item in listing["Contents"]:
        local.s3.delete_object(Bucket=QUARANTINE_BUCKET, Key=item["Key"])
    assert ok("rejected", "list", "--json")["rejected"] == []

    reindexed = ok("rejected", "reindex", "--json")

    # THEN one list request, and one document read and one entry written per record
    assert reindexed == {"indexed": 5, "s3_requests": {"list": 1, "get": 10, "put": 5}}
    assert ok("rejected", "list", "--json")["rejected"] == before


def test_the_text_outputs_name_ids_outcomes_and_what_a_dry_run_would_send(
    local: LocalAws,
) -> None:
    sent = billing("send", str(EXAMPLES / "events.jsonl"), "--wait", "60")
    [row] = ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")["rejected"]

    listed = billing("rejected", "list", "--account", "acct-1")
    shown = billing("rejected", "show", row["id"])
    dry = billing("rejected", "replay", "--reason", "UNKNOWN_METER", "--dry-run")

    assert sent.exit_code == 1  # two lines refused
    for line in ("rated: 26", "duplicates: 1", "rejected NOT_SUBSCRIBED: 2"):
        assert line in sent.output
    assert "still pending" not in sent.output
    assert "2 rejected records, newest first" in listed.output
    assert (
        f"\n{row['id']}\n  UNKNOWN_METER at 2026-12-01T13:00:00Z · account acct-1 · event bad-3\n"
        in listed.output
    )
    assert "bad-3" in listed.output
    assert "bad-5" in listed.output
    assert "reason: UNKNOWN_METER" in shown.output
    assert '"meter":"gpu_hours"' in shown.output
    assert (dry.exit_code, dry.output.strip()) == (0, "would send 1 of 1 selected records")
    assert ok("rejected", "list", "--reason", "UNKNOWN_METER", "--json")["rejected"] == [row]
