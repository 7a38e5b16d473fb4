"""End-to-end benchmarks of the local runtime. `python bench/e2e.py --json`.

- demo_seconds: `billing demo` on its default workload (200 accounts, 100,000 records),
  run as a user runs it, wall clock; with its parts (send_seconds, rate_seconds,
  invoice_seconds) as the demo times them.
- latency_p50_s, latency_p99_s: from PutRecords of a usage event to its charge being
  visible through `billing usage` (the same account views, over HTTP), on the served local
  runtime (`billing local`: the event source mapping's batching window is the stack's).
  Probes go out at a steady rate among background traffic.
- dynamodb_call_ms: the median time of one DynamoDB call, moto in-process and as a server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from billing.core.periods import Period
from billing.customer.account_views import AccountViews
from billing.settings import RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS
from billing.store.documents import DocumentStore
from billing_cli.local.demo import demo_accounts, demo_catalog
from billing_cli.local.esm import MappingSettings
from billing_cli.local.runtime import INVOICE_BUCKET, REGION, LocalAws, local_aws
from billing_cli.producer import UsageProducer

GOALS = {"demo_seconds": 120, "latency_p99_s": 2}
PROBE_ACCOUNT = "cust-0049"  # the background traffic leaves this account alone
BILLING = Path(sys.executable).with_name("billing")


def demo(accounts: int, events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        command = [str(BILLING), "demo", "--json", "--out", folder]
        command += ["--accounts", str(accounts), "--events", str(events)]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, check=True, text=True)
        seconds = time.perf_counter() - started
    document = json.loads(finished.stdout)
    return {
        "demo_seconds": round(seconds, 1),
        **{part: round(value, 1) for part, value in document["seconds"].items()},
        "demo_records": document["summary"]["records"],
        "demo_invoices": document["run"]["issued"],
    }


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency(probes: int, interval: float, background_per_second: int) -> dict[str, Any]:
    """Probe events, one every `interval` seconds, each timed from its PutRecords until
    `billing usage` shows it counted, while other events arrive in the background."""
    catalog = demo_catalog()
    book = demo_accounts(50, catalog, random.Random(7), Period(2026, 11))
    settings = MappingSettings(RATING_BATCH_SIZE, RATING_BATCHING_WINDOW_SECONDS)
    with local_aws(server_port=0) as aws:
        aws.load(catalog, book)
        stop = threading.Event()
        threads = [
            threading.Thread(target=poller.run, args=(stop,), daemon=True)
            for poller in aws.pollers(settings)
        ]
        kinesis = boto3.client("kinesis", region_name=REGION)
        threads.append(
            threading.Thread(
                target=_background, args=(kinesis, aws, book, background_per_second, stop)
            )
        )
        for thread in threads:
            thread.start()
        try:
            samples = _probe(aws, kinesis, probes, interval)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
    return {
        "latency_p50_s": round(statistics.median(samples), 3),
        "latency_p99_s": round(_percentile(samples, 0.99), 3),
        "latency_max_s": round(max(samples), 3),
        "latency_probes": len(samples),
        "batching_window_s": settings.batching_window_seconds,
    }


def _views(aws: LocalAws) -> AccountViews:
    return AccountViews(
        config=aws.config,
        ledgers=aws.ledgers,
        invoices=aws.invoices,
        documents=DocumentStore(aws.s3, INVOICE_BUCKET),
    )


def _exports_counted(views: AccountViews) -> int:
    report = views.usage(PROBE_ACCOUNT)
    return sum(meter.events for meter in report.meters if meter.meter == "exports")


def _probe(aws: LocalAws, kinesis: Any, probes: int, interval: float) -> list[float]:
    """Each probe: one export by the probe account, timed until `billing usage` counts it."""
    views = _views(aws)
    producer = UsageProducer(aws.stream, client=kinesis)
    samples = []
    for expected in range(1, probes + 1):
        started = time.perf_counter()
        producer.record(PROBE_ACCOUNT, "exports", 1)
        producer.flush()
        while _exports_counted(views) < expected:
            time.sleep(0.05)  # as often as a dashboard might ask, not so often it slows the rater
        samples.append(time.perf_counter() - started)
        time.sleep(max(0.0, interval - samples[-1]))
    return samples


def _background(
    kinesis: Any, aws: LocalAws, book: Any, per_second: int, stop: threading.Event
) -> None:
    """Usage of the other accounts at a steady rate, a PutRecords every 100 ms."""
    rng = random.Random(8)
    ids = [account.id for account in book.accounts if account.id != PROBE_ACCOUNT]
    producer = UsageProducer(aws.stream, client=kinesis)
    while not stop.is_set():
        tick = time.perf_counter()
        for _ in range(max(1, per_second // 10)):
            producer.record(rng.choice(ids), "api_requests", rng.randint(1, 500))
        producer.flush()
        stop.wait(max(0.0, 0.1 - (time.perf_counter() - tick)))


def dynamodb_call_ms(server: bool, calls: int = 300) -> float:
    with local_aws(server_port=0 if server else None) as aws:
        client = boto3.client("dynamodb", region_name=REGION)
        table = next(iter(aws.tables.values()))
        key = {"pk": {"S": "ACCOUNT#x"}, "sk": {"S": "LEDGER"}}
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            client.get_item(TableName=table, Key=key)
            samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def timed(label: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = work()
    print(f"{label}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--accounts", type=int, default=200, help="the demo's accounts")
    parser.add_argument("--events", type=int, default=100_000, help="the demo's records")
    parser.add_argument("--probes", type=int, default=60, help="latency probes")
    parser.add_argument("--background", type=int, default=200, help="other events per second")
    args = parser.parse_args(argv)
    in_process = timed("in-process calls", lambda: dynamodb_call_ms(server=False))
    served = timed("server calls", lambda: dynamodb_call_ms(server=True))
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        **timed("demo", lambda: demo(args.accounts, args.events)),
        **timed("latency", lambda: latency(args.probes, 0.5, args.background)),
        "dynamodb_call_ms": {"in_process": in_process, "server": served},
        "server_to_in_process_call_ratio": round(served / in_process, 2),
        "goals": GOALS,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
