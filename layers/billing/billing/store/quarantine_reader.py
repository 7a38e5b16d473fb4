"""The quarantine read back for a re-rate: which records the rater refused as PERIOD_CLOSED
(billing.store.quarantine writes them, billing.store.quarantine_index names them). The
replay refuses them again, or counts them when their period is the one being re-rated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from billing.core.events import Reason
from billing.store.errors import translated
from billing.store.quarantine import position_key
from billing.store.quarantine_index import IndexEntry, index_time, reason_prefix


class QuarantineReader:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def refused_as_closed(self, since: datetime) -> set[tuple[str, str]]:
        """The stream positions (shard, sequence number) of the records refused as
        PERIOD_CLOSED from `since` on: the index's PERIOD_CLOSED entries listed from that
        time (one request per 1,000), each kept only when its document exists (one HEAD:
        an entry is written before its document, which a write that did not land never
        wrote). Rejections kept before the index existed are listed once `billing rejected
        reindex` has run."""
        prefix = reason_prefix(Reason.PERIOD_CLOSED)
        with translated("list the quarantine's index"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, StartAfter=prefix + index_time(since)
            )
            entries = [
                IndexEntry.parse(item["Key"]) for page in pages for item in page.get("Contents", [])
            ]
        positions = {(e.shard_id, e.sequence_number) for e in entries if e is not None}
        return {position for position in positions if self._kept(*position)}

    def _kept(self, shard_id: str, sequence_number: str) -> bool:
        """Whether the record's document exists; StoreError when S3 cannot say (a re-rate
        must not take a refused record for a rated one)."""
        try:
            self._client.head_object(
                Bucket=self._bucket, Key=position_key(shard_id, sequence_number)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            with translated("look up a quarantined record"):
                raise
        return True
