"""`billing run`: the whole pipeline on a fresh local AWS, from files to files.

Events go on a Kinesis stream in file order, are delivered in batches to the real
rate_usage handler the way Lambda's event source mapping would, and the real invoice
workflow runs for the period. What it produced is written under the output folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any, Final

import boto3

from billing.core.catalog import Accounts, Catalog
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.rating.rater import Outcome, RecordResult, StreamRecord
from billing.rating.service import BatchReport, RatingService
from billing.settings import RATING_BATCH_SIZE
from billing.store.quarantine import QUARANTINE_PREFIX, Quarantine
from billing.store.retry import Sleep
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.runtime import (
    INVOICE_BUCKET,
    QUARANTINE_BUCKET,
    RATE_USAGE,
    REGION,
    USAGE_STREAM,
    LocalAws,
    invoke_function,
    local_aws,
)
from billing_cli.producer import PendingRecord, put_records
from functions.rate_usage import app as rate_usage

_PUT_BATCH: Final = 500


@dataclass
class RunResult:
    summary: dict[str, Any]
    invoices: list[str] = field(default_factory=list)  # invoice numbers written
    report: dict[str, Any] = field(default_factory=dict)  # the invoice workflow's counts
    # How long each part took: putting on the stream, rating, the invoice run, in seconds.
    seconds: dict[str, float] = field(default_factory=dict)


BatchHook = Callable[[BatchReport, LocalAws], None]


@dataclass(frozen=True)
class Serve:
    """After the run, serve its runtime on 127.0.0.1 (moto on `port`, the customer API on
    `customer_api_port`; 0: any free port) for as long as `then` runs."""

    port: int
    customer_api_port: int
    then: Callable[[LocalAws, RunResult], None]


@contextmanager
def _rating_handler(
    service: RatingService, reports: list[BatchReport], on_batch: Callable[[BatchReport], None]
) -> Iterator[None]:
    """Let the real handler rate on `service` (the run's clock) and keep its reports."""
    original = rate_usage.service

    def recording() -> RatingService:
        return service

    process = service.process

    def keep(records: Sequence[StreamRecord]) -> BatchReport:
        report = process(records)
        reports.append(report)
        on_batch(report)
        return report

    service.process = keep  # type: ignore[method-assign]
    rate_usage.service = recording  # type: ignore[assignment]
    rate_usage.logger.setLevel(logging.WARNING)  # stdout is the user's
    try:
        yield
    finally:
        rate_usage.service = original


def put_on_stream(kinesis: Any, records: Sequence[bytes], *, sleep: Sleep = time.sleep) -> None:
    """PutRecords in file order, resending whatever a batch reports as failed (the
    producer's STREAM_PUT policy); UsageNotSent if some records are still refused."""
    for start in range(0, len(records), _PUT_BATCH):
        batch = [
            PendingRecord(data, _partition_key(data))
            for data in records[start : start + _PUT_BATCH]
        ]
        put_records(kinesis, {"StreamName": USAGE_STREAM}, batch, sleep=sleep)


def _partition_key(data: bytes) -> str:
    """The account, as products key their records; a fixed key for what cannot be read."""
    try:
        document = json.loads(data)
        key = document.get("account_id") or document.get("subject")
    except (ValueError, AttributeError):
        key = None
    return key if isinstance(key, str) and 0 < len(key) <= 256 else "unreadable"


def read_stream(kinesis: Any) -> list[StreamRecord]:
    """Every record of the stream's shards, in order (the shard a mapping would poll)."""
    found: list[StreamRecord] = []
    for shard in kinesis.list_shards(StreamName=USAGE_STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=USAGE_STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in response["Records"]:
                found.append(
                    StreamRecord(
                        shard["ShardId"],
                        record["SequenceNumber"],
                        record["Data"],
                        partition_key=record["PartitionKey"],
                        arrival_timestamp=record["ApproximateArrivalTimestamp"].timestamp(),
                    )
                )
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return found


def summarize(records: int, reports: Sequence[BatchReport]) -> dict[str, Any]:
    final: dict[str, RecordResult] = {}
    for report in reports:
        for sequence, result in report.results.items():
            if result.outcome is not Outcome.REPLAYED:
                final[sequence] = result
    counts = Counter(str(result.outcome) for result in final.values())
    rejected = Counter(str(r.rejection.reason) for r in final.values() if r.rejection)
    return {
        "records": records,
        "rated": counts["rated"],
        "duplicates": counts["duplicate"],
        "rejected": dict(sorted(rejected.items())),
    }


def run_pipeline(
    catalog: Catalog,
    accounts: Accounts,
    events: Sequence[bytes],
    period: Period,
    now: datetime,
    out: Path,
    progress: Callable[[str], None] = lambda _: None,
    on_batch: BatchHook = lambda _report, _aws: None,
    serve: Serve | None = None,
) -> RunResult:
    """The whole pipeline on a fresh local runtime. Given `serve`, it runs served (see
    Serve) and `serve.then` is called with it once the run is written; it stops when that
    returns."""
    with local_aws(
        server_port=serve.port if serve else None,
        customer_api_port=serve.customer_api_port if serve else None,
    ) as aws:
        aws.load(catalog, accounts, now)
        kinesis = boto3.client("kinesis", region_name=REGION)
        progress(f"putting {len(events)} records on the stream")
        started = time.perf_counter()
        put_on_stream(kinesis, events)
        records = read_stream(kinesis)
        sent = time.perf_counter()
        reports: list[BatchReport] = []
        service = RatingService(
            config=aws.config,
            ledgers=aws.ledgers,
            quarantine=Quarantine(aws.s3, QUARANTINE_BUCKET),
            clock=lambda: now,
        )
        progress("rating through the rate_usage handler")
        with _rating_handler(service, reports, lambda report: on_batch(report, aws)):
            invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
            deliver(records, invoke, MappingSettings(batch_size=RATING_BATCH_SIZE))
        aws.firehose().drain()  # the raw archive, as Firehose writes it in the stack
        rated = time.perf_counter()
        progress("running the invoice workflow")
        report = aws.run_invoices(f"run-{period}", {"period": str(period), "now": utc_text(now)})
        invoiced = time.perf_counter()
        seconds = {
            "send_seconds": sent - started,
            "rate_seconds": rated - sent,
            "invoice_seconds": invoiced - rated,
        }
        result = RunResult(summarize(len(events), reports), report=report, seconds=seconds)
        _write(aws, out, records, result)
        if serve:
            serve.then(aws, result)
    return result


def _write(aws: LocalAws, out: Path, records: Sequence[StreamRecord], result: RunResult) -> None:
    (out / "invoices").mkdir(parents=True, exist_ok=True)
    (out / "emails").mkdir(parents=True, exist_ok=True)
    listing = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=INVOICE_BUCKET)
    keys = sorted(item["Key"] for page in listing for item in page.get("Contents", []))
    for key in keys:
        name = key.rsplit("/", 1)[1]
        (out / "invoices" / name).write_bytes(aws.object(INVOICE_BUCKET, key))
        if name.endswith(".json"):
            result.invoices.append(name.removesuffix(".json"))
    for raw in aws.sent_emails():
        message = message_from_bytes(raw, policy=default)
        number = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        (out / "emails" / f"{number}.eml").write_bytes(raw)
    order = {record.sequence_number: n for n, record in enumerate(records)}
    rejected = []
    listing = aws.s3.get_paginator("list_objects_v2").paginate(
        Bucket=QUARANTINE_BUCKET, Prefix=QUARANTINE_PREFIX
    )
    for page in listing:
        for item in page.get("Contents", []):
            rejected.append(json.loads(aws.object(QUARANTINE_BUCKET, item["Key"])))
    rejected.sort(key=lambda document: order.get(document["sequence_number"], 0))
    with (out / "rejected.jsonl").open("w", encoding="utf-8") as file:
        for document in rejected:
            file.write(json.dumps(document, ensure_ascii=False) + "\n")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
