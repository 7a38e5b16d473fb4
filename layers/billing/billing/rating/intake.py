"""The checks a decoded event passes before it is rated, in the contract's order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from billing.core.catalog import Account, Catalog, Plan
from billing.core.events import Reason, Rejection, UsageEvent
from billing.core.periods import Period
from billing.core.phases import Phases

FUTURE_TOLERANCE: Final = timedelta(minutes=5)

# Whether an account's period has been invoiced (and so is closed to new events).
IsClosed = Callable[[str, Period], bool]


class Accepted(NamedTuple):
    """An event that may be rated: its account, plan and billing period, resolved."""

    event: UsageEvent
    account: Account
    plan: Plan
    period: Period


def never_closed(account_id: str, period: Period) -> bool:
    return False


def admit(
    event: UsageEvent,
    catalog: Catalog,
    accounts: Mapping[str, Account],
    now: datetime,
    is_closed: IsClosed = never_closed,
) -> Accepted | Rejection:
    """Resolve an event against the catalog, its account and the clock, or say why not."""
    account = accounts.get(event.account_id)
    if account is None:
        return unknown_account(event)
    intake = AccountIntake(account, catalog, now, is_closed)
    period = intake.period_of(event)
    if isinstance(period, Rejection):
        return period
    return Accepted(event, account, intake.plan, period)


def unknown_account(event: UsageEvent) -> Rejection:
    return Rejection(Reason.UNKNOWN_ACCOUNT, f"account {event.account_id!r} is not known")


class AccountIntake:
    """The checks after UNKNOWN_ACCOUNT for the events of one known account, with what they
    need looked up once: the rater makes one per account in a batch. `is_closed` must give
    the same answer for a period every time it is asked."""

    __slots__ = (
        "_is_closed",
        "_latest",
        "_meters",
        "_open_month",
        "_open_period",
        "_open_year",
        "_subscription_bounded",
        "_zone",
        "account",
        "day",
        "phases",
        "plan",
    )

    def __init__(
        self, account: Account, catalog: Catalog, now: datetime, is_closed: IsClosed
    ) -> None:
        self.account = account
        self.plan = catalog.plans_by_id[account.plan]
        # An account that changes plan prices each event under the plan of its local day.
        self.phases = Phases(account, catalog) if account.changes else None
        self._meters = catalog.meters_by_name
        self._latest = now + FUTURE_TOLERANCE
        self._zone = account.zone
        self._subscription_bounded = account.start is not None or account.end is not None
        self._is_closed = is_closed
        # The last local month seen and its period, when that period is open: an account's
        # events nearly all fall in one month.
        self._open_year, self._open_month = 0, 0
        self._open_period: Period | None = None
        # The local day of the month of the event last given a period (the rater keeps
        # each day's usage, for a per-day chart): found here, where its local time is.
        self.day = 1

    def period_of(self, event: UsageEvent) -> Period | Rejection:
        """The event's billing period, or the first of the remaining reasons that applies."""
        if event.meter not in self._meters:
            return Rejection(Reason.UNKNOWN_METER, f"meter {event.meter!r} is not in the catalog")
        timestamp, latest = event.timestamp, self._latest
        at = timestamp.at
        if at > latest or (at == latest and timestamp.nanos > 0):  # Timestamp.is_after
            return Rejection(
                Reason.FUTURE_TIMESTAMP, "timestamp is more than 5 minutes ahead of processing time"
            )
        local = at.astimezone(self._zone)
        account = self.account
        if self._subscription_bounded and not account.subscribed_at(local.date()):
            return Rejection(
                Reason.NOT_SUBSCRIBED,
                f"account {account.id!r} has no subscription on {local.date()}",
            )
        self.day = local.day
        if local.month == self._open_month and local.year == self._open_year:
            assert self._open_period is not None
            return self._open_period
        period = Period.of(local.year, local.month)
        if self._is_closed(account.id, period):
            return Rejection(
                Reason.PERIOD_CLOSED, f"period {period} of account {account.id!r} is invoiced"
            )
        self._open_year, self._open_month, self._open_period = local.year, local.month, period
        return period
