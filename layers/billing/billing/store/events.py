"""Domain events for other systems (ERP, CRM), on the project's EventBridge bus."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Final

from billing.store.errors import StoreError, translated
from billing.store.retry import PUBLISH, Sleep

SOURCE: Final = "usage-billing"
PUT_EVENTS_MAX: Final = 10  # entries in one PutEvents call

Event = tuple[str, dict[str, Any]]  # detail type, detail


class _Refused(Exception):
    """Entries of one PutEvents call were refused: their reasons, by position in the
    events being published."""

    def __init__(self, reasons: dict[int, str]) -> None:
        super().__init__(f"{len(reasons)} events refused")
        self.reasons = reasons


class EventPublisher:
    def __init__(self, client: Any, bus_name: str, *, sleep: Sleep = time.sleep) -> None:
        self._client = client
        self._bus = bus_name
        self._sleep = sleep

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        failed = self.publish_all([(detail_type, detail)])
        if failed:
            raise StoreError(failed[0])

    def publish_all(self, events: Sequence[Event]) -> dict[int, str]:
        """Publish the events, ten a call; what failed, by position in `events`.

        Entries the bus refused (PutEvents answers entry by entry) are sent again under the
        PUBLISH retry policy, and so is a call that failed whole (the SDK's own retries
        already spent): EventBridge delivers at least once, so a repeat is no new risk."""
        failed: dict[int, str] = {}
        for start in range(0, len(events), PUT_EVENTS_MAX):
            pending = list(range(start, min(start + PUT_EVENTS_MAX, len(events))))
            try:
                for attempt in PUBLISH.retrying(_Refused, sleep=self._sleep):
                    with attempt:
                        refused = self._put([events[i] for i in pending])
                        reasons = {pending[i]: reason for i, reason in refused.items()}
                        pending = list(reasons)
                        if reasons:
                            raise _Refused(reasons)
            except _Refused as left:
                failed.update(left.reasons)
        return failed

    def _put(self, events: Sequence[Event]) -> dict[int, str]:
        """One PutEvents call; the refused entries' reasons, by position."""
        detail_types = sorted({detail_type for detail_type, _ in events})
        try:
            with translated(f"publish {', '.join(detail_types)}"):
                response = self._client.put_events(
                    Entries=[
                        {
                            "Source": SOURCE,
                            "DetailType": detail_type,
                            "Detail": json.dumps(detail),
                            "EventBusName": self._bus,
                        }
                        for detail_type, detail in events
                    ]
                )
        except StoreError as error:
            return dict.fromkeys(range(len(events)), str(error))
        if not response.get("FailedEntryCount"):
            return {}
        return {
            i: f"publish {events[i][0]}: the bus refused the event ({entry['ErrorCode']})"
            for i, entry in enumerate(response.get("Entries", []))
            if entry.get("ErrorCode")
        }
