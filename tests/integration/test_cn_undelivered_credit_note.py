"""A credit note's email that SES refuses: the note is `undelivered` and InvoiceDeliveryFailed
is published (docs/invoicing.md, *Credit notes*, *Email*) through "the invoice email's
outbox, reused". An outbox is only as good as whoever drains it: when the bus refuses that
event, voiding again ("Voiding again finishes what an attempt left") must publish it."""

from __future__ import annotations

from typing import Any

import pytest

from billing.store.errors import StoreError
from billing.store.mailer import Undeliverable
from tests.integration.conftest import Aws
from tests.integration.test_credit_note_issuing import (
    Recorded,
    RecordingMailer,
    RecordingPublisher,
    bucket,
    credit_note_items,
    issued_invoice,
    service,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]


class RefusingMailer(RecordingMailer):
    def send_raw(self, raw: bytes, to: str) -> str:
        raise Undeliverable(f"{to}: address on the account-level suppression list")


class BusDownOnce(RecordingPublisher):
    """Refuses the first InvoiceDeliveryFailed (the bus out of order for a moment)."""

    refused = False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if detail_type == "InvoiceDeliveryFailed" and not BusDownOnce.refused:
            BusDownOnce.refused = True
            raise StoreError("EventBridge: InternalFailure")
        super().publish(detail_type, detail)


def test_a_credit_note_failure_event_the_bus_refused_is_published_by_the_next_void(
    aws: Aws, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN acct-1's issued invoice, whose customer address SES refuses
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    monkeypatch.setattr(BusDownOnce, "refused", False)
    monkeypatch.setattr(
        "tests.integration.test_credit_note_issuing.RecordingMailer", RefusingMailer
    )
    monkeypatch.setattr(
        "tests.integration.test_credit_note_issuing.RecordingPublisher", BusDownOnce
    )
    # WHEN it is voided while the bus refuses the failure event
    first = service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    assert first.email == "undelivered"
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued"]
    # AND it is voided again, the bus back
    again = service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    # THEN the failure event is published by now, and the note's outbox closed
    assert again.credit_note_number == first.credit_note_number
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued", "InvoiceDeliveryFailed"]
    [item] = credit_note_items(aws)
    assert item["failure_announced"] == {"BOOL": True}
