"""The operator's invoice commands against the local runtime: list, show, resend, run with a
clock, and the test clock that closes a period without waiting for the calendar."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.rating.rater import StreamRecord
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.runtime import (
    RATE_USAGE,
    REGION,
    USAGE_STREAM,
    LocalAws,
    invoke_function,
    local_aws,
)
from billing_cli.main import app
from functions.rate_usage import app as rate_usage

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DECEMBER = "2026-12-01T13:00:00Z"


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def on_stream() -> list[StreamRecord]:
    kinesis = boto3.client("kinesis", region_name=REGION)
    shard = kinesis.list_shards(StreamName=USAGE_STREAM)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=USAGE_STREAM, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return [
        StreamRecord(shard, r["SequenceNumber"], r["Data"], partition_key=r["PartitionKey"])
        for r in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    ]


def rated(clock: datetime) -> None:
    """The examples pushed, their events sent and rated at `clock`."""
    assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
    assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0
    billing("send", str(EXAMPLES / "events.jsonl"))
    rate_usage.service.cache_clear()
    rate_usage.service()._clock = lambda: clock  # type: ignore[attr-defined]
    invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
    deliver(on_stream(), invoke, MappingSettings(1000))
    rate_usage.service.cache_clear()


@pytest.fixture
def invoiced() -> Iterator[LocalAws]:
    with local_aws() as aws:
        rated(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
        result = billing("invoices", "run", "--period", "2026-11", "--now", DECEMBER, "--json")
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)
        assert run["input"] == {"now": DECEMBER, "period": "2026-11"}
        assert run["report"]["issued"] == 6
        yield aws


def test_invoices_list_shows_each_invoice_and_filters_by_account_period_and_status(
    invoiced: LocalAws,
) -> None:
    listed = billing("invoices", "list", "--json")
    assert listed.exit_code == 0, listed.output
    invoices = json.loads(listed.stdout)["invoices"]
    assert [(i["invoice_number"], i["account_id"], i["period"], i["status"]) for i in invoices] == [
        (f"INV-2026-{n:06d}", f"acct-{n}", "2026-11", "sent") for n in range(1, 7)
    ]
    assert invoices[0]["total"] == "236.72"
    assert invoices[0]["currency"] == "USD"

    one = json.loads(billing("invoices", "list", "--account", "acct-4", "--json").stdout)
    assert [i["invoice_number"] for i in one["invoices"]] == ["INV-2026-000004"]
    none = json.loads(billing("invoices", "list", "--period", "2026-10", "--json").stdout)
    assert none["invoices"] == []
    undelivered = billing("invoices", "list", "--status", "undelivered", "--json")
    assert json.loads(undelivered.stdout)["invoices"] == []
    table = billing("invoices", "list", "--account", "acct-1")
    assert "INV-2026-000001" in table.stdout
    assert "236.72 USD" in table.stdout


def test_invoices_show_prints_the_stored_invoice_and_writes_its_pdf(
    invoiced: LocalAws, tmp_path: Path
) -> None:
    pdf = tmp_path / "invoice.pdf"

    shown = billing("invoices", "show", "INV-2026-000001", "--pdf", str(pdf), "--json")

    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["invoice"]["total"] == "236.72"
    assert document["invoice"]["account_id"] == "acct-1"
    assert document["record"]["status"] == "sent"
    key = "invoices/acct-1/2026-11/INV-2026-000001.pdf"
    assert pdf.read_bytes() == invoiced.object("billing-local-invoices", key)


def test_invoices_show_of_an_unknown_number_says_so(invoiced: LocalAws) -> None:
    result = billing("invoices", "show", "INV-2026-000099")
    assert result.exit_code == 2
    assert "no invoice INV-2026-000099" in result.output


def test_invoices_resend_emails_the_stored_invoice_again_and_records_it(
    invoiced: LocalAws,
) -> None:
    before = len(invoiced.sent_emails())

    result = billing("invoices", "resend", "INV-2026-000005", "--json")

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == "sent"
    assert answer["message_id"]
    sent = invoiced.sent_emails()
    assert len(sent) == before + 1
    stored = invoiced.object(
        "billing-local-invoices", "invoices/acct-5/2026-11/INV-2026-000005.pdf"
    )

    message = email.message_from_bytes(sent[-1], policy=default)
    (attachment,) = message.iter_attachments()  # type: ignore[attr-defined]
    assert attachment.get_content() == stored
    record = invoiced.invoices.get("acct-5", "2026-11")
    assert record is not None
    assert record.email_status == "sent"


def test_invoices_run_for_a_period_not_yet_due_says_when_it_will_be(invoiced: LocalAws) -> None:
    result = billing("invoices", "run", "--period", "2026-12", "--now", "2026-12-20T00:00:00Z")

    # THEN nothing starts, and it says when: of the accounts subscribed in December (acct-6
    # left in November), December ends first in Asia/Tokyo (UTC+9) and last in
    # America/New_York (UTC-5), each plus the hour of grace
    assert result.exit_code == 1
    assert "2026-12 is not due yet" in result.output
    assert "2026-12-31T16:00:00Z" in result.output
    assert "2027-01-01T06:00:00Z" in result.output
    executions = invoiced.sfn.list_executions(stateMachineArn=invoiced.state_machine)
    assert all("2026-12" not in e["name"] for e in executions["executions"])


def test_the_test_clock_closes_a_period_without_waiting_for_the_calendar() -> None:
    # GIVEN a local runtime whose clock stands in November
    with local_aws(clock=datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        assert json.loads(billing("clock", "show", "--json").stdout) == {
            "now": "2026-11-30T09:00:00Z"
        }
        assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
        assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0
        billing("send", str(EXAMPLES / "events.jsonl"))
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        deliver(on_stream(), invoke, MappingSettings(1000))  # rated on the test clock
        now_usage = json.loads(billing("usage", "acct-3", "--json").stdout)
        assert now_usage["period"] == "2026-11"  # the current period on the test clock
        early = billing("invoices", "run", "--period", "2026-11")
        assert early.exit_code == 1
        assert "not due yet" in early.output

        # WHEN the clock is advanced past November's end plus the grace time
        advanced = billing("clock", "advance", "--to", "2026-12-01T13:00:00Z", "--json")
        assert json.loads(advanced.stdout) == {"now": "2026-12-01T13:00:00Z"}
        assert json.loads(billing("usage", "acct-3", "--json").stdout)["period"] == "2026-12"
        # (the rater judges events by it too)
        assert rate_usage.service()._clock() == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # type: ignore[attr-defined]

        # THEN the invoice run, on that clock, issues November
        result = billing("invoices", "run", "--period", "2026-11", "--json")
        assert result.exit_code == 0, result.output
        run = json.loads(result.stdout)
        assert run["input"]["now"] == "2026-12-01T13:00:00Z"
        assert run["report"]["issued"] == 6
        later = billing("clock", "advance", "--by", "2d", "--json")
        assert json.loads(later.stdout) == {"now": "2026-12-03T13:00:00Z"}


def test_the_test_clock_only_moves_forward_and_only_exists_locally() -> None:
    with local_aws(clock=datetime(2026, 12, 1, 13, 0, tzinfo=UTC)):
        back = billing("clock", "advance", "--to", "2026-11-01T00:00:00Z")
        assert back.exit_code == 2
        assert "only moves forward" in back.output
    with local_aws():
        none = billing("clock", "show")
        assert none.exit_code == 2
        assert "billing local --clock" in none.output
