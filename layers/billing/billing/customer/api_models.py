"""The usage API's bodies as pydantic models: what `functions/usage_api` answers, and what
the OpenAPI document it generates (docs/openapi.json) says it answers.

Each model restates a JSON shape the domain already writes (`UsageReport.to_json`,
`Invoice.to_json`, an invoice record as `account_views` lists it) and is built from it, so
the document cannot drift from the bodies: Powertools validates every answer against its
model before it leaves. Amounts and quantities stay the plain decimal strings the domain
wrote (re-reading them as `Decimal` could change their text), and a key the domain leaves
out when it has nothing to say (`filters`, `details`, ...) is left out again, not sent as
null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from billing.core.meters import Aggregation
from billing.store.credit_notes import CreditNoteRecord
from billing.store.invoice_store import InvoiceRecord

DecimalText = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        description="An exact decimal as a plain string, never an exponent",
        examples=["6.07"],
    ),
]
PeriodText = Annotated[
    str, Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="YYYY-MM", examples=["2026-11"])
]
Instant = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, description="RFC 3339, with an offset")
]
Filters = dict[str, list[str]]


def _absent(value: object) -> bool:
    return value is None


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omitted_when_none(description: str, alias: str | None = None) -> Any:
    """A key the body leaves out (rather than writing null) when there is nothing to say.
    The schema says so: the key is optional, and null is not one of its values."""
    return Field(
        default=None,
        alias=alias,
        exclude_if=_absent,
        description=description,
        json_schema_extra=_drop_default,
    )


class _InPhase(BaseModel):
    """A line of a phase, on an invoice of more than one phase (CONTRACT.md 2a)."""

    plan: str | SkipJsonSchema[None] = omitted_when_none("The plan of the line's phase")
    first: str | SkipJsonSchema[None] = omitted_when_none(
        "The first local date (YYYY-MM-DD) of the phase's part of the period", alias="from"
    )
    end: str | SkipJsonSchema[None] = omitted_when_none(
        "The local date after the phase's part of the period (exclusive)", alias="to"
    )


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(_Body):
    """Every error: the status again, and a message a caller can act on."""

    status_code: int = Field(alias="statusCode", title="Status code")
    message: str


class ChargeBody(_InPhase, _Body):
    """One charge of the plan on a meter: what it prices so far and its running amount."""

    filters: Filters | SkipJsonSchema[None] = omitted_when_none(
        "The charge's dimension filters, as in the catalog; absent when it has none"
    )
    description: str
    quantity: DecimalText
    events: int = Field(ge=0, description="The events the charge counts")
    amount: DecimalText


class MeterBody(_Body):
    meter: str
    description: str
    unit: str | None = Field(description="null only for a meter the catalog has since dropped")
    aggregation: Aggregation
    quantity: DecimalText = Field(description="The meter's aggregate over all its events")
    events: int = Field(ge=0, description="The events rated")
    charges: list[ChargeBody]


class PriceStepBody(_Body):
    """How a line's amount was reached, step by step (a tier, a package, a proration)."""

    description: str
    quantity: DecimalText
    unit_price: DecimalText | SkipJsonSchema[None] = omitted_when_none(
        "The step's unit price; absent for a step without one (a flat fee)"
    )
    amount: DecimalText


class _LineFields(_InPhase):
    """What an invoice line says of itself (CONTRACT.md section 4)."""

    kind: Literal["usage", "fixed", "minimum", "discount"]
    discount: str | SkipJsonSchema[None] = omitted_when_none(
        "The discount's id, on a discount line (CONTRACT.md 2a)"
    )
    meter: str | SkipJsonSchema[None] = omitted_when_none("The meter a usage line prices")
    filters: Filters | SkipJsonSchema[None] = omitted_when_none(
        "A usage line's dimension filters, as in the catalog"
    )
    description: str
    quantity: DecimalText
    amount: DecimalText
    unit: str | SkipJsonSchema[None] = omitted_when_none("The meter's unit, on a usage line")


class InvoiceLineBody(_LineFields, _Body):
    """An invoice line, as the invoice document carries it (CONTRACT.md section 4)."""

    details: list[PriceStepBody] | SkipJsonSchema[None] = omitted_when_none(
        "How the amount was reached"
    )


class CreditDrawBody(_Body):
    """What an invoice draws from one prepaid credit grant (CONTRACT.md 2a)."""

    id: str
    amount: DecimalText


class InvoicePreviewBody(_Body):
    """The invoice the period would get if it closed now."""

    lines: list[InvoiceLineBody]
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText
    credits: list[CreditDrawBody] = Field(
        description="Prepaid credits the invoice draws, in drawing order (what it drew, "
        "once invoiced)"
    )
    credits_applied: DecimalText
    amount_due: DecimalText = Field(description="total − credits_applied")


class GrantBody(_Body):
    """One prepaid credit grant of the account (CONTRACT.md 2a)."""

    id: str
    amount: DecimalText
    granted: str = Field(description="Local date YYYY-MM-DD")
    expires: str | None = Field(description="Local date YYYY-MM-DD, exclusive; null: never")
    remaining: DecimalText = Field(description="Left after every invoice issued so far")
    this_period: DecimalText = Field(
        description="What this period's invoice draws from it: projected while the period "
        "is open, as drawn once it is invoiced"
    )


class UnpricedValueBody(_Body):
    value: str | None = Field(
        description="A value of the filtered dimension (its first 64 characters); null: the "
        "events lacked the dimension"
    )
    events: int = Field(ge=0)


class UnpricedBody(_InPhase, _Body):
    """A meter's usage that no charge of the plan took: rated, on no invoice line
    (docs/usage-api.md, "Unpriced usage")."""

    meter: str
    description: str
    unit: str | None = Field(description="null only for a meter the catalog has since dropped")
    reason: Literal["no_charge", "no_filter_matched"] = Field(
        description="no_charge: the plan has no charge on the meter; no_filter_matched: its "
        "charges on the meter all have filters, and these events passed none"
    )
    quantity: DecimalText = Field(description="The meter's aggregate over these events")
    events: int = Field(ge=0, description="The events no charge took")
    dimension: str | None = Field(
        description="The filtered dimension the values are of (no_filter_matched); else null"
    )
    values: list[UnpricedValueBody] = Field(
        description="Events by value of the dimension, most first (at most 10 values kept)"
    )
    other_events: int = Field(ge=0, description="Events of values not listed")


class BusiestDayBody(_Body):
    date: str = Field(description="Local date YYYY-MM-DD")
    quantity: DecimalText = Field(description="The day's aggregate of the meter")


class LineDaysBody(_Body):
    """When a usage line's meter was used, by local day (all its events, any line's)."""

    first: str = Field(description="The first local date (YYYY-MM-DD) with usage")
    last: str = Field(description="The last local date with usage")
    busiest: BusiestDayBody = Field(
        description="The day of the largest quantity (latest: of the last value)"
    )
    complete: bool = Field(description="false when the meter's days do not cover its total")


class ExplainedLineBody(_LineFields, _Body):
    """One line of the period's invoice with what makes it (docs/usage-api.md,
    "Explanation"): a usage line's aggregation and the events it counts, and every
    line's price step by step."""

    aggregation: str | SkipJsonSchema[None] = omitted_when_none(
        "How a usage line's events add up to its quantity (sum, count, max, unique_count, latest)"
    )
    events: int | SkipJsonSchema[None] = omitted_when_none(
        "The events a usage line counts (those passing its filters, in its phase)"
    )
    days: LineDaysBody | SkipJsonSchema[None] = omitted_when_none(
        "When a usage line's meter was used (its usage by local day); left out without usage"
    )
    steps: list[PriceStepBody] = Field(description="How the amount was reached")


class ExplanationBody(_Body):
    """Each line of the period's invoice (as it stands; as made, once invoiced) with what
    makes it, and the usage no line prices."""

    account_id: str
    period: PeriodText
    status: Literal["open", "closed"] = Field(description="closed once the period is invoiced")
    currency: str = Field(description="ISO 4217")
    lines: list[ExplainedLineBody]
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText
    unpriced: list[UnpricedBody] = Field(description="Usage rated but priced by no line")


class UsageReportBody(_Body):
    """An account's usage and running charges in one period (docs/usage-api.md)."""

    account_id: str
    period: PeriodText
    period_start: Instant
    period_end: Instant
    status: Literal["open", "closed"] = Field(description="closed once the period is invoiced")
    as_of: Instant
    currency: str = Field(description="ISO 4217")
    meters: list[MeterBody]
    usage_subtotal: DecimalText = Field(description="The usage lines, before fee, minimum and tax")
    invoice_preview: InvoicePreviewBody
    credits: list[GrantBody] = Field(description="The account's prepaid credit grants")
    unpriced: list[UnpricedBody] = Field(
        description="Usage no charge of the plan took, by meter (and phase): not invoiced"
    )


class InvoiceRecordBody(_Body):
    """An invoice as the account's list shows it: no storage keys, no message ids."""

    invoice_number: str
    period: PeriodText
    issued_at: Instant
    status: Literal["numbered", "stored"] = Field(
        description="numbered while the invoice is being issued, stored after"
    )
    currency: str | None = Field(description="null while numbered")
    total: DecimalText | None = Field(description="null while numbered")
    email_status: str | None = Field(
        description="null before any email, then sending, sent, undelivered, unknown, "
        "bounced or complained"
    )

    @classmethod
    def of(cls, record: InvoiceRecord) -> InvoiceRecordBody:
        return cls(
            invoice_number=record.invoice_number,
            period=record.period,
            issued_at=record.issued_at,
            status="stored" if record.stored else "numbered",
            currency=record.currency,
            total=record.total,
            email_status=record.email_status,
        )


class InvoiceListBody(_Body):
    """The account's invoices, oldest period first."""

    account_id: str
    invoices: list[InvoiceRecordBody]


class CreditNoteBody(_Body):
    """A credit note as the account's list shows it (docs/invoicing.md, *Credit notes*): the
    invoice it corrects and what it credits; no storage keys, no message ids."""

    credit_note_number: str
    invoice_number: str = Field(description="The invoice it corrects")
    period: PeriodText
    issued_at: Instant
    correction: str = Field(description="void, or the correction that issued it")
    status: Literal["numbered", "stored"] = Field(
        description="numbered while it is being issued, stored after"
    )
    currency: str
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText = Field(description="The amount credited, tax included")

    @classmethod
    def of(cls, record: CreditNoteRecord) -> CreditNoteBody:
        return cls(
            credit_note_number=record.invoice_number,
            invoice_number=record.corrects,
            period=record.period,
            issued_at=record.issued_at,
            correction=record.correction,
            status="stored" if record.stored else "numbered",
            currency=str(record.currency),
            subtotal=str(record.subtotal),
            tax=str(record.tax),
            total=str(record.total),
        )


class CreditNoteListBody(_Body):
    """The account's credit notes, by the invoice they correct."""

    account_id: str
    credit_notes: list[CreditNoteBody]


class AdjustmentBody(_Body):
    """An adjustment invoice as the account's list shows it (docs/invoicing.md, *Adjustment
    invoices*): the invoice it corrects and what it charges on top; no storage keys, no
    message ids."""

    adjustment_number: str
    invoice_number: str = Field(description="The invoice it corrects")
    period: PeriodText
    issued_at: Instant
    correction: str = Field(description="The correction that issued it (a re-rate's key)")
    status: Literal["numbered", "stored"] = Field(
        description="numbered while it is being issued, stored after"
    )
    currency: str
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText = Field(description="The amount charged on top, tax included")

    @classmethod
    def of(cls, record: CreditNoteRecord) -> AdjustmentBody:
        return cls(
            adjustment_number=record.invoice_number,
            **CreditNoteBody.of(record).model_dump(exclude={"credit_note_number"}),
        )


class AdjustmentListBody(_Body):
    """The account's adjustment invoices, by the invoice they correct."""

    account_id: str
    adjustments: list[AdjustmentBody]


class InvoiceDocumentBody(BaseModel):
    """The invoice document (CONTRACT.md section 4), byte for byte as it was stored: only
    described here, never re-written, so it may carry keys added since."""

    model_config = ConfigDict(frozen=True, extra="allow")

    invoice_number: str
    account_id: str
    period: PeriodText
    period_start: Instant
    period_end: Instant
    issued_at: Instant
    currency: str
    lines: list[InvoiceLineBody]
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText
