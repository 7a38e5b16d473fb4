"""package: ceil(quantity / package_size) × package_price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.core.fields import PositiveQuantity, Price
from billing.core.money import ceil_div, multiply
from billing.core.pricing.base import ChargeModel, Priced, PriceStep


class PackageCharge(ChargeModel):
    model: Literal["package"]
    package_size: PositiveQuantity
    package_price: Price

    def price(self, quantity: Decimal) -> Priced:
        packages, amount = self._packages(quantity), self.amount(quantity)
        return Priced(
            amount,
            (PriceStep(f"packages of {self.package_size}", packages, self.package_price, amount),),
        )

    def amount(self, quantity: Decimal) -> Decimal:
        return multiply(self._packages(quantity), self.package_price)

    def _packages(self, quantity: Decimal) -> Decimal:
        return ceil_div(quantity, self.package_size)
