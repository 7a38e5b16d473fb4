"""What the fuzz tests share: their Hypothesis profiles and the strategies that make odd
inputs (docs/fuzzing.md).

Two profiles, chosen by the environment variable BILLING_FUZZ_PROFILE:

- `fuzz-ci` (the default, run by `make test`): derandomized, no example database, a hundred
  examples per pure target, so every run sends the same inputs and the suite stays
  fast; the corpus of inputs the long runs found is replayed from each test's `@example`s.
- `fuzz-long` (`make fuzz`): random, tens of thousands of examples per pure target, the
  failures it finds saved in .hypothesis/ to be replayed until they are kept as examples.

A target's count is the profile's, times its `scale` (a target that calls the handlers over
moto costs milliseconds an example, a pure one microseconds).
"""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal
from typing import Any, Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE_ENV: Final = "BILLING_FUZZ_PROFILE"
EXAMPLES_ENV: Final = "BILLING_FUZZ_EXAMPLES"
CI: Final = "fuzz-ci"
LONG: Final = "fuzz-long"

_QUIET: Final = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,
    HealthCheck.large_base_example,
]
settings.register_profile(
    CI,
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile(
    LONG,
    max_examples=20_000,
    derandomize=False,
    deadline=None,
    suppress_health_check=_QUIET,
    print_blob=True,
)


def fuzz_settings(scale: float = 1.0) -> settings:
    """The selected profile with `scale` times its examples (at least 10); the profile's
    count is BILLING_FUZZ_EXAMPLES's instead when that is set (a long run on a busy
    machine)."""
    profile = settings.get_profile(os.environ.get(PROFILE_ENV, CI))
    examples = int(os.environ.get(EXAMPLES_ENV) or profile.max_examples)
    return settings(profile, max_examples=max(10, int(examples * scale)))


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`common` nine times in ten, `rare` otherwise (one_of would weigh each of `rare`'s
    own branches as much as `common`)."""
    return st.integers(0, 9).flatmap(lambda n: rare if n == 0 else common)


# --- odd values ----------------------------------------------------------------------------

# Text a person or a tool might send: every Unicode category but lone surrogates (which
# no UTF-8 input can carry; the byte-level targets send their escapes), with the
# characters that most often break a parser or a printer made likely.
_AWKWARD: Final = [
    "",
    " ",
    "\x00",
    "\ufeff",
    "\u200b",
    "\u202e",
    "\u2028",
    "\r\n",
    "é",
    "e\u0301",
    "𝟙",
    "١٢",
    "😀",
    "𝔞",
    "ǅ",
    "ﬀ",
    "İ",
    "\U0010ffff",
    "%00",
    "../",
    "${x}",
    "'\"<>&",
]
odd_text = st.one_of(
    st.sampled_from(_AWKWARD),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.lists(st.sampled_from(_AWKWARD), max_size=5).map("".join),
    st.text(max_size=8).map(lambda text: text * 200),  # long: past every length limit
)

huge_numbers = st.sampled_from(
    [
        10**15,
        10**15 + 1,
        2**53 + 1,
        2**63,
        -(2**63) - 1,
        10**100,
        -(10**30),
        Decimal("1e15"),
        Decimal("1E+999999"),
        Decimal("-0"),
        Decimal("0E-30"),
        Decimal("1e-13"),
        Decimal("0.0000000000001"),
        Decimal("123456789012345.123456789012"),
    ]
)
odd_floats = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.1, 1e308, 5e-324]),
    st.floats(),
)
odd_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_numbers,
    odd_floats,
    odd_text,
    st.sampled_from(
        [
            "0",
            "-0",
            "1e3",
            "NaN",
            "Infinity",
            "-1",
            "0.1",
            "1" * 40,
            "2026-11-05",
            "2026-02-30",
            "0000-01-01",
            "9999-12-31T23:59:59Z",
            "2026-11-05T14:30:00Z",
            "null",
            "true",
        ]
    ),
)


def deep(depth: int, leaf: Any = 0) -> Any:
    """`leaf` inside `depth` lists and objects, alternately."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


odd_values: st.SearchStrategy[Any] = st.one_of(
    odd_scalars,
    st.integers(50, 400).map(deep),
    st.recursive(
        odd_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(odd_text, children, max_size=4)
        ),
        max_leaves=8,
    ),
)


# --- documents mutated field by field ------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, document: Any, max_changes: int = 3) -> Any:
    """`document` (JSON-like) with 1 to `max_changes` changes, each at a path drawn through
    it: a value replaced by an odd one, a key removed or added, a list item dropped or
    repeated, a container emptied."""
    result = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, max_changes))):
        result = _changed(draw, result)
    return result


def _changed(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one change at a path drawn through it: mostly deep in it, where a field
    is, sometimes a whole container replaced."""
    descend = ["descend"] * 6
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        action = draw(st.sampled_from([*descend, "remove", "add", "rename", "replace"]))
        if action == "descend":
            return {**value, key: _changed(draw, value[key])}
        if action == "remove":
            return {k: v for k, v in value.items() if k != key}
        if action == "add":
            return {**value, draw(odd_text): draw(odd_values)}
        if action == "rename":
            return {(draw(odd_text) if k == key else k): v for k, v in value.items()}
    elif isinstance(value, list) and value:
        index = draw(st.integers(0, len(value) - 1))
        action = draw(st.sampled_from([*descend, "drop", "repeat", "replace"]))
        if action == "descend":
            return [*value[:index], _changed(draw, value[index]), *value[index + 1 :]]
        if action == "drop":
            return value[:index] + value[index + 1 :]
        if action == "repeat":
            return [*value[: index + 1], value[index], *value[index + 1 :]]
    return draw(odd_values)


# --- JSON as sent: the same document spelt in ways parsers differ on ----------------------


def dumps(value: Any, *, ascii_only: bool = False) -> str:
    """JSON text of `value`, written here rather than by json.dumps so that what JSON has no
    word for is sent as it is: NaN, Infinity, a Decimal's own digits (1E+999999, -0, 0E-30).
    Text goes through json.dumps (its escapes, or raw UTF-8 when not `ascii_only`)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value).replace("inf", "Infinity")
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, dict):
        members = (
            f"{dumps(str(k), ascii_only=ascii_only)}: {dumps(v, ascii_only=ascii_only)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(members) + "}"
    return "[" + ", ".join(dumps(v, ascii_only=ascii_only) for v in value) + "]"


@st.composite
def spelt(draw: st.DrawFn, document: Any) -> bytes:
    """`document`'s JSON as a sender might spell it: ASCII escapes or raw UTF-8, indented or
    not, with a byte-order mark, a key given twice, trailing text, or cut short."""
    text = dumps(document, ascii_only=draw(st.booleans()))
    if isinstance(document, dict) and document and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(document)))
        twice = f"{json.dumps(key)}: {dumps(draw(odd_values))}, "
        text = (
            "{" + twice + text[1:] if draw(st.booleans()) else text[:-1] + ", " + twice[:-2] + "}"
        )
    data = text.encode("utf-8", "surrogatepass")
    edit = draw(st.sampled_from(["none", "none", "bom", "trailing", "cut", "utf16", "nul"]))
    if edit == "bom":
        data = b"\xef\xbb\xbf" + data
    elif edit == "trailing":
        data += draw(st.sampled_from([b"\n", b" x", b"}", b"\x00", b"\r\n\r\n", b"{}"]))
    elif edit == "cut" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif edit == "utf16":
        data = text.encode("utf-16", "surrogatepass")
    elif edit == "nul":
        data = data.replace(b'"', b'"\x00', 1)
    return data
