"""Discounts on an account's invoices (CONTRACT.md 2a): the model of one discount as the
accounts file gives it. How a discount's line is computed is in billing.core.invoice."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator

from billing.core.fields import PositiveQuantity, Text
from billing.core.periods import Period, PeriodError


def _period_text(value: object) -> str:
    try:
        return str(Period.parse(value))  # type: ignore[arg-type]
    except PeriodError:
        raise ValueError('must be a period like "2026-10"') from None


PeriodText = Annotated[str, PlainValidator(_period_text)]


class Discount(BaseModel):
    """A discount on the invoices of `periods` consecutive periods from `from` (CONTRACT 2a):
    exactly one of `percent` (above 0, at most 100) or `amount` (above 0)."""

    # Stored and read back under the contract's field name, `from`.
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True
    )

    id: Text
    percent: PositiveQuantity | None = None
    amount: PositiveQuantity | None = None
    first: PeriodText = Field(alias="from")
    periods: int = Field(ge=1, strict=True)

    @field_validator("percent")
    @classmethod
    def _at_most_100(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and value > 100:
            raise ValueError("is a percentage above 0 and at most 100")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("needs exactly one of percent or amount")
        return self

    def applies_to(self, period: Period) -> bool:
        start = Period.parse(self.first)
        return start <= period and period.months_since(start) < self.periods


def decimals(amount: Decimal) -> int:
    exponent = amount.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
