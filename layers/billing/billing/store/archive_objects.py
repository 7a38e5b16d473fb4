"""The raw archive in S3, read back (Firehose writes it: stacks/ingest.py, RawArchive).

Objects lie under `raw/yyyy/MM/dd/HH/`, the UTC hour in which the oldest of their records
arrived on the stream, each holding records framed by `billing.rating.archive`. Reading
records that arrived between two instants lists one prefix per UTC day (one request per
1,000 objects) and reads every object of those days; a record's own arrival time then
decides whether it is in the range (an object's hour is its oldest record's, so an object
may hold records of the following hours).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from billing.rating.archive import ArchivedRecord, read_archive
from billing.store.errors import translated

RAW_PREFIX: Final = "raw/"
# An object holds records that arrived at most this long after its oldest (Firehose's
# largest buffering interval is 900 s; the stack uses 300 s): the day before a range is
# listed too, so an object begun before midnight is not missed.
_OBJECT_SPAN: Final = timedelta(hours=1)


class ArchiveObjects:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def keys_between(self, start: datetime, end: datetime) -> list[str]:
        """The keys of every object that may hold a record that arrived in [start, end),
        in key order (which is the order of their oldest records' hours)."""
        keys: list[str] = []
        day = (start - _OBJECT_SPAN).astimezone(UTC).date()
        while day <= end.astimezone(UTC).date():
            keys.extend(self._listed(f"{RAW_PREFIX}{day:%Y/%m/%d}/"))
            day += timedelta(days=1)
        return keys

    def records(self, key: str) -> list[ArchivedRecord]:
        """The records of one object, as `read_archive` reads them (ArchiveCorrupt for a
        line that is not one frame)."""
        with translated(f"read archive object {key}"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return list(read_archive(body))

    def records_between(self, start: datetime, end: datetime) -> Iterator[ArchivedRecord]:
        """Every archived record that arrived in [start, end), object by object; a record
        Firehose delivered twice comes twice (readers drop repeats by stream position)."""
        low, high = _epoch_ms(start), _epoch_ms(end)
        for key in self.keys_between(start, end):
            for record in self.records(key):
                if low <= record.arrival_ms < high:
                    yield record

    def _listed(self, prefix: str) -> list[str]:
        with translated(f"list archive objects under {prefix}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            )
            return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
