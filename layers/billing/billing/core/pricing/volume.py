"""volume: every unit at the price of the one tier the total falls into."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import field_validator

from billing.core.money import multiply, total
from billing.core.pricing.base import ChargeModel, Priced, PriceStep
from billing.core.pricing.tiers import Tier, check_tiers


class VolumeCharge(ChargeModel):
    model: Literal["volume"]
    tiers: list[Tier]

    _check_tiers = field_validator("tiers")(check_tiers)

    def price(self, quantity: Decimal) -> Priced:
        if quantity.is_zero():
            return Priced(Decimal(0))
        number, tier = next(
            (number, tier)
            for number, tier in enumerate(self.tiers, start=1)
            if tier.up_to is None or quantity <= tier.up_to
        )
        steps = [
            PriceStep(
                f"tier {number}", quantity, tier.unit_price, multiply(quantity, tier.unit_price)
            )
        ]
        if tier.flat_fee:
            steps.append(PriceStep(f"tier {number} flat fee", Decimal(1), None, tier.flat_fee))
        return Priced(total(step.amount for step in steps), tuple(steps))
