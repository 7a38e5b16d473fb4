"""`billing run` with every rule of CONTRACT 2a on one invoice: a plan change mid-period
(fixed fees prorated per phase), a percentage discount after all lines, tax, and a prepaid
credit drawn into `amount_due`. Amounts worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from billing_cli.main import app

CATALOG = """
meters:
  - {name: api_calls, unit: call, aggregation: sum}
plans:
  - id: starter
    name: Starter
    currency: USD
    fixed_fee: "30.00"
    charges: [{meter: api_calls, model: per_unit, unit_price: "0.01"}]
  - id: pro
    name: Pro
    currency: USD
    fixed_fee: "90.00"
    charges: [{meter: api_calls, model: per_unit, unit_price: "0.005"}]
"""
ACCOUNTS = """
accounts:
  - id: acct-1
    name: Acme
    email: billing@acme.example
    plan: starter
    timezone: UTC
    tax_rate: "0.10"
    start: "2026-10-01"
    changes: [{effective: "2026-11-16", plan: pro}]
    discounts: [{id: launch, percent: "10", from: "2026-11", periods: 1}]
    credits: [{id: c1, amount: "50.00", granted: "2026-10-01"}]
"""


def calls(event_id: str, quantity: int, at: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": "acct-1",
            "meter": "api_calls",
            "quantity": quantity,
            "timestamp": at,
        }
    )


def test_phases_discount_tax_and_credit_on_one_invoice(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (tmp_path / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    events = [calls("e1", 1000, "2026-11-05T10:00:00Z"), calls("e2", 2000, "2026-11-20T10:00:00Z")]
    (tmp_path / "events.jsonl").write_text("\n".join(events) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--catalog",
            str(tmp_path / "catalog.yaml"),
            "--accounts",
            str(tmp_path / "accounts.yaml"),
            "--events",
            str(tmp_path / "events.jsonl"),
            "--period",
            "2026-11",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    (invoice,) = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]

    # November has 30 days: Starter from 1 to 15 (15 days), Pro from 16 to 30 (15 days).
    # Starter: 1,000 calls × 0.01 = 10.00; fixed 30.00 × 15/30 = 15.00
    # Pro:     2,000 calls × 0.005 = 10.00; fixed 90.00 × 15/30 = 45.00
    # launch 10% of 10.00 + 15.00 + 10.00 + 45.00 = 80.00: −8.00; subtotal 72.00
    # tax 72.00 × 0.10 = 7.20; total 79.20; c1 pays min(79.20, 50.00) = 50.00; due 29.20
    def line(each: dict[str, Any]) -> tuple[str | None, ...]:
        return (each["kind"], each.get("plan"), each.get("from"), each.get("to"), each["amount"])

    assert sorted(map(line, invoice["lines"]), key=str) == sorted(
        [
            ("usage", "starter", "2026-11-01", "2026-11-16", "10.00"),
            ("fixed", "starter", "2026-11-01", "2026-11-16", "15.00"),
            ("usage", "pro", "2026-11-16", "2026-12-01", "10.00"),
            ("fixed", "pro", "2026-11-16", "2026-12-01", "45.00"),
            ("discount", None, None, None, "-8.00"),
        ],
        key=str,
    )
    assert invoice["lines"][-1]["discount"] == "launch"  # after every phase's lines
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("72.00", "7.20", "79.20")
    assert invoice["credits"] == [{"id": "c1", "amount": "50.00"}]
    assert (invoice["credits_applied"], invoice["amount_due"]) == ("50.00", "29.20")
