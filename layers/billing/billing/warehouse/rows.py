"""The warehouse's rows, made from what the pipeline keeps (pure: no AWS).

One function per source: an archived record (the raw archive), a period's usage (the
ledger's days), an invoice document (the invoice bucket), a quarantine document (the
quarantine bucket). Each row is a dict of exactly its table's columns plus `dt`, its
partition (billing.warehouse.tables); amounts and quantities are `Decimal`, instants aware
`datetime`s in UTC, never floats.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE, NUMBER_KEYS
from billing.core.events import Rejection, decode_record, parse_timestamp
from billing.core.money import subtract
from billing.core.periods import Period
from billing.core.phases import split_key
from billing.core.usage import MeterUsage
from billing.rating.archive import ArchivedRecord
from billing.warehouse.tables import PARTITION_KEY, RAW_USAGE, WarehouseTable

Row = dict[str, Any]
PeriodState = Literal["open", "closed"]
_PHASE_MARK: Final = "@"


def _dt(day: date) -> str:
    return day.isoformat()


def raw_usage_row(record: ArchivedRecord) -> Row:
    """One archived record: its position, its bytes, and the event they decode to (the
    rater's own decoding, without its judgement of the account, meter or clock)."""
    arrival = datetime.fromtimestamp(record.arrival_ms / 1000, UTC)
    try:
        text: str | None = record.data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    row: Row = {
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "subsequence_number": record.subsequence_number,
        "partition_key": record.partition_key,
        "arrival_time": arrival,
        "record": text,
        "record_base64": None if text is not None else base64.b64encode(record.data).decode(),
        "event_id": None,
        "account_id": None,
        "meter": None,
        "quantity": None,
        "event_time": None,
        "dimensions": None,
        "decode_problem": None,
        "dt": _dt(arrival.date()),
    }
    decoded = decode_record(record.data)
    if isinstance(decoded, Rejection):
        row["decode_problem"] = str(decoded.reason)
        return row
    row |= {
        "event_id": decoded.event_id,
        "account_id": decoded.account_id,
        "meter": decoded.meter,
        "quantity": decoded.quantity,
        "event_time": decoded.timestamp.at.astimezone(UTC),
        "dimensions": json.dumps(decoded.dimensions, sort_keys=True),
    }
    return row


def daily_usage_rows(
    account_id: str, period: str, usage: Mapping[str, MeterUsage], state: PeriodState
) -> list[Row]:
    """A period's usage per meter (and phase) and local day. A meter whose days were not
    kept (rated before they were, or past the period's budget for days) gives no rows."""
    billing_period = Period.parse(period)
    rows = []
    for key in sorted(usage):
        meter, mark = split_key(key)
        days = usage[key].days
        if not days:
            continue
        for day_of_month in sorted(days):
            day = date(billing_period.year, billing_period.month, day_of_month)
            rows.append(
                {
                    "account_id": account_id,
                    "period": period,
                    "meter": meter,
                    "phase": mark.removeprefix(_PHASE_MARK),
                    "aggregation": usage[key].aggregation,
                    "quantity": days[day_of_month].quantity,
                    "state": state,
                    "dt": _dt(day),
                }
            )
    return rows


def invoice_rows(document: Mapping[str, Any], plan_id: str | None) -> tuple[Row, list[Row]]:
    """An issued invoice's JSON document as its row and its lines' rows. `plan_id` is the
    account's plan on the period's first day; a line of a phase names its own plan."""
    issued_at = parse_timestamp(document["issued_at"]).at.astimezone(UTC)
    head = {
        "invoice_number": document["invoice_number"],
        "account_id": document["account_id"],
        "period": document["period"],
        "currency": document["currency"],
    }
    dt = _dt(issued_at.date())
    invoice = {
        **head,
        "plan_id": plan_id,
        "issued_at": issued_at,
        **{
            name: Decimal(document[name])
            for name in ("subtotal", "tax", "total", "credits_applied", "amount_due")
        },
        "dt": dt,
    }
    lines = [
        {
            **head,
            "line_number": number,
            "plan_id": line.get("plan", plan_id),
            "kind": line["kind"],
            "meter": line.get("meter"),
            "description": line["description"],
            "quantity": Decimal(line["quantity"]),
            "amount": Decimal(line["amount"]),
            "dt": dt,
        }
        for number, line in enumerate(document["lines"], start=1)
    ]
    return invoice, lines


def correction_rows(document: Mapping[str, Any], plan_id: str | None) -> tuple[Row, list[Row]]:
    """A credit note's or adjustment invoice's JSON document as its row and its lines' rows,
    every amount signed by its effect on what the invoice charges: a credit note's JSON
    holds what it credits (positive), so its values are negated; an adjustment's are what
    it charges, as they are. So invoice lines plus correction lines add up to the
    invoice as it stands."""
    kind = ADJUSTMENT if NUMBER_KEYS[ADJUSTMENT] in document else CREDIT_NOTE

    def signed(text: str) -> Decimal:
        value = Decimal(text)
        return subtract(Decimal(0), value) if kind == CREDIT_NOTE else value

    issued_at = parse_timestamp(document["issued_at"]).at.astimezone(UTC)
    head = {
        "document_number": document[NUMBER_KEYS[kind]],
        "invoice_number": document["invoice_number"],
        "account_id": document["account_id"],
        "period": document["period"],
        "currency": document["currency"],
    }
    dt = _dt(issued_at.date())
    subtotal, tax = signed(document["subtotal"]), signed(document["tax"])
    correction = {
        **head,
        "kind": kind,
        "plan_id": plan_id,
        "issued_at": issued_at,
        "correction": document["correction"],
        "subtotal_change": subtotal,
        "tax_change": tax,
        "total_change": signed(document["total"]),
        "invoice_total_after": Decimal(document["invoice_total_after"]),
        "dt": dt,
    }
    lines = [
        {
            **head,
            "line_number": number,
            "invoice_line_number": None
            if line["invoice_line"] is None
            else line["invoice_line"] + 1,
            "plan_id": line.get("plan", plan_id),
            "kind": line["kind"],
            "meter": line.get("meter"),
            "description": line["description"],
            "quantity_change": signed(line["quantity"]),
            "amount_change": signed(line["amount"]),
            "dt": dt,
        }
        for number, line in enumerate(document["lines"], start=1)
    ]
    return correction, lines


def _from_one(index: int | None) -> int | None:
    """A line's place counted from 1, as the invoice prints it (None stays None)."""
    return None if index is None else index + 1


def rejected_row(document: Mapping[str, Any], account_id: str | None, event_id: str | None) -> Row:
    """A quarantine document (billing.store.quarantine) as its row; the account and event
    ids are those its raw record names (billing.store.quarantine_index.record_fields)."""
    rejected_at = parse_timestamp(document["rejected_at"]).at.astimezone(UTC)
    return {
        "shard_id": document["shard_id"],
        "sequence_number": document["sequence_number"],
        "reason": document["reason"],
        "message": document["message"],
        "rejected_at": rejected_at,
        "account_id": account_id,
        "event_id": event_id,
        "dt": _dt(rejected_at.date()),
    }


def conversion_line(row: Row, table: WarehouseTable, *, partitioned: bool = False) -> bytes:
    """A row as Firehose's record format conversion reads it (Hive JSON, one object a
    line) to write the table's Parquet: its columns (the partition is the object's prefix;
    `partitioned` adds `dt` for a delivery stream that takes it from the row), decimals as
    exact strings (never JSON numbers, which a reader may take as floating point), instants
    as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC."""
    names = (*table.column_names, PARTITION_KEY) if partitioned else table.column_names
    document = {name: _conversion_value(row[name]) for name in names}
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def _conversion_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def raw_usage_line(record: ArchivedRecord) -> bytes:
    """What the warehouse's delivery stream writes for one stream record (raw_usage)."""
    return conversion_line(raw_usage_row(record), RAW_USAGE)
