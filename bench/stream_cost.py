"""The pipeline's cost per million events as deployed, in both stream modes, over
sustained throughputs. `python bench/stream_cost.py --json`.

bench/rater.py's `cost_per_million_events_usd` prices the usage stream as one provisioned
shard at its full 1,000 records/s. The stack deploys an on-demand stream unless
`stream_shards` is set (stacks/ingest.py, stacks/settings.py), which bills differently:

- on-demand: a stream-hour, plus per GB ingested with each record rounded up to 1 KiB,
  plus per GB retrieved by each of the stream's two consumers (rate_usage's event source
  mapping and the raw archive's Firehose; shared throughput, no enhanced fan-out), plus
  extended retention per GB-month for the 6 days the stack keeps records beyond the first
  24 hours (STREAM_RETENTION: 7 days).
- provisioned: shard-hours for as many shards as the rate needs (1,000 records/s or
  1 MiB/s each), the extended-retention shard-hour for each, and a PUT payload unit (25
  KiB) per record; reads are free.

The rest (DynamoDB and Lambda) is measured as bench/rater.py measures it, on the skewed
workload (1,000 accounts, Zipf 1.2) through the real rating service, with the batch a
1-second batching window gathers at that rate: at 10 events/s a batch holds 10 events, so
each account's ledger is written for fewer events. That part is the same in both modes:
an account's events go to one shard whatever the shard count, so the events per account
per batch depend on the rate and the window only (more shards mean more, smaller
invocations: at most a few cents per million events of Lambda requests).

Prices: bench/prices.json (us-east-1). Money is Decimal; the curve's dollars are rounded
to 4 places for printing only.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rater
import workloads
from billing.settings import RATING_BATCHING_WINDOW_SECONDS

PRICES: dict[str, Any] = rater.PRICES
RATES = (10, 30, 100, 300, 1000, 3000, 10_000)  # events a second, sustained
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 2**20
PUT_PAYLOAD_UNIT_BYTES = 25 * 2**10
ON_DEMAND_BILLED_BYTES = 2**10  # each record is billed as a whole number of KiB
GIB = 2**30
CONSUMERS = 2  # rate_usage's event source mapping and the archive's Firehose
RETENTION_HOURS = 7 * 24  # stacks/settings.py STREAM_RETENTION
INCLUDED_RETENTION_HOURS = 24
HOURS_PER_MONTH = 730  # AWS's month for GB-month and monthly estimates
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
MILLION = Decimal(1_000_000)


def price(key: str) -> Decimal:
    return Decimal(PRICES[key])


def hours_per_million(rate: Decimal) -> Decimal:
    """How long a million events keep the stream busy at `rate` events a second."""
    return MILLION / rate / 3600


def provisioned_shards(rate: int, record_bytes: int) -> int:
    """Shards for `rate` records a second of `record_bytes` each (1,000 records or 1 MiB a
    second each)."""
    by_records = math.ceil(rate / SHARD_RECORDS_PER_SECOND)
    by_bytes = math.ceil(rate * record_bytes / SHARD_BYTES_PER_SECOND)
    return max(1, by_records, by_bytes)


def provisioned_per_million(rate: int, record_bytes: int, shards: int | None = None) -> Decimal:
    """Kinesis dollars per million events on `shards` provisioned shards (by default as
    many as the rate needs), the stack's 7-day retention included."""
    shards = shards or provisioned_shards(rate, record_bytes)
    shard_hour = price("kinesis_provisioned_usd_per_shard_hour") + price(
        "kinesis_provisioned_usd_per_shard_hour_extended_retention"
    )
    payload_units = math.ceil(record_bytes / PUT_PAYLOAD_UNIT_BYTES)
    return shards * hours_per_million(Decimal(rate)) * shard_hour + payload_units * price(
        "kinesis_usd_per_million_put_payload_units"
    )


def on_demand_per_million(rate: int, record_bytes: int) -> Decimal:
    """Kinesis dollars per million events on an on-demand stream, the stack's 7-day
    retention and both consumers' reads included."""
    billed_gib = MILLION * math.ceil(record_bytes / ON_DEMAND_BILLED_BYTES) * 2**10 / GIB
    retained_months = Decimal(RETENTION_HOURS - INCLUDED_RETENTION_HOURS) / HOURS_PER_MONTH
    return (
        hours_per_million(Decimal(rate)) * price("kinesis_on_demand_usd_per_stream_hour")
        + billed_gib * price("kinesis_on_demand_usd_per_gb_ingested")
        + billed_gib * CONSUMERS * price("kinesis_on_demand_usd_per_gb_retrieved")
        + billed_gib * retained_months * price("kinesis_on_demand_usd_per_gb_month_retention")
    )


def break_even_shards(rate: int, record_bytes: int) -> int:
    """The fewest provisioned shards whose cost at `rate` reaches the on-demand stream's:
    provisioning for a peak that needs this many shards costs more than on-demand."""
    shards = provisioned_shards(rate, record_bytes)
    while provisioned_per_million(rate, record_bytes, shards) < on_demand_per_million(
        rate, record_bytes
    ):
        shards += 1
    return shards


@dataclass(frozen=True)
class Rating:
    """DynamoDB and Lambda per million events, measured at one batch size."""

    batch_events: int
    write_units_per_event: float
    read_units_per_event: float
    usd_per_million: Decimal


def rating_per_million(run: rater.StoreRun) -> Decimal:
    """DynamoDB on-demand writes and reads and Lambda (arm64) per million events, for a run
    through the rating service; the same model as bench/rater.py's cost_per_million."""
    scale = MILLION / run.events
    dynamodb = (
        Decimal(str(run.write_units))
        * price("dynamodb_on_demand_usd_per_million_write_request_units")
        + Decimal(str(run.read_units))
        * price("dynamodb_on_demand_usd_per_million_read_request_units")
    ) / run.events
    calls = run.batches + run.ledger_writes
    seconds = (
        Decimal(str(run.processing_seconds)) + Decimal(str(rater.DYNAMODB_CALL_SECONDS)) * calls
    ) * scale
    compute = (
        seconds * Decimal(str(rater.LAMBDA_MEMORY_GB)) * price("lambda_arm64_usd_per_gb_second")
        + run.batches * scale * price("lambda_usd_per_million_requests") / MILLION
    )
    return dynamodb + compute


def measure_rating(rate: int, records: list[Any], accounts: Any, catalog: Any) -> Rating:
    """The rating part at `rate`: batches of what the batching window gathers."""
    batch = max(1, round(rate * RATING_BATCHING_WINDOW_SECONDS))
    run = rater.run_store(rater.Workload(f"rate{rate}", batch, records, accounts), catalog)
    return Rating(
        batch,
        round(run.write_units / run.events, 4),
        round(run.read_units / run.events, 4),
        rating_per_million(run),
    )


def curve_row(rate: int, record_bytes: int, rating: Rating) -> dict[str, Any]:
    provisioned = provisioned_per_million(rate, record_bytes)
    on_demand = on_demand_per_million(rate, record_bytes)
    events_per_month = Decimal(rate * SECONDS_PER_MONTH) / MILLION
    total_provisioned = provisioned + rating.usd_per_million
    total_on_demand = on_demand + rating.usd_per_million
    return {
        "events_per_second": rate,
        "batch_events": rating.batch_events,
        "write_units_per_event": rating.write_units_per_event,
        "rating_usd_per_million": _usd(rating.usd_per_million),
        "provisioned_shards": provisioned_shards(rate, record_bytes),
        "kinesis_provisioned_usd_per_million": _usd(provisioned),
        "kinesis_on_demand_usd_per_million": _usd(on_demand),
        "total_provisioned_usd_per_million": _usd(total_provisioned),
        "total_on_demand_usd_per_million": _usd(total_on_demand),
        "on_demand_to_provisioned": float(round(total_on_demand / total_provisioned, 2)),
        "on_demand_extra_usd_per_month": float(round((on_demand - provisioned) * events_per_month)),
        "break_even_shards": break_even_shards(rate, record_bytes),
        # Provisioning for a peak above this costs more than the on-demand stream.
        "on_demand_cheaper_above_peak_per_second": (break_even_shards(rate, record_bytes) - 1)
        * SHARD_RECORDS_PER_SECOND,
    }


def _usd(amount: Decimal) -> float:
    return float(round(amount, 4))


def mean_record_bytes(records: list[Any]) -> int:
    return round(sum(len(record.data) for record in records) / len(records))


def curve(events: int) -> dict[str, Any]:
    catalog = workloads.catalog()
    accounts = workloads.accounts(1000, catalog)
    records = rater.shard(workloads.skewed(random.Random(20261122), events))
    record_bytes = mean_record_bytes(records)
    rows = [
        curve_row(rate, record_bytes, measure_rating(rate, records, accounts, catalog))
        for rate in RATES
    ]
    return {"record_bytes": record_bytes, "events_measured": events, "curve": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--events", type=int, default=20_000, help="events rated per rate")
    args = parser.parse_args(argv)
    result = {"prices_as_of": PRICES["as_of"], **curve(args.events)}
    at_full_shard = next(row for row in result["curve"] if row["events_per_second"] == 1000)
    result["cost_per_million_events_usd"] = {
        "on_demand": at_full_shard["total_on_demand_usd_per_million"],
        "provisioned": at_full_shard["total_provisioned_usd_per_million"],
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return result


if __name__ == "__main__":
    main()
