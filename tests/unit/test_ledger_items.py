"""The ledger's DynamoDB items: exact round trips and the write-unit rule."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from billing.core.usage import Aggregate, MeterUsage
from billing.rating.ledger import AccountLedger, ChunkRef, IdChunk, RejectedRecord, id_digest
from billing.store.capacity import item_size, read_units, write_units
from billing.store.ledger_store import (
    chunk_from_item,
    chunk_item,
    ledger_from_item,
    ledger_item,
)


def test_ledger_round_trips_exactly_with_long_sequence_numbers_and_wide_decimals() -> None:
    chunk = IdChunk("acct-1", {"2026-11": id_digest("c")}, day=20_400)
    ledger = AccountLedger(
        account_id="acct-1",
        version=7,
        token="a" * 32,
        watermarks={"shardId-000000000001": int("9" * 129), "shardId-000000000002": 5},
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
        closed=frozenset({"2026-09", "2026-10"}),
        recent_ids={"2026-11": id_digest("a") + id_digest("b")},
        recent_day=20_401,
        chunk_refs=(
            ChunkRef(b"k" * 12, 600, frozenset({"2026-10", "2026-11"}), 20_399),
            chunk.ref(),
            ChunkRef(b"p" * 12, 3, frozenset({"2026-11"}), 20_401, pending=True),
        ),
        keyed=True,
        rejections=(
            RejectedRecord("shardId-000000000001", "9" * 129, "FUTURE_TIMESTAMP", "ahead"),
        ),
        expires_at=1_800_000_000,
    )
    item = ledger_item(ledger)
    assert item["wm"] == {
        "S": '{"shardId-000000000001":"' + "9" * 129 + '","shardId-000000000002":"5"}'
    }
    assert item["closed"] == {"SS": ["2026-09", "2026-10"]}
    assert len(item["ckr"]["B"]) == 3 * 17  # 12-byte key, 4-byte count, group index
    assert ledger_from_item("acct-1", item) == ledger


def test_empty_ledger_round_trips_without_an_empty_set() -> None:
    ledger = AccountLedger("acct-2", version=1, token="t")
    item = ledger_item(ledger)
    assert "closed" not in item  # DynamoDB refuses empty sets
    assert not {"ckr", "rej", "keyed", "expires_at"} & item.keys()
    assert ledger_from_item("acct-2", item) == ledger


def test_chunk_is_named_by_its_content_and_expires_400_days_after_its_latest_period() -> None:
    chunk = IdChunk("acct-1", {"2026-10": id_digest("x"), "2026-11": id_digest("y")}, day=20_423)
    item = chunk_item(chunk)
    # The name is the first 12 bytes of BLAKE2b over the periods, digests and day.
    content = hashlib.blake2b(digest_size=12)
    content.update(b"2026-10\0" + id_digest("x") + b"\0" + b"2026-11\0" + id_digest("y") + b"\0")
    content.update(b"20423")
    assert item["sk"] == {"S": "IDS#" + content.hexdigest()}
    # Day 20423 is 2025-12-01; the latest period ends 2026-12-01 00:00 UTC, + 400 days =
    # 2028-01-05 00:00 UTC.
    assert item["expires_at"] == {"N": "1830643200"}
    assert chunk_from_item("acct-1", item) == chunk
    assert chunk.count == 2
    # Other content, another name: a stale writer can never overwrite a committed chunk.
    other = IdChunk("acct-1", {"2026-10": id_digest("x"), "2026-11": id_digest("z")}, day=20_423)
    assert chunk_item(other)["sk"] != item["sk"]


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
