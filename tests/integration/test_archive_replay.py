"""The raw archive, written locally as Firehose writes it in the stack, read back by the
replay: every record of a run is in it once, and rating it again reproduces the run's
aggregates and invoices exactly, with Firehose's repeated deliveries in it too."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.core.catalog import Accounts, Catalog
from billing.core.events import Reason
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.corrections.replay import Replay, replay, stream_records
from billing.rating.archive import ArchivedRecord
from billing.rating.records import StreamRecord
from billing.store.archive_objects import RAW_PREFIX, ArchiveObjects
from billing.store.quarantine_reader import QuarantineReader
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
from billing_cli.main import app
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


@contextmanager
def examples_run(late: Sequence[bytes] = ()) -> Iterator[Run]:
    """The examples rated (in batches of 7: the replay's batching must not matter),
    archived, and invoiced for November; then `late` put on the stream, rated and archived
    too. The archive holds one object twice, as Firehose may deliver it."""
    catalog, accounts = load_files(EXAMPLES / "catalog.yaml", EXAMPLES / "accounts.yaml")
    with local_aws() as aws:
        aws.load(catalog, accounts, RUN_AT)
        rate_usage.service()._clock = lambda: RUN_AT
        kinesis = boto3.client("kinesis", region_name=REGION)
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        put_on_stream(kinesis, read_records(EXAMPLES / "events.jsonl"))
        deliver(read_stream(kinesis), invoke, MappingSettings(batch_size=7))
        firehose = aws.firehose()
        (key,) = firehose.drain()
        aws.s3.copy_object(
            Bucket=ARCHIVE_BUCKET,
            Key=key + ".again",
            CopySource={"Bucket": ARCHIVE_BUCKET, "Key": key},
        )
        report = aws.run_invoices("november", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"})
        assert report["issued"] == 6, report
        if late:
            put_on_stream(kinesis, late)
            records = read_stream(kinesis)
            deliver(records[-len(late) :], invoke, MappingSettings(batch_size=7))
            firehose.drain()
        records = read_stream(kinesis)
        archive = ArchiveObjects(aws.s3, ARCHIVE_BUCKET)
        start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=1)
        yield Run(aws, catalog, accounts, records, list(archive.records_between(start, end)))


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with examples_run() as done:
        yield done


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
    # The rater's verdicts that depended on its clock (bad-5, a 2027 event, was ahead of
    # it) or on the accounts and catalog then, as the quarantine holds them.
    quarantine = QuarantineReader(run.aws.s3, "billing-local-quarantine")
    records = stream_records(run.archived)
    verdicts = quarantine.rater_refusals({(r.shard_id, r.sequence_number) for r in records})
    assert Counter(verdicts.values()) == Counter(
        {
            Reason.NOT_SUBSCRIBED: 2,
            Reason.UNKNOWN_ACCOUNT: 1,
            Reason.UNKNOWN_METER: 1,
            Reason.FUTURE_TIMESTAMP: 1,
        }
    )
    return replay(records, run.aws.config, verdicts)


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


def rerate(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["rerate", "--period", "2026-11", "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_rerating_with_the_same_catalog_changes_nothing(run: Run) -> None:
    document = rerate()
    assert (document["records_read"], document["accounts"]) == (34, 6)
    assert (document["accounts_changed"], document["changes"]) == (0, [])


def test_rerating_with_a_changed_price_gives_the_hand_computed_difference(
    run: Run, tmp_path: Path
) -> None:
    # GIVEN the pro plan's second API tier at 0.000003 instead of 0.000002
    tier = '{up_to: 10000000, unit_price: "0.000002", flat_fee: "5.00"}'
    text = (EXAMPLES / "catalog.yaml").read_text()
    assert text.count(tier) == 1
    changed = tmp_path / "catalog.yaml"
    changed.write_text(text.replace(tier, tier.replace("0.000002", "0.000003")))
    # WHEN the period is re-rated with it
    document = rerate("--catalog", str(changed))
    # THEN only acct-1 changes (acct-2's 750,000 requests are all in the free tier):
    # 534,000 × 0.000003 + 5.00 = 6.602 → 6.60 (was 6.07); subtotal 197.27 + 0.53 = 197.80;
    # tax 20% = 39.56; total 237.36 (was 236.72)
    assert document["accounts_changed"] == 1
    (change,) = document["changes"]
    assert change == {
        "account_id": "acct-1",
        "period": "2026-11",
        "invoice_number": "INV-2026-000001",
        "currency": "USD",
        "stored": {"subtotal": "197.27", "tax": "39.45", "total": "236.72"},
        "rerated": {"subtotal": "197.80", "tax": "39.56", "total": "237.36"},
        "difference": "0.64",
        "lines": [
            {
                "line": "usage api_requests",
                "description": "API requests",
                "stored": {"quantity": "1534000", "amount": "6.07"},
                "rerated": {"quantity": "1534000", "amount": "6.60"},
            }
        ],
        "late_events": 0,
    }


def test_rerating_one_account_reads_only_its_invoice(run: Run) -> None:
    document = rerate("--account", "acct-3")
    assert (document["accounts"], document["accounts_changed"]) == (1, 0)
    result = CliRunner().invoke(app, ["rerate", "--period", "2026-11", "--account", "nobody"])
    assert result.exit_code == 2
    assert "no account 'nobody'" in result.output
