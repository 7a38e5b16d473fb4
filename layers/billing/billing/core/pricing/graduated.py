"""graduated: each tier prices only the units that fall inside it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Literal

from pydantic import field_validator

from billing.core.money import add, multiply, subtract, total
from billing.core.pricing.base import ChargeModel, Priced, PriceStep
from billing.core.pricing.tiers import Tier, check_tiers


class GraduatedCharge(ChargeModel):
    model: Literal["graduated"]
    tiers: list[Tier]

    _check_tiers = field_validator("tiers")(check_tiers)

    def price(self, quantity: Decimal) -> Priced:
        steps: list[PriceStep] = []
        for number, tier, units in self._bands(quantity):
            steps.append(
                PriceStep(
                    f"tier {number}", units, tier.unit_price, multiply(units, tier.unit_price)
                )
            )
            if tier.flat_fee:
                steps.append(PriceStep(f"tier {number} flat fee", Decimal(1), None, tier.flat_fee))
        return Priced(total(step.amount for step in steps), tuple(steps))

    def amount(self, quantity: Decimal) -> Decimal:
        amount = Decimal(0)
        for _, tier, units in self._bands(quantity):
            amount = add(amount, multiply(units, tier.unit_price))
            if tier.flat_fee:
                amount = add(amount, tier.flat_fee)
        return amount

    def _bands(self, quantity: Decimal) -> Iterator[tuple[int, Tier, Decimal]]:
        """The tiers `quantity` reaches, numbered from 1, with the units inside each. Every
        one holds some quantity above 0, so each one's flat fee is owed."""
        lower = Decimal(0)
        for number, tier in enumerate(self.tiers, start=1):
            if quantity <= lower:
                break
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            yield number, tier, subtract(upper, lower)
            if tier.up_to is not None:
                lower = tier.up_to
