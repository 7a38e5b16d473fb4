"""An account's prepaid credit grants as its usage report shows them (CONTRACT.md 2a): what
each has left after the invoices issued so far, and what the report's period draws from it
(projected by the draw rule while the period is open, as drawn once it is invoiced).

What the issued invoices drew is read from their records (`credits`, written in the same
transaction as the balance item: the two always agree), so the usage API needs no read
beyond the account's invoice records it already lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from billing.core.catalog import Account
from billing.core.credit_draws import after, balances, draw
from billing.core.credits import Grant
from billing.core.invoice import CreditDraw, Invoice
from billing.core.money import Money
from billing.store.credit_balances import draws_from_text
from billing.store.invoice_records import InvoiceRecord


@dataclass(frozen=True, slots=True)
class GrantView:
    grant: Grant
    remaining: Money  # left after every invoice issued so far
    this_period: Money  # what the report's period draws from it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.grant.id,
            "amount": str(Money(self.grant.amount, self.remaining.currency).rounded()),
            "granted": self.grant.granted.isoformat(),
            "expires": self.grant.expires.isoformat() if self.grant.expires else None,
            "remaining": str(self.remaining),
            "this_period": str(self.this_period),
        }


def with_credits(
    account: Account, preview: Invoice, records: Iterable[InvoiceRecord]
) -> tuple[Invoice, tuple[GrantView, ...]]:
    """The preview with the credits its invoice draws (or drew), and each grant's view."""
    if not account.credits:
        return preview, ()
    currency = preview.currency
    records = list(records)
    issued = [draw_ for r in records for draw_ in draws_from_text(r.credits, currency)]
    drawn = after({}, issued)
    own = next((r for r in records if r.period == str(preview.period)), None)
    draws: tuple[CreditDraw, ...] = (
        draws_from_text(own.credits, currency)
        if own is not None
        else draw(account.credits, drawn, preview.period, preview.total)
    )
    left = balances(account.credits, drawn)
    taken = after({}, draws)
    views = tuple(
        GrantView(
            grant,
            Money(left[grant.id], currency).rounded(),
            Money(taken.get(grant.id, Decimal(0)), currency).rounded(),
        )
        for grant in account.credits
    )
    return replace(preview, credits=draws), views
