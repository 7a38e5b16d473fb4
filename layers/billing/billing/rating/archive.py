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

Firehose opens records that the Kinesis Producer Library (or another aggregator writing
its format) aggregated before it calls the processor: the archive would hold each part as
a record of its own, yet the rater never opens an aggregate (it rejects the record whole,
MALFORMED_JSON). Firehose marks each part with a subsequence number in the record's
metadata (a plain record has none: absent or empty); the frame keeps that mark as
`aggregated`, and `replay_bytes` refuses such a frame, so a replay rejects an aggregate as
the rater did and never bills the events inside it, whatever order or object its parts
land in.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quoted  # json.dumps' own, in C
from typing import Any, Final

# 2: `aggregated` added (version 1 was never deployed).
FRAME_VERSION: Final = 2
_FIELDS: Final = frozenset(
    {
        "v",
        "shard_id",
        "sequence_number",
        "subsequence_number",
        "aggregated",
        "partition_key",
        "arrival_ms",
        "data",
    }
)
_GZIP_MAGIC: Final = b"\x1f\x8b"


class ArchiveCorrupt(ValueError):
    """An archive line that is not one frame: the object was not written by the processor."""


class NotReplayable(ValueError):
    """A frame holding a part of an aggregate the rater rejected whole: not an event."""


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One record as the usage stream carried it."""

    shard_id: str
    sequence_number: str
    subsequence_number: int
    partition_key: str
    arrival_ms: int
    data: bytes
    aggregated: bool = False  # a part of an aggregate Firehose opened (the rater did not)

    def replay_bytes(self) -> bytes:
        """The record as the rater rated it; NotReplayable for a part of an aggregate, which
        the rater rejected whole (MALFORMED_JSON) and a replay must reject the same way."""
        if self.aggregated:
            raise NotReplayable(
                f"{self.shard_id} {self.sequence_number}/{self.subsequence_number}: a part of "
                "a KPL aggregate, which the rater rejected whole"
            )
        return self.data


def frame(record: ArchivedRecord) -> bytes:
    """The record as one archive line (ASCII, ending in its one line break): exactly
    `json.dumps` of the frame's fields in order, with `ensure_ascii` and no spaces (a test
    holds it to that), written out by hand because reading an archive frames every record
    again to check it (`_unframe`), and json.dumps of a dict costs twice as much.

    ensure_ascii escapes every control character and non-ASCII one: no raw line break can
    appear inside the line, whatever the shard id or partition key holds."""
    data = base64.b64encode(record.data).decode("ascii")
    aggregated = "true" if record.aggregated else "false"
    return (
        f'{{"v":{FRAME_VERSION},"shard_id":{_quoted(record.shard_id)},'
        f'"sequence_number":{_quoted(record.sequence_number)},'
        f'"subsequence_number":{int(record.subsequence_number)},"aggregated":{aggregated},'
        f'"partition_key":{_quoted(record.partition_key)},"arrival_ms":{int(record.arrival_ms)},'
        f'"data":"{data}"}}\n'
    ).encode("ascii")


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
    if (
        not all(isinstance(document[name], str) for name in texts)
        or not all(type(document[name]) is int for name in numbers)
        or type(document["aggregated"]) is not bool
    ):
        raise ArchiveCorrupt(f"line {number}: a field has the wrong type")
    record = ArchivedRecord(
        shard_id=document["shard_id"],
        sequence_number=document["sequence_number"],
        subsequence_number=document["subsequence_number"],
        partition_key=document["partition_key"],
        arrival_ms=document["arrival_ms"],
        data=data,
        aggregated=document["aggregated"],
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


def frame_firehose_records(event: Mapping[str, Any]) -> dict[str, Any]:
    """Firehose's Lambda processor contract: each record of `event` framed, one result per
    record id. Firehose reading a Kinesis stream passes each record's stream position in
    `kinesisRecordMetadata`; a record without it cannot be framed faithfully and is
    `ProcessingFailed` (Firehose then writes it, as it came, under the error prefix)."""
    return process_firehose_records(event, frame)


def process_firehose_records(
    event: Mapping[str, Any], output: Callable[[ArchivedRecord], bytes]
) -> dict[str, Any]:
    """Firehose's Lambda processor contract, for any output made of a stream record: each
    record of `event` as `output` makes it (`Ok`), one result per record id; a record
    without its stream position is `ProcessingFailed`, as it came."""
    results = []
    for record in event.get("records", []):
        carried = firehose_stream_record(record)
        if carried is None:
            results.append(
                {
                    "recordId": record["recordId"],
                    "result": "ProcessingFailed",
                    "data": record["data"],
                }
            )
            continue
        results.append(
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": base64.b64encode(output(carried)).decode("ascii"),
            }
        )
    return {"records": results}


def firehose_stream_record(record: Mapping[str, Any]) -> ArchivedRecord | None:
    """A record Firehose hands its processor, with its position on the stream; None without
    one (a record that did not come from a Kinesis stream)."""
    metadata = record.get("kinesisRecordMetadata")
    if not metadata:
        return None
    subsequence = metadata.get("subsequenceNumber")
    return ArchivedRecord(
        shard_id=str(metadata["shardId"]),
        sequence_number=str(metadata["sequenceNumber"]),
        subsequence_number=int(subsequence or 0),
        aggregated=subsequence not in (None, ""),
        partition_key=str(metadata["partitionKey"]),
        arrival_ms=int(metadata["approximateArrivalTimestamp"]),
        data=base64.b64decode(record["data"]),
    )
