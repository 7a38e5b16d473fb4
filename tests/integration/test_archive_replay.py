"""The raw archive, written locally as Firehose writes it in the stack, read back by the
replay: every record of a run is in it once, and rating it again reproduces the run's
aggregates and invoices exactly, with Firehose's repeated deliveries in it too."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from billing.core.catalog import Accounts, Catalog
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.corrections.replay import Replay, replay, stream_records
from billing.rating.archive import ArchivedRecord
from billing.rating.records import StreamRecord
from billing.store.archive_objects import RAW_PREFIX, ArchiveObjects
from billing_cli.commands.common import load_files, read_records
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.run import put_on_stream, read_stream
from billing_cli.local.runtime import (
    ARCHIVE_BUCKET,
    INVOICE_BUCKET,
    RATE_USAGE,
    REGION,
    LocalAws,
    invoke_function,
    local_aws,
)
from functions.rate_usage import app as rate_usage
from tests.support.examples import EXAMPLE_SUMMARY

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOVEMBER = Period.parse("2026-11")
RUN_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # the examples' invoice run (golden files)


@dataclass
class Run:
    aws: LocalAws
    catalog: Catalog
    accounts: Accounts
    records: list[StreamRecord]  # what the stream carried, in order
    archived: list[ArchivedRecord]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    catalog, accounts = load_files(EXAMPLES / "catalog.yaml", EXAMPLES / "accounts.yaml")
    events = read_records(EXAMPLES / "events.jsonl")
    with local_aws() as aws:
        aws.load(catalog, accounts, RUN_AT)
        rate_usage.service()._clock = lambda: RUN_AT
        kinesis = boto3.client("kinesis", region_name=REGION)
        put_on_stream(kinesis, events)
        records = read_stream(kinesis)
        # Batches of 7: the replay's batching (10,000) must not matter.
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        deliver(records, invoke, MappingSettings(batch_size=7))
        firehose = aws.firehose()
        (key,) = firehose.drain()
        # Firehose delivers at least once: the same object delivered again under a new name.
        aws.s3.copy_object(
            Bucket=ARCHIVE_BUCKET,
            Key=key + ".again",
            CopySource={"Bucket": ARCHIVE_BUCKET, "Key": key},
        )
        report = aws.run_invoices("november", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"})
        assert report["issued"] == 6, report
        archive = ArchiveObjects(aws.s3, ARCHIVE_BUCKET)
        start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        yield Run(aws, catalog, accounts, records, list(archive.records_between(start, end)))


def test_every_record_the_stream_carried_is_archived_under_its_arrival_hour(run: Run) -> None:
    listed = run.aws.s3.list_objects_v2(Bucket=ARCHIVE_BUCKET)["Contents"]
    keys = sorted(item["Key"] for item in listed)
    assert len(keys) == 2
    hour = datetime.fromtimestamp(run.records[0].arrival_timestamp, UTC)
    assert all(k.startswith(f"{RAW_PREFIX}{hour:%Y/%m/%d/%H}/RawArchive-1-") for k in keys)
    # Twice over (the repeated delivery), each record with its bytes and position.
    carried = Counter((r.shard_id, r.sequence_number, r.data) for r in run.records)
    archived = Counter((r.shard_id, r.sequence_number, r.data) for r in run.archived)
    assert archived == Counter(dict.fromkeys(carried, 2))
    assert len(run.records) == 34


def test_the_replay_reads_each_position_once_in_stream_order(run: Run) -> None:
    again = stream_records(run.archived)
    assert [(r.shard_id, r.sequence_number, r.data) for r in again] == [
        (r.shard_id, r.sequence_number, r.data) for r in run.records
    ]


@pytest.fixture(scope="module")
def replayed(run: Run) -> Replay:
    return replay(stream_records(run.archived), run.aws.config)


def test_replayed_outcomes_are_the_runs(run: Run, replayed: Replay) -> None:
    # The examples' summary (tests/e2e/test_billing_run.py holds billing run to it).
    outcomes = Counter(str(r.outcome) for r in replayed.records)
    reasons = Counter(str(r.rejection.reason) for r in replayed.records if r.rejection)
    assert outcomes == Counter(
        rated=EXAMPLE_SUMMARY["rated"],
        duplicate=EXAMPLE_SUMMARY["duplicates"],
        rejected=sum(EXAMPLE_SUMMARY["rejected"].values()),
    )
    assert reasons == EXAMPLE_SUMMARY["rejected"]
    kept = run.aws.s3.list_objects_v2(Bucket="billing-local-quarantine", Prefix="rejected/")
    live = Counter(
        json.loads(run.aws.object("billing-local-quarantine", item["Key"]))["reason"]
        for item in kept["Contents"]
    )
    assert reasons == live


def test_replayed_aggregates_and_invoices_are_the_issued_ones(run: Run, replayed: Replay) -> None:
    for account in run.accounts.accounts:
        if not account.overlaps(NOVEMBER):
            continue
        stored = run.aws.ledgers.archived_usage(account.id, "2026-11")
        assert replayed.usage(account.id, "2026-11") == stored
        (record,) = run.aws.invoices.for_account(account.id)
        assert record.json_key is not None
        issued = json.loads(run.aws.object(INVOICE_BUCKET, record.json_key))
        rebuilt = build_invoice(
            account,
            run.catalog.plans_by_id[account.plan],
            run.catalog,
            NOVEMBER,
            replayed.usage(account.id, "2026-11"),
            number=issued["invoice_number"],
            issued_at=RUN_AT,
        ).to_json()
        for field in ("lines", "subtotal", "tax", "total"):
            assert rebuilt[field] == issued[field], (account.id, field)
