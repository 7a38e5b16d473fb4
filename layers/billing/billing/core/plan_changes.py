"""Plan changes on an account (CONTRACT.md 2a, "Phases"): the model of one change as the
accounts file gives it, and the checks a list of them passes against the catalog's plans.
Which plan is in force when, and what an invoice makes of it, is in billing.core.phases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, StringConstraints

from billing.core.fields import LocalDate

PlanId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class PlanChange(BaseModel):
    """`plan` is in force from local midnight at the start of `effective` on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effective: LocalDate
    plan: PlanId


class _Priced(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def currency(self) -> str: ...


class _Subscription(Protocol):
    @property
    def plan(self) -> str: ...
    @property
    def start(self) -> date | None: ...
    @property
    def end(self) -> date | None: ...
    @property
    def changes(self) -> Sequence[PlanChange]: ...


def change_problem(
    account: _Subscription, plans: Mapping[str, _Priced]
) -> tuple[int, str, str] | None:
    """The account's first change that cannot be: (its position, its field, why), or None.

    Each is after `start` and the change before it, before `end`, to a known plan other
    than the one in force before it, in the currency of the account's `plan` (known)."""
    first = plans[account.plan]
    plan, after, end = first, account.start, account.end
    for c, change in enumerate(account.changes):
        if after is not None and change.effective <= after:
            earlier = "start" if c == 0 else "the change before it"
            return c, "effective", f"must be after {earlier} ({after})"
        if end is not None and change.effective >= end:
            return c, "effective", f"must be before end ({end}, exclusive)"
        new = plans.get(change.plan)
        if new is None:
            return c, "plan", f"unknown plan {change.plan!r}"
        if new.id == plan.id:
            return c, "plan", f"{new.id!r} is already the plan in force before it"
        if new.currency != first.currency:
            return (
                c,
                "plan",
                f"{new.id!r} is in {new.currency}; every plan of the account must be in "
                f"{first.currency} like {first.id!r}",
            )
        plan, after = new, change.effective
    return None
