"""The usage event (schema v1, or CloudEvents 1.0 structured mode) and its decoding.

`decode_record` turns a record's raw bytes into a `UsageEvent` or a `Rejection` carrying the
first of TOO_LARGE, MALFORMED_JSON and SCHEMA_INVALID that applies. It never raises on bad
input. The checks that need the catalog, the accounts or the clock live in `intake`.

The schema is the pydantic model `UsageEventSchema`; every record that is not in the common
shape (see `_CommonShape`) goes through it, and it alone explains what is wrong with a bad
one. Records in the common shape are validated by pydantic in one call over their bytes.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, NamedTuple, NotRequired

import jiter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    with_config,
)
from typing_extensions import TypedDict

from billing.core.fields import AccountId, EventId, MeterName, readable

MAX_RECORD_BYTES: Final = 16 * 1024
MAX_QUANTITY: Final = Decimal("1e15")
MAX_QUANTITY_DECIMALS: Final = 12
MAX_DIMENSIONS: Final = 10


class Reason(StrEnum):
    """Why a record was rejected, in the order the checks run (CONTRACT.md section 1)."""

    TOO_LARGE = "TOO_LARGE"
    MALFORMED_JSON = "MALFORMED_JSON"
    SCHEMA_INVALID = "SCHEMA_INVALID"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_METER = "UNKNOWN_METER"
    FUTURE_TIMESTAMP = "FUTURE_TIMESTAMP"
    NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
    PERIOD_CLOSED = "PERIOD_CLOSED"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    message: str


# RFC 3339 date-time: 'T' or 't', up to 9 fractional digits, offset 'Z', 'z' or +hh:mm.
# ASCII digits only: Python's \d would also take other scripts' digits.
_RFC3339: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
# Instants this close to the ends of the calendar cannot be moved into every time zone (a
# period's bounds, an account's local date): they are refused as out of range. The first
# period whose bounds can be is 0001-02 (0001-01 starts before year 1 in UTC+14).
_EARLIEST: Final = datetime(1, 2, 2, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)
_DECIMAL_STRING: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Timestamp(NamedTuple):
    """An instant to the nanosecond: `at` holds it to the microsecond, `nanos` the rest."""

    at: datetime
    nanos: int = 0

    def is_after(self, instant: datetime) -> bool:
        return self.at > instant or (self.at == instant and self.nanos > 0)


def parse_timestamp(text: str) -> Timestamp:
    """Parse an RFC 3339 date-time with an offset; ValueError says what is wrong."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-11-05T14:30:00Z")
    day, minute, second, fraction, offset = match.groups()
    if second != "60" and offset != "z" and text[10] == "T" and len(fraction or "") <= 6:
        return _common_timestamp(text)
    fraction = (fraction or "").ljust(9, "0")
    if second == "60":  # RFC 3339 allows a leap second; count it as the minute's last instant
        second, fraction = "59", "999999999"
    if offset in "Zz":
        offset = "+00:00"
    try:
        at = datetime.fromisoformat(f"{day}T{minute}:{second}.{fraction[:6]}{offset}")
        at = at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    return _in_range(Timestamp(at, int(fraction[6:])))


# The common form of an RFC 3339 date-time: 'T', seconds 00-59, at most 6 fractional digits,
# offset 'Z' or +hh:mm. `datetime.fromisoformat` reads exactly this form as RFC 3339 means it.
_COMMON_TIMESTAMP: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


def _common_timestamp(text: str) -> Timestamp:
    """A timestamp already known to be RFC 3339 in the common form: fromisoformat (in C)
    checks the calendar and reads it as it stands."""
    try:
        at = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    return _in_range(Timestamp(at))


def _in_range(timestamp: Timestamp) -> Timestamp:
    if not _EARLIEST <= timestamp.at < _LATEST:
        raise ValueError("is out of range (years 0001 and 9999 cannot be placed in every zone)")
    return timestamp


_MAX_WHOLE_QUANTITY: Final = int(MAX_QUANTITY)


def _parse_quantity(value: object) -> Decimal:
    if type(value) is int:  # a JSON integer, the common case: no fraction to check
        if 0 <= value <= _MAX_WHOLE_QUANTITY:
            return Decimal(value)
        raise ValueError("must be >= 0" if value < 0 else "must be at most 1e15")
    if isinstance(value, str):
        if not _DECIMAL_STRING.fullmatch(value):
            raise ValueError(
                'as a string must be digits with an optional fraction, like "12" or "0.25"'
            )
        quantity = Decimal(value)
    elif isinstance(value, Decimal):  # a JSON number with a fraction or exponent, exactly
        quantity = value
    elif isinstance(value, _HugeNumber):
        raise ValueError("must be at most 1e15")
    else:
        raise ValueError("must be a JSON number or a decimal string")
    if not quantity.is_finite():
        raise ValueError("must be finite")
    if quantity < 0:
        raise ValueError("must be >= 0")
    if quantity > MAX_QUANTITY:
        raise ValueError("must be at most 1e15")
    if quantity.is_zero():
        return Decimal(0)  # -0, 0E-30 and 0.000 are all plain zero
    if _decimal_places(quantity) > MAX_QUANTITY_DECIMALS:
        raise ValueError(f"must have at most {MAX_QUANTITY_DECIMALS} digits after the point")
    return quantity


def _decimal_places(value: Decimal) -> int:
    """Digits after the point that the value needs (trailing zeros do not count).

    Worked out from the digits themselves: normalize() would round to the context's
    precision and could hide a digit far after the point."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values only
    if exponent >= 0:
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-(exponent + trailing_zeros), 0)


DimensionKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DimensionValue = Annotated[str, StringConstraints(min_length=1, max_length=256)]


Dimensions = Annotated[dict[DimensionKey, DimensionValue], Field(max_length=MAX_DIMENSIONS)]


class UsageEvent(NamedTuple):
    """One metered usage event, validated. `quantity` is exact; `timestamp` is in UTC.

    A plain tuple rather than a model: one is made for every record on the hot path."""

    event_id: str
    account_id: str
    meter: str
    quantity: Decimal
    timestamp: Timestamp
    dimensions: dict[str, str]


class UsageEventSchema(BaseModel):
    """The schema v1 event as validated at the edge: the rules of CONTRACT.md section 1."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    event_id: EventId
    account_id: AccountId
    meter: MeterName
    quantity: Decimal
    timestamp: Timestamp
    dimensions: Dimensions = Field(default_factory=dict)

    @field_validator("quantity", mode="plain")
    @classmethod
    def _quantity(cls, value: object) -> Decimal:
        return _parse_quantity(value)

    @field_validator("timestamp", mode="plain")
    @classmethod
    def _timestamp(cls, value: object) -> Timestamp:
        if isinstance(value, Timestamp):
            return value
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return parse_timestamp(value)

    @field_validator("dimensions", mode="before")
    @classmethod
    def _absent_dimensions(cls, value: object) -> object:
        return {} if value is None else value

    def event(self) -> UsageEvent:
        return UsageEvent(
            self.event_id,
            self.account_id,
            self.meter,
            self.quantity,
            self.timestamp,
            self.dimensions,
        )


WholeQuantity = Annotated[int, Field(ge=0, le=_MAX_WHOLE_QUANTITY)]


@with_config(ConfigDict(strict=True, extra="forbid"))
class _CommonShape(TypedDict):
    """The shape nearly every record has: a schema v1 event, nothing else, a whole-number
    quantity and a timestamp in the common form. It accepts only what `UsageEventSchema`
    accepts, with the same values; anything else (a CloudEvent, an extra field, a fraction,
    a leap second, nanoseconds, anything wrong) goes through `UsageEventSchema` instead."""

    event_id: EventId
    account_id: AccountId
    meter: MeterName
    quantity: WholeQuantity
    timestamp: Annotated[str, StringConstraints(pattern=_COMMON_TIMESTAMP)]
    dimensions: NotRequired[Dimensions]


# Parses and validates a record's bytes in one call into pydantic's core (JSON integers stay
# exact ints); the adapter's validator is called directly, skipping a Python wrapper.
_COMMON_SHAPE: Final = TypeAdapter(_CommonShape).validator


def _common_event(data: bytes) -> UsageEvent | None:
    """The event, when the record is in the common shape; None sends it the full way."""
    try:
        fields: _CommonShape = _COMMON_SHAPE.validate_json(data)
        timestamp = _common_timestamp(fields["timestamp"])
    except (ValidationError, ValueError):  # not the common shape, or a bad calendar date
        return None
    return UsageEvent(
        fields["event_id"],
        fields["account_id"],
        fields["meter"],
        Decimal(fields["quantity"]),
        timestamp,
        fields.get("dimensions", {}),
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _HugeNumber:
    """A JSON number whose exponent is beyond what Decimal can hold (1e999999999999999999).
    Integers have no exponent, so only numbers with a fraction or exponent can be one."""


def _number(text: str) -> Decimal | _HugeNumber:
    try:
        return Decimal(text)
    except decimal.InvalidOperation:
        return _HugeNumber()


# The reference decoder: numbers become Decimal straight from their text.
_DECODER: Final = json.JSONDecoder(
    parse_float=_number, parse_int=Decimal, parse_constant=_refuse_constant
)


def parse_json(data: bytes) -> Any:
    """A record's JSON, numbers exact: a quantity never passes through float.

    jiter (pydantic's JSON parser, in Rust) reads fractions as Decimal and integers as int,
    about 2.5 times faster than the standard library. Anything it refuses is read again by
    the standard library's decoder, which either explains the error or holds what jiter
    cannot (a number like 1e999999999999999999999)."""
    try:
        return jiter.from_json(data, float_mode="decimal", allow_inf_nan=False)
    except ValueError:
        return _DECODER.decode(data.decode("utf-8"))


def _from_cloudevent(document: dict[str, Any]) -> dict[str, Any]:
    if document.get("specversion") != "1.0":
        raise _SchemaProblem("specversion: only CloudEvents 1.0 is supported")
    data = document.get("data")
    if not isinstance(data, dict):
        raise _SchemaProblem("data: a CloudEvent must carry its quantity in a JSON object")
    fields = {
        "event_id": document.get("id"),
        "account_id": document.get("subject"),
        "meter": document.get("type"),
        "timestamp": document.get("time"),
        "quantity": data.get("quantity"),
        "dimensions": data.get("dimensions"),
    }
    return {name: value for name, value in fields.items() if value is not None}


class _SchemaProblem(Exception):
    pass


_CLOUDEVENT_NAMES: Final = {
    "event_id": "id",
    "account_id": "subject",
    "meter": "type",
    "timestamp": "time",
    "quantity": "data.quantity",
    "dimensions": "data.dimensions",
}


def _describe(error: ValidationError, cloudevent: bool) -> str:
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    message = readable(first)
    if location and cloudevent:
        location[0] = _CLOUDEVENT_NAMES.get(location[0], location[0])
    return f"{'.'.join(location) or 'event'}: {message}"


def decode_record(data: bytes) -> UsageEvent | Rejection:
    """Decode one raw Kinesis record; a bad record becomes a Rejection, never an exception."""
    if len(data) > MAX_RECORD_BYTES:
        return Rejection(
            Reason.TOO_LARGE, f"record is {len(data)} bytes; the limit is {MAX_RECORD_BYTES}"
        )
    event = _common_event(data)
    return decode_fully(data) if event is None else event


# The first bytes of a record aggregated by the Kinesis Producer Library.
KPL_AGGREGATE_MAGIC: Final = b"\xf3\x89\x9a\xc2"


def decode_fully(data: bytes) -> UsageEvent | Rejection:
    """Decode a record of at most MAX_RECORD_BYTES through `UsageEventSchema`."""
    if data.startswith(KPL_AGGREGATE_MAGIC):
        # Never opened: Firehose opens it for the raw archive, whose reader refuses its parts
        # (billing.rating.archive.ArchivedRecord.replay_bytes), so a replay rejects it too.
        return Rejection(
            Reason.MALFORMED_JSON,
            "record is a KPL aggregate of several records; put one event per record",
        )
    try:
        data.decode("utf-8")  # jiter reads bytes; this names the first bad byte
        document = parse_json(data)
    except UnicodeDecodeError as error:
        return Rejection(Reason.MALFORMED_JSON, f"record is not UTF-8 (byte {error.start})")
    except (ValueError, RecursionError) as error:
        return Rejection(Reason.MALFORMED_JSON, f"record is not valid JSON: {error}")
    if not isinstance(document, dict):
        return Rejection(Reason.SCHEMA_INVALID, "event: must be a JSON object")
    cloudevent = "specversion" in document
    try:
        fields = _from_cloudevent(document) if cloudevent else document
        return UsageEventSchema.model_validate(fields).event()
    except _SchemaProblem as problem:
        return Rejection(Reason.SCHEMA_INVALID, str(problem))
    except ValidationError as error:
        return Rejection(Reason.SCHEMA_INVALID, _describe(error, cloudevent))
