"""A credit note long enough for several pages: each continuation page names the document
for what it is (a credit note), never as an invoice."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pypdf

from billing.core.corrections import void_note
from billing.core.credit_notes import Credited, IssuedInvoice
from billing.corrections.credit_note_pdf import render_credit_note_pdf
from tests.unit.test_credit_note_pdf import ACCOUNT, INVOICE, ISSUER
from tests.unit.test_pdf import readable

# 60 lines of 1.00 each: subtotal 60.00, tax 20% = 12.00, total 72.00
LINES = [
    {"kind": "usage", "meter": "api_requests", "description": f"API requests {n}",
     "quantity": "100", "amount": "1.00"}
    for n in range(1, 61)
]  # fmt: skip
LONG = {**INVOICE, "lines": LINES, "subtotal": "60.00", "tax": "12.00", "total": "72.00"}


def test_a_credit_notes_continuation_pages_do_not_call_it_an_invoice() -> None:
    note = void_note(
        IssuedInvoice.from_document(json.loads(json.dumps(LONG))),
        Credited(),
        number="CN-2026-000009",
        reason="Charged in error",
        issued_at=datetime(2026, 12, 10, 9, 30, tzinfo=UTC),
    )
    reader = pypdf.PdfReader(io.BytesIO(render_credit_note_pdf(note, ACCOUNT, ISSUER)))
    assert len(reader.pages) > 1
    for page in reader.pages[1:]:
        text = readable(page.extract_text())
        assert "Invoice CN-2026-000009" not in text, text[:120]
        assert "Credit note CN-2026-000009 (continued)" in text, text[:120]
