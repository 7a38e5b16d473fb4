"""The checks a decoded event passes before it is rated, in the contract's order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from billing.catalog import Account, Catalog, Plan
from billing.events import Reason, Rejection, UsageEvent
from billing.periods import Period

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
        return Rejection(Reason.UNKNOWN_ACCOUNT, f"account {event.account_id!r} is not known")
    if event.meter not in catalog.meters_by_name:
        return Rejection(Reason.UNKNOWN_METER, f"meter {event.meter!r} is not in the catalog")
    if event.timestamp.is_after(now + FUTURE_TOLERANCE):
        return Rejection(
            Reason.FUTURE_TIMESTAMP, "timestamp is more than 5 minutes ahead of processing time"
        )
    local = event.timestamp.at.astimezone(account.zone)
    if not account.subscribed_at(local.date()):
        return Rejection(
            Reason.NOT_SUBSCRIBED, f"account {account.id!r} has no subscription on {local.date()}"
        )
    period = Period.of(local.year, local.month)
    if is_closed(account.id, period):
        return Rejection(
            Reason.PERIOD_CLOSED, f"period {period} of account {account.id!r} is invoiced"
        )
    return Accepted(event, account, catalog.plans_by_id[account.plan], period)
