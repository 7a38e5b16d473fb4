"""Credit notes on moto (billing.corrections.credit_notes, billing.store.credit_notes): one
credit note, one number, one email and one event per void however often and however
concurrently it is asked for; numbers gap-free; an attempt that stopped finished by the
next, and never emailed twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from billing.core.seller import Issuer
from billing.corrections.credit_notes import CorrectionRefused, CreditNotes
from billing.corrections.outcomes import CreditNoteOutcome
from billing.invoicing.delivery import Delivery
from billing.settings import INVOICES_TABLE
from billing.store.config_store import ConfigStore
from billing.store.credit_notes import CREDIT_NOTE_SEQUENCE_KEY, CreditNoteStore
from billing.store.documents import DocumentStore, document_key
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore
from billing.store.mailer import Mailer
from tests.integration.conftest import REGION, Aws, invoicing_environment
from tests.integration.test_invoice_numbering import STUCK_SECONDS, Interleaving

pytestmark = pytest.mark.integration

ISSUED_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
VOIDED_AT = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
ISSUER = Issuer(name="Billing Co", email="invoices@billing.example")

# CONTRACT.md section 4's example invoice: 6.07 + 0 + 49.00 + 44.93 = 100.00, tax 20.00.
INVOICE_LINES = [
    {"kind": "usage", "meter": "api_requests", "description": "API requests",
     "quantity": "1534000", "amount": "6.07"},
    {"kind": "usage", "meter": "exports", "description": "Exports", "quantity": "0",
     "amount": "0.00"},
    {"kind": "fixed", "description": "Pro plan", "quantity": "1", "amount": "49.00"},
    {"kind": "minimum", "description": "Minimum commitment", "quantity": "1", "amount": "44.93"},
]  # fmt: skip


class Died(Exception):
    """The process stopping at this point (the function killed, the machine lost)."""


@dataclass
class Recorded:
    """What left for the outside world: emails SES took and events the bus took."""

    emails: list[bytes] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    die_before_send: bool = False


class RecordingMailer(Mailer):
    def __init__(self, recorded: Recorded) -> None:
        client = boto3.client("sesv2", region_name=REGION)
        super().__init__(client, "invoices@billing.example")
        self._recorded = recorded

    def send_raw(self, raw: bytes, to: str) -> str:
        if self._recorded.die_before_send:
            raise Died("stopped with the email claimed, before SES had it")
        message_id = super().send_raw(raw, to)
        self._recorded.emails.append(raw)
        return message_id


class RecordingPublisher(EventPublisher):
    def __init__(self, recorded: Recorded) -> None:
        super().__init__(boto3.client("events", region_name=REGION), "billing-events")
        self._recorded = recorded

    def publish_all(self, events: Sequence[tuple[str, dict[str, Any]]]) -> dict[int, str]:
        failed = super().publish_all(events)
        self._recorded.events += [event for i, event in enumerate(events) if i not in failed]
        return failed


class PdfDies(DocumentStore):
    """Stops the attempt when it comes to write a PDF, once."""

    died = False

    def put_new(self, key: str, body: bytes, content_type: str) -> bytes:
        if key.endswith(".pdf") and not PdfDies.died:
            PdfDies.died = True
            raise Died("stopped after the JSON was stored")
        return super().put_new(key, body, content_type)


# moto applies a transaction on a copy of the table and, when it is cancelled, puts the copy
# back: a write another thread made meanwhile would be lost, which DynamoDB never does. So the
# racing voids' DynamoDB calls go one at a time (each whole call under one lock), after the
# interleaving has ordered their transactions.
_ONE_CALL_AT_A_TIME = threading.Lock()


def racing_client(interleaving: Interleaving, name: str) -> Any:
    client = interleaving.client(name)  # its hooks are more specific: they run first

    def take(**_: Any) -> None:  # None: a handler's answer would stand in for the call's
        _ONE_CALL_AT_A_TIME.acquire()

    def give(**_: Any) -> None:
        _ONE_CALL_AT_A_TIME.release()

    client.meta.events.register("before-call.dynamodb", take)
    client.meta.events.register("after-call.dynamodb", give)
    return client


@pytest.fixture
def bucket(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> str:
    return invoicing_environment(aws, monkeypatch)


def table(aws: Aws) -> str:
    return aws.tables[INVOICES_TABLE.env_var]


def issued_invoice(
    aws: Aws, bucket: str, account: str, number_of: int = 1, *, tax: str = "20.00"
) -> str:
    """An issued invoice of `account` for 2026-11 (numbered, JSON stored, marked stored):
    CONTRACT.md's example, 100.00 + 20.00 tax = 120.00 USD (or `tax` for an account of
    another tax rate: 100.00 + `tax`)."""
    total = str(Decimal("100.00") + Decimal(tax))
    store = InvoiceStore(aws.dynamodb, table(aws))
    [record] = store.number(
        [(account, "2026-11")], ISSUED_AT, lambda n, _: f"INV-2026-{n:06d}"
    ).values()
    document = {
        "invoice_number": record.invoice_number,
        "account_id": account,
        "period": "2026-11",
        "period_start": "2026-11-01T00:00:00+00:00",
        "period_end": "2026-12-01T00:00:00+00:00",
        "issued_at": "2026-12-01T06:00:00Z",
        "currency": "USD",
        "lines": INVOICE_LINES,
        "subtotal": "100.00",
        "tax": tax,
        "total": total,
        "credits": [],
        "credits_applied": "0.00",
        "amount_due": total,
    }
    keys = [document_key(account, "2026-11", record.invoice_number, ext) for ext in ("json", "pdf")]
    aws.s3.put_object(Bucket=bucket, Key=keys[0], Body=json.dumps(document).encode())
    store.mark_stored(
        record, total=total, subtotal="100.00", tax=tax, currency="USD",
        json_key=keys[0], pdf_key=keys[1], token="test",
    )  # fmt: skip
    return record.invoice_number


def service(
    aws: Aws,
    bucket: str,
    recorded: Recorded,
    *,
    client: Any = None,
    clock: datetime = VOIDED_AT,
    documents: type[DocumentStore] = DocumentStore,
) -> CreditNotes:
    dynamodb = client or aws.dynamodb
    invoices = InvoiceStore(dynamodb, table(aws))
    delivery = Delivery(
        invoices=invoices,
        documents=documents(aws.s3, bucket),
        events=RecordingPublisher(recorded),
        mailer=RecordingMailer(recorded),
        issuer=ISSUER,
        clock=lambda: clock,
    )
    return CreditNotes(
        config=ConfigStore(dynamodb, aws.config_table),
        invoices=invoices,
        notes=CreditNoteStore(dynamodb, table(aws)),
        delivery=delivery,
    )


def credit_note_items(aws: Aws) -> list[dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=table(aws))["Items"]
    return [item for item in items if item["sk"]["S"].startswith("CREDIT_NOTE#")]


def last_number(aws: Aws) -> int:
    item = aws.dynamodb.get_item(TableName=table(aws), Key=CREDIT_NOTE_SEQUENCE_KEY)["Item"]
    return int(item["last"]["N"])


def test_a_void_credits_the_whole_invoice_and_a_second_one_returns_the_same_note(
    aws: Aws, bucket: str
) -> None:
    # GIVEN acct-1's invoice INV-2026-000001 of 120.00
    assert issued_invoice(aws, bucket, "acct-1") == "INV-2026-000001"
    recorded = Recorded()
    notes = service(aws, bucket, recorded)

    # WHEN it is voided
    first = notes.void("acct-1", "2026-11", " billed twice ")

    # THEN one credit note credits 100.00 + 20.00 tax: the invoice is left at 0
    assert (first.credit_note_number, first.total, first.subtotal, first.tax, first.new) == (
        "CN-2026-000001", "120.00", "100.00", "20.00", True,
    )  # fmt: skip
    assert (first.reason, first.email) == ("billed twice", "sent")
    stored = json.loads(aws.s3.get_object(Bucket=bucket, Key=first.json_key)["Body"].read())
    assert first.json_key == "invoices/acct-1/2026-11/CN-2026-000001.json"
    assert [(line["invoice_line"], line["amount"]) for line in stored["lines"]] == [
        (0, "6.07"), (2, "49.00"), (3, "44.93"),
    ]  # fmt: skip
    assert (stored["total"], stored["invoice_total"], stored["invoice_total_after"]) == (
        "120.00", "120.00", "0.00",
    )  # fmt: skip
    assert stored["issued_at"] == "2026-12-10T09:30:00Z"
    pdf = aws.s3.get_object(Bucket=bucket, Key=first.pdf_key)
    assert pdf["Body"].read().startswith(b"%PDF")
    assert pdf["ServerSideEncryption"] == "aws:kms"
    # AND one email, one event, built from the record
    assert len(recorded.emails) == 1
    assert b"CN-2026-000001.pdf" in recorded.emails[0]
    assert recorded.events == [
        (
            "CreditNoteIssued",
            {
                "event_id": "CreditNoteIssued:CN-2026-000001",
                "credit_note_number": "CN-2026-000001",
                "invoice_number": "INV-2026-000001",
                "account_id": "acct-1",
                "period": "2026-11",
                "correction": "void",
                "currency": "USD",
                "subtotal": "100.00",
                "tax": "20.00",
                "total": "120.00",
                "issued_at": "2026-12-10T09:30:00Z",
                "json_key": "invoices/acct-1/2026-11/CN-2026-000001.json",
                "pdf_key": "invoices/acct-1/2026-11/CN-2026-000001.pdf",
            },
        )
    ]

    # WHEN it is voided again, with another reason
    again = notes.void("acct-1", "2026-11", "once more")

    # THEN it is the same note: no number, document, email or event more
    assert again == first.model_copy(update={"new": False})
    assert (len(credit_note_items(aws)), last_number(aws)) == (1, 1)
    assert (len(recorded.emails), len(recorded.events)) == (1, 1)


def test_two_voids_at_once_issue_one_note_one_number_one_email_one_event(
    aws: Aws, bucket: str
) -> None:
    # GIVEN one invoice, and two voids that both read before either numbers
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    interleaving = Interleaving(["A", "B"])
    services = {
        name: service(aws, bucket, recorded, client=racing_client(interleaving, name))
        for name in "AB"
    }

    # WHEN they run at once, A's transaction first
    outcomes = run_at_once({name: (s, "acct-1") for name, s in services.items()})

    # THEN B's transaction is refused (the key and the sequence are taken) and its second
    # read finds A's note: one note, one number, one email, one event
    assert {o.credit_note_number for o in outcomes.values()} == {"CN-2026-000001"}
    assert sorted(o.new for o in outcomes.values()) == [False, True]
    assert interleaving.writes == {"A": 1, "B": 1}
    assert (len(credit_note_items(aws)), last_number(aws)) == (1, 1)
    assert len(recorded.emails) == 1
    assert [kind for kind, _ in recorded.events] == ["CreditNoteIssued"]


def run_at_once(work: dict[str, tuple[CreditNotes, str]]) -> dict[str, CreditNoteOutcome]:
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = {
            name: pool.submit(notes.void, account, "2026-11", "duplicate")
            for name, (notes, account) in work.items()
        }
        return {name: future.result(timeout=STUCK_SECONDS * 2) for name, future in futures.items()}


def test_credit_note_numbers_are_gap_free_and_unique_under_concurrency_and_retries(
    aws: Aws, bucket: str
) -> None:
    # GIVEN three invoices, voided at once, each void reading the sequence before any writes
    for account in ("acct-1", "acct-2", "acct-3"):
        issued_invoice(aws, bucket, account)
    recorded = Recorded()
    interleaving = Interleaving(["A", "B", "C"])
    work = {
        name: (service(aws, bucket, recorded, client=racing_client(interleaving, name)), account)
        for name, account in zip("ABC", ("acct-1", "acct-2", "acct-3"), strict=True)
    }
    outcomes = run_at_once(work)

    # THEN A's write took 1; B's and C's were refused (the sequence moved) and, reading
    # again, took the next numbers: 1, 2, 3, each once
    assert outcomes["A"].credit_note_number == "CN-2026-000001"
    assert sorted(o.credit_note_number for o in outcomes.values()) == [
        "CN-2026-000001", "CN-2026-000002", "CN-2026-000003",
    ]  # fmt: skip
    assert interleaving.writes["A"] == 1
    assert min(interleaving.writes["B"], interleaving.writes["C"]) >= 2
    # AND retrying any of them takes no number: the sequence stays at 3, no gap, no repeat
    for account in ("acct-2", "acct-1", "acct-3"):
        service(aws, bucket, recorded).void(account, "2026-11", "retried")
    numbers = sorted(int(item["sequence"]["N"]) for item in credit_note_items(aws))
    assert (numbers, last_number(aws)) == ([1, 2, 3], 3)
    assert len(recorded.emails) == 3


def test_an_attempt_that_stopped_after_numbering_is_finished_by_the_next_under_its_number(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    recorded = Recorded()
    PdfDies.died = False
    # GIVEN a void that stops once its note is numbered and its JSON stored
    with pytest.raises(Died):
        service(aws, bucket, recorded, documents=PdfDies).void("acct-1", "2026-11", "typo")
    assert (recorded.emails, recorded.events) == ([], [])
    # WHEN it is voided again
    outcome = service(aws, bucket, recorded).void("acct-1", "2026-11", "typo, retried")
    # THEN the same note is finished: stored, announced and emailed, under its number
    assert (outcome.credit_note_number, outcome.new, outcome.reason) == (
        "CN-2026-000001", False, "typo",
    )  # fmt: skip
    assert (outcome.email, len(recorded.emails), len(recorded.events)) == ("sent", 1, 1)
    assert last_number(aws) == 1


def test_an_email_claimed_by_an_attempt_that_stopped_is_never_sent_again(
    aws: Aws, bucket: str
) -> None:
    issued_invoice(aws, bucket, "acct-1")
    # GIVEN a void that stopped with its email claimed, before SES had it
    recorded = Recorded(die_before_send=True)
    with pytest.raises(Died):
        service(aws, bucket, recorded).void("acct-1", "2026-11", "typo")
    recorded.die_before_send = False
    # WHEN voided again while the claim may still be live: nothing is sent
    soon = service(aws, bucket, recorded, clock=VOIDED_AT + timedelta(minutes=1))
    assert soon.void("acct-1", "2026-11", "typo").email == "sending"
    # AND once the claim's lease is over: recorded unknown (it may have left), not sent
    later = service(aws, bucket, recorded, clock=VOIDED_AT + timedelta(hours=1))
    outcome = later.void("acct-1", "2026-11", "typo")
    assert (outcome.email, outcome.email_reason) == (
        "unknown", "the attempt sending it stopped: it may or may not have left",
    )  # fmt: skip
    assert recorded.emails == []
    assert len(recorded.events) == 1  # announced once, before the email
    assert later.void("acct-1", "2026-11", "typo").email == "unknown"
    assert recorded.emails == []


def test_a_void_is_refused_without_a_reason_or_an_issued_invoice(aws: Aws, bucket: str) -> None:
    issued_invoice(aws, bucket, "acct-1")
    notes = service(aws, bucket, Recorded())
    with pytest.raises(CorrectionRefused, match="needs a reason"):
        notes.void("acct-1", "2026-11", "   ")
    with pytest.raises(CorrectionRefused, match="acct-2 for 2026-11 is not issued and stored"):
        notes.void("acct-2", "2026-11", "typo")
    assert credit_note_items(aws) == []
