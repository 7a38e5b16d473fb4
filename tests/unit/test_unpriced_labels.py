"""The unpriced values of a filtered meter are counted each by its first 64 characters,
fewer for non-ASCII text: a value is kept to 64 bytes as the ledger stores it (JSON in
ASCII, a non-ASCII character escaped to 6 or 12), so a producer's value costs a bounded
number of bytes; two values that agree on what is kept count as one (docs/contract-notes.md,
"Unpriced usage")."""

from __future__ import annotations

import json

import pytest

from billing.core.unpriced import VALUE_CHARS, value_label

pytestmark = pytest.mark.unit


def test_a_non_ascii_value_is_kept_to_64_bytes_as_stored() -> None:
    tokyo_east = "東京都千代田区丸の内一丁目データセンター東"  # 21 characters
    tokyo_west = "東京都千代田区丸の内一丁目データセンター西"
    assert len(tokyo_east) < VALUE_CHARS
    # 10 characters of 6 escaped bytes each: 60 bytes, quotes aside
    assert value_label(tokyo_east) == tokyo_east[:10]
    assert len(json.dumps(value_label(tokyo_east))) - 2 <= VALUE_CHARS
    # so these two, alike in their first 10 characters, are counted as one (as documented)
    assert value_label(tokyo_east) == value_label(tokyo_west)


def test_a_latin_value_is_kept_to_64_characters() -> None:
    value = "r" * 70
    assert value_label(value) == "r" * 64
