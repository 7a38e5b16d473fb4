"""Charge models: one class per model behind `ChargeModel`. Adding a model is adding a file
and naming its class in `Charge` below."""

from typing import Annotated

from pydantic import Field

from billing.core.pricing.base import ChargeModel, Priced, PriceStep
from billing.core.pricing.graduated import GraduatedCharge
from billing.core.pricing.package import PackageCharge
from billing.core.pricing.per_unit import PerUnitCharge
from billing.core.pricing.tiers import Tier
from billing.core.pricing.volume import VolumeCharge

Charge = Annotated[
    PerUnitCharge | GraduatedCharge | VolumeCharge | PackageCharge,
    Field(discriminator="model"),
]

__all__ = [
    "Charge",
    "ChargeModel",
    "GraduatedCharge",
    "PackageCharge",
    "PerUnitCharge",
    "PriceStep",
    "Priced",
    "Tier",
    "VolumeCharge",
]
