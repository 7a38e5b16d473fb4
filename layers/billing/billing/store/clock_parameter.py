"""A clock kept in an SSM parameter: the local runtime's test clock (`billing local
--clock`), which the rater takes as now and `billing clock advance` moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.core.events import parse_timestamp
from billing.core.invoice import utc_text
from billing.store.errors import translated


class ClockParameter:
    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self._name = name

    def now(self) -> datetime:
        """The clock's time (aware, UTC)."""
        with translated(f"get parameter {self._name}"):
            value = self._client.get_parameter(Name=self._name)["Parameter"]["Value"]
        return parse_timestamp(value).at

    def set(self, instant: datetime) -> None:
        """Set the clock to `instant` (an aware datetime), creating the parameter if need be."""
        with translated(f"put parameter {self._name}"):
            self._client.put_parameter(
                Name=self._name, Value=utc_text(instant), Type="String", Overwrite=True
            )
