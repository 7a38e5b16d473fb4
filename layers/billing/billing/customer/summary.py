"""What the customer API shows of an account besides its usage (pure; docs/customer-api.md):
the account as its customer sees it, the invoice preview with its phases, the prepaid
credit balances, and the customer's own thresholds. Each is JSON-ready data that the API's
models (`billing.customer.customer_models`) check before it leaves.

The numbers are the usage report's (`billing.customer.usage_view`): the preview is the
invoice the period's usage makes now, built by the invoice's own code, with the discounts
and prepaid credits it would carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.customer_thresholds import CustomerThresholds
from billing.core.invoice import utc_text
from billing.core.money import plain
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.customer.usage_view import UsageReport


def plan_in_force(account: Account, catalog: Catalog, day: datetime) -> Plan:
    """The plan in force at `day` (an aware instant), by the account's changes."""
    if account.changes:
        return Phases(account, catalog).plan_on(day.astimezone(account.zone).date())
    plan = catalog.plans_by_id.get(account.plan)
    if plan is None:
        raise CatalogError(f"plan {account.plan!r} is not in the catalog")
    return plan


def account_summary(account: Account, catalog: Catalog, now: datetime) -> dict[str, Any]:
    """The account as its customer sees it: who, in which currency and zone, on which
    plan now, and its current period."""
    plan = plan_in_force(account, catalog, now)
    zone = account.zone
    current = Period.containing(now, zone)
    return {
        "account_id": account.id,
        "name": account.name,
        "email": account.email,
        "currency": plan.currency,
        "timezone": account.timezone,
        "plan": {"id": plan.id, "name": plan.name},
        "start": account.start.isoformat() if account.start else None,
        "end": account.end.isoformat() if account.end else None,
        "current_period": {
            "period": str(current),
            "start": current.start(zone).isoformat(),
            "end": current.end(zone).isoformat(),
        },
    }


def _phases(account: Account, catalog: Catalog, period: Period) -> list[dict[str, str]]:
    """The plans that price the period, each with its part of it (local dates, `to`
    exclusive): the subscription's part of the period under one plan when it has no
    change inside it."""
    if account.changes:
        return [
            {
                "plan": phase.plan.id,
                "name": phase.plan.name,
                "from": phase.first.isoformat(),
                "to": phase.end.isoformat(),
            }
            for phase in Phases(account, catalog).in_period(period)
        ]
    plan = catalog.plans_by_id[account.plan]
    first = max(period.first_day, account.start) if account.start else period.first_day
    end = min(period.end_day, account.end) if account.end else period.end_day
    if first >= end:
        return []  # no day of the subscription in the period
    return [{"plan": plan.id, "name": plan.name, "from": first.isoformat(), "to": end.isoformat()}]


def preview(report: UsageReport, account: Account, catalog: Catalog) -> dict[str, Any]:
    """The invoice the report's period makes now (or made, once invoiced): its phases,
    lines (discounts among them), totals, the prepaid credits it draws and what is due."""
    invoice = report.to_json()
    return {
        "account_id": report.account_id,
        "period": invoice["period"],
        "period_start": invoice["period_start"],
        "period_end": invoice["period_end"],
        "status": report.status,
        "as_of": invoice["as_of"],
        "currency": report.currency,
        "phases": _phases(account, catalog, report.period),
        **invoice["invoice_preview"],
    }


def credit_balances(report: UsageReport) -> dict[str, Any]:
    """The account's prepaid grants: what each has left after the invoices issued, and
    what the report's period (the current one) draws from it."""
    return {
        "account_id": report.account_id,
        "currency": report.currency,
        "period": str(report.period),
        "grants": [grant.to_json() for grant in report.credits],
    }


@dataclass(frozen=True, slots=True)
class ThresholdsView:
    account_id: str
    thresholds: CustomerThresholds
    updated_at: datetime | None  # None: never set

    def to_json(self) -> dict[str, Any]:
        chosen = self.thresholds
        by_id = dict(chosen.amounts())
        listed = []
        for threshold in chosen.thresholds:
            entry = {"id": threshold.id, **threshold.document()}
            entry["amount"] = str(by_id[threshold.id])  # a percentage's too, resolved
            listed.append(entry)
        return {
            "account_id": self.account_id,
            "currency": chosen.currency,
            "budget": None if chosen.budget is None else plain(chosen.budget),
            "thresholds": listed,
            "updated_at": None if self.updated_at is None else utc_text(self.updated_at),
        }
