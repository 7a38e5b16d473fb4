"""The draw (CONTRACT.md 2a, Credits): what an invoice takes from its account's prepaid
grants, given what earlier invoices took. Pure; the invoice store keeps `drawn` and moves it
in the transaction that numbers the invoice (billing.store.credit_balances)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from billing.core.credits import Grant
from billing.core.invoice import CreditDraw
from billing.core.money import Money, add, subtract
from billing.core.periods import Period

Drawn = Mapping[str, Decimal]  # grant id -> what it gave earlier invoices


def draw(
    grants: Iterable[Grant], drawn: Drawn, period: Period, total: Money
) -> tuple[CreditDraw, ...]:
    """What the invoice of `period` with this `total` draws, in drawing order, non-zero
    draws only: min(total, what its usable grants have left), taken grant by grant in
    `Grant.draw_order` (expiring first, no expiry last, then earliest granted, then id)."""
    wanted = total.amount
    draws: list[CreditDraw] = []
    usable = sorted((g for g in grants if g.usable_in(period)), key=Grant.draw_order)
    for grant in usable:
        if wanted <= 0:
            break
        taken = min(subtract(grant.amount, drawn.get(grant.id, Decimal(0))), wanted)
        if taken > 0:
            # Both sides have at most the currency's minor digits: rounding only sets the scale.
            draws.append(CreditDraw(grant.id, Money(taken, total.currency).rounded()))
            wanted = subtract(wanted, taken)
    return tuple(draws)


def after(drawn: Drawn, draws: Iterable[CreditDraw]) -> dict[str, Decimal]:
    """What each grant has given once `draws` are taken too."""
    updated = dict(drawn)
    for each in draws:
        updated[each.grant_id] = add(updated.get(each.grant_id, Decimal(0)), each.amount.amount)
    return updated


def balances(grants: Iterable[Grant], drawn: Drawn) -> dict[str, Decimal]:
    """What each grant has left, by id."""
    return {g.id: subtract(g.amount, drawn.get(g.id, Decimal(0))) for g in grants}


def draw_in_order(
    grants: Iterable[Grant], drawn: Drawn, totals: Mapping[Period, Money]
) -> tuple[dict[Period, tuple[CreditDraw, ...]], dict[str, Decimal]]:
    """The draws of several invoices of one account, oldest period first (the order they
    are issued in), and what each grant has given after them all."""
    grants = tuple(grants)
    current = dict(drawn)
    draws: dict[Period, tuple[CreditDraw, ...]] = {}
    for period in sorted(totals):
        draws[period] = draw(grants, current, period, totals[period])
        current = after(current, draws[period])
    return draws, current
