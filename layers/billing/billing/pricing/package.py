"""package: ceil(quantity / package_size) × package_price."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from billing.fields import PositiveQuantity, Price
from billing.money import ceil_div, multiply
from billing.pricing.base import ChargeModel, Priced, PriceStep


class PackageCharge(ChargeModel):
    model: Literal["package"]
    package_size: PositiveQuantity
    package_price: Price

    def price(self, quantity: Decimal) -> Priced:
        packages = ceil_div(quantity, self.package_size)
        amount = multiply(packages, self.package_price)
        return Priced(
            amount,
            (PriceStep(f"packages of {self.package_size}", packages, self.package_price, amount),),
        )
