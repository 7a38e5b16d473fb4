"""The quarantine: every rejected record, kept in S3 with its reason, raw bytes and origin.

One object per record, keyed by shard and sequence number, so a retried batch writes the
same objects again instead of new ones.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from billing.events import Rejection
from billing.invoice import utc_text
from billing.rater import StreamRecord
from billing.store.errors import StoreError, translated


def quarantine_key(record: StreamRecord) -> str:
    return position_key(record.shard_id, record.sequence_number)


def position_key(shard_id: str, sequence_number: str) -> str:
    return f"rejected/{shard_id}/{sequence_number}.json"


def quarantine_document(
    record: StreamRecord, rejection: Rejection, rejected_at: datetime
) -> dict[str, Any]:
    """The record as kept: `raw` when its bytes are UTF-8 text, else `raw_base64`."""
    document: dict[str, Any] = {
        "reason": str(rejection.reason),
        "message": rejection.message,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "rejected_at": utc_text(rejected_at),
    }
    try:
        document["raw"] = record.data.decode("utf-8")
    except UnicodeDecodeError:
        document["raw_base64"] = base64.b64encode(record.data).decode("ascii")
    return document


class Quarantine:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def keep(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None:
        body = json.dumps(quarantine_document(record, rejection, rejected_at)).encode()
        with translated("quarantine record"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=quarantine_key(record),
                Body=body,
                ContentType="application/json",
            )

    def holds(self, shard_id: str, sequence_number: str) -> bool:
        """Whether the record at this position is kept (False when S3 cannot say)."""
        try:
            with translated("look up quarantined record"):
                self._client.head_object(
                    Bucket=self._bucket, Key=position_key(shard_id, sequence_number)
                )
        except StoreError:
            return False
        return True
