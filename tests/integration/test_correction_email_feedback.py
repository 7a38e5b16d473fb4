"""SES's reports on a credit note's or an adjustment invoice's email, as on an invoice's
(docs/invoicing.md, *Bounces and complaints*): a permanent bounce or a complaint recorded on
the document's own record and published once through its failure outbox, naming the
document and its invoice; a delivery settling an email not known to have left; anything
else (a transient bounce, another email's event) changing nothing."""

from __future__ import annotations

import email
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from billing.store.credit_notes import CreditNoteRecord, credit_note_from_item
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore
from billing_cli.local.lambdas import LocalContext
from functions.email_events import app as email_events
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_calls_within_permissions import recording
from tests.integration.conftest import Aws
from tests.integration.test_correction_issuing import corrected
from tests.integration.test_credit_note_issuing import (
    Died,
    Recorded,
    RecordingMailer,
    bucket,
    issued_invoice,
    service,
    table,
)

pytestmark = pytest.mark.integration
__all__ = ["bucket"]

PERMANENT = {"bounce": {"bounceType": "Permanent", "bounceSubType": "General"}}
TRANSIENT = {"bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}}
COMPLAINT = {"complaint": {"complaintFeedbackType": "abuse"}}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every event the bus took, from whichever publisher."""
    taken: list[tuple[str, dict[str, Any]]] = []
    original = EventPublisher.publish_all

    def publish_all(
        self: EventPublisher, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> dict[int, str]:
        failed = original(self, events)
        taken.extend(event for i, event in enumerate(events) if i not in failed)
        return failed

    monkeypatch.setattr(EventPublisher, "publish_all", publish_all)
    email_events.service.cache_clear()  # built on this test's moto
    return taken


def message(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def sent(recorded: Recorded, number: str) -> EmailMessage:
    (found,) = [m for m in map(message, recorded.emails) if f"{number}.pdf" in str(m)]
    return found


def ses_event(kind: str, mail: EmailMessage, message_id: str, **body: Any) -> dict[str, Any]:
    """What SES publishes on EventBridge for an email of ours (the detail, as documented)."""
    detail = {
        "eventType": kind,
        "mail": {
            "messageId": message_id,
            "destination": [str(mail["To"])],
            "headersTruncated": False,
            "headers": [{"name": name, "value": str(value)} for name, value in mail.items()],
            "tags": {"ses:configuration-set": ["billing-email"]},
        },
        **body,
    }
    return {"source": "aws.ses", "detail": detail}


def handle(event: dict[str, Any]) -> Any:
    return email_events.handler(event, LocalContext("email_events"))["recorded"]  # type: ignore[arg-type]


def document(aws: Aws, number: str) -> CreditNoteRecord:
    items = aws.dynamodb.scan(TableName=table(aws))["Items"]
    notes = [
        credit_note_from_item(item)
        for item in items
        if item["pk"]["S"].startswith("ACCOUNT#")
        and item["sk"]["S"].startswith(("CREDIT_NOTE#", "ADJUSTMENT#"))
    ]
    (found,) = [note for note in notes if note.invoice_number == number]
    return found


def test_a_permanent_bounce_of_a_credit_note_is_recorded_on_it_and_published_once(
    aws: Aws, bucket: str, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN acct-1's invoice voided, its credit note emailed
    invoice = issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    note = document(aws, "CN-2026-000001")
    assert (note.email_status, note.message_id is not None) == ("sent", True)
    mail = sent(recorded, "CN-2026-000001")
    # the header names the note's record: account, invoice, number, kind, correction (its
    # words: a long header is folded)
    assert str(mail["X-Billing-Credit-Note"]).split() == [
        "acct-1",
        "INV-2026-000001",
        "CN-2026-000001",
        "credit_note",
        "void",
    ]
    published.clear()
    bounce = ses_event("Bounce", mail, str(note.message_id), **PERMANENT)

    # WHEN SES reports its permanent bounce (and EventBridge delivers it twice)
    with recording() as calls:
        first, again = handle(bounce), handle(bounce)

    # THEN the credit note's record says so, the invoice's email is untouched
    bounced = document(aws, "CN-2026-000001")
    assert (bounced.email_status, bounced.email_reason) == ("bounced", "bounce: Permanent/General")
    assert bounced.failure_announced
    invoice_record = InvoiceStore(aws.dynamodb, table(aws)).get("acct-1", "2026-11")
    assert invoice_record is not None
    assert invoice_record.email_status is None
    answer = {
        "credit_note_number": "CN-2026-000001",
        "invoice_number": invoice,
        "status": "bounced",
    }
    assert first == again == answer
    # AND other systems hear of it once, told which document and which invoice
    assert published == [
        (
            "InvoiceDeliveryFailed",
            {
                "event_id": f"InvoiceDeliveryFailed:CN-2026-000001:{note.email_token}",
                "credit_note_number": "CN-2026-000001",
                "invoice_number": "INV-2026-000001",
                "account_id": "acct-1",
                "period": "2026-11",
                "status": "bounced",
                "reason": "bounce: Permanent/General",
            },
        )
    ]
    # AND within email_events' row of the permissions table
    allowed = {c.action for made in FUNCTION_ACTIONS["email_events"].values() for c in made}
    assert calls["email_events"] <= allowed, sorted(calls["email_events"] - allowed)


def test_a_complaint_about_an_adjustment_invoice_is_recorded_on_it_and_published(
    aws: Aws, bucket: str, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN a correction both ways: its credit note and its adjustment invoice emailed
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    outcome = service(aws, bucket, recorded).correct("acct-1", "2026-11", "re-rated", corrected())
    adjustment = document(aws, "ADJ-2026-000001")
    mail = sent(recorded, "ADJ-2026-000001")
    assert str(mail["X-Billing-Credit-Note"]).split() == [
        "acct-1",
        "INV-2026-000001",
        "ADJ-2026-000001",
        "adjustment",
        outcome.correction,
    ]
    published.clear()

    # WHEN its customer marks the adjustment's email as spam
    answer = handle(ses_event("Complaint", mail, str(adjustment.message_id), **COMPLAINT))

    # THEN the adjustment's record says so; the credit note's email stays sent
    complained = document(aws, "ADJ-2026-000001")
    assert (complained.email_status, complained.email_reason) == (
        "complained",
        "complaint: abuse",
    )
    assert document(aws, "CN-2026-000001").email_status == "sent"
    assert answer == {
        "adjustment_number": "ADJ-2026-000001",
        "invoice_number": "INV-2026-000001",
        "status": "complained",
    }
    assert published == [
        (
            "InvoiceEmailComplaint",
            {
                "event_id": f"InvoiceEmailComplaint:ADJ-2026-000001:{adjustment.email_token}",
                "adjustment_number": "ADJ-2026-000001",
                "invoice_number": "INV-2026-000001",
                "account_id": "acct-1",
                "period": "2026-11",
                "status": "complained",
                "reason": "complaint: abuse",
            },
        )
    ]


def test_a_transient_bounce_or_another_emails_event_changes_no_correction_document(
    aws: Aws, bucket: str, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN acct-1's credit note emailed
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    note = document(aws, "CN-2026-000001")
    mail = sent(recorded, "CN-2026-000001")
    published.clear()
    # an email sent before its header named the record (account, invoice, number only)
    older = message(bytes(mail))
    older.replace_header("X-Billing-Credit-Note", "acct-1 INV-2026-000001 CN-2026-000001")

    # WHEN SES reports a full mailbox; a bounce, a complaint and a delivery of another email
    # of the note (an earlier one); a bounce of an email of the old header, of a document
    # that is not there, and of a header naming no kind of document
    answers = [
        handle(ses_event("Bounce", mail, str(note.message_id), **TRANSIENT)),
        handle(ses_event("Bounce", mail, "an-earlier-email", **PERMANENT)),
        handle(ses_event("Complaint", mail, "an-earlier-email", **COMPLAINT)),
        handle(ses_event("Delivery", mail, "an-earlier-email")),
        handle(ses_event("Bounce", older, str(note.message_id), **PERMANENT)),
    ]
    unknown = message(bytes(mail))
    unknown.replace_header(
        "X-Billing-Credit-Note", "acct-1 INV-2026-000009 CN-2026-000009 credit_note void"
    )
    answers.append(handle(ses_event("Bounce", unknown, str(note.message_id), **PERMANENT)))
    no_kind = message(bytes(mail))
    no_kind.replace_header(
        "X-Billing-Credit-Note", "acct-1 INV-2026-000001 CN-2026-000001 invoice void"
    )
    answers.append(handle(ses_event("Bounce", no_kind, str(note.message_id), **PERMANENT)))

    # THEN nothing is recorded and nothing published
    assert answers == [None] * 7
    assert document(aws, "CN-2026-000001") == note
    assert published == []


class SentThenKilled(RecordingMailer):
    """SES takes the email, then the process stops before the send is recorded."""

    def send_raw(self, raw: bytes, to: str) -> str:
        super().send_raw(raw, to)
        raise Died("stopped after SES took the email, before it was recorded")


def test_a_delivery_settles_a_credit_note_email_not_known_to_have_left(
    aws: Aws,
    bucket: str,
    published: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the void stopped while SES had the credit note's email: its claim is `sending`
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    monkeypatch.setattr(
        "tests.integration.test_credit_note_issuing.RecordingMailer", SentThenKilled
    )
    with pytest.raises(Died):
        service(aws, bucket, recorded).void("acct-1", "2026-11", "billed twice")
    assert document(aws, "CN-2026-000001").email_status == "sending"
    published.clear()
    delivered = ses_event("Delivery", sent(recorded, "CN-2026-000001"), "ses-0001")

    # WHEN SES reports its delivery (twice)
    first, again = handle(delivered), handle(delivered)

    # THEN the note says sent, with SES's id; the second changes nothing; nothing published
    settled = document(aws, "CN-2026-000001")
    assert (settled.email_status, settled.message_id) == ("sent", "ses-0001")
    assert first == {
        "credit_note_number": "CN-2026-000001",
        "invoice_number": "INV-2026-000001",
        "status": "sent",
    }
    assert again is None
    assert published == []


class RefusingMailer(RecordingMailer):
    def send_raw(self, raw: bytes, to: str) -> str:
        from billing.store.mailer import Undeliverable

        raise Undeliverable(f"{to}: address on the account-level suppression list")


def test_a_refused_credit_note_email_is_published_naming_the_note_and_its_invoice(
    aws: Aws,
    bucket: str,
    published: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-1's address refused by SES
    issued_invoice(aws, bucket, "acct-1")
    monkeypatch.setattr(
        "tests.integration.test_credit_note_issuing.RecordingMailer", RefusingMailer
    )
    # WHEN its invoice is voided
    outcome = service(aws, bucket, Recorded()).void("acct-1", "2026-11", "billed twice")
    # THEN the failure event names the credit note and the invoice it corrects
    assert outcome.email == "undelivered"
    note = document(aws, "CN-2026-000001")
    failures = [detail for kind, detail in published if kind == "InvoiceDeliveryFailed"]
    assert failures == [
        {
            "event_id": f"InvoiceDeliveryFailed:CN-2026-000001:{note.email_token}",
            "credit_note_number": "CN-2026-000001",
            "invoice_number": "INV-2026-000001",
            "account_id": "acct-1",
            "period": "2026-11",
            "status": "undelivered",
            "reason": "billing@acme.example: address on the account-level suppression list",
        }
    ]
