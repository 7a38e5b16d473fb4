"""`billing invoices list` and `billing invoices show CN-…` against the local runtime: the
credit notes of voided invoices listed under their invoices, and shown (their stored
document, and their PDF written byte for byte) as invoices are.

By hand (tests/support/examples.py): INV-2026-000001 is acct-1's, subtotal 197.27 + tax
39.45 (20%) = 236.72 USD; INV-2026-000004 is acct-4's, 24701 + 2470 (10%) = 27171 JPY.
Voided, each is credited in full, so each invoice comes to 0 after its note."""

from __future__ import annotations

import json
from pathlib import Path

from billing_cli.local.runtime import LocalAws
from tests.e2e.test_invoice_commands import billing, invoiced

BUCKET = "billing-local-invoices"
__all__ = ["invoiced"]


def voided(*numbers: str) -> None:
    for number in numbers:
        result = billing("invoices", "void", number, "--reason", "billed twice")
        assert result.exit_code == 0, result.output


def test_invoices_list_shows_each_credit_note_under_its_invoice(invoiced: LocalAws) -> None:
    # GIVEN INV-2026-000001 and INV-2026-000004 voided
    voided("INV-2026-000001", "INV-2026-000004")

    # WHEN the invoices are listed as JSON
    listed = billing("invoices", "list", "--json")

    # THEN the invoices are as they were, and the credit notes beside them
    assert listed.exit_code == 0, listed.output
    answer = json.loads(listed.stdout)
    assert [i["invoice_number"] for i in answer["invoices"]] == [
        f"INV-2026-{n:06d}" for n in range(1, 7)
    ]
    notes = answer["credit_notes"]
    assert [
        (n["credit_note_number"], n["invoice_number"], n["account_id"], n["period"]) for n in notes
    ] == [
        ("CN-2026-000001", "INV-2026-000001", "acct-1", "2026-11"),
        ("CN-2026-000002", "INV-2026-000004", "acct-4", "2026-11"),
    ]
    assert [(n["subtotal"], n["tax"], n["total"], n["currency"]) for n in notes] == [
        ("197.27", "39.45", "236.72", "USD"),
        ("24701", "2470", "27171", "JPY"),
    ]
    assert {(n["correction"], n["reason"], n["status"]) for n in notes} == {
        ("void", "billed twice", "sent")
    }
    # AND the filters apply to them as to the invoices
    acct_4 = json.loads(billing("invoices", "list", "--account", "acct-4", "--json").stdout)
    assert [n["credit_note_number"] for n in acct_4["credit_notes"]] == ["CN-2026-000002"]
    october = json.loads(billing("invoices", "list", "--period", "2026-10", "--json").stdout)
    assert october == {"invoices": [], "credit_notes": [], "adjustments": []}
    bounced = json.loads(billing("invoices", "list", "--status", "bounced", "--json").stdout)
    assert bounced["credit_notes"] == []

    # AND the table has a row per note, under its invoice, its amount credited negative
    table = billing("invoices", "list").stdout.splitlines()
    rows = [line for line in table if "INV-2026-" in line or "CN-2026-" in line]
    assert [row.split()[1] for row in rows] == [
        "INV-2026-000001",
        "└",
        "INV-2026-000002",
        "INV-2026-000003",
        "INV-2026-000004",
        "└",
        "INV-2026-000005",
        "INV-2026-000006",
    ]
    cells = [[cell.strip() for cell in rows[at].split("│")[1:-1]] for at in (1, 5)]
    assert cells == [
        ["└ CN-2026-000001 (void)", "acct-1", "2026-11", "-236.72 USD", "sent"],
        ["└ CN-2026-000002 (void)", "acct-4", "2026-11", "-27171 JPY", "sent"],
    ]


def test_invoices_show_prints_a_credit_note_and_writes_its_pdf(
    invoiced: LocalAws, tmp_path: Path
) -> None:
    voided("INV-2026-000001")
    pdf = tmp_path / "credit-note.pdf"

    shown = billing("invoices", "show", "CN-2026-000001", "--pdf", str(pdf), "--json")

    assert shown.exit_code == 0, shown.output
    answer = json.loads(shown.stdout)
    stored = json.loads(invoiced.object(BUCKET, "invoices/acct-1/2026-11/CN-2026-000001.json"))
    assert answer["credit_note"] == stored
    note = answer["credit_note"]
    assert (note["subtotal"], note["tax"], note["total"]) == ("197.27", "39.45", "236.72")
    assert (note["invoice_total"], note["invoice_total_after"]) == ("236.72", "0.00")
    assert (note["invoice_number"], note["reason"]) == ("INV-2026-000001", "billed twice")
    assert answer["record"]["status"] == "sent"
    key = "invoices/acct-1/2026-11/CN-2026-000001.pdf"
    assert pdf.read_bytes() == invoiced.object(BUCKET, key)
    assert pdf.read_bytes().startswith(b"%PDF-")

    # AND for a person: the note, what it corrects, and the total credited
    text = billing("invoices", "show", "CN-2026-000001").stdout
    words = " ".join(text.split())  # the title wraps to the table's width
    assert "CN-2026-000001 · acct-1 · 2026-11 · corrects INV-2026-000001" in words
    assert "void: billed twice" in words
    [total] = [line for line in text.splitlines() if "total credited" in line]
    assert total.replace("│", " ").split() == ["total", "credited", "236.72"]


def test_invoices_show_of_an_unknown_credit_note_says_so(invoiced: LocalAws) -> None:
    result = billing("invoices", "show", "CN-2026-000099")
    assert result.exit_code == 2
    assert "no credit note CN-2026-000099" in result.output
    assert "Traceback" not in result.output


def test_invoices_show_of_an_invoice_names_its_corrections_and_where_it_stands(
    invoiced: LocalAws,
) -> None:
    # GIVEN INV-2026-000001 (236.72 USD) uncorrected
    before = json.loads(billing("invoices", "show", "INV-2026-000001", "--json").stdout)
    # THEN it has no corrections and stands at its total
    assert before["corrections"] == {"documents": [], "stands_at": "236.72"}
    text = billing("invoices", "show", "INV-2026-000001").stdout
    assert "corrections: none; stands at its total, 236.72 USD" in text

    # WHEN it is voided
    voided("INV-2026-000001")
    shown = billing("invoices", "show", "INV-2026-000001", "--json")

    # THEN its credit note is listed, as stored (its total what it credits), and the invoice
    # stands at 236.72 − 236.72 = 0.00 by its record's `credited`
    assert shown.exit_code == 0, shown.output
    corrections = json.loads(shown.stdout)["corrections"]
    [note] = corrections["documents"]
    assert (note["number"], note["kind"], note["correction"], note["status"]) == (
        "CN-2026-000001",
        "credit_note",
        "void",
        "sent",
    )
    assert (note["subtotal"], note["tax"], note["total"], note["currency"]) == (
        "197.27",
        "39.45",
        "236.72",
        "USD",
    )
    assert corrections["stands_at"] == "0.00"
    # AND for a person: the note's amount negative (credited), and where the invoice stands
    text = billing("invoices", "show", "INV-2026-000001").stdout
    [row] = [line for line in text.splitlines() if "CN-2026-000001" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == [
        "CN-2026-000001",
        "credit note",
        "void",
        "-236.72",
        "sent",
    ]
    assert "stands at: 0.00 USD after 1 correction(s) (issued at 236.72 USD)" in text
    # AND an invoice of another account lists none of them
    other = json.loads(billing("invoices", "show", "INV-2026-000004", "--json").stdout)
    assert other["corrections"] == {"documents": [], "stands_at": "27171"}
