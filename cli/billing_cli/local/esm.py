"""What Lambda's Kinesis event source mapping does, for the local runtime and the tests.

moto's own mapping invokes a function once per record, so the local runtime delivers
batches itself, the way the real mapping does: records in shard order, `batch_size` at a
time; a partial batch response makes the next delivery start at the lowest failed sequence
number; a failed invocation is retried, bisecting the batch if asked; a batch that keeps
failing goes to the on-failure destination and the shard moves on.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from billing.rating.rater import StreamRecord

# Lambda polls a shard about once a second; locally, more often keeps the window the knob.
POLL_SECONDS = 0.1

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int = 100
    # How long the mapping gathers records after the first one before it invokes (the
    # MaximumBatchingWindowInSeconds setting); a full batch goes at once.
    batching_window_seconds: float = 0.0
    maximum_retry_attempts: int = 10
    bisect_batch_on_error: bool = True
    region: str = "us-east-1"
    stream_arn: str = "arn:aws:kinesis:us-east-1:123456789012:stream/usage"


def kinesis_event(records: Sequence[StreamRecord], settings: MappingSettings) -> dict[str, Any]:
    """A Kinesis event exactly as Lambda shapes it."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode("ascii"),
                    "approximateArrivalTimestamp": record.arrival_timestamp,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{record.shard_id}:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/rate-usage",
                "awsRegion": settings.region,
                "eventSourceARN": settings.stream_arn,
            }
            for record in records
        ]
    }


@dataclass
class DeliveryLog:
    invocations: int = 0
    errors: int = 0
    partial_failures: int = 0
    sent_to_destination: list[list[StreamRecord]] = field(default_factory=list)


def deliver(
    shard: Sequence[StreamRecord],
    invoke: Invoke,
    settings: MappingSettings = MappingSettings(),
    log: DeliveryLog | None = None,
) -> DeliveryLog:
    """Deliver every record of a shard to `invoke` until each batch succeeds or is given up."""
    log = log or DeliveryLog()
    position = 0
    while position < len(shard):
        batch = list(shard[position : position + settings.batch_size])
        position += _deliver_batch(batch, invoke, settings, log)
    return log


def _deliver_batch(
    batch: list[StreamRecord], invoke: Invoke, settings: MappingSettings, log: DeliveryLog
) -> int:
    """Deliver one batch; return how many records of it are done with."""
    attempts = 0
    while True:
        log.invocations += 1
        try:
            response = invoke(kinesis_event(batch, settings)) or {}
        except Exception:  # an invocation error, whatever it is, is what the mapping handles
            log.errors += 1
            attempts += 1
            if attempts > settings.maximum_retry_attempts:
                log.sent_to_destination.append(batch)
                return len(batch)
            if settings.bisect_batch_on_error and len(batch) > 1:
                half = len(batch) // 2
                done = _deliver_batch(batch[:half], invoke, settings, log)
                return done if done < half else half
            continue
        failures = response.get("batchItemFailures") or []
        if not failures:
            return len(batch)
        log.partial_failures += 1
        failed = {item["itemIdentifier"] for item in failures}
        index = next((i for i, r in enumerate(batch) if r.sequence_number in failed), None)
        if index is None:  # an identifier Lambda does not know fails the whole batch
            index = 0
        if index > 0:
            return index  # the next delivery starts at the lowest failed record
        attempts += 1
        if attempts > settings.maximum_retry_attempts:
            log.sent_to_destination.append(batch)
            return len(batch)


class ShardPoller:
    """Polls one shard for as long as it runs, the way the mapping does: from the oldest
    record (TRIM_HORIZON), gathering records until a batch is full or the batching window
    since the first of them has passed, then delivering them with `deliver` (partial
    failures, retries, bisect, on-failure destination) before reading on."""

    def __init__(
        self,
        kinesis: Any,
        stream: str,
        shard_id: str,
        invoke: Invoke,
        settings: MappingSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kinesis = kinesis
        self._stream = stream
        self._shard_id = shard_id
        self._invoke = invoke
        self._settings = settings
        self._clock = clock
        self._iterator: str | None = None
        self._buffer: list[StreamRecord] = []
        self._first_seen: float | None = None
        self.log = DeliveryLog()
        self.delivered = 0  # records done with (rated, duplicate, rejected or given up)

    def poll(self) -> int:
        """Read what the shard has, deliver what is due; how many records were delivered."""
        self._read()
        due = self._buffer and (
            len(self._buffer) >= self._settings.batch_size
            or self._clock() - (self._first_seen or 0.0) >= self._settings.batching_window_seconds
        )
        if not due:
            return 0
        batch, self._buffer, self._first_seen = self._buffer, [], None
        deliver(batch, self._invoke, self._settings, self.log)
        self.delivered += len(batch)
        return len(batch)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.poll():
                stop.wait(POLL_SECONDS)

    def _read(self) -> None:
        if self._iterator is None:
            self._iterator = self._kinesis.get_shard_iterator(
                StreamName=self._stream, ShardId=self._shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        want = self._settings.batch_size - len(self._buffer)
        if want <= 0:
            return
        response = self._kinesis.get_records(ShardIterator=self._iterator, Limit=want)
        self._iterator = response.get("NextShardIterator") or self._iterator
        if response["Records"] and self._first_seen is None:
            self._first_seen = self._clock()
        self._buffer.extend(
            StreamRecord(
                self._shard_id,
                record["SequenceNumber"],
                record["Data"],
                partition_key=record["PartitionKey"],
                arrival_timestamp=record["ApproximateArrivalTimestamp"].timestamp(),
            )
            for record in response["Records"]
        )
