"""CreditNoteIssued when the bus refuses it. The attempt that claimed the announcement
knows the bus did not take the event (PutEvents answered), yet keeps its claim: the next
void, run straight after by the operator the first one failed for, skips the event for
the claim's whole lease and reports the note finished, and nothing else (no run, no
sweep) ever publishes it. Promise: voiding twice issues one credit note, one email, one
event; a stopped attempt is finished by the next (docs/invoicing.md, *Credit notes*)."""

from __future__ import annotations

from typing import Any

import pytest

from billing.store.errors import StoreError
from tests.integration.conftest import Aws
from tests.integration.test_credit_note_issuing import (
    Recorded,
    RecordingPublisher,
    bucket,
    credit_note_items,
    issued_invoice,
    service,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]


class BusRefusesOnce(RecordingPublisher):
    """PutEvents refuses the first CreditNoteIssued (an InternalFailure entry)."""

    refused = False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if detail_type == "CreditNoteIssued" and not BusRefusesOnce.refused:
            BusRefusesOnce.refused = True
            raise StoreError("EventBridge: InternalFailure")
        super().publish(detail_type, detail)


def test_a_credit_note_event_the_bus_refused_is_published_by_the_next_void(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's issued invoice
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    monkeypatch.setattr(BusRefusesOnce, "refused", False)
    monkeypatch.setattr(
        "tests.integration.test_credit_note_issuing.RecordingPublisher", BusRefusesOnce
    )
    # WHEN it is voided and the bus refuses CreditNoteIssued: the void fails
    with pytest.raises(StoreError):
        service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    # AND the operator voids again (the same clock: straight after)
    again = service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    # THEN the one credit note is emailed once and announced once
    assert (again.credit_note_number, again.email) == ("CN-2026-000001", "sent")
    assert len(recorded.emails) == 1
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued"]
    [item] = credit_note_items(aws)
    assert item["announced"] == {"BOOL": True}
