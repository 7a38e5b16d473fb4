"""What an account owes invoices for, and the due hint that lets an hourly invoice run find
it without reading history (pure: docs/invoicing.md, "Finding what is due").

Every period the subscription overlaps is owed one invoice (CONTRACT.md 3), from its first:
the one holding `start`, or without a start the earliest an invoice or the ledger shows,
and the latest ended period is always owed. A period is due once it ended, in the
account's zone, more than the grace time ago.

A `DueHint` per account names the earliest period that may still be owed and unfinished,
and when it is due (the period's end in the account's zone, in UTC; the run adds the
grace). The one rule every writer keeps: a hint is never later than the earliest period
the account still owes and has not finished. Too early is harmless (the run reads the
account, finds nothing to do and moves the hint on); too late would invoice late. For an
account without a start the hint is also its first period: the hourly run owes every
period from it on, as it owed every period from the earliest the ledger or an invoice
showed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from billing.core.catalog import Account
from billing.core.periods import Period, zone

# Partitions of the due index: a month's end in one zone, for a million accounts, is spread
# over this many keys instead of one hot one.
DUE_SHARDS: Final = 16
# The zone whose periods end first (UTC+14): a period's end there is no later than its end
# in any zone, so a hint for an account whose zone is not known is never late.
EARLIEST_ZONE: Final = zone("Etc/GMT-14")


def due_shard(account_id: str) -> str:
    """The account's partition of the due index, "00" to "15": stable, and spread evenly."""
    return f"{hashlib.sha256(account_id.encode()).digest()[0] % DUE_SHARDS:02d}"


def due_shards() -> list[str]:
    return [f"{shard:02d}" for shard in range(DUE_SHARDS)]


def instant_text(instant: datetime) -> str:
    """An instant as the index sorts it: UTC, whole seconds, fixed width
    ('2026-12-01T00:00:00Z'), so text order is time order."""
    utc = instant.astimezone(UTC)
    # The year padded here: strftime's %Y writes year 500 as "500" on Linux.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


@dataclass(frozen=True, order=True, slots=True)
class DueHint:
    """The earliest period an account may still owe, and when it is due (before grace)."""

    period: Period
    due_at: datetime  # UTC

    @classmethod
    def of(cls, period: Period, tz: ZoneInfo) -> DueHint:
        return cls(period, period.end(tz).astimezone(UTC))

    @property
    def due_text(self) -> str:
        return instant_text(self.due_at)


def latest_ended(ended: datetime, tz: ZoneInfo) -> Period:
    """The latest period of `tz` that ended at or before `ended` (a run's clock less the
    grace time)."""
    return Period.containing(ended, tz).previous()


def periods_between(first: Period, last: Period) -> Iterator[Period]:
    """`first` to `last`, both included (none when `first` is later)."""
    period = first
    while period <= last:
        yield period
        period = period.next()


def start_period(account: Account) -> Period | None:
    start = account.start
    return None if start is None else Period.of(start.year, start.month)


def first_period(account: Account, shown: Iterable[Period], latest: Period) -> Period:
    """The subscription's first period: the one holding `start`; without a start, the
    earliest an invoice or the ledger shows (`shown`), or else the latest ended one."""
    first = start_period(account)
    return first if first is not None else min([*shown, latest])


def owed(account: Account, first: Period, latest: Period) -> list[Period]:
    """The periods from `first` to `latest` the subscription overlaps, oldest first."""
    return [period for period in periods_between(first, latest) if account.overlaps(period)]


def advanced(account: Account, unfinished: Iterable[Period], latest: Period) -> DueHint | None:
    """The hint after a run looked at every period up to `latest`: the earliest it left
    unfinished, else the next period the subscription may owe after `latest`; None when the
    subscription ends before that (nothing is left to find)."""
    left = min(unfinished, default=None)
    if left is not None:
        return DueHint.of(left, account.zone)
    following = max(latest.next(), start_period(account) or latest.next())
    if account.end is not None and account.end <= following.first_day:
        return None
    return DueHint.of(following, account.zone)


def pushed(
    account: Account,
    *,
    before: Account | None,
    stored: DueHint | None,
    earliest_invoice: Period | None,
    latest: Period,
) -> DueHint | None:
    """The hint a push writes for `account` (as pushed), or None when it writes none.

    `before` is the account as stored before the push (None for a new one), `stored` its
    hint, `earliest_invoice` the period of its earliest invoice (read only when
    `needs_earliest_invoice` says so), `latest` the latest ended period at the push's
    clock. A push that changes none of start, end and zone writes nothing."""
    if before is not None and same_subscription(before, account):
        return None
    first = start_period(account)
    if before is not None and stored is not None:
        # Known to the index: only a start set or moved earlier reaches back before it.
        earlier = account.start is not None and (
            before.start is None or account.start < before.start
        )
        first = first if earlier else None
    elif first is None:
        # Without a start the latest ended period is owed (today's rule); an account the
        # index dropped (its subscription had ended) owes from its earliest invoice on.
        first = (earliest_invoice if before is not None else None) or latest
    period = min(p for p in (first, stored.period if stored else None) if p is not None)
    hint = DueHint.of(period, account.zone)
    if before is not None and before.timezone != account.timezone:
        # Until the profile in the new zone is stored the old zone is in force: the earlier
        # of the two ends is never late.
        hint = min(hint, DueHint.of(period, before.zone))
    return None if hint == stored else hint


def needs_earliest_invoice(account: Account, before: Account | None, stored: bool) -> bool:
    """Whether `pushed` needs the account's earliest invoice: an account without a start
    that the index dropped, pushed again with another end or zone."""
    return (
        before is not None
        and not stored
        and account.start is None
        and not same_subscription(before, account)
    )


def same_subscription(before: Account, after: Account) -> bool:
    """Whether a push leaves what the hint depends on (start, end, zone) as it was."""
    return (before.start, before.end, before.timezone) == (after.start, after.end, after.timezone)
