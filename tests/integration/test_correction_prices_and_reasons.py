"""Corrections through the Send function, on moto: a re-rate's documents carry each line's
unit price from the corrected invoice's details, and a reason the documents cannot print
is refused before a number is taken."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.corrections.corrected import CorrectedInvoice
from billing.corrections.credit_notes import CorrectionRefused
from billing.store.documents import document_key
from billing.store.invoice_store import InvoiceStore
from tests.integration.conftest import Aws
from tests.integration.test_correction_issuing import stored
from tests.integration.test_credit_note_issuing import (
    INVOICE_LINES,
    ISSUED_AT,
    Recorded,
    bucket,
    credit_note_items,
    service,
    table,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]


def _priced_requests(quantity: str, amount: str, unit_price: str) -> dict[str, Any]:
    """The API requests line priced per unit: one step over its whole quantity (what makes
    `InvoiceLine.unit_price`)."""
    return {
        "kind": "usage", "meter": "api_requests", "description": "API requests",
        "quantity": quantity, "amount": amount, "unit": "requests",
        "details": [{"description": "units", "quantity": quantity, "unit_price": unit_price,
                     "amount": amount}],
    }  # fmt: skip


def _issued_with_unit_price(aws: Aws, bucket: str) -> None:
    """INV-2026-000001 of acct-1 as CONTRACT.md's example but with 607 API requests at
    $0.01 (6.07): 6.07 + 0 + 49.00 + 44.93 = 100.00, tax 20 % 20.00, total 120.00."""
    lines: list[dict[str, Any]] = [dict(line) for line in INVOICE_LINES]
    lines[0] = _priced_requests("607", "6.07", "0.01")
    store = InvoiceStore(aws.dynamodb, table(aws))
    [record] = store.number(
        [("acct-1", "2026-11")], ISSUED_AT, lambda n, _: f"INV-2026-{n:06d}"
    ).values()
    document = {
        "invoice_number": record.invoice_number, "account_id": "acct-1", "period": "2026-11",
        "period_start": "2026-11-01T00:00:00+00:00", "period_end": "2026-12-01T00:00:00+00:00",
        "issued_at": "2026-12-01T06:00:00Z", "currency": "USD", "lines": lines,
        "subtotal": "100.00", "tax": "20.00", "total": "120.00", "credits": [],
        "credits_applied": "0.00", "amount_due": "120.00",
    }  # fmt: skip
    keys = [document_key("acct-1", "2026-11", record.invoice_number, e) for e in ("json", "pdf")]
    aws.s3.put_object(Bucket=bucket, Key=keys[0], Body=json.dumps(document).encode())
    store.mark_stored(
        record, total="120.00", subtotal="100.00", tax="20.00", currency="USD",
        json_key=keys[0], pdf_key=keys[1], token="test",
    )  # fmt: skip


def test_a_rerate_credit_note_issued_by_the_send_function_carries_the_unit_price(
    aws: Aws, bucket: str
) -> None:
    _issued_with_unit_price(aws, bucket)
    # GIVEN the corrected invoice `billing rerate --apply` sends (invoice_json, with each
    # line's details): 500 requests at $0.01 = 5.00, the rest as issued.
    # 5.00 + 0 + 49.00 + 44.93 = 98.93; tax round(98.93 × 0.2 = 19.786) = 19.79; 118.72
    lines: list[dict[str, Any]] = [dict(line) for line in INVOICE_LINES]
    lines[0] = _priced_requests("500", "5.00", "0.01")
    corrected = CorrectedInvoice.model_validate(
        {
            "invoice_number": "INV-2026-000001", "account_id": "acct-1", "period": "2026-11",
            "issued_at": "2026-12-01T06:00:00Z", "currency": "USD", "lines": lines,
            "subtotal": "98.93", "tax": "19.79", "total": "118.72",
        }
    )  # fmt: skip
    # WHEN the Send function issues the correction
    outcome = service(aws, bucket, Recorded()).correct("acct-1", "2026-11", "re-rated", corrected)
    assert outcome.credit_note is not None
    document = stored(aws, bucket, outcome.credit_note.json_key)
    # THEN its line credits 607 − 500 = 107 requests, 6.07 − 5.00 = 1.07, and names the
    # price per unit the line stands at after it: $0.01 (docs/invoicing.md, unit_price),
    # read from the corrected invoice's details
    [credited] = document["lines"]
    assert (credited["quantity"], credited["amount"]) == ("107", "1.07")
    assert credited.get("unit_price") == "0.01"


def test_a_reason_the_document_fonts_cannot_draw_is_refused(aws: Aws, bucket: str) -> None:
    _issued_with_unit_price(aws, bucket)
    # GIVEN a reason in Thai ("billing error"), a script the invoice fonts do not draw
    # (billing.fonts.missing lists every letter of it)
    reason = "ข้อผิดพลาดในการเรียกเก็บเงิน"
    # WHEN the invoice is voided with it; THEN it is refused, as a seller's name or a
    # customer's address in Thai is (billing.core.fields.printable), nothing numbered
    with pytest.raises(CorrectionRefused):
        service(aws, bucket, Recorded()).void("acct-1", "2026-11", reason)
    assert credit_note_items(aws) == []
