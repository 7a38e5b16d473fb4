"""Putting records on the usage stream with the producer and following what the service
did with them: what `billing send`, `billing backfill` and `billing rejected replay` share."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from billing.core.events import UsageEvent, decode_record
from billing.settings import STACK_OUTPUTS
from billing.store.errors import StoreError
from billing_cli.deployment import Deployment
from billing_cli.outcomes import Outcomes, OutcomeTracker, SentRecord, claimed_before
from billing_cli.producer import InvalidUsageEvent, Placed, UsageNotSent, UsageProducer


def pause(seconds: float) -> None:
    """How a wait for outcomes waits between looks (tests run the local runtime's pollers
    here instead, so nothing races a deadline)."""
    time.sleep(seconds)


@dataclass(frozen=True)
class Waiting:
    """How to wait for outcomes: at most `seconds` (0: look once)."""

    seconds: float
    now: datetime  # the deployment's clock at the send
    sleep: Callable[[float], None] | None = None  # default: `pause`, as it is then
    clock: Callable[[], float] = time.monotonic


@dataclass
class Sent:
    """What a put did: the records placed (by tag), refused before sending, not sent."""

    records: int
    placed: list[Placed] = field(default_factory=list)
    refused: list[tuple[object, str, str]] = field(default_factory=list)  # tag, reason, message
    calls: int = 0
    resent: int = 0
    error: str | None = None
    outcomes: Outcomes | None = None

    @property
    def not_sent(self) -> int:
        return self.records - len(self.refused) - len(self.placed)


def put_tagged(
    deployment: Deployment,
    items: Sequence[tuple[object, bytes]],
    *,
    waiting: Waiting | None = None,
    on_placed: Callable[[list[Placed]], None] = lambda _: None,
) -> Sent:
    """Put each (tag, record) on the stream with the producer (validated, batched, failed
    records resent); `on_placed` is told of records as the stream takes them. Given
    `waiting`, follow what the service did with them (see billing_cli.outcomes)."""
    events: dict[object, UsageEvent] = {}
    for tag, data in items:
        decoded = decode_record(data)
        if isinstance(decoded, UsageEvent):
            events[tag] = decoded
    claimed = set()
    if waiting is not None:
        try:
            pairs = [(e.account_id, e.event_id) for e in events.values()]
            claimed = claimed_before(deployment, pairs, waiting.now)
        except StoreError as error:
            return Sent(len(items), error=f"cannot read the ledgers before sending: {error}")
    sent = _put(deployment, items, on_placed)
    if waiting is not None:
        tracker = OutcomeTracker(
            deployment, waiting.now, sleep=waiting.sleep or pause, clock=waiting.clock
        )
        records = [
            SentRecord(
                p.tag,
                events[p.tag].account_id,
                events[p.tag].event_id,
                p.shard_id,
                p.sequence_number,
            )
            for p in sent.placed
        ]
        sent.outcomes = tracker.follow(records, claimed, waiting.seconds)
    return sent


def _put(
    deployment: Deployment,
    items: Sequence[tuple[object, bytes]],
    on_placed: Callable[[list[Placed]], None],
) -> Sent:
    producer = UsageProducer(
        deployment.output(STACK_OUTPUTS.usage_stream_name), client=deployment.client("kinesis")
    )
    sent = Sent(len(items))
    told = 0

    def tell() -> None:
        nonlocal told
        placed = producer.report.placed
        if len(placed) > told:
            on_placed(placed[told:])
            told = len(placed)

    try:
        for tag, data in items:
            try:
                producer.put(data, tag=tag)
            except InvalidUsageEvent as invalid:
                rejection = invalid.rejection
                sent.refused.append((tag, str(rejection.reason), rejection.message))
            tell()
        producer.flush()
    except UsageNotSent as failure:
        sent.error = str(failure)
    except ClientError as error:
        sent.error = f"the stream refused the records: {error.response['Error'].get('Code')}"
    tell()
    sent.placed = list(producer.report.placed)
    sent.calls = producer.report.calls
    sent.resent = producer.report.resent
    return sent


def outcome_json(outcomes: Outcomes | None) -> dict[str, Any]:
    return {} if outcomes is None else {"outcomes": outcomes.counts()}
