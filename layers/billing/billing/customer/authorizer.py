"""The customer API's authorizer: an `Authorization: Bearer <credential>` header into an
IAM policy for this API and the caller's account (docs/customer-access.md).

API Gateway calls it with a REQUEST event whose identity source is the Authorization
header, and keeps its answer for that header for the cache time. So the answer must hold
for every route the caller may call: it allows this API's stage under `/v1/` (a portal
link: reads, and setting the account's thresholds), and tells the function who is asking
in its context: `account_id`, `key_id`, `kind`. Which account a route may read is the
function's rule (a route naming another account is refused there, the same way whether
that account exists or not).

`usageIdentifierKey` names the API Gateway API key the request is counted under, which is
how the usage plan throttles each key (the API's key source is AUTHORIZER).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from billing.core.credentials import (
    Grant,
    KeyRecord,
    Kind,
    MalformedCredential,
    Refused,
    from_authorization,
    judge,
)

INVOKE: Final = "execute-api:Invoke"
# What each kind of credential may call, as (method, resource path) under the stage. A key
# may call any method (the function refuses what it does not serve); a portal link reads,
# and sets its account's thresholds (the portal's one form).
ALLOWED_ROUTES: Final[Mapping[Kind, tuple[tuple[str, str], ...]]] = {
    Kind.KEY: (("*", "/v1/*"),),
    Kind.PORTAL: (("GET", "/v1/*"), ("PUT", "/v1/accounts/*/thresholds")),
}


class KeyReader(Protocol):
    def get(self, key_id: str) -> KeyRecord | None: ...


class Unauthorized(Exception):
    """Refused: API Gateway answers 401. `reason` and `key_id` are for the log only (a
    credential's secret is never kept here)."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


def _now() -> datetime:
    return datetime.now(UTC)


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value whatever its case (clients and proxies spell them differently)."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def stage_arn(method_arn: str) -> str:
    """`arn:...:<api id>/<stage>` of a method ARN `arn:...:<api id>/<stage>/<METHOD>/<path>`."""
    parts = method_arn.split("/")
    if len(parts) < 4 or not parts[0].startswith("arn:") or ":execute-api:" not in parts[0]:
        raise ValueError("the event's methodArn is not an execute-api method ARN")
    return f"{parts[0]}/{parts[1]}"


def allow_policy(method_arn: str, grant: Grant) -> dict[str, Any]:
    """The authorizer's answer for a grant: Allow on its kind's routes of this stage."""
    base = stage_arn(method_arn)
    resources = [f"{base}/{method}{path}" for method, path in ALLOWED_ROUTES[grant.kind]]
    return {
        "principalId": grant.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": INVOKE, "Effect": "Allow", "Resource": resources}],
        },
        "context": grant.context(),
        "usageIdentifierKey": grant.usage_identifier,
    }


class KeyAuthorizer:
    def __init__(
        self,
        *,
        keys: KeyReader,
        cache_seconds: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._keys = keys
        self._honoured_for = timedelta(seconds=cache_seconds)
        self._clock = clock

    def authorize(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The policy for the event's credential; Unauthorized for a missing, malformed,
        unknown, revoked or expired one (or a wrong secret)."""
        try:
            credential = from_authorization(header(event.get("headers"), "Authorization"))
        except MalformedCredential as malformed:
            raise Unauthorized(f"malformed: {malformed}") from None
        record = self._keys.get(credential.key_id)
        try:
            grant = judge(credential, record, self._clock(), honoured_for=self._honoured_for)
        except Refused as refused:
            raise Unauthorized(str(refused), credential.key_id) from None
        return allow_policy(str(event["methodArn"]), grant)
