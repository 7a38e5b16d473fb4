"""The warehouse on this machine (docs/warehouse.md): the tables' Parquet files written
with pyarrow, in the layout the Glue tables read on AWS (`warehouse/<table>/dt=YYYY-MM-DD/`),
and queried with DuckDB under the Glue tables' names.

Decimal columns stay DECIMAL(38,12) from the rows' `Decimal`s to the query's answer: pyarrow
refuses a value that does not fit exactly, and DuckDB sums decimals as decimals.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from billing.core.money import plain_quantity
from billing.warehouse.export import WarehouseSources
from billing.warehouse.rows import Row
from billing.warehouse.tables import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    PARTITION_KEY,
    TABLES,
    ColumnType,
    WarehouseTable,
)

_ARROW_TYPES: Final[Mapping[ColumnType, pa.DataType]] = {
    "string": pa.string(),
    "decimal": pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "bigint": pa.int64(),
}
_DUCKDB_TYPES: Final[Mapping[ColumnType, str]] = {
    "string": "VARCHAR",
    "decimal": f"DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE})",
    "timestamp": "TIMESTAMPTZ",
    "bigint": "BIGINT",
}
_PART: Final = "part-00000.parquet"

# The three questions docs/warehouse.md answers, as they run on Athena and on DuckDB alike.
# On AWS the tables are appended to at least once (a row may come twice): each query reads
# a row once by what identifies it (docs/warehouse.md, "Reading each row once").
EXAMPLE_QUERIES: Final[Mapping[str, str]] = {
    # Net of corrections: an invoice's lines, plus its credit notes' and adjustments' lines
    # (signed by their effect), add up to the invoice as it stands.
    "revenue-by-plan": (
        "SELECT plan_id, period, currency, "
        "CAST(SUM(amount) AS DECIMAL(38,12)) AS revenue "
        "FROM (SELECT DISTINCT invoice_number AS document, line_number, plan_id, period, "
        "currency, amount FROM invoice_lines "
        "UNION ALL "
        "SELECT DISTINCT document_number, line_number, plan_id, period, currency, "
        "amount_change FROM correction_lines) AS lines "
        "GROUP BY plan_id, period, currency "
        "ORDER BY period, plan_id, currency"
    ),
    "top-accounts-by-meter": (
        "SELECT account_id, CAST(SUM(quantity) AS DECIMAL(38,12)) AS quantity "
        "FROM (SELECT DISTINCT account_id, period, meter, phase, dt, quantity "
        "FROM daily_usage "
        "WHERE meter = 'api_requests' AND dt >= '2026-11-01' AND dt < '2026-12-01') AS days "
        "GROUP BY account_id "
        "ORDER BY quantity DESC, account_id "
        "LIMIT 10"
    ),
    "rejected-by-reason-by-day": (
        "SELECT dt AS day, reason, "
        "COUNT(DISTINCT shard_id || '/' || sequence_number) AS records "
        "FROM rejected_records "
        "GROUP BY dt, reason "
        "ORDER BY dt, reason"
    ),
}


def arrow_schema(table: WarehouseTable) -> pa.Schema:
    """The table's columns as Parquet holds them (the partition is in the path, not the file)."""
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in table.columns])


def write_table(directory: Path, table: WarehouseTable, rows: Sequence[Row]) -> list[Path]:
    """The table's partitions written afresh under `directory`/warehouse/<table>/: what was
    there before is removed first, so a refresh never keeps a partition its source lost."""
    root = directory / table.prefix
    if root.exists():
        shutil.rmtree(root)
    by_day: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_day[row[PARTITION_KEY]].append(row)
    schema = arrow_schema(table)
    written = []
    for day in sorted(by_day):
        columns = {name: [row[name] for row in by_day[day]] for name in table.column_names}
        partition = root / f"{PARTITION_KEY}={day}"
        partition.mkdir(parents=True)
        path = partition / _PART
        pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
        written.append(path)
    return written


def build(directory: Path, sources: WarehouseSources) -> dict[str, int]:
    """Every table written from its sources; how many rows each holds."""
    counts = {}
    for table in TABLES:
        rows = sources.rows(table)
        write_table(directory, table, rows)
        counts[table.name] = len(rows)
    return counts


def connect(directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table over its Parquet files (`dt` a string,
    as the Glue tables declare it); a table with no files yet is an empty table."""
    connection = duckdb.connect(":memory:")
    for table in TABLES:
        files = directory / table.prefix
        if any(files.glob(f"{PARTITION_KEY}=*/*.parquet")):
            pattern = str(files / f"{PARTITION_KEY}=*" / "*.parquet").replace("'", "''")
            connection.execute(
                f"CREATE VIEW {table.name} AS SELECT * FROM read_parquet('{pattern}', "
                f"hive_partitioning = true, hive_types = {{'{PARTITION_KEY}': VARCHAR}})"
            )
        else:
            columns = [f"{c.name} {_DUCKDB_TYPES[c.type]}" for c in table.columns]
            columns.append(f"{PARTITION_KEY} VARCHAR")
            connection.execute(f"CREATE TABLE {table.name} ({', '.join(columns)})")
    return connection


def query(directory: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The query's column names and rows, values as DuckDB gives them (Decimal for decimals)."""
    with connect(directory) as connection:
        cursor = connection.execute(sql)
        names = [column[0] for column in cursor.description or ()]
        return names, cursor.fetchall()


def plain(value: Any) -> Any:
    """A value for JSON: decimals as plain strings without the scale's trailing zeros
    (never floats), instants in ISO 8601."""
    if isinstance(value, Decimal):
        return plain_quantity(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
