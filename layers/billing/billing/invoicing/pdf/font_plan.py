"""Which fonts an invoice PDF uses: Helvetica when every text is in Windows-1252, else the
bundled Noto families its text needs, with shaping when a script needs it; and which emoji
runs are written as code points, past the emoji budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from babel import Locale

from billing import fonts
from billing.invoicing.pdf.text import clean, emoji_runs, glyphs_of

CORE: Final = "Helvetica"
CORE_ENCODING: Final = "windows-1252"
# Helvetica has no narrow no-break space (French grouping); a no-break space looks alike.
CORE_SUBSTITUTES: Final = str.maketrans({"\u202f": "\u00a0"})
_COMPLEX: Final = (fonts.ARABIC, fonts.HEBREW, fonts.DEVANAGARI)
# A Type 3 colour font holds at most 255 glyphs (fpdf2 refuses more). The first this many
# distinct emoji code points of an invoice are drawn; the rest are written as their code
# points ("[U+1F600]"). Shaping can add a glyph per sequence (a flag, a family): a document
# that still overflows is drawn again with half the budget (document.render_invoice_pdf).
MAX_EMOJI: Final = 250


@dataclass(frozen=True)
class FontPlan:
    """Which fonts a document uses: the standard ones, or Noto with the families needed;
    and the emoji runs written as code points, past the emoji budget."""

    core: bool
    families: tuple[fonts.Family, ...] = ()
    shaping: bool = False
    cjk_face: int = 0
    spelled: frozenset[str] = frozenset()

    @classmethod
    def for_texts(
        cls, texts: Sequence[str], locale: Locale, emoji_budget: int = MAX_EMOJI
    ) -> FontPlan:
        characters = set("".join(texts))
        try:
            "".join(characters).translate(CORE_SUBSTITUTES).encode(CORE_ENCODING)
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
                for run in emoji_runs(clean(text)):
                    glyphs = glyphs_of(run, shaping)
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
