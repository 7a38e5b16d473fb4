"""The fonts invoices are set in, shipped inside this package with their SHA-256.

Noto (SIL Open Font License 1.1, see OFL.txt), whole and unmodified, as Debian 12 packages
them (fonts-noto-core 20201225-1, fonts-noto-cjk 20220127, fonts-noto-color-emoji 2.042):
SOURCES.md says which file came from which package. `SHA256SUMS` pins every file; a file
that does not match is never used (`FontChecksumError`), and the layer build checks them too.

`coverage.json` lists the code points each font draws, measured from the fonts themselves
(`measure_coverage`, checked by a test). Validation reads it to refuse, up front, text that
no font here can show, and the renderer reads it to load only the fonts a document needs:
loading and subsetting a font costs far more than drawing with it.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

FONT_DIR: Final = Path(__file__).resolve().parent
CHECKSUMS: Final = FONT_DIR / "SHA256SUMS"
COVERAGE: Final = FONT_DIR / "coverage.json"


class FontChecksumError(RuntimeError):
    """A shipped font file is missing or is not the file that was vendored."""


@dataclass(frozen=True, slots=True)
class Family:
    """One family of the set: its regular file and, when it has one, its bold file."""

    name: str
    regular: str
    bold: str | None = None


# In the order a character is looked up: the first family that draws it draws it.
LATIN: Final = Family("Noto", "NotoSans-Regular.ttf", "NotoSans-Bold.ttf")
ARABIC: Final = Family("NotoArabic", "NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf")
HEBREW: Final = Family("NotoHebrew", "NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Bold.ttf")
DEVANAGARI: Final = Family(
    "NotoDevanagari", "NotoSansDevanagari-Regular.ttf", "NotoSansDevanagari-Bold.ttf"
)
# One regular weight for CJK: a bold one would add 20 MB; bold CJK text is set in regular.
CJK: Final = Family("NotoCJK", "NotoSansCJK-Regular.ttc")
EMOJI: Final = Family("NotoEmoji", "NotoColorEmoji.ttf")
FAMILIES: Final = (LATIN, ARABIC, HEBREW, DEVANAGARI, CJK, EMOJI)

# The faces of NotoSansCJK-Regular.ttc: Han characters are drawn as the reader's language
# draws them (Japanese by default).
CJK_FACES: Final = {"ja": 0, "ko": 1, "zh_Hans": 2, "zh_Hant": 3, "zh_HK": 4}


def cjk_face(language: str, script: str | None = None, territory: str | None = None) -> int:
    """The CJK collection's face for a locale's parts (a Babel Locale's)."""
    if language == "zh":
        if territory in {"HK", "MO"}:
            return CJK_FACES["zh_HK"]
        if script == "Hant" or territory == "TW":
            return CJK_FACES["zh_Hant"]
        return CJK_FACES["zh_Hans"]
    return CJK_FACES.get(language, CJK_FACES["ja"])


def _files() -> list[str]:
    return [f for family in FAMILIES for f in (family.regular, family.bold) if f]


@functools.cache
def _expected() -> dict[str, str]:
    sums = {}
    for line in CHECKSUMS.read_text(encoding="ascii").splitlines():
        digest, _, name = line.partition("  ")
        sums[name.strip()] = digest.strip()
    return sums


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path = FONT_DIR) -> None:
    """Every font of the set is in `directory` and matches SHA256SUMS (FontChecksumError)."""
    for name in _files():
        _check(directory / name)


def _check(path: Path) -> None:
    expected = _expected().get(path.name)
    if expected is None:
        raise FontChecksumError(f"{path.name} is not listed in {CHECKSUMS.name}")
    if not path.is_file():
        raise FontChecksumError(f"{path} is missing")
    found = sha256(path)
    if found != expected:
        raise FontChecksumError(f"{path} has SHA-256 {found}, expected {expected}")


@functools.cache
def font_path(name: str) -> str:
    """The checked path of one font file (checked once per process)."""
    path = FONT_DIR / name
    _check(path)
    return str(path)


class Coverage:
    """The code points one font draws, as sorted inclusive ranges."""

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        pairs = sorted(ranges)
        self._starts = [start for start, _ in pairs]
        self._ends = [end for _, end in pairs]

    def __contains__(self, code: int) -> bool:
        index = bisect.bisect_right(self._starts, code) - 1
        return index >= 0 and code <= self._ends[index]


def ranges_of(codes: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for code in sorted(set(codes)):
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


@functools.cache
def coverage() -> dict[str, Coverage]:
    """Each family's coverage by family name, from coverage.json."""
    measured = json.loads(COVERAGE.read_text(encoding="ascii"))
    return {name: Coverage(tuple(pair) for pair in ranges) for name, ranges in measured.items()}


def measure_coverage(directory: Path = FONT_DIR) -> dict[str, list[tuple[int, int]]]:
    """What coverage.json holds, measured from the font files: for each family the code
    points its regular (and bold, when there is one) file both map to a glyph."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped]  # noqa: PLC0415

    measured = {}
    for family in FAMILIES:
        codes: set[int] | None = None
        for name in (family.regular, family.bold):
            if name:
                with TTFont(directory / name, lazy=True, fontNumber=0) as font:
                    found = set(font.getBestCmap())
                codes = found if codes is None else codes & found
        measured[family.name] = ranges_of(codes or ())
    return measured


def family_for(code: int) -> Family | None:
    """The family that draws `code`, or None when none does."""
    covered = coverage()
    for family in FAMILIES:
        if code in covered[family.name]:
            return family
    return None


# Variation selectors (text or emoji presentation, as in "❤️") that no font here maps: the
# renderer leaves them out, which draws the character as its font has it.
DROPPED: Final = frozenset("\ufe0e\ufe0f")


def drawable(text: str) -> str:
    """`text` without the characters the renderer leaves out."""
    return "".join(c for c in text if c not in DROPPED) if DROPPED & set(text) else text


def missing(text: str) -> list[str]:
    """The characters of `text` that no font of the set draws, in order, once each."""
    if text.isascii() and text.isprintable():
        return []  # Noto Sans draws all of printable ASCII (checked by a test)
    covered = coverage()
    found: list[str] = []
    for character in text:
        code = ord(character)
        if character in DROPPED or character in found:
            continue
        if not any(code in c for c in covered.values()):
            found.append(character)
    return found
