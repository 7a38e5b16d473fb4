"""The customer API's bodies as pydantic models: what `functions/customer_api` answers and
takes, and what its OpenAPI document (docs/customer-openapi.json) says. Like
`billing.customer.api_models` (whose models the usage and invoice answers reuse), each
answer restates JSON the domain already writes and is checked against it before it leaves.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from billing.core.customer_thresholds import THRESHOLDS_MAX
from billing.core.fields import AccountId
from billing.core.meters import Aggregation
from billing.customer.api_models import (
    CreditDrawBody,
    DecimalText,
    GrantBody,
    Instant,
    InvoiceDocumentBody,
    InvoiceLineBody,
    PeriodText,
    omitted_when_none,
)

LocalDate = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="A local date in the account's time zone, YYYY-MM-DD",
        examples=["2026-11-15"],
    ),
]
# What a customer may send: plain decimal strings (a JSON number could be read as a float
# on the way), bounded; the account's currency decides its digits after the point.
AmountText = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,13}(\.[0-9]{1,4})?$",
        description="An amount in the account's currency, as a decimal string, with at most "
        "the currency's minor-unit digits; above 0",
        examples=["250.00"],
    ),
]
PercentText = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{1,4}(\.[0-9]{1,2})?$",
        description="A percentage of the budget, above 0 and at most 1000, as a decimal "
        "string with at most 2 digits after the point",
        examples=["80"],
    ),
]
Status = Literal["open", "closed"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlanRefBody(_Body):
    id: str
    name: str


class CurrentPeriodBody(_Body):
    period: PeriodText
    start: Instant
    end: Instant


class AccountBody(_Body):
    """The account as its customer sees it."""

    account_id: str
    name: str
    email: str
    currency: str = Field(description="ISO 4217")
    timezone: str = Field(description="IANA time zone: periods are its calendar months")
    plan: PlanRefBody = Field(description="The plan in force now")
    start: LocalDate | None = Field(description="Subscription start; null: none")
    end: LocalDate | None = Field(description="Subscription end, exclusive; null: none")
    current_period: CurrentPeriodBody


class DayBody(_Body):
    date: LocalDate
    quantity: DecimalText | None = Field(
        description="The day's own aggregate; null only for a `latest` meter's day without an event"
    )
    to_date: DecimalText | None = Field(
        description="The period's aggregate to the end of the day; null only for a `latest` "
        "meter before its first event"
    )


class DailyMeterBody(_Body):
    meter: str
    description: str
    unit: str | None = Field(description="null only for a meter the catalog has since dropped")
    aggregation: Aggregation
    quantity: DecimalText = Field(description="The meter's aggregate over the period so far")
    complete: bool = Field(
        description="false when the days do not account for the whole total (usage rated "
        "before days were kept, or a period whose days outgrew their budget)"
    )
    days: list[DayBody] = Field(description="Every local day of the period up to today")


class DailyUsageBody(_Body):
    """The period's usage per meter and local day (docs/customer-api.md)."""

    account_id: str
    period: PeriodText
    period_start: Instant
    period_end: Instant
    timezone: str
    status: Status
    as_of: Instant
    meters: list[DailyMeterBody]


class PhaseBody(_Body):
    plan: str
    name: str
    first: LocalDate = Field(alias="from", description="The phase's first local day")
    end: LocalDate = Field(alias="to", description="The local day after it (exclusive)")


class PreviewBody(_Body):
    """The invoice the period makes now (as made, once invoiced), without a number."""

    account_id: str
    period: PeriodText
    period_start: Instant
    period_end: Instant
    status: Status
    as_of: Instant
    currency: str
    phases: list[PhaseBody] = Field(description="The plans that price the period, in order")
    lines: list[InvoiceLineBody] = Field(description="Usage, fixed, minimum and discount lines")
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText
    credits: list[CreditDrawBody]
    credits_applied: DecimalText
    amount_due: DecimalText = Field(description="total − credits_applied")


class CreditsBody(_Body):
    """The account's prepaid credit grants."""

    account_id: str
    currency: str
    period: PeriodText = Field(description="The current period, whose draw `this_period` is")
    grants: list[GrantBody]


class InvoiceWithLinkBody(BaseModel):
    """One invoice: its document byte for byte as stored, and a short-lived link to its
    PDF."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    invoice: InvoiceDocumentBody
    pdf_url: str = Field(description="A presigned S3 GET of the invoice's PDF")
    pdf_url_expires_at: Instant


class CreditNoteDocumentBody(BaseModel):
    """The credit note document (docs/invoicing.md, *Credit notes*), byte for byte as it was
    stored: only described here, never re-written, so it may carry keys added since."""

    model_config = ConfigDict(frozen=True, extra="allow")

    credit_note_number: str
    account_id: str
    invoice_number: str = Field(description="The invoice it corrects")
    period: PeriodText
    correction: str = Field(description="void, or the correction that issued it")
    reason: str
    issued_at: Instant
    currency: str
    lines: list[dict[str, Any]] = Field(description="What it credits, line by line")
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText = Field(description="The amount credited, tax included")
    invoice_total: DecimalText
    invoice_total_after: DecimalText = Field(
        description="What the invoice comes to after this credit note and those before it"
    )


class CreditNoteWithLinkBody(BaseModel):
    """One credit note: its document byte for byte as stored, and a short-lived link to its
    PDF."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credit_note: CreditNoteDocumentBody
    pdf_url: str = Field(description="A presigned S3 GET of the credit note's PDF")
    pdf_url_expires_at: Instant


class AdjustmentDocumentBody(BaseModel):
    """The adjustment invoice document (docs/invoicing.md, *Adjustment invoices*): the credit
    note's shape with `adjustment_number`, byte for byte as it was stored; only described
    here, never re-written, so it may carry keys added since."""

    model_config = ConfigDict(frozen=True, extra="allow")

    adjustment_number: str
    account_id: str
    invoice_number: str = Field(description="The invoice it corrects")
    period: PeriodText
    correction: str = Field(description="The correction that issued it (a re-rate's key)")
    reason: str
    issued_at: Instant
    currency: str
    lines: list[dict[str, Any]] = Field(description="What it charges on top, line by line")
    subtotal: DecimalText
    tax: DecimalText
    total: DecimalText = Field(description="The amount charged on top, tax included")
    invoice_total: DecimalText
    invoice_total_after: DecimalText = Field(
        description="What the invoice comes to after this adjustment and the documents before it"
    )


class AdjustmentWithLinkBody(BaseModel):
    """One adjustment invoice: its document byte for byte as stored, and a short-lived link
    to its PDF."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    adjustment: AdjustmentDocumentBody
    pdf_url: str = Field(description="A presigned S3 GET of the adjustment invoice's PDF")
    pdf_url_expires_at: Instant


class ThresholdBody(_Body):
    """One threshold as stored: an amount, or a percentage of the budget with the amount
    it comes to."""

    id: str = Field(description="Its definition: `amount:<amount>` or `percent:<percent>`")
    percent: PercentText | SkipJsonSchema[None] = omitted_when_none(
        "The percentage of the budget, for a threshold set as one"
    )
    amount: DecimalText = Field(description="The amount, in the account's currency")


class ThresholdsBody(_Body):
    """The customer's own spend thresholds for the account."""

    account_id: str
    currency: str
    budget: DecimalText | None = Field(description="The monthly budget; null: none")
    thresholds: list[ThresholdBody]
    updated_at: Instant | None = Field(description="null: never set")


class ThresholdRequest(_Body):
    """Exactly one of `amount` or `percent`."""

    amount: AmountText | None = None
    percent: PercentText | None = None


class ThresholdsRequest(_Body):
    """The account's thresholds, all of them: what is stored is replaced."""

    account_id: AccountId | None = Field(
        default=None, description="Optional; if given, the caller's own account"
    )
    budget: AmountText | None = Field(
        default=None, description="A monthly budget the percentages are of; null: none"
    )
    thresholds: list[ThresholdRequest] = Field(max_length=THRESHOLDS_MAX)
