"""The quarantine read back: which records the rater refused, and why (billing.store.
quarantine writes it). A re-rate needs the records refused as PERIOD_CLOSED: the replay
refuses them again, or counts them when their period is the one being re-rated."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from billing.core.events import Reason
from billing.store.errors import translated
from billing.store.quarantine import QUARANTINE_PREFIX


class QuarantineReader:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def refused_as_closed(self, since: datetime) -> set[tuple[str, str]]:
        """The stream positions (shard, sequence number) of the records refused as
        PERIOD_CLOSED that were kept from `since` on: a listing, then a read of each object
        kept since then (the reason is in the document)."""
        positions: set[tuple[str, str]] = set()
        with translated("list the quarantine"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=QUARANTINE_PREFIX
            )
            keys = [
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["LastModified"] >= since
            ]
        for key in keys:
            with translated("read a quarantined record"):
                body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
            document = json.loads(body)
            if document.get("reason") == Reason.PERIOD_CLOSED:
                positions.add((document["shard_id"], document["sequence_number"]))
        return positions
