"""A credit note's PDF (billing.corrections.credit_note_pdf), read back with pypdf: what a
finance team looks for, drawn by the invoice's layout."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pypdf

from billing.core.catalog import Account
from billing.core.corrections import adjustment_note, void_note
from billing.core.credit_notes import Credited, IssuedInvoice, LineCredited
from billing.core.seller import Issuer
from billing.corrections.credit_note_pdf import render_credit_note_pdf
from tests.unit.test_credit_notes import invoice, line
from tests.unit.test_pdf import readable

ISSUER = Issuer(name="Example Cloud Ltd", address=("1 Main Street",), email="billing@cloud.example")
ACCOUNT = Account.model_validate(
    {
        "id": "acct-1",
        "name": "Acme Corp",
        "email": "billing@acme.example",
        "plan": "pro",
        "timezone": "UTC",
    }
)
INVOICE = {
    "invoice_number": "INV-2026-000042",
    "account_id": "acct-1",
    "period": "2026-11",
    "period_start": "2026-11-01T00:00:00+00:00",
    "period_end": "2026-12-01T00:00:00+00:00",
    "issued_at": "2026-12-01T01:15:00Z",
    "currency": "USD",
    "lines": [
        {"kind": "usage", "meter": "api_requests", "description": "API requests",
         "quantity": "1534000", "amount": "6.07"},
        {"kind": "usage", "meter": "exports", "description": "Exports", "quantity": "0",
         "amount": "0.00"},
        {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
        {"kind": "minimum", "description": "Minimum commitment", "quantity": "1",
         "amount": "44.93"},
    ],
    "subtotal": "100.00",
    "tax": "20.00",
    "total": "120.00",
}  # fmt: skip


def test_the_credit_note_pdf_names_itself_the_invoice_it_corrects_and_what_it_credits() -> None:
    # GIVEN CONTRACT.md's example invoice, voided on 10 December
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(INVOICE))),
        Credited(),
        number="CN-2026-000007",
        reason="Billed twice for November",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )
    # WHEN it is rendered
    pdf = render_credit_note_pdf(note, ACCOUNT, ISSUER)
    # THEN it is the same bytes each time, one page, titled as a credit note
    assert render_credit_note_pdf(note, ACCOUNT, ISSUER) == pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    assert reader.metadata is not None
    assert reader.metadata.title == "Credit note CN-2026-000007"
    text = readable(reader.pages[0].extract_text())
    # AND it says what it is, what it corrects, when and why
    for expected in (
        "Credit note",
        "Credit note number CN-2026-000007",
        "Date of issue Dec 10, 2026",
        "Corrects invoice INV-2026-000042",
        "Invoice date Dec 1, 2026",
        "Reason Billed twice for November",
        "Bill to Acme Corp",
        "$120.00 credited to invoice INV-2026-000042",
    ):
        assert expected in text, expected
    # AND each line credited, with the invoice line it corrects (1-based, as printed)
    for expected in (
        "API requests Invoice line 1 1,534,000 $6.07",
        "Pro plan Invoice line 3 1 $49.00",
        "Minimum commitment Invoice line 4 1 $44.93",
    ):
        assert expected in text, expected
    assert "Exports" not in text  # nothing of it to credit
    # AND the totals, and the invoice's before and after
    for expected in (
        "Subtotal $100.00",
        "Tax $20.00",
        "Total credited $120.00",
        "Invoice INV-2026-000042 total $120.00",
        "Invoice total after this credit note $0.00",
        "Settlement This credit note reduces invoice INV-2026-000042 by $120.00.",
    ):
        assert expected in text, expected


def test_the_adjustment_pdf_is_titled_and_worded_for_a_charge() -> None:
    # GIVEN the example invoice's plan corrected 49.00 → 52.00: 103.00, tax 20.60, 123.60
    source = IssuedInvoice.from_document(json.loads(json.dumps(INVOICE)))
    corrected = invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("usage", "Exports", "0", "0.00", meter="exports"),
        line("fixed", "Pro plan", "1", "52.00"),
        line("minimum", "Minimum commitment", "1", "44.93"),
        rate="0.2",
    )
    adjustment = adjustment_note(
        source, Credited(), corrected, number="ADJ-2026-000003", correction="rerate:x",
        reason="Plan price raised late", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    pdf = render_credit_note_pdf(adjustment, ACCOUNT, ISSUER)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert reader.metadata is not None
    assert reader.metadata.title == "Adjustment invoice ADJ-2026-000003"
    text = readable(reader.pages[0].extract_text())
    # 3.00 + tax round(103.00 × 0.2) − 20.00 = 0.60: 3.60 due; the invoice comes to 123.60
    for expected in (
        "Adjustment number ADJ-2026-000003",
        "Adjusts invoice INV-2026-000042",
        "$3.60 due in addition to invoice INV-2026-000042",
        "Pro plan Invoice line 3 0 $3.00",  # the same one plan, priced 3.00 higher
        "Total due $3.60",
        "Invoice total after this adjustment $123.60",
    ):
        assert expected in text, expected
    assert "credit" not in text.lower()


def test_an_adjustment_after_a_credit_note_shows_where_the_invoice_stood() -> None:
    # GIVEN the example invoice (120.00) already credited 1.07 + tax 0.21 by a credit note:
    # it stands at 118.72; then corrected to 123.60 (the plan 49.00 → 52.00, the API line
    # back at 6.07)
    source = IssuedInvoice.from_document(json.loads(json.dumps(INVOICE)))
    credited = Credited(
        lines={0: LineCredited(Decimal(0), Decimal("1.07"))},
        tax=Decimal("0.21"),
        notes=("CN-2026-000001",),
    )
    corrected = invoice(
        line("usage", "API requests", "1534000", "6.07", meter="api_requests"),
        line("usage", "Exports", "0", "0.00", meter="exports"),
        line("fixed", "Pro plan", "1", "52.00"),
        line("minimum", "Minimum commitment", "1", "44.93"),
        rate="0.2",
    )
    adjustment = adjustment_note(
        source, credited, corrected, number="ADJ-2026-000004", correction="rerate:y",
        reason="Plan price raised late", issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    text = readable(
        pypdf.PdfReader(io.BytesIO(render_credit_note_pdf(adjustment, ACCOUNT, ISSUER)))
        .pages[0]
        .extract_text()
    )
    # THEN the page ties out: 120.00, then 118.72 after the credit note, + 4.88 = 123.60
    # (4.07 of lines: 1.07 + 3.00; tax round(103.00 × 0.2) − (20.00 − 0.21) = 0.81)
    for expected in (
        "Invoice INV-2026-000042 total $120.00",
        "Invoice total after earlier corrections $118.72",
        "Total due $4.88",
        "Invoice total after this adjustment $123.60",
    ):
        assert expected in text, expected
