"""A customer's own spend thresholds, as the spend-alerts path serves them: read beside the
operator's (one GetItem of the account's thresholds, only for a write that raised an open
period's running charges), and each crossing claimed, published on the bus as the
operator's are, then emailed to the account's address: at most once per (account, period,
threshold), the claim item keeping which steps are done (billing.store.alert_notices).

- The event first, then the email. A claim that could not publish is given back and the
  record fails, so Lambda delivers it again and the whole alert starts over.
- The email is claimed (`sending`) before SES is called. SES certainly not taking it
  (throttled, our sending account refused or unreachable: billing.store.mailer's NotSent)
  gives it back as `pending` and fails the record: the redelivery sends it, without
  publishing again. An outcome SES leaves unknown (a timeout, a server error) is recorded
  `unknown` and never sent again, for an operator to see (logged and counted by the
  handler). An address SES refuses is recorded `undelivered`: sending again would not mend it.
- Lambda hands one account's records to one invocation at a time, in order, and delivers a
  record again only after the attempt before has ended (failed or timed out). So a
  redelivery that finds another attempt's claim still `publishing` knows that attempt
  stopped before it recorded the event published: the event may be on the bus and is not
  published again (at most once, as the operator's), but the email certainly did not
  leave, and is sent. One that finds another's `sending` claimed longer ago than the
  function's timeout and a margin (ALERT_EMAIL_LEASE_SECONDS) knows that attempt ended
  while SES may have had the message: `unknown`, never sent again. Claimed more recently,
  the other attempt may still be running (two deliveries of one record at once should not
  happen, but is not assumed away): the record fails (SendInFlight) and comes again later,
  to find the email `sent`, or still `sending` and old enough to call `unknown`. Each
  takeover is conditional on the claim as read, so of two attempts only one moves it on.

A thresholds document in a currency other than the account's plan's (possible only if the
operator moved the account to a plan of another currency since the customer set it) is
ignored: its amounts mean nothing in the account's currency. The customer sets them again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from billing.core.catalog import Account
from billing.core.seller import Issuer
from billing.core.spend import DETAIL_TYPE, Crossing
from billing.customer.alert_email import alert_email
from billing.settings import ALERT_EMAIL_LEASE_SECONDS
from billing.store.alert_notices import (
    PENDING,
    PUBLISHING,
    SENDING,
    SENT,
    UNDELIVERABLE,
    UNKNOWN,
    Held,
)
from billing.store.customer_thresholds import StoredThresholds
from billing.store.errors import StoreError
from billing.store.mailer import DeliveryUnknown, NotSent, Undeliverable


class SendInFlight(StoreError):
    """Another attempt claimed the email within the function's timeout, so it may still be
    sending it: this record is delivered again later, when that attempt has surely ended."""


class ThresholdsReader(Protocol):
    def get(self, account_id: str) -> StoredThresholds | None: ...


class NoticeClaims(Protocol):
    def claim(self, crossing: Crossing, token: str, at: datetime) -> Held: ...
    def release(self, crossing: Crossing, token: str) -> None: ...
    def start_sending(self, crossing: Crossing, held: Held, token: str, at: datetime) -> bool: ...
    def settle(
        self, crossing: Crossing, token: str, state: str, *, message_id: str = "", reason: str = ""
    ) -> bool: ...


class Publisher(Protocol):
    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Sender(Protocol):
    def send_raw(self, raw: bytes, to: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Notice:
    """What one attempt did for an alert: `published` its event, and its customer email's
    state when this attempt settled it (`sent`, `undelivered`, `unknown`), else None (no
    email: an operator's threshold, or nothing left to send)."""

    crossing: Crossing
    published: bool = True
    email: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _token() -> str:
    return uuid.uuid4().hex


class CustomerAlerts:
    def __init__(
        self,
        *,
        thresholds: ThresholdsReader,
        claims: NoticeClaims,
        events: Publisher,
        mailer: Sender,
        issuer: Issuer,
        clock: Callable[[], datetime] = _now,
        token: Callable[[], str] = _token,
        sending_grace: timedelta = timedelta(seconds=ALERT_EMAIL_LEASE_SECONDS),
    ) -> None:
        self._thresholds, self._claims, self._events = thresholds, claims, events
        self._mailer, self._issuer = mailer, issuer
        self._clock, self._token = clock, token
        self._sending_grace = sending_grace

    def amounts(self, account_id: str, currency: str) -> list[tuple[str, Decimal]]:
        """The account's own thresholds, (id, amount) ascending; none when its customer set
        none, or set them in another currency than `currency` (the account's)."""
        stored = self._thresholds.get(account_id)
        if stored is None or stored.thresholds.currency != currency:
            return []
        return [(key, money.amount) for key, money in stored.thresholds.amounts()]

    def deliver(self, crossing: Crossing, account: Account) -> Notice | None:
        """Publish and email the alert, resuming what an earlier attempt left; what this
        attempt did, or None when it had nothing left to do. StoreError (NotSent among
        them) when the record must be delivered again: the claim says what is left."""
        at = self._clock()
        # Made before anything is claimed: nothing can fail between the claim and the send.
        raw = alert_email(crossing, account, self._issuer, at)
        token = self._token()
        held = self._claims.claim(crossing, token, at)
        published = False
        if held == Held(PUBLISHING, token):  # ours: a new alert
            try:
                self._events.publish(DETAIL_TYPE, crossing.detail())
            except StoreError:
                self._claims.release(crossing, token)
                raise
            published = True
        elif held.state == SENDING:  # another attempt's: stopped, or (seldom) still running
            if held.sending_at is not None and at - held.sending_at < self._sending_grace:
                raise SendInFlight("another attempt is sending this alert's email")
            settled = self._claims.settle(
                crossing, held.token, UNKNOWN, reason="the attempt sending it stopped"
            )
            return Notice(crossing, False, UNKNOWN) if settled else None
        elif held.state not in (PUBLISHING, PENDING):
            return None  # settled: sent, undelivered or unknown
        if not self._claims.start_sending(crossing, held, token, at):
            return Notice(crossing, published, None) if published else None
        return Notice(crossing, published, self._send(crossing, account, token, raw))

    def _send(self, crossing: Crossing, account: Account, token: str, raw: bytes) -> str:
        """SES's one send under the email claim `token` holds; the state it was settled in.
        Raises NotSent, the claim given back as pending, when it certainly did not leave."""
        try:
            message_id = self._mailer.send_raw(raw, account.email)
        except Undeliverable as error:
            self._claims.settle(crossing, token, UNDELIVERABLE, reason=str(error))
            return UNDELIVERABLE
        except NotSent:
            self._claims.settle(crossing, token, PENDING)
            raise
        except DeliveryUnknown as error:
            # Perhaps sent: never again automatically (the handler logs and counts it).
            self._claims.settle(crossing, token, UNKNOWN, reason=str(error))
            return UNKNOWN
        self._claims.settle(crossing, token, SENT, message_id=message_id)
        return SENT
