"""examples/subscriptions (an upgrade, a discount, prepaid credits) through `billing run`
as `make examples` runs it: every line and total worked out by hand."""

from __future__ import annotations

import email
import json
from pathlib import Path
from typing import Any

import pypdf
import pytest
from typer.testing import CliRunner

from billing_cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("subscriptions") / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--catalog", str(EXAMPLES / "catalog.yaml"),
            "--accounts", str(EXAMPLES / "subscriptions" / "accounts.yaml"),
            "--events", str(EXAMPLES / "subscriptions" / "events.jsonl"),
            "--period", "2026-11",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def invoices(out: Path) -> dict[str, dict[str, Any]]:
    documents = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    return {document["account_id"]: document for document in documents}


def lines(document: dict[str, Any]) -> list[tuple[str | None, ...]]:
    keys = ("kind", "meter", "plan", "from", "quantity", "amount")
    return [tuple(each.get(key) for key in keys) for each in document["lines"]]


def test_the_upgrade_the_discount_and_the_grant(invoices: dict[str, dict[str, Any]]) -> None:
    # acct-7, America/New_York: Team from 1 to 14 November (14 of 30 days), Pro from 15.
    # Team: api 400,000 × 0.000004 = 1.60; seats 8 × 15.00 = 120.00;
    #       fixed 19.00 × 14/30 = 8.8666… → 8.87
    # Pro:  api 2,500,000 graduated: 1,000,000 free, 1,500,000 × 0.000002 = 3.00 + 5.00
    #       = 8.00; storage EU and US 0; seats 14 volume tier 2: 14 × 10.00 + 20.00 = 160.00;
    #       exports 0; fixed 49.00 × 16/30 = 26.1333… → 26.13; minimum 100.00 × 16/30 →
    #       53.33, below 8.00 + 160.00 + 26.13 = 194.13, so no minimum line
    # launch 10% of 1.60 + 120.00 + 8.87 + 8.00 + 160.00 + 26.13 = 324.60: −32.46
    # subtotal 292.14, no tax; prepay-1 (200.00 from 1 October) pays 200.00; due 92.14
    team, pro = ("team", "2026-11-01"), ("pro", "2026-11-15")
    assert lines(invoices["acct-7"]) == [
        ("usage", "api_requests", *team, "400000", "1.60"),
        ("usage", "seats", *team, "8", "120.00"),
        ("fixed", None, *team, "1", "8.87"),
        ("usage", "api_requests", *pro, "2500000", "8.00"),
        ("usage", "storage_gb_hours", *pro, "0", "0.00"),
        ("usage", "storage_gb_hours", *pro, "0", "0.00"),
        ("usage", "seats", *pro, "14", "160.00"),
        ("usage", "exports", *pro, "0", "0.00"),
        ("fixed", None, *pro, "1", "26.13"),
        ("discount", None, None, None, "1", "-32.46"),
    ]
    initech = invoices["acct-7"]
    assert [line["to"] for line in initech["lines"][:9]] == ["2026-11-15"] * 3 + ["2026-12-01"] * 6
    assert (initech["subtotal"], initech["tax"], initech["total"]) == ("292.14", "0.00", "292.14")
    assert initech["credits"] == [{"id": "prepay-1", "amount": "200.00"}]
    assert (initech["credits_applied"], initech["amount_due"]) == ("200.00", "92.14")


def test_the_grant_that_expires_first_is_drawn_first(invoices: dict[str, dict[str, Any]]) -> None:
    # acct-8 on Pro all month, tax 0.20: api 1,200,000 → 200,000 × 0.000002 = 0.40 + 5.00
    # = 5.40; seats 3 × 12.00 = 36.00; fixed 49.00; 90.40 is below the 100.00 minimum:
    # minimum line 9.60; subtotal 100.00, tax 20.00, total 120.00.
    # promo (expires 1 December) first: 25.00; then prepay (no expiry): 95.00; due 0.00
    hooli = invoices["acct-8"]
    assert [(line["kind"], line["amount"]) for line in hooli["lines"]] == [
        ("usage", "5.40"),
        ("usage", "0.00"),
        ("usage", "0.00"),
        ("usage", "36.00"),
        ("usage", "0.00"),
        ("fixed", "49.00"),
        ("minimum", "9.60"),
    ]
    assert (hooli["subtotal"], hooli["tax"], hooli["total"]) == ("100.00", "20.00", "120.00")
    assert hooli["credits"] == [
        {"id": "promo", "amount": "25.00"},
        {"id": "prepay", "amount": "95.00"},
    ]
    assert (hooli["credits_applied"], hooli["amount_due"]) == ("120.00", "0.00")


def test_an_invoice_paid_in_full_by_credits_asks_for_nothing(
    out: Path, invoices: dict[str, dict[str, Any]]
) -> None:
    number = invoices["acct-8"]["invoice_number"]
    pdf = " ".join(
        page.extract_text() for page in pypdf.PdfReader(out / "invoices" / f"{number}.pdf").pages
    )
    assert "Paid with prepaid credits" in pdf
    assert "Nothing to pay: this invoice is paid with prepaid credits." in pdf
    assert "Please pay" not in pdf
    message = email.message_from_bytes((out / "emails" / f"{number}.eml").read_bytes())
    assert message["Subject"] == f"Invoice {number}: paid with prepaid credits"
    # acct-7 still owes 92.14: its PDF asks for it
    owed = invoices["acct-7"]["invoice_number"]
    text = " ".join(
        page.extract_text() for page in pypdf.PdfReader(out / "invoices" / f"{owed}.pdf").pages
    )
    assert f"Please pay $92.14 by Dec 31, 2026, quoting invoice number {owed}." in text
