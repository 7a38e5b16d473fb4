"""Corrections of one invoice one after another, on moto: each starts where the documents
before it left the invoice (`after`), so a second re-rate, a price typed back and a return
to the invoice as issued are each one document of the exact difference; a correction
re-rated before another landed is refused, never applied from the wrong place; and one
that stopped between its two documents finishes the first and refuses the second once
another correction has landed in between."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from billing.corrections.corrected import CorrectedInvoice
from billing.corrections.credit_notes import CorrectionRefused
from billing.corrections.outcomes import CorrectionOutcome
from billing.store.credit_notes import ADJUSTMENT_SEQUENCE_KEY, CREDIT_NOTE_SEQUENCE_KEY
from tests.integration.conftest import Aws
from tests.integration.test_correction_issuing import corrected, stored
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

REASON = "re-rated"


def document(api: str, minimum: str, subtotal: str, tax: str, total: str) -> CorrectedInvoice:
    """INV-2026-000001 (API requests 6.07, exports 0.00, plan 49.00, minimum 44.93; tax
    20 %) with API requests and the minimum at the given amounts, and its totals as
    computed by hand."""
    lines: list[dict[str, Any]] = [dict(line) for line in INVOICE_LINES]
    lines[0]["amount"], lines[3]["amount"] = api, minimum
    return CorrectedInvoice.model_validate(
        {
            "invoice_number": "INV-2026-000001",
            "account_id": "acct-1",
            "period": "2026-11",
            "issued_at": "2026-12-01T06:00:00Z",
            "currency": "USD",
            "lines": lines,
            "subtotal": subtotal,
            "tax": tax,
            "total": total,
        }
    )


# API requests 5.00: 98.93, tax round(19.786) = 19.79, total 118.72
LOWER = document("5.00", "44.93", "98.93", "19.79", "118.72")
# API requests 7.00: 100.93, tax round(20.186) = 20.19, total 121.12
HIGHER = document("7.00", "44.93", "100.93", "20.19", "121.12")
# As issued: 100.00, tax 20.00, total 120.00
AS_ISSUED = document("6.07", "44.93", "100.00", "20.00", "120.00")


def documents(outcome: CorrectionOutcome) -> list[tuple[str, str, bool]]:
    """(number, total, new) of each document the correction issued or found."""
    found: list[tuple[str, str, bool]] = []
    if outcome.credit_note is not None:
        note = outcome.credit_note
        found.append((note.credit_note_number, note.total, note.new))
    if outcome.adjustment is not None:
        adjustment = outcome.adjustment
        found.append((adjustment.adjustment_number, adjustment.total, adjustment.new))
    return found


def apply(aws: Aws, bucket: str, target: CorrectedInvoice, after: Sequence[str]) -> Any:
    return service(aws, bucket, Recorded()).correct("acct-1", "2026-11", REASON, target, after)


def test_each_correction_of_a_chain_is_one_document_of_the_difference_from_where_it_stands(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    # WHEN lowered: a credit note of 1.07 + (20.00 − 19.79 = 0.21) = 1.28 → 118.72
    lowered = apply(aws, bucket, LOWER, [])
    assert documents(lowered) == [("CN-2026-000001", "1.28", True)]
    # AND raised from there: an adjustment of 2.00 + (20.19 − 19.79 = 0.40) = 2.40 → 121.12
    raised = apply(aws, bucket, HIGHER, ["CN-2026-000001"])
    assert documents(raised) == [("ADJ-2026-000001", "2.40", True)]
    # AND lowered again (the price typed back): not the first correction's retry, though
    # its corrected invoice is the same: a credit note of 2.00 + 0.40 = 2.40 → 118.72
    again = apply(aws, bucket, LOWER, ["CN-2026-000001", "ADJ-2026-000001"])
    assert documents(again) == [("CN-2026-000002", "2.40", True)]
    assert again.correction != lowered.correction
    # AND back to the invoice as issued: an adjustment of 1.07 + (20.00 − 19.79) = 1.28
    three = ["CN-2026-000001", "ADJ-2026-000001", "CN-2026-000002"]
    restored = apply(aws, bucket, AS_ISSUED, three)
    assert documents(restored) == [("ADJ-2026-000002", "1.28", True)]
    assert restored.adjustment is not None
    charged = stored(aws, bucket, restored.adjustment.json_key)
    # 120.00 − 1.28 + 2.40 − 2.40 + 1.28 = 120.00: where it was issued
    assert (charged["invoice_total"], charged["invoice_total_after"]) == ("120.00", "120.00")
    assert [(line["invoice_line"], line["amount"]) for line in charged["lines"]] == [(0, "1.07")]
    # AND that last one retried finds its document; nothing more is numbered
    retried = apply(aws, bucket, AS_ISSUED, three)
    assert documents(retried) == [("ADJ-2026-000002", "1.28", False)]
    # AND a void then credits what stands: 100.00 + 20.00
    voided = service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    assert (voided.credit_note_number, voided.subtotal, voided.tax, voided.total) == (
        "CN-2026-000003",
        "100.00",
        "20.00",
        "120.00",
    )
    note = stored(aws, bucket, voided.json_key)
    assert [(line["invoice_line"], line["amount"]) for line in note["lines"]] == [
        (0, "6.07"),
        (2, "49.00"),
        (3, "44.93"),
    ]


def test_a_correction_re_rated_before_another_landed_is_refused_and_numbers_nothing(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    apply(aws, bucket, LOWER, [])
    # WHEN a correction re-rated while the invoice stood as issued arrives after CN-…001
    with pytest.raises(
        CorrectionRefused,
        match="INV-2026-000001 was corrected since this correction was re-rated by "
        "CN-2026-000001: re-rate it again",
    ):
        apply(aws, bucket, HIGHER, [])
    # THEN nothing was numbered for it
    assert last_number(aws) == 1
    adjustments = aws.dynamodb.get_item(TableName=table(aws), Key=ADJUSTMENT_SEQUENCE_KEY)
    assert "Item" not in adjustments


def test_a_correction_stopped_between_its_documents_finishes_the_first_and_refuses_the_second(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    PdfDies.died = False
    # GIVEN a correction both ways (credit 3.20, then adjust 3.60) that stops once its
    # credit note is numbered and its JSON stored
    with pytest.raises(Died):
        service(aws, bucket, recorded, documents=PdfDies).correct(
            "acct-1", "2026-11", REASON, corrected(), []
        )
    # AND another correction, re-rated after that credit note, lands: from 97.33 + 19.47
    # to LOWER's 98.93 + 19.79, the minimum tops up 1.60 again: an adjustment of 1.60 +
    # (19.79 − 19.47 = 0.32) = 1.92
    other = service(aws, bucket, recorded).correct(
        "acct-1", "2026-11", REASON, LOWER, ["CN-2026-000001"]
    )
    assert documents(other) == [("ADJ-2026-000001", "1.92", True)]
    # WHEN the first is applied again, THEN its credit note is finished and its adjustment
    # refused: it would start from where the invoice no longer stands
    with pytest.raises(
        CorrectionRefused,
        match=r"corrected since this correction was re-rated by ADJ-2026-000001 \(its "
        r"CN-2026-000001 stands issued\)",
    ):
        service(aws, bucket, recorded).correct("acct-1", "2026-11", REASON, corrected(), [])
    # (the other correction finished the stopped one's credit note before its own document)
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued", "AdjustmentIssued"]
    assert len(recorded.emails) == 2
    sequence = aws.dynamodb.get_item(TableName=table(aws), Key=ADJUSTMENT_SEQUENCE_KEY)["Item"]
    assert (last_number(aws), sequence["last"]["N"]) == (1, "1")


def test_a_correction_the_minimum_takes_up_whole_issues_no_document(aws: Aws, bucket: str) -> None:
    issued_invoice(aws, bucket, "acct-1")
    # WHEN API requests go 6.07 → 5.00 and the minimum's top-up 44.93 → 46.00: 100.00 still
    target = document("5.00", "46.00", "100.00", "20.00", "120.00")
    outcome = apply(aws, bucket, target, [])
    # THEN neither a credit note nor a 0.00 adjustment
    assert documents(outcome) == []
    assert "Item" not in aws.dynamodb.get_item(TableName=table(aws), Key=ADJUSTMENT_SEQUENCE_KEY)
    assert "Item" not in aws.dynamodb.get_item(TableName=table(aws), Key=CREDIT_NOTE_SEQUENCE_KEY)


def test_of_two_corrections_at_once_from_one_state_one_is_issued_and_the_other_refused(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two corrections re-rated from the invoice as issued; the second lands between
    # the first's reading of the invoice and its numbering transaction
    issued_invoice(aws, bucket, "acct-1")
    first, second = service(aws, bucket, Recorded()), service(aws, bucket, Recorded())
    number = type(first._notes).number
    landed: list[bool] = []

    def other_first(store: Any, *args: Any, **kwargs: Any) -> Any:
        if not landed:
            landed.append(True)
            second.correct("acct-1", "2026-11", REASON, HIGHER, [])
        return number(store, *args, **kwargs)

    monkeypatch.setattr(type(first._notes), "number", other_first)
    # WHEN the first goes on, THEN it is refused: the invoice stands after ADJ-…001 (the
    # second's 0.93 + tax 20.19 − 20.00 = 0.19: 1.12)
    with pytest.raises(CorrectionRefused, match="re-rated by ADJ-2026-000001: re-rate it again"):
        first.correct("acct-1", "2026-11", REASON, LOWER, [])
    assert "Item" not in aws.dynamodb.get_item(TableName=table(aws), Key=CREDIT_NOTE_SEQUENCE_KEY)
    adjustment = stored(aws, bucket, "invoices/acct-1/2026-11/ADJ-2026-000001.json")
    assert (adjustment["total"], adjustment["invoice_total_after"]) == ("1.12", "121.12")


def test_a_void_of_an_invoice_credited_whole_already_is_refused(aws: Aws, bucket: str) -> None:
    # GIVEN the invoice corrected down to nothing: 100.00 + 20.00 credited by CN-…001
    issued_invoice(aws, bucket, "acct-1")
    nothing = document("0.00", "0.00", "49.00", "9.80", "58.80")
    nothing.lines[2].amount = "0.00"
    nothing = nothing.model_copy(update={"subtotal": "0.00", "tax": "0.00", "total": "0.00"})
    [(number, total, _)] = documents(apply(aws, bucket, nothing, []))
    assert (number, total) == ("CN-2026-000001", "120.00")
    # WHEN it is voided, THEN no empty credit note is issued
    with pytest.raises(CorrectionRefused, match=r"stands at 0\.00 after CN-2026-000001: nothing"):
        service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    assert last_number(aws) == 1


def test_a_reason_longer_than_a_document_can_carry_is_refused(aws: Aws, bucket: str) -> None:
    issued_invoice(aws, bucket, "acct-1")
    with pytest.raises(CorrectionRefused, match=r"at most 500 characters \(501 given\)"):
        service(aws, bucket, Recorded()).void("acct-1", "2026-11", "x" * 501)
