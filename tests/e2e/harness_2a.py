"""Runs `billing run` on dicts (written as YAML/JSONL files) and compares the invoices it
writes with the independent oracle's, line by line and field by field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from billing_cli.main import app
from tests.e2e import oracle_2a as oracle


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    out: Path
    invoices: dict[str, dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return json.loads((self.out / "summary.json").read_text())  # type: ignore[no-any-return]

    def rejected(self) -> list[dict[str, Any]]:
        text = (self.out / "rejected.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line]


def run(
    folder: Path,
    catalog: dict[str, Any] | str,
    accounts: dict[str, Any] | str,
    events: list[dict[str, Any]],
    period: str,
    extra: tuple[str, ...] = (),
) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("catalog.yaml", catalog), ("accounts.yaml", accounts)):
        body = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        (folder / name).write_text(body, encoding="utf-8")
    (folder / "events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events), encoding="utf-8"
    )
    out = folder / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--catalog", str(folder / "catalog.yaml"),
            "--accounts", str(folder / "accounts.yaml"),
            "--events", str(folder / "events.jsonl"),
            "--period", period,
            "--out", str(out),
            *extra,
        ],
    )  # fmt: skip
    invoices: dict[str, dict[str, Any]] = {}
    if (out / "invoices").is_dir():
        for path in (out / "invoices").glob("*.json"):
            document = json.loads(path.read_text())
            invoices[document["account_id"]] = document
    return Run(result.exit_code, result.stdout, result.stderr, out, invoices)


PHASE_KEYS = ("plan", "from", "to")


def comparable(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The project's invoice cut down to the fields the oracle computes: quantities as
    Decimals, phase fields kept only where the oracle has them (the contract lets a
    one-phase invoice carry them: their meaning is checked apart)."""
    lines = []
    for got, want in zip(
        actual["lines"], expected["lines"] + [{}] * len(actual["lines"]), strict=False
    ):
        cut = {k: got[k] for k in want if k in got}
        for key in ("kind", "meter", "filters", "discount", "amount", *PHASE_KEYS):
            if key in got and key not in cut and key not in PHASE_KEYS:
                cut[key] = got[key]
        if "quantity" in got:
            cut["quantity"] = Decimal(got["quantity"])
        lines.append(cut)
    keys = [k for k in expected if k != "lines"]
    return {k: actual.get(k) for k in keys} | {"lines": lines}


def expected_for(
    catalog: dict[str, Any], account: dict[str, Any], events: list[dict[str, Any]], period: str
) -> dict[str, Any]:
    document: dict[str, Any] = oracle.invoice(catalog, account, events, period)
    return document
