"""Spend thresholds: which amounts a ledger write made an account's running charges reach
(pure; see docs/usage-api.md, "Spend alerts"): the operator's (this module's
SpendThresholds, one setting per deployment) and the customer's own (an account's
`billing.core.customer_thresholds`, each named by its id).

An account's running charges for a period are its usage lines priced from the ledger's
aggregates with the catalog in force, each rounded as the invoice will round it, before
the fixed fee, the minimum commitment and tax. A threshold T is crossed by a write that
takes them from below T to T or more: reaching T exactly counts. Only open periods count:
a period the write closes leaves the ledger's charges, so it never alerts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, TypeAdapter, ValidationError

from billing.core.catalog import Plan
from billing.core.fields import PositiveQuantity, readable
from billing.core.invoice import charge_amount
from billing.core.money import is_currency, plain, round_money, total
from billing.core.periods import Period
from billing.core.phases import Phases
from billing.core.usage import MeterUsage

DETAIL_TYPE = "SpendThresholdCrossed"
# Who set the threshold a crossing reached: the event's `set_by` (the envelope's `source`
# is the project's, "usage-billing", for every event).
SET_BY_OPERATOR = "operator"
SET_BY_CUSTOMER = "customer"


class ThresholdsError(ValueError):
    """The thresholds setting cannot be used; the message says where and why."""


def _currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


_SETTING = TypeAdapter(
    dict[Annotated[str, AfterValidator(_currency)], list[PositiveQuantity]],
)


@dataclass(frozen=True, slots=True)
class SpendThresholds:
    """Alert amounts per currency, ascending, each exact in the currency's minor unit."""

    by_currency: Mapping[str, tuple[Decimal, ...]]

    @classmethod
    def parse(cls, text: str | None) -> SpendThresholds:
        """From JSON such as {"USD": ["100", "1000"], "JPY": ["10000"]}: amounts as decimal
        strings (a JSON number with a fraction is refused, as it would be read as a float).
        No setting, or an empty one, means no alerts."""
        if not text or not text.strip():
            return cls({})
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise ThresholdsError(f"spend thresholds are not JSON: {error.msg}") from None
        try:
            setting = _SETTING.validate_python(document)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ThresholdsError(f"spend thresholds: {where}: {readable(first)}") from None
        by_currency: dict[str, tuple[Decimal, ...]] = {}
        for currency, amounts in setting.items():
            for amount in amounts:
                if round_money(amount, currency) != amount:
                    raise ThresholdsError(
                        f"spend thresholds: {currency}: {plain(amount)} has more decimals "
                        f"than {currency} has"
                    )
            by_currency[currency] = tuple(
                sorted({round_money(amount, currency) for amount in amounts})
            )
        return cls(by_currency)

    def for_currency(self, currency: str) -> tuple[Decimal, ...]:
        return self.by_currency.get(currency, ())


@dataclass(frozen=True, slots=True)
class Crossing:
    """An account's running charges for a period reached `threshold`: `subtotal` now.
    `threshold_id` names a customer's threshold (`amount:100.00`, `percent:80`); None for
    the operator's."""

    account_id: str
    period: str
    currency: str
    threshold: Decimal
    subtotal: Decimal
    threshold_id: str | None = None

    @property
    def set_by(self) -> str:
        return SET_BY_OPERATOR if self.threshold_id is None else SET_BY_CUSTOMER

    def detail(self) -> dict[str, Any]:
        """The `SpendThresholdCrossed` event's detail: amounts as plain decimal strings;
        `set_by`, and a customer's threshold's `threshold_id`, added to the first shape
        (fields are only ever added)."""
        detail = {
            "account_id": self.account_id,
            "period": self.period,
            "currency": self.currency,
            "threshold": plain(self.threshold),
            "subtotal": plain(self.subtotal),
            "set_by": self.set_by,
        }
        if self.threshold_id is not None:
            detail["threshold_id"] = self.threshold_id
        return detail


def running_charges(
    plan: Plan, usage: Mapping[str, Mapping[str, MeterUsage]], phases: Phases | None = None
) -> dict[str, dict[str, Decimal]]:
    """Running charges by period, then charge line, priced now from the aggregates: each
    usage line rounded as the invoice will round it, with the catalog in force (so a price
    change shows at once, not when a new event touches the meter). An account that changes
    plan (`phases`) has each phase's lines, as its invoice will, keyed with the phase's mark."""
    if phases is None:
        return {
            period: {
                charge.line_key: charge_amount(charge, meters.get(charge.meter), plan.currency)
                for charge in plan.charges
            }
            for period, meters in usage.items()
        }
    return {period: _phased(phases, period, meters) for period, meters in usage.items()}


def _phased(phases: Phases, period: str, meters: Mapping[str, MeterUsage]) -> dict[str, Decimal]:
    charges: dict[str, Decimal] = {}
    for phase in phases.in_period(Period.parse(period)):
        own, currency = phase.usage(meters), phase.plan.currency
        for charge in phase.plan.charges:
            amount = charge_amount(charge, own.get(charge.meter), currency)
            charges[charge.line_key + phase.suffix] = amount
    return charges


def running_subtotal(charges: Mapping[str, Decimal], currency: str) -> Decimal:
    """A period's running charges: the sum of its rounded usage lines."""
    return round_money(total(charges.values()), currency)


def risen(
    currency: str,
    before: Mapping[str, Mapping[str, Decimal]],
    after: Mapping[str, Mapping[str, Decimal]],
    closed: Set[str],
) -> dict[str, tuple[Decimal, Decimal]]:
    """The open periods whose running charges the change from `before` to `after` raised:
    (old, new) subtotals by period. Only these can cross a threshold."""
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for period in sorted(after):
        if period in closed:
            continue
        old = running_subtotal(before.get(period, {}), currency)
        new = running_subtotal(after[period], currency)
        if new > old:
            found[period] = (old, new)
    return found


def crossings(
    account_id: str,
    currency: str,
    before: Mapping[str, Mapping[str, Decimal]],
    after: Mapping[str, Mapping[str, Decimal]],
    closed: Set[str],
    thresholds: SpendThresholds,
    customer: Sequence[tuple[str, Decimal]] = (),
) -> list[Crossing]:
    """The thresholds that the change from `before` to `after` (running charges by period,
    then by charge line) reached, per open period: those with old < T <= new. `customer`:
    the account's own thresholds, (id, amount) in `currency`, each crossing on its own
    (an operator's and a customer's threshold of the same amount are two alerts)."""
    named: list[tuple[str | None, Decimal]] = [
        *((None, amount) for amount in thresholds.for_currency(currency)),
        *customer,
    ]
    if not named:
        return []
    return [
        Crossing(account_id, period, currency, threshold, new, threshold_id)
        for period, (old, new) in risen(currency, before, after, closed).items()
        for threshold_id, threshold in named
        if old < threshold <= new
    ]
