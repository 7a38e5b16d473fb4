"""The operator commands (`catalog push`, `accounts push`, `send`, `invoices run`) against
the local runtime, found the way a deployed stack is found: by its outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.rating.rater import StreamRecord
from billing.settings import LEDGER_TABLE
from billing.store.due_hints import DueHints
from billing_cli import operations
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

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# After November 2026 ended everywhere, plus the grace time: the run's clock.
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def local() -> Iterator[LocalAws]:
    with local_aws() as aws:
        yield aws


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


def push_examples() -> None:
    assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
    assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0


def test_pushes_store_the_validated_files(local: LocalAws) -> None:
    catalog = billing("catalog", "push", str(EXAMPLES / "catalog.yaml"), "--json")
    accounts = billing("accounts", "push", str(EXAMPLES / "accounts.yaml"), "--json")

    assert catalog.exit_code == 0, catalog.output
    assert json.loads(catalog.output) == {"stack": "UsageBilling-local", "meters": 4, "plans": 5}
    assert json.loads(accounts.output) == {"stack": "UsageBilling-local", "accounts": 6}
    assert [account.id for account in local.config.all_accounts()] == [
        f"acct-{n}" for n in range(1, 7)
    ]
    assert [plan.id for plan in local.config.catalog().plans] == [
        "pro",
        "team",
        "starter-eur",
        "business-jpy",
        "gulf-kwd",
    ]


def test_accounts_before_any_catalog_are_refused(local: LocalAws) -> None:
    result = billing("accounts", "push", str(EXAMPLES / "accounts.yaml"))

    assert result.exit_code == 2
    assert "no catalog has been pushed" in result.output
    assert "billing catalog push" in result.output
    assert local.config.all_accounts() == []


def test_a_bad_catalog_is_refused_whole_naming_file_entry_and_field(
    local: LocalAws, tmp_path: Path
) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        (EXAMPLES / "catalog.yaml").read_text().replace('unit_price: "0.00012"', "unit_price: -1")
    )

    result = billing("catalog", "push", str(bad))

    assert result.exit_code == 2
    assert str(bad) in result.output
    assert "unit_price" in result.output


def test_a_catalog_dropping_a_plan_in_use_is_refused(local: LocalAws, tmp_path: Path) -> None:
    push_examples()
    catalog = json.loads(json.dumps(local.config.catalog().model_dump(mode="json")))
    catalog["plans"] = [plan for plan in catalog["plans"] if plan["id"] != "gulf-kwd"]
    smaller = tmp_path / "catalog.json"
    smaller.write_text(json.dumps(catalog))

    result = billing("catalog", "push", str(smaller))

    assert result.exit_code == 2
    assert "acct-5 (gulf-kwd)" in result.output
    assert "gulf-kwd" in local.config.catalog().plans_by_id


def test_send_puts_valid_lines_on_the_stream_and_names_the_refused_ones(local: LocalAws) -> None:
    push_examples()

    result = billing("send", str(EXAMPLES / "events.jsonl"), "--json")

    assert result.exit_code == 1  # two lines were refused
    report = json.loads(result.output)
    assert report["records"] == 34
    assert report["sent"] == 32
    assert report["not_sent"] == 0
    assert report["put_records_calls"] == 1
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [
        (30, "MALFORMED_JSON"),
        (33, "SCHEMA_INVALID"),
    ]
    lines = (EXAMPLES / "events.jsonl").read_bytes().split(b"\n")[:-1]
    expected = [line.removesuffix(b"\r") for n, line in enumerate(lines, 1) if n not in (30, 33)]
    records = on_stream()
    assert [record.data for record in records] == expected
    assert records[0].partition_key == "acct-1"


def test_send_then_invoices_run_issues_each_invoice_once(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_examples()
    billing("send", str(EXAMPLES / "events.jsonl"))
    rate_usage.service.cache_clear()  # bind the handler to this runtime's tables
    with monkeypatch.context() as clock:
        clock.setattr(rate_usage.service(), "_clock", lambda: DECEMBER)
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        delivery = deliver(on_stream(), invoke, MappingSettings(1000))
    assert (delivery.invocations, delivery.errors, delivery.sent_to_destination) == (1, 0, [])
    live = billing("usage", "acct-1", "--period", "2026-11", "--json")
    assert live.exit_code == 0, live.output
    usage = json.loads(live.output)
    assert usage["status"] == "open"
    assert usage["currency"] == "USD"
    charges = {c["description"]: c["amount"] for m in usage["meters"] for c in m["charges"]}
    assert charges["API requests"] == "6.07"
    assert usage["invoice_preview"]["total"] == "236.72"  # what the invoice will say
    clocks = iter([DECEMBER, DECEMBER + timedelta(minutes=5)])
    monkeypatch.setattr(operations, "utc_now", lambda: next(clocks))

    first = billing("invoices", "run", "--period", "2026-11", "--json")
    second = billing("invoices", "run", "--period", "2026-11", "--json")

    assert first.exit_code == 0, first.output
    run = json.loads(first.output)
    assert run["name"] == "invoice-run-2026-11-20261201T130000Z"
    assert run["input"] == {"now": "2026-12-01T13:00:00Z", "period": "2026-11"}
    assert run["status"] == "SUCCEEDED"
    assert run["report"]["issued"] == 6
    assert run["report"]["emailed"] == 6
    assert second.exit_code == 0, second.output
    again = json.loads(second.output)
    assert again["name"] == "invoice-run-2026-11-20261201T130500Z"
    assert (again["report"]["issued"], again["report"]["skipped"]) == (0, 6)
    assert len(local.sent_emails()) == 6
    closed = json.loads(billing("usage", "acct-1", "--period", "2026-11", "--json").output)
    assert (closed["status"], closed["invoice_preview"]["total"]) == ("closed", "236.72")


def test_accounts_push_hints_each_account_and_reindex_rebuilds_lost_hints(
    local: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the examples pushed on 1 December
    monkeypatch.setattr(operations, "utc_now", lambda: DECEMBER)
    push_examples()
    ids = [f"acct-{n}" for n in range(1, 7)]
    hints = DueHints(local.dynamodb, local.tables[LEDGER_TABLE.env_var])
    pushed = hints.get_many(ids)
    # THEN each has its due hint: acct-1 from its start (10 October), acct-2 from its start
    # (16 November), the others, without a start, at the latest period ended, November
    assert {account_id: str(hint.period) for account_id, hint in pushed.items()} == {
        "acct-1": "2026-10",
        **dict.fromkeys(ids[1:], "2026-11"),
    }

    # WHEN the hints are lost (as on a deployment older than the index) and rebuilt
    for account_id, hint in pushed.items():
        assert hints.delete(account_id, hint)
    result = billing("invoices", "reindex", "--now", "2026-12-01T13:00:00Z", "--json")

    # THEN every account has its hint again
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "stack": "UsageBilling-local",
        "accounts": 6,
        "hints_written": 6,
    }
    assert hints.get_many(ids) == pushed


def test_usage_of_an_unknown_account_says_so(local: LocalAws) -> None:
    push_examples()

    result = billing("usage", "acct-404")

    assert result.exit_code == 2
    assert "account 'acct-404' is not known" in result.output


def test_a_bad_period_is_refused_before_anything_starts(local: LocalAws) -> None:
    result = billing("invoices", "run", "--period", "2026-13")

    assert result.exit_code == 2
    assert "2026-13" in result.output


def test_invoices_run_without_its_workflow_says_so_instead_of_a_traceback(
    local: LocalAws,
) -> None:
    # GIVEN a deployment whose invoice workflow is gone
    push_examples()
    local.sfn.delete_state_machine(stateMachineArn=local.state_machine)

    # WHEN an invoice run is started
    result = billing("invoices", "run", "--period", "2026-11", "--now", "2026-12-01T13:00:00Z")

    # THEN the command names what failed, as an error (exit 2), with no stack trace
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    words = " ".join(result.output.split())  # the console wraps long lines
    assert "error: cannot start the invoice run: start execution" in words
    assert "invoice-run-2026-11-20261201T130000Z: StateMachineDoesNotExist" in words


def test_no_stack_at_the_endpoint_says_so(local: LocalAws) -> None:
    result = billing("--stack", "UsageBilling-prod", "catalog", "push", "x.yaml")

    assert result.exit_code == 2
    assert "no stack UsageBilling-prod" in result.output


def test_an_unreachable_endpoint_says_so() -> None:
    result = billing("send", str(EXAMPLES / "events.jsonl"), "--endpoint-url", "http://127.0.0.1:9")

    assert result.exit_code == 2
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_missing_credentials_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    result = billing("invoices", "run")

    assert result.exit_code == 2
    assert "no AWS credentials found" in result.output
    assert "--endpoint-url" in result.output
