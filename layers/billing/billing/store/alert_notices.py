"""A customer's spend alert, as its claim item tracks it: claimed (`publishing`) before its
event is published, then its one email claimed (`sending`) and settled (`sent`,
`undelivered` or `unknown`), or given back (`pending`) when SES certainly did not take it.

The item is the alert's claim in the ledger table (billing.store.alert_claims.claim_key,
`ALERT#<period>#<currency>#customer:<threshold id>@<amount>`), so the claim that makes the event at
most once also makes the email at most once. Every change is conditional on the state it
moves from and on the token of the attempt that holds it, and is a no-op for the attempt
whose write it repeats (the SDK retrying a write whose answer was lost finds its own work):
two attempts never both move the same state on. See docs/usage-api.md, "Customer
thresholds: emails".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from billing.core.spend import Crossing
from billing.store.alert_claims import claim_expiry, claim_key
from billing.store.errors import VersionConflict, translated

# The states, in the order an alert goes through them.
PUBLISHING: Final = "publishing"  # claimed; the event not known to be on the bus yet
PENDING: Final = "pending"  # the event published; the email certainly not sent yet
SENDING: Final = "sending"  # an attempt is handing the email to SES
SENT: Final = "sent"
UNDELIVERABLE: Final = "undelivered"  # SES refused the customer's address: never again
UNKNOWN: Final = "unknown"  # SES may have taken it: never again, an operator looks
SETTLED: Final = frozenset({SENT, UNDELIVERABLE, UNKNOWN})


@dataclass(frozen=True, slots=True)
class Held:
    """The claim as found: its state, the token of the attempt that last moved it, and when
    its email was claimed (`sending_at`), if it was."""

    state: str
    token: str
    sending_at: datetime | None = None


class AlertNotices:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def claim(self, crossing: Crossing, token: str, at: datetime) -> Held:
        """Claim the alert (`publishing`, under `token`) if nobody has; the claim as it is
        now either way: `Held(PUBLISHING, token)` means this attempt holds it."""
        try:
            with translated("claim customer spend alert"):
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **claim_key(crossing),
                        "state": {"S": PUBLISHING},
                        "token": {"S": token},
                        "claimed_at": {"S": at.astimezone(UTC).isoformat()},
                        "expires_at": {"N": claim_expiry(crossing)},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except VersionConflict:
            with translated("load customer spend alert"):
                response = self._client.get_item(
                    TableName=self._table, Key=claim_key(crossing), ConsistentRead=True
                )
            item = response.get("Item", {})
            # A claim with no state (none are written so) reads as settled: never resent.
            state = item.get("state", {}).get("S", UNKNOWN)
            sending_at = item.get("sending_at", {}).get("S")
            return Held(
                state,
                item.get("token", {}).get("S", ""),
                datetime.fromisoformat(sending_at) if sending_at else None,
            )
        return Held(PUBLISHING, token)

    def release(self, crossing: Crossing, token: str) -> None:
        """Give up a claim whose event the bus did not take, so a redelivery starts again."""
        try:
            with translated("release customer spend alert"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=claim_key(crossing),
                    ConditionExpression="#state = :publishing AND #token = :token",
                    ExpressionAttributeNames={"#state": "state", "#token": "token"},
                    ExpressionAttributeValues={
                        ":publishing": {"S": PUBLISHING},
                        ":token": {"S": token},
                    },
                )
        except VersionConflict:
            return  # not ours (or already gone): nothing to release

    def start_sending(self, crossing: Crossing, held: Held, token: str, at: datetime) -> bool:
        """Claim the email: `held` (as read) becomes `sending` under `token`; False if the
        claim moved on since it was read."""
        return self._update(
            crossing,
            "SET #state = :sending, #token = :token, sending_at = :at",
            "(#state = :from AND #token = :held) OR (#state = :sending AND #token = :token)",
            {
                ":sending": {"S": SENDING},
                ":token": {"S": token},
                ":at": {"S": at.astimezone(UTC).isoformat()},
                ":from": {"S": held.state},
                ":held": {"S": held.token},
            },
        )

    def settle(
        self, crossing: Crossing, token: str, state: str, *, message_id: str = "", reason: str = ""
    ) -> bool:
        """What became of the email `token`'s attempt sent: SENT, UNDELIVERABLE or UNKNOWN,
        or PENDING (certainly not sent: the next attempt may send it). Also what an attempt
        records for another's `sending` claim it found (`token`: the other's): UNKNOWN."""
        return self._update(
            crossing,
            "SET #state = :state, message_id = :id, email_reason = :reason",
            "#token = :token AND (#state = :sending OR #state = :state)",
            {
                ":state": {"S": state},
                ":token": {"S": token},
                ":sending": {"S": SENDING},
                ":id": {"S": message_id},
                ":reason": {"S": reason},
            },
        )

    def _update(
        self, crossing: Crossing, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        try:
            with translated("record customer spend alert"):
                self._client.update_item(
                    TableName=self._table,
                    Key=claim_key(crossing),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#state": "state", "#token": "token"},
                    ExpressionAttributeValues=values,
                )
        except VersionConflict:
            return False
        return True
