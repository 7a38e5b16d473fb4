"""The warehouse's feed on AWS (billing.warehouse.feed, functions/warehouse_rows): a new
invoice document gives its invoices row, its lines and its closed period's usage by day,
a new quarantine document its rejected_records row, each line as Firehose's conversion
reads it, with `dt` for the delivery stream's partitioning (docs/warehouse.md)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from billing.core.catalog import Account, Catalog
from billing.core.usage import Aggregate, MeterUsage
from billing.store.bucket_objects import BucketObjects
from billing.store.errors import StoreError
from billing.store.row_streams import RowStreams
from billing.warehouse.feed import WarehouseFeed
from billing_cli.commands.common import load_files
from billing_cli.local.lambdas import LocalContext
from functions.warehouse_rows import app as warehouse_rows

pytestmark = pytest.mark.unit

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
INVOICE_KEY = "invoices/acct-1/2026-11/INV-2026-000001.json"
REJECTED_KEY = "rejected/shardId-000000000000/49590.json"


class Objects:
    """S3's GetObject over a dict of keys."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's)
        return {"Body": io.BytesIO(self.objects[Key])}


class Config:
    def __init__(self) -> None:
        self._catalog, accounts = load_files(
            ROOT / "examples" / "catalog.yaml", ROOT / "examples" / "accounts.yaml"
        )
        self._accounts = {account.id: account for account in accounts.accounts}

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Any) -> dict[str, Account]:
        return {i: self._accounts[i] for i in account_ids if i in self._accounts}


class ClosedUsage:
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        assert (account_id, period) == ("acct-1", "2026-11")
        # a1-api-001 on 3 Nov, a1-api-002 on 17 Nov (Paris)
        days = {3: Aggregate(D(1200000)), 17: Aggregate(D(334000))}
        return {"api_requests": MeterUsage("sum", Aggregate(D(1534000), 2), days=days)}


class Streams:
    def __init__(self) -> None:
        self.put_lines: dict[str, list[dict[str, Any]]] = {}

    def put(self, table: str, lines: Any) -> None:
        for line in lines:
            assert line.endswith(b"\n")
            self.put_lines.setdefault(table, []).append(json.loads(line))


def feed(objects: dict[str, bytes], streams: Streams) -> WarehouseFeed:
    s3 = Objects(objects)
    return WarehouseFeed(
        invoice_bucket="invoices-bucket",
        invoices=BucketObjects(s3, "invoices-bucket"),
        quarantine_bucket="quarantine-bucket",
        quarantine=BucketObjects(s3, "quarantine-bucket"),
        ledgers=ClosedUsage(),
        config=Config(),
        streams=streams,
    )


def golden_invoice() -> bytes:
    return (ROOT / "tests" / "golden" / "examples-2026-11" / "INV-2026-000001.json").read_bytes()


def test_an_invoice_gives_its_row_its_lines_and_its_periods_days() -> None:
    streams = Streams()
    counts = feed({INVOICE_KEY: golden_invoice()}, streams).object_created(
        "invoices-bucket", INVOICE_KEY
    )
    assert counts == {"invoices": 1, "invoice_lines": 6, "daily_usage": 2}
    [invoice] = streams.put_lines["invoices"]
    assert invoice == {
        "invoice_number": "INV-2026-000001",
        "account_id": "acct-1",
        "period": "2026-11",
        "plan_id": "pro",
        "currency": "USD",
        "issued_at": "2026-12-01 06:00:00.000000",
        "subtotal": "197.27",
        "tax": "39.45",
        "total": "236.72",
        "credits_applied": "0.00",
        "amount_due": "236.72",
        "dt": "2026-12-01",
    }
    lines = streams.put_lines["invoice_lines"]
    # 6.07 + 1.20 + 0.50 + 140.00 + 0.50 + 49.00 = 197.27, the subtotal
    assert sum(D(line["amount"]) for line in lines) == D("197.27")
    assert [line["line_number"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert {line["plan_id"] for line in lines} == {"pro"}
    assert [(d["dt"], d["quantity"], d["state"]) for d in streams.put_lines["daily_usage"]] == [
        ("2026-11-03", "1200000", "closed"),
        ("2026-11-17", "334000", "closed"),
    ]


def test_a_rejection_gives_its_row() -> None:
    document = {
        "reason": "UNKNOWN_METER",
        "message": "meter 'gpu_hours' is not in the catalog",
        "shard_id": "shardId-000000000000",
        "sequence_number": "49590",
        "rejected_at": "2026-12-01T06:00:00Z",
        "raw": '{"event_id":"bad-3","account_id":"acct-1","meter":"gpu_hours"}',
    }
    streams = Streams()
    counts = feed({REJECTED_KEY: json.dumps(document).encode()}, streams).object_created(
        "quarantine-bucket", REJECTED_KEY
    )
    assert counts == {"rejected_records": 1}
    assert streams.put_lines["rejected_records"] == [
        {
            "shard_id": "shardId-000000000000",
            "sequence_number": "49590",
            "reason": "UNKNOWN_METER",
            "message": "meter 'gpu_hours' is not in the catalog",
            "rejected_at": "2026-12-01 06:00:00.000000",
            "account_id": "acct-1",
            "event_id": "bad-3",
            "dt": "2026-12-01",
        }
    ]


ADJUSTMENT = {
    "adjustment_number": "ADJ-2026-000001",
    "account_id": "acct-1",
    "invoice_number": "INV-2026-000001",
    "invoice_issued_at": "2026-12-01T06:00:00Z",
    "period": "2026-11",
    "correction": "rerate:0123abcd",
    "reason": "Plan price raised late",
    "issued_at": "2026-12-10T09:30:00Z",
    "currency": "USD",
    "lines": [
        {"invoice_line": 5, "kind": "fixed", "description": "Pro plan", "quantity": "0",
         "amount": "3.00"},
        {"invoice_line": None, "kind": "usage", "meter": "gpu_hours", "description": "GPU",
         "quantity": "2", "amount": "1.50", "unit_price": "0.75"},
    ],
    "subtotal": "4.50",
    "tax": "0.90",
    "total": "5.40",
    "invoice_total": "236.72",
    "invoice_total_after": "242.12",
}  # fmt: skip


@pytest.mark.parametrize("kind", ["adjustment", "credit_note"])
def test_a_correction_gives_its_row_and_its_lines_signed_by_their_effect(kind: str) -> None:
    # GIVEN the adjustment above (what it charges: positive), or the same document as a
    # credit note (what it credits: its values read negative in the tables)
    document = dict(ADJUSTMENT)
    number = str(document["adjustment_number"])
    if kind == "credit_note":
        del document["adjustment_number"]
        number = document["credit_note_number"] = "CN-2026-000001"
        document["invoice_total_after"] = "231.32"  # 236.72 − 5.40
    key = f"invoices/acct-1/2026-11/{number}.json"
    streams = Streams()
    counts = feed({key: json.dumps(document).encode()}, streams).object_created(
        "invoices-bucket", key
    )
    assert counts == {"corrections": 1, "correction_lines": 2}
    sign = "" if kind == "adjustment" else "-"
    [row] = streams.put_lines["corrections"]
    assert row == {
        "document_number": number,
        "kind": kind,
        "invoice_number": "INV-2026-000001",
        "account_id": "acct-1",
        "period": "2026-11",
        "plan_id": "pro",
        "currency": "USD",
        "issued_at": "2026-12-10 09:30:00.000000",
        "correction": "rerate:0123abcd",
        "subtotal_change": f"{sign}4.50",
        "tax_change": f"{sign}0.90",
        "total_change": f"{sign}5.40",
        "invoice_total_after": "242.12" if kind == "adjustment" else "231.32",
        "dt": "2026-12-10",
    }
    lines = streams.put_lines["correction_lines"]
    # the plan's line is invoice line 6 as printed; the added GPU line corrects none; a
    # quantity of 0 stays 0 (never -0)
    assert [
        (line["line_number"], line["invoice_line_number"], line["quantity_change"],
         line["amount_change"], line["meter"], line["plan_id"])
        for line in lines
    ] == [
        (1, 6, "0", f"{sign}3.00", None, "pro"),
        (2, None, f"{sign}2", f"{sign}1.50", "gpu_hours", "pro"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bucket", "key", "document"),
    [
        # the invoice's PDF
        ("invoices-bucket", INVOICE_KEY.replace(".json", ".pdf"), b"%PDF-1.7"),
        # a staged rejection, not kept yet
        ("quarantine-bucket", "staged/shardId-000000000000/49590.json", b"{}"),
    ],
)
def test_other_objects_give_no_row(bucket: str, key: str, document: bytes) -> None:
    streams = Streams()
    assert feed({key: document}, streams).object_created(bucket, key) == {}
    assert streams.put_lines == {}


def test_the_handler_reads_s3s_event_from_eventbridge(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = Streams()
    monkeypatch.setattr(
        warehouse_rows, "service", lambda: feed({INVOICE_KEY: golden_invoice()}, streams)
    )
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "invoices-bucket"}, "object": {"key": INVOICE_KEY}},
    }
    context: Any = LocalContext("warehouse_rows")
    answer = warehouse_rows.handler(event, context)
    assert answer == {"rows": {"invoices": 1, "invoice_lines": 6, "daily_usage": 2}}


class Firehose:
    """PutRecordBatch refusing the records it is told to, call by call."""

    def __init__(self, refusals: list[set[int]]) -> None:
        self.refusals = refusals
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: Any) -> dict[str, Any]:  # noqa: N803
        assert DeliveryStreamName == "invoices-stream"
        self.calls.append([record["Data"] for record in Records])
        refused = self.refusals.pop(0) if self.refusals else set()
        return {
            "FailedPutCount": len(refused),
            "RequestResponses": [
                {"ErrorCode": "ServiceUnavailableException"} if i in refused else {"RecordId": "r"}
                for i in range(len(Records))
            ],
        }


def test_rows_a_delivery_stream_refused_are_put_again() -> None:
    client = Firehose([{1}])
    RowStreams(client, {"invoices": "invoices-stream"}, sleep=lambda _: None).put(
        "invoices", [b"a\n", b"b\n", b"c\n"]
    )
    assert client.calls == [[b"a\n", b"b\n", b"c\n"], [b"b\n"]]


def test_rows_refused_every_time_fail_the_put() -> None:
    client = Firehose([{0}] * 10)
    streams = RowStreams(client, {"invoices": "invoices-stream"}, sleep=lambda _: None)
    with pytest.raises(StoreError, match="1 rows refused"):
        streams.put("invoices", [b"a\n"])
    assert len(client.calls) == 4  # the PUBLISH policy's attempts
