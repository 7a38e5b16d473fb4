"""Domain events for other systems (ERP, CRM), on the project's EventBridge bus."""

from __future__ import annotations

import json
from typing import Any, Final

from billing.store.errors import StoreError, translated

SOURCE: Final = "usage-billing"


class EventPublisher:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        with translated(f"publish {detail_type}"):
            response = self._client.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self._bus,
                    }
                ]
            )
        if response.get("FailedEntryCount"):
            raise StoreError(f"publish {detail_type}: the bus refused the event")
