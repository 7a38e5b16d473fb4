"""The invoice as a PDF a finance team accepts (fpdf2). Same input, same bytes.

What is on it: the seller (legal name, address, tax ID), the customer (name, billing
address, tax ID, email), the invoice number, issue and due dates and the service period;
one row per line with its quantity, unit price and amount (tiers and other steps of a line
below it); subtotal, tax, total and amount due; how to pay; "Page n of N" on every page.
The line table starts new pages as it needs, repeating its headings, and the totals always
follow it. Amounts, quantities and dates are written for the account's locale (Babel).

Fonts. Text that the PDF standard fonts can show (Windows-1252: "Société Générale", "€")
is set in Helvetica, which needs no embedding and renders in a few milliseconds. Any other
text switches the document to the bundled Noto fonts (billing.fonts), loading only the
families its text needs, and turns on HarfBuzz shaping only when a script needs it (Arabic
and Hebrew right to left, Devanagari's conjuncts). Every character that validation accepts
(`billing.core.fields.printable`) has a glyph; anything else that reaches the renderer is drawn
as a box rather than failing the invoice.

This module puts the parts in `billing.invoicing.pdf` together: the texts of the page
(`page`), the fonts they need (`font_plan`, `text`), drawn (`canvas`) section by section
(`layout`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from babel import Locale
from fpdf.errors import FPDFException
from fpdf.fonts import TTFFont

from billing import fonts
from billing.core.catalog import Account
from billing.core.invoice import Invoice
from billing.core.locales import DEFAULT_LOCALE, canonical_locale, locale_of
from billing.core.seller import Issuer
from billing.invoicing.pdf.canvas import Document
from billing.invoicing.pdf.font_plan import MAX_EMOJI, FontPlan
from billing.invoicing.pdf.layout import draw
from billing.invoicing.pdf.page import Page, invoice_page

__all__ = ["Issuer", "account_locale", "render_invoice_pdf", "render_page"]

_DEFAULT_ISSUER: Final = Issuer()


def render_invoice_pdf(
    invoice: Invoice, account: Account, issuer: Issuer = _DEFAULT_ISSUER
) -> bytes:
    """The invoice as PDF bytes, identical for identical input."""
    locale = account_locale(account)
    page = invoice_page(invoice, account, issuer, locale)
    return render_page(page, locale, invoice.invoice_number, invoice.issued_at, issuer)


def render_page(
    page: Page, locale: Locale, number: str, issued_at: datetime, issuer: Issuer
) -> bytes:
    """A page's texts drawn as an invoice is (an invoice's, or a credit note's), in the
    fonts they need: PDF bytes, identical for identical input."""
    texts = list(page.texts())
    budget = MAX_EMOJI
    while True:
        plan = FontPlan.for_texts(texts, locale, budget)
        try:
            return _render(page, plan, number, issued_at, issuer)
        except FPDFException:
            # Shaped emoji sequences took the colour font past its 255 glyphs: fewer emoji.
            if fonts.EMOJI not in plan.families:
                raise
            budget //= 2


def _render(page: Page, plan: FontPlan, number: str, issued_at: datetime, issuer: Issuer) -> bytes:
    pdf = Document(plan, number, issued_at, page.title)
    pdf.set_title(pdf.text_of(f"{page.title} {number}"))
    pdf.set_author(pdf.text_of(issuer.name))
    pdf.add_page()
    draw(pdf, page)
    try:
        return bytes(pdf.output())
    finally:
        for font in pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.ttfont.close()  # fontTools reads lazily and keeps the file open


def account_locale(account: Account) -> Locale:
    """The locale the account's documents are written for."""
    return locale_of(_locale_name(account))


def _locale_name(account: Account) -> str:
    try:
        return canonical_locale(account.locale)
    except ValueError:  # validated on the way in; an old stored account has none
        return DEFAULT_LOCALE
