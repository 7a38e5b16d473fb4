"""What issuing a correction document answers (`billing invoices void`, `billing rerate
--apply` through the Send function): each document issued, its totals, where it is stored,
and what became of its email."""

from __future__ import annotations

from billing.invoicing.steps import Shape


class _Issued(Shape):
    """A correction document issued: what it corrects, its totals, where it is stored,
    whether this attempt numbered it (`new`), and what became of its email."""

    invoice_number: str
    account_id: str
    period: str
    correction: str
    reason: str
    currency: str
    subtotal: str
    tax: str
    total: str
    json_key: str
    pdf_key: str
    new: bool
    # sent, undelivered, unknown (may have left), sending (claimed by an attempt that may
    # still be sending it) or not_sent (SES certainly did not take it: voiding again sends it)
    email: str
    email_reason: str | None = None


class CreditNoteOutcome(_Issued):
    """What `billing invoices void` prints: the credit note, issued."""

    credit_note_number: str


class AdjustmentOutcome(_Issued):
    """An adjustment invoice, issued."""

    adjustment_number: str

    @classmethod
    def of(cls, issued: CreditNoteOutcome) -> AdjustmentOutcome:
        """The outcome `_finish` made of an adjustment's record, under its own number key."""
        fields = issued.model_dump(exclude={"credit_note_number"})
        return cls(adjustment_number=issued.credit_note_number, **fields)


class CorrectionOutcome(Shape):
    """What a correction issued under its key: a credit note, an adjustment invoice, both,
    or neither (the invoice stands at the corrected one already)."""

    correction: str
    credit_note: CreditNoteOutcome | None = None
    adjustment: AdjustmentOutcome | None = None
