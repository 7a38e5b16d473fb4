"""The interface every charge model implements, and what pricing returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from typing import Annotated, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from billing.core.fields import MeterName, Text, printable

# Filters are printed on the invoice line they price, so they must be printable too.
FilterValue = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(printable)
]
FilterKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(printable)
]


class PriceStep(NamedTuple):
    """One step of a charge's arithmetic, kept so that an invoice line can explain itself."""

    description: str
    units: Decimal
    unit_price: Decimal | None
    amount: Decimal


class Priced(NamedTuple):
    """An exact, unrounded amount and the steps that make it up."""

    amount: Decimal
    steps: tuple[PriceStep, ...] = ()


class ChargeModel(BaseModel, ABC):
    """A plan's charge for one meter. Subclasses price a period's quantity exactly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meter: MeterName
    description: Text | None = None
    filters: dict[FilterKey, list[FilterValue]] | None = Field(default=None, max_length=10)

    @field_validator("filters")
    @classmethod
    def _filters_not_empty(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is not None:
            if not value:
                raise ValueError("must name at least one dimension, or be left out")
            for key, allowed in value.items():
                if not allowed:
                    raise ValueError(f"{key}: must list at least one value")
        return value

    @cached_property
    def filter_key(self) -> str:
        """A canonical name for the filters ('' for none), the same for any order of them."""
        if not self.filters:
            return ""
        return "&".join(
            f"{key}={','.join(sorted(set(values)))}" for key, values in sorted(self.filters.items())
        )

    @cached_property
    def line_key(self) -> str:
        """Names this charge within its plan: the meter, and its filters when it has some."""
        return f"{self.meter}|{self.filter_key}" if self.filters else self.meter

    def accepts(self, dimensions: Mapping[str, str]) -> bool:
        """Whether an event with these dimensions counts toward this charge."""
        if not self.filters:
            return True
        return all(dimensions.get(key) in allowed for key, allowed in self.filters.items())

    @abstractmethod
    def price(self, quantity: Decimal) -> Priced:
        """The exact amount for a period's `quantity` (>= 0) of this charge's meter."""

    def amount(self, quantity: Decimal) -> Decimal:
        """`price(quantity).amount` without the steps: the rater reprices running charges
        after every batch and needs only the amount. Models override it to skip building
        the steps; the property tests hold each override to `price`."""
        return self.price(quantity).amount
