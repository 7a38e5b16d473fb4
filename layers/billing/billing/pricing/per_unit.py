"""per_unit: quantity × unit_price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.fields import Price
from billing.money import multiply
from billing.pricing.base import ChargeModel, Priced, PriceStep


class PerUnitCharge(ChargeModel):
    model: Literal["per_unit"]
    unit_price: Price

    def price(self, quantity: Decimal) -> Priced:
        amount = self.amount(quantity)
        return Priced(amount, (PriceStep("units", quantity, self.unit_price, amount),))

    def amount(self, quantity: Decimal) -> Decimal:
        return multiply(quantity, self.unit_price)
