"""`billing run` on the example files: the contract's outputs, with hand-computed totals."""

from __future__ import annotations

import email
import json
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from billing_cli.main import app
from tests.support.examples import EXAMPLE_INVOICES, EXAMPLE_SUMMARY, invoice_view

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Worked out by hand in tests/support/examples.py (each line, rounding and tax written out).
TOTALS = {
    "acct-1": ("236.72", "USD"),
    "acct-2": ("50.00", "USD"),
    "acct-3": ("13.41", "EUR"),
    "acct-4": ("27171", "JPY"),
    "acct-5": ("19.994", "KWD"),
    "acct-6": ("6.80", "EUR"),
}


def invoke_run(out: Path, *extra: str, accounts: Path = EXAMPLES / "accounts.yaml") -> Result:
    """`billing run` on the example catalog and events for November, with `--json`."""
    return CliRunner().invoke(
        app,
        [
            "run",
            "--catalog", str(EXAMPLES / "catalog.yaml"),
            "--accounts", str(accounts),
            "--events", str(EXAMPLES / "events.jsonl"),
            "--period", "2026-11",
            "--out", str(out),
            "--json",
            *extra,
        ],
    )  # fmt: skip


def billing_run(out: Path) -> None:
    result = invoke_run(out)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run") / "out"  # created by the run
    billing_run(folder)
    return folder


def totals(folder: Path) -> dict[str, tuple[str, str]]:
    found = {}
    for path in sorted((folder / "invoices").glob("*.json")):
        document = json.loads(path.read_text())
        assert path.stem == document["invoice_number"]
        found[document["account_id"]] = (document["total"], document["currency"])
    return found


def test_every_invoice_total_is_the_hand_computed_one(out: Path) -> None:
    assert totals(out) == TOTALS
    documents = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    assert {d["account_id"]: invoice_view(d) for d in documents} == EXAMPLE_INVOICES
    numbers = sorted(p.stem for p in (out / "invoices").glob("*.json"))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    assert sorted(p.stem for p in (out / "invoices").glob("*.pdf")) == numbers


def test_summary_accounts_for_every_record(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary == EXAMPLE_SUMMARY
    assert summary["rated"] + summary["duplicates"] + sum(summary["rejected"].values()) == 34


def test_rejected_records_keep_reason_message_and_raw_text(out: Path) -> None:
    lines = (out / "rejected.jsonl").read_text().splitlines()
    rejected = [json.loads(line) for line in lines]
    assert [r["reason"] for r in rejected] == [
        "NOT_SUBSCRIBED",
        "NOT_SUBSCRIBED",
        "MALFORMED_JSON",
        "UNKNOWN_ACCOUNT",
        "UNKNOWN_METER",
        "SCHEMA_INVALID",
        "FUTURE_TIMESTAMP",
    ]
    source = (EXAMPLES / "events.jsonl").read_text().splitlines()
    assert [r["raw"] for r in rejected] == [source[i] for i in (15, 28, 29, 30, 31, 32, 33)]
    assert all(r["message"] for r in rejected)


def test_emails_parse_with_their_pdf(out: Path) -> None:
    emails = sorted((out / "emails").glob("*.eml"))
    assert [p.stem for p in emails] == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        assert path.stem in str(message["Subject"])
        (attachment,) = message.iter_attachments()
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_content() == (out / "invoices" / f"{path.stem}.pdf").read_bytes()


def test_a_second_run_gives_the_same_totals(out: Path, tmp_path: Path) -> None:
    billing_run(tmp_path / "again")
    assert totals(tmp_path / "again") == totals(out)


def test_a_run_with_an_invoice_that_failed_exits_non_zero_naming_the_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-4's PDF cannot be rendered
    import billing.invoicing.issue

    original = billing.invoicing.issue.render_invoice_pdf

    def failing(invoice: Any, account: Any, issuer: Any) -> bytes:
        if account.id == "acct-4":
            raise TypeError("unsupported operand type(s)")
        return original(invoice, account, issuer)

    monkeypatch.setattr(billing.invoicing.issue, "render_invoice_pdf", failing)

    # WHEN `billing run` runs
    result = invoke_run(tmp_path / "out")

    # THEN it still writes what it issued, but exits 1 and names the account and why
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["run"]["failed"] == 1
    assert "acct-4 2026-11: failed: TypeError: unsupported operand type(s)" in result.stderr
    assert len(list((tmp_path / "out" / "invoices").glob("*.json"))) == 5


def test_a_clock_before_some_accounts_are_due_names_them_and_when_they_will_be(
    tmp_path: Path,
) -> None:
    # GIVEN a clock of 2026-11-30 20:00 UTC. November plus the hour's grace ends, in UTC:
    # Kiritimati (UTC+14) 11:00, Tokyo (+9) 16:00, Kuwait (+3) 22:00, Paris and Berlin (+1)
    # 1 December 00:00, New York (-5) 1 December 06:00.
    result = invoke_run(tmp_path / "out", "--now", "2026-11-30T20:00:00Z")

    # THEN only acct-6 (Kiritimati) and acct-4 (Tokyo) are invoiced; nothing failed
    assert result.exit_code == 0, result.output
    assert sorted(totals(tmp_path / "out")) == ["acct-4", "acct-6"]
    # AND the others are named, with when each will be due, in the JSON and on stderr
    expected = [
        ("acct-5", "2026-11-30T22:00:00Z"),
        ("acct-1", "2026-12-01T00:00:00Z"),
        ("acct-3", "2026-12-01T00:00:00Z"),
        ("acct-2", "2026-12-01T06:00:00Z"),
    ]
    document = json.loads(result.stdout)
    assert [(d["account_id"], d["due_at"]) for d in document["not_due"]] == expected
    assert result.stderr.splitlines() == [
        f"{account} 2026-11: not invoiced: not due until {at} "
        "(the run's clock is 2026-11-30T20:00:00Z)"
        for account, at in expected
    ]


def test_discounts_are_applied_in_order_after_every_other_line(tmp_path: Path) -> None:
    # GIVEN acct-1 with a 10% discount and a 20.00 one for November
    import yaml

    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    document["accounts"][0]["discounts"] = [
        {"id": "launch", "percent": "10", "from": "2026-11", "periods": 3},
        {"id": "goodwill", "amount": "20.00", "from": "2026-11", "periods": 1},
    ]
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    result = invoke_run(tmp_path / "out", accounts=accounts)
    assert result.exit_code == 0, result.output
    (invoice,) = [
        json.loads(path.read_text())
        for path in (tmp_path / "out" / "invoices").glob("*.json")
        if json.loads(path.read_text())["account_id"] == "acct-1"
    ]
    # THEN lines before the discounts: 6.07 + 1.20 + 0.50 + 140.00 + 0.50 + 49.00 = 197.27;
    # launch 10% of 197.27 = 19.727 → 19.73 (177.54 left); goodwill 20.00 → 157.54;
    # tax 157.54 × 0.20 = 31.508 → 31.51; total 189.05, all of it due (no credits)
    assert [line["amount"] for line in invoice["lines"][-2:]] == ["-19.73", "-20.00"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("157.54", "31.51", "189.05")
    assert (invoice["credits"], invoice["credits_applied"], invoice["amount_due"]) == (
        [],
        "0.00",
        "189.05",
    )
