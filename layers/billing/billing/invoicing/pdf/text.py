"""Text as the invoice PDF draws it: cleaned of what no font shows, and its emoji runs,
with the glyphs of the colour font each may take (the emoji budget counts them) and the
code points a run past the budget is written as."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Final

from billing import fonts


def clean(text: str) -> str:
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


def emoji_spans(text: str) -> Iterator[tuple[int, int]]:
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


def emoji_runs(text: str) -> Iterator[str]:
    for start, end in emoji_spans(text):
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


def glyphs_of(run: str, shaping: bool) -> set[str]:
    """What a run can take of the colour font's glyphs, at most: one per code point, and,
    shaped, one more per sequence of several (a flag, a family, a skin tone)."""
    glyphs = set(run)
    if shaping:
        glyphs.update(sequence for sequence in _sequences(run) if len(sequence) > 1)
    return glyphs


def spelled_out(run: str) -> str:
    return "".join(f"[U+{ord(character):04X}]" for character in run)
