"""A customer's own spend thresholds for an account (pure; docs/customer-api.md).

Besides the operator's alert amounts (`billing.core.spend`), an account's customer may set
up to THRESHOLDS_MAX thresholds of their own: absolute amounts in the account's currency,
and percentages of a monthly budget they set. Each is exact in the currency's minor unit
(a percentage's amount is rounded half up, as every amount is), and each has an id made of
its definition (`amount:100.00`, `percent:80`), so an alert claimed for it stays claimed
however often the set is stored again, and a changed threshold is a new one.

The customer API stores them (billing.store.customer_thresholds); the spend-alerts path
reads them with one GetItem per account and compares running charges with `amounts()`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from billing.core.money import Money, minor_units, multiply, plain, round_money

THRESHOLDS_MAX: Final = 10
# Far above any monthly spend, far below what a DynamoDB string or the arithmetic minds.
AMOUNT_MAX: Final = Decimal("1000000000000")
PERCENT_MAX: Final = Decimal(1000)


class ThresholdsRefused(ValueError):
    """A set of thresholds that cannot be kept; the message names the field and says why."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold: exactly one of an amount or a percentage of the budget."""

    amount: Decimal | None = None
    percent: Decimal | None = None

    @property
    def id(self) -> str:
        if self.amount is not None:
            return f"amount:{plain(self.amount)}"
        assert self.percent is not None
        return f"percent:{plain(self.percent)}"

    def document(self) -> dict[str, str]:
        if self.amount is not None:
            return {"amount": plain(self.amount)}
        assert self.percent is not None
        return {"percent": plain(self.percent)}


@dataclass(frozen=True, slots=True)
class CustomerThresholds:
    """An account's thresholds as its customer set them, in the account's currency."""

    currency: str
    budget: Decimal | None = None
    thresholds: tuple[Threshold, ...] = ()

    @classmethod
    def of(
        cls,
        currency: str,
        budget: Decimal | None,
        thresholds: Sequence[tuple[Decimal | None, Decimal | None]],
    ) -> CustomerThresholds:
        """Checked and made canonical from (amount, percent) pairs, amounts in the
        currency's minor unit; ThresholdsRefused naming the field otherwise."""
        if len(thresholds) > THRESHOLDS_MAX:
            raise ThresholdsRefused(f"thresholds: at most {THRESHOLDS_MAX}")
        if budget is not None:
            budget = _amount("budget", budget, currency)
        kept: list[Threshold] = []
        for n, (amount, percent) in enumerate(thresholds):
            field = f"thresholds.{n}"
            if (amount is None) == (percent is None):
                raise ThresholdsRefused(f"{field}: give exactly one of amount or percent")
            if amount is not None:
                threshold = Threshold(amount=_amount(f"{field}.amount", amount, currency))
            else:
                assert percent is not None
                threshold = Threshold(percent=_percent(f"{field}.percent", percent, budget))
            if any(threshold.id == other.id for other in kept):
                raise ThresholdsRefused(f"{field}: {threshold.id} is given twice")
            kept.append(threshold)
        made = cls(currency, budget, tuple(kept))
        for n, threshold in enumerate(kept):
            # A percentage too small for the currency's minor unit could never be crossed.
            if threshold.percent is not None and made._amount_of(threshold).amount == 0:
                raise ThresholdsRefused(
                    f"thresholds.{n}.percent: {plain(threshold.percent)}% of the budget is "
                    f"0 in {currency}: give a larger percentage or budget"
                )
        return made

    def amounts(self) -> list[tuple[str, Money]]:
        """Each threshold's id and amount, ascending by amount (then id)."""
        resolved = [(t.id, self._amount_of(t)) for t in self.thresholds]
        return sorted(resolved, key=lambda pair: (pair[1].amount, pair[0]))

    def _amount_of(self, threshold: Threshold) -> Money:
        if threshold.amount is not None:
            return Money(threshold.amount, self.currency)
        assert threshold.percent is not None
        assert self.budget is not None
        exact = multiply(self.budget, threshold.percent).scaleb(-2)  # exact: a shift
        return Money(round_money(exact, self.currency), self.currency)

    def document(self) -> str:
        """As stored: JSON with decimal strings, the thresholds in the order given."""
        return json.dumps(
            {
                "currency": self.currency,
                "budget": None if self.budget is None else plain(self.budget),
                "thresholds": [threshold.document() for threshold in self.thresholds],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_document(cls, text: str) -> CustomerThresholds:
        """What `document()` wrote (stored values were checked when they were set)."""
        data: dict[str, Any] = json.loads(text)
        budget = data.get("budget")
        return cls(
            data["currency"],
            None if budget is None else Decimal(budget),
            tuple(
                Threshold(
                    amount=Decimal(t["amount"]) if "amount" in t else None,
                    percent=Decimal(t["percent"]) if "percent" in t else None,
                )
                for t in data["thresholds"]
            ),
        )


def _amount(field: str, value: Decimal, currency: str) -> Decimal:
    digits = minor_units(currency)
    if not value.is_finite() or value <= 0 or value > AMOUNT_MAX:
        raise ThresholdsRefused(f"{field}: must be above 0 and at most {plain(AMOUNT_MAX)}")
    if value != round_money(value, currency):
        places = f"at most {digits} digits after the point" if digits else "a whole number"
        raise ThresholdsRefused(f"{field}: {currency} amounts have {places}")
    return round_money(value, currency)  # 100 becomes 100.00: one text for one amount


def _percent(field: str, value: Decimal, budget: Decimal | None) -> Decimal:
    if budget is None:
        raise ThresholdsRefused(f"{field}: a percentage needs a budget")
    if not value.is_finite() or value <= 0 or value > PERCENT_MAX:
        raise ThresholdsRefused(f"{field}: must be above 0 and at most {plain(PERCENT_MAX)}")
    if value != value.quantize(Decimal("0.01")):
        raise ThresholdsRefused(f"{field}: at most 2 digits after the point")
    return Decimal(plain(value.normalize()))  # one text for one percentage: 80.0 is 80
