"""The invoice's fpdf2 document: A4, text wrapped, measured and placed line by line, page
breaks that repeat the line table's headings; and the fix fpdf2 2.8 needs to draw a colour
emoji glyph twice."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from fpdf import FPDF
from fpdf.font_type_3 import CBDTColorFont, Type3FontGlyph
from fpdf.fonts import CORE_FONTS_CHARWIDTHS, CoreFont, TTFFont

from billing import fonts
from billing.invoicing.pdf.font_plan import CORE, CORE_ENCODING, CORE_SUBSTITUTES, FontPlan
from billing.invoicing.pdf.text import clean, emoji_spans, spelled_out

_GREY: Final = (105, 105, 105)
_BLACK: Final = (0, 0, 0)
_BOTTOM: Final = 20  # mm kept free at the foot of each page, for the page number


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


class Document(FPDF):
    """A4, drawn line by line: text is wrapped and placed here rather than by fpdf2's
    multi_cell and table, which lay out every piece in full and made a typical invoice
    ten times slower. Page breaks are ours too (`room`), so the line table can repeat its
    headings and the totals can stay together."""

    def __init__(
        self, plan: FontPlan, number: str, created: datetime, kind: str = "Invoice"
    ) -> None:
        super().__init__(format="A4", unit="mm")
        self.number = number
        self.kind = kind  # what the document calls itself: "Invoice", "Credit note", ...
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
            self.core_fonts_encoding = CORE_ENCODING
            self.family = CORE
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
        text = "\n".join(clean(part) for part in text.split("\n"))
        if self.core:
            return text.translate(CORE_SUBSTITUTES)
        if not self.spelled:
            return text
        # Run by run, each whole: a run spelled out is never a piece of a longer one.
        pieces, done = [], 0
        for start, end in emoji_spans(text):
            run = text[start:end]
            pieces.append(text[done:start] + (spelled_out(run) if run in self.spelled else run))
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
            self.block(self.l_margin, self.epw, f"{self.kind} {self.number} (continued)", 4, "R")
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
    widths = core_widths(fontkey)
    return sum(widths.get(c, 0) for c in text)


@functools.cache
def core_widths(fontkey: str) -> dict[str, int]:
    """A standard font's widths by character (fpdf2 keys them by Windows-1252 byte)."""
    return {
        byte.decode(CORE_ENCODING, "ignore") or chr(byte[0]): width
        for byte, width in (
            (code.encode("latin-1"), width)
            for code, width in CORE_FONTS_CHARWIDTHS[fontkey].items()
        )
    }


def _joins(character: str) -> bool:
    """Whether a line must not start with this character (it belongs to the one before)."""
    return unicodedata.category(character) in {"Mn", "Mc", "Me"} or character in fonts.DROPPED
