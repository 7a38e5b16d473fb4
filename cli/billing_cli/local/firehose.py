"""What Firehose does with the usage stream in the stack (`stacks/ingest.py`, RawArchive),
for the local runtime: the raw archive written the same way, so that what reads it
(`billing rerate`, `billing explain`) runs locally as on AWS.

moto's Firehose has no Kinesis source, so this reads the stream itself, from the oldest
record of each shard (as a new delivery stream does), and does what the stack configures:
the records go to the project's own processor (`archive_records`, invoked through Lambda)
in batches of at most the processor's buffer; what it answers `Ok` is written back to back,
gzipped, as one object under `raw/yyyy/MM/dd/HH/` (the UTC hour of the oldest record's
arrival, Firehose's `!{timestamp}`), named as Firehose names its objects; what it answers
`ProcessingFailed` goes, as it came, under `errors/processing-failed/yyyy/MM/dd/`.
Nothing here is deployed.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from billing.store.archive_objects import RAW_PREFIX
from billing_cli.local.esm import Invoke

ARCHIVE_RECORDS: Final = "archive_records"
DELIVERY_STREAM: Final = "RawArchive"
# The stack's processor buffer (stacks/settings.py ARCHIVE_PROCESSOR_BUFFER_MB): at most this
# many bytes of records go to the processor at once.
PROCESSOR_BUFFER_BYTES: Final = 1024 * 1024
# The stack's delivery buffer is 5 MB or 300 s; locally an object is written sooner, so a
# re-rate sees recent usage (the layout and format do not depend on it).
LOCAL_BUFFER_SECONDS: Final = 5.0
OBJECT_BUFFER_BYTES: Final = 5 * 1024 * 1024
_ERROR_PREFIX: Final = "errors/processing-failed/"
_ARN: Final = "arn:aws"
_WHERE: Final = "us-east-1:123456789012"  # the local runtime's region and account


@dataclass(frozen=True, slots=True)
class _Carried:
    """One record as Firehose read it from the stream."""

    shard_id: str
    sequence_number: str
    partition_key: str
    arrival_ms: int
    data: bytes

    def processor_record(self, number: int) -> dict[str, Any]:
        return {
            "recordId": f"{number:012d}",
            "approximateArrivalTimestamp": self.arrival_ms,
            "data": base64.b64encode(self.data).decode("ascii"),
            "kinesisRecordMetadata": {
                "shardId": self.shard_id,
                "partitionKey": self.partition_key,
                "approximateArrivalTimestamp": self.arrival_ms,
                "sequenceNumber": self.sequence_number,
                "subsequenceNumber": "",  # the stream carries no aggregates locally
            },
        }


@dataclass
class LocalFirehose:
    """The raw archive's delivery stream: `poll` reads what the stream carried since the
    last poll, `flush` writes it to the archive bucket; `run` does both until stopped."""

    kinesis: Any
    s3: Any
    stream: str
    bucket: str
    process: Invoke  # archive_records, as Firehose invokes it
    clock: Callable[[], float] = time.time
    buffer_seconds: float = LOCAL_BUFFER_SECONDS
    written: list[str] = field(default_factory=list)  # object keys, in order
    _iterators: dict[str, str] = field(default_factory=dict)
    _buffer: list[_Carried] = field(default_factory=list)
    _buffered_bytes: int = 0
    _first_read: float | None = None
    _numbered: int = 0

    def poll(self) -> int:
        """Read every shard's new records into the buffer; how many were read."""
        read = 0
        for shard in self.kinesis.list_shards(StreamName=self.stream)["Shards"]:
            read += self._read(shard["ShardId"])
        if read and self._first_read is None:
            self._first_read = self.clock()
        return read

    def due(self) -> bool:
        return bool(self._buffer) and (
            self._buffered_bytes >= OBJECT_BUFFER_BYTES
            or self.clock() - (self._first_read or 0.0) >= self.buffer_seconds
        )

    def flush(self) -> list[str]:
        """Write the buffer to the archive: the keys of the objects written."""
        carried = self._buffer
        self._buffer, self._buffered_bytes, self._first_read = [], 0, None
        framed: list[bytes] = []
        failed: list[tuple[_Carried, dict[str, Any]]] = []
        for batch in _processor_batches(carried):
            records = [record.processor_record(self._next_number()) for record in batch]
            answer = self.process({**self._event_head(), "records": records}) or {}
            results = {result["recordId"]: result for result in answer.get("records", [])}
            for record, sent in zip(batch, records, strict=True):
                result = results.get(sent["recordId"])
                if result is not None and result["result"] == "Ok":
                    framed.append(base64.b64decode(result["data"]))
                else:
                    failed.append((record, sent))
        keys = []
        if framed:
            keys.append(self._put(RAW_PREFIX, carried, b"".join(framed), gzipped=True))
        if failed:
            lines = b"".join(_error_line(record, sent) for record, sent in failed)
            oldest = [record for record, _ in failed]
            keys.append(self._put(_ERROR_PREFIX, oldest, lines, gzipped=False, hourly=False))
        self.written.extend(keys)
        return keys

    def drain(self) -> list[str]:
        """Everything on the stream so far into the archive, at once (`billing run`)."""
        self.poll()
        return self.flush() if self._buffer else []

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll()
            if self.due():
                self.flush()
            stop.wait(0.5)
        self.drain()

    def _read(self, shard_id: str) -> int:
        iterator = (
            self._iterators.get(shard_id)
            or self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        )
        read = 0
        while True:
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            iterator = response.get("NextShardIterator") or iterator
            for record in response["Records"]:
                arrival = record["ApproximateArrivalTimestamp"]
                self._buffer.append(
                    _Carried(
                        shard_id,
                        record["SequenceNumber"],
                        record["PartitionKey"],
                        round(arrival.timestamp() * 1000),
                        record["Data"],
                    )
                )
                self._buffered_bytes += len(record["Data"])
            read += len(response["Records"])
            if not response["Records"]:
                break
        self._iterators[shard_id] = iterator
        return read

    def _next_number(self) -> int:
        self._numbered += 1
        return self._numbered

    def _event_head(self) -> dict[str, Any]:
        return {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": f"{_ARN}:firehose:{_WHERE}:deliverystream/{DELIVERY_STREAM}",
            "sourceKinesisStreamArn": f"{_ARN}:kinesis:{_WHERE}:stream/{self.stream}",
            "region": "us-east-1",
        }

    def _put(
        self,
        prefix: str,
        records: Sequence[_Carried],
        body: bytes,
        *,
        gzipped: bool,
        hourly: bool = True,
    ) -> str:
        oldest = datetime.fromtimestamp(min(r.arrival_ms for r in records) / 1000, UTC)
        folder = oldest.strftime("%Y/%m/%d/%H/" if hourly else "%Y/%m/%d/")
        name = f"{DELIVERY_STREAM}-1-{oldest:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
        key = f"{prefix}{folder}{name}" + (".gz" if gzipped else "")
        data = gzip.compress(body, mtime=0) if gzipped else body
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return key


def _processor_batches(records: Sequence[_Carried]) -> list[list[_Carried]]:
    """The records in processor invocations of at most PROCESSOR_BUFFER_BYTES each."""
    batches: list[list[_Carried]] = []
    size = 0
    for record in records:
        if not batches or size + len(record.data) > PROCESSOR_BUFFER_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(record)
        size += len(record.data)
    return batches


def _error_line(record: _Carried, sent: dict[str, Any]) -> bytes:
    """A record the processor did not frame, as Firehose writes it under its error prefix."""
    document = {
        "attemptsMade": 1,
        "arrivalTimestamp": record.arrival_ms,
        "errorCode": "Lambda.ProcessingFailed",
        "errorMessage": "The record was not framed by the processor.",
        "attemptEndingTimestamp": record.arrival_ms,
        "rawData": sent["data"],
        "lambdaArn": f"arn:aws:lambda:us-east-1:123456789012:function:{ARCHIVE_RECORDS}",
    }
    return json.dumps(document).encode() + b"\n"
