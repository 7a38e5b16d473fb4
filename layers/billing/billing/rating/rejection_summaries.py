"""A rater batch's UsageRejected summaries (billing.core.usage_rejected), published on the
bus once the batch's quarantine writes are done: the rejections the batch kept in the
quarantine itself (the rating service passes no other), none of the records it fails
back, which are decided when Lambda delivers them again, and none an earlier delivery
kept, which that one counted (or, stopped before publishing, never will: docs/webhooks.md).
Each summary's id names the records it counts (billing.core.usage_rejected).

Publishing is best effort: a summary the bus still refuses after the PUBLISH retries is
logged and dropped, and the batch's records are not failed for it (they are rated and
quarantined; `billing rejected list` shows them). docs/webhooks.md."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, Field

from billing.core.usage_rejected import DETAIL_TYPE, RejectedRecord, batch_ranges, summaries
from billing.rating.records import RecordResult, StreamRecord
from billing.settings import EVENT_BUS_ENV, RatingSettings

logger = logging.getLogger(__name__)


class RaterSettings(RatingSettings):
    """rate_usage's, with the bus its batches' summaries go to: the stack always names it;
    rating on its own (tests, benchmarks) may not, and then publishes none."""

    event_bus_name: Annotated[
        str | None, BeforeValidator(lambda v: v or None), Field(validation_alias=EVENT_BUS_ENV)
    ] = None


class Publisher(Protocol):
    def publish_all(self, events: Sequence[tuple[str, dict[str, Any]]]) -> dict[int, str]: ...


@dataclass
class RejectionSummaries:
    events: Publisher
    unpublished: int = 0  # summaries the bus refused, since this container started

    def __call__(
        self, records: Sequence[StreamRecord], results: Sequence[RecordResult], now: datetime
    ) -> int:
        """Publish the batch's summaries; how many the bus refused (0 with none to send)."""
        rejected = [
            RejectedRecord(
                result.record.shard_id,
                result.record.sequence_number,
                result.account_id,
                str(result.rejection.reason),
                _arrival(result.record, now),
            )
            for result in results
            if result.rejection is not None
        ]
        if not rejected:
            return 0
        ranges = batch_ranges([(record.shard_id, record.sequence_number) for record in records])
        details = summaries(rejected, ranges, now)
        failed = self.events.publish_all([(DETAIL_TYPE, detail) for detail in details])
        if failed:
            self.unpublished += len(failed)
            logger.warning(
                "UsageRejected summaries not published",
                extra={"summaries": len(failed), "reasons": sorted(set(failed.values()))},
            )
        return len(failed)


def _arrival(record: StreamRecord, now: datetime) -> datetime:
    """When the stream took the record (a record made by hand may not say: now)."""
    if record.arrival_timestamp > 0:
        return datetime.fromtimestamp(record.arrival_timestamp, UTC)
    return now
