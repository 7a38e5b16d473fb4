"""A credit note as a PDF a finance team reads: "Credit note", its number and date, the
invoice it corrects and that invoice's date, the reason, the invoice's service period,
each line credited with the invoice line it corrects, subtotal, tax (at its rate) and the
total credited. An adjustment invoice is the same page worded as a bill: its due date and
how to pay, as the invoice states them. Drawn by the invoice's layout
(billing.invoicing.pdf): same fonts, sections and page breaks.

**Signs** (docs/invoicing.md, *Credit notes*, *Signs on the page*): every quantity and
amount the page and the email show is signed by its effect on what the customer owes. The
stored JSON holds what a credit note credits (positive: credited), so a credit note shows
its JSON's values negated (a credit of 6.07 reads −$6.07, a line it charges back reads
$15.00 and says "charged"); an adjustment's JSON holds what it charges, shown as it is. So
the page adds up: invoice total + this document's total = the invoice's total after it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, NamedTuple

from babel import Locale

from billing.core.catalog import Account
from billing.core.credit_notes import (
    ADJUSTMENT,
    CREDIT_NOTE,
    DERIVED_KINDS,
    CreditLine,
    CreditNote,
    IssuedInvoice,
)
from billing.core.locales import (
    currency_name,
    date_text,
    money_text,
    percent_text,
    price_text,
    quantity_text,
)
from billing.core.money import Money, multiply, subtract
from billing.core.seller import Issuer
from billing.invoicing.document import account_locale, render_page
from billing.invoicing.pdf.page import (
    Page,
    Row,
    customer_lines,
    due_date,
    seller_lines,
    service_period_text,
)

# The quantity column of a line whose quantity does not change (only its amount does):
# a usage or fixed line re-priced, or a derived line (a commitment's top-up, a discount)
# whose amount moved with the lines it derives from.
PRICE_CORRECTION: Final = "price correction"
AMOUNT_CORRECTION: Final = "amount correction"


def render_credit_note_pdf(note: CreditNote, account: Account, issuer: Issuer) -> bytes:
    """The credit note as PDF bytes, identical for identical input."""
    locale = account_locale(account)
    page = credit_note_page(note, account, issuer, locale)
    return render_page(page, locale, note.number, note.issued_at, issuer)


def owed_effect(value: Decimal, kind: str) -> Decimal:
    """A document's stored quantity or amount as it reads to the customer (see the module's
    *Signs*): negated on a credit note (what it credits lowers what is owed), as it is on an
    adjustment invoice. Never −0."""
    return subtract(Decimal(0), value) if kind == CREDIT_NOTE else value


def against_the_document(amount: Decimal, kind: str) -> bool:
    """Whether a line goes the other way from its document: a credit note's line that
    charges (a commitment's top-up now owed, a discount taken back), or an adjustment's
    that credits."""
    shown = owed_effect(amount, kind)
    return shown > 0 if kind == CREDIT_NOTE else shown < 0


def _quantity(line: CreditLine, kind: str, locale: Locale) -> str:
    if not line.quantity:
        return AMOUNT_CORRECTION if line.kind in DERIVED_KINDS else PRICE_CORRECTION
    return quantity_text(owed_effect(line.quantity, kind), locale)


def _row(line: CreditLine, kind: str, locale: Locale) -> Row:
    corrects = (
        f"Invoice line {line.invoice_line.index + 1}"
        if line.invoice_line is not None
        else "Added by the correction"
    )
    if against_the_document(line.amount.amount, kind):
        corrects += f" · {_WORDINGS[kind].against}"
    currency = line.amount.currency
    unit_price = "" if line.unit_price is None else price_text(line.unit_price, currency, locale)
    return Row(
        f"{line.description}\n{corrects}",
        _quantity(line, kind, locale),
        unit_price,
        money_text(owed_effect(line.amount.amount, kind), currency, locale),
    )


def tax_label(invoice: IssuedInvoice, account: Account, locale: Locale) -> str:
    """'Tax (20%)' at the account's rate, as the invoice prints it; 'Tax' alone when that
    rate no longer gives the invoice's tax (round(subtotal × rate)): the rate changed
    since, and the stored documents do not record the one the invoice was taxed at."""
    rate = account.tax_rate
    taxed = Money(multiply(invoice.subtotal.amount, rate), invoice.currency).rounded()
    if taxed != invoice.tax:
        return "Tax"
    return f"Tax ({percent_text(rate, locale)})"


def service_period(invoice: IssuedInvoice, locale: Locale) -> str:
    """The invoice's service period as the invoice prints it; its period ('2026-11') for a
    stored invoice without its bounds."""
    if invoice.period_start is None or invoice.period_end is None:
        return invoice.period
    return service_period_text(invoice.period_start, invoice.period_end, locale)


def _standing(
    note: CreditNote, money: Callable[[Decimal], str]
) -> tuple[tuple[str, str, bool], ...]:
    """The invoice's total, and where earlier corrections left it when they did: so the
    page ties out (stood at + this document's signed total = after) without another
    document."""
    invoice = note.invoice
    before = subtract(note.invoice_total_after.amount, owed_effect(note.total.amount, note.kind))
    rows = [(f"Invoice {invoice.number} total", money(invoice.total.amount), False)]
    if before != invoice.total.amount:
        rows.append(("Invoice total after earlier corrections", money(before), False))
    return tuple(rows)


class _Wording(NamedTuple):
    """What differs between a credit note's page and an adjustment invoice's: words only."""

    title: str
    number: str  # its number's label
    relation: str  # how it names the invoice it is for
    headline: str  # "{amount}", "{invoice}" and "{due}" filled in
    total: str
    itself: str  # "Invoice total after this …", "Questions about this …"
    payment_title: str
    payment: str  # "{amount}", "{invoice}", "{number}", "{due}" and "{after}" filled in
    against: str  # a line going the other way from the document's total


_WORDINGS: Final = {
    CREDIT_NOTE: _Wording(
        "Credit note",
        "Credit note number",
        "Corrects invoice",
        "{amount} credited to invoice {invoice}",
        "Total credited",
        "this credit note",
        "Settlement",
        "This credit note reduces invoice {invoice} by {amount}, to {after}.",
        "charged",
    ),
    ADJUSTMENT: _Wording(
        "Adjustment invoice",
        "Adjustment number",
        "Adjusts invoice",
        "{amount} due {due}, in addition to invoice {invoice}",
        "Total due",
        "this adjustment",
        "Payment",
        "This adjustment adds {amount} to invoice {invoice}. Please pay {amount} by {due}, "
        "quoting adjustment number {number}.",
        "credited",
    ),
}


# What becomes of an amount already paid that a credit note credits, by the seller's
# `credit_settlement` ("{after}": what the invoice comes to after the credit note).
_SETTLEMENTS: Final = {
    "refund": "Any amount already paid above {after} is refunded to you.",
    "next_invoice": "Any amount already paid above {after} is taken off your next invoice.",
}


def settlement(note: CreditNote, issuer: Issuer, after: str) -> str:
    """A credit note's word on money already paid (the seller's policy); "" for an
    adjustment, which is a bill."""
    if note.kind != CREDIT_NOTE:
        return ""
    return _SETTLEMENTS[issuer.credit_settlement].format(after=after)


def _payment(
    note: CreditNote, issuer: Issuer, money: Callable[[Decimal], str], due: str
) -> tuple[str, ...]:
    """The closing section: how the document settles; an adjustment, a bill, is paid as the
    invoice is (the seller's payment instructions)."""
    words = _WORDINGS[note.kind]
    after = money(note.invoice_total_after.amount)
    settles = words.payment.format(
        amount=money(note.total.amount),
        invoice=note.invoice.number,
        number=note.number,
        due=due,
        after=after,
    )
    instructions = issuer.payment_instructions if note.kind == ADJUSTMENT else ()
    paid = settlement(note, issuer, after)
    return (
        settles,
        *([paid] if paid else []),
        *instructions,
        f"Questions about {words.itself}: {issuer.email}",
    )


def credit_note_page(note: CreditNote, account: Account, issuer: Issuer, locale: Locale) -> Page:
    """A credit note's page, or an adjustment invoice's: one layout, worded by its kind."""
    words = _WORDINGS[note.kind]
    invoice = note.invoice

    def money(amount: Decimal) -> str:
        return money_text(amount, invoice.currency, locale)

    def signed(amount: Decimal) -> str:
        return money(owed_effect(amount, note.kind))

    invoice_date = datetime.fromisoformat(invoice.issued_at).astimezone(UTC).date()
    due = date_text(due_date(note.issued_at, issuer), locale)
    bill = (("Date due", due),) if note.kind == ADJUSTMENT else ()
    total = money(note.total.amount)
    return Page(
        title=words.title,
        seller=seller_lines(issuer),
        identity=(
            (words.number, note.number),
            ("Date of issue", date_text(note.issued_at.astimezone(UTC).date(), locale)),
            *bill,
            (words.relation, invoice.number),
            ("Invoice date", date_text(invoice_date, locale)),
        ),
        customer=customer_lines(account),
        service=(
            ("Reason", note.reason),
            ("Service period", service_period(invoice, locale)),
            ("Account", account.id),
            ("Currency", currency_name(invoice.currency, locale)),
        ),
        headline=words.headline.format(amount=total, invoice=invoice.number, due=due),
        rows=tuple(_row(line, note.kind, locale) for line in note.lines),
        totals=(
            ("Subtotal", signed(note.subtotal.amount), False),
            (tax_label(invoice, account, locale), signed(note.tax.amount), False),
            (words.total, signed(note.total.amount), True),
            *_standing(note, money),
            (f"Invoice total after {words.itself}", money(note.invoice_total_after.amount), True),
        ),
        payment_title=words.payment_title,
        payment=_payment(note, issuer, money, due),
    )
