"""`billing query`: SQL over the warehouse's tables (docs/warehouse.md), built afresh from a
deployment's buckets and ledgers (the local runtime's, with `--endpoint-url`) and queried
with DuckDB, as Athena queries the same tables on AWS."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import duckdb
import typer
from rich.table import Table

from billing.rating.archive import ArchiveCorrupt
from billing.settings import STACK_NAME_PREFIX
from billing.store.errors import StoreError
from billing_cli import warehouse
from billing_cli.commands.common import (
    EndpointOption,
    JsonOption,
    RegionOption,
    StackOption,
    Target,
    console,
    fail,
)

# The local runtime's stack (billing_cli.local.runtime), which this command reads by default.
LOCAL_STACK = f"{STACK_NAME_PREFIX}-local"
SqlArgument = Annotated[
    str | None,
    typer.Argument(
        help="the query; its tables: raw_usage, daily_usage, invoices, invoice_lines, "
        "rejected_records",
        show_default=False,
    ),
]
ExampleOption = Annotated[
    str | None,
    typer.Option(
        "--example",
        help=f"one of docs/warehouse.md's queries instead: {', '.join(warehouse.EXAMPLE_QUERIES)}",
        show_default=False,
    ),
]
AnyStackOption = Annotated[
    bool,
    typer.Option(
        "--any-stack",
        help="read a deployed stack too (every archived record, invoice and rejection is "
        "downloaded); without it, only the local runtime's: on AWS, query with Athena",
    ),
]
DirectoryOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="write the tables' Parquet files here and keep them; default: a temporary "
        "directory, removed afterwards",
        show_default=False,
    ),
]


def query(
    ctx: typer.Context,
    sql: SqlArgument = None,
    example: ExampleOption = None,
    directory: DirectoryOption = None,
    endpoint_url: EndpointOption = None,
    stack: StackOption = None,
    region: RegionOption = None,
    as_json: JsonOption = False,
    any_stack: AnyStackOption = False,
) -> None:
    """Run SQL over the usage and invoice tables, made afresh from the deployment's raw
    archive, ledgers, invoices and quarantine."""
    if (sql is None) == (example is None):
        raise fail("give either a query or --example")
    text = sql if sql is not None else warehouse.EXAMPLE_QUERIES.get(example or "")
    if text is None:
        raise fail(f"no example {example!r}; there are {', '.join(warehouse.EXAMPLE_QUERIES)}")
    deployment = Target().connect(ctx, endpoint_url=endpoint_url, stack=stack, region=region)
    if deployment.stack != LOCAL_STACK and not any_stack:
        raise fail(
            f"{deployment.stack} is not the local runtime: building the tables would download "
            "its whole archive. Query it with Athena (docs/warehouse.md), or give --any-stack"
        )
    with tempfile.TemporaryDirectory(prefix="billing-warehouse-") as scratch:
        where = directory or Path(scratch)
        try:
            warehouse.build(where, deployment.warehouse_sources())
        except (StoreError, ArchiveCorrupt) as error:
            raise fail(f"cannot read the deployment: {error}") from None
        try:
            names, rows = warehouse.query(where, text)
        except duckdb.Error as error:
            raise fail(f"the query failed: {error}") from None
    if as_json:
        answer = [dict(zip(names, map(warehouse.plain, row), strict=True)) for row in rows]
        console.print_json(json.dumps({"columns": names, "rows": answer}))
        return
    table = Table(*names)
    for row in rows:
        table.add_row(*("" if value is None else str(warehouse.plain(value)) for value in row))
    console.print(table)
