"""Prepaid credit grants (CONTRACT.md 2a, Credits): the model of one grant as the accounts
file gives it and its checks. The draw, what an invoice takes from an account's grants
given what earlier invoices took, is in billing.core.credit_draws.

Credits are a prepayment: they never change an invoice's subtotal, tax or total, only what
is left to pay (`amount_due`). What each grant has given so far is kept by the invoice
store and moved in the transaction that numbers the invoice (billing.store.credit_balances),
so a grant is drawn exactly once whatever runs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from billing.core.discounts import decimals
from billing.core.fields import LocalDate, PositiveQuantity, Text
from billing.core.money import minor_units
from billing.core.periods import Period

GRANTS_MAX = 100  # per account: the balance item and the report stay small


class Grant(BaseModel):
    """A prepaid credit of `amount` in the account's currency, usable by the invoices of
    periods whose last day is on or after `granted` and whose first day is before
    `expires` (exclusive; none: it never expires)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Text
    amount: PositiveQuantity
    granted: LocalDate
    expires: LocalDate | None = None

    @field_validator("expires")
    @classmethod
    def _after_granted(cls, expires: date | None, info: ValidationInfo) -> date | None:
        granted = info.data.get("granted")
        if granted and expires and expires <= granted:
            raise ValueError("must be after granted (expires is exclusive)")
        return expires

    def usable_in(self, period: Period) -> bool:
        last_day = date.fromordinal(period.end_day.toordinal() - 1)
        return last_day >= self.granted and (
            self.expires is None or period.first_day < self.expires
        )

    def draw_order(self) -> tuple[bool, date, date, str]:
        """Expiring first (no expiry last), then earliest granted, then smallest id."""
        return (self.expires is None, self.expires or date.max, self.granted, self.id)


class GrantProblem(Exception):
    """A grant that cannot be used, at its location in the accounts file.

    Not a ValueError: pydantic lets it through untouched, and the accounts loader names
    the file, the account and the field (billing.core.catalog)."""

    def __init__(self, location: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.location, self.message = location, message


def check_grants(account: int, grants: Iterable[Grant], currency: str) -> None:
    """Ids unique within the account (the `account`-th of the file), amounts within the
    currency's minor unit."""
    seen: set[str] = set()
    digits = minor_units(currency)
    for position, grant in enumerate(grants):
        where = ("accounts", account, "credits", position)
        if grant.id in seen:
            raise GrantProblem((*where, "id"), f"{grant.id!r} appears twice")
        seen.add(grant.id)
        if decimals(grant.amount) > digits:
            raise GrantProblem(
                (*where, "amount"), f"has more decimals than {currency}'s minor unit ({digits})"
            )
