"""Unpriced usage as the ledger keeps it: the events of a meter that no charge of the plan
in force took (docs/contract-notes.md, "Unpriced usage").

Two kinds, and only one is stored:

- a meter the phase's plan has **no charge** for: all its usage is unpriced, which its
  total already says, so nothing more is kept (the readers in `billing.core.unpriced_usage`
  take it from the total);
- a meter the plan charges **only through filters**: an event that passes none of them is
  rated into the total and no share. Its quantity and count go to the meter's `Unpriced`
  aggregate, with how many such events carried each value of the filtered dimension
  (`unpriced_dimension`).

Bounded and associative, so that any batching, retry or merge order gives the same bytes:
a meter keeps the counts of the `VALUES_PER_METER` smallest values (in text order; a value
is kept by its first `VALUE_CHARS` characters: `value_label`), and a period keeps values
for the `METERS_WITH_VALUES` smallest stored names only. A value kept in the whole set is kept in
every part that holds it (fewer values can only be smaller), so merging parts and then
capping gives what capping the whole gives; the events of the values not kept are the
aggregate's events less those listed ("other").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:  # usage.py imports this module: the type only, to keep imports one way
    from billing.core.catalog import Plan
    from billing.core.meters import Aggregation
    from billing.core.usage import Aggregate, MeterUsage

VALUES_PER_METER: Final = 10
VALUE_CHARS: Final = 64
METERS_WITH_VALUES: Final = 8
# What an event of a filtered meter without the filtered dimension is counted under: a
# dimension value has at least one character, so "" is never one.
NO_VALUE: Final = ""
# The share a unique_count meter's unpriced events claim their values in: a filter key always
# holds "=", and all events' share is "", so no charge's share can be named this.
UNPRICED_SHARE: Final = "unpriced"
# As stored: `,"u":[[quantity, events], {}]` beside the meter's total (a `latest` aggregate
# adds its stream order: usage.py counts it), and per value its text, its count and JSON's
# punctuation.
AGGREGATE_BYTES: Final = 90
VALUE_BYTES: Final = VALUE_CHARS + 24
_NO_VALUES: Final[Mapping[str, int]] = MappingProxyType({})


class Unpriced(NamedTuple):
    """A filtered meter's events that passed none of its charges' filters: their aggregate
    (by the meter's aggregation) and their count by value of the filtered dimension."""

    total: Aggregate
    values: Mapping[str, int] = _NO_VALUES

    def merge(self, aggregation: Aggregation, other: Unpriced) -> Unpriced:
        return Unpriced(
            self.total.merge(aggregation, other.total), merged_values(self.values, other.values)
        )


def value_label(value: str | None) -> str:
    """What an event's value of the filtered dimension is counted under: its first
    VALUE_CHARS characters, fewer if JSON escapes them to more bytes than that (the ledger
    stores JSON in ASCII: a non-ASCII character takes 6 or 12), so that a value's bytes as
    stored are bounded whatever a producer sends."""
    if value is None:
        return NO_VALUE
    label = value[:VALUE_CHARS]
    while len(json.dumps(label)) > VALUE_CHARS + 2:  # its quotes
        label = label[:-1]
    return label


def merged_values(into: Mapping[str, int], added: Mapping[str, int]) -> Mapping[str, int]:
    """Two counts by value added up, the VALUES_PER_METER smallest values kept."""
    if not added:
        return into
    counts = dict(into)
    for value, events in added.items():
        counts[value] = counts.get(value, 0) + events
    if len(counts) > VALUES_PER_METER:
        counts = {value: counts[value] for value in sorted(counts)[:VALUES_PER_METER]}
    return counts


def unpriced_dimension(plan: Plan, meter: str) -> str | None:
    """The dimension whose values a meter's unpriced events are counted by: the first (by
    name) its charges filter on, when `plan` charges the meter only through filters; None
    when every event of the meter is priced (a charge without filters) or none is (no
    charge: the meter's total says it all)."""
    charges = plan.charges_by_meter.get(meter, ())
    if not charges or any(not charge.filters for charge in charges):
        return None
    return min(key for charge in charges for key in charge.filters or {})


def capped_unpriced(meters: Mapping[str, MeterUsage]) -> Mapping[str, MeterUsage]:
    """A period's usage whose unpriced values are kept for its METERS_WITH_VALUES smallest
    stored names only (the others keep their aggregate). Returns `meters` itself when no
    name is over."""
    named = sorted(n for n, usage in meters.items() if usage.unpriced and usage.unpriced.values)
    if len(named) <= METERS_WITH_VALUES:
        return meters
    result = dict(meters)
    for name in named[METERS_WITH_VALUES:]:
        usage = meters[name]
        assert usage.unpriced is not None
        result[name] = usage._replace(unpriced=usage.unpriced._replace(values=_NO_VALUES))
    return result


def unpriced_bytes(unpriced: Unpriced | None) -> int:
    """An upper bound of the bytes a meter's unpriced usage takes as stored (the stream
    order of a `latest` aggregate left to the caller)."""
    if unpriced is None:
        return 0
    return AGGREGATE_BYTES + len(unpriced.values) * VALUE_BYTES


# The most a period's unpriced values take as stored, all meters together.
VALUES_BYTES_MAX: Final = METERS_WITH_VALUES * VALUES_PER_METER * VALUE_BYTES
