"""The catalog and the accounts in DynamoDB, stored as the validated documents of their files.

Reads go through a short-lived cache: a handler sees a pushed catalog or account within
`ttl` seconds, without reading the table for every batch.

The operator API's writes keep the two consistent with each other (docs/operator-api.md):
an account is stored in one transaction with an Update of the catalog item, conditional
on the catalog being the one the account was validated against, which also stamps the
catalog item with a fresh `accounts_written` mark; a catalog replacement is conditional
on its item's document and that mark being as read before it looked at the accounts. So
a catalog replaced after an account was validated refuses the account, and an account
written after the catalog replacement looked at the accounts refuses the catalog.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from botocore.exceptions import ClientError

from billing.core.catalog import Account, Accounts, Catalog, CatalogError, parse_catalog
from billing.settings import CONFIG_CACHE_SECONDS
from billing.store.batches import batch_get, batch_write
from billing.store.errors import VersionConflict, translated
from billing.store.retry import Sleep

CATALOG_PARTITION: Final = "CATALOG"
CATALOG_KEY: Final = {"pk": {"S": CATALOG_PARTITION}, "sk": {"S": "CURRENT"}}
ACCOUNT_PREFIX: Final = "ACCOUNT#"
PROFILE_SORT_KEY: Final = "PROFILE"
_BATCH_MAX: Final = 100
# The catalog item's attribute each operator account write sets to a fresh mark.
ACCOUNTS_WRITTEN: Final = "accounts_written"

_Value = TypeVar("_Value", Account, Catalog)


def _profile_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{ACCOUNT_PREFIX}{account_id}"}, "sk": {"S": PROFILE_SORT_KEY}}


def document_version(document: str) -> str:
    """The version of a stored document: its digest. Every write changes it with the
    document (a push's batch write too, which could keep no counter), and a write that
    changes nothing keeps it."""
    return hashlib.sha256(document.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Versioned(Generic[_Value]):
    """A stored account or catalog, with the document it was read from and its version."""

    value: _Value
    document: str
    # a catalog's: the mark of the last operator account write since it was stored (None:
    # none); a catalog replacement is conditional on it
    accounts_written: str | None = None

    @property
    def version(self) -> str:
        return document_version(self.document)


class ConfigStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        ttl: float = CONFIG_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep
        self._ttl = ttl
        self._clock = clock
        self._catalog: tuple[float, Catalog] | None = None
        self._accounts: dict[str, tuple[float, Account | None]] = {}

    # --- writing (`billing catalog push`, `billing accounts push`) ---

    def put_catalog(self, catalog: Catalog) -> None:
        document = catalog.model_dump_json()
        with translated("store catalog"):
            self._client.put_item(
                TableName=self._table, Item={**CATALOG_KEY, "document": {"S": document}}
            )
        self._catalog = None

    def put_accounts(self, accounts: Accounts) -> None:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        **_profile_key(account.id),
                        "document": {"S": account.model_dump_json()},
                    }
                }
            }
            for account in accounts.accounts
        ]
        batch_write(self._client, self._table, requests, "store accounts", sleep=self._sleep)
        self._accounts.clear()

    # --- one at a time, on the version read (the operator API) ---

    def versioned_account(self, account_id: str) -> Versioned[Account] | None:
        """The stored account as it is now (no cache), or None."""
        item = self._get(_profile_key(account_id), "load account")
        if item is None:
            return None
        document = item["document"]["S"]
        return Versioned(Account.model_validate_json(document), document)

    def versioned_catalog(self) -> Versioned[Catalog] | None:
        """The stored catalog as it is now (no cache), or None if none was pushed."""
        item = self._get(CATALOG_KEY, "load catalog")
        if item is None:
            return None
        document = item["document"]["S"]
        mark = item.get(ACCOUNTS_WRITTEN, {}).get("S")
        return Versioned(parse_catalog(json.loads(document), "dynamodb:catalog"), document, mark)

    def put_account_on(
        self, account: Account, read: Versioned[Account] | None, catalog: Versioned[Catalog]
    ) -> Versioned[Account]:
        """Store the account if its item is still as `read` (absent, for None) and the
        catalog as `catalog` (what it was validated against); it as stored.
        VersionConflict when another write to the account came between, CatalogChanged
        when one to the catalog did."""
        document = account.model_dump_json()
        put = {
            "TableName": self._table,
            "Item": {**_profile_key(account.id), "document": {"S": document}},
            **_on(read),
        }
        stamp = {
            "TableName": self._table,
            "Key": CATALOG_KEY,
            "UpdateExpression": "SET #written = :mark",
            "ConditionExpression": "#document = :catalog",
            "ExpressionAttributeNames": {"#written": ACCOUNTS_WRITTEN, "#document": "document"},
            "ExpressionAttributeValues": {
                ":mark": {"S": uuid.uuid4().hex},
                ":catalog": {"S": catalog.document},
            },
        }
        try:
            with translated("store account"):
                try:
                    self._client.transact_write_items(
                        TransactItems=[{"Put": put}, {"Update": stamp}]
                    )
                except ClientError as error:
                    if _cancelled_by(error, 1):
                        raise CatalogChanged("store account: the catalog changed") from error
                    raise
        finally:
            self._accounts.pop(account.id, None)
            self._catalog = None
        return Versioned(account, document)

    def put_catalog_on(
        self, catalog: Catalog, read: Versioned[Catalog] | None
    ) -> Versioned[Catalog]:
        """Store the catalog if it is still as `read` (none pushed, for None); it as
        stored. VersionConflict when another write came between."""
        document = catalog.model_dump_json()
        self._put_on(CATALOG_KEY, document, read, "store catalog")
        self._catalog = None
        return Versioned(catalog, document)

    def _get(self, key: dict[str, Any], what: str) -> dict[str, Any] | None:
        with translated(what):
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _put_on(
        self, key: dict[str, Any], document: str, read: Versioned[Any] | None, what: str
    ) -> None:
        with translated(what):
            self._client.put_item(
                TableName=self._table, Item={**key, "document": {"S": document}}, **_on(read)
            )

    def account_page(
        self, limit: int, start: dict[str, Any] | None = None
    ) -> tuple[list[Account], dict[str, Any] | None]:
        """One Scan page of at most `limit` items looked at (so possibly fewer accounts,
        even none), by id; and where the next page starts, None after the last."""
        scan: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :profile",
            "ExpressionAttributeValues": {":profile": {"S": PROFILE_SORT_KEY}},
            "ConsistentRead": True,
            "Limit": limit,
            **({"ExclusiveStartKey": start} if start else {}),
        }
        with translated("list accounts"):
            response = self._client.scan(**scan)
        page = [Account.model_validate_json(item["document"]["S"]) for item in response["Items"]]
        return sorted(page, key=lambda account: account.id), response.get("LastEvaluatedKey")

    # --- reading (handlers) ---

    def catalog(self) -> Catalog:
        """The current catalog; CatalogError if none was pushed or it no longer validates."""
        now = self._clock()
        if self._catalog and now - self._catalog[0] < self._ttl:
            return self._catalog[1]
        with translated("load catalog"):
            response = self._client.get_item(
                TableName=self._table, Key=CATALOG_KEY, ConsistentRead=True
            )
        if "Item" not in response:
            raise CatalogError("no catalog has been pushed", source="dynamodb:catalog")
        catalog = parse_catalog(json.loads(response["Item"]["document"]["S"]), "dynamodb:catalog")
        self._catalog = (now, catalog)
        return catalog

    def accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The known accounts among `account_ids` (unknown ones are simply absent)."""
        now = self._clock()
        wanted = set(account_ids)
        stale = sorted(
            a for a in wanted if a not in self._accounts or now - self._accounts[a][0] >= self._ttl
        )
        for start in range(0, len(stale), _BATCH_MAX):
            chunk = stale[start : start + _BATCH_MAX]
            found = self._batch_get([_profile_key(a) for a in chunk])
            for account_id in chunk:
                self._accounts[account_id] = (now, found.get(account_id))
        known = {a: self._accounts[a][1] for a in wanted}
        return {a: account for a, account in known.items() if account is not None}

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[str, Account]:
        items = batch_get(self._client, self._table, keys, "load accounts", sleep=self._sleep)
        accounts = (Account.model_validate_json(item["document"]["S"]) for item in items)
        return {account.id: account for account in accounts}

    def read_accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        """The known accounts among `account_ids`, read now and not kept: for a reader that
        meets each account once (an hourly invoice run), which the cache would only grow."""
        wanted = sorted(set(account_ids))
        found: dict[str, Account] = {}
        for start in range(0, len(wanted), _BATCH_MAX):
            found.update(
                self._batch_get([_profile_key(a) for a in wanted[start : start + _BATCH_MAX]])
            )
        return found

    def all_accounts(self) -> list[Account]:
        """Every stored account, by id (for the command line's checks)."""
        accounts = [account for page in self.account_pages() for account in page]
        return sorted(accounts, key=lambda account: account.id)

    def account_pages(self) -> Iterator[list[Account]]:
        """Every stored account, a Scan page at a time (at most 1 MB each), by id within a
        page: a reader of a million accounts holds one page."""
        scan: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :profile",
            "ExpressionAttributeValues": {":profile": {"S": PROFILE_SORT_KEY}},
            "ConsistentRead": True,
        }
        while True:
            with translated("list accounts"):
                response = self._client.scan(**scan)
            page = [
                Account.model_validate_json(item["document"]["S"]) for item in response["Items"]
            ]
            if page:
                yield sorted(page, key=lambda account: account.id)
            if "LastEvaluatedKey" not in response:
                return
            scan["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class CatalogChanged(VersionConflict):
    """The catalog an account write was validated against was replaced meanwhile."""


def _on(read: Versioned[Any] | None) -> dict[str, Any]:
    """The condition of a write on the item `read`: the whole document read (the version
    is its digest, so the item is unchanged exactly when its document is), and for a
    catalog the mark of the last account write it saw (none: none since it was stored)."""
    if read is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    names = {"#document": "document"}
    values = {":read": {"S": read.document}}
    if not isinstance(read.value, Catalog):
        return {
            "ConditionExpression": "#document = :read",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    names["#written"] = ACCOUNTS_WRITTEN
    if read.accounts_written is None:
        written = "attribute_not_exists(#written)"
    else:
        written = "#written = :written"
        values[":written"] = {"S": read.accounts_written}
    return {
        "ConditionExpression": f"#document = :read AND {written}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _cancelled_by(error: ClientError, index: int) -> bool:
    """Whether a cancelled transaction's item at `index` failed its condition."""
    if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = error.response.get("CancellationReasons", [])
    return len(reasons) > index and reasons[index].get("Code") == "ConditionalCheckFailed"
