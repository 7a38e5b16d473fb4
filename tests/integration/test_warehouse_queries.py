"""The warehouse on the local runtime (docs/warehouse.md): after `billing run` of the
examples (tests/integration/test_archive_replay.py's `examples_run`: rated, archived with
one object delivered twice, invoiced for November 2026), `billing query` builds the tables'
Parquet files from the runtime's buckets and ledgers, and the three documented queries give
the run's known totals exactly, as decimals (tests/support/examples.py has the arithmetic
of every invoice)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from billing.warehouse.tables import DAILY_USAGE, INVOICES, TABLES
from billing_cli import warehouse
from billing_cli.commands.warehouse import LOCAL_STACK
from billing_cli.local.runtime import REGION, STACK
from billing_cli.main import app
from tests.integration.test_archive_replay import examples_run

pytestmark = pytest.mark.integration

D = Decimal
DOCS = Path(__file__).resolve().parents[2] / "docs" / "warehouse.md"


@dataclass
class Built:
    directory: Path
    output: str  # `billing query --json`'s answer to the first example


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    directory = tmp_path_factory.mktemp("warehouse")
    with examples_run():
        result = CliRunner().invoke(
            app, ["query", "--example", "revenue-by-plan", "--dir", str(directory), "--json"]
        )
        assert result.exit_code == 0, result.output
        yield Built(directory, result.output)


def answer(built: Built, name: str) -> list[tuple[Any, ...]]:
    _, rows = warehouse.query(built.directory, warehouse.EXAMPLE_QUERIES[name])
    return rows


def test_revenue_by_plan_by_month_is_the_invoices_subtotals_exactly(built: Built) -> None:
    # The sum of each plan's invoice lines (before tax), per period and currency:
    #   pro, USD: acct-1 197.27 + acct-2 50.00 (24.60 of lines + the 25.40 minimum) = 247.27
    #   starter-eur, EUR: acct-3 11.27 + acct-6 6.45 = 17.72
    #   business-jpy, JPY: acct-4 12501 + 7200 + 5000 = 24701
    #   gulf-kwd, KWD: acct-5 19.500 + 0.494 = 19.994
    rows = answer(built, "revenue-by-plan")
    assert rows == [
        ("business-jpy", "2026-11", "JPY", D("24701")),
        ("gulf-kwd", "2026-11", "KWD", D("19.994")),
        ("pro", "2026-11", "USD", D("247.27")),
        ("starter-eur", "2026-11", "EUR", D("17.72")),
    ]
    assert all(type(row[3]) is Decimal for row in rows)


def test_the_command_prints_the_totals_as_decimal_strings(built: Built) -> None:
    document = json.loads(built.output)
    assert document["columns"] == ["plan_id", "period", "currency", "revenue"]
    assert [row["revenue"] for row in document["rows"]] == ["24701", "19.994", "247.27", "17.72"]


def test_top_accounts_by_api_requests_in_november_add_up_the_rated_events(built: Built) -> None:
    # api_requests (a sum meter) per account over November's local days:
    #   acct-1 1,200,000 + 334,000 = 1,534,000 (a1-api-002's resend is a duplicate)
    #   acct-2 500,000 + 250,000 = 750,000 (a2-api-early was NOT_SUBSCRIBED)
    #   acct-4 150,002; acct-3 123,457; acct-5 6e4 = 60,000
    #   acct-6 20,000 (1 Nov local) + 10,000 = 30,000 (a6-api-late was NOT_SUBSCRIBED)
    rows = answer(built, "top-accounts-by-meter")
    assert rows == [
        ("acct-1", D(1534000)),
        ("acct-2", D(750000)),
        ("acct-4", D(150002)),
        ("acct-3", D(123457)),
        ("acct-5", D(60000)),
        ("acct-6", D(30000)),
    ]
    assert all(type(row[1]) is Decimal for row in rows)


def test_rejected_records_by_reason_by_day_count_the_quarantine(built: Built) -> None:
    # The 7 rejected records (tests/support/examples.py), all rejected by the rater at the
    # run's clock, 2026-12-01T06:00Z: NOT_SUBSCRIBED twice (a2-api-early, a6-api-late),
    # every other reason once.
    assert answer(built, "rejected-by-reason-by-day") == [
        ("2026-12-01", "FUTURE_TIMESTAMP", 1),
        ("2026-12-01", "MALFORMED_JSON", 1),
        ("2026-12-01", "NOT_SUBSCRIBED", 2),
        ("2026-12-01", "SCHEMA_INVALID", 1),
        ("2026-12-01", "UNKNOWN_ACCOUNT", 1),
        ("2026-12-01", "UNKNOWN_METER", 1),
    ]


def test_rows_delivered_twice_change_no_answer(built: Built, tmp_path: Path) -> None:
    # GIVEN every file of every table there twice, as Firehose may deliver it on AWS
    shutil.copytree(built.directory, tmp_path, dirs_exist_ok=True)
    for part in sorted(tmp_path.rglob("*.parquet")):
        shutil.copy(part, part.with_name(f"again-{part.name}"))
    # THEN each example reads each row once: the same answers
    for name, sql in warehouse.EXAMPLE_QUERIES.items():
        assert warehouse.query(tmp_path, sql) == warehouse.query(built.directory, sql), name


def test_the_raw_usage_table_holds_every_archived_delivery(built: Built) -> None:
    # 34 records, their object archived twice (as Firehose may deliver it): 68 rows at 34
    # positions; bad-1 (cut short) and bad-4 (quantity "-5") decode to no event.
    _, rows = warehouse.query(
        built.directory,
        "SELECT COUNT(*), COUNT(DISTINCT shard_id || '/' || sequence_number), "
        "COUNT(DISTINCT event_id), SUM(CASE WHEN decode_problem IS NULL THEN 0 ELSE 1 END) "
        "FROM raw_usage",
    )
    # 34 records, of which bad-1 names no event id it decodes to, bad-4 neither, and
    # a1-api-002 is there twice (the resend): 34 - 2 - 1 = 31 distinct event ids.
    assert rows == [(68, 34, 31, 4)]
    _, quantities = warehouse.query(
        built.directory,
        "SELECT quantity FROM raw_usage WHERE event_id = 'a5-sto' ORDER BY shard_id LIMIT 1",
    )
    assert quantities == [(D("12345.5"),)]


def test_each_partition_is_a_day(built: Built) -> None:
    # acct-1's October seat (31 Oct local) and November's days; invoices on their issue day.
    for table, expected in ((DAILY_USAGE, "2026-10-31"), (INVOICES, "2026-12-01")):
        assert (built.directory / table.prefix / f"dt={expected}").is_dir()
    names = {path.name for path in (built.directory / INVOICES.prefix).iterdir()}
    assert names == {"dt=2026-12-01"}


def test_a_quantity_the_decimal_columns_cannot_hold_exactly_is_refused(tmp_path: Path) -> None:
    # 13 digits after the point: DECIMAL(38,12) would have to round it.
    row = {
        "account_id": "acct-1",
        "period": "2026-11",
        "meter": "api_requests",
        "phase": "",
        "aggregation": "sum",
        "quantity": D("0.0000000000001"),
        "state": "open",
        "dt": date(2026, 11, 3).isoformat(),
    }
    with pytest.raises(pa.ArrowInvalid):
        warehouse.write_table(tmp_path, DAILY_USAGE, [row])


def test_an_empty_table_can_be_queried(tmp_path: Path) -> None:
    assert warehouse.query(tmp_path, "SELECT COUNT(*) FROM invoice_lines")[1] == [(0,)]


def test_docs_show_the_example_queries_as_they_run() -> None:
    text = " ".join(DOCS.read_text().split())
    for sql in warehouse.EXAMPLE_QUERIES.values():
        assert sql in text, sql
    documented = set(re.findall(r"`billing query --example ([a-z-]+)`", text))
    assert documented == set(warehouse.EXAMPLE_QUERIES)
    assert {table.name for table in TABLES} <= set(re.findall(r"`([a-z_]+)`", text))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either a query or --example"),
        (["SELECT 1", "--example", "revenue-by-plan"], "give either a query or --example"),
        (["--example", "profit"], "no example 'profit'"),
        (["SELECT nothing FROM invoices"], "the query failed"),
    ],
)
def test_a_query_it_cannot_run_is_refused_with_why(
    built: Built, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["query", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_the_answer_is_printed_as_a_table(built: Built) -> None:
    result = CliRunner().invoke(
        app, ["query", "SELECT invoice_number, total FROM invoices ORDER BY invoice_number"]
    )
    assert result.exit_code == 0, result.output
    assert "invoice_number" in result.output
    # acct-1's invoice, the first numbered: 197.27 + 39.45 = 236.72
    assert "INV-2026-000001 │ 236.72" in result.output


def test_a_deployed_stack_is_read_only_when_asked_for(built: Built) -> None:
    # GIVEN a stack besides the local runtime's, as a deployed one would be
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {"Resources": {"Nothing": {"Type": "AWS::SQS::Queue"}}}
    cloudformation.create_stack(StackName="UsageBilling-prod", TemplateBody=json.dumps(template))
    try:
        # WHEN it is queried THEN the command refuses to download its whole archive
        result = CliRunner().invoke(app, ["query", "SELECT 1", "--stack", "UsageBilling-prod"])
        assert result.exit_code == 2
        assert "is not the local runtime" in result.output
        assert "--any-stack" in result.output
    finally:
        cloudformation.delete_stack(StackName="UsageBilling-prod")
    # ... and the local runtime's is read without asking (the fixture's own run)
    assert LOCAL_STACK == STACK
