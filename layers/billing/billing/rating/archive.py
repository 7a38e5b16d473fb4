"""The raw archive's framing: what Firehose writes for each record of the usage stream, and
how to read it back exactly.

A usage record may itself contain line breaks (valid JSON may span lines), so records
cannot simply be written one per line: a producer could hide a second, valid event for
another account after a line break, which the rater never rated (it saw one record) but a
replay that split the archive by line would. Instead every record becomes one line that
cannot contain a line break of its own: a JSON object, in ASCII, with the record's bytes
as base64 and where it came from on the stream (shard, sequence number, subsequence
number, partition key, arrival time). `functions/archive_records` frames records this way
as Firehose's Lambda processor; `read_archive` reads an archive object back, refusing any
line that is not exactly one such frame.

Firehose opens records that the Kinesis Producer Library aggregated before it calls the
processor: the archive holds each part as a frame of its own, under the aggregate's shard
and sequence number with its own subsequence number. The rater never opens an aggregate
(it rejects the record whole, MALFORMED_JSON). So the archive is read back as the stream
carried it, one record per (shard, sequence number) (`stream_records`): the parts of an
aggregate come back as one `StreamRecord` that is `aggregated`, which a replay must reject
as the rater did, never as the events inside it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

FRAME_VERSION: Final = 1
_FIELDS: Final = frozenset(
    {
        "v",
        "shard_id",
        "sequence_number",
        "subsequence_number",
        "partition_key",
        "arrival_ms",
        "data",
    }
)
_GZIP_MAGIC: Final = b"\x1f\x8b"


class ArchiveCorrupt(ValueError):
    """An archive line that is not one frame: the object was not written by the processor."""


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One record as the usage stream carried it."""

    shard_id: str
    sequence_number: str
    subsequence_number: int
    partition_key: str
    arrival_ms: int
    data: bytes


def frame(record: ArchivedRecord) -> bytes:
    """The record as one archive line (ASCII, ending in its one line break)."""
    document = {
        "v": FRAME_VERSION,
        "shard_id": record.shard_id,
        "sequence_number": record.sequence_number,
        "subsequence_number": record.subsequence_number,
        "partition_key": record.partition_key,
        "arrival_ms": record.arrival_ms,
        "data": base64.b64encode(record.data).decode("ascii"),
    }
    # ensure_ascii escapes every control character and non-ASCII one: no raw line break
    # can appear inside the line, whatever the shard id or partition key holds.
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _unframe(line: bytes, number: int) -> ArchivedRecord:
    try:
        document = json.loads(line.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveCorrupt(f"line {number}: not a JSON frame ({error})") from None
    if not isinstance(document, dict) or set(document) != _FIELDS:
        raise ArchiveCorrupt(f"line {number}: not a frame (fields {sorted(document)})")
    if document["v"] != FRAME_VERSION:
        raise ArchiveCorrupt(f"line {number}: frame version {document['v']!r}")
    try:
        data = base64.b64decode(document["data"], validate=True)
    except (binascii.Error, TypeError) as error:
        raise ArchiveCorrupt(f"line {number}: data is not base64 ({error})") from None
    texts = ("shard_id", "sequence_number", "partition_key")
    numbers = ("subsequence_number", "arrival_ms")
    if not all(isinstance(document[name], str) for name in texts) or not all(
        type(document[name]) is int for name in numbers
    ):
        raise ArchiveCorrupt(f"line {number}: a field has the wrong type")
    record = ArchivedRecord(
        shard_id=document["shard_id"],
        sequence_number=document["sequence_number"],
        subsequence_number=document["subsequence_number"],
        partition_key=document["partition_key"],
        arrival_ms=document["arrival_ms"],
        data=data,
    )
    # Only what `frame` writes is read: no other spelling of the same record (other key
    # order, whitespace, a float version, a repeated key, non-canonical base64) passes.
    if frame(record) != line + b"\n":
        raise ArchiveCorrupt(f"line {number}: not a frame as the archive writes it")
    return record


def read_archive(body: bytes) -> Iterator[ArchivedRecord]:
    """The records of one archive object (gzipped as Firehose writes it, or not), in order.

    Every line must be exactly one frame and the object must end with a line break: a
    truncated or foreign object raises ArchiveCorrupt rather than yield a guess."""
    if body.startswith(_GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (EOFError, OSError, zlib.error) as error:  # truncated or damaged gzip
            raise ArchiveCorrupt(f"the object is not whole gzip ({error})") from None
    if not body:
        return
    if not body.endswith(b"\n"):
        raise ArchiveCorrupt("the object does not end with a whole frame")
    for number, line in enumerate(body[:-1].split(b"\n"), start=1):
        yield _unframe(line, number)


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record as the rater received it, rebuilt from its frames: one frame, or the
    parts of a KPL aggregate (several frames, or one with a subsequence number above 0)."""

    parts: tuple[ArchivedRecord, ...]

    @property
    def shard_id(self) -> str:
        return self.parts[0].shard_id

    @property
    def sequence_number(self) -> str:
        return self.parts[0].sequence_number

    @property
    def aggregated(self) -> bool:
        """Whether the rater saw a KPL aggregate here (and rejected it whole, unopened)."""
        return len(self.parts) > 1 or self.parts[0].subsequence_number > 0

    @property
    def data(self) -> bytes:
        """The record's bytes, which the rater rated; an aggregate has none to rate."""
        if self.aggregated:
            raise ArchiveCorrupt(
                f"{self.shard_id} {self.sequence_number}: a KPL aggregate the rater rejected "
                "whole; its parts must not be replayed as events"
            )
        return self.parts[0].data


def stream_records(frames: Iterable[ArchivedRecord]) -> Iterator[StreamRecord]:
    """The archive's frames (objects read in order) as the records the stream carried: the
    consecutive frames of one shard and sequence number are one record."""
    group: list[ArchivedRecord] = []
    for record in frames:
        if group and (record.shard_id, record.sequence_number) != (
            group[0].shard_id,
            group[0].sequence_number,
        ):
            yield StreamRecord(tuple(group))
            group = []
        group.append(record)
    if group:
        yield StreamRecord(tuple(group))


def frame_firehose_records(event: Mapping[str, Any]) -> dict[str, Any]:
    """Firehose's Lambda processor contract: each record of `event` framed, one result per
    record id. Firehose reading a Kinesis stream passes each record's stream position in
    `kinesisRecordMetadata`; a record without it cannot be framed faithfully and is
    `ProcessingFailed` (Firehose then writes it, as it came, under the error prefix)."""
    results = []
    for record in event.get("records", []):
        metadata = record.get("kinesisRecordMetadata")
        if not metadata:
            results.append(
                {
                    "recordId": record["recordId"],
                    "result": "ProcessingFailed",
                    "data": record["data"],
                }
            )
            continue
        framed = frame(
            ArchivedRecord(
                shard_id=str(metadata["shardId"]),
                sequence_number=str(metadata["sequenceNumber"]),
                subsequence_number=int(metadata.get("subsequenceNumber") or 0),
                partition_key=str(metadata["partitionKey"]),
                arrival_ms=int(metadata["approximateArrivalTimestamp"]),
                data=base64.b64decode(record["data"]),
            )
        )
        results.append(
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": base64.b64encode(framed).decode("ascii"),
            }
        )
    return {"records": results}
