"""The warehouse's tables, declared once (docs/warehouse.md).

The CDK stack makes the Glue tables from these declarations (stacks/warehouse.py), the local
writer makes the Parquet schema from them (billing_cli.warehouse), and the rows
(billing.warehouse.rows) carry exactly these columns. Every table is partitioned by `dt`
(`YYYY-MM-DD`, a string: Hive's layout, `<prefix>dt=2026-12-01/`), and its files lie under
`warehouse/<table>/` in the warehouse bucket.

Money and quantities are DECIMAL(38,12), never floating point: the contract allows a
quantity up to 1e15 with 12 digits after the point, so 38 digits with 12 after it hold
every quantity and every amount exactly (26 before the point), and a value that would not
fit is refused when the file is written rather than rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ColumnType = Literal["string", "decimal", "timestamp", "bigint"]

DECIMAL_PRECISION: Final = 38
DECIMAL_SCALE: Final = 12
PARTITION_KEY: Final = "dt"
WAREHOUSE_PREFIX: Final = "warehouse/"
GLUE_DATABASE: Final = "usage_billing"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    comment: str

    def glue_type(self) -> str:
        """The column's type as Glue and Athena spell it."""
        if self.type == "decimal":
            return f"decimal({DECIMAL_PRECISION},{DECIMAL_SCALE})"
        return self.type


@dataclass(frozen=True, slots=True)
class WarehouseTable:
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_comment: str

    @property
    def prefix(self) -> str:
        """Where its files lie in the warehouse bucket (and under the local directory)."""
        return f"{WAREHOUSE_PREFIX}{self.name}/"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def _s(name: str, comment: str) -> Column:
    return Column(name, "string", comment)


def _d(name: str, comment: str) -> Column:
    return Column(name, "decimal", comment)


def _t(name: str, comment: str) -> Column:
    return Column(name, "timestamp", comment)


def _i(name: str, comment: str) -> Column:
    return Column(name, "bigint", comment)


RAW_USAGE: Final = WarehouseTable(
    "raw_usage",
    "Every record the usage stream carried, as the raw archive holds it (a record Firehose "
    "delivered twice is here twice: one stream position is one record)",
    (
        _s("shard_id", "the record's shard"),
        _s("sequence_number", "its sequence number (up to 129 digits: a string)"),
        _i("subsequence_number", "its part of a KPL aggregate, 0 otherwise"),
        _s("partition_key", "the partition key it was put with"),
        _t("arrival_time", "when the stream took it (UTC)"),
        _s("record", "its bytes as UTF-8 text; null when they are not UTF-8"),
        _s("record_base64", "its bytes in base64 when they are not UTF-8"),
        _s("event_id", "the event's id, when the record decodes as an event"),
        _s("account_id", "the event's account"),
        _s("meter", "the event's meter"),
        _d("quantity", "the event's quantity, exact"),
        _t("event_time", "the event's timestamp (UTC, to the microsecond)"),
        _s("dimensions", "the event's dimensions as a JSON object"),
        _s("decode_problem", "why the record is no event (a rejection reason), else null"),
    ),
    "the UTC day the stream took the record",
)
DAILY_USAGE: Final = WarehouseTable(
    "daily_usage",
    "Each account's usage per meter and local day, as the rater keeps it beside the totals",
    (
        _s("account_id", "the account"),
        _s("period", "its billing period, YYYY-MM"),
        _s("meter", "the meter"),
        _s("phase", "the first local day of the plan phase that began inside the period, else ''"),
        _s("aggregation", "the meter's aggregation: only sum, count, unique_count add up"),
        _d("quantity", "the day's aggregate (a max meter: the day's peak)"),
        _s("state", "open (the period may still move) or closed (invoiced)"),
    ),
    "the local day in the account's time zone",
)
INVOICES: Final = WarehouseTable(
    "invoices",
    "Every issued invoice, as its JSON document says",
    (
        _s("invoice_number", "the invoice's number"),
        _s("account_id", "the account"),
        _s("period", "the billing period, YYYY-MM"),
        _s("plan_id", "the plan in force on the period's first day"),
        _s("currency", "ISO 4217"),
        _t("issued_at", "when it was issued (UTC)"),
        _d("subtotal", "the sum of its lines"),
        _d("tax", "its tax"),
        _d("total", "subtotal + tax"),
        _d("credits_applied", "prepaid credits drawn"),
        _d("amount_due", "total - credits_applied"),
    ),
    "the UTC day it was issued",
)
INVOICE_LINES: Final = WarehouseTable(
    "invoice_lines",
    "Every line of every issued invoice",
    (
        _s("invoice_number", "the invoice's number"),
        _i("line_number", "the line's place on the invoice, from 1"),
        _s("account_id", "the account"),
        _s("period", "the billing period, YYYY-MM"),
        _s("plan_id", "the plan whose phase the line prices, else the plan on the first day"),
        _s("currency", "ISO 4217"),
        _s("kind", "usage, fixed, minimum or discount"),
        _s("meter", "the meter a usage line prices, else null"),
        _s("description", "the line's description"),
        _d("quantity", "the line's quantity"),
        _d("amount", "the line's amount (in the currency's minor units)"),
    ),
    "the UTC day the invoice was issued",
)
CORRECTIONS: Final = WarehouseTable(
    "corrections",
    "Every credit note and adjustment invoice, as its JSON document says, its amounts signed "
    "by their effect on what the invoice charges (a credit note's negative)",
    (
        _s("document_number", "the document's number (CN-... or ADJ-...)"),
        _s("kind", "credit_note or adjustment"),
        _s("invoice_number", "the invoice it corrects"),
        _s("account_id", "the account"),
        _s("period", "the corrected invoice's billing period, YYYY-MM"),
        _s("plan_id", "the plan in force on the period's first day"),
        _s("currency", "ISO 4217"),
        _t("issued_at", "when it was issued (UTC)"),
        _s("correction", "void, or the re-rate's key"),
        _d("subtotal_change", "what it changes the invoice's subtotal by"),
        _d("tax_change", "what it changes the invoice's tax by"),
        _d("total_change", "subtotal_change + tax_change"),
        _d("invoice_total_after", "what the invoice comes to after it"),
    ),
    "the UTC day it was issued",
)
CORRECTION_LINES: Final = WarehouseTable(
    "correction_lines",
    "Every line of every credit note and adjustment invoice, signed by its effect on what "
    "the invoice charges",
    (
        _s("document_number", "the document's number"),
        _i("line_number", "the line's place on the document, from 1"),
        _s("invoice_number", "the invoice it corrects"),
        _i("invoice_line_number", "the invoice line it corrects, from 1; null for a line added"),
        _s("account_id", "the account"),
        _s("period", "the corrected invoice's billing period, YYYY-MM"),
        _s("plan_id", "the plan whose phase the line prices, else the plan on the first day"),
        _s("currency", "ISO 4217"),
        _s("kind", "usage, fixed, minimum or discount"),
        _s("meter", "the meter a usage line prices, else null"),
        _s("description", "the line's description"),
        _d("quantity_change", "what it changes the line's quantity by"),
        _d("amount_change", "what it changes the line's amount by"),
    ),
    "the UTC day the document was issued",
)
REJECTED_RECORDS: Final = WarehouseTable(
    "rejected_records",
    "Every record the rater rejected, as the quarantine keeps it",
    (
        _s("shard_id", "the record's shard"),
        _s("sequence_number", "its sequence number"),
        _s("reason", "the rejection's reason (CONTRACT.md section 1)"),
        _s("message", "what was wrong"),
        _t("rejected_at", "when the rater rejected it (UTC)"),
        _s("account_id", "the account the record names, when it names one"),
        _s("event_id", "the event id the record names, when it names one"),
    ),
    "the UTC day it was rejected",
)

TABLES: Final = (
    RAW_USAGE,
    DAILY_USAGE,
    INVOICES,
    INVOICE_LINES,
    CORRECTIONS,
    CORRECTION_LINES,
    REJECTED_RECORDS,
)
