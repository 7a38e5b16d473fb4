"""The usage event (schema v1, or CloudEvents 1.0 structured mode) and its decoding.

`decode_record` turns a record's raw bytes into a `UsageEvent` or a `Rejection` carrying the
first of TOO_LARGE, MALFORMED_JSON and SCHEMA_INVALID that applies. It never raises on bad
input. The checks that need the catalog, the accounts or the clock live in `intake`.

The schema is the pydantic model `UsageEventSchema`; every record that is not in the common
shape (see `_CommonRecord`) goes through it, and it alone explains what is wrong with a bad
one. Records in the common shape are decoded by msgspec in one call over their bytes.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, NamedTuple, get_args

import jiter
import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from billing.core.fields import AccountId, EventId, MeterName, readable
from billing.core.timestamps import (
    COMMON_TIMESTAMP,
    Timestamp,
    common_timestamp,
    parse_timestamp,
)

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


_DECIMAL_STRING: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


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


def _bare(pattern: object) -> str:
    """A pattern without its anchors, to be matched with `fullmatch`."""
    assert isinstance(pattern, str)
    assert pattern.startswith("^")
    assert pattern.endswith("$")
    return pattern[1:-1]


def _pattern(field: object) -> object:
    """The pattern of one of the schema's string fields (`Annotated` with constraints)."""
    return get_args(field)[1].pattern


class _CommonRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The shape nearly every record has: a schema v1 event, nothing else, a whole-number
    quantity and string fields. msgspec decodes it from the bytes in one call (in C,
    integers exact); `_COMMON_FIELDS` then holds the ids and the timestamp to the schema's
    patterns, the timestamp to the common form. It accepts only what `UsageEventSchema`
    accepts, with the same values; anything else (a CloudEvent, an extra field, a fraction,
    a leap second, nanoseconds, anything wrong) goes through `UsageEventSchema` instead."""

    event_id: str
    account_id: str
    meter: str
    quantity: Annotated[int, msgspec.Meta(ge=0, le=_MAX_WHOLE_QUANTITY)]
    timestamp: str
    dimensions: Annotated[
        dict[
            Annotated[str, msgspec.Meta(min_length=1, max_length=64)],
            Annotated[str, msgspec.Meta(min_length=1, max_length=256)],
        ],
        msgspec.Meta(max_length=MAX_DIMENSIONS),
    ] = {}


_COMMON_DECODER: Final = msgspec.json.Decoder(_CommonRecord)
_new_tuple = tuple.__new__
# The event id, account id, meter and timestamp joined by NUL, which none of them may hold:
# one match checks all four.
_COMMON_FIELDS: Final = re.compile(
    "\0".join(_bare(_pattern(field)) for field in (EventId, AccountId, MeterName))
    + "\0"
    + _bare(COMMON_TIMESTAMP)
)


def _common_event(data: bytes) -> UsageEvent | None:
    """The event, when the record is in the common shape; None sends it the full way."""
    try:
        fields = _COMMON_DECODER.decode(data)
    except (msgspec.DecodeError, ValueError):  # not the common shape, or not UTF-8
        return None
    event_id, account_id, meter, text = (
        fields.event_id,
        fields.account_id,
        fields.meter,
        fields.timestamp,
    )
    if _COMMON_FIELDS.fullmatch(f"{event_id}\0{account_id}\0{meter}\0{text}") is None:
        return None
    try:
        timestamp = common_timestamp(text)
    except ValueError:  # a bad calendar date
        return None
    # UsageEvent(...) without its Python-level constructor: one is made for every record.
    return _new_tuple(
        UsageEvent,
        (event_id, account_id, meter, Decimal(fields.quantity), timestamp, fields.dimensions),
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


# Timestamp and parse_timestamp are named here too, as they were before their own module.
__all__ = [
    "KPL_AGGREGATE_MAGIC",
    "MAX_DIMENSIONS",
    "MAX_QUANTITY",
    "MAX_QUANTITY_DECIMALS",
    "MAX_RECORD_BYTES",
    "DimensionKey",
    "DimensionValue",
    "Dimensions",
    "Reason",
    "Rejection",
    "Timestamp",
    "UsageEvent",
    "UsageEventSchema",
    "decode_fully",
    "decode_record",
    "parse_json",
    "parse_timestamp",
]
