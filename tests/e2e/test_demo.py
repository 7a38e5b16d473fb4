"""`billing demo` on a small generated workload: it runs end to end and balances."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from billing_cli.main import app


def test_demo_runs_end_to_end_and_every_record_is_accounted_for(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--accounts", "12", "--events", "1500", "--out", str(tmp_path / "demo")]
    )

    assert result.exit_code == 0, result.output
    assert "records in = rated + duplicates + rejected: 1,500 = " in result.output
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["records"] == 1500
    assert summary["rated"] + summary["duplicates"] + sum(summary["rejected"].values()) == 1500
    assert summary["duplicates"] > 0
    assert set(summary["rejected"]) >= {"MALFORMED_JSON", "UNKNOWN_ACCOUNT"}
    invoices = sorted((tmp_path / "demo" / "invoices").glob("*.json"))
    assert len(invoices) == 12
    documents = {d["account_id"]: d for d in (json.loads(p.read_text()) for p in invoices)}
    # Customers 1, 6 and 11 have a launch discount; 3 and 10 prepaid credits (demo.py).
    discounted = {a for a, d in documents.items() if d["lines"][-1]["kind"] == "discount"}
    assert discounted == {"cust-0001", "cust-0006", "cust-0011"}
    assert all(documents[a]["credits"] for a in ("cust-0003", "cust-0010"))
    assert len(list((tmp_path / "demo" / "emails").glob("*.eml"))) == 12


def test_demo_json_reports_counts_and_the_time_of_each_part(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--accounts", "5", "--events", "300", "--out", str(out), "--json"]
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["summary"] == json.loads((out / "summary.json").read_text())
    assert document["summary"]["records"] == 300
    assert (document["run"]["issued"], document["run"]["emailed"]) == (5, 5)
    assert set(document["seconds"]) == {"send_seconds", "rate_seconds", "invoice_seconds"}
    assert all(seconds > 0 for seconds in document["seconds"].values())
    assert document["invoices"] == str(out / "invoices")
