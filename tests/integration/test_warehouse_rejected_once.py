"""The warehouse: `rejected_records` on AWS gets a row per S3 event of the
quarantine (billing.warehouse.feed), and a rater batch Lambda delivers again rewrites an
account-less record's document with the retry's `rejected_at`. When the retry falls on the
next UTC day the two rows have different `dt`, and the documented example query, which
reads a record once only within a day, counted it on both days. The quarantine now writes a
document only if absent (If-None-Match), so the retry writes nothing, S3 announces nothing,
and the record keeps its first verdict's day."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billing.rating.service import RatingService
from billing.store.config_store import ConfigStore
from billing.store.due_hints import DueHints
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine import Quarantine, quarantine_key
from billing.warehouse.export import quarantine_row
from billing.warehouse.tables import REJECTED_RECORDS
from billing_cli import warehouse
from tests.integration.conftest import Aws
from tests.support.kinesis import shard

BEFORE_MIDNIGHT = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 12, 1, 0, 0, 30, tzinfo=UTC)


class _Announcing:
    """The S3 client, noting each quarantine key a write landed on: on AWS each is an
    Object Created event, which warehouse_rows makes a row of (a refused write is none)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.created: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **params: Any) -> Any:
        answer = self._client.put_object(**params)
        self.created.append(params["Key"])
        return answer

    def copy_object(self, **params: Any) -> Any:
        answer = self._client.copy_object(**params)
        self.created.append(params["Key"])
        return answer


def _rated_at(aws: Aws, s3: _Announcing, clock: datetime) -> RatingService:
    return RatingService(
        config=ConfigStore(aws.dynamodb, aws.config_table),
        ledgers=LedgerStore(aws.dynamodb, aws.ledger_table),
        quarantine=Quarantine(s3, aws.bucket),
        clock=lambda: clock,
        hints=DueHints(aws.dynamodb, aws.ledger_table),
    )


def test_a_record_rejected_again_after_midnight_counts_once(aws: Aws, tmp_path: Path) -> None:
    batch = shard([b"not json"])
    key = quarantine_key(batch[0])
    s3 = _Announcing(aws.s3)
    rows = []
    # GIVEN a batch rated at 23:59:59, and delivered again (its answer lost) at 00:00:30
    for clock in (BEFORE_MIDNIGHT, AFTER_MIDNIGHT):
        announced = len(s3.created)
        _rated_at(aws, s3, clock).process(batch)
        for _ in range(s3.created[announced:].count(key)):
            document = json.loads(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
            rows.append(quarantine_row(document))
    # the retry's write was refused: one event, the first verdict's day
    assert [row["dt"] for row in rows] == ["2026-11-30"]
    warehouse.write_table(tmp_path, REJECTED_RECORDS, rows)

    _, answer = warehouse.query(tmp_path, warehouse.EXAMPLE_QUERIES["rejected-by-reason-by-day"])

    # Expected: one rejected record in all: MALFORMED_JSON 1 (on the day it was first
    # rejected). Got: 2026-11-30 MALFORMED_JSON 1 and 2026-12-01 MALFORMED_JSON 1.
    assert sum(records for _, _, records in answer) == 1, answer
