"""Spend alerts from the ledger table's stream: each write that makes an account's running
charges reach a threshold publishes one `SpendThresholdCrossed` event; for a threshold its
customer set (billing.customer.customer_alerts), it also emails the account's address.

The stream delivers at least once, so every alert is claimed (a conditional put, see
`billing.store.alert_claims`) before it is published: a redelivered record finds the claim
and publishes nothing. If publishing fails, the claim is released and the record fails, so
Lambda delivers it again. Only a crash between claim and publish loses an alert: the
choice is at most once, never twice. The operator's thresholds stay events only: they are
the operator's (for its own systems to act on), and the customer never chose them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from billing.core.catalog import Account, Catalog, CatalogError, Plan
from billing.core.phases import Phases
from billing.core.spend import (
    DETAIL_TYPE,
    Crossing,
    SpendThresholds,
    crossings,
    risen,
    running_charges,
)
from billing.customer.customer_alerts import CustomerAlerts, Notice, Publisher
from billing.store.errors import StoreError
from billing.store.ledger_items import usage_image


class Config(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class Claims(Protocol):
    def claim(self, crossing: Crossing, token: str, at: datetime) -> bool: ...
    def release(self, crossing: Crossing, token: str) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _token() -> str:
    return uuid.uuid4().hex


class SpendAlerts:
    def __init__(
        self,
        *,
        config: Config,
        claims: Claims,
        events: Publisher,
        thresholds: SpendThresholds,
        customer: CustomerAlerts | None = None,
        clock: Callable[[], datetime] = _now,
        token: Callable[[], str] = _token,
    ) -> None:
        self._config, self._claims, self._events = config, claims, events
        self._thresholds, self._customer = thresholds, customer
        self._clock, self._token = clock, token

    def handle(
        self, old_image: dict[str, Any] | None, new_image: dict[str, Any] | None
    ) -> list[Notice]:
        """Publish (and email) the alerts one stream record's change calls for; what was
        done for each.

        Records of items other than ledgers (id chunks, archives, claims) and removals are
        ignored, as is a write that left every open period's charges as they were. Every
        crossing is tried; the first failure is raised after (so the record is delivered
        again, and the claims say what is left)."""
        after = usage_image(new_image)
        if after is None or not (self._thresholds.by_currency or self._customer):
            return []
        before = usage_image(old_image)
        before_usage = before.usage if before else {}
        if all(
            before_usage.get(period) == meters
            for period, meters in after.usage.items()
            if period not in after.closed
        ):
            return []
        priced = self._plan(after.account_id)
        if priced is None:
            return []
        account, plan, phases = priced
        old = running_charges(plan, before_usage, phases)
        new = running_charges(plan, after.usage, phases)
        if not risen(plan.currency, old, new, after.closed):
            return []  # no threshold can be crossed: the customer's are not even read
        customer = self._customer.amounts(account.id, plan.currency) if self._customer else []
        found = crossings(
            account.id, plan.currency, old, new, after.closed, self._thresholds, customer
        )
        return self._alert(found, account)

    def _alert(self, found: list[Crossing], account: Account) -> list[Notice]:
        done: list[Notice] = []
        failure: StoreError | None = None
        for crossing in found:
            try:
                if crossing.threshold_id is None:
                    if self._publish_once(crossing):
                        done.append(Notice(crossing))
                elif self._customer is not None:
                    notice = self._customer.deliver(crossing, account)
                    if notice is not None:
                        done.append(notice)
            except StoreError as error:  # this alert only: the others are still tried
                failure = failure or error
        if failure is not None:
            raise failure
        return done

    def _plan(self, account_id: str) -> tuple[Account, Plan, Phases | None] | None:
        """The account, its plan, and its phases when it changes plan (priced per phase)."""
        account = self._config.accounts([account_id]).get(account_id)
        if account is None:  # not (or no longer) an account: nobody to tell
            return None
        catalog = self._config.catalog()
        plan = catalog.plans_by_id.get(account.plan)
        if plan is None:
            raise CatalogError(f"plan {account.plan!r} is not in the catalog")
        return account, plan, Phases(account, catalog) if account.changes else None

    def _publish_once(self, crossing: Crossing) -> bool:
        token = self._token()
        if not self._claims.claim(crossing, token, self._clock()):
            return False  # a delivery before this one published it
        try:
            self._events.publish(DETAIL_TYPE, crossing.detail())
        except StoreError:
            self._claims.release(crossing, token)
            raise
        return True
