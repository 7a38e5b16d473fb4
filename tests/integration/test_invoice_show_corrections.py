"""`billing invoices show INV-…` of a corrected invoice, on the local runtime: its
adjustment invoice and credit note listed in the order they were issued, and where the
invoice stands after each (its record's `credited`); a runtime of its own (it pushes a
price)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from billing.store.documents import document_key
from billing_cli.local.runtime import INVOICE_BUCKET
from billing_cli.main import app
from tests.integration.test_archive_replay import examples_run
from tests.integration.test_rerate_credit import REASON, by_account, push_tier_price, rerate

pytestmark = pytest.mark.integration


def billing(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def corrections_of(number: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(billing("invoices", "show", number, "--json").stdout)
    return dict(shown["corrections"])


def table_rows(text: str, starts: tuple[str, ...]) -> list[list[str]]:
    """The cells of a printed table's rows whose first cell starts with one of `starts`."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    return [cells for cells in rows if cells and cells[0].startswith(starts)]


def test_show_lists_an_invoices_adjustment_and_credit_note_and_where_it_stands(
    tmp_path: Path,
) -> None:
    with examples_run() as run:
        # GIVEN INV-2026-000001 (236.72 USD) re-rated with its tier at 0.000003: charged
        # 0.53 + tax 0.11 = 0.64 more by ADJ-2026-000001 (tests/integration/
        # test_rerate_adjustment.py works it out)
        push_tier_price(run, tmp_path, "0.000003")
        applied = by_account(rerate("--apply", "--reason", REASON))["acct-1"]
        assert applied["adjustment"]["number"] == "ADJ-2026-000001"

        # WHEN it is shown
        corrections = corrections_of("INV-2026-000001")
        # THEN the adjustment is listed as stored, and the invoice stands at
        # 236.72 + 0.64 = 237.36
        [adjustment] = corrections["documents"]
        assert (adjustment["number"], adjustment["kind"], adjustment["total"]) == (
            "ADJ-2026-000001",
            "adjustment",
            "0.64",
        )
        assert adjustment["correction"].startswith("rerate:")
        assert corrections["stands_at"] == "237.36"

        # WHEN it is then voided: the credit note credits what stands, 237.36
        billing("invoices", "void", "INV-2026-000001", "--reason", "billed twice")
        corrections = corrections_of("INV-2026-000001")
        # THEN both are listed, in the order they were issued, and it stands at
        # 237.36 − 237.36 = 0.00
        assert [(d["number"], d["kind"], d["total"]) for d in corrections["documents"]] == [
            ("ADJ-2026-000001", "adjustment", "0.64"),
            ("CN-2026-000001", "credit_note", "237.36"),
        ]
        assert corrections["stands_at"] == "0.00"
        # AND for a person: each amount signed by its effect on what is owed (the
        # adjustment's charge positive, the credit note's credit negative)
        text = billing("invoices", "show", "INV-2026-000001").stdout
        rows = {cells[0]: (cells[1], cells[3]) for cells in table_rows(text, ("ADJ-", "CN-"))}
        assert rows == {
            "ADJ-2026-000001": ("adjustment", "0.64"),
            "CN-2026-000001": ("credit note", "-237.36"),
        }
        assert "stands at: 0.00 USD after 2 correction(s) (issued at 236.72 USD)" in text

        # AND the adjustment shows as stored, its PDF written byte for byte
        pdf = tmp_path / "adjustment.pdf"
        shown = json.loads(
            billing("invoices", "show", "ADJ-2026-000001", "--json", "--pdf", str(pdf)).stdout
        )
        assert (shown["adjustment"]["adjustment_number"], shown["adjustment"]["total"]) == (
            "ADJ-2026-000001",
            "0.64",
        )
        assert shown["record"]["kind"] == "adjustment"
        stored = run.aws.object(
            INVOICE_BUCKET, document_key("acct-1", "2026-11", "ADJ-2026-000001", "pdf")
        )
        assert pdf.read_bytes() == stored
        # AND the list names both under the invoice, signed
        listed = json.loads(billing("invoices", "list", "--account", "acct-1", "--json").stdout)
        assert [(a["adjustment_number"], a["total"]) for a in listed["adjustments"]] == [
            ("ADJ-2026-000001", "0.64")
        ]
        assert [(n["credit_note_number"], n["total"]) for n in listed["credit_notes"]] == [
            ("CN-2026-000001", "237.36")
        ]
        text = billing("invoices", "list", "--account", "acct-1").stdout
        rows = {cells[0].split()[1]: cells[3] for cells in table_rows(text, ("└",))}
        assert rows == {"ADJ-2026-000001": "0.64 USD", "CN-2026-000001": "-237.36 USD"}
