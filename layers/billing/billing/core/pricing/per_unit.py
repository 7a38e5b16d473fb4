"""per_unit: quantity × unit_price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.core.fields import Price
from billing.core.money import multiply
from billing.core.pricing.base import ChargeModel, Priced, PriceStep


class PerUnitCharge(ChargeModel):
    model: Literal["per_unit"]
    unit_price: Price

    def price(self, quantity: Decimal) -> Priced:
        amount = self.amount(quantity)
        return Priced(amount, (PriceStep("units", quantity, self.unit_price, amount),))

    def amount(self, quantity: Decimal) -> Decimal:
        return multiply(quantity, self.unit_price)
