"""A credit note as a PDF a finance team reads: "Credit note", its number and date, the
invoice it corrects and that invoice's date, the reason, each line credited with the
invoice line it corrects, subtotal, tax and the total credited. Drawn by the invoice's
layout (billing.invoicing.pdf): same fonts, sections and page breaks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from babel import Locale

from billing.core.catalog import Account
from billing.core.credit_notes import ADJUSTMENT, CreditLine, CreditNote
from billing.core.locales import date_text, money_text, quantity_text
from billing.core.seller import Issuer
from billing.invoicing.document import account_locale, render_page
from billing.invoicing.pdf.page import Page, Row, customer_lines, seller_lines


def render_credit_note_pdf(note: CreditNote, account: Account, issuer: Issuer) -> bytes:
    """The credit note as PDF bytes, identical for identical input."""
    locale = account_locale(account)
    page = credit_note_page(note, account, issuer, locale)
    return render_page(page, locale, note.number, note.issued_at, issuer)


def _row(line: CreditLine, currency: str, locale: Locale) -> Row:
    corrects = (
        f"Invoice line {line.invoice_line.index + 1}"
        if line.invoice_line is not None
        else "Added by the correction"
    )
    return Row(
        f"{line.description}\n{corrects}",
        quantity_text(line.quantity, locale),
        "",
        money_text(line.amount.amount, line.amount.currency, locale),
    )


def _standing(
    note: CreditNote, money: Callable[[Decimal], str]
) -> tuple[tuple[str, str, bool], ...]:
    """The invoice's total, and where earlier corrections left it when they did: so the
    page ties out (stood at − credited, or + adjusted, = after) without another document."""
    invoice = note.invoice
    signed = note.total.amount if note.kind == ADJUSTMENT else -note.total.amount
    before = note.invoice_total_after.amount - signed
    rows = [(f"Invoice {invoice.number} total", money(invoice.total.amount), False)]
    if before != invoice.total.amount:
        rows.append(("Invoice total after earlier corrections", money(before), False))
    return tuple(rows)


def credit_note_page(note: CreditNote, account: Account, issuer: Issuer, locale: Locale) -> Page:
    if note.kind == ADJUSTMENT:
        return adjustment_page(note, account, issuer, locale)
    currency = note.invoice.currency

    def money(amount: Decimal) -> str:
        return money_text(amount, currency, locale)

    invoice = note.invoice
    invoice_date = datetime.fromisoformat(invoice.issued_at).astimezone(UTC).date()
    issued = note.issued_at.astimezone(UTC).date()
    return Page(
        title="Credit note",
        seller=seller_lines(issuer),
        identity=(
            ("Credit note number", note.number),
            ("Date of issue", date_text(issued, locale)),
            ("Corrects invoice", invoice.number),
            ("Invoice date", date_text(invoice_date, locale)),
        ),
        customer=customer_lines(account),
        service=(
            ("Reason", note.reason),
            ("Service period", invoice.period),
            ("Account", account.id),
        ),
        headline=f"{money(note.total.amount)} credited to invoice {invoice.number}",
        rows=tuple(_row(line, currency, locale) for line in note.lines),
        totals=(
            ("Subtotal", money(note.subtotal.amount), False),
            ("Tax", money(note.tax.amount), False),
            ("Total credited", money(note.total.amount), True),
            *_standing(note, money),
            ("Invoice total after this credit note", money(note.invoice_total_after.amount), True),
        ),
        payment_title="Settlement",
        payment=(
            f"This credit note reduces invoice {invoice.number} by {money(note.total.amount)}. "
            "An amount already paid is refunded or set against your next invoice.",
            f"Questions about this credit note: {issuer.email}",
        ),
    )


def adjustment_page(note: CreditNote, account: Account, issuer: Issuer, locale: Locale) -> Page:
    """An adjustment invoice: the credit note's layout, titled and worded for a charge."""
    invoice = note.invoice

    def money(amount: Decimal) -> str:
        return money_text(amount, invoice.currency, locale)

    invoice_date = datetime.fromisoformat(invoice.issued_at).astimezone(UTC).date()
    return Page(
        title="Adjustment invoice",
        seller=seller_lines(issuer),
        identity=(
            ("Adjustment number", note.number),
            ("Date of issue", date_text(note.issued_at.astimezone(UTC).date(), locale)),
            ("Adjusts invoice", invoice.number),
            ("Invoice date", date_text(invoice_date, locale)),
        ),
        customer=customer_lines(account),
        service=(
            ("Reason", note.reason),
            ("Service period", invoice.period),
            ("Account", account.id),
        ),
        headline=f"{money(note.total.amount)} due in addition to invoice {invoice.number}",
        rows=tuple(_row(line, invoice.currency, locale) for line in note.lines),
        totals=(
            ("Subtotal", money(note.subtotal.amount), False),
            ("Tax", money(note.tax.amount), False),
            ("Total due", money(note.total.amount), True),
            *_standing(note, money),
            ("Invoice total after this adjustment", money(note.invoice_total_after.amount), True),
        ),
        payment_title="Payment",
        payment=(
            f"This adjustment adds {money(note.total.amount)} to invoice {invoice.number}, "
            "payable as that invoice is.",
            f"Questions about this adjustment: {issuer.email}",
        ),
    )
