"""`billing demo` on a small generated workload: it runs end to end and balances."""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from billing.customer.gateway_answers import PORTAL_PAGE
from billing_cli.commands import pipeline
from billing_cli.local.runtime import LocalAws
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


def test_demo_serve_ends_with_a_portal_link_that_reads_its_customers_invoice_and_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "demo"
    seen: dict[str, Any] = {}

    def instead_of_waiting_for_ctrl_c(aws: LocalAws, *_: Any, **__: Any) -> None:
        # what a browser opening the printed link does, while the demo serves
        sys.stdout.flush()  # the runner's: what the demo printed so far
        printed = sys.stdout.buffer.getvalue().decode()  # type: ignore[attr-defined]
        [link] = re.findall(r"http://127\.0\.0\.1:\d+/live/portal#\S+", printed)
        base, _, fragment = link.partition("portal#")
        query = urllib.parse.parse_qs(fragment)
        [account], [token] = query["account"], query["token"]
        seen["account"] = account
        with urllib.request.urlopen(base + "portal") as page:
            seen["page"] = page.read().decode()
        headers = {"Authorization": f"Bearer {token}"}
        listed = fetch(f"{base}v1/accounts/{account}/invoices", headers)
        [record] = listed["invoices"]
        one = fetch(f"{base}v1/accounts/{account}/invoices/{record['invoice_number']}", headers)
        seen["number"] = record["invoice_number"]
        with urllib.request.urlopen(one["pdf_url"]) as pdf:
            seen["pdf"] = pdf.read()

    monkeypatch.setattr(pipeline, "serve_until_interrupted", instead_of_waiting_for_ctrl_c)
    arguments = ["demo", "--accounts", "3", "--events", "200", "--out", str(out), "--serve"]
    result = CliRunner().invoke(app, [*arguments, "--port", "0", "--customer-api-port", "0"])

    assert result.exit_code == 0, result.output
    assert seen["account"] == "cust-0000"  # the first customer
    assert seen["page"] == PORTAL_PAGE
    assert seen["pdf"] == (out / "invoices" / f"{seen['number']}.pdf").read_bytes()
    assert "records in = rated + duplicates + rejected: 200 = " in result.output


def fetch(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())
