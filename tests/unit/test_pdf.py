"""The invoice PDF: what a reader extracts from it, and its bytes for the same input."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest

from billing.catalog import Accounts, Catalog
from billing.invoice import Invoice
from billing.pdf import Issuer, render_invoice_pdf
from billing.periods import Period
from billing.pipeline import invoice_period, invoice_run_clock, rate_records

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


@pytest.fixture(scope="module")
def invoices(example_catalog: Catalog, example_accounts: Accounts) -> dict[str, Invoice]:
    period = Period.parse("2026-11")
    now = invoice_run_clock(period, example_accounts)
    run = rate_records(EVENTS.read_bytes().splitlines(), example_catalog, example_accounts, now)
    found = invoice_period(period, example_catalog, example_accounts, run.ledger, now)
    return {invoice.account_id: invoice for invoice in found}


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_holds_number_lines_tiers_and_totals(
    invoices: dict[str, Invoice], example_accounts: Accounts
) -> None:
    pdf = render_invoice_pdf(
        invoices["acct-1"],
        example_accounts.by_id["acct-1"],
        Issuer("Example Cloud Inc.", ("1 Main Street", "Springfield"), "US-123", "ar@x.example"),
    )
    text = text_of(pdf)
    assert pdf.startswith(b"%PDF-")
    for expected in (
        "INV-2026-000001",
        "Example Cloud Inc.",
        "Tax ID: US-123",
        "Acme Ltd",
        "Account acct-1",
        "API requests",
        "1534000",
        "6.07",
        "534000 × 0.000002",  # tier 2 of the graduated charge, explained
        "1.068",
        "Storage (EU) (region: eu-west-1, eu-central-1)",
        "Seats",
        "140.00",
        "Pro plan",
        "49.00",
        "197.27 USD",
        "Tax (20%)",
        "39.45 USD",
        "Total due",
        "236.72 USD",
        "Europe/Paris",
    ):
        assert expected in text, expected


@pytest.mark.parametrize(
    ("account_id", "name"),
    [
        ("acct-3", "Müller Maschinenbau GmbH"),
        ("acct-6", "Société Océane"),
        ("acct-4", "東京データ株式会社"),
    ],
)
def test_names_in_any_script_render(
    invoices: dict[str, Invoice], example_accounts: Accounts, account_id: str, name: str
) -> None:
    text = text_of(render_invoice_pdf(invoices[account_id], example_accounts.by_id[account_id]))
    # pypdf puts a NUL before each glyph drawn from the CJK fallback font (pdftotext does
    # not); the glyphs themselves, in order, are what must be there.
    assert "".join(name.split()) in "".join(text.replace("\x00", "").split())


def test_same_invoice_gives_the_same_bytes(
    invoices: dict[str, Invoice], example_accounts: Accounts
) -> None:
    account = example_accounts.by_id["acct-2"]
    assert render_invoice_pdf(invoices["acct-2"], account) == render_invoice_pdf(
        invoices["acct-2"], account
    )
    assert "Minimum commitment" in text_of(render_invoice_pdf(invoices["acct-2"], account))
