"""The client products emit usage with: validated events, batched onto the usage stream.

    from billing_cli.producer import UsageProducer

    with UsageProducer("UsageBilling-prod-UsageStream") as usage:
        usage.record("acct-1", "api_requests", 1, dimensions={"region": "eu-west-1"})

Each event is checked against the schema (CONTRACT.md section 1) before it is queued, so a
product learns at once that an event is malformed instead of finding it in the quarantine
later. Events go out in PutRecords batches of at most 500 records and 5 MB, keyed by
account (one account's events stay on one shard, in order). A batch that comes back
partly failed is resent, failed records only and byte for byte (so `event_id` never
changes and the rater counts a resend once), with exponential backoff and full jitter
(the project's one retry mechanism, billing.store.retry). What still fails after the last
attempt is raised as `UsageNotSent` with the records, never dropped.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from billing.core.events import Reason, Rejection, UsageEvent, decode_record
from billing.store.retry import STREAM_PUT, RetryPolicy, Sleep

MAX_BATCH_RECORDS: Final = 500
MAX_BATCH_BYTES: Final = 5 * 1024 * 1024  # data and partition keys together


class InvalidUsageEvent(ValueError):
    """An event the rater would reject for its shape; it was not queued."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.reason}: {rejection.message}")
        self.rejection = rejection


class UsageNotSent(RuntimeError):
    """Records still refused by the stream after every attempt. Nothing was dropped: they
    are here, as sent, for the caller to keep or resend later (their event ids dedupe)."""

    def __init__(
        self,
        records: list[PendingRecord],
        error_codes: list[str],
        report: SendReport | None = None,
    ) -> None:
        codes = ", ".join(sorted(set(error_codes))) or "unknown"
        super().__init__(f"{len(records)} usage records not accepted by the stream ({codes})")
        self.records = records
        self.report = report or SendReport()  # what the batch did put on the stream


@dataclass(frozen=True, slots=True)
class PendingRecord:
    data: bytes
    partition_key: str
    # The caller's name for the record (a line number, a quarantine id): what it is told
    # back with the record's place on the stream (SendReport.placed).
    tag: object = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode())

    def entry(self) -> dict[str, Any]:
        return {"Data": self.data, "PartitionKey": self.partition_key}


@dataclass(frozen=True, slots=True)
class Placed:
    """Where the stream put a record: the caller's tag for it, its shard and sequence number
    (together, its position: how the rater's ledger and quarantine know it)."""

    tag: object
    shard_id: str
    sequence_number: str


@dataclass
class SendReport:
    """What a flush put on the stream: records accepted, PutRecords calls, resends."""

    sent: int = 0
    calls: int = 0
    resent: int = 0
    sequence_numbers: list[str] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)  # as `sequence_numbers`, in full

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.calls += other.calls
        self.resent += other.resent
        self.sequence_numbers.extend(other.sequence_numbers)
        self.placed.extend(other.placed)


def _checked(event: Mapping[str, Any] | bytes) -> tuple[bytes, UsageEvent]:
    """The event's bytes as they go on the stream, and the event the rater will read."""
    if isinstance(event, bytes):
        data = event
    else:
        document = dict(event)
        if "quantity" in document:
            document["quantity"] = _exact_quantity(document["quantity"])
        data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    decoded = decode_record(data)
    if isinstance(decoded, Rejection):
        raise InvalidUsageEvent(decoded)
    return data, decoded


def _exact_quantity(quantity: object) -> object:
    if isinstance(quantity, float):
        raise InvalidUsageEvent(
            Rejection(
                Reason.SCHEMA_INVALID,
                f"quantity: {quantity!r} is a float; pass an int, a Decimal or a decimal "
                "string such as '1.5' so it is exact",
            )
        )
    if isinstance(quantity, Decimal):
        return format(quantity, "f")  # a decimal string is exact on the wire
    return quantity


class UsageProducer:
    """Queues validated usage events and puts them on the stream in batches.

    `client` is a boto3 Kinesis client (one with the standard retry mode is made if none is
    given; it retries whole calls that are throttled, this class resends failed records).
    Use it as a context manager, or call `flush()`: events are sent when a batch is full
    and on flush, not one call per event."""

    def __init__(
        self,
        stream: str,
        *,
        client: Any = None,
        max_attempts: int = STREAM_PUT.attempts,
        base_delay_seconds: float = STREAM_PUT.first_wait,
        max_delay_seconds: float = STREAM_PUT.max_wait,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._stream = {"StreamARN" if stream.startswith("arn:") else "StreamName": stream}
        self._client = client if client is not None else _default_client()
        self._retry = RetryPolicy(max_attempts, base_delay_seconds, max_delay_seconds)
        self._sleep = sleep
        self._queue: list[PendingRecord] = []
        self._queued_bytes = 0
        self.report = SendReport()

    def __enter__(self) -> UsageProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def record(
        self,
        account_id: str,
        meter: str,
        quantity: int | Decimal | str,
        *,
        timestamp: datetime | None = None,
        dimensions: Mapping[str, str] | None = None,
        event_id: str | None = None,
    ) -> str:
        """Queue one event; its `event_id` (a new UUID unless given) is returned. Keep it
        with the product's own record to resend the same event safely later."""
        if timestamp is not None and timestamp.utcoffset() is None:
            raise ValueError("timestamp must be an aware datetime (with its offset or zone)")
        event_id = event_id or str(uuid.uuid4())
        moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
        document: dict[str, Any] = {
            "event_id": event_id,
            "account_id": account_id,
            "meter": meter,
            "quantity": quantity,
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
        }
        if dimensions:
            document["dimensions"] = dict(dimensions)
        self.put(document)
        return event_id

    def put(self, event: Mapping[str, Any] | bytes, *, tag: object = None) -> UsageEvent:
        """Queue one event, a mapping or the raw JSON bytes of one; refuse it, with the
        reason the rater would give, if its shape is wrong. `tag` names it in the report's
        `placed` once it is on the stream."""
        data, decoded = _checked(event)
        self._enqueue(PendingRecord(data, decoded.account_id, tag))
        return decoded

    def send(self, events: Iterable[Mapping[str, Any] | bytes]) -> SendReport:
        """Queue every event and flush; what this call sent. All are validated first, so
        one invalid event sends nothing."""
        checked = [_checked(event) for event in events]
        calls, resent, sent = self.report.calls, self.report.resent, self.report.sent
        for data, decoded in checked:
            self._enqueue(PendingRecord(data, decoded.account_id))
        self.flush()
        return SendReport(
            sent=self.report.sent - sent,
            calls=self.report.calls - calls,
            resent=self.report.resent - resent,
            sequence_numbers=self.report.sequence_numbers[sent:],
            placed=self.report.placed[sent:],
        )

    def _enqueue(self, pending: PendingRecord) -> None:
        full = len(self._queue) == MAX_BATCH_RECORDS
        if full or self._queued_bytes + pending.size > MAX_BATCH_BYTES:
            self._send_queue()
        self._queue.append(pending)
        self._queued_bytes += pending.size

    def flush(self) -> SendReport:
        """Send what is queued; the report of everything sent so far."""
        if self._queue:
            self._send_queue()
        return self.report

    def _send_queue(self) -> None:
        batch, self._queue, self._queued_bytes = self._queue, [], 0
        self.report.add(self._put_records(batch))

    def _put_records(self, batch: list[PendingRecord]) -> SendReport:
        try:
            return put_records(
                self._client, self._stream, batch, policy=self._retry, sleep=self._sleep
            )
        except UsageNotSent as error:
            self.report.add(error.report)
            raise


def put_records(
    client: Any,
    stream: Mapping[str, str],
    batch: Sequence[PendingRecord],
    *,
    policy: RetryPolicy = STREAM_PUT,
    sleep: Sleep = time.sleep,
) -> SendReport:
    """Put one batch (at most 500 records and 5 MB) on the stream (`stream` names it:
    `{"StreamName": ...}` or `{"StreamARN": ...}`), resending the records a call reports
    failed, byte for byte, under `policy`; UsageNotSent with those still failed after the
    last attempt (and, in its `report`, what did go)."""
    report = SendReport()
    accepted: dict[int, tuple[str, str]] = {}  # shard and sequence number, by position
    pending = list(enumerate(batch))
    try:
        for attempt in policy.retrying(UsageNotSent, sleep=sleep):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    report.resent += len(pending)
                response = client.put_records(
                    Records=[record.entry() for _, record in pending], **stream
                )
                report.calls += 1
                failed, error_codes = [], []
                for (position, record), result in zip(pending, response["Records"], strict=True):
                    if "ErrorCode" in result:
                        failed.append((position, record))
                        error_codes.append(result["ErrorCode"])
                    else:
                        accepted[position] = (result["ShardId"], result["SequenceNumber"])
                pending = failed
                if pending:
                    raise UsageNotSent([record for _, record in pending], error_codes, report)
    finally:
        # What went, whether or not all of it did (UsageNotSent carries this same report).
        report.sent = len(accepted)
        report.sequence_numbers = [accepted[position][1] for position in sorted(accepted)]
        report.placed = [Placed(batch[p].tag, *accepted[p]) for p in sorted(accepted)]
    return report


def _default_client() -> Any:
    import boto3  # noqa: PLC0415 - products may pass their own client and never need it
    from botocore.config import Config  # noqa: PLC0415

    return boto3.client("kinesis", config=Config(retries={"mode": "standard"}))
