"""Spend-alert claims: one item per (account, period, currency, threshold) in the ledger
table, created only if absent, so each alert is published at most once however often the
stream delivers the write that crossed it (see docs/usage-api.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from billing.core.periods import Period
from billing.core.spend import Crossing
from billing.store.errors import VersionConflict, translated
from billing.store.ledger_items import account_key

ALERT_PREFIX: Final = "ALERT#"
# A claim outlives any redelivery of its period's stream records by far.
CLAIM_RETENTION: Final = timedelta(days=400)


def claim_key(crossing: Crossing) -> dict[str, dict[str, str]]:
    sort = f"{ALERT_PREFIX}{crossing.period}#{crossing.currency}#{crossing.detail()['threshold']}"
    return {"pk": {"S": account_key(crossing.account_id)}, "sk": {"S": sort}}


class AlertClaims:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, crossing: Crossing, token: str, at: datetime) -> bool:
        """Claim the alert; False if it was claimed before (by another delivery).

        The token makes the SDK's own retry of this put, after a lost answer, still find
        the claim its own."""
        end = Period.parse(crossing.period).end_day
        expires = datetime(end.year, end.month, end.day, tzinfo=UTC) + CLAIM_RETENTION
        try:
            with translated("claim spend alert"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **claim_key(crossing),
                        "token": {"S": token},
                        "claimed_at": {"S": at.astimezone(UTC).isoformat()},
                        "expires_at": {"N": str(int(expires.timestamp()))},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except VersionConflict:
            with translated("load spend alert claim"):
                response = self._client.get_item(
                    TableName=self._table, Key=claim_key(crossing), ConsistentRead=True
                )
            return bool(response.get("Item", {}).get("token", {}).get("S") == token)
        return True

    def release(self, crossing: Crossing, token: str) -> None:
        """Give up a claim whose alert could not be published, so a retry publishes it."""
        try:
            with translated("release spend alert"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=claim_key(crossing),
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": {"S": token}},
                )
        except VersionConflict:
            return  # not ours (or already gone): nothing to release
