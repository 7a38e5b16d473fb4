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
    assert len(list((tmp_path / "demo" / "emails").glob("*.eml"))) == 12
