"""Re-rating from the raw archive against the rater, per core (issue: corrections).
`python bench/rerate.py --json`.

One shard's month of events (1,000 accounts, skewed, timestamps spread over November) is
rated twice on one core, in the same run:

- rater: the rating service as the stack runs it, batches of 1,000 (RATING_BATCH_SIZE),
  on an in-memory table: the rater's own work, with no time for DynamoDB's answers (a
  lower bound on the deployed rater's time, so the comparison favours the rater).
- rerate: the same records framed as Firehose archives them (gzip objects of 5 MB of
  records at most), read back (`read_archive`), put in stream order (`stream_records`) and
  replayed (`billing.corrections.replay`), as `billing rerate` does after its reads.

Both must give the same aggregates. Reported: events per second of each (median of
runs) and their ratio; the goal is a ratio of at least 1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from billing.corrections.replay import replay, stream_records
from billing.rating.archive import ArchivedRecord, frame, read_archive
from billing.rating.service import RatingService
from billing.settings import RATING_BATCH_SIZE
from billing.store.ledger_store import LedgerStore
from billing.store.memory_dynamodb import MemoryDynamoDB
from rater import Discard, StaticConfig, Workload, shard, spread_over_the_month

GOALS = {"rerate_to_rater_ratio": 1.0}
OBJECT_BYTES = 5 * 1024 * 1024  # the stack's Firehose buffer
# Every record arrived when the rater rated it (the clock a replay judges by).
ARRIVAL_MS = round(workloads.NOW.timestamp() * 1000)


def month_of_one_shard(events: int) -> Workload:
    catalog = workloads.catalog()
    records = shard(workloads.skewed(random.Random(20261204), events))
    return spread_over_the_month(
        Workload("month", RATING_BATCH_SIZE, records, workloads.accounts(1000, catalog))
    )


def archive_objects(workload: Workload) -> list[bytes]:
    objects, lines, size = [], [], 0
    for record in workload.records:
        line = frame(
            ArchivedRecord(record.shard_id, record.sequence_number, 0, "p", ARRIVAL_MS, record.data)
        )
        lines.append(line)
        size += len(line)
        if size >= OBJECT_BYTES:
            objects.append(gzip.compress(b"".join(lines)))
            lines, size = [], 0
    if lines:
        objects.append(gzip.compress(b"".join(lines)))
    return objects


def rater_seconds(workload: Workload) -> tuple[float, LedgerStore]:
    config = StaticConfig(workloads.catalog(), workload.accounts)
    store = LedgerStore(MemoryDynamoDB(), "ledger")
    service = RatingService(config, store, Discard(), clock=lambda: workloads.NOW)
    started = time.perf_counter()
    for start in range(0, len(workload.records), RATING_BATCH_SIZE):
        report = service.process(workload.records[start : start + RATING_BATCH_SIZE])
        assert not report.failed
    return time.perf_counter() - started, store


def rerate_seconds(workload: Workload, objects: list[bytes]) -> tuple[float, Any]:
    config = StaticConfig(workloads.catalog(), workload.accounts)
    started = time.perf_counter()
    archived = [record for body in objects for record in read_archive(body)]
    replayed = replay(stream_records(archived), config)
    return time.perf_counter() - started, replayed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    workload = month_of_one_shard(args.events)
    objects = archive_objects(workload)
    rater, rerate = [], []
    for _ in range(args.runs):
        seconds, store = rater_seconds(workload)
        rater.append(args.events / seconds)
        seconds, replayed = rerate_seconds(workload, objects)
        rerate.append(args.events / seconds)
    for account in workload.accounts.accounts[:50]:  # the same aggregates either way
        ledger = store.load([account.id], fresh=True)[account.id]
        assert replayed.usage(account.id, "2026-11") == store.period_usage(ledger, "2026-11")
    report = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "events": args.events,
        "archive_objects": len(objects),
        "rater_events_per_second": round(statistics.median(rater)),
        "rerate_events_per_second": round(statistics.median(rerate)),
        "rerate_to_rater_ratio": round(
            statistics.median(r / a for r, a in zip(rerate, rater, strict=True)), 2
        ),
        "goals": GOALS,
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return report


if __name__ == "__main__":
    main()
