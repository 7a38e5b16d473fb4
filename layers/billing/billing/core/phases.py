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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.periods import Period
from billing.core.usage import MeterUsage, period_bytes_bound, priced_shares

# Meter names are `a-z 0-9 _ . -`: a phase's mark can never be part of one.
PHASE_MARK: Final = "@"


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

    def _index(self, day: date) -> int:
        """0 for `plan`, i for the i-th change (1-based) in force on `day`."""
        return bisect.bisect_right(self._days, day)

    def plan_on(self, day: date) -> Plan:
        return self._plans[self._index(day)]

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
        """An upper bound of `usage_bytes` for any period of the account: the largest of
        its plans' bounds for each phase a period can hold, with each name's mark."""
        per_month = Counter((d.year, d.month) for d in self._days if d.day != 1)
        phases = 1 + max(per_month.values(), default=0)
        largest = max(period_bytes_bound(plan, self._meters) for plan in self._plans)
        names = len(self._meters) + max(len(plan.charges) for plan in self._plans)
        return phases * (largest + names * len(PHASE_MARK + "YYYY-MM-DD"))

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
