"""What Lambda's Kinesis event source mapping does, for the local runtime and the tests.

moto's own mapping invokes a function once per record, so the local runtime delivers
batches itself, the way the real mapping does: records in shard order, `batch_size` at a
time; a partial batch response makes the next delivery start at the lowest failed sequence
number; a failed invocation is retried, bisecting the batch if asked; a batch that keeps
failing goes to the on-failure destination and the shard moves on.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from billing.rater import StreamRecord

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int = 100
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
