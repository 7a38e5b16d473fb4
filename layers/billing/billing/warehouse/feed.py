"""The warehouse's tables on AWS, but raw_usage: each row put to its table's delivery
stream once what it says is final (docs/warehouse.md). An invoice document stored in the
invoice bucket gives its `invoices` row, its `invoice_lines` and, its period being closed
then, the period's `daily_usage`; a credit note's or adjustment invoice's document its
`corrections` row and its `correction_lines`; a document kept in the quarantine gives its
`rejected_records` row. S3 tells of each new object at least once (through EventBridge),
so a row may be put twice: readers take rows by their key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.phases import Phases
from billing.core.usage import MeterUsage
from billing.store.bucket_objects import BucketObjects
from billing.store.quarantine import QUARANTINE_PREFIX
from billing.warehouse.export import (
    INVOICES_PREFIX,
    is_correction,
    is_invoice,
    plan_of,
    quarantine_row,
)
from billing.warehouse.rows import (
    Row,
    conversion_line,
    correction_rows,
    daily_usage_rows,
    invoice_rows,
)
from billing.warehouse.tables import (
    CORRECTION_LINES,
    CORRECTIONS,
    DAILY_USAGE,
    INVOICE_LINES,
    INVOICES,
    REJECTED_RECORDS,
    WarehouseTable,
)


class ClosedUsage(Protocol):
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]: ...


class Accounts(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...


class Rows(Protocol):
    def put(self, table: str, lines: Sequence[bytes]) -> None: ...


@dataclass(frozen=True)
class WarehouseFeed:
    invoice_bucket: str
    invoices: BucketObjects
    quarantine_bucket: str
    quarantine: BucketObjects
    ledgers: ClosedUsage
    config: Accounts
    streams: Rows

    def object_created(self, bucket: str, key: str) -> dict[str, int]:
        """The rows a new object gives, put to their tables' streams; how many per table
        (none for an object that is no document nor rejection: a PDF, a staged rejection)."""
        tables: Mapping[WarehouseTable, list[Row]] = {}
        if bucket == self.invoice_bucket and _is_json_under(key, INVOICES_PREFIX):
            tables = self._invoice_rows(json.loads(self.invoices.get(key)))
        elif bucket == self.quarantine_bucket and _is_json_under(key, QUARANTINE_PREFIX):
            tables = {REJECTED_RECORDS: [quarantine_row(json.loads(self.quarantine.get(key)))]}
        for table, rows in tables.items():
            if rows:
                lines = [conversion_line(row, table, partitioned=True) for row in rows]
                self.streams.put(table.name, lines)
        return {table.name: len(rows) for table, rows in tables.items()}

    def _invoice_rows(self, document: Mapping[str, Any]) -> dict[WarehouseTable, list[Row]]:
        """An invoice's rows, its lines' and its period's days; a credit note's or an
        adjustment invoice's rows and its lines'."""
        if not (is_invoice(document) or is_correction(document)):
            return {}
        account_id, period = str(document["account_id"]), str(document["period"])
        accounts = self.config.accounts([account_id])
        catalog = self.config.catalog()
        phases = {a.id: Phases(a, catalog) for a in accounts.values()}
        if is_correction(document):
            correction, its_lines = correction_rows(document, plan_of(phases, document))
            return {CORRECTIONS: [correction], CORRECTION_LINES: its_lines}
        invoice, lines = invoice_rows(document, plan_of(phases, document))
        usage = self.ledgers.archived_usage(account_id, period)
        return {
            INVOICES: [invoice],
            INVOICE_LINES: lines,
            DAILY_USAGE: daily_usage_rows(account_id, period, usage, "closed"),
        }


def _is_json_under(key: str, prefix: str) -> bool:
    return key.startswith(prefix) and key.endswith(".json")
