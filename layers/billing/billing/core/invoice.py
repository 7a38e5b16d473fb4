"""Building an invoice from an account, its plan and its usage (CONTRACT.md sections 3 and 4).

Each line's amount is computed exactly, then rounded once by `Money.rounded`; the subtotal
is the sum of the rounded lines, tax is rounded once more, and the total adds the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from billing.core.catalog import Account, Catalog, Plan
from billing.core.discounts import Discount
from billing.core.money import Money, multiply, plain, plain_quantity, prorate, round_money
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.core.pricing import ChargeModel, PriceStep
from billing.core.usage import MeterUsage

LineKind = Literal["usage", "fixed", "minimum", "discount"]


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    kind: LineKind
    description: str
    quantity: Decimal
    amount: Money  # rounded to the currency's minor unit
    meter: str | None = None
    unit: str | None = None
    filters: Mapping[str, list[str]] | None = None
    steps: tuple[PriceStep, ...] = ()
    discount: str | None = None  # the discount's id, on a `discount` line
    phase: PhaseMark | None = None  # set on an invoice of more than one phase

    @property
    def unit_price(self) -> Decimal | None:
        """The line's one price per unit, when a single step prices its whole quantity at
        it (what the PDF's unit price column shows); None for tiers, flat fees, proration."""
        if len(self.steps) != 1:
            return None
        [step] = self.steps
        return step.unit_price if step.units == self.quantity else None

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {"kind": self.kind}
        if self.discount is not None:
            line["discount"] = self.discount
        if self.meter is not None:
            line["meter"] = self.meter
        if self.filters:
            line["filters"] = {key: list(values) for key, values in self.filters.items()}
        if self.phase is not None:
            line.update(self.phase.to_json())
        line["description"] = self.description
        line["quantity"] = plain_quantity(self.quantity)
        line["amount"] = str(self.amount)
        if self.unit is not None:
            line["unit"] = self.unit
        if self.steps:
            line["details"] = [_step_json(step) for step in self.steps]
        return line


@dataclass(frozen=True, slots=True)
class PhaseMark:
    """Which phase a line prices: its plan and its part of the period (local dates, `end`
    exclusive), as the contract's `plan`, `from` and `to`."""

    plan: str
    plan_name: str
    first: date
    end: date

    def to_json(self) -> dict[str, str]:
        return {"plan": self.plan, "from": self.first.isoformat(), "to": self.end.isoformat()}


def _step_json(step: PriceStep) -> dict[str, str]:
    detail = {"description": step.description, "quantity": plain_quantity(step.units)}
    if step.unit_price is not None:
        detail["unit_price"] = plain(step.unit_price)
    detail["amount"] = plain(step.amount)
    return detail


@dataclass(frozen=True, slots=True)
class CreditDraw:
    """What an invoice drew from one prepaid credit grant (CONTRACT.md 2a)."""

    grant_id: str
    amount: Money

    def to_json(self) -> dict[str, str]:
        return {"id": self.grant_id, "amount": str(self.amount)}


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_number: str
    account_id: str
    period: Period
    period_start: datetime
    period_end: datetime
    issued_at: datetime
    currency: str
    lines: tuple[InvoiceLine, ...]
    subtotal: Money
    tax: Money
    total: Money
    tax_rate: Decimal = field(default=Decimal(0))
    # Prepaid credits drawn, in drawing order: a prepayment, never part of the total.
    credits: tuple[CreditDraw, ...] = ()

    @property
    def credits_applied(self) -> Money:
        return sum((draw.amount for draw in self.credits), Money.zero(self.currency)).rounded()

    @property
    def amount_due(self) -> Money:
        return self.total - self.credits_applied

    def to_json(self) -> dict[str, Any]:
        """The invoice document of CONTRACT.md section 4: plain decimal strings throughout."""
        return {
            "invoice_number": self.invoice_number,
            "account_id": self.account_id,
            "period": str(self.period),
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "issued_at": utc_text(self.issued_at),
            "currency": self.currency,
            "lines": [line.to_json() for line in self.lines],
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "credits": [draw.to_json() for draw in self.credits],
            "credits_applied": str(self.credits_applied),
            "amount_due": str(self.amount_due),
        }


def utc_text(instant: datetime) -> str:
    """An aware instant as RFC 3339 in UTC with a 'Z' ('2026-12-01T01:15:00Z')."""
    if instant.tzinfo is None:
        raise ValueError("issued_at must be an aware datetime")
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def invoice_number(sequence: int, issued_at: datetime) -> str:
    """'INV-<year issued>-<sequence, at least 6 digits>'; the sequence is the issuer's."""
    if sequence < 1:
        raise ValueError("invoice sequence numbers start at 1")
    return f"INV-{issued_at.astimezone(UTC).year:04d}-{sequence:06d}"


def charge_amount(charge: ChargeModel, usage: MeterUsage | None, currency: str) -> Decimal:
    """A usage line's amount: the charge's exact price for its quantity, rounded once."""
    quantity = usage.quantity_for(charge) if usage else Decimal(0)
    return round_money(charge.amount(quantity), currency)


def usage_line(
    charge: ChargeModel, catalog: Catalog, currency: str, usage: MeterUsage | None
) -> InvoiceLine:
    meter = catalog.meters_by_name[charge.meter]
    quantity = usage.quantity_for(charge) if usage else Decimal(0)
    priced = charge.price(quantity)
    return InvoiceLine(
        kind="usage",
        description=charge.description or meter.label,
        quantity=quantity,
        amount=Money(priced.amount, currency).rounded(),
        meter=charge.meter,
        unit=meter.unit,
        filters=charge.filters,
        steps=priced.steps,
    )


def _prorated(amount: Decimal, period: Period, active: int) -> tuple[Decimal, PriceStep]:
    days = period.days
    exact = amount if active == days else prorate(amount, active, days)
    return exact, PriceStep(f"{active} of {days} days", Decimal(active), None, exact)


def phase_lines(
    plan: Plan,
    catalog: Catalog,
    period: Period,
    usage: Mapping[str, MeterUsage],
    days: int,
    mark: PhaseMark | None = None,
) -> list[InvoiceLine]:
    """The lines section 3 gives a period, over a phase's part of it (`days` active days): a
    usage line per charge, the prorated fixed fee, and the minimum commitment's line when
    the usage and fixed lines come to less than its rounded prorated amount."""
    currency = plan.currency
    lines = [
        replace(usage_line(charge, catalog, currency, usage.get(charge.meter)), phase=mark)
        for charge in plan.charges
    ]
    if plan.fixed_fee is not None:
        fee, step = _prorated(plan.fixed_fee, period, days)
        lines.append(
            InvoiceLine(
                "fixed",
                f"{plan.name} plan",
                Decimal(1),
                Money(fee, currency).rounded(),
                steps=(step,),
                phase=mark,
            )
        )
    if plan.minimum_commitment is not None:
        owed = sum((line.amount for line in lines), Money.zero(currency)).rounded()
        commitment, step = _prorated(plan.minimum_commitment, period, days)
        minimum = Money(commitment, currency).rounded()
        if owed < minimum:
            lines.append(
                InvoiceLine(
                    "minimum",
                    "Minimum commitment",
                    Decimal(1),
                    minimum - owed,
                    steps=(step,),
                    phase=mark,
                )
            )
    return lines


def discount_line(discount: Discount, remaining: Money) -> InvoiceLine:
    """A discount's line (CONTRACT.md 2a), `remaining` being the sum of every line before
    it: a percentage takes round_half_up(remaining × percent / 100), an amount takes at
    most what remains, so the subtotal never goes below 0."""
    if discount.percent is not None:
        exact = prorate(multiply(remaining.amount, discount.percent), 1, 100)
        off = Money(exact, remaining.currency)
        description = f"Discount {discount.id} ({plain(discount.percent)}%)"
    else:
        assert discount.amount is not None  # exactly one of the two (validated)
        off = min(Money(discount.amount, remaining.currency), remaining)
        description = f"Discount {discount.id}"
    taken = off.rounded()
    amount = Money.zero(remaining.currency).rounded() - taken if taken.amount else taken
    return InvoiceLine("discount", description, Decimal(1), amount, discount=discount.id)


def build_invoice(
    account: Account,
    plan: Plan,
    catalog: Catalog,
    period: Period,
    usage: Mapping[str, MeterUsage],
    *,
    number: str,
    issued_at: datetime,
) -> Invoice:
    """The invoice of `account` for `period`, from its usage by stored name (meter, or
    meter and phase mark: billing.core.phases). `plan` prices an account without changes;
    an account with changes is priced phase by phase under the catalog's plans."""
    phases = Phases(account, catalog).in_period(period) if account.changes else []
    if phases:
        plan = phases[0].plan  # every plan an account is on has the same currency
    currency = plan.currency
    lines: list[InvoiceLine] = []
    if len(phases) > 1:
        for phase in phases:
            mark = PhaseMark(phase.plan.id, phase.plan.name, phase.first, phase.end)
            part = phase.usage(usage)
            lines += phase_lines(phase.plan, catalog, period, part, phase.active_days, mark)
    else:
        # One phase (or none in the period: an account billed all the same gets 0 days).
        active = phases[0].active_days if phases else period.active_days(account.start, account.end)
        lines += phase_lines(plan, catalog, period, usage, active)
    subtotal = sum((line.amount for line in lines), Money.zero(currency)).rounded()
    for discount in account.discounts:
        if discount.applies_to(period):
            line = discount_line(discount, subtotal)
            lines.append(line)
            subtotal = subtotal + line.amount
    tax = Money(multiply(subtotal.amount, account.tax_rate), currency).rounded()
    tz = account.zone
    return Invoice(
        invoice_number=number,
        account_id=account.id,
        period=period,
        period_start=period.start(tz),
        period_end=period.end(tz),
        issued_at=issued_at,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        tax_rate=account.tax_rate,
    )
