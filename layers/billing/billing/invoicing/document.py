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
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Final

from babel import Locale
from fpdf import FPDF
from fpdf.errors import FPDFException
from fpdf.font_type_3 import CBDTColorFont, Type3FontGlyph
from fpdf.fonts import CORE_FONTS_CHARWIDTHS, CoreFont, TTFFont

from billing import fonts
from billing.core.catalog import Account
from billing.core.invoice import Invoice, InvoiceLine
from billing.core.locales import (
    DEFAULT_LOCALE,
    canonical_locale,
    date_text,
    locale_of,
    money_text,
    percent_text,
    price_text,
    quantity_text,
)
from billing.core.pricing import PriceStep
from billing.core.seller import Issuer

__all__ = ["Issuer", "render_invoice_pdf"]

_GREY: Final = (105, 105, 105)
_BLACK: Final = (0, 0, 0)
_RULE: Final = (200, 200, 200)
_HEADING_FILL: Final = (242, 242, 242)
_BOTTOM: Final = 20  # mm kept free at the foot of each page, for the page number
_CORE: Final = "Helvetica"
_CORE_ENCODING: Final = "windows-1252"
# Helvetica has no narrow no-break space (French grouping); a no-break space looks alike.
_CORE_SUBSTITUTES: Final = str.maketrans({"\u202f": "\u00a0"})
_COMPLEX: Final = (fonts.ARABIC, fonts.HEBREW, fonts.DEVANAGARI)
# A Type 3 colour font holds at most 255 glyphs (fpdf2 refuses more). The first this many
# distinct emoji code points of an invoice are drawn; the rest are written as their code
# points ("[U+1F600]"). Shaping can add a glyph per sequence (a flag, a family): a document
# that still overflows is drawn again with half the budget (render_invoice_pdf).
_MAX_EMOJI: Final = 250


def _load_cbdt_glyph_image(self: CBDTColorFont, glyph: Type3FontGlyph) -> None:
    """fpdf2 2.8's CBDTColorFont.load_glyph_image, safe for a glyph loaded twice.

    It reads the glyph's raw bytes (`data`), and its first read of `metrics` makes fontTools
    decompile the glyph and delete `data`: the same glyph loaded again (two regional
    indicator pairs that are not flags, a tag character, `.notdef` for two characters)
    raised AttributeError and failed the invoice. The raw bytes are rebuilt from the
    decompiled glyph, which fontTools compiles back to the same bytes."""
    strike = self.base_font.ttfont["CBDT"].strikeData[0]
    bitmap = strike[glyph.glyph_name]
    if "data" not in bitmap.__dict__:
        bitmap.data = bitmap.compile(self.base_font.ttfont)
    _fpdf_load_cbdt_glyph_image(self, glyph)


_fpdf_load_cbdt_glyph_image: Final = CBDTColorFont.load_glyph_image
CBDTColorFont.load_glyph_image = _load_cbdt_glyph_image  # type: ignore[method-assign]


def _clean(text: str) -> str:
    """Text as drawn: line breaks and other control characters become spaces (validation
    refuses them; an old stored document may still hold one), variation selectors no
    font maps are left out, lone surrogates become '?'."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for character in fonts.drawable(text):
        category = unicodedata.category(character)
        if category in {"Cc", "Zl", "Zp"}:
            out.append(" ")
        elif category == "Cs":
            out.append("?")
        else:
            out.append(character)
    return "".join(out)


def _emoji_spans(text: str) -> Iterator[tuple[int, int]]:
    """Where the runs of consecutive characters that the emoji font draws are in `text`."""
    start = None
    for index, character in enumerate(text):
        if fonts.family_for(ord(character)) is fonts.EMOJI:
            start = index if start is None else start
        elif start is not None:
            yield start, index
            start = None
    if start is not None:
        yield start, len(text)


def _emoji_runs(text: str) -> Iterator[str]:
    for start, end in _emoji_spans(text):
        yield text[start:end]


_REGIONAL_INDICATORS: Final = range(0x1F1E6, 0x1F200)
# What joins the character before it into one emoji (a ligature once shaped): the joiner,
# skin tones, tag characters and the keycap.
_EXTENDERS: Final = frozenset(
    ["\u200d", "\u20e3", *map(chr, range(0x1F3FB, 0x1F400)), *map(chr, range(0xE0020, 0xE0080))]
)


def _sequences(run: str) -> Iterator[str]:
    """The emoji of a run as shaping makes glyphs of them: a pair of regional indicators (a
    flag), a character with what joins it (a joiner and the next, a skin tone, tags)."""
    index = 0
    while index < len(run):
        end = index + 1
        if ord(run[index]) in _REGIONAL_INDICATORS:
            if end < len(run) and ord(run[end]) in _REGIONAL_INDICATORS:
                end += 1
        else:
            while end < len(run) and run[end] in _EXTENDERS:
                end += 2 if run[end] == "\u200d" else 1
            end = min(end, len(run))
        yield run[index:end]
        index = end


def _glyphs(run: str, shaping: bool) -> set[str]:
    """What a run can take of the colour font's glyphs, at most: one per code point, and,
    shaped, one more per sequence of several (a flag, a family, a skin tone)."""
    glyphs = set(run)
    if shaping:
        glyphs.update(sequence for sequence in _sequences(run) if len(sequence) > 1)
    return glyphs


def _spelled(run: str) -> str:
    return "".join(f"[U+{ord(character):04X}]" for character in run)


@dataclass(frozen=True)
class _FontPlan:
    """Which fonts a document uses: the standard ones, or Noto with the families needed;
    and the emoji runs written as code points, past the emoji budget."""

    core: bool
    families: tuple[fonts.Family, ...] = ()
    shaping: bool = False
    cjk_face: int = 0
    spelled: frozenset[str] = frozenset()

    @classmethod
    def for_texts(
        cls, texts: Sequence[str], locale: Locale, emoji_budget: int = _MAX_EMOJI
    ) -> _FontPlan:
        characters = set("".join(texts))
        try:
            "".join(characters).translate(_CORE_SUBSTITUTES).encode(_CORE_ENCODING)
        except UnicodeEncodeError:
            pass
        else:
            return cls(core=True)
        used = {
            family
            for family in map(fonts.family_for, map(ord, characters))
            if family is not None and family is not fonts.LATIN
        }
        shaping = any(family in used for family in _COMPLEX)
        # Emoji runs in the order the texts come (the page's order): a run is drawn while
        # the glyphs it may take stay within the budget, else spelled out.
        drawn: set[str] = set()
        spelled: set[str] = set()
        if fonts.EMOJI in used:
            for text in texts:
                for run in _emoji_runs(_clean(text)):
                    glyphs = _glyphs(run, shaping)
                    if run in spelled or len(drawn | glyphs) > emoji_budget:
                        spelled.add(run)
                    else:
                        drawn.update(glyphs)
        if not drawn:
            used.discard(fonts.EMOJI)
        return cls(
            core=False,
            families=tuple(family for family in fonts.FAMILIES if family in used),
            shaping=shaping,
            cjk_face=fonts.cjk_face(locale.language, locale.script, locale.territory),
            spelled=frozenset(spelled),
        )


class _Document(FPDF):
    """A4, drawn line by line: text is wrapped and placed here rather than by fpdf2's
    multi_cell and table, which lay out every piece in full and made a typical invoice
    ten times slower. Page breaks are ours too (`room`), so the line table can repeat its
    headings and the totals can stay together."""

    def __init__(self, plan: _FontPlan, number: str, created: datetime) -> None:
        super().__init__(format="A4", unit="mm")
        self.number = number
        self.set_creation_date(created.astimezone(UTC))
        self.set_producer("usage-billing")
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(auto=False, margin=_BOTTOM)
        self.c_margin = 0
        self.core = plan.core
        self.spelled = plan.spelled
        self.headings: Callable[[], None] | None = None
        self._style: tuple[float, bool, bool] | None = None
        if plan.core:
            self.core_fonts_encoding = _CORE_ENCODING
            self.family = _CORE
        else:
            self.family = fonts.LATIN.name
            for family in (fonts.LATIN, *plan.families):
                face = plan.cjk_face if family is fonts.CJK else 0
                self.add_font(
                    family.name,
                    "",
                    fonts.font_path(family.regular),
                    collection_font_number=face,
                )
                if family.bold:
                    self.add_font(family.name, "B", fonts.font_path(family.bold))
            if plan.families:
                # Bold text in a family without a bold face (CJK) is set in its regular.
                self.set_fallback_fonts([f.name for f in plan.families], exact_match=False)
            if plan.shaping:
                self.set_text_shaping(True)

    def style(self, size: float, bold: bool = False, grey: bool = False) -> None:
        if (size, bold, grey) == self._style:
            return  # set_font and set_text_color cost more than drawing a short text
        self._style = (size, bold, grey)
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(*(_GREY if grey else _BLACK))

    def text_of(self, text: str) -> str:
        """Text as this document draws it; a line break in it (ours) starts a new line."""
        text = "\n".join(_clean(part) for part in text.split("\n"))
        if self.core:
            return text.translate(_CORE_SUBSTITUTES)
        if not self.spelled:
            return text
        # Run by run, each whole: a run spelled out is never a piece of a longer one.
        pieces, done = [], 0
        for start, end in _emoji_spans(text):
            run = text[start:end]
            pieces.append(text[done:start] + (_spelled(run) if run in self.spelled else run))
            done = end
        return "".join(pieces) + text[done:]

    def plain(self, text: str) -> bool:
        """Whether `text` can be drawn by `text()` in the current font as it is: every
        character in the font, nothing for a fallback font, bidi or shaping to do (digits
        and Latin text, in a document that also has other scripts)."""
        font = self.current_font
        if isinstance(font, CoreFont):
            return True
        assert isinstance(font, TTFFont)
        cmap = font.cmap
        return all(ord(c) in cmap and c not in _BIDI_CONTROLS for c in text)

    def measure(self, text: str) -> float:
        """The width of already cleaned text in the current font."""
        font = self.current_font
        if isinstance(font, CoreFont):
            return _core_width(text, font.fontkey) * self.font_size / 1000
        if self.plain(text):
            assert isinstance(font, TTFFont)
            return sum(font.cw[ord(c)] for c in text) * self.font_size / 1000
        return float(self.get_string_width(text))

    def wrap(self, text: str, width: float) -> list[str]:
        """Cleaned `text` broken into lines no wider than `width`: at spaces, and inside a
        word (never before a combining mark) only when the word alone is too wide."""
        lines: list[str] = []
        for paragraph in self.text_of(text).split("\n"):
            if self.measure(paragraph) <= width:
                lines.append(paragraph)
                continue
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.measure(candidate) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                rest = word
                while len(rest) > 1 and self.measure(rest) > width:
                    cut = self._fitting(rest, width)
                    lines.append(rest[:cut])
                    rest = rest[cut:]
                line = rest
            lines.append(line)
        return lines

    def _fitting(self, word: str, width: float) -> int:
        low, high = 1, len(word) - 1  # the longest prefix that fits, at least one character
        while low < high:
            middle = (low + high + 1) // 2
            if self.measure(word[:middle]) <= width:
                low = middle
            else:
                high = middle - 1
        while low > 1 and (_joins(word[low]) or word[low - 1] == _ZWJ):
            low -= 1
        return low

    def put(self, x: float, y: float, width: float, height: float, line: str, align: str) -> None:
        """One line of cleaned text in the box (x, y, width, height)."""
        if not line:
            return
        # A fallback font that ends one piece of text stays selected in the PDF's text state
        # while fpdf2 believes its own font is: make it select its font again.
        if not self.core:
            self.current_font_is_set_on_page = False
        if self.plain(line):
            # text() is several times faster than cell(), which lays out in full.
            offset = 0.0
            if align != "L":
                offset = width - self.measure(line)
                offset = offset / 2 if align == "C" else offset
            self.text(x + offset, y + height / 2 + self.font_size * 0.35, line)
        else:
            # cell() shapes, orders right-to-left runs and falls back between fonts.
            self.set_xy(x, y)
            self.cell(width, height, line, align=align)

    def block(self, x: float, width: float, text: str, height: float, align: str = "L") -> float:
        """`text` wrapped to `width` from (x, current y); moves y below it, returns its
        height."""
        y = self.get_y()
        lines = self.wrap(text, width)
        for number, line in enumerate(lines):
            self.put(x, y + number * height, width, height, line, align)
        self.set_y(y + len(lines) * height)
        self.set_x(x)
        return len(lines) * height

    def room(self, height: float) -> None:
        """A new page when `height` more would run into the bottom margin."""
        if self.get_y() + height > self.h - _BOTTOM:
            self.add_page()
            if self.headings is not None:
                self.headings()

    def header(self) -> None:
        if self.page_no() > 1:
            saved = self._style  # fpdf2 restores the font and colour after the header
            self.style(8, grey=True)
            self.set_y(10)
            self.block(self.l_margin, self.epw, f"Invoice {self.number} (continued)", 4, "R")
            self.set_y(self.t_margin)
            self._style = saved

    def footer(self) -> None:
        # cell(), not text(): only cell() puts the page count in place of {nb}.
        saved = self._style  # fpdf2 restores the font and colour after the footer
        self.style(8, grey=True)
        self.set_xy(self.l_margin, self.h - 14)
        line = self.text_of(f"{self.number} · Page {self.page_no()} of {{nb}}")
        self.cell(self.epw, 5, line, align="R")
        self._style = saved


_ZWJ: Final = "\u200d"
# Characters that make text need fpdf2's bidi algorithm even when the main font has them.
_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


@functools.lru_cache(maxsize=8192)
def _core_width(text: str, fontkey: str) -> int:
    """A text's width in a standard font, in thousandths of the font size (labels and
    amounts repeat from invoice to invoice)."""
    widths = _core_widths(fontkey)
    return sum(widths.get(c, 0) for c in text)


@functools.cache
def _core_widths(fontkey: str) -> dict[str, int]:
    """A standard font's widths by character (fpdf2 keys them by Windows-1252 byte)."""
    return {
        byte.decode(_CORE_ENCODING, "ignore") or chr(byte[0]): width
        for byte, width in (
            (code.encode("latin-1"), width)
            for code, width in CORE_FONTS_CHARWIDTHS[fontkey].items()
        )
    }


def _joins(character: str) -> bool:
    """Whether a line must not start with this character (it belongs to the one before)."""
    return unicodedata.category(character) in {"Mn", "Mc", "Me"} or character in fonts.DROPPED


@dataclass(frozen=True)
class _Row:
    """One row of the line table: a line, or one step of a line (`step` rows are smaller)."""

    description: str
    quantity: str
    unit_price: str
    amount: str
    step: bool = False


@dataclass(frozen=True)
class _Page:
    """Every text the invoice prints, formatted for the account's locale."""

    seller: tuple[str, ...]  # legal name, then the lines under it
    identity: tuple[tuple[str, str], ...]
    customer: tuple[str, ...]  # name, then the lines under it
    service: tuple[tuple[str, str], ...]
    headline: str
    rows: tuple[_Row, ...]
    totals: tuple[tuple[str, str, bool], ...]
    payment: tuple[str, ...]

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


def _rows(line: InvoiceLine, currency: str, locale: Locale) -> Iterator[_Row]:
    description = line.description
    if line.filters:
        description += "\n" + _filters(line)
    quantity = quantity_text(line.quantity, locale)
    if line.unit:
        quantity += f" {line.unit}"
    steps: Sequence[PriceStep] = line.steps
    unit_price = ""
    if len(steps) == 1:
        # One step: its price is the line's unit price, or (proration) its words explain it.
        [step] = steps
        if step.unit_price is not None and step.units == line.quantity:
            unit_price = price_text(step.unit_price, currency, locale)
            steps = ()
        elif step.unit_price is None and line.kind != "usage":
            description += "\n" + _capitalised(step.description)
            steps = ()
    yield _Row(description, quantity, unit_price, money_text(line.amount.amount, currency, locale))
    for step in steps:
        yield _Row(
            _capitalised(step.description),
            quantity_text(step.units, locale),
            "" if step.unit_price is None else price_text(step.unit_price, currency, locale),
            price_text(step.amount, currency, locale),
            step=True,
        )


def _page(invoice: Invoice, account: Account, issuer: Issuer, locale: Locale) -> _Page:
    currency = invoice.currency

    def money(amount: Decimal) -> str:
        return money_text(amount, currency, locale)

    issued = invoice.issued_at.astimezone(UTC).date()
    due = issued + timedelta(days=issuer.payment_terms_days)
    last_day: date = (invoice.period_end - timedelta(days=1)).date()
    amount_due = invoice.total.amount
    seller = [issuer.name, *issuer.address]
    if issuer.tax_id:
        seller.append(f"Tax ID: {issuer.tax_id}")
    seller.append(issuer.email)
    customer = [account.name, *(account.billing_address or ())]
    if account.tax_id:
        customer.append(f"Tax ID: {account.tax_id}")
    customer.append(account.email)
    totals = [
        ("Subtotal", money(invoice.subtotal.amount), False),
        (f"Tax ({percent_text(invoice.tax_rate, locale)})", money(invoice.tax.amount), False),
        ("Total", money(invoice.total.amount), True),
        ("Amount due", money(amount_due), True),
    ]
    payment = [
        f"Please pay {money(amount_due)} by {date_text(due, locale)}, quoting invoice "
        f"number {invoice.invoice_number}.",
        *issuer.payment_instructions,
        f"Questions about this invoice: {issuer.email}",
    ]
    return _Page(
        seller=tuple(seller),
        identity=(
            ("Invoice number", invoice.invoice_number),
            ("Date of issue", date_text(issued, locale)),
            ("Date due", date_text(due, locale)),
        ),
        customer=tuple(customer),
        service=(
            (
                "Service period",
                f"{date_text(invoice.period_start.date(), locale)} – {date_text(last_day, locale)}",
            ),
            ("Account", account.id),
        ),
        headline=f"{money(amount_due)} due {date_text(due, locale)}",
        rows=tuple(row for line in invoice.lines for row in _rows(line, currency, locale)),
        totals=tuple(totals),
        payment=tuple(payment),
    )


_DEFAULT_ISSUER: Final = Issuer()


def render_invoice_pdf(
    invoice: Invoice, account: Account, issuer: Issuer = _DEFAULT_ISSUER
) -> bytes:
    """The invoice as PDF bytes, identical for identical input."""
    locale = locale_of(_locale_name(account))
    page = _page(invoice, account, issuer, locale)
    texts = list(page.texts())
    budget = _MAX_EMOJI
    while True:
        plan = _FontPlan.for_texts(texts, locale, budget)
        try:
            return _render(invoice, issuer, page, plan)
        except FPDFException:
            # Shaped emoji sequences took the colour font past its 255 glyphs: fewer emoji.
            if fonts.EMOJI not in plan.families:
                raise
            budget //= 2


def _render(invoice: Invoice, issuer: Issuer, page: _Page, plan: _FontPlan) -> bytes:
    pdf = _Document(plan, invoice.invoice_number, invoice.issued_at)
    pdf.set_title(pdf.text_of(f"Invoice {invoice.invoice_number}"))
    pdf.set_author(pdf.text_of(issuer.name))
    pdf.add_page()
    _heading(pdf, page)
    _parties(pdf, page)
    widths = _column_widths(pdf, page)
    _lines(pdf, page, widths)
    _totals(pdf, page, widths[3])
    _payment(pdf, page)
    try:
        return bytes(pdf.output())
    finally:
        for font in pdf.fonts.values():
            if isinstance(font, TTFFont):
                font.ttfont.close()  # fontTools reads lazily and keeps the file open


def _locale_name(account: Account) -> str:
    try:
        return canonical_locale(account.locale)
    except ValueError:  # validated on the way in; an old stored account has none
        return DEFAULT_LOCALE


def _heading(pdf: _Document, page: _Page) -> None:
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
    pdf.block(right, column, "Invoice", 9, "R")
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


def _parties(pdf: _Document, page: _Page) -> None:
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


def _number_size(pdf: _Document, number: str, room: float, size: float) -> float:
    """The size to set `number` in (in the current style) so that it fits `room` on one
    line: `size`, or smaller down to _SMALLEST_NUMBER, rather than broken in its digits."""
    wide = max(pdf.measure(part) for part in pdf.text_of(number).split("\n"))
    return size if wide <= room else max(_SMALLEST_NUMBER, size * room / wide * 0.98)


def _column_widths(pdf: _Document, page: _Page) -> tuple[float, float, float, float]:
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
    pdf: _Document,
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


def _lines(pdf: _Document, page: _Page, widths: tuple[float, float, float, float]) -> None:

    def headings() -> None:
        _table_row(
            pdf, widths, ("Description", "Qty", "Unit price", "Amount"), 8.5, bold=True, fill=True
        )

    pdf.room(20)
    headings()
    pdf.headings = headings
    for row in page.rows:
        cells = (row.description, row.quantity, row.unit_price, row.amount)
        _table_row(pdf, widths, cells, 7.5 if row.step else 9, grey=row.step)
    pdf.headings = None
    pdf.set_y(pdf.get_y() + 3)


def _totals(pdf: _Document, page: _Page, amount: float) -> None:
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


def _payment(pdf: _Document, page: _Page) -> None:
    pdf.style(9)
    lines = [line for text in page.payment for line in pdf.wrap(text, pdf.epw)]
    pdf.room(5 + 4.6 * min(len(lines), 3))
    pdf.style(9, bold=True)
    pdf.block(pdf.l_margin, pdf.epw, "Payment", 5)
    pdf.style(9)
    for text in page.payment:
        for line in pdf.wrap(text, pdf.epw):
            pdf.room(4.6)
            pdf.put(pdf.l_margin, pdf.get_y(), pdf.epw, 4.6, line, "L")
            pdf.set_y(pdf.get_y() + 4.6)
