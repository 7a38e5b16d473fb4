"""The rater's benchmarks (issue: real-time rating). `python bench/rater.py --json`.

- events_per_second_per_core: decode + validate + dedupe + price + pre-aggregate for
  batches of 1,000 skewed events, ledgers in memory, store calls excluded. Median of runs.
  events_per_cpu_second_per_core: the same over the process's CPU time (steadier).
- write_units_per_event: DynamoDB write units per rated event, dedupe state included,
  counted by the store from item sizes (DynamoDB's documented rule), for one shard's
  batches of each workload, run through the real rating service on an in-memory table.
- naive_write_units_per_event: the same workloads priced for the naive design, a
  conditional update of the aggregate plus a dedupe item for every event.
- cost_per_million_events_usd: Kinesis (a provisioned shard at 1,000 records/s) + Lambda
  (arm64) + DynamoDB on-demand reads and writes, from bench/prices.json.
- write_units_per_event["unique_b1000"]: the same for one unique_count meter (1,000
  accounts, Zipf 1.2, each account's users among 10,000 values a month): a value first
  seen claims a digest beside the event id's (docs/table-design.md, "Distinct values").
- --units [--month]: only write_units_per_event, optionally with each workload's events
  spread over the month (the ledger's days of usage filled, docs/customer-api.md).
- large_account: one account with 1M, 10M and 100M events already rated in the dedupe
  window (simulated: the table answers for their claim items without holding them), rated
  at a shard's full rate (batches of 1,000, 1% producer resends of earlier ids): the time
  and the memory a batch takes, and units per event, which must not grow with the count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from billing.core.catalog import Account, Accounts, Catalog
from billing.core.events import UsageEvent, decode_record
from billing.rating.ledger import AccountLedger, IdChunk, epoch_day, id_digest, new_token
from billing.rating.rater import CHUNKED_DIGESTS_MAX, StreamRecord, decode_batch, rate_batch
from billing.rating.service import RatingService
from billing.store.capacity import item_size, write_units
from billing.store.ledger_store import LedgerStore, chunk_item, ledger_item
from billing.store.memory_dynamodb import MemoryDynamoDB

PRICES = json.loads((Path(__file__).resolve().parent / "prices.json").read_text())
GOALS = {
    "events_per_second_per_core": 100_000,
    "write_units_per_event": {
        "skewed_b1000": 0.5,
        "skewed_b10000": 0.2,
        "single_account_b1000": 0.02,
        "uniform_b1000": 2.0,
    },
    "cost_per_million_events_usd": {"skewed_b1000": 0.40, "skewed_b10000": 0.18},
}
# Lambda's time beyond the measured processing: one BatchGetItem and one PutItem per
# ledger written, at a typical few milliseconds each, and the memory the stack configures.
DYNAMODB_CALL_SECONDS = 0.005
LAMBDA_MEMORY_GB = 0.5


_PRICED = ("dynamodb_", "kinesis_", "lambda_")


class StaticConfig:
    """The catalog and accounts as a handler would see them after its cache is warm."""

    def __init__(self, catalog: Catalog, accounts: Accounts) -> None:
        self._catalog, self._accounts = catalog, accounts.by_id

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return {a: self._accounts[a] for a in account_ids if a in self._accounts}


class Discard:
    def keep(self, *_: Any) -> bool:
        raise AssertionError("the benchmark workloads have no bad records")

    def holds(self, *_: Any) -> bool:
        return False

    def stage(self, *_: Any) -> None:
        raise AssertionError("the benchmark workloads have no bad records")

    def promote(self, *_: Any) -> bool:
        return False


def shard(payloads: list[bytes]) -> list[StreamRecord]:
    base = 49590338271490256608559692538361571095921575989136588890
    return [
        StreamRecord("shardId-000000000000", str(base + i), data) for i, data in enumerate(payloads)
    ]


@dataclass
class Workload:
    name: str
    batch_size: int
    records: list[StreamRecord]
    accounts: Accounts
    catalog: Catalog | None = None  # None: the workloads' common catalog


def build_workloads(catalog: Catalog, events: int) -> list[Workload]:
    rng = random.Random(20261122)
    skewed_accounts = workloads.accounts(1000, catalog)
    skewed = shard(workloads.skewed(rng, events))
    uniform_events = min(events, 20_000)
    return [
        Workload("skewed_b100", 100, skewed, skewed_accounts),
        Workload("skewed_b1000", 1000, skewed, skewed_accounts),
        Workload("skewed_b10000", 10_000, skewed, skewed_accounts),
        Workload(
            "single_account_b1000",
            1000,
            shard(workloads.single_account(rng, events)),
            workloads.accounts(1, catalog),
        ),
        Workload(
            "uniform_b1000",
            1000,
            shard(workloads.uniform_distinct(rng, uniform_events)),
            workloads.accounts(uniform_events, catalog),
        ),
        unique_workload(events),
    ]


def unique_workload(events: int) -> Workload:
    """unique_b1000: one unique_count meter, on a catalog of its own."""
    rng = random.Random(20261203)
    catalog = workloads.unique_catalog()
    return Workload(
        "unique_b1000",
        1000,
        shard(workloads.unique_users(rng, events)),
        workloads.accounts(1000, catalog),
        catalog,
    )


@dataclass
class StoreRun:
    write_units: float
    read_units: float
    ledger_writes: int
    processing_seconds: float
    batches: int
    events: int


def run_store(workload: Workload, catalog: Catalog) -> StoreRun:
    """One shard's batches through the real rating service, on an in-memory table."""
    store = LedgerStore(MemoryDynamoDB(), "ledger")
    service = RatingService(
        StaticConfig(catalog, workload.accounts), store, Discard(), clock=lambda: workloads.NOW
    )
    seconds, batches = 0.0, 0
    for start in range(0, len(workload.records), workload.batch_size):
        report = service.process(workload.records[start : start + workload.batch_size])
        assert not report.failed
        assert report.counts()["rated"] == len(report.results)
        seconds += report.seconds
        batches += 1
    return StoreRun(
        store.capacity.write_units,
        store.capacity.read_units,
        store.capacity.writes,
        seconds,
        batches,
        len(workload.records),
    )


def naive_write_units(workload: Workload) -> float:
    """Per event: a conditional update of (account, period, meter) and a dedupe item."""
    units = 0
    for record in workload.records:
        event = decode_record(record.data)
        assert isinstance(event, UsageEvent)
        dedupe = {
            "pk": {"S": f"ACCOUNT#{event.account_id}"},
            "sk": {"S": f"EVENT#{event.event_id}"},
            "expires_at": {"N": "1798761600"},
        }
        aggregate = {
            "pk": {"S": f"ACCOUNT#{event.account_id}"},
            "sk": {"S": f"USAGE#2026-11#{event.meter}"},
            "q": {"S": "123456789.123456"},
            "n": {"N": "123456"},
            "amount": {"S": "12345.678901"},
            "seq": {"S": record.sequence_number},
        }
        units += write_units(item_size(dedupe)) + write_units(item_size(aggregate))
    return units / len(workload.records)


def cost_per_million(write_units: float, read_units: float, run: StoreRun) -> float:
    """Dollars per million events, for units per event as given."""
    price = {key: Decimal(value) for key, value in PRICES.items() if key.startswith(_PRICED)}
    scale = Decimal(1_000_000) / run.events
    dynamodb = (
        Decimal(str(write_units)) * price["dynamodb_on_demand_usd_per_million_write_request_units"]
        + Decimal(str(read_units)) * price["dynamodb_on_demand_usd_per_million_read_request_units"]
    )
    # A shard takes 1,000 records/s: a million events keep it busy 1,000 s.
    kinesis = (
        Decimal(1000) / 3600 * price["kinesis_provisioned_usd_per_shard_hour"]
        + price["kinesis_usd_per_million_put_payload_units"]
    )
    invocations = Decimal(run.batches) * scale
    lambda_seconds = (
        Decimal(str(run.processing_seconds))
        + Decimal(str(DYNAMODB_CALL_SECONDS)) * (run.batches + run.ledger_writes)
    ) * scale
    compute = (
        lambda_seconds * Decimal(str(LAMBDA_MEMORY_GB)) * price["lambda_arm64_usd_per_gb_second"]
        + invocations * price["lambda_usd_per_million_requests"] / 1_000_000
    )
    return float(round(dynamodb + kinesis + compute, 4))


def batching_window_curve(catalog: Catalog, events: int) -> list[dict[str, float]]:
    """Cost against freshness for the skewed shard at 1,000 records/s: a batching window of
    w seconds makes batches of 1,000 w records, and charges visible after about w seconds."""
    rng = random.Random(20261122)
    accounts = workloads.accounts(1000, catalog)
    records = shard(workloads.skewed(rng, events))
    points = []
    for window in (0.1, 0.5, 1, 2, 5, 10):
        workload = Workload(f"w{window}", int(window * 1000), records, accounts)
        run = run_store(workload, catalog)
        units, reads = run.write_units / run.events, run.read_units / run.events
        points.append(
            {
                "batching_window_s": window,
                "batch_size": workload.batch_size,
                "write_units_per_event": round(units, 4),
                "cost_per_million_events_usd": cost_per_million(units, reads, run),
            }
        )
    return points


def throughput(catalog: Catalog, runs: int) -> tuple[float, float]:
    """Events per second on one core: decode, validate, dedupe, price, pre-aggregate. The
    median over `runs` of wall-clock time, and of CPU time (the process's: steadier on a
    shared machine, where other work's load swings the wall clock by up to 2x)."""
    rng = random.Random(7)
    accounts = workloads.accounts(1000, catalog)
    # One shard's stream cut into batches: sequence numbers rise and event ids differ from
    # batch to batch, so every event is rated (none is replayed or a duplicate).
    records = shard(workloads.skewed(rng, 20 * 1000))
    batches = [records[start : start + 1000] for start in range(0, len(records), 1000)]
    samples, cpu_samples = [], []
    today = epoch_day(workloads.NOW)
    for _ in range(runs):
        ledgers: dict[str, AccountLedger] = {}
        elapsed = cpu = 0.0
        for batch in batches:
            started, cpu_started = time.perf_counter(), time.process_time()
            decoded = decode_batch(batch)
            # As the rating service does: the open digests of the batch's accounts only.
            in_batch = {event.account_id for _, event in decoded if isinstance(event, UsageEvent)}
            result = rate_batch(
                decoded,
                catalog=catalog,
                accounts=accounts.by_id,
                ledgers=ledgers,
                seen={a: ledgers[a].recent_digests(today) for a in in_batch if a in ledgers},
                now=workloads.NOW,
                token=new_token,
            )
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            assert all(item.outcome == "rated" for item in result.results)
            ledgers.update({a: write.after for a, write in result.writes.items()})
        samples.append(len(batches) * 1000 / elapsed)
        cpu_samples.append(len(batches) * 1000 / cpu)
    return round(statistics.median(samples)), round(statistics.median(cpu_samples))


class PriorClaims(MemoryDynamoDB):
    """A table in which `prior` ids were claimed before, one item each (a keyed account's),
    without holding them: a claim key is found when its id is one of the first `prior`."""

    def __init__(self, account_id: str, prior: int) -> None:
        super().__init__()
        self._account_id, self._prior = account_id, prior
        self._known: dict[str, int] = {}  # digest hex -> n, for the ids looked up

    def remember(self, event_ids: Sequence[tuple[int, str]]) -> None:
        self._known.update({id_digest(event_id).hex(): n for n, event_id in event_ids})

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        response = super().batch_get_item(RequestItems=RequestItems)
        for name, request in RequestItems.items():
            for key in request["Keys"]:
                n = self._known.get(key["sk"]["S"])
                if n is not None and n < self._prior:
                    response["Responses"][name].append({**key, "expires_at": {"N": "0"}})
        return response


def large_account(catalog: Catalog, batches: int = 30, batch_size: int = 1000) -> dict[str, Any]:
    """Per-batch time, memory and units for one keyed account at 1M, 10M and 100M prior
    events: the account's chunks already hold all the ids a rater keeps in memory
    (CHUNKED_DIGESTS_MAX), every later id is claimed in an item of its own."""
    accounts = workloads.accounts(1, catalog)
    account_id = accounts.accounts[0].id
    figures: dict[str, Any] = {}
    for prior in (1_000_000, 10_000_000, 100_000_000):
        table = PriorClaims(account_id, prior)
        store = LedgerStore(table, "ledger")
        _seed_keyed_ledger(table, account_id)
        service = RatingService(
            StaticConfig(catalog, accounts), store, Discard(), clock=lambda: workloads.NOW
        )
        rng = random.Random(prior)
        new = list(workloads.events(rng, lambda: account_id, batches * batch_size, prior))
        # 1% of each batch: producer resends of earlier ids (claimed, or in a chunk).
        resends = [
            (n, f"evt-{n:010d}") for n in rng.sample(range(prior), batches * batch_size // 100)
        ]
        table.remember(resends)
        per_batch = batch_size // 100
        payloads = []
        for b in range(batches):
            payloads += new[b * (batch_size - per_batch) : (b + 1) * (batch_size - per_batch)]
            payloads += [
                _resend(account_id, i) for _, i in resends[b * per_batch : (b + 1) * per_batch]
            ]
        records = shard(payloads)
        seconds, peaks = [], []
        units_before = (store.capacity.write_units, store.capacity.read_units)
        # Memory over the first half of the batches (tracemalloc slows everything down),
        # time over the second half.
        tracemalloc.start()
        for b in range(batches):
            batch = records[b * batch_size : (b + 1) * batch_size]
            if b == batches // 2:
                held = tracemalloc.get_traced_memory()[0]
                tracemalloc.stop()
            tracemalloc.reset_peak()
            started = time.perf_counter()
            report = service.process(batch)
            if b < batches // 2:
                peaks.append(tracemalloc.get_traced_memory()[1])
            else:
                seconds.append(time.perf_counter() - started)
            assert not report.failed
            assert report.counts()["duplicate"] == per_batch, report.counts()
        events = batches * batch_size
        figures[f"{prior:_}"] = {
            "batch_ms_median": round(statistics.median(seconds) * 1000, 1),
            "batch_peak_mib": round(statistics.median(peaks) / 2**20, 1),
            "memory_held_mib": round(held / 2**20, 1),
            "write_units_per_event": round(
                (store.capacity.write_units - units_before[0]) / events, 4
            ),
            "read_units_per_event": round(
                (store.capacity.read_units - units_before[1]) / events, 4
            ),
        }
    return figures


def _resend(account_id: str, event_id: str) -> bytes:
    event = {
        "event_id": event_id,
        "account_id": account_id,
        "meter": "api_requests",
        "quantity": 1,
        "timestamp": "2026-11-20T10:00:00Z",
    }
    return json.dumps(event).encode()


def _seed_keyed_ledger(table: MemoryDynamoDB, account_id: str) -> None:
    """The account's ledger as it is once keyed: chunks holding CHUNKED_DIGESTS_MAX ids."""
    per_chunk = 10_000
    chunks = [
        IdChunk(
            account_id,
            {"2026-11": b"".join(id_digest(f"old-{c}-{i}") for i in range(per_chunk))},
            epoch_day(workloads.NOW),
        )
        for c in range(CHUNKED_DIGESTS_MAX // per_chunk)
    ]
    for chunk in chunks:
        table.put_item(TableName="ledger", Item=chunk_item(chunk))
    ledger = AccountLedger(
        account_id, version=1, token="seed", chunk_refs=tuple(c.ref() for c in chunks), keyed=True
    )
    table.put_item(TableName="ledger", Item=ledger_item(ledger))


def spread_over_the_month(workload: Workload) -> Workload:
    """The workload with its records' timestamps spread evenly over 1-30 November (from
    noon UTC, in stream order) instead of about 27 hours: the ledgers as a month of traffic
    fills their days (docs/customer-api.md, "What it costs")."""
    records = []
    for n, record in enumerate(workload.records):
        event = json.loads(record.data)
        at = workloads.PERIOD_START + timedelta(
            seconds=n * 29 * 86_400 // len(workload.records) + 43_200
        )
        event["timestamp"] = at.isoformat().replace("+00:00", "Z")
        data = json.dumps(event, separators=(",", ":")).encode()
        records.append(StreamRecord(record.shard_id, record.sequence_number, data))
    return replace(workload, records=records)


def write_units_only(events: int, month: bool) -> dict[str, float]:
    """Write units per event of each workload, nothing else (`--units`)."""
    catalog = workloads.catalog()
    units = {}
    for workload in build_workloads(catalog, events):
        run = run_store(
            spread_over_the_month(workload) if month else workload, workload.catalog or catalog
        )
        units[workload.name] = round(run.write_units / run.events, 4)
    return units


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--events", type=int, default=100_000, help="events per workload")
    parser.add_argument("--runs", type=int, default=7, help="throughput runs (median)")
    parser.add_argument("--units", action="store_true", help="only write units per event")
    parser.add_argument(
        "--month", action="store_true", help="with --units: events spread over the month"
    )
    args = parser.parse_args(argv)
    if args.units:
        units = {"write_units_per_event": write_units_only(args.events, args.month)}
        print(json.dumps(units, indent=None if args.json else 2))
        return units

    catalog = workloads.catalog()
    units, naive, reads, costs, naive_costs = {}, {}, {}, {}, {}
    for workload in build_workloads(catalog, args.events):
        run = run_store(workload, workload.catalog or catalog)
        units[workload.name] = round(run.write_units / run.events, 4)
        reads[workload.name] = round(run.read_units / run.events, 4)
        naive[workload.name] = round(naive_write_units(workload), 4)
        if workload.name in GOALS["cost_per_million_events_usd"]:
            costs[workload.name] = cost_per_million(units[workload.name], reads[workload.name], run)
            naive_costs[workload.name] = cost_per_million(
                naive[workload.name], reads[workload.name], run
            )
    curve = batching_window_curve(catalog, args.events)
    per_second, per_cpu_second = throughput(catalog, args.runs)
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "events_per_second_per_core": per_second,
        # The same work per second of the process's CPU time (see `throughput`).
        "events_per_cpu_second_per_core": per_cpu_second,
        "write_units_per_event": units,
        "naive_write_units_per_event": naive,
        "read_units_per_event": reads,
        "cost_per_million_events_usd": costs,
        "naive_cost_per_million_events_usd": naive_costs,
        "batching_window_curve": curve,
        "large_account": large_account(catalog),
        "goals": GOALS,
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return report


if __name__ == "__main__":
    main()
