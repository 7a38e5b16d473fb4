"""What Lambda's DynamoDB Streams event source mapping does for spend_alerts, locally: the
ledger table's stream read from its oldest record (TRIM_HORIZON), only ledger items let
through (the stack's filter, SPEND_ALERTS_STREAM_FILTER), in batches, each delivered again
from its lowest failed record (partial batch responses) or whole after an invocation error,
at most `attempts` times, then given up (the stack's failure queue; locally, stderr).

So customers' spend alerts, their events and their emails (moto's SES) happen under
`billing local` as they do deployed.
"""

from __future__ import annotations

import base64
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from billing.settings import SPEND_ALERTS_STREAM_FILTER

POLL_SECONDS: Final = 0.1
SPEND_ALERTS: Final = "spend_alerts"
# The sort keys the stack's filter lets through to spend_alerts.
_LET_THROUGH: Final = frozenset(SPEND_ALERTS_STREAM_FILTER["dynamodb"]["Keys"]["sk"]["S"])

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]


def as_delivered(value: Any) -> Any:
    """A record as boto3 parsed it, back in the JSON Lambda delivers: binary attributes as
    base64 text, the creation time as epoch seconds."""
    if isinstance(value, dict):
        return {key: as_delivered(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_delivered(item) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


class LedgerStreamPoller:
    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Invoke,
        *,
        batch_size: int = 100,
        attempts: int = 10,
    ) -> None:
        self._streams, self._arn, self._invoke = streams, stream_arn, invoke
        self._batch_size, self._attempts = batch_size, attempts
        self._iterators: dict[str, str] = {}
        self.delivered = 0
        self.given_up = 0

    def poll(self) -> int:
        """Read what the stream has, deliver it; how many records were delivered."""
        records = self._read()
        for start in range(0, len(records), self._batch_size):
            self._deliver(records[start : start + self._batch_size])
        self.delivered += len(records)
        return len(records)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.poll():
                stop.wait(POLL_SECONDS)

    def _read(self) -> list[dict[str, Any]]:
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"]
        for shard in shards:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = self._streams.get_shard_iterator(
                    StreamArn=self._arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType="TRIM_HORIZON",
                )["ShardIterator"]
        records: list[dict[str, Any]] = []
        for shard_id, iterator in self._iterators.items():
            response = self._streams.get_records(ShardIterator=iterator)
            self._iterators[shard_id] = response.get("NextShardIterator") or iterator
            records.extend(
                {**as_delivered(record), "eventSourceARN": self._arn}
                for record in response["Records"]
                if record["dynamodb"]["Keys"]["sk"]["S"] in _LET_THROUGH
            )
        return records

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for _ in range(self._attempts):
            try:
                response = self._invoke({"Records": batch}) or {}
            except Exception:  # an invocation error, whatever it is: the whole batch again
                continue
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures") or []}
            if not failed:
                return
            lowest = next(
                (i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed), 0
            )
            batch = batch[lowest:]
        self.given_up += len(batch)
        print(f"spend_alerts: {len(batch)} ledger stream records given up", file=sys.stderr)
