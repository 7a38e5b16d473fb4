"""The ledger's DynamoDB items: exact round trips and the write-unit rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.ledger import AccountLedger, IdChunk, id_digest
from billing.store.capacity import item_size, read_units, write_units
from billing.store.ledger_store import (
    chunk_from_item,
    chunk_item,
    ledger_from_item,
    ledger_item,
)
from billing.usage import Aggregate, MeterUsage


def test_ledger_round_trips_exactly_with_long_sequence_numbers_and_wide_decimals() -> None:
    ledger = AccountLedger(
        account_id="acct-1",
        version=7,
        sequence=int("9" * 129),
        usage={
            "2026-11": {
                "storage_gb_hours": MeterUsage(
                    "sum",
                    Aggregate(Decimal("123456789012345678901234.123456789012"), 40),
                    {"region=eu-central-1,eu-west-1": Aggregate(Decimal("0.000000000001"), 1)},
                ),
                "seats": MeterUsage("max", Aggregate(Decimal(12), 3)),
            }
        },
        charges={"2026-11": {"storage_gb_hours|region=eu-central-1,eu-west-1": Decimal("0.00")}},
        closed=frozenset({"2026-09", "2026-10"}),
        recent_ids={"2026-11": id_digest("a") + id_digest("b")},
        chunks=3,
        chunk_ranges={"2026-10": (1, 2), "2026-11": (2, 3)},
    )
    item = ledger_item(ledger)
    assert item["seq"] == {"S": "9" * 129}
    assert item["closed"] == {"SS": ["2026-09", "2026-10"]}
    assert ledger_from_item("acct-1", item) == ledger
    # October is closed: only the chunks holding November's digests are needed.
    assert ledger.needed_chunks() == [2, 3]


def test_empty_ledger_round_trips_without_an_empty_set() -> None:
    ledger = AccountLedger("acct-2", version=1)
    item = ledger_item(ledger)
    assert "closed" not in item  # DynamoDB refuses empty sets
    assert ledger_from_item("acct-2", item) == ledger


def test_chunk_round_trips_and_expires_400_days_after_its_latest_period() -> None:
    chunk = IdChunk("acct-1", 12, {"2026-10": id_digest("x"), "2026-11": id_digest("y")})
    item = chunk_item(chunk)
    assert item["sk"] == {"S": "IDS#0000000012"}
    # December 1st 2026 00:00 UTC + 400 days = 2028-01-05 00:00 UTC
    assert item["expires_at"] == {"N": "1830643200"}
    assert chunk_from_item("acct-1", item) == chunk
    assert chunk.count == 2


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"pk": {"S": "ACCOUNT#a"}}, 2 + 9),
        ({"n": {"N": "123"}}, 1 + 2 + 1),  # 3 digits: 2 bytes, plus 1
        ({"n": {"N": "12345.6789"}}, 1 + 5 + 1),  # 9 significant digits
        ({"b": {"B": b"\x00" * 16}}, 1 + 16),
        ({"m": {"M": {"k": {"S": "vv"}}}}, 1 + 3 + (1 + 2 + 1)),
        ({"s": {"SS": ["ab", "c"]}}, 1 + 3),
        ({"é": {"S": "ü"}}, 2 + 2),  # UTF-8 bytes, not characters
    ],
)
def test_item_size_follows_dynamodbs_rule(item: dict[str, dict[str, object]], size: int) -> None:
    assert item_size(item) == size  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sizes", "units"), [((1,), 1), ((1024,), 1), ((1025,), 2), ((100, 3000), 3), ((0,), 1)]
)
def test_a_write_costs_one_unit_per_started_kilobyte_of_the_larger_item(
    sizes: tuple[int, ...], units: int
) -> None:
    assert write_units(*sizes) == units


def test_reads_cost_one_unit_per_started_4_kb_or_half_when_eventually_consistent() -> None:
    assert read_units(4096) == 1.0
    assert read_units(4097) == 2.0
    assert read_units(4097, consistent=False) == 1.0
