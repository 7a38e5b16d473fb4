"""The warehouse's delivery streams: rows put to Firehose, which converts them to Parquet
with their Glue table's schema (docs/warehouse.md). One delivery stream per table."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from billing.store.errors import StoreError, translated
from billing.store.retry import PUBLISH, Sleep

# PutRecordBatch's limits: 500 records and 4 MiB a call.
_RECORDS_MAX: Final = 500
_BYTES_MAX: Final = 4 * 1024 * 1024


class _Refused(StoreError):
    def __init__(self, left: list[bytes]) -> None:
        super().__init__(f"{len(left)} rows refused by the delivery stream")
        self.left = left


class RowStreams:
    def __init__(
        self, client: Any, streams: Mapping[str, str], *, sleep: Sleep = time.sleep
    ) -> None:
        self._client = client
        self._streams = dict(streams)  # table name -> delivery stream name
        self._sleep = sleep

    def put(self, table: str, lines: Sequence[bytes]) -> None:
        """Every line to the table's delivery stream; the lines a call's answer refused are
        put again (PUBLISH), and StoreError once attempts are spent: Firehose delivers at
        least once, so a line put twice is no new risk (readers take rows by their key)."""
        stream = self._streams[table]
        for batch in _batches(lines):
            pending = batch
            for attempt in PUBLISH.retrying(_Refused, sleep=self._sleep):
                with attempt:
                    pending = self._put(stream, pending)
                    if pending:
                        raise _Refused(pending)

    def _put(self, stream: str, lines: list[bytes]) -> list[bytes]:
        """One PutRecordBatch call; the lines it refused."""
        with translated(f"put rows to {stream}"):
            response = self._client.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": line} for line in lines]
            )
        if not response.get("FailedPutCount"):
            return []
        answers = response.get("RequestResponses", [])
        return [
            line for line, answer in zip(lines, answers, strict=True) if answer.get("ErrorCode")
        ]


def _batches(lines: Sequence[bytes]) -> list[list[bytes]]:
    batches: list[list[bytes]] = []
    size = 0
    for line in lines:
        if not batches or len(batches[-1]) == _RECORDS_MAX or size + len(line) > _BYTES_MAX:
            batches.append([])
            size = 0
        batches[-1].append(line)
        size += len(line)
    return batches
