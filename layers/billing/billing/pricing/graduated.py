"""graduated: each tier prices only the units that fall inside it."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import field_validator

from billing.money import multiply, subtract, total
from billing.pricing.base import ChargeModel, Priced, PriceStep
from billing.pricing.tiers import Tier, check_tiers


class GraduatedCharge(ChargeModel):
    model: Literal["graduated"]
    tiers: list[Tier]

    _check_tiers = field_validator("tiers")(check_tiers)

    def price(self, quantity: Decimal) -> Priced:
        steps: list[PriceStep] = []
        lower = Decimal(0)
        for number, tier in enumerate(self.tiers, start=1):
            if quantity <= lower:
                break
            upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
            units = subtract(upper, lower)
            steps.append(
                PriceStep(
                    f"tier {number}", units, tier.unit_price, multiply(units, tier.unit_price)
                )
            )
            # A tier's flat fee is owed once any quantity above 0 falls inside it.
            if tier.flat_fee:
                steps.append(PriceStep(f"tier {number} flat fee", Decimal(1), None, tier.flat_fee))
            if tier.up_to is not None:
                lower = tier.up_to
        return Priced(total(step.amount for step in steps), tuple(steps))
