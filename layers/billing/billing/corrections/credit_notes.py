"""Issuing a credit note: `billing invoices void NUMBER --reason R`, which reaches the Send
function as `{"void": {"account_id": ..., "period": ..., "reason": ...}}`, and `billing
rerate --period P --apply --reason R` on an invoiced period, which asks it `{"correct":
{..., "corrected": <the re-rated invoice>}}` (billing.corrections.corrected: its checks
and its correction key) and credits what the invoice charged above the corrected one.

The steps are an invoice's, each safe to repeat (docs/invoicing.md, *Credit notes*):
number it (one transaction per correction key: billing.store.credit_notes), store its JSON
(the bytes its record holds) and PDF beside the invoice (written once, never replaced),
record it stored, publish CreditNoteIssued and record that (the outbox flag), then claim its
one email, send it and record what became of it. Voiding again finds the note of the
invoice's `void` key and finishes whatever an earlier attempt left: nothing is issued,
stored, announced or emailed twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol, cast

from pydantic import Field

from billing.core.catalog import Account
from billing.core.corrections import (
    NothingToCredit,
    adjustment_note,
    correction_note,
    void_note,
)
from billing.core.credit_notes import (
    ADJUSTMENT,
    CREDIT_NOTE,
    Credited,
    CreditNote,
    IssuedInvoice,
    credit_note_from_document,
)
from billing.core.fields import printable
from billing.corrections.corrected import (
    CorrectedInvoice,
    CorrectInput,
    corrected_invoice,
    correction_key,
)
from billing.corrections.credit_note_email import (
    credit_note_email,
    credit_note_issued,
    issued_event,
)
from billing.corrections.credit_note_pdf import render_credit_note_pdf
from billing.corrections.outcomes import AdjustmentOutcome, CorrectionOutcome, CreditNoteOutcome
from billing.invoicing.delivery import (
    EMAIL_CLAIM_LEASE,
    FAILURE_EVENTS,
    Delivery,
    announce_delivery_failure,
)
from billing.invoicing.ports import Config, Invoices
from billing.invoicing.steps import Emails, Numbered, PeriodText, Shape, read
from billing.store.credit_notes import CreditNoteRecord, CreditNoteStore
from billing.store.documents import document_key
from billing.store.errors import StoreError
from billing.store.invoice_records import InvoiceRecord
from billing.store.mailer import NotSent

VOID = "void"

# Makes a correction's document of one kind (billing.core.corrections): its credit note
# first, then its adjustment, from what the documents before it moved.
Build = Callable[..., CreditNote]
_BUILDERS: tuple[tuple[str, Build], ...] = (
    (CREDIT_NOTE, correction_note),
    (ADJUSTMENT, adjustment_note),
)


class InvoiceReader(Protocol):
    """What the service reads of the invoices: records by their keys (BatchGetItem, which
    the Send function may call, as it may not GetItem)."""

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InvoiceRecord]: ...


class CorrectionRefused(ValueError):
    """The credit note cannot be issued: its reason says why (an empty reason, an invoice
    not known or not stored yet, its account not known)."""


class VoidRequest(Shape):
    account_id: str = Field(min_length=1)
    period: PeriodText
    reason: str


class VoidInput(Shape):
    void: VoidRequest


# A reason is printed on the document and its email: a sentence or two, not a file.
REASON_LIMIT: Final = 500


def _reason(reason: str) -> str:
    """The reason printed on the document: one line the invoice fonts draw, not blank, at
    most REASON_LIMIT characters (checked before a number is taken)."""
    if not reason.strip():
        raise CorrectionRefused("a credit note needs a reason (--reason)")
    if len(reason.strip()) > REASON_LIMIT:
        raise CorrectionRefused(
            f"a reason is at most {REASON_LIMIT} characters ({len(reason.strip())} given)"
        )
    try:
        return printable(reason.strip())
    except ValueError as error:
        raise CorrectionRefused(f"the reason {error}") from None


class CreditNotes:
    def __init__(
        self,
        *,
        config: Config,
        invoices: InvoiceReader,
        notes: CreditNoteStore,
        delivery: Delivery,
    ) -> None:
        self._config, self._invoices, self._notes = config, invoices, notes
        # The invoice email's delivery, on the credit notes' records: its writes (claim,
        # release, result) are the invoice email's, addressed by each record's own key.
        self._delivery = replace(delivery, invoices=cast(Invoices, notes))

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """The Send function's `{"void": {...}}` or `{"correct": {...}}`: the outcome as
        JSON."""
        if isinstance(event, dict) and "correct" in event:
            asked = read(CorrectInput, event).correct
            outcome = self.correct(
                asked.account_id, asked.period, asked.reason, asked.corrected, asked.after
            )
            return outcome.model_dump(mode="json")
        request = read(VoidInput, event).void
        return self.void(request.account_id, request.period, request.reason).model_dump(mode="json")

    def void(self, account_id: str, period: str, reason: str) -> CreditNoteOutcome:
        """Credit what stands of the invoice of (account, period): one credit note, however
        often this is called, finished by whichever call comes after one that stopped."""
        reason = _reason(reason)
        invoice, issued, account = self._issued(account_id, period, "voided")
        self._finish_stranded(invoice, issued, account)
        now = self._delivery.now()

        def make(credited: Credited, number: str) -> CreditNote:
            note = void_note(issued, credited, number=number, reason=reason, issued_at=now)
            if credited.notes and not note.total.amount:
                # Corrected down to nothing already: a void would credit 0.00.
                raise CorrectionRefused(
                    f"{issued.number} stands at {note.invoice_total_after} after "
                    f"{', '.join(credited.notes)}: nothing is left to void"
                )
            return note

        record, new = self._notes.number(invoice, VOID, now, make)
        return self._finish(record, issued, account, new)

    def correct(
        self,
        account_id: str,
        period: str,
        reason: str,
        corrected: CorrectedInvoice,
        after: Sequence[str] = (),
    ) -> CorrectionOutcome:
        """Take the invoice of (account, period) from where it stands after the documents
        `after` (the re-rate read them) to `corrected` (the invoice its re-rated usage
        makes): a credit note for what it over-charged, then an adjustment invoice for what
        it under-charged, each at most once per correction key however often this is
        called (a retry finishes what a stopped attempt left). CorrectionRefused when the
        document is not a correction of that invoice, the invoice was voided, or another
        document was issued against it since `after` (the re-rate is out of date)."""
        reason = _reason(reason)
        invoice, issued, account = self._issued(account_id, period, "corrected")
        issued_against = self._finish_stranded(invoice, issued, account)
        self._refuse_voided(invoice, issued)
        try:
            target = corrected_invoice(corrected, issued, account)
        except ValueError as error:
            raise CorrectionRefused(str(error)) from None
        key = correction_key(target, after)
        now = self._delivery.now()
        outcome = CorrectionOutcome(correction=key)
        # This correction's documents, in the order they are numbered (a credit note before
        # an adjustment): those an earlier attempt numbered, and those numbered below.
        mine = [
            record.invoice_number
            for kind, _ in _BUILDERS
            for record in issued_against
            if (record.kind, record.correction) == (kind, key)
        ]
        for kind, build in _BUILDERS:

            def make(credited: Credited, number: str, build: Build = build) -> CreditNote:
                # After the numbering read the invoice's credits (a void or another
                # correction landing since moves their version, so this transaction fails
                # and reads again, and finds it here).
                self._refuse_voided(invoice, issued)
                _refuse_moved(issued, credited, after, mine)
                return build(
                    issued, credited, target, number=number, correction=key, reason=reason,
                    issued_at=now,
                )  # fmt: skip

            try:
                record, new = self._notes.number(invoice, key, now, make, kind)
            except NothingToCredit:
                continue  # nothing of this kind: the correction is the other kind's only
            if record.invoice_number not in mine:  # numbered now, by this or a twin attempt
                mine.append(record.invoice_number)
            finished = self._finish(record, issued, account, new)
            if kind == CREDIT_NOTE:
                outcome.credit_note = finished
            else:
                outcome.adjustment = AdjustmentOutcome.of(finished)
        return outcome

    def _finish_stranded(
        self, invoice: InvoiceRecord, issued: IssuedInvoice, account: Account
    ) -> list[CreditNoteRecord]:
        """Finish every document issued against the invoice that an attempt which stopped
        left unfinished (not stored, announced or emailed), whatever request numbered it:
        a number once taken is always delivered, even when the request that took it is
        never asked again (re-rated since, or the invoice voided). The documents' records,
        as read."""
        documents = self._notes.issued_against(invoice)
        for record in documents:
            if _unfinished(record):
                self._finish(record, issued, account, False)
        return documents

    def _refuse_voided(self, invoice: InvoiceRecord, issued: IssuedInvoice) -> None:
        """CorrectionRefused if the invoice was voided: a void says it should not have
        been issued, and a re-rate charging it again by an adjustment would undo that."""
        voided = self._notes.find(invoice, VOID)
        if voided is not None:
            raise CorrectionRefused(
                f"{issued.number} was voided by {voided.invoice_number}: a voided invoice is "
                "not corrected"
            )

    def _issued(
        self, account_id: str, period: str, done: str
    ) -> tuple[InvoiceRecord, IssuedInvoice, Account]:
        """The invoice of (account, period), stored; its JSON; and its account."""
        invoice = self._invoices.get_many([(account_id, period)]).get((account_id, period))
        if invoice is None or not invoice.stored or invoice.json_key is None:
            raise CorrectionRefused(
                f"the invoice of {account_id} for {period} is not issued and stored: only an "
                f"issued invoice can be {done}"
            )
        account = self._config.accounts([account_id]).get(account_id)
        if account is None:
            raise CorrectionRefused(f"account {account_id!r} is not known")
        issued = IssuedInvoice.from_document(
            json.loads(self._delivery.documents.get(invoice.json_key))
        )
        return invoice, issued, account

    def _finish(
        self, record: CreditNoteRecord, issued: IssuedInvoice, account: Account, new: bool
    ) -> CreditNoteOutcome:
        note = credit_note_from_document(json.loads(record.document), issued)
        pdf = self._store(record, note, account)
        record = self._notes.reload(record)
        self._announce(record)
        email, why = self._email(record, note, account, pdf)
        return CreditNoteOutcome(
            credit_note_number=record.invoice_number,
            invoice_number=record.corrects,
            account_id=record.account_id,
            period=record.period,
            correction=record.correction,
            reason=note.reason,
            currency=str(record.currency),
            subtotal=str(note.subtotal),
            tax=str(note.tax),
            total=str(note.total),
            json_key=str(record.json_key),
            pdf_key=str(record.pdf_key),
            new=new,
            email=email,
            email_reason=why or None,
        )

    def _store(self, record: CreditNoteRecord, note: CreditNote, account: Account) -> bytes:
        """Write the note's JSON (its record's bytes) and PDF beside its invoice, once, and
        record them stored; the PDF as stored (another attempt's, if it wrote first)."""
        key = (record.account_id, record.period, record.invoice_number)
        json_key, pdf_key = document_key(*key, "json"), document_key(*key, "pdf")
        documents = self._delivery.documents
        documents.put_new(json_key, record.document.encode(), "application/json")
        issuer = self._delivery.issuer
        pdf = documents.put_new(
            pdf_key, render_credit_note_pdf(note, account, issuer), "application/pdf"
        )
        if record.status == "numbered":
            self._notes.mark_stored(record, json_key, pdf_key)  # False: another attempt did
        return pdf

    def _announce(self, record: CreditNoteRecord) -> None:
        """Publish CreditNoteIssued once: under a claim on the record (two attempts at once
        publish one event), then record it. An attempt that stopped between the bus taking
        it and that record is repeated once its claim's lease is over: the same event, which
        consumers dedupe on `event_id`."""
        if record.announced:
            return
        now = self._delivery.now()
        token = uuid.uuid4().hex
        if self._notes.claim_announcement(record, token, now, now - EMAIL_CLAIM_LEASE):
            try:
                self._delivery.events.publish(issued_event(record), credit_note_issued(record))
            except StoreError:
                # The bus answered no: give the claim back, so the operator's next attempt
                # publishes at once (this one fails, saying so).
                self._notes.release_announcement(record, token)
                raise
            self._notes.mark_announced(record)

    def _email(
        self, record: CreditNoteRecord, note: CreditNote, account: Account, pdf: bytes
    ) -> tuple[str, str | None]:
        """The note's one email: claimed, sent and recorded as an invoice's; what became of
        it. A claim left `sending` by an attempt that stopped is never sent again: once its
        lease is over it is recorded `unknown` (it may have left)."""
        if record.email_status == "sending" and self._delivery.claim_expired(record):
            reason = "the attempt sending it stopped: it may or may not have left"
            if self._notes.expire_claim(record, reason):
                return "unknown", reason
        if record.email_status in FAILURE_EVENTS and not record.failure_announced:
            # The failed email's event an earlier attempt could not publish: its outbox is
            # the record's `failure_announced` (StoreError if the bus refuses again).
            announce_delivery_failure(self._delivery.events, self._notes, record)
        if record.email_status is not None:
            return record.email_status, record.email_reason
        raw = credit_note_email(note, account, pdf, self._delivery.issuer)
        token = uuid.uuid4().hex
        if not self._notes.claim_email(record, self._delivery.now(), token).claimed:
            return "sending", None  # another attempt claimed it meanwhile
        item = Numbered(
            account_id=record.account_id, period=record.period, invoice_number=record.invoice_number
        )
        outcome = Emails()
        try:
            self._delivery.deliver(item, record, account, token, raw, outcome)
        except NotSent as error:
            return "not_sent", str(error)  # released: voiding again sends it
        if outcome.sent:
            return "sent", None
        if outcome.undelivered:
            if outcome.failed:  # the bus refused its failure event: the outbox stays open
                return "undelivered", (
                    f"{outcome.undelivered[0].reason}; its InvoiceDeliveryFailed was not "
                    f"published ({outcome.failed[0].reason}): void or correct again to publish it"
                )
            return "undelivered", outcome.undelivered[0].reason
        return "unknown", outcome.failed[0].reason


def _refuse_moved(
    issued: IssuedInvoice, credited: Credited, after: Sequence[str], mine: Sequence[str]
) -> None:
    """CorrectionRefused unless the invoice stands after exactly `after` and this
    correction's own documents: a document issued since the re-rate read it would make
    this one start from where the invoice no longer stands."""
    expected = (*after, *mine)
    if tuple(credited.notes) == expected:
        return
    since = [number for number in credited.notes if number not in expected]
    issued_mine = f" (its {', '.join(mine)} stands issued)" if mine else ""
    by = f" by {', '.join(since)}" if since else ""
    raise CorrectionRefused(
        f"{issued.number} was corrected since this correction was re-rated{by}{issued_mine}: "
        "re-rate it again"
    )


def _unfinished(record: CreditNoteRecord) -> bool:
    """Whether a step of the document is left: storing, announcing, its email (claimed but
    not known sent, or not claimed), or its failure's event."""
    return (
        record.status == "numbered"
        or not record.announced
        or record.email_status in (None, "sending")
        or (record.email_status in FAILURE_EVENTS and not record.failure_announced)
    )
