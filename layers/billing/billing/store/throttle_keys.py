"""The API Gateway API keys the customer API throttles by, in its usage plan (for the
command line: `billing keys create`, `billing keys revoke`, `billing portal-link`).

The customer API takes API keys from its authorizer (API key source AUTHORIZER): each
request is counted under the key whose value the authorizer answered with
(`usageIdentifierKey`), and that key must be enabled and in the usage plan, or API Gateway
refuses the request (403). So each customer key has an API Gateway key of its own, added
here when the customer key is created and disabled when it is revoked. Their values are
not secrets (billing.core.credentials.throttle_value): no client can present one.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from billing.store.errors import StoreError, translated

_CONFLICT = "ConflictException"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ThrottleKeyTaken(StoreError):
    """An API key with that value exists already (a key id drawn twice)."""


class ThrottleKeys:
    def __init__(self, client: Any, usage_plan_id: str) -> None:
        self._client = client
        self._plan = usage_plan_id

    def create(self, name: str, value: str, description: str) -> str:
        """A new enabled API key in the usage plan; its id. ThrottleKeyTaken if an API key
        has this value already (API Gateway keeps values unique): a key's throttle is
        never one that existed before, which may have been disabled by a revocation."""
        try:
            api_key_id = self._create(name, value, description)
        except StoreError as error:
            if _is_conflict(error):
                raise ThrottleKeyTaken(f"an API key named {name} has that value") from None
            raise
        self._add_to_plan(api_key_id)
        return api_key_id

    def ensure(self, name: str, value: str, description: str) -> str:
        """The enabled API key with this name and value, in the usage plan, created if
        there is none: what an account's portal links share, so a repeated call (or one
        racing another) ends with the same one key."""
        try:
            api_key_id = self._create(name, value, description)
        except StoreError as error:
            if not _is_conflict(error):
                raise
            api_key_id = self._existing(name, value)
            self._set_enabled(api_key_id, True)
        self._add_to_plan(api_key_id)
        return api_key_id

    def counts(self, value: str) -> bool:
        """Whether API Gateway lets a request counted under this value through: an enabled
        API key of the usage plan has it (the local gateway asks; API Gateway knows)."""
        request: dict[str, Any] = {"usagePlanId": self._plan, "limit": 500}
        while True:
            with translated("list the usage plan's keys"):
                page = self._client.get_usage_plan_keys(**request)
            for key in page.get("items", []):
                if key.get("value") == value:
                    with translated("read throttle key"):
                        found = self._client.get_api_key(apiKey=key["id"])
                    return bool(found.get("enabled"))
            if not page.get("position"):
                return False
            request["position"] = page["position"]

    def disable(self, api_key_id: str) -> None:
        """API Gateway refuses a request counted under a disabled key (403)."""
        self._set_enabled(api_key_id, False)

    def _create(self, name: str, value: str, description: str) -> str:
        with translated("create throttle key"):
            response = self._client.create_api_key(
                name=name, value=value, description=description, enabled=True
            )
        return str(response["id"])

    def _add_to_plan(self, api_key_id: str) -> None:
        try:
            with translated("add throttle key to the usage plan"):
                self._client.create_usage_plan_key(
                    usagePlanId=self._plan, keyId=api_key_id, keyType="API_KEY"
                )
        except StoreError as error:
            if not _is_conflict(error):  # a conflict: it is in the plan already
                raise

    def _existing(self, name: str, value: str) -> str:
        request: dict[str, Any] = {"nameQuery": name, "includeValues": True, "limit": 500}
        while True:
            with translated("find throttle key"):
                page = self._client.get_api_keys(**request)
            for key in page.get("items", []):
                if key.get("name") == name and key.get("value") == value:
                    return str(key["id"])
            if not page.get("position"):
                raise StoreError(f"throttle key {name} exists but cannot be found by its name")
            request["position"] = page["position"]

    def _set_enabled(self, api_key_id: str, enabled: bool) -> None:
        with translated("update throttle key"):
            self._client.update_api_key(
                apiKey=api_key_id,
                patchOperations=[
                    {"op": "replace", "path": "/enabled", "value": str(enabled).lower()}
                ],
            )


def _is_conflict(error: StoreError) -> bool:
    cause = error.__cause__
    return isinstance(cause, ClientError) and _code(cause) == _CONFLICT
