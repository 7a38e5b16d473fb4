"""Billing periods: calendar months in an account's IANA time zone.

Period `2026-11` in Europe/Paris runs from local midnight on 1 November (inclusive) to local
midnight on 1 December (exclusive). Every boundary is an aware datetime; DST changes only
the length of a period in hours, never which days it holds.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
LAST_YEAR: Final = 9998


class PeriodError(ValueError):
    """A malformed period or an unknown time zone."""


@functools.cache
def _iana_names() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`; anything else (paths, abbreviations) is refused."""
    if name not in _iana_names():
        raise PeriodError(f"{name!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"{name!r} is not an IANA time zone name") from None


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz`, as an aware local datetime.

    Where midnight does not exist (a DST gap at 00:00), the day starts at the transition:
    PEP 495 maps the missing wall time through the offset in force before it, which is
    exactly the instant the clocks jumped.
    """
    wall = datetime.combine(day, time(0), tzinfo=tz)
    return wall.astimezone(UTC).astimezone(tz)


@dataclass(frozen=True, order=True, slots=True)
class Period:
    year: int
    month: int

    @staticmethod
    @functools.cache
    def of(year: int, month: int) -> Period:
        """The period for a year and month, made once and shared (it is on the hot path)."""
        return Period(year, month)

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.fullmatch(text) if isinstance(text, str) else None
        if not match or int(match.group(1)) < 1:
            raise PeriodError(f"{text!r} is not a period of the form YYYY-MM")
        # A period's end is the next one's first day, which must be a date (9999 at most).
        if int(match.group(1)) > LAST_YEAR:
            raise PeriodError(f"{text!r} is after the last period, {LAST_YEAR}-12")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, instant: datetime, tz: ZoneInfo) -> Period:
        """The period of `tz` that holds `instant` (an aware datetime)."""
        if instant.tzinfo is None:
            raise PeriodError("a naive datetime has no period; give it a time zone")
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period (exclusive end)."""
        return self.next().first_day

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def next(self) -> Period:
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def months_since(self, earlier: Period) -> int:
        """How many periods `earlier` is before this one (0 for the same period)."""
        return (self.year - earlier.year) * 12 + self.month - earlier.month

    def previous(self) -> Period:
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def start(self, tz: ZoneInfo) -> datetime:
        return start_of_day(self.first_day, tz)

    def end(self, tz: ZoneInfo) -> datetime:
        return start_of_day(self.end_day, tz)

    def active_days(self, start: date | None, end: date | None) -> int:
        """Days of this period from `start` (inclusive) to `end` (exclusive), local dates."""
        first = max(self.first_day, start) if start else self.first_day
        last = min(self.end_day, end) if end else self.end_day
        return max((last - first).days, 0)


# The first period whose bounds are instants in every zone: 0001-01 starts, in UTC+14, at
# an instant before year 1.
FIRST_WHOLE: Final = Period(1, 2)


def parse_asked(text: str) -> Period:
    """A period a caller asks about (an API's query): as `Period.parse` reads it, and none
    before FIRST_WHOLE, whose start and end can be placed in every zone."""
    period = Period.parse(text)
    if period < FIRST_WHOLE:
        raise PeriodError(f"{text!r} is before the first period, {FIRST_WHOLE}")
    return period
