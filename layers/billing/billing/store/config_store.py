"""The catalog and the accounts in DynamoDB, stored as the validated documents of their files.

Reads go through a short-lived cache: a handler sees a pushed catalog or account within
`ttl` seconds, without reading the table for every batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from billing.core.catalog import Account, Accounts, Catalog, CatalogError, parse_catalog
from billing.settings import CONFIG_CACHE_SECONDS
from billing.store.batches import batch_get, batch_write
from billing.store.errors import translated
from billing.store.retry import Sleep

CATALOG_KEY: Final = {"pk": {"S": "CATALOG"}, "sk": {"S": "CURRENT"}}
PROFILE_SORT_KEY: Final = "PROFILE"
_BATCH_MAX: Final = 100


def _profile_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": PROFILE_SORT_KEY}}


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
