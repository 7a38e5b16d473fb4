"""A customer's own spend thresholds, one item per account in the config table
(docs/table-design.md, "Customer thresholds").

    pk  THRESHOLDS#<account_id>   sk  CURRENT
    doc  S (JSON, billing.core.customer_thresholds)   v  N   updated_at  S

Its own partition key prefix (not `ACCOUNT#`, the operators' profiles) lets the customer
API's role be limited to these items (`dynamodb:LeadingKeys`), and keeps them out of the
account scans (`sk = PROFILE`). The alerts path reads one item per account, a GetItem (or
beside the profile in the BatchGetItem it already makes).

One writer: the customer API's PUT, for the caller's own account. A PUT replaces the whole
set: the new document is a function of the request alone (no read, modify, write), so two
PUTs at once leave one of them whole, never a mix, and a retry of one writes the same
document again. `v` counts the writes (an UpdateItem's ADD, atomic), for a reader that
caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from billing.core.customer_thresholds import CustomerThresholds
from billing.store.errors import translated

THRESHOLDS_PREFIX: Final = "THRESHOLDS#"
THRESHOLDS_SORT_KEY: Final = "CURRENT"


def thresholds_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{THRESHOLDS_PREFIX}{account_id}"}, "sk": {"S": THRESHOLDS_SORT_KEY}}


@dataclass(frozen=True, slots=True)
class StoredThresholds:
    thresholds: CustomerThresholds
    version: int
    updated_at: datetime


class ThresholdsStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, account_id: str) -> StoredThresholds | None:
        """The account's thresholds as last stored; None when its customer never set any."""
        with translated("load customer thresholds"):
            response = self._client.get_item(
                TableName=self._table, Key=thresholds_key(account_id), ConsistentRead=True
            )
        item = response.get("Item")
        return None if item is None else _stored(item)

    def put(
        self, account_id: str, thresholds: CustomerThresholds, at: datetime
    ) -> StoredThresholds:
        """Replace the account's thresholds with `thresholds`; what is stored now."""
        with translated("store customer thresholds"):
            response = self._client.update_item(
                TableName=self._table,
                Key=thresholds_key(account_id),
                UpdateExpression="SET #doc = :doc, updated_at = :at ADD v :one",
                ExpressionAttributeNames={"#doc": "doc"},
                ExpressionAttributeValues={
                    ":doc": {"S": thresholds.document()},
                    ":at": {"S": at.astimezone(UTC).isoformat()},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        return _stored(response["Attributes"])


def _stored(item: dict[str, Any]) -> StoredThresholds:
    return StoredThresholds(
        CustomerThresholds.from_document(item["doc"]["S"]),
        int(item["v"]["N"]),
        datetime.fromisoformat(item["updated_at"]["S"]),
    )
