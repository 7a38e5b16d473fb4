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

from billing import fonts
from billing.core.money import MoneyError, exact
from billing.core.periods import FIRST_WHOLE, LAST_YEAR

EventId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
MeterName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,64}$")]

# Control characters, surrogates and line or paragraph separators: text printed on an
# invoice or put in an email header is one line.
_NOT_PRINTED = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _shown(characters: list[str]) -> str:
    named = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters[:5])
    return named + (f" and {len(characters) - 5} more" if len(characters) > 5 else "")


def printable(value: str) -> str:
    """Text an invoice can print: one line, every character drawn by the invoice fonts."""
    breaks = [c for c in dict.fromkeys(value) if unicodedata.category(c) in _NOT_PRINTED]
    if breaks:
        raise ValueError(f"must be one line without control characters (has {_shown(breaks)})")
    missing = fonts.missing(value)
    if missing:
        raise ValueError(
            f"has characters the invoice fonts cannot show: {_shown(missing)} (they cover "
            "Latin, Greek, Cyrillic, Arabic, Hebrew, Devanagari, Chinese, Japanese, "
            "Korean and emoji)"
        )
    if not any(_visible(character) for character in value):
        raise ValueError("must not be blank (it prints nothing)")
    return value


# What prints nothing on its own: spaces, marks that only combine with a character before
# them, format characters (zero-width space, direction marks, soft hyphen), and fillers.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Mn", "Me", "Cf"})
_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def _visible(character: str) -> bool:
    return (
        unicodedata.category(character) not in _INVISIBLE_CATEGORIES and character not in _FILLERS
    )


# A name, unit or description: printed on invoices, so it must be printable.
Text = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(printable)]

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


# The local dates a start, an end, a plan change or a grant may name: those of the periods
# (Period.parse), whose bounds are instants in every time zone.
FIRST_LOCAL_DATE = FIRST_WHOLE.first_day
LAST_LOCAL_DATE = date(LAST_YEAR, 12, 31)


def _local_date(value: object) -> object:
    if isinstance(value, date):  # YAML reads an unquoted 2026-10-10 as a date
        day = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a real date") from None
    else:
        raise ValueError('must be a local date like "2026-10-10"')
    if not FIRST_LOCAL_DATE <= day <= LAST_LOCAL_DATE:
        raise ValueError(
            f"{value!r} is out of range: a local date is from {FIRST_LOCAL_DATE} "
            f"to {LAST_LOCAL_DATE}"
        )
    return day


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


# An address every mail system takes as it is: an ASCII dot-atom before the @ (RFC 5322,
# no quoting), and a domain of letter-digit-hyphen labels. Anything else (non-ASCII, a
# comma or a bracket that a To header would split on) cannot be mailed as written.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_LABEL}")


def _email(value: object) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValueError(
            "is not an email address that can be mailed as written (ASCII, like "
            "billing@example.com)"
        )
    return printable(value)


Email = Annotated[str, PlainValidator(_email)]
# One line of a postal address, and a tax or VAT number, as printed on invoices.
AddressLine = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(printable)
]
TaxId = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(printable)]
