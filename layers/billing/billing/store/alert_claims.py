"""Spend-alert claims: one item per (account, period, currency, threshold) in the ledger
table, created only if absent, so each alert is published at most once however often the
stream delivers the write that crossed it (see docs/usage-api.md).

An operator's threshold is named by its amount (`ALERT#2026-11#USD#100.00`, the key claims
had from the start, so claims made before customers had thresholds still hold); a
customer's by its id and the amount it came to, marked
(`ALERT#2026-11#USD#customer:percent:80@400.00`): the two never share a key, whatever the
amounts, and a customer's threshold that changes (a percentage of a budget they changed)
is a new one, alerted again at its new amount. A customer's claim also carries its email's state
(billing.store.alert_notices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from billing.core.money import plain
from billing.core.periods import Period
from billing.core.spend import Crossing
from billing.store.errors import VersionConflict, translated
from billing.store.ledger_items import account_key

ALERT_PREFIX: Final = "ALERT#"
CUSTOMER_MARK: Final = "customer:"
# A claim outlives any redelivery of its period's stream records by far.
CLAIM_RETENTION: Final = timedelta(days=400)


def claim_key(crossing: Crossing) -> dict[str, dict[str, str]]:
    threshold = (
        plain(crossing.threshold)
        if crossing.threshold_id is None
        else f"{CUSTOMER_MARK}{crossing.threshold_id}@{plain(crossing.threshold)}"
    )
    sort = f"{ALERT_PREFIX}{crossing.period}#{crossing.currency}#{threshold}"
    return {"pk": {"S": account_key(crossing.account_id)}, "sk": {"S": sort}}


def claim_expiry(crossing: Crossing) -> str:
    """When the claim's item goes (TTL, epoch seconds): CLAIM_RETENTION after its period."""
    end = Period.parse(crossing.period).end_day
    expires = datetime(end.year, end.month, end.day, tzinfo=UTC) + CLAIM_RETENTION
    return str(int(expires.timestamp()))


class AlertClaims:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, crossing: Crossing, token: str, at: datetime) -> bool:
        """Claim the alert; False if it was claimed before (by another delivery).

        The token makes the SDK's own retry of this put, after a lost answer, still find
        the claim its own."""
        try:
            with translated("claim spend alert"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **claim_key(crossing),
                        "token": {"S": token},
                        "claimed_at": {"S": at.astimezone(UTC).isoformat()},
                        "expires_at": {"N": claim_expiry(crossing)},
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
