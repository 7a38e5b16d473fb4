"""Corrections in the warehouse (docs/warehouse.md): a credit note's document becomes a
`corrections` row and its `correction_lines`, signed by their effect on what the invoice
charges, and the revenue example nets them out of the month they correct."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from billing_cli import warehouse
from billing_cli.main import app
from tests.integration.test_archive_replay import examples_run

pytestmark = pytest.mark.integration

D = Decimal


def test_a_void_lowers_the_revenue_of_the_month_it_corrects(tmp_path: Path) -> None:
    # GIVEN the examples invoiced, then acct-2's invoice (50.00: 0.10 of usage, the 24.50
    # plan, the 25.40 minimum; no tax) voided in December
    with examples_run():
        voided = CliRunner().invoke(
            app, ["invoices", "void", "INV-2026-000002", "--reason", "closed account", "--json"]
        )
        assert voided.exit_code == 0, voided.output
        result = CliRunner().invoke(
            app, ["query", "--example", "revenue-by-plan", "--dir", str(tmp_path), "--json"]
        )
        assert result.exit_code == 0, result.output
    # THEN pro's November revenue is acct-1's alone: 247.27 − 50.00 = 197.27; the rest as before
    _, revenue = warehouse.query(tmp_path, warehouse.EXAMPLE_QUERIES["revenue-by-plan"])
    assert revenue == [
        ("business-jpy", "2026-11", "JPY", D("24701")),
        ("gulf-kwd", "2026-11", "KWD", D("19.994")),
        ("pro", "2026-11", "USD", D("197.27")),
        ("starter-eur", "2026-11", "EUR", D("17.72")),
    ]
    # AND the credit note is a row of its own, signed by its effect, in the month it corrects
    _, corrections = warehouse.query(
        tmp_path,
        "SELECT document_number, kind, invoice_number, period, plan_id, subtotal_change, "
        "tax_change, total_change, invoice_total_after FROM corrections",
    )
    assert corrections == [
        ("CN-2026-000001", "credit_note", "INV-2026-000002", "2026-11", "pro",
         D("-50.00"), D("0.00"), D("-50.00"), D("0.00")),
    ]  # fmt: skip
    # AND its lines name the invoice lines they credit (from 1), quantities and amounts
    # negative: every line with a quantity or an amount (750,000 free requests, 1,000
    # GB-hours for 0.10, the plan, the minimum: 0.10 + 24.50 + 25.40 = 50.00); lines 2, 4
    # and 5 (0 of an unused charge) are not credited
    _, lines = warehouse.query(
        tmp_path,
        "SELECT invoice_line_number, kind, quantity_change, amount_change "
        "FROM correction_lines ORDER BY line_number",
    )
    assert lines == [
        (1, "usage", D(-750000), D("0")),
        (3, "usage", D(-1000), D("-0.10")),
        (6, "fixed", D(-1), D("-24.50")),
        (7, "minimum", D(-1), D("-25.40")),
    ]
