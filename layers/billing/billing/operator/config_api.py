"""The operator API's service: the accounts listed a page at a time, read and written one at
a time, and the catalog read and replaced whole, each write on the version read.

Validation and the history rules are those of the command line's pushes, by the same
functions (`parse_accounts`, `check_push`, `catalog_orphans`), so a refusal reads as a push
of a file holding the one account would (`accounts[0] (ID): ...`). A write is conditional
on the stored document the caller's version names (DynamoDB's condition), so two operators
who read the same version cannot both write: the second gets a Conflict. An account is
written only if the catalog is still the one it was validated against, and a catalog only
if no account was written since it read them (billing.store.config_store), so an account
and a catalog dropping its plan cannot both be stored.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from billing.core.catalog import Account, Accounts, Catalog, CatalogError, parse_accounts
from billing.core.catalog import parse_catalog as parse_catalog_document
from billing.core.history import HistoryRewrite, check_push
from billing.invoicing.due_index import DueIndex
from billing.operator.errors import Conflict, Invalid, PreconditionRequired, Unknown
from billing.operator.rules import PUSH_LEAD, catalog_orphans, orphans_message
from billing.store.config_store import CatalogChanged, ConfigStore, Versioned
from billing.store.errors import VersionConflict

BODY: Final = "body"
ANY: Final = "*"


@dataclass(frozen=True)
class Precondition:
    """The request's If-Match (the version it read) and If-None-Match (`*`: create only)."""

    if_match: str | None = None
    if_none_match: str | None = None

    def judge(self, read: Versioned[Any] | None, what: str) -> None:
        """Refuse a write whose precondition is missing, malformed or no longer holds."""
        if self.if_match is not None and self.if_none_match is not None:
            raise Invalid("give one of If-Match (to replace) or If-None-Match: * (to create)")
        if self.if_none_match is not None:
            if self.if_none_match.strip() != ANY:
                raise Invalid("If-None-Match: only * is taken (create if none is stored)")
            if read is not None:
                raise Conflict(
                    f"{what} is already stored (version {read.version}): read it, "
                    "then replace it with If-Match"
                )
            return
        if self.if_match is None:
            raise PreconditionRequired(
                f"writing {what} needs If-Match with the version (ETag) read, or "
                "If-None-Match: * to create it"
            )
        if self.if_match.strip() == ANY:
            raise Invalid("If-Match: give the version (ETag) read; * would write blind")
        if read is None:
            raise Conflict(f"{what} is not stored: create it with If-None-Match: *")
        if _unquoted(self.if_match) != read.version:
            raise Conflict(
                f"{what} changed since version {_unquoted(self.if_match)} was read (it is at "
                f"{read.version}): read it again and apply the change to that"
            )


def _unquoted(tag: str) -> str:
    """The version an entity tag names (a weak one, `W/"..."`, names none of ours: the
    comparison is strong, as If-Match's is)."""
    return tag.strip().strip('"')


@dataclass(frozen=True)
class AccountPage:
    accounts: list[Account]
    next: str | None


class OperatorConfig:
    def __init__(
        self, *, config: ConfigStore, due_index: DueIndex, clock: Callable[[], datetime]
    ) -> None:
        self._config = config
        self._due_index = due_index
        self._clock = clock

    # --- accounts ---

    def accounts_page(self, limit: int, token: str | None = None) -> AccountPage:
        accounts, after = self._config.account_page(limit, start_key(token))
        return AccountPage(accounts, page_token(after))

    def account(self, account_id: str) -> Versioned[Account]:
        read = self._config.versioned_account(account_id)
        if read is None:
            raise Unknown(f"account {account_id!r} is not stored")
        return read

    def put_account(
        self, account_id: str, body: dict[str, Any], precondition: Precondition
    ) -> Versioned[Account]:
        """Create or replace the account, as `billing accounts push` of a file holding it."""
        document = {"id": account_id, **body}
        if document["id"] != account_id:
            raise Invalid(f"body.id: must be the path's account id {account_id!r}")
        read = self._config.versioned_account(account_id)
        precondition.judge(read, f"account {account_id!r}")
        return self._store(document, read)

    def end_account(
        self, account_id: str, end: date, precondition: Precondition
    ) -> Versioned[Account]:
        """End the subscription on `end` (exclusive: its last day is the day before): the
        account stays, with its history, as a push with that `end` would leave it."""
        read = self.account(account_id)
        if precondition.if_none_match is not None:
            raise Invalid("If-None-Match: an account is ended with If-Match only")
        precondition.judge(read, f"account {account_id!r}")
        document = read.value.model_dump(mode="json", by_alias=True)
        return self._store({**document, "end": end.isoformat()}, read)

    def _store(
        self, document: dict[str, Any], read: Versioned[Account] | None
    ) -> Versioned[Account]:
        catalog = self.catalog()
        try:
            account = parse_accounts({"accounts": [document]}, catalog.value, BODY).accounts[0]
        except CatalogError as error:
            raise Invalid(_body_problem(error)) from None
        now = self._clock()
        stored = Accounts(accounts=[read.value]) if read is not None else None
        try:
            check_push(stored, Accounts(accounts=[account]), now, lead=PUSH_LEAD)
        except HistoryRewrite as error:
            raise Conflict(f"{error}; nothing was stored") from None
        # The hint first, as a push writes it: one written for a write that then loses to
        # another is only early (harmless); a profile stored without it would never be
        # found by an hourly invoice run.
        self._due_index.pushed([read.value] if read else [], [account], now)
        try:
            return self._config.put_account_on(account, read, catalog)
        except CatalogChanged:
            raise Conflict(
                "the catalog was replaced meanwhile: nothing was stored; send the account "
                "again to have it judged against the catalog now stored"
            ) from None
        except VersionConflict:
            raise Conflict(
                f"account {account.id!r} was changed by another write meanwhile: read it "
                "again and apply the change to that"
            ) from None

    # --- the catalog ---

    def catalog(self) -> Versioned[Catalog]:
        read = self._config.versioned_catalog()
        if read is None:
            raise Unknown("no catalog has been pushed: put one first")
        return read

    def put_catalog(self, body: dict[str, Any], precondition: Precondition) -> Versioned[Catalog]:
        """Replace the catalog whole, as `billing catalog push` of a file holding it."""
        try:
            catalog = parse_catalog_document(body, BODY)
        except CatalogError as error:
            raise Invalid(str(error)) from None
        read = self._config.versioned_catalog()
        precondition.judge(read, "the catalog")
        if orphans := catalog_orphans(catalog, self._config.all_accounts()):
            raise Conflict(f"{BODY}: {orphans_message(orphans)}")
        try:
            return self._config.put_catalog_on(catalog, read)
        except VersionConflict:
            raise Conflict(
                "the catalog, or an account, was changed by another write meanwhile: read "
                "the catalog again"
            ) from None


def _body_problem(error: CatalogError) -> str:
    """A problem of the one account in the body, named by its field in the body (the
    validation sees it as the first account of an accounts document)."""
    where = f"{BODY}.{error.field}" if error.field else BODY
    return f"{where}: {error.reason}"


def page_token(key: dict[str, Any] | None) -> str | None:
    """An opaque page token: the Scan's LastEvaluatedKey (its two string keys)."""
    if key is None:
        return None
    plain = json.dumps([key["pk"]["S"], key["sk"]["S"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


def start_key(token: str | None) -> dict[str, Any] | None:
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        pk, sk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not (isinstance(pk, str) and isinstance(sk, str)):
            raise ValueError(pk, sk)
    except (ValueError, TypeError, binascii.Error):
        raise Invalid("next: is not a page token this API gave") from None
    return {"pk": {"S": pk}, "sk": {"S": sk}}
