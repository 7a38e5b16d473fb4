"""Field types shared by the event schema, the catalog and the accounts."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
)
from pydantic_core import ErrorDetails

from billing.money import MoneyError, exact

EventId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
MeterName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]


def _one_line(value: str) -> str:
    # Names and descriptions go in email headers and on one line of the PDF: a line break
    # would end the header (the email could never be sent) and a control character has no
    # glyph. Every other character, in any script, is fine.
    for character in value:
        if character in _LINE_BREAKS:
            raise ValueError("must not contain line breaks")
        if unicodedata.category(character) == "Cc":
            raise ValueError(f"must not contain control characters (U+{ord(character):04X})")
    return value


# What str.splitlines() breaks on, beyond the C0 controls: NEL, LS, PS (and CR, LF, VT, FF,
# FS, GS, RS, which are controls too but named here as line breaks).
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")

# Free text from the catalog and accounts files (names, units, descriptions): one line.
Text = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_one_line)]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _decimal(value: object) -> Decimal:
    # YAML and JSON both turn 0.1 into a float, which is not 0.1: refuse it with a hint.
    if isinstance(value, float):
        raise ValueError(f'must be a decimal string like "{value!r}", not a bare number')
    if not isinstance(value, Decimal | int | str) or isinstance(value, bool):
        raise ValueError("must be a decimal string")
    try:
        return exact(value)
    except MoneyError:
        raise ValueError(f"{value!r} is not a decimal number") from None


def _non_negative(value: object) -> Decimal:
    number = _decimal(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _positive(value: object) -> Decimal:
    number = _decimal(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _rate(value: object) -> Decimal:
    number = _non_negative(value)
    if number > 1:
        raise ValueError('is a fraction, at most 1 (write "0.20" for 20%)')
    return number


def _local_date(value: object) -> object:
    if isinstance(value, date):  # YAML reads an unquoted 2026-10-10 as a date
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    raise ValueError('must be a local date like "2026-10-10"')


# What a field that failed its pattern must look like, by field name.
_FORMS = {
    "event_id": "must be 1-128 printable ASCII characters without spaces",
    "account_id": "must be 1-64 of A-Z a-z 0-9 . _ -",
    "id": "must be 1-64 of A-Z a-z 0-9 . _ -",
    "plan": "must be 1-64 of A-Z a-z 0-9 . _ -",
    "meter": "must be 1-64 of a-z 0-9 _ . -",
    "name": "must be 1-64 of a-z 0-9 _ . -",
}


def readable(error: ErrorDetails) -> str:
    """A validation error's message in words a person editing the input can act on."""
    if error["type"] == "string_pattern_mismatch":
        field = str(error["loc"][-1]) if error["loc"] else ""
        return _FORMS.get(field, "has characters or a length that are not allowed")
    if error["type"] == "missing":
        return "is required"
    return str(error["msg"]).removeprefix("Value error, ")


# In JSON, decimals are written as the strings they were read from ("0.00012", never 1.2E-4).
_AS_TEXT = PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")

# A price or an amount: a decimal string (or an int), never a float, never negative.
Price = Annotated[Decimal, PlainValidator(_non_negative), _AS_TEXT]
# A count of units such as a tier bound or a package size: strictly positive.
PositiveQuantity = Annotated[Decimal, PlainValidator(_positive), _AS_TEXT]
# A tax rate as a fraction between 0 and 1.
Rate = Annotated[Decimal, PlainValidator(_rate), _AS_TEXT]
LocalDate = Annotated[date, BeforeValidator(_local_date)]
