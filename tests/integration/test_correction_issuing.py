"""A correction both ways on moto (billing.corrections.credit_notes `correct`): its credit
note, then its adjustment invoice, under one correction key, each numbered once in its own
sequence; a retry after an attempt that stopped finishes the first and issues the second,
and a further one issues nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.corrections.corrected import CorrectedInvoice
from billing.corrections.credit_notes import CorrectionRefused
from billing.store.credit_notes import ADJUSTMENT_SEQUENCE_KEY
from tests.integration.conftest import Aws
from tests.integration.test_credit_note_issuing import (
    INVOICE_LINES,
    Died,
    PdfDies,
    Recorded,
    bucket,
    issued_invoice,
    last_number,
    service,
    table,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]


def corrected() -> CorrectedInvoice:
    """INV-2026-000001 (100.00 + 20.00 tax) corrected: API requests 6.07 → 5.00, the plan
    49.00 → 52.00, the minimum commitment 44.93 → 43.33: 100.33, tax round(20.066) = 20.07,
    total 120.40."""
    lines: list[dict[str, Any]] = [dict(line) for line in INVOICE_LINES]
    lines[0]["amount"], lines[2]["amount"], lines[3]["amount"] = "5.00", "52.00", "43.33"
    return CorrectedInvoice.model_validate(
        {
            "invoice_number": "INV-2026-000001",
            "account_id": "acct-1",
            "period": "2026-11",
            "issued_at": "2026-12-01T06:00:00Z",
            "currency": "USD",
            "lines": lines,
            "subtotal": "100.33",
            "tax": "20.07",
            "total": "120.40",
        }
    )


def stored(aws: Aws, bucket: str, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return document


def test_a_correction_both_ways_is_one_credit_note_and_one_adjustment_across_a_stop(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    PdfDies.died = False
    # GIVEN a correction that stops once its credit note is numbered and its JSON stored
    with pytest.raises(Died):
        service(aws, bucket, recorded, documents=PdfDies).correct(
            "acct-1", "2026-11", "re-rated", corrected()
        )
    assert (recorded.emails, recorded.events) == ([], [])
    # WHEN it is applied again
    outcome = service(aws, bucket, recorded).correct("acct-1", "2026-11", "re-rated", corrected())
    note, adjustment = outcome.credit_note, outcome.adjustment
    assert note is not None
    assert adjustment is not None
    # THEN the credit note is finished: 1.07 + 1.60 (the minimum, derived: with the credit)
    # = 2.67; tax 20.00 − round(97.33 × 0.2 = 19.466) = 0.53; total 3.20
    assert (note.credit_note_number, note.new, note.email) == ("CN-2026-000001", False, "sent")
    assert (note.subtotal, note.tax, note.total) == ("2.67", "0.53", "3.20")
    # AND the adjustment charges the plan's 3.00; tax 20.07 − 19.47 = 0.60; total 3.60
    assert (adjustment.adjustment_number, adjustment.new) == ("ADJ-2026-000001", True)
    assert (adjustment.subtotal, adjustment.tax, adjustment.total) == ("3.00", "0.60", "3.60")
    assert adjustment.correction == note.correction == outcome.correction
    # 120.00 − 3.20 + 3.60 = 120.40, the corrected total, to the cent
    charged = stored(aws, bucket, adjustment.json_key)
    assert (charged["invoice_total"], charged["invoice_total_after"]) == ("120.00", "120.40")
    assert [(line["invoice_line"], line["amount"]) for line in charged["lines"]] == [(2, "3.00")]
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued", "AdjustmentIssued"]
    assert len(recorded.emails) == 2
    # AND a third apply issues nothing: the same two documents, no email, no event
    again = service(aws, bucket, recorded).correct("acct-1", "2026-11", "again", corrected())
    assert again.credit_note is not None
    assert again.adjustment is not None
    assert (again.credit_note.new, again.adjustment.new) == (False, False)
    assert (len(recorded.emails), len(recorded.events)) == (2, 2)
    assert last_number(aws) == 1
    sequence = aws.dynamodb.get_item(TableName=table(aws), Key=ADJUSTMENT_SEQUENCE_KEY)["Item"]
    assert sequence["last"]["N"] == "1"


def test_a_voided_invoice_is_not_corrected(aws: Aws, bucket: str) -> None:
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    with pytest.raises(CorrectionRefused, match="INV-2026-000001 was voided by CN-2026-000001"):
        service(aws, bucket, recorded).correct("acct-1", "2026-11", "re-rated", corrected())
    assert last_number(aws) == 1


def test_a_corrected_document_for_another_invoice_is_refused(aws: Aws, bucket: str) -> None:
    issued_invoice(aws, bucket, "acct-1")
    other = corrected().model_copy(update={"invoice_number": "INV-2026-000009"})
    with pytest.raises(CorrectionRefused, match="invoice number is 'INV-2026-000009'"):
        service(aws, bucket, Recorded()).correct("acct-1", "2026-11", "re-rated", other)


def test_a_void_landing_while_a_correction_is_numbered_refuses_the_correction(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an issued invoice, and a void that lands after the correction checked for one
    # and before its credit note's numbering transaction
    issued_invoice(aws, bucket, "acct-1")
    notes = service(aws, bucket, Recorded())
    voiding = service(aws, bucket, Recorded())
    number = type(notes._notes).number
    landed: list[bool] = []

    def void_first(store: Any, invoice: Any, correction: str, *args: Any, **kwargs: Any) -> Any:
        if correction != "void" and not landed:
            landed.append(True)
            voiding.void("acct-1", "2026-11", "billed twice")
        return number(store, invoice, correction, *args, **kwargs)

    monkeypatch.setattr(type(notes._notes), "number", void_first)
    # WHEN the correction goes on, THEN it is refused: the invoice stands voided
    with pytest.raises(CorrectionRefused, match="was voided by CN-2026-000001"):
        notes.correct("acct-1", "2026-11", "price typed wrong", corrected())
    # AND only the void's credit note was numbered; no adjustment charges the invoice again
    assert landed == [True]
    assert last_number(aws) == 1
    adjustments = aws.dynamodb.get_item(TableName=table(aws), Key=ADJUSTMENT_SEQUENCE_KEY)
    assert "Item" not in adjustments
