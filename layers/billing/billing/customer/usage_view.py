"""An account's usage and running charges for a period, as a customer sees them live.

Pure: it reads an account, the catalog and the account's ledger (as the rater stores it)
and prices the period's usage with the invoice's own code (`billing.core.invoice.build_invoice`),
so every amount shown is the amount the invoice will carry if no more usage arrives. The
usage API (`functions/usage_api`) and the `billing usage` command both print this report.
See docs/usage-api.md for the JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.invoice import Invoice, InvoiceLine, build_invoice, utc_text
from billing.core.money import Money, plain_quantity
from billing.core.periods import Period
from billing.core.phases import Phases, split_key
from billing.core.pricing import ChargeModel
from billing.core.unpriced_usage import UnpricedView, unpriced_usage
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.credit_view import GrantView
from billing.rating.ledger import AccountLedger

PeriodStatus = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class ChargeView:
    """One charge of the plan on a meter: what it prices so far and its running amount."""

    line: InvoiceLine  # the invoice's usage line for this charge, amount rounded as billed
    events: int

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {}
        if self.line.filters:
            view["filters"] = {key: list(values) for key, values in self.line.filters.items()}
        if self.line.phase is not None:
            view.update(self.line.phase.to_json())
        view["description"] = self.line.description
        view["quantity"] = plain_quantity(self.line.quantity)
        view["events"] = self.events
        view["amount"] = str(self.line.amount)
        return view


@dataclass(frozen=True, slots=True)
class MeterView:
    meter: str
    description: str
    unit: str | None  # None only for a meter the catalog no longer has
    aggregation: str
    quantity: Decimal
    events: int
    charges: tuple[ChargeView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "meter": self.meter,
            "description": self.description,
            "unit": self.unit,
            "aggregation": self.aggregation,
            "quantity": plain_quantity(self.quantity),
            "events": self.events,
            "charges": [charge.to_json() for charge in self.charges],
        }


@dataclass(frozen=True, slots=True)
class UsageReport:
    account_id: str
    period: Period
    status: PeriodStatus
    as_of: datetime
    meters: tuple[MeterView, ...]
    usage_subtotal: Money  # the sum of the usage lines, before fixed fee, minimum and tax
    preview: Invoice  # the invoice as it would be issued now, without a number
    # The account's prepaid grants: what each has left and what this period draws.
    credits: tuple[GrantView, ...] = ()
    # Usage no charge of the plan took: rated, on no invoice line (billing.core.unpriced).
    unpriced: tuple[UnpricedView, ...] = ()

    @property
    def currency(self) -> str:
        return self.preview.currency

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data: every amount and quantity a plain decimal string."""
        return {
            "account_id": self.account_id,
            "period": str(self.period),
            "period_start": self.preview.period_start.isoformat(),
            "period_end": self.preview.period_end.isoformat(),
            "status": self.status,
            "as_of": utc_text(self.as_of),
            "currency": self.currency,
            "meters": [meter.to_json() for meter in self.meters],
            "usage_subtotal": str(self.usage_subtotal),
            "invoice_preview": {
                "lines": [line.to_json() for line in self.preview.lines],
                "subtotal": str(self.preview.subtotal),
                "tax": str(self.preview.tax),
                "total": str(self.preview.total),
                "credits": [draw.to_json() for draw in self.preview.credits],
                "credits_applied": str(self.preview.credits_applied),
                "amount_due": str(self.preview.amount_due),
            },
            "credits": [grant.to_json() for grant in self.credits],
            "unpriced": [view.to_json() for view in self.unpriced],
        }


def current_period(account: Account, now: datetime) -> Period:
    """The account's period that holds `now` (an aware datetime), in its own time zone."""
    return Period.containing(now, account.zone)


def usage_report(
    account: Account,
    catalog: Catalog,
    ledger: AccountLedger,
    period: Period | None = None,
    *,
    now: datetime,
    closed_usage: Mapping[str, MeterUsage] | None = None,
) -> UsageReport:
    """The account's usage and running charges in `period` (default: the period holding
    `now` in the account's zone), with the invoice it would get if the period closed now.

    `ledger` is the account's ledger as the rater stores it. A period the ledger has
    closed is no longer in it: pass its archived usage as `closed_usage` (the usage its
    invoice was built from); without it, a closed period raises ValueError. CatalogError
    if the account's plan is not in the catalog."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    period = period or current_period(account, now)
    plan = catalog.plans_by_id.get(account.plan)
    if plan is None:
        raise CatalogError(f"plan {account.plan!r} is not in the catalog")
    status: PeriodStatus = "closed" if str(period) in ledger.closed else "open"
    if status == "closed":
        if closed_usage is None:
            raise ValueError(f"period {period} is closed: give its archived usage")
        usage: Mapping[str, MeterUsage] = closed_usage
    else:
        usage = ledger.usage.get(str(period), {})
    preview = build_invoice(account, plan, catalog, period, usage, number="", issued_at=now)
    lines = [line for line in preview.lines if line.kind == "usage"]
    # build_invoice makes one usage line per charge, in the plan's order, phase by phase.
    unpriced = unpriced_usage(account, catalog, period, usage)
    by_meter: dict[str, list[ChargeView]] = {}
    for (charge, own), line in zip(_charges(account, catalog, plan, period), lines, strict=True):
        events = _events(charge, own(usage).get(charge.meter))
        by_meter.setdefault(charge.meter, []).append(ChargeView(line, events))
    usage = by_meter_name(usage)
    shown = shown_meters(catalog, by_meter, usage)
    meters = tuple(
        _meter_view(name, catalog, usage.get(name), by_meter.get(name, [])) for name in shown
    )
    usage_subtotal = sum((line.amount for line in lines), Money.zero(plan.currency))
    return UsageReport(
        account_id=account.id,
        period=period,
        status=status,
        as_of=now,
        meters=meters,
        usage_subtotal=usage_subtotal,
        preview=preview,
        unpriced=unpriced,
    )


def _charges(
    account: Account, catalog: Catalog, plan: Plan, period: Period
) -> list[tuple[ChargeModel, Callable[[Mapping[str, MeterUsage]], Mapping[str, MeterUsage]]]]:
    """The charges of the invoice's usage lines, in their order, each with how to take its
    phase's usage out of the period's as stored (billing.core.phases)."""
    phases = Phases(account, catalog).in_period(period) if account.changes else []
    if len(phases) > 1:
        return [(charge, phase.usage) for phase in phases for charge in phase.plan.charges]
    whole = phases[0].plan if phases else plan
    return [(charge, _whole) for charge in whole.charges]


def _whole(usage: Mapping[str, MeterUsage]) -> Mapping[str, MeterUsage]:
    return usage


def charged_meters(account: Account, catalog: Catalog, period: Period) -> set[str]:
    """The meters the account's plans charge in `period` (each phase's plan); CatalogError
    if the account's plan is not in the catalog."""
    plan = catalog.plans_by_id.get(account.plan)
    if plan is None:
        raise CatalogError(f"plan {account.plan!r} is not in the catalog")
    return {charge.meter for charge, _ in _charges(account, catalog, plan, period)}


def shown_meters(
    catalog: Catalog, charged: Collection[str], usage: Mapping[str, MeterUsage]
) -> list[str]:
    """The meters a view of a period shows, in the catalog's order: those the plan charges
    and those with usage; then, by name, a meter the catalog dropped while the period was
    open (it still shows what it counted). `usage` is by meter name (`by_meter_name`)."""
    shown = [meter.name for meter in catalog.meters if meter.name in charged or meter.name in usage]
    return shown + sorted(name for name in usage if name not in catalog.meters_by_name)


def by_meter_name(usage: Mapping[str, MeterUsage]) -> dict[str, MeterUsage]:
    """A period's usage by meter, its phases' put together (their sum, count or max)."""
    merged: dict[str, MeterUsage] = {}
    for key, meter_usage in usage.items():
        meter = split_key(key)[0]
        current = merged.get(meter)
        merged[meter] = meter_usage if current is None else current.merge(meter_usage)
    return merged


def _events(charge: ChargeModel, usage: MeterUsage | None) -> int:
    """How many events a charge counts: all of its meter's, or those passing its filters."""
    if usage is None:
        return 0
    if not charge.filters:
        return usage.total.events
    share = usage.by_filter.get(charge.filter_key)
    return share.events if share else 0


def _meter_view(
    name: str, catalog: Catalog, usage: MeterUsage | None, charges: list[ChargeView]
) -> MeterView:
    meter = catalog.meters_by_name.get(name)
    total = usage.total if usage else Aggregate()
    if meter is None:
        assert usage is not None  # only meters with usage are shown without a catalog entry
        return MeterView(name, name, None, usage.aggregation, total.quantity, total.events, ())
    return MeterView(
        name,
        meter.label,
        meter.unit,
        meter.aggregation,
        total.quantity,
        total.events,
        tuple(charges),
    )
