"""Every text an invoice PDF prints, formatted for the account's locale: the parties, the
dates, one row per line (and per step of a line), the totals and how to pay."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final

from babel import Locale

from billing.core.catalog import Account
from billing.core.invoice import Invoice, InvoiceLine
from billing.core.locales import date_text, money_text, percent_text, price_text, quantity_text
from billing.core.pricing import PriceStep
from billing.core.seller import Issuer


@dataclass(frozen=True)
class Row:
    """One row of the line table: a line, or one step of a line (`step` rows are smaller)."""

    description: str
    quantity: str
    unit_price: str
    amount: str
    step: bool = False
    heading: bool = False  # a phase's heading, over its lines (an invoice of several phases)


@dataclass(frozen=True)
class Page:
    """Every text the invoice prints, formatted for the account's locale."""

    seller: tuple[str, ...]  # legal name, then the lines under it
    identity: tuple[tuple[str, str], ...]
    customer: tuple[str, ...]  # name, then the lines under it
    service: tuple[tuple[str, str], ...]
    headline: str
    rows: tuple[Row, ...]
    totals: tuple[tuple[str, str, bool], ...]
    payment: tuple[str, ...]
    # What the document is, over its numbers, and the heading of its closing section: an
    # invoice's, or a credit note's (billing.corrections.credit_note_pdf).
    title: str = "Invoice"
    payment_title: str = "Payment"

    def texts(self) -> Iterator[str]:
        yield from self.seller
        for pair in (*self.identity, *self.service):
            yield from pair
        yield from self.customer
        yield self.headline
        for row in self.rows:
            yield from (row.description, row.quantity, row.unit_price, row.amount)
        for label, value, _ in self.totals:
            yield from (label, value)
        yield from self.payment
        yield from _FIXED_TEXTS
        yield from (self.title, self.payment_title)


_FIXED_TEXTS: Final = (
    "Invoice",
    "Bill to",
    "Description",
    "Qty",
    "Unit price",
    "Amount",
    "Payment",
    "Page of ·",
    "0123456789",
)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _filters(line: InvoiceLine) -> str:
    if not line.filters:
        return ""
    return "; ".join(f"{key}: {', '.join(values)}" for key, values in line.filters.items())


def _rows(line: InvoiceLine, currency: str, locale: Locale) -> Iterator[Row]:
    description = line.description
    if line.filters:
        description += "\n" + _filters(line)
    quantity = quantity_text(line.quantity, locale)
    if line.unit:
        quantity += f" {line.unit}"
    steps: Sequence[PriceStep] = line.steps
    unit_price = ""
    if line.unit_price is not None:
        unit_price = price_text(line.unit_price, currency, locale)
        steps = ()
    elif len(steps) == 1:
        # One step without a price: (proration) its words explain the line.
        [step] = steps
        if step.unit_price is None and line.kind != "usage":
            description += "\n" + _capitalised(step.description)
            steps = ()
    yield Row(description, quantity, unit_price, money_text(line.amount.amount, currency, locale))
    for step in steps:
        yield Row(
            _capitalised(step.description),
            quantity_text(step.units, locale),
            "" if step.unit_price is None else price_text(step.unit_price, currency, locale),
            price_text(step.amount, currency, locale),
            step=True,
        )


def _table(invoice: Invoice, locale: Locale) -> Iterator[Row]:
    """The line table's rows: each line's, under its phase's heading (plan name and local
    dates, the last one inclusive) when the invoice covers more than one phase."""
    current = None
    for line in invoice.lines:
        phase = line.phase
        if phase is not None and phase != current:
            last = phase.end - timedelta(days=1)
            dates = f"{date_text(phase.first, locale)} – {date_text(last, locale)}"
            yield Row(f"{phase.plan_name} plan: {dates}", "", "", "", heading=True)
            current = phase
        yield from _rows(line, invoice.currency, locale)


def seller_lines(issuer: Issuer) -> tuple[str, ...]:
    """The seller's block: its legal name, then its address, tax ID and email."""
    tax_id = (f"Tax ID: {issuer.tax_id}",) if issuer.tax_id else ()
    return (issuer.name, *issuer.address, *tax_id, issuer.email)


def customer_lines(account: Account) -> tuple[str, ...]:
    """The customer's block: its name, then its billing address, tax ID and email."""
    tax_id = (f"Tax ID: {account.tax_id}",) if account.tax_id else ()
    return (account.name, *(account.billing_address or ()), *tax_id, account.email)


def service_period_text(start: datetime, end: datetime, locale: Locale) -> str:
    """The days a period covers, its last inclusive ('Nov 1, 2026 – Nov 30, 2026'): `start`
    and `end` as the invoice states them, in the account's zone (their own offsets)."""
    last = (end - timedelta(days=1)).date()
    return f"{date_text(start.date(), locale)} – {date_text(last, locale)}"


def due_date(issued_at: datetime, issuer: Issuer) -> date:
    """When a bill issued at `issued_at` is due: the seller's payment terms from its UTC
    date of issue."""
    return issued_at.astimezone(UTC).date() + timedelta(days=issuer.payment_terms_days)


def invoice_page(invoice: Invoice, account: Account, issuer: Issuer, locale: Locale) -> Page:
    currency = invoice.currency

    def money(amount: Decimal) -> str:
        return money_text(amount, currency, locale)

    issued = invoice.issued_at.astimezone(UTC).date()
    due = due_date(invoice.issued_at, issuer)
    amount_due = invoice.amount_due.amount
    totals = [
        ("Subtotal", money(invoice.subtotal.amount), False),
        (f"Tax ({percent_text(invoice.tax_rate, locale)})", money(invoice.tax.amount), False),
        ("Total", money(invoice.total.amount), True),
        *_credits_row(invoice, money),
        ("Amount due", money(amount_due), True),
    ]
    # Paid in full by prepaid credits: nothing to ask the payer for.
    paid_by_credits = not amount_due and invoice.credits_applied.amount > 0
    payment = [
        "Nothing to pay: this invoice is paid with prepaid credits."
        if paid_by_credits
        else f"Please pay {money(amount_due)} by {date_text(due, locale)}, quoting invoice "
        f"number {invoice.invoice_number}.",
        *([] if paid_by_credits else issuer.payment_instructions),
        f"Questions about this invoice: {issuer.email}",
    ]
    return Page(
        seller=seller_lines(issuer),
        identity=(
            ("Invoice number", invoice.invoice_number),
            ("Date of issue", date_text(issued, locale)),
            ("Date due", date_text(due, locale)),
        ),
        customer=customer_lines(account),
        service=(
            (
                "Service period",
                service_period_text(invoice.period_start, invoice.period_end, locale),
            ),
            ("Account", account.id),
        ),
        headline="Paid with prepaid credits"
        if paid_by_credits
        else f"{money(amount_due)} due {date_text(due, locale)}",
        rows=tuple(_table(invoice, locale)),
        totals=tuple(totals),
        payment=tuple(payment),
    )


def _credits_row(invoice: Invoice, money: Callable[[Decimal], str]) -> list[tuple[str, str, bool]]:
    """What prepaid credits paid, as one deduction between the total and the amount due
    (the JSON lists it grant by grant); nothing on an invoice that drew none."""
    applied = invoice.credits_applied.amount
    if not applied:
        return []
    return [("Paid with prepaid credits", money(-applied), False)]
