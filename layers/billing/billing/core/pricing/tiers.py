"""Tiers shared by the graduated and volume models."""

from __future__ import annotations

import itertools
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from billing.core.fields import PositiveQuantity, Price


class Tier(BaseModel):
    """A price band. `up_to` is inclusive and cumulative; None means no upper bound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    up_to: PositiveQuantity | None
    unit_price: Price
    flat_fee: Price = Decimal(0)


def check_tiers(tiers: list[Tier]) -> list[Tier]:
    """Tiers must rise strictly and end with one that has no upper bound."""
    if not tiers:
        raise ValueError("must have at least one tier")
    bounds = [tier.up_to for tier in tiers[:-1]]
    if None in bounds:
        raise ValueError("only the last tier may have up_to: null")
    if tiers[-1].up_to is not None:
        raise ValueError("the last tier must have up_to: null so that every quantity is priced")
    for lower, upper in itertools.pairwise(bounds):
        if upper <= lower:  # type: ignore[operator]  # None was ruled out above
            raise ValueError(f"up_to must rise from tier to tier ({upper} follows {lower})")
    return tiers
