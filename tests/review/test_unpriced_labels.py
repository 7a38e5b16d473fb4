"""Review: docs/contract-notes.md ("Unpriced usage") promises the unpriced values of a
filtered meter are counted "each by its first 64 characters". Non-Latin values are cut
far shorter (the ledger's JSON escapes them), so two different values of 11 Japanese or 6
emoji characters are counted as one."""

from __future__ import annotations

import pytest

from billing.core.unpriced import VALUE_CHARS, value_label

pytestmark = pytest.mark.unit


def test_values_differing_within_64_characters_are_kept_apart() -> None:
    tokyo_east = "東京都千代田区丸の内一丁目データセンター東"  # 21 characters
    tokyo_west = "東京都千代田区丸の内一丁目データセンター西"
    assert len(tokyo_east) < VALUE_CHARS
    assert value_label(tokyo_east) != value_label(tokyo_west)


def test_a_latin_value_is_kept_to_64_characters() -> None:
    value = "r" * 70
    assert value_label(value) == "r" * 64
