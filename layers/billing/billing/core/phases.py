"""Phases: which plan prices an account's time (CONTRACT.md 2a, "Phases").

The plan in force at an instant is that of the account's latest change whose local midnight
is at or before it, else the account's `plan`. Changes take effect at local midnight, so
the plan in force at an instant is the one in force on its local date (`start_of_day` is
the first instant of its day, DST gaps included).

How a period's usage is kept per phase (docs/table-design.md, "Phases"): a meter's usage
in a period is stored under the meter's name, except for events of a phase that begins
inside the period, kept under `meter@YYYY-MM-DD` (the phase's first local day). An account
without a change inside a period keeps its usage exactly as before phases existed.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.meters import Meter
from billing.core.periods import Period
from billing.core.usage import MeterUsage, period_bytes_bound, priced_shares

# Meter names are `a-z 0-9 _ . -`: a phase's mark can never be part of one.
PHASE_MARK: Final = "@"
_MARK_BYTES: Final = len(PHASE_MARK + "YYYY-MM-DD")
# The most one period's usage may take as stored: `period_bytes_bound` of a plan at the
# catalog's limits (tests/unit/test_ledger_bounds.py's widest catalog). The ledger's size
# budget is built on it (docs/table-design.md, "Item sizes"), so the phases a period holds
# must fit in it together.
PERIOD_BYTES_MAX: Final = 74_400


def phase_key(meter: str, suffix: str) -> str:
    """The name `meter`'s usage is kept under in a phase whose mark is `suffix`."""
    return meter + suffix


def split_key(key: str) -> tuple[str, str]:
    """A stored usage name as (meter, phase mark): ('api', '@2026-11-15'), ('api', '')."""
    meter, mark, day = key.partition(PHASE_MARK)
    return meter, mark + day


@dataclass(frozen=True, slots=True)
class PeriodPhase:
    """One phase's part of a period: its plan, its local days [`first`, `end`) within the
    period and the subscription, and the mark its usage is kept under in the period."""

    plan: Plan
    first: date
    end: date
    suffix: str

    @property
    def active_days(self) -> int:
        return (self.end - self.first).days

    def usage(self, usage: Mapping[str, MeterUsage]) -> dict[str, MeterUsage]:
        """The phase's own usage by meter name, out of the period's as stored."""
        if not self.suffix:
            return {key: value for key, value in usage.items() if PHASE_MARK not in key}
        return {
            key[: -len(self.suffix)]: value
            for key, value in usage.items()
            if key.endswith(self.suffix)
        }


class Phases:
    """An account's plans over time, looked up by local date."""

    __slots__ = ("_days", "_meters", "_plans", "account")

    def __init__(self, account: Account, catalog: Catalog) -> None:
        self.account = account
        ids = [account.plan, *(change.plan for change in account.changes)]
        missing = sorted({plan for plan in ids if plan not in catalog.plans_by_id})
        if missing:
            raise CatalogError(f"plan {missing[0]!r} is not in the catalog")
        self._plans = [catalog.plans_by_id[plan] for plan in ids]
        self._days = [change.effective for change in account.changes]
        self._meters = catalog.meters

    @property
    def plans(self) -> tuple[Plan, ...]:
        """The plans the account is ever on: `plan`, then each change's."""
        return tuple(self._plans)

    def _index(self, day: date) -> int:
        """0 for `plan`, i for the i-th change (1-based) in force on `day`."""
        return bisect.bisect_right(self._days, day)

    def plan_on(self, day: date) -> Plan:
        return self._plans[self._index(day)]

    def placed(self, meter: str, at: datetime, period: Period) -> tuple[str, Plan]:
        """Where an event of `meter` at instant `at`, in `period`, is kept and priced: the
        meter's stored name in its phase, and that phase's plan (the rater, the preview and
        a keyed account's look-up of its claimed values all place events by this)."""
        day = at.astimezone(self.account.zone).date()
        return phase_key(meter, self.suffix_on(day, period)), self.plan_on(day)

    def suffix_on(self, day: date, period: Period) -> str:
        """The mark of the usage of an event on local `day` in `period`."""
        index = self._index(day)
        if index == 0:
            return ""
        began = self._days[index - 1]
        return "" if began <= period.first_day else PHASE_MARK + began.isoformat()

    def in_period(self, period: Period) -> list[PeriodPhase]:
        """The phases that overlap `period` and the subscription, in date order (none when
        the subscription has no day in it)."""
        account = self.account
        first = max(period.first_day, account.start) if account.start else period.first_day
        end = min(period.end_day, account.end) if account.end else period.end_day
        result: list[PeriodPhase] = []
        bounds = [d for d in self._days if first < d < end]
        for begin, until in zip([first, *bounds], [*bounds, end], strict=True):
            if begin < until:
                plan = self.plan_on(begin)
                result.append(PeriodPhase(plan, begin, until, self.suffix_on(begin, period)))
        return result

    def period_bytes_bound(self) -> int:
        """An upper bound of `usage_bytes` for any period of the account."""
        return phased_bytes(self._plans, self._days, self._meters)

    def plans_in(self, period: Period) -> dict[str, Plan]:
        """The plan of each phase mark the period may hold."""
        return {phase.suffix: phase.plan for phase in self.in_period(period)}


def phase_shares(
    usage: Mapping[str, MeterUsage], plans: Mapping[str, Plan]
) -> dict[str, MeterUsage]:
    """`priced_shares` for a period's usage as stored, each phase's under its own plan
    (`plans` by phase mark); a phase not in `plans` keeps its shares as they are."""
    if len(plans) == 1 and "" in plans and not any(PHASE_MARK in key for key in usage):
        return priced_shares(usage, plans[""])  # the usual case: one phase, as before phases
    result: dict[str, MeterUsage] = {}
    for key, meter_usage in usage.items():
        meter, suffix = split_key(key)
        plan = plans.get(suffix)
        kept = priced_shares({meter: meter_usage}, plan)[meter] if plan else meter_usage
        result[key] = kept
    return result


def phased_bytes(plans: Sequence[Plan], days: Sequence[date], meters: Sequence[Meter]) -> int:
    """An upper bound of `usage_bytes` for any period of an account on `plans[0]` that
    changes to `plans[i + 1]` on `days[i]`: the largest of the plans' bounds for the phase a
    period starts in, and for each phase that begins inside it too, with each name's mark."""
    largest = max(period_bytes_bound(plan, meters) for plan in plans)
    per_month = Counter((day.year, day.month) for day in days if day.day != 1)
    inside = max(per_month.values(), default=0)
    names = len(meters) + max(len(plan.charges) for plan in plans)
    return largest + inside * (largest + names * _MARK_BYTES)


def size_problem(account: Account, catalog: Catalog) -> tuple[int, str, str] | None:
    """The first change with which a period of the account could hold more usage than
    PERIOD_BYTES_MAX (too many phases in one period for the catalog's size), or None."""
    plans = [catalog.plans_by_id[account.plan]]
    days: list[date] = []
    for c, change in enumerate(account.changes):
        plans.append(catalog.plans_by_id[change.plan])
        days.append(change.effective)
        size = phased_bytes(plans, days, catalog.meters)
        if size > PERIOD_BYTES_MAX:
            return (
                c,
                "effective",
                f"with this change a period holds usage of up to {size} bytes, more than "
                f"one period may store ({PERIOD_BYTES_MAX}): with this catalog, space the "
                "changes further apart",
            )
    return None
