"""The warehouse's rows, read from where the pipeline keeps its data (docs/warehouse.md):
the raw archive, the ledgers' usage by day, the invoice documents and the quarantine.

What each table holds is what its source holds at the moment of reading, whole: a run
writes every partition again (`billing query` locally), so a table never mixes two
readings of one source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.credit_notes import NUMBER_KEYS
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
    correction_rows,
    daily_usage_rows,
    invoice_rows,
    raw_usage_row,
    rejected_row,
)
from billing.warehouse.tables import (
    CORRECTION_LINES,
    CORRECTIONS,
    DAILY_USAGE,
    INVOICE_LINES,
    INVOICES,
    RAW_USAGE,
    REJECTED_RECORDS,
    WarehouseTable,
)

# Invoice documents lie at invoices/<account>/<period>/<number>.json (billing.store.documents);
# credit notes and adjustment invoices lie beside them.
INVOICES_PREFIX: Final = document_key("", "", "", "json").split("/", 1)[0] + "/"
_INVOICE_NUMBER: Final = "invoice_number"


# A document's row and its lines' rows, from its JSON and its plan on the period's first day.
DocumentRows = Callable[[Mapping[str, Any], str | None], tuple[Row, list[Row]]]


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
            INVOICES.name: lambda: self._documents(invoice_rows, is_invoice)[0],
            INVOICE_LINES.name: lambda: self._documents(invoice_rows, is_invoice)[1],
            CORRECTIONS.name: lambda: self._documents(correction_rows, is_correction)[0],
            CORRECTION_LINES.name: lambda: self._documents(correction_rows, is_correction)[1],
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
            yield quarantine_row(json.loads(self.quarantine.get(key)))

    def _documents(
        self, rows: DocumentRows, wanted: Callable[[Mapping[str, Any]], bool]
    ) -> tuple[list[Row], list[Row]]:
        """The rows of the invoice bucket's documents of one sort (invoices, or credit
        notes and adjustment invoices) and of their lines."""
        catalog = self.config.catalog()
        phases = {account.id: Phases(account, catalog) for account in self.config.all_accounts()}
        documents: list[Row] = []
        lines: list[Row] = []
        for key in self.invoices.keys(INVOICES_PREFIX):
            if not key.endswith(".json"):
                continue
            document = json.loads(self.invoices.get(key))
            if not wanted(document):
                continue
            head, its_lines = rows(document, plan_of(phases, document))
            documents.append(head)
            lines.extend(its_lines)
        return documents, lines


def plan_of(phases: Mapping[str, Phases], document: Mapping[str, Any]) -> str | None:
    """The plan an invoice's account was on the first day of its period (None for an
    account no longer stored)."""
    account = phases.get(document["account_id"])
    if account is None:
        return None
    return account.plan_on(Period.parse(document["period"]).first_day).id


def quarantine_row(document: Mapping[str, Any]) -> Row:
    """A quarantine document's row, with the account and event ids its record names."""
    raw = document.get("raw")
    account_id, event_id = record_fields(raw.encode()) if raw else (None, None)
    return rejected_row(document, account_id, event_id)


def is_correction(document: Mapping[str, Any]) -> bool:
    """A credit note's or an adjustment invoice's document."""
    return _INVOICE_NUMBER in document and any(key in document for key in NUMBER_KEYS.values())


def is_invoice(document: Mapping[str, Any]) -> bool:
    """An invoice's document: not a credit note's nor an adjustment invoice's, which lie
    beside it and name the invoice they correct (`invoice_number`) under numbers of their
    own."""
    return _INVOICE_NUMBER in document and not any(key in document for key in NUMBER_KEYS.values())


def table_rows(sources: WarehouseSources, tables: Sequence[WarehouseTable]) -> dict[str, list[Row]]:
    return {table.name: sources.rows(table) for table in tables}
