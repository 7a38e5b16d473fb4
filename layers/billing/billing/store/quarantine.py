"""The quarantine: every rejected record, kept in S3 with its reason, raw bytes and origin.

One object per record, keyed by shard and sequence number, written only if absent
(`If-None-Match: *`): a retried batch finds its records' objects kept and leaves them as
they are, so a document's `rejected_at` is its first verdict's time and S3 announces each
record once (the warehouse makes a row of each announcement, billing.warehouse.feed). S3's
412 for a key already taken is success. A rejection the rater decides in a ledger write is
first staged (`staged/`, the same document, expiring after a week), then kept once the
write has landed: whoever finds it listed in a landed ledger can keep it from the staged
copy, without the record. Only `rejected/` is the quarantine.

Before each document (staged or kept), an empty index object names the rejection's reason,
time, account and position (billing.store.quarantine_index), so operators list and filter
the quarantine by listing keys instead of reading every document (docs/quarantine.md).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from billing.core.events import Rejection
from billing.core.invoice import utc_text
from billing.rating.rater import StreamRecord
from billing.store.errors import StoreError, translated
from billing.store.quarantine_index import index_key, record_fields

# Index keys this process wrote lately: a staged rejection's entry is not written again
# when it is kept (the same reason, time and position make the same key).
_INDEXED_REMEMBERED: Final = 10_000


def quarantine_key(record: StreamRecord) -> str:
    return position_key(record.shard_id, record.sequence_number)


QUARANTINE_PREFIX: Final = "rejected/"
# `billing rejected replay`'s marker of a rejection it resent: `replayed/<shard>/<seq>.json`.
REPLAYED_PREFIX: Final = "replayed/"
# `billing rerate --apply`'s marker of a late (PERIOD_CLOSED) record that an invoiced
# period's correction billed: `billed/<shard>/<seq>.json`. Such a record is not to be
# resent (its period's invoice already charges it), but a re-rate still counts it.
BILLED_PREFIX: Final = "billed/"
STAGED_PREFIX: Final = "staged/"


def position_key(shard_id: str, sequence_number: str, prefix: str = QUARANTINE_PREFIX) -> str:
    return f"{prefix}{shard_id}/{sequence_number}.json"


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
        self._indexed: set[str] = set()

    def keep(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> bool:
        """Keep the record unless it is kept already (then its first verdict stays): True
        when this call kept it, False when it was kept before."""
        return self._put(quarantine_key(record), record, rejection, rejected_at, only_new=True)

    def stage(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None:
        """Stage the record's document before the ledger write that decides it."""
        key = position_key(record.shard_id, record.sequence_number, STAGED_PREFIX)
        self._put(key, record, rejection, rejected_at)

    def promote(self, shard_id: str, sequence_number: str) -> bool:
        """Keep a staged record (whose rejection a landed ledger decided); False when S3
        cannot now (no staged copy, or an error)."""
        try:
            with translated("keep staged record"):
                try:
                    self._client.copy_object(
                        Bucket=self._bucket,
                        Key=position_key(shard_id, sequence_number),
                        CopySource={
                            "Bucket": self._bucket,
                            "Key": position_key(shard_id, sequence_number, STAGED_PREFIX),
                        },
                        IfNoneMatch="*",
                    )
                except ClientError as error:
                    if not _already_kept(error):
                        raise
        except StoreError:
            return False
        return True

    def _put(
        self,
        key: str,
        record: StreamRecord,
        rejection: Rejection,
        rejected_at: datetime,
        *,
        only_new: bool = False,
    ) -> bool:
        """Write the document; `only_new` leaves one already under `key` (a staged copy,
        rewritten by a retry, is only ever read by `promote`): False when it did."""
        self._index(record, rejection, rejected_at)
        body = json.dumps(quarantine_document(record, rejection, rejected_at)).encode()
        condition = {"IfNoneMatch": "*"} if only_new else {}
        with translated("quarantine record"):
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as error:
                if not _already_kept(error):
                    raise
                return False
        return True

    def _index(self, record: StreamRecord, rejection: Rejection, rejected_at: datetime) -> None:
        """The rejection's index entry, before its document: an entry may then name a
        document not (yet) kept, never the other way round."""
        account_id, _ = record_fields(record.data)
        key = index_key(
            str(rejection.reason), rejected_at, account_id, record.shard_id, record.sequence_number
        )
        if key in self._indexed:
            return
        with translated("index quarantined record"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=b"")
        if len(self._indexed) >= _INDEXED_REMEMBERED:
            self._indexed.clear()
        self._indexed.add(key)

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


def _already_kept(error: ClientError) -> bool:
    """S3's 412 to a conditional write: the key holds a document, the first one stays."""
    return bool(error.response.get("Error", {}).get("Code") == "PreconditionFailed")
