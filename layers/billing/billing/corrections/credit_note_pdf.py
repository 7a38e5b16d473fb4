"""A credit note as a PDF a finance team reads: "Credit note", its number and date, the
invoice it corrects and that invoice's date, the reason, each line credited with the
invoice line it corrects, subtotal, tax and the total credited. Drawn by the invoice's
layout (billing.invoicing.pdf): same fonts, sections and page breaks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, NamedTuple

from babel import Locale

from billing.core.catalog import Account
from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE, CreditLine, CreditNote
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


class _Wording(NamedTuple):
    """What differs between a credit note's page and an adjustment invoice's: words only."""

    title: str
    number: str  # its number's label
    relation: str  # how it names the invoice it is for
    headline: str  # "<amount> {headline} <invoice number>"
    total: str
    itself: str  # "Invoice total after this …", "Questions about this …"
    payment_title: str
    payment: str  # "{amount}" and "{invoice}" filled in


_WORDINGS: Final = {
    CREDIT_NOTE: _Wording(
        "Credit note",
        "Credit note number",
        "Corrects invoice",
        "credited to invoice",
        "Total credited",
        "this credit note",
        "Settlement",
        "This credit note reduces invoice {invoice} by {amount}. An amount already paid is "
        "refunded or set against your next invoice.",
    ),
    ADJUSTMENT: _Wording(
        "Adjustment invoice",
        "Adjustment number",
        "Adjusts invoice",
        "due in addition to invoice",
        "Total due",
        "this adjustment",
        "Payment",
        "This adjustment adds {amount} to invoice {invoice}, payable as that invoice is.",
    ),
}


def credit_note_page(note: CreditNote, account: Account, issuer: Issuer, locale: Locale) -> Page:
    """A credit note's page, or an adjustment invoice's: one layout, worded by its kind."""
    words = _WORDINGS[note.kind]
    invoice = note.invoice

    def money(amount: Decimal) -> str:
        return money_text(amount, invoice.currency, locale)

    invoice_date = datetime.fromisoformat(invoice.issued_at).astimezone(UTC).date()
    total = money(note.total.amount)
    return Page(
        title=words.title,
        seller=seller_lines(issuer),
        identity=(
            (words.number, note.number),
            ("Date of issue", date_text(note.issued_at.astimezone(UTC).date(), locale)),
            (words.relation, invoice.number),
            ("Invoice date", date_text(invoice_date, locale)),
        ),
        customer=customer_lines(account),
        service=(
            ("Reason", note.reason),
            ("Service period", invoice.period),
            ("Account", account.id),
        ),
        headline=f"{total} {words.headline} {invoice.number}",
        rows=tuple(_row(line, invoice.currency, locale) for line in note.lines),
        totals=(
            ("Subtotal", money(note.subtotal.amount), False),
            ("Tax", money(note.tax.amount), False),
            (words.total, total, True),
            *_standing(note, money),
            (f"Invoice total after {words.itself}", money(note.invoice_total_after.amount), True),
        ),
        payment_title=words.payment_title,
        payment=(
            words.payment.format(amount=total, invoice=invoice.number),
            f"Questions about {words.itself}: {issuer.email}",
        ),
    )
