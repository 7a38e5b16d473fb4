"""What the invoice workflow's steps take and return, as it travels between the states of
`invoice_run.asl.json`: one pydantic model per shape.

A handler reads its event through its step's input model (`read`: a bad input is refused
naming the field) and returns its output model's `model_dump(mode="json")`. The JSON is the
one the ASL's paths select from (tests/unit/test_invoice_run_paths.py holds the two
together): a field that holds nothing (None) is left out, not written as null.

    ListDue: DueInput -> DueOutput (the due items written to S3 as a manifest of batches)
    Batches (a Distributed Map over the manifest), per batch (a BatchInput):
        Issue: IssueInput -> IssueOutput
        Send: SendInput -> SendOutput (or an operator's ResendInput -> ResendOutput)
        BatchDone | SendFailed | BatchFailed: a BatchResult, which RecordBatch writes to
        the run's folder in S3 as a BatchFile
    Report: ReportInput -> ReportOutput (the batches' results read from the run's folder)

Every state's input and output stays small whatever the number of accounts: what grows
with them (the due items, the batches' results, the full report) lives in S3.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    model_serializer,
)

from billing.core.events import parse_timestamp
from billing.core.fields import readable
from billing.core.invoice import utc_text
from billing.core.periods import Period


def _instant(value: object) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-11-05T14:30:00Z")
    return parse_timestamp(value).at


def _period_text(value: str) -> str:
    Period.parse(value)  # PeriodError (a ValueError) says what is wrong
    return value


def _period(value: object) -> Period:
    if isinstance(value, Period):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a period of the form YYYY-MM")
    return Period.parse(value)


# An aware instant, written in UTC with a 'Z' as every step has written it.
Instant = Annotated[datetime, PlainValidator(_instant), PlainSerializer(utc_text, return_type=str)]
# A period as text ('2026-11'): the key the invoice records use.
PeriodText = Annotated[str, AfterValidator(_period_text)]
# The run's period, if it names one (an empty one names none).
RunPeriod = Annotated[
    Period | None,
    PlainValidator(lambda value: _period(value) if value else None),
    PlainSerializer(lambda value: None if value is None else str(value)),
]


class Shape(BaseModel):
    """A JSON object between two states: no field beyond the model's, and a field that
    holds None left out of the JSON."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if value is not None}


class Item(Shape):
    """An (account, period) the run is to invoice."""

    account_id: str = Field(min_length=1)
    period: PeriodText


class Numbered(Item):
    """An invoice with its number."""

    invoice_number: str


class Failure(Shape):
    """An account's invoice the step could not finish, with the error's type and text."""

    account_id: str
    period: str
    invoice_number: str | None = None
    error: str
    reason: str

    @classmethod
    def of(cls, item: Item, error: BaseException) -> Failure:
        number = item.invoice_number if isinstance(item, Numbered) else None
        return cls(
            account_id=item.account_id,
            period=item.period,
            invoice_number=number,
            error=type(error).__name__,
            reason=_bounded(str(error)),
        )


# The longest reason a step carries: a batch's 99 failures stay far under the 256 KB a
# state's payload may hold, whatever an exception's text.
REASON_MAX: Final = 1000


def _bounded(reason: str) -> str:
    return reason if len(reason) <= REASON_MAX else reason[: REASON_MAX - 1] + "…"


class Sent(Numbered):
    message_id: str


class Undelivered(Numbered):
    """An invoice whose email SES refused for its address: `reason` says what SES said."""

    reason: str


class Emails(Shape):
    """What became of a batch's emails: sent, refused for the address, or failed (not
    sent, or not known to have left)."""

    sent: list[Sent] = Field(default_factory=list)
    undelivered: list[Undelivered] = Field(default_factory=list)
    failed: list[Failure] = Field(default_factory=list)


# --- the steps ------------------------------------------------------------------------------


class DueInput(Shape):
    """The run's input: its clock, and the one period to invoice if it names one."""

    now: Instant
    period: RunPeriod = None


class RunFolder(Shape):
    """Where one run keeps its files: its manifest, its batches' results and its report,
    under `prefix` (ending in '/') of the run bucket."""

    bucket: str
    prefix: str


class FileRef(Shape):
    """One object in S3."""

    bucket: str
    key: str


class ManifestBatch(Shape):
    """One element of the manifest: a batch of the Map, as many items as one numbering
    transaction takes."""

    items: list[Item]


class DueOutput(Shape):
    """The run's folder and manifest, and counts: never the items themselves."""

    issued_at: Instant
    folder: RunFolder
    manifest: FileRef
    batches: int
    items: int
    skipped: int
    max_concurrency: int = Field(ge=1)


class BatchInput(Shape):
    """What each batch of the Map starts from (its ItemSelector): the run's clock and
    folder, the batch's place in the manifest, and its items."""

    issued_at: Instant
    folder: RunFolder
    index: int = Field(ge=0)
    items: list[Item]


class IssueInput(Shape):
    """One batch of the Map: the run's clock and the batch's items."""

    issued_at: Instant
    items: list[Item]


class IssueOutput(Shape):
    """`unsent`: invoices Issue could not email (SES certainly did not take them), for
    Send, which also gets `skipped` (stored before, and perhaps not emailed)."""

    issued: list[Numbered] = Field(default_factory=list)
    skipped: list[Numbered] = Field(default_factory=list)
    failed: list[Failure] = Field(default_factory=list)
    emails: Emails = Field(default_factory=Emails)
    unsent: list[Numbered] = Field(default_factory=list)


class SendInput(Shape):
    """The invoices to email (Issue's `unsent` as `issued`, and its `skipped`), and the
    emails Issue sent, which the Send step's outcome includes."""

    issued_at: Instant
    issued: list[Numbered] = Field(default_factory=list)
    skipped: list[Numbered] = Field(default_factory=list)
    emails: Emails = Field(default_factory=Emails)


class SendOutput(Emails):
    """The batch's emails, those Issue sent included."""


class ResendRequest(Shape):
    account_id: str = Field(min_length=1)
    period: PeriodText


class ResendInput(Shape):
    """An operator's `billing invoices resend`, through the Send step's function."""

    resend: ResendRequest


class ResendOutput(Shape):
    account_id: str
    period: str
    invoice_number: str
    status: Literal["sent", "undelivered", "unknown", "not_sent"]
    message_id: str | None = None
    reason: str | None = None


# --- what each batch of the Map ends with ---------------------------------------------------


class BatchDone(Shape):
    """Counts, and failures by name (the Map's results must stay under 256 KB)."""

    issued: int
    skipped: int
    emailed: int
    failed: list[Failure]
    undelivered: list[Undelivered]
    send_failed: list[Failure]


class SendFailed(BatchDone):
    """The Send step failed whole (`send_error`): what Issue emailed still counts; what it
    left to Send (`unsent`, `unsent_skipped`) may not have been emailed."""

    send_error: str
    unsent: list[Numbered]
    unsent_skipped: list[Numbered]


class BatchFailed(Shape):
    """The Issue step failed whole: every item of the batch failed with its `error`."""

    items: list[Item]
    error: str


def _batch_kind(value: Any) -> str:
    """The state that ended the batch: its result's shape tells."""
    if isinstance(value, BaseModel):
        return type(value).__name__
    fields = value if isinstance(value, dict) else {}
    if "items" in fields:
        return "BatchFailed"
    return "SendFailed" if "send_error" in fields else "BatchDone"


BatchResult = Annotated[
    Annotated[BatchDone, Tag("BatchDone")]
    | Annotated[SendFailed, Tag("SendFailed")]
    | Annotated[BatchFailed, Tag("BatchFailed")],
    Discriminator(_batch_kind),
]


class BatchFile(Shape):
    """What RecordBatch writes for a batch: its result, at `key` of the run's folder."""

    bucket: str
    key: str
    result: BatchResult


class ReportInput(Shape):
    """The run's folder and manifest, and ListDue's counts: the batches' results are read
    from the folder (a batch with no result file is named failed, with its items)."""

    folder: RunFolder
    manifest: FileRef
    batches: int = Field(ge=0)
    skipped: int = Field(ge=0)  # counted by ListDue: done before this run


class ReportedFailure(Shape):
    """A failure as the run reports it: an account's (its invoice number when it has one),
    or a Send step's that named no invoice. A batch that failed whole gives no reason."""

    account_id: str | None = None
    period: str | None = None
    invoice_number: str | None = None
    error: str
    reason: str | None = None


class ReportOutput(Shape):
    """The run's counts, and the accounts it could not finish named. `failures` and
    `undelivered_invoices` are whole unless `truncated`: then they hold the first ones and
    the whole report is the object `report` names."""

    issued: int
    skipped: int
    failed: int
    emailed: int
    undelivered: int
    # emails certainly not sent and left for the next run (named among `failures`, with an
    # error of billing.invoicing.delivery.PENDING_EMAIL_ERRORS), not counted as failed
    pending: int = 0
    held: int  # emails our own sending account refused (among the failures)
    failures: list[ReportedFailure]
    undelivered_invoices: list[Undelivered]
    truncated: bool = False
    report: FileRef | None = None


# --- reading a step's input -----------------------------------------------------------------


class StepInputError(ValueError):
    """A step's input does not have the shape its model says (the first field that is
    wrong is named)."""


_Input = TypeVar("_Input", bound=BaseModel)


def read(model: type[_Input], event: Any) -> _Input:
    """`event` as the step's input model; StepInputError naming the first wrong field."""
    try:
        return model.model_validate(event)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        # A union's branch (the Map's result kinds) is named in the location: not a field.
        where = ".".join(str(part) for part in first["loc"] if part not in _KINDS) or "input"
        message = "is not a known field" if first["type"] == "extra_forbidden" else None
        raise StepInputError(f"{model.__name__}: {where}: {message or readable(first)}") from None


_KINDS = frozenset({"BatchDone", "SendFailed", "BatchFailed"})
