"""The warehouse's rows, read from where the pipeline keeps its data (docs/warehouse.md):
the raw archive, the ledgers' usage by day, the invoice documents and the quarantine.

What each table holds is what its source holds at the moment of reading, whole: a run
writes every partition again (`billing query` locally), so a table never mixes two
readings of one source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.core.usage import MeterUsage
from billing.rating.archive import read_archive
from billing.rating.ledger import AccountLedger
from billing.store.archive_objects import RAW_PREFIX
from billing.store.bucket_objects import BucketObjects
from billing.store.documents import document_key
from billing.store.quarantine import QUARANTINE_PREFIX
from billing.store.quarantine_index import record_fields
from billing.warehouse.rows import (
    Row,
    daily_usage_rows,
    invoice_rows,
    raw_usage_row,
    rejected_row,
)
from billing.warehouse.tables import (
    DAILY_USAGE,
    INVOICE_LINES,
    INVOICES,
    RAW_USAGE,
    REJECTED_RECORDS,
    WarehouseTable,
)

# Invoice documents lie at invoices/<account>/<period>/<number>.json (billing.store.documents);
# credit notes lie beside them and are not invoices.
_INVOICES_PREFIX: Final = document_key("", "", "", "json").split("/", 1)[0] + "/"
_INVOICE_NUMBER: Final = "invoice_number"
_CREDIT_NOTE_NUMBER: Final = "credit_note_number"


class Ledgers(Protocol):
    def load(
        self, account_ids: Iterable[str], *, fresh: bool = False
    ) -> dict[str, AccountLedger]: ...
    def open_periods(self, ledger: AccountLedger) -> set[str]: ...
    def period_usage(self, ledger: AccountLedger, period: str) -> dict[str, MeterUsage]: ...
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]: ...


class Config(Protocol):
    def catalog(self) -> Catalog: ...
    def all_accounts(self) -> list[Account]: ...


@dataclass(frozen=True)
class WarehouseSources:
    archive: BucketObjects
    invoices: BucketObjects
    quarantine: BucketObjects
    ledgers: Ledgers
    config: Config

    def rows(self, table: WarehouseTable) -> list[Row]:
        readers = {
            RAW_USAGE.name: self.raw_usage,
            DAILY_USAGE.name: self.daily_usage,
            INVOICES.name: lambda: self._invoices()[0],
            INVOICE_LINES.name: lambda: self._invoices()[1],
            REJECTED_RECORDS.name: self.rejected_records,
        }
        return list(readers[table.name]())

    def raw_usage(self) -> Iterator[Row]:
        """Every archived record, object by object (a repeated delivery comes twice)."""
        for key in self.archive.keys(RAW_PREFIX):
            for record in read_archive(self.archive.get(key)):
                yield raw_usage_row(record)

    def daily_usage(self) -> Iterator[Row]:
        """Every known account's periods, open (as of their ledger and its log) and closed
        (as they were when invoiced)."""
        accounts = self.config.all_accounts()
        ledgers = self.ledgers.load([account.id for account in accounts], fresh=True)
        for account in accounts:
            ledger = ledgers[account.id]
            for period in sorted(self.ledgers.open_periods(ledger) - ledger.closed):
                usage = self.ledgers.period_usage(ledger, period)
                yield from daily_usage_rows(account.id, period, usage, "open")
            for period in sorted(ledger.closed):
                usage = self.ledgers.archived_usage(account.id, period)
                yield from daily_usage_rows(account.id, period, usage, "closed")

    def rejected_records(self) -> Iterator[Row]:
        for key in self.quarantine.keys(QUARANTINE_PREFIX):
            document = json.loads(self.quarantine.get(key))
            raw = document.get("raw")
            account_id, event_id = record_fields(raw.encode()) if raw else (None, None)
            yield rejected_row(document, account_id, event_id)

    def _invoices(self) -> tuple[list[Row], list[Row]]:
        catalog = self.config.catalog()
        phases = {account.id: Phases(account, catalog) for account in self.config.all_accounts()}
        invoices: list[Row] = []
        lines: list[Row] = []
        for key in self.invoices.keys(_INVOICES_PREFIX):
            if not key.endswith(".json"):
                continue
            document = json.loads(self.invoices.get(key))
            if _INVOICE_NUMBER not in document or _CREDIT_NOTE_NUMBER in document:
                continue
            account = phases.get(document["account_id"])
            first_day = Period.parse(document["period"]).first_day
            plan_id = account.plan_on(first_day).id if account is not None else None
            invoice, its_lines = invoice_rows(document, plan_id)
            invoices.append(invoice)
            lines.extend(its_lines)
        return invoices, lines


def table_rows(sources: WarehouseSources, tables: Sequence[WarehouseTable]) -> dict[str, list[Row]]:
    return {table.name: sources.rows(table) for table in tables}
