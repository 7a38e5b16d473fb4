"""The event's timestamp: an RFC 3339 date-time with an offset, to the nanosecond (pure).

`parse_timestamp` reads any form RFC 3339 allows and says what is wrong with a bad one;
`common_timestamp` reads the common form (`COMMON_TIMESTAMP`), which nearly every event
has, in one call into C.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, NamedTuple

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
_OUT_OF_RANGE: Final = "is out of range (years 0001 and 9999 cannot be placed in every zone)"
_new_tuple = tuple.__new__


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
        return common_timestamp(text)
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
COMMON_TIMESTAMP: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)


def common_timestamp(text: str) -> Timestamp:
    """A timestamp already known to be RFC 3339 in the common form: fromisoformat (in C)
    checks the calendar and reads it as it stands."""
    try:
        at = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date and time") from None
    if not _EARLIEST <= at < _LATEST:
        raise ValueError(_OUT_OF_RANGE)
    return _new_tuple(Timestamp, (at, 0))  # Timestamp(at), without its Python constructor


def _in_range(timestamp: Timestamp) -> Timestamp:
    if not _EARLIEST <= timestamp.at < _LATEST:
        raise ValueError(_OUT_OF_RANGE)
    return timestamp
