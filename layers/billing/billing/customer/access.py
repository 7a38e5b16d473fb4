"""Giving customers access, for the operator's commands (`billing keys create|list|revoke`,
`billing portal-link`): credentials made and stored, each with the API Gateway key it is
throttled under (docs/customer-access.md).

A new key's throttle key is created before the key is stored, so a key the operator is
shown works at once; were the store to fail after it, the throttle key left behind is
disabled (if API Gateway can be reached), and in any case no credential names it, so it
lets nothing in. A revoked key's throttle key is
disabled, which API Gateway checks on each request: in practice that refuses the key
before the authorizer's cached answer for it runs out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from billing.core.credentials import (
    Credential,
    KeyRecord,
    KeySummary,
    Kind,
    check_key_id,
    check_name,
    generate,
    portal_hours,
    portal_link,
    portal_throttle_value,
    throttle_value,
)
from billing.store.api_keys import ApiKeys, KeyIdTaken, Revocation, UnknownKey
from billing.store.errors import StoreError
from billing.store.throttle_keys import ThrottleKeys, ThrottleKeyTaken

# A drawn key id that is taken (80 random bits: never in practice) is drawn again, this often.
_DRAWS: Final = 3


class AccessRefused(Exception):
    """The operation cannot be done as asked; the message says why."""


class Accounts(Protocol):
    def accounts(self, account_ids: Iterable[str]) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Issued:
    """A credential as made: shown once (its secret is nowhere else), and as stored."""

    credential: Credential
    record: KeyRecord


def _now() -> datetime:
    return datetime.now(UTC)


class CustomerAccess:
    def __init__(
        self,
        *,
        keys: ApiKeys,
        throttle: ThrottleKeys,
        accounts: Accounts,
        api_url: str,
        clock: Callable[[], datetime] = _now,
        new_credential: Callable[[], Credential] = generate,
    ) -> None:
        self._keys, self._throttle, self._accounts = keys, throttle, accounts
        self._api_url, self._clock, self._new = api_url, clock, new_credential

    def create_key(self, account_id: str, name: str | None = None) -> Issued:
        """A new API key for a known account; AccessRefused for an unknown one or a bad name."""
        self._known(account_id)
        if name is not None:
            try:
                check_name(name)
            except ValueError as error:
                raise AccessRefused(str(error)) from None
        for _ in range(_DRAWS):
            credential = self._new()
            try:
                throttle = self._throttle.create(
                    credential.key_id,
                    throttle_value(credential.key_id),
                    f"throttle of customer key {credential.key_id} of {account_id}",
                )
            except ThrottleKeyTaken:
                continue
            record = KeyRecord(
                key_id=credential.key_id,
                account_id=account_id,
                kind=Kind.KEY,
                secret_hash=credential.secret_hash,
                created_at=self._instant(),
                name=name,
                throttle_key_id=throttle,
            )
            try:
                self._keys.create(record)
            except KeyIdTaken:
                self._throttle.disable(throttle)
                continue
            except StoreError:
                # Nothing names this throttle key; disabled, it is not even counted under.
                with contextlib.suppress(StoreError):
                    self._throttle.disable(throttle)
                raise
            return Issued(credential, record)
        raise AccessRefused(f"no free key id after {_DRAWS} draws: try again")

    def create_portal_link(self, account_id: str, hours: int) -> tuple[str, Issued]:
        """A portal link for a known account, valid `hours` from now; the link and its
        credential. An account's links share one throttle key."""
        self._known(account_id)
        try:
            lasts = portal_hours(hours)
        except ValueError as error:
            raise AccessRefused(str(error)) from None
        throttle = self._throttle.ensure(
            f"portal-{account_id}",
            portal_throttle_value(account_id),
            f"throttle of the portal links of {account_id}",
        )
        for _ in range(_DRAWS):
            credential = self._new()
            now = self._instant()
            record = KeyRecord(
                key_id=credential.key_id,
                account_id=account_id,
                kind=Kind.PORTAL,
                secret_hash=credential.secret_hash,
                created_at=now,
                name="portal link",
                expires_at=now + lasts,
                throttle_key_id=throttle,
            )
            try:
                self._keys.create(record)
            except KeyIdTaken:
                continue
            return portal_link(self._api_url, account_id, credential), Issued(credential, record)
        raise AccessRefused(f"no free key id after {_DRAWS} draws: try again")

    def list_keys(self, account_id: str) -> list[KeySummary]:
        self._known(account_id)
        return self._keys.for_account(account_id)

    def revoke(self, key_id: str) -> Revocation:
        """Revoke a key or portal link (once: again, it says when it was); a key's
        throttle key is disabled, again too, in case an earlier attempt stopped before."""
        if key_id.startswith("bk_"):
            # a whole credential pasted by mistake: refused before it goes anywhere
            raise AccessRefused("give the key id (as `billing keys list` shows), not the key")
        try:
            check_key_id(key_id)
        except ValueError as error:
            raise AccessRefused(str(error)) from None
        try:
            revocation = self._keys.revoke(key_id, self._instant())
        except UnknownKey as unknown:
            raise AccessRefused(str(unknown)) from None
        record = revocation.record
        if record.kind is Kind.KEY and record.throttle_key_id is not None:
            self._throttle.disable(record.throttle_key_id)
        return revocation

    def now(self) -> datetime:
        return self._clock()

    def _instant(self) -> datetime:
        return self._clock().astimezone(UTC).replace(microsecond=0)

    def _known(self, account_id: str) -> None:
        if account_id not in self._accounts.accounts([account_id]):
            raise AccessRefused(f"account {account_id!r} is not known")
