"""The invoice's sections drawn in page order: the seller and the invoice's numbers, the
parties and the amount due, the line table, the totals kept together, how to pay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from billing.invoicing.pdf.canvas import Document
from billing.invoicing.pdf.page import Page

_RULE: Final = (200, 200, 200)
_HEADING_FILL: Final = (242, 242, 242)


def draw(pdf: Document, page: Page) -> None:
    """The whole invoice onto `pdf`, from its first page on."""
    _heading(pdf, page)
    _parties(pdf, page)
    widths = _column_widths(pdf, page)
    _lines(pdf, page, widths)
    _totals(pdf, page, widths[3])
    _payment(pdf, page)


def _heading(pdf: Document, page: Page) -> None:
    left, width = pdf.l_margin, pdf.epw
    top = pdf.get_y()
    seller = width * 0.55
    pdf.style(13, bold=True)
    pdf.block(left, seller - 6, page.seller[0], 6)
    pdf.style(9, grey=True)
    for line in page.seller[1:]:
        pdf.block(left, seller - 6, line, 4.5)
    bottom = pdf.get_y()

    right, column = left + seller, width - seller
    pdf.set_y(top)
    pdf.style(20, bold=True)
    pdf.block(right, column, page.title, 9, "R")
    pdf.set_y(pdf.get_y() + 2)
    for label, value in page.identity:
        y = pdf.get_y()
        pdf.style(9, grey=True)
        pdf.block(right, column * 0.42, label, 5)
        below = pdf.get_y()
        pdf.set_y(y)
        pdf.style(9, bold=True)
        pdf.block(right + column * 0.42, column * 0.58, value, 5, "R")
        pdf.set_y(max(below, pdf.get_y()))
    pdf.set_y(max(bottom, pdf.get_y()) + 7)


def _parties(pdf: Document, page: Page) -> None:
    left, width = pdf.l_margin, pdf.epw
    top = pdf.get_y()
    column = width * 0.55
    pdf.style(8, grey=True)
    pdf.block(left, column - 6, "Bill to", 4.5)
    pdf.style(11, bold=True)
    pdf.block(left, column - 6, page.customer[0], 5.5)
    pdf.style(9)
    for line in page.customer[1:]:
        pdf.block(left, column - 6, line, 4.5)
    bottom = pdf.get_y()
    pdf.set_y(top)
    for label, value in page.service:
        pdf.style(8, grey=True)
        pdf.block(left + column, width - column, label, 4.5)
        pdf.style(9)
        pdf.block(left + column, width - column, value, 4.5)
        pdf.set_y(pdf.get_y() + 1.5)
    pdf.set_y(max(bottom, pdf.get_y()) + 6)
    pdf.style(14, bold=True)
    pdf.block(left, width, page.headline, 7)
    pdf.set_y(pdf.get_y() + 4)


_PAD: Final = 1.5  # each table cell's inner margin, left and right
_LINE: Final = 4.4  # the line table's line height
_ROW_PAD: Final = 1.2  # above and below each row's text
_SMALLEST_NUMBER: Final = 5.0  # pt: a number is set no smaller; wider still, it wraps


def _number_size(pdf: Document, number: str, room: float, size: float) -> float:
    """The size to set `number` in (in the current style) so that it fits `room` on one
    line: `size`, or smaller down to _SMALLEST_NUMBER, rather than broken in its digits."""
    wide = max(pdf.measure(part) for part in pdf.text_of(number).split("\n"))
    return size if wide <= room else max(_SMALLEST_NUMBER, size * room / wide * 0.98)


def _column_widths(pdf: Document, page: Page) -> tuple[float, float, float, float]:
    """Description takes what the numbers leave; each number column is as wide as its
    widest text (amounts include the totals'), within limits; what is wider still wraps,
    so nothing overprints."""
    width = pdf.epw

    def widest(texts: Iterable[str], size: float, floor: float, ceiling: float) -> float:
        pdf.style(size, bold=True)
        found = max(
            (pdf.measure(part) for text in texts for part in pdf.text_of(text).split("\n")),
            default=0.0,
        )
        return min(max(found + 2 * _PAD + 0.5, floor), ceiling)

    totals = [value for _, value, _ in page.totals]
    amount = widest([*(r.amount for r in page.rows), *totals], 10.5, 24, width * 0.38)
    quantity = widest([r.quantity for r in page.rows], 9, 16, width * 0.3)
    price = widest([r.unit_price for r in page.rows], 9, 20, width * 0.2)
    return width - amount - quantity - price, quantity, price, amount


_ALIGN: Final = ("L", "R", "R", "R")


def _table_row(
    pdf: Document,
    widths: Sequence[float],
    cells: Sequence[str],
    size: float,
    *,
    bold: bool = False,
    grey: bool = False,
    fill: bool = False,
) -> None:
    line = _LINE * size / 9
    # A number wider than its column is set smaller rather than broken inside its digits.
    sizes = [size]
    for cell, width in zip(cells[1:], widths[1:], strict=True):
        pdf.style(size, bold=bold, grey=grey)
        sizes.append(_number_size(pdf, cell, width - 2 * _PAD, size))
    wrapped = []
    for cell, width, cell_size in zip(cells, widths, sizes, strict=True):
        pdf.style(cell_size, bold=bold, grey=grey)
        wrapped.append(pdf.wrap(cell, width - 2 * _PAD))
    height = max(len(lines) for lines in wrapped) * line + 2 * _ROW_PAD
    pdf.room(height)
    y, x = pdf.get_y(), pdf.l_margin
    if fill:
        pdf.set_fill_color(*_HEADING_FILL)
        pdf.rect(x, y, sum(widths), height, style="F")
    for width, lines, align, cell_size in zip(widths, wrapped, _ALIGN, sizes, strict=True):
        pdf.style(cell_size, bold=bold, grey=grey)  # a new page drew the headings in theirs
        for number, text in enumerate(lines):
            pdf.put(x + _PAD, y + _ROW_PAD + number * line, width - 2 * _PAD, line, text, align)
        x += width
    pdf.set_draw_color(*_RULE)
    pdf.line(pdf.l_margin, y + height, pdf.l_margin + sum(widths), y + height)
    pdf.set_y(y + height)


def _lines(pdf: Document, page: Page, widths: tuple[float, float, float, float]) -> None:

    def headings() -> None:
        _table_row(
            pdf, widths, ("Description", "Qty", "Unit price", "Amount"), 8.5, bold=True, fill=True
        )

    pdf.room(20)
    headings()
    pdf.headings = headings
    for row in page.rows:
        cells = (row.description, row.quantity, row.unit_price, row.amount)
        _table_row(pdf, widths, cells, 7.5 if row.step else 9, grey=row.step, bold=row.heading)
    pdf.headings = None
    pdf.set_y(pdf.get_y() + 3)


def _totals(pdf: Document, page: Page, amount: float) -> None:
    """The totals, kept together: moved to a new page whole when they would not fit."""
    label = pdf.epw - amount
    heights, sizes = [], []
    for caption, value, strong in page.totals:
        size = 10.5 if strong else 9
        pdf.style(size, bold=strong)
        sizes.append(_number_size(pdf, value, amount - 2 * _PAD, size))
        captions = len(pdf.wrap(caption, label - 2 * _PAD))
        pdf.style(sizes[-1], bold=strong)
        heights.append(max(captions, len(pdf.wrap(value, amount - 2 * _PAD))) * 6)
    pdf.room(sum(heights))
    for (caption, value, strong), height, value_size in zip(
        page.totals, heights, sizes, strict=True
    ):
        y = pdf.get_y()
        pdf.style(10.5 if strong else 9, bold=strong, grey=not strong)
        pdf.block(pdf.l_margin + _PAD, label - 2 * _PAD, caption, 6, "R")
        pdf.set_y(y)
        pdf.style(value_size, bold=strong)
        pdf.block(pdf.l_margin + label + _PAD, amount - 2 * _PAD, value, 6, "R")
        pdf.set_y(y + height)
    pdf.set_y(pdf.get_y() + 6)


def _payment(pdf: Document, page: Page) -> None:
    pdf.style(9)
    lines = [line for text in page.payment for line in pdf.wrap(text, pdf.epw)]
    pdf.room(5 + 4.6 * min(len(lines), 3))
    pdf.style(9, bold=True)
    pdf.block(pdf.l_margin, pdf.epw, page.payment_title, 5)
    pdf.style(9)
    for text in page.payment:
        for line in pdf.wrap(text, pdf.epw):
            pdf.room(4.6)
            pdf.put(pdf.l_margin, pdf.get_y(), pdf.epw, 4.6, line, "L")
            pdf.set_y(pdf.get_y() + 4.6)
