"""Customer API keys and portal links in the customer keys table (billing.settings
CUSTOMER_KEYS_TABLE; docs/table-design.md, *Customer keys table*).

One item per credential, `pk` = `KEY#<key id>`, `sk` = `KEY`: the account, the kind, the
SHA-256 of the secret (never the secret), when it was created, revoked and (portal links)
expires. Every write is conditional:

- `create`: `attribute_not_exists(pk)`: a key id drawn twice (80 random bits: never in
  practice) is refused, never written over another account's key.
- `revoke`: `attribute_exists(pk) AND attribute_not_exists(revoked_at)`: sets `revoked_at`
  once; revoking again changes nothing and says when it was revoked.

The authorizer reads one item with a strongly consistent GetItem, so a revocation is seen
by the next judgement it makes. The `account` index (sparse: only key items carry
`account_id`) lists an account's credentials without their hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from billing.core.credentials import KeyRecord, KeySummary, Kind, stored_instant
from billing.core.events import parse_timestamp
from billing.settings import ACCOUNT_KEYS_INDEX
from billing.store.errors import StoreError, VersionConflict, translated

KEY_PREFIX: Final = "KEY#"
KEY_SORT: Final = "KEY"
# An expired portal link stays listed (as expired) this long before DynamoDB removes it.
PURGE_AFTER: Final = timedelta(days=30)


class KeyIdTaken(StoreError):
    """A new credential's key id is already stored: draw another."""


class UnknownKey(Exception):
    """No credential has this key id."""


@dataclass(frozen=True, slots=True)
class Revocation:
    record: KeyRecord
    revoked_now: bool  # False: it had been revoked before, at record.revoked_at


def key_of(key_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{KEY_PREFIX}{key_id}"}, "sk": {"S": KEY_SORT}}


def to_item(record: KeyRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        **key_of(record.key_id),
        "key_id": {"S": record.key_id},
        "account_id": {"S": record.account_id},
        "kind": {"S": str(record.kind)},
        "secret_hash": {"S": record.secret_hash},
        "created_at": {"S": stored_instant(record.created_at)},
    }
    if record.name is not None:
        item["key_name"] = {"S": record.name}
    if record.throttle_key_id is not None:
        item["throttle_key_id"] = {"S": record.throttle_key_id}
    if record.expires_at is not None:
        item["expires_at"] = {"S": stored_instant(record.expires_at)}
        item["purge_at"] = {"N": str(int((record.expires_at + PURGE_AFTER).timestamp()))}
    if record.revoked_at is not None:
        item["revoked_at"] = {"S": stored_instant(record.revoked_at)}
    return item


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def _instant(item: dict[str, Any], name: str) -> datetime | None:
    text = _text(item, name)
    return None if text is None else parse_timestamp(text).at


def to_summary(item: dict[str, Any]) -> KeySummary:
    created = _instant(item, "created_at")
    assert created is not None, "every key item has created_at"
    return KeySummary(
        key_id=str(item["key_id"]["S"]),
        account_id=str(item["account_id"]["S"]),
        kind=Kind(item["kind"]["S"]),
        created_at=created,
        name=_text(item, "key_name"),
        revoked_at=_instant(item, "revoked_at"),
        expires_at=_instant(item, "expires_at"),
    )


def to_record(item: dict[str, Any]) -> KeyRecord:
    summary = to_summary(item)
    return KeyRecord(
        key_id=summary.key_id,
        account_id=summary.account_id,
        kind=summary.kind,
        secret_hash=str(item["secret_hash"]["S"]),
        created_at=summary.created_at,
        name=summary.name,
        revoked_at=summary.revoked_at,
        expires_at=summary.expires_at,
        throttle_key_id=_text(item, "throttle_key_id"),
    )


class ApiKeys:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, record: KeyRecord) -> None:
        """Store a new credential; KeyIdTaken if its key id is stored already."""
        try:
            with translated("store key"):
                self._client.put_item(
                    TableName=self._table,
                    Item=to_item(record),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except VersionConflict:
            raise KeyIdTaken(f"key id {record.key_id} is taken") from None

    def get(self, key_id: str) -> KeyRecord | None:
        """The credential as stored now (a strongly consistent read: a revocation that has
        returned is seen)."""
        with translated("load key"):
            response = self._client.get_item(
                TableName=self._table, Key=key_of(key_id), ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else to_record(item)

    def for_account(self, account_id: str) -> list[KeySummary]:
        """The account's credentials, oldest first, from the index (no hashes there)."""
        index = ACCOUNT_KEYS_INDEX
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index.name,
            "KeyConditionExpression": "#account = :account",
            "ExpressionAttributeNames": {"#account": index.partition_key},
            "ExpressionAttributeValues": {":account": {"S": account_id}},
        }
        found: list[KeySummary] = []
        while True:
            with translated("list keys"):
                page = self._client.query(**request)
            found.extend(to_summary(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke(self, key_id: str, at: datetime) -> Revocation:
        """Set the credential's `revoked_at` to `at`, once. UnknownKey if there is none."""
        try:
            with translated("revoke key"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=key_of(key_id),
                    UpdateExpression="SET revoked_at = :at",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    ExpressionAttributeValues={":at": {"S": stored_instant(at)}},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except VersionConflict as conflict:
            # The refusal carries the item as it was: absent (unknown) or revoked before.
            cause = conflict.__cause__
            response = getattr(cause, "response", {}) or {}
            item = response.get("Item")
            if item is None:
                raise UnknownKey(f"no key has the id {key_id}") from None
            return Revocation(to_record(item), revoked_now=False)
        return Revocation(to_record(response["Attributes"]), revoked_now=True)
