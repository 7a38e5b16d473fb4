"""Chained corrections on moto: a correction's document numbered by an attempt
that stopped must still be stored, announced and emailed once, whatever lands before the
correction is applied again."""

from __future__ import annotations

import pytest

from billing.corrections.credit_notes import CorrectionRefused
from billing.corrections.rerate import _stands_after
from billing.store.invoice_store import InvoiceStore
from tests.integration.conftest import Aws
from tests.integration.test_chained_corrections import LOWER, REASON, documents
from tests.integration.test_credit_note_issuing import (
    Died,
    PdfDies,
    Recorded,
    bucket,
    credit_note_items,
    issued_invoice,
    service,
    table,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]


def stopped_after_numbering(aws: Aws, bucket: str, recorded: Recorded) -> None:
    """LOWER applied from the invoice as issued (a credit note of 1.07 + 0.21 = 1.28), the
    attempt stopping once CN-2026-000001 is numbered and its JSON stored, before its PDF."""
    issued_invoice(aws, bucket, "acct-1")
    PdfDies.died = False
    with pytest.raises(Died):
        service(aws, bucket, recorded, documents=PdfDies).correct(
            "acct-1", "2026-11", REASON, LOWER, []
        )
    assert (recorded.events, recorded.emails) == ([], [])


def note_states(aws: Aws) -> list[tuple[str, str, bool]]:
    return [
        (item["credit_note_number"]["S"], item["status"]["S"], item["announced"]["BOOL"])
        for item in credit_note_items(aws)
    ]


def test_a_correction_stopped_after_numbering_is_finished_by_the_apply_run_again(
    aws: Aws, bucket: str
) -> None:
    recorded = Recorded()
    stopped_after_numbering(aws, bucket, recorded)
    # WHEN `billing rerate --apply` is run again: its dry run reads where the invoice
    # stands (rerate._stands_after: after CN-2026-000001) and sends the same corrected
    # invoice after it, the way the CLI builds its request
    record = InvoiceStore(aws.dynamodb, table(aws)).get_many([("acct-1", "2026-11")])
    after = _stands_after(record[("acct-1", "2026-11")])
    assert after == ("CN-2026-000001",)
    outcome = service(aws, bucket, recorded).correct("acct-1", "2026-11", REASON, LOWER, after)
    # THEN nothing more is issued (the invoice stands corrected)...
    assert documents(outcome) == []
    # ...AND the credit note the stopped attempt numbered is stored, announced and emailed
    # once: not left `numbered` for ever, a number in the sequence no customer receives
    assert note_states(aws) == [("CN-2026-000001", "stored", True)]
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued"]
    assert len(recorded.emails) == 1


def test_a_correction_stopped_after_numbering_is_finished_though_a_void_landed(
    aws: Aws, bucket: str
) -> None:
    recorded = Recorded()
    stopped_after_numbering(aws, bucket, recorded)
    # GIVEN the invoice voided meanwhile: what stands after CN-2026-000001, 118.72
    voided = service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    assert (voided.credit_note_number, voided.total) == ("CN-2026-000002", "118.72")
    # WHEN the stopped correction is applied again, it is refused (the invoice was voided)
    with pytest.raises(CorrectionRefused, match="was voided by CN-2026-000002"):
        service(aws, bucket, recorded).correct("acct-1", "2026-11", REASON, LOWER, [])
    # THEN its credit note, which the void's 118.72 presupposes, is finished all the same
    # (as it is when another correction landed: docs/corrections.md, *Chains*)
    assert sorted(note_states(aws)) == [
        ("CN-2026-000001", "stored", True),
        ("CN-2026-000002", "stored", True),
    ]
    assert sorted(kind for kind, _ in recorded.events) == ["CreditNoteIssued"] * 2
    assert len(recorded.emails) == 2
