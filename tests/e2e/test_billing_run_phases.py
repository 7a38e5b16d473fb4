"""`billing run` with plan changes (CONTRACT.md 2a, "Phases" and "Rating under phases"):
exact invoice JSON for an upgrade in the middle of November, worked out by hand."""

from __future__ import annotations

import email
import json
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from billing.core.catalog import parse_accounts, parse_catalog
from billing.core.periods import Period
from billing_cli.main import app
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records

CATALOG = """
meters:
  - {name: api, unit: request, aggregation: sum}
plans:
  - id: starter
    name: Starter
    currency: USD
    fixed_fee: "10.00"
    minimum_commitment: "30.00"
    charges:
      - meter: api
        model: graduated
        tiers:
          - {up_to: 100, unit_price: "0"}
          - {up_to: null, unit_price: "0.10", flat_fee: "1.00"}
  - id: pro
    name: Pro
    currency: USD
    fixed_fee: "49.00"
    minimum_commitment: "100.00"
    charges:
      - meter: api
        model: graduated
        tiers:
          - {up_to: 100, unit_price: "0"}
          - {up_to: null, unit_price: "0.05"}
"""

ACCOUNTS = """
accounts:
  - id: acct-up
    name: Upgrader
    email: ap@up.example
    plan: starter
    timezone: America/New_York
    tax_rate: "0.10"
    start: "2026-09-01"
    changes:
      - {effective: "2026-11-15", plan: pro}
  - id: acct-before
    name: Upgraded in October
    email: ap@before.example
    plan: starter
    timezone: Europe/Paris
    start: "2026-09-01"
    changes:
      - {effective: "2026-10-01", plan: pro}
  - id: acct-after
    name: Downgrades in December
    email: ap@after.example
    plan: pro
    timezone: UTC
    changes:
      - {effective: "2026-12-01", plan: starter}
"""

# acct-up's local midnight starting 15 November is 05:00Z (New York is on EST, UTC-5).
# (event id, account, quantity, timestamp)
EVENTS = [
    ("u1", "acct-up", 150, "2026-11-10T12:00:00Z"),
    ("u2", "acct-up", 10, "2026-11-15T04:59:59Z"),
    ("u3", "acct-up", 10, "2026-11-15T05:00:00Z"),
    ("u4", "acct-up", 250, "2026-11-20T12:00:00Z"),
    ("b1", "acct-before", 300, "2026-11-05T00:00:00Z"),
    ("f1", "acct-after", 120, "2026-11-30T23:00:00Z"),
]


def _line(kind: str, phase: dict[str, str] | None, **fields: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"kind": kind}
    if "meter" in fields:
        line["meter"] = fields.pop("meter")
    line.update(phase or {})
    line.update(fields)
    return line


STARTER = {"plan": "starter", "from": "2026-11-01", "to": "2026-11-15"}
PRO = {"plan": "pro", "from": "2026-11-15", "to": "2026-12-01"}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("phases")
    (folder / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (folder / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    lines = [
        json.dumps({"event_id": e, "account_id": a, "meter": "api", "quantity": q, "timestamp": t})
        for e, a, q, t in EVENTS
    ]
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--catalog", str(folder / "catalog.yaml"),
            "--accounts", str(folder / "accounts.yaml"),
            "--events", str(folder / "events.jsonl"),
            "--period", "2026-11",
            "--out", str(folder / "out"),
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "out" / "summary.json").read_text())["rated"] == 6
    return folder / "out"


@pytest.fixture(scope="module")
def invoices(out: Path) -> dict[str, dict[str, Any]]:
    documents = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    return {document["account_id"]: document for document in documents}


def test_the_email_names_each_phase_of_its_lines_and_the_total(
    out: Path, invoices: dict[str, dict[str, Any]]
) -> None:
    number = invoices["acct-up"]["invoice_number"]
    message = email.message_from_bytes(
        (out / "emails" / f"{number}.eml").read_bytes(), policy=default
    )
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "api (starter: 2026-11-01 – 2026-11-14): 7.00 USD" in text
    assert "Minimum commitment (pro: 2026-11-15 – 2026-11-30): 19.20 USD" in text
    assert "Total due: 74.06 USD" in text


def test_an_upgrade_mid_period_invoices_each_phase_over_its_part(
    invoices: dict[str, dict[str, Any]],
) -> None:
    invoice = invoices["acct-up"]
    # Starter, 1-14 Nov (14 of 30 days): api 150 + 10 = 160, tier 2 takes 60 × 0.10 = 6.00
    # plus its flat fee 1.00 = 7.00; fixed 10.00 × 14/30 = 4.666.. → 4.67; minimum
    # 30.00 × 14/30 = 14.00, and 7.00 + 4.67 = 11.67 is below it by 2.33.
    # Pro, 15-30 Nov (16 days): tiers start again at 0: 10 + 250 = 260, 160 × 0.05 = 8.00;
    # fixed 49.00 × 16/30 = 26.133.. → 26.13; minimum 100.00 × 16/30 = 53.333.. → 53.33,
    # and 8.00 + 26.13 = 34.13 is below it by 19.20.
    # Subtotal 7.00 + 4.67 + 2.33 + 8.00 + 26.13 + 19.20 = 67.33; tax 6.733 → 6.73; 74.06.
    details = [
        [
            (d["description"], d["quantity"], d.get("unit_price"), d["amount"][:8])
            for d in line.pop("details")
        ]
        for line in invoice["lines"]
    ]
    assert details == [
        [
            ("tier 1", "100", "0", "0"),
            ("tier 2", "60", "0.10", "6.00"),
            ("tier 2 flat fee", "1", None, "1.00"),
        ],
        [("14 of 30 days", "14", None, "4.666666")],  # 10.00 × 14 / 30, exact, then rounded
        [("14 of 30 days", "14", None, "14.00")],
        [("tier 1", "100", "0", "0"), ("tier 2", "160", "0.05", "8.00")],
        [("16 of 30 days", "16", None, "26.13333")],
        [("16 of 30 days", "16", None, "53.33333")],
    ]  # fmt: skip
    assert invoice == {
        "invoice_number": invoice["invoice_number"],
        "account_id": "acct-up",
        "period": "2026-11",
        "period_start": "2026-11-01T00:00:00-04:00",
        "period_end": "2026-12-01T00:00:00-05:00",
        "issued_at": "2026-12-01T06:00:00Z",
        "currency": "USD",
        "lines": [
            _line("usage", STARTER, meter="api", description="api", quantity="160",
                  amount="7.00", unit="request"),
            _line("fixed", STARTER, description="Starter plan", quantity="1", amount="4.67"),
            _line("minimum", STARTER, description="Minimum commitment", quantity="1",
                  amount="2.33"),
            _line("usage", PRO, meter="api", description="api", quantity="260", amount="8.00",
                  unit="request"),
            _line("fixed", PRO, description="Pro plan", quantity="1", amount="26.13"),
            _line("minimum", PRO, description="Minimum commitment", quantity="1",
                  amount="19.20"),
        ],
        "subtotal": "67.33",
        "tax": "6.73",
        "total": "74.06",
        "credits": [],
        "credits_applied": "0.00",
        "amount_due": "74.06",
    }  # fmt: skip


def test_a_period_inside_one_phase_is_priced_by_that_phase_alone(
    invoices: dict[str, dict[str, Any]],
) -> None:
    # acct-before is on pro all November: 300 - 100 free = 200 × 0.05 = 10.00; fixed 49.00;
    # minimum 100.00 - 59.00 = 41.00; no tax. acct-after moves on 1 December: pro all
    # November, 20 × 0.05 = 1.00 + 49.00, minimum 50.00. Neither carries plan/from/to.
    for account in ("acct-before", "acct-after"):
        lines = invoices[account]["lines"]
        assert all(not {"plan", "from", "to"} & line.keys() for line in lines)
        assert [line["description"] for line in lines][1:] == ["Pro plan", "Minimum commitment"]
    assert [line["amount"] for line in invoices["acct-before"]["lines"]] == [
        "10.00",
        "49.00",
        "41.00",
    ]
    assert invoices["acct-before"]["total"] == "100.00"
    assert [line["amount"] for line in invoices["acct-after"]["lines"]] == [
        "1.00",
        "49.00",
        "50.00",
    ]
    assert invoices["acct-after"]["total"] == "100.00"


def test_the_in_memory_preview_invoices_the_phases_as_the_run_does(
    invoices: dict[str, dict[str, Any]],
) -> None:
    catalog = parse_catalog(yaml.safe_load(CATALOG))
    accounts = parse_accounts(yaml.safe_load(ACCOUNTS), catalog)
    november = Period(2026, 11)
    now = invoice_run_clock(november, accounts)
    records = [
        json.dumps({"event_id": e, "account_id": a, "meter": "api", "quantity": q, "timestamp": t})
        for e, a, q, t in EVENTS
    ]
    run = rate_records([r.encode() for r in records], catalog, accounts, now)
    previewed = invoice_period(november, catalog, accounts, run.ledger, now)
    for invoice in previewed:
        document = invoice.to_json()
        issued = invoices[invoice.account_id]
        assert [(line["amount"], line.get("plan")) for line in document["lines"]] == [
            (line["amount"], line.get("plan")) for line in issued["lines"]
        ]
        assert document["total"] == issued["total"]
