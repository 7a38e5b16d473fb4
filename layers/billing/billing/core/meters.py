"""A catalog's meter: what is measured and how a period's events add up (its aggregation).
`billing.core.catalog` loads and cross-checks it with the rest of the catalog."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from billing.core.events import DimensionKey
from billing.core.fields import MeterName, Text

Aggregation = Literal["sum", "count", "max", "unique_count", "latest"]


class Meter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: MeterName
    unit: Text
    aggregation: Aggregation
    description: Text | None = None
    # The dimension whose distinct values a `unique_count` meter counts (CONTRACT 2a). Left
    # out of the stored document when unset: a catalog without unique_count is stored as
    # before, and a rater of the previous release still reads it.
    field: DimensionKey | None = Field(
        default=None, validate_default=True, exclude_if=lambda field: field is None
    )

    @field_validator("field")
    @classmethod
    def _only_for_unique_count(cls, field: str | None, info: ValidationInfo) -> str | None:
        aggregation = info.data.get("aggregation")
        if aggregation == "unique_count" and field is None:
            raise ValueError("is required for aggregation unique_count")
        if aggregation not in (None, "unique_count") and field is not None:
            raise ValueError(
                f"is not a known field for aggregation {aggregation} (only unique_count takes one)"
            )
        return field

    @property
    def label(self) -> str:
        return self.description or self.name
