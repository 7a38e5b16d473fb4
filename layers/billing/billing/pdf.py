"""The invoice as a PDF a finance team would accept (fpdf2). Same input, same bytes.

Text that the PDF standard fonts can show (Latin-1: "Société Générale", "Müller") is set in
Helvetica, which needs no embedding and renders in a few milliseconds. Any other text
("東京データ株式会社") switches the document to Noto Sans with Noto Sans CJK as fallback,
both shipped as Python packages and subset into the file.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import CoreFont

from billing.catalog import Account
from billing.invoice import Invoice, InvoiceLine
from billing.money import minor_units, plain, plain_quantity

_FAMILY_UNICODE: Final = "Noto"
_FAMILY_CJK: Final = "NotoCJK"
_GREY: Final = (110, 110, 110)


@dataclass(frozen=True)
class Issuer:
    """Who sends the invoices: one deployment is one issuer."""

    name: str = "Usage Billing"
    address: tuple[str, ...] = ()
    tax_id: str | None = None
    email: str = "billing@example.com"


@functools.cache
def _font_file(package: str, *parts: str) -> str:
    return str(importlib.resources.files(package).joinpath(*parts))


def _latin1(texts: Iterable[str]) -> bool:
    try:
        for text in texts:
            text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _day(instant: datetime) -> str:
    return instant.strftime("%d %b %Y").lstrip("0")


def _texts(invoice: Invoice, account: Account, issuer: Issuer) -> Iterator[str]:
    yield from (issuer.name, *issuer.address, issuer.tax_id or "", issuer.email)
    yield from (account.name, account.id, account.email, account.timezone)
    for line in invoice.lines:
        yield line.description
        yield line.unit or ""
        for step in line.steps:
            yield step.description


class _Document(FPDF):
    def __init__(self, unicode_fonts: bool, created: datetime) -> None:
        super().__init__(format="A4", unit="mm")
        self.set_creation_date(created.astimezone(UTC))
        self.set_producer("usage-billing")
        self.set_auto_page_break(auto=True, margin=18)
        self.set_margins(18, 18, 18)
        if unicode_fonts:
            noto = _font_file("fontpkg_noto_sans", "files", "NotoSans[wdth,wght].ttf")
            cjk = _font_file("cvttf_NotoSansCJK_Regular", "NotoSansCJKtc-Regular.otf")
            self.add_font(_FAMILY_UNICODE, "", noto)
            self.add_font(_FAMILY_UNICODE, "B", noto)
            self.add_font(_FAMILY_CJK, "", cjk)
            self.set_fallback_fonts([_FAMILY_CJK], exact_match=False)
            self.family = _FAMILY_UNICODE
        else:
            self.family = "Helvetica"

    def text_style(self, size: float, bold: bool = False, grey: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(*(_GREY if grey else (0, 0, 0)))

    def width_of(self, text: str) -> float:
        """The text's width in the current font: summed from the standard fonts' metrics
        directly (fpdf2's general method prepares bidirectional text first, which is slow)."""
        font = self.current_font
        if isinstance(font, CoreFont):
            return sum(font.cw.get(character, 0) for character in text) * self.font_size / 1000
        return float(self.get_string_width(text))

    def row(self, cells: list[tuple[float, str, str]], height: float = 6.0) -> None:
        """One table row. Text is placed with `text()` at a computed position: `cell()`
        lays out each piece in full, which made rendering several times slower."""
        x, baseline = self.l_margin, self.get_y() + height / 2 + self.font_size * 0.35
        for width, text, align in cells:
            if text:
                offset = self.c_margin
                if align == "R":
                    offset = width - self.c_margin - self.width_of(text)
                self.text(x + offset, baseline, text)
            x += width
        self.ln(height)


def _money(amount: Decimal, currency: str) -> str:
    return f"{plain(amount)} {currency}"


def render_invoice_pdf(invoice: Invoice, account: Account, issuer: Issuer = Issuer()) -> bytes:
    """The invoice as PDF bytes, identical for identical input."""
    pdf = _Document(not _latin1(_texts(invoice, account, issuer)), invoice.issued_at)
    pdf.set_title(f"Invoice {invoice.invoice_number}")
    pdf.set_author(issuer.name)
    pdf.add_page()
    width = pdf.epw

    # Issuer and invoice identity.
    pdf.text_style(16, bold=True)
    pdf.cell(width / 2, 8, issuer.name, new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.cell(width / 2, 8, "INVOICE", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.text_style(9, grey=True)
    identity = [
        f"Invoice number: {invoice.invoice_number}",
        f"Issued: {_day(invoice.issued_at)} (UTC)",
        f"Period: {invoice.period}",
    ]
    left = [*issuer.address, *([f"Tax ID: {issuer.tax_id}"] if issuer.tax_id else []), issuer.email]
    for number in range(max(len(left), len(identity))):
        pdf.row(
            [
                (width / 2, left[number] if number < len(left) else "", "L"),
                (width / 2, identity[number] if number < len(identity) else "", "R"),
            ],
            height=5,
        )
    pdf.ln(6)

    # Customer.
    pdf.text_style(9, grey=True)
    pdf.cell(width, 5, "Bill to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.text_style(11, bold=True)
    pdf.cell(width, 6, account.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.text_style(9)
    pdf.cell(
        width, 5, f"Account {account.id} · {account.email}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.cell(
        width,
        5,
        f"Service period: {_day(invoice.period_start)} to {_day(invoice.period_end)} "
        f"(exclusive), {account.timezone}",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(5)

    # Lines.
    columns = [width * 0.44, width * 0.18, width * 0.14, width * 0.24]
    pdf.text_style(9, bold=True)
    pdf.row(
        [
            (columns[0], "Description", "L"),
            (columns[1], "Quantity", "R"),
            (columns[2], "Unit", "R"),
            (columns[3], f"Amount ({invoice.currency})", "R"),
        ]
    )
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    for line in invoice.lines:
        _line(pdf, line, columns, invoice.currency)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(2)

    # Totals.
    label, value = width * 0.76, width * 0.24
    rate = plain_quantity(invoice.tax_rate * 100)
    for caption, amount, bold in (
        ("Subtotal", invoice.subtotal.amount, False),
        (f"Tax ({rate}%)", invoice.tax.amount, False),
        ("Total due", invoice.total.amount, True),
    ):
        pdf.text_style(10 if bold else 9, bold=bold)
        pdf.row([(label, caption, "R"), (value, _money(amount, invoice.currency), "R")])
    pdf.ln(6)
    pdf.text_style(8, grey=True)
    # Plain cells, not multi_cell: line breaking costs more than the rest of the page.
    for note in (
        f"Each line is computed exactly and rounded once, half up, to "
        f"{minor_units(invoice.currency)} decimal places of {invoice.currency}.",
        "Quantities are the period's usage as metered.",
    ):
        pdf.cell(width, 4, note, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _line(pdf: _Document, line: InvoiceLine, columns: list[float], currency: str) -> None:
    pdf.text_style(9)
    description = line.description
    if line.filters:
        description += (
            " ("
            + "; ".join(f"{key}: {', '.join(values)}" for key, values in line.filters.items())
            + ")"
        )
    pdf.row(
        [
            (columns[0], description, "L"),
            (columns[1], plain_quantity(line.quantity), "R"),
            (columns[2], line.unit or "", "R"),
            (columns[3], plain(line.amount.amount), "R"),
        ]
    )
    pdf.text_style(7.5, grey=True)
    for step in line.steps:
        price = f" × {plain(step.unit_price)}" if step.unit_price is not None else ""
        pdf.row(
            [
                (columns[0], f"    {step.description}", "L"),
                (columns[1] + columns[2], f"{plain_quantity(step.units)}{price}", "R"),
                (columns[3], plain(step.amount), "R"),
            ],
            height=4.5,
        )
