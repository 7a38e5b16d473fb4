"""The usage stream's cost arithmetic (bench/stream_cost.py), in dollars worked out by hand
from bench/prices.json: provisioned $0.015 + $0.020 (extended retention) a shard-hour and
$0.014 per million PUT payload units; on-demand $0.04 a stream-hour, $0.08 per GB in,
$0.04 per GB out (two consumers), $0.10 per GB-month retained beyond 24 hours (6 days of
the stack's 7); DynamoDB $0.625 / $0.125 per million write / read units; Lambda arm64
$0.0000133334 per GB-second and $0.20 per million requests."""

from __future__ import annotations

from decimal import Decimal

from bench import stream_cost
from bench.rater import StoreRun


def test_provisioned_at_a_full_shard() -> None:
    # A million events at 1,000/s take 1,000 s = 5/18 h on 1 shard: 5/18 x $0.035 =
    # $0.0097222..., plus one 25 KiB payload unit per 200-byte record: $0.014.
    cost = stream_cost.provisioned_per_million(1000, 200)
    assert round(cost, 10) == Decimal("0.0237222222")


def test_provisioned_at_ten_events_a_second() -> None:
    # 100,000 s = 27.777... h on 1 shard: x $0.035 = $0.9722222..., + $0.014.
    cost = stream_cost.provisioned_per_million(10, 200)
    assert round(cost, 10) == Decimal("0.9862222222")


def test_shards_follow_records_and_bytes() -> None:
    assert stream_cost.provisioned_shards(10, 200) == 1
    assert stream_cost.provisioned_shards(1000, 200) == 1
    assert stream_cost.provisioned_shards(1001, 200) == 2  # 1,000 records/s a shard
    # 1,000 records of 1,500 bytes: 1,500,000 B/s > 1 MiB/s (1,048,576): 2 shards.
    assert stream_cost.provisioned_shards(1000, 1500) == 2
    assert stream_cost.provisioned_shards(10_000, 200) == 10


def test_on_demand_at_a_thousand_events_a_second() -> None:
    # Each 200-byte record is billed as 1 KiB: 10^6 KiB = 10^6 / 2^20 GiB = 0.95367431640625.
    # stream-hours 5/18 x $0.04                    = 0.0111111111...
    # in           0.95367431640625 x $0.08        = 0.0762939453125
    # out, 2 consumers 2 x 0.95367431640625 x $0.04 = 0.0762939453125
    # retention    0.95367431640625 x 144/730 x $0.10 = 0.0188122056934...
    # total                                           = 0.1825112074296...
    cost = stream_cost.on_demand_per_million(1000, 200)
    assert round(cost, 10) == Decimal("0.1825112074")


def test_on_demand_rounds_each_record_up_to_a_kib() -> None:
    # 1,024 bytes bill as 1 KiB, as 200 do; 1,500 bytes as 2 KiB: twice the data charges
    # (0.0762939453125 + 0.0762939453125 + 0.0188122056934 = 0.1714000963184 a KiB):
    # 0.0111111111 + 2 x 0.1714000963184 = 0.3539113037.
    assert stream_cost.on_demand_per_million(1000, 1024) == stream_cost.on_demand_per_million(
        1000, 200
    )
    assert round(stream_cost.on_demand_per_million(1000, 1500), 10) == Decimal("0.3539113037")


def test_on_demand_at_ten_events_a_second() -> None:
    # 27.777... h x $0.04 = $1.1111111111, + the same data charges as above $0.1714000963.
    cost = stream_cost.on_demand_per_million(10, 200)
    assert round(cost, 10) == Decimal("1.2825112074")


def test_break_even_shards() -> None:
    # At 1,000/s on-demand costs $0.18251; S shards cost S x $0.0097222 + $0.014, which
    # reaches it at S = (0.18251 - 0.014) / 0.0097222 = 17.3, so at 18 shards.
    assert stream_cost.break_even_shards(1000, 200) == 18
    # At 10/s: $1.28251 against S x $0.97222 + $0.014: 1 shard is cheaper, 2 are not.
    assert stream_cost.break_even_shards(10, 200) == 2


def test_rating_per_million() -> None:
    run = StoreRun(
        write_units=300,
        read_units=10,
        ledger_writes=200,
        processing_seconds=0.5,
        batches=1,
        events=1000,
    )
    # DynamoDB: (300 x $0.625 + 10 x $0.125) / 1,000 events x 10^6 / 10^6 = $0.18875.
    # Lambda: (0.5 s + 5 ms x (1 batch + 200 writes)) x 1,000 = 1,505 s x 0.5 GB
    #   x $0.0000133334 = $0.0100333835; requests 1,000 x $0.20 / 10^6 = $0.0002.
    # Total $0.1989833835.
    assert stream_cost.rating_per_million(run) == Decimal("0.1989833835")


def test_curve_row_compares_the_modes_at_one_rate() -> None:
    rating = stream_cost.Rating(1000, 0.25, 0.01, Decimal("0.18"))
    row = stream_cost.curve_row(1000, 200, rating)
    # 0.0237222 + 0.18 = 0.2037222 and 0.1825112 + 0.18 = 0.3625112; ratio 1.78.
    assert row["total_provisioned_usd_per_million"] == 0.2037
    assert row["total_on_demand_usd_per_million"] == 0.3625
    assert row["on_demand_to_provisioned"] == 1.78
    # 1,000/s for 730 h = 2,628 million events a month x (0.1825112 - 0.0237222) = $417.
    assert row["on_demand_extra_usd_per_month"] == 417
    assert row["provisioned_shards"] == 1
    # 18 shards reach the on-demand cost (above): a peak over 17,000/s needs them.
    assert row["on_demand_cheaper_above_peak_per_second"] == 17_000
