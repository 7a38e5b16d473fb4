"""Write and read units, as DynamoDB bills them.

Real DynamoDB reports ConsumedCapacity; where it does not (moto, transactions there), the
units are computed from the item-size rule: an item's size is the sum of its attribute
names' and values' sizes; a write costs one unit per started KB of the larger of the item
before and after it; a strongly consistent read one unit per started 4 KB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = len(Decimal(data).as_tuple().digits)
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(item.encode()) for item in data)
    if kind == "BS":
        return sum(len(item) for item in data)
    if kind == "NS":
        return sum(_value_size({"N": item}) for item in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + _value_size(item) + 1 for name, item in data.items())
    if kind == "L":
        return 3 + sum(_value_size(item) + 1 for item in data)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """The size DynamoDB bills for an item in low-level attribute-value form."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def write_units(*sizes: int) -> int:
    """Units for one write whose item is `sizes` bytes before and after (the larger counts)."""
    return max(1, math.ceil(max(sizes) / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool = True) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass
class CapacityMeter:
    """Units used by a store, for metrics and benchmarks."""

    write_units: float = 0.0
    read_units: float = 0.0
    writes: int = 0

    def wrote(self, units: float) -> None:
        self.write_units += units
        self.writes += 1

    def read(self, units: float) -> None:
        self.read_units += units
