"""The webhook endpoints operators register: items of the config table, under one partition
(a handful per deployment, read whole), each naming its secret in Secrets Manager; the
secret itself is never in the table, the template or a log."""

from __future__ import annotations

import secrets as random
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from billing.core.webhooks.addresses import host_refusal
from billing.core.webhooks.payload import EVENT_TYPES
from billing.core.webhooks.signing import new_secret
from billing.store.errors import StoreError, translated

WEBHOOKS_PARTITION: Final = "WEBHOOKS"
ENDPOINT_PREFIX: Final = "ENDPOINT#"
# What a URL is written with (RFC 3986's unreserved and reserved characters, and "%" for
# escapes): a space or a control character would break the request line, anything else
# must be percent-encoded.
URL_CHARACTERS: Final = frozenset(
    string.ascii_letters + string.digits + "-._~" + ":/?#[]@" + "!$&'()*+,;=" + "%"
)
PREVIOUS: Final = "AWSPREVIOUS"


def secret_prefix(config_table: str) -> str:
    """The names of a deployment's webhook secrets begin with this: the deliverer may read
    those and no other (stacks/webhooks.py)."""
    return f"billing-webhooks/{config_table}/"


class EndpointError(ValueError):
    """An endpoint that cannot be registered, and why."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: str
    url: str
    event_types: tuple[str, ...]
    secret_name: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.endpoint_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "secret_name": self.secret_name,
        }


def checked_url(url: str, *, allow_loopback: bool) -> str:
    """The URL, if a webhook may be registered at (or sent to) it: https (or, with
    `allow_loopback`, the local runtime's, http too, on a loopback host), only the
    characters a URL is made of (no space, no control character), no user name or password,
    a valid port, and a host that is not a loopback, private, link-local or reserved
    address as written (billing.core.webhooks.addresses; what a DNS name resolves to is
    checked by billing.webhooks.addresses). EndpointError says why not; its message never
    quotes a URL that carries credentials."""
    stray = next((c for c in url if c not in URL_CHARACTERS), None)
    if stray is not None:
        shown = "a space" if stray == " " else f"the character U+{ord(stray):04X}"
        raise EndpointError(f"a webhook URL may not contain {shown}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        # a malformed authority ("https://[::1/hook", a port that is no number) is named
        # without echoing it: it may hold a password
        raise EndpointError(f"not a valid webhook URL ({_reason(error)})") from None
    if "@" in parts.netloc:
        raise EndpointError("a webhook URL may not carry a user name or password")
    host = parts.hostname or ""
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    loopback = host_refusal(host, allow_loopback=False) == "loopback"
    if not host or not (parts.scheme == "https" or (allow_loopback and loopback)):
        allowed = "https, or http on 127.0.0.1 locally" if allow_loopback else "https"
        raise EndpointError(f"{shown}: a webhook URL must be {allowed}")
    refusal = host_refusal(host, allow_loopback=allow_loopback)
    if refusal is not None:
        raise EndpointError(f"{shown}: {host} is a {refusal} address, not a receiver's")
    if port == 0:
        raise EndpointError(f"{shown}: port 0 is no port to send to")
    return url


def _reason(error: ValueError) -> str:
    """What is wrong with a URL urlsplit refused, without the URL's text."""
    return "its port is invalid" if "port" in str(error).lower() else "its host is malformed"


def checked_types(event_types: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(event_types))
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown or not chosen:
        raise EndpointError(
            f"unknown event type {unknown[0]}" if unknown else "name at least one event type"
        )
    return chosen


@dataclass(frozen=True, slots=True)
class SecretVersions:
    """What a delivery is signed with: the current secret, and the one a rotation replaced
    while its grace window lasts."""

    current: str
    previous: str | None = None

    def signing(self) -> tuple[str, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)


class WebhookSecrets:
    """Each endpoint's signing secret, in Secrets Manager (under the deployment's key when
    one is named)."""

    def __init__(self, client: Any, prefix: str, kms_key_id: str | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._kms_key_id = kms_key_id

    def create(self, endpoint_id: str) -> tuple[str, str]:
        """A new secret for the endpoint: its name and its value."""
        name, value = f"{self._prefix}{endpoint_id}", new_secret()
        extra = {"KmsKeyId": self._kms_key_id} if self._kms_key_id else {}
        with translated(f"create the secret of webhook endpoint {endpoint_id}"):
            self._client.create_secret(Name=name, SecretString=value, **extra)
        return name, value

    def read(self, name: str) -> str:
        with translated("read a webhook secret"):
            return str(self._client.get_secret_value(SecretId=name)["SecretString"])

    def versions(self, name: str, *, grace_seconds: int, now: float) -> SecretVersions:
        """The current secret and, if it replaced another less than `grace_seconds` ago,
        that one too (Secrets Manager's AWSPREVIOUS stage, which a rotation moves it to)."""
        with translated("read a webhook secret"):
            current = self._client.get_secret_value(SecretId=name)
        created = current.get("CreatedDate")
        since = now - created.timestamp() if isinstance(created, datetime) else grace_seconds
        versions = SecretVersions(str(current["SecretString"]))
        if since >= grace_seconds:
            return versions
        previous = self._previous(name)
        return SecretVersions(versions.current, previous)

    def _previous(self, name: str) -> str | None:
        operation = "read a webhook secret's previous version"
        try:
            answer = self._client.get_secret_value(SecretId=name, VersionStage=PREVIOUS)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                return None  # a secret never rotated has no previous version
            raise StoreError(f"{operation}: {code or 'error'}") from error
        except BotoCoreError as error:
            raise StoreError(f"{operation}: {type(error).__name__}") from error
        return str(answer["SecretString"])

    def rotate(self, name: str) -> str:
        """A new current secret; the one it replaces becomes the previous version."""
        value = new_secret()
        with translated("rotate a webhook secret"):
            self._client.put_secret_value(SecretId=name, SecretString=value)
        return value

    def delete(self, name: str) -> None:
        with translated("delete a webhook secret"):
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


class WebhookEndpoints:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def add(
        self,
        url: str,
        event_types: Iterable[str],
        secrets: WebhookSecrets,
        *,
        allow_loopback: bool = False,
    ) -> Endpoint:
        """Register an endpoint: its secret first, so a stored endpoint always has one."""
        url, types = checked_url(url, allow_loopback=allow_loopback), checked_types(event_types)
        endpoint_id = f"we_{random.token_hex(8)}"
        secret_name, _ = secrets.create(endpoint_id)
        endpoint = Endpoint(endpoint_id, url, types, secret_name)
        item = {
            "pk": {"S": WEBHOOKS_PARTITION},
            "sk": {"S": f"{ENDPOINT_PREFIX}{endpoint_id}"},
            "url": {"S": url},
            "event_types": {"L": [{"S": t} for t in endpoint.event_types]},
            "secret_name": {"S": secret_name},
        }
        try:
            with translated(f"register webhook endpoint {url}"):
                self._client.put_item(TableName=self._table, Item=item)
        except StoreError:
            secrets.delete(secret_name)  # no secret left behind for an endpoint never stored
            raise
        return endpoint

    def all(self) -> list[Endpoint]:
        endpoints: list[Endpoint] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": WEBHOOKS_PARTITION}},
            "ConsistentRead": True,
        }
        while True:
            with translated("list the webhook endpoints"):
                page = self._client.query(**query)
            endpoints.extend(_endpoint(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return endpoints
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def subscribed(self, event_type: str) -> list[Endpoint]:
        return [e for e in self.all() if event_type in e.event_types]

    def find(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint, or None if it is not (or no longer) registered."""
        with translated(f"read webhook endpoint {endpoint_id}"):
            page = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND sk = :sk",
                ExpressionAttributeValues={
                    ":pk": {"S": WEBHOOKS_PARTITION},
                    ":sk": {"S": f"{ENDPOINT_PREFIX}{endpoint_id}"},
                },
                ConsistentRead=True,
            )
        items = page.get("Items", [])
        return _endpoint(items[0]) if items else None

    def one(self, endpoint_id: str) -> Endpoint:
        endpoint = self.find(endpoint_id)
        if endpoint is None:
            raise StoreError(f"no webhook endpoint {endpoint_id}")
        return endpoint

    def remove(self, endpoint_id: str, secrets: WebhookSecrets) -> Endpoint:
        endpoint = self.one(endpoint_id)
        key = {"pk": {"S": WEBHOOKS_PARTITION}, "sk": {"S": f"{ENDPOINT_PREFIX}{endpoint_id}"}}
        with translated(f"remove webhook endpoint {endpoint_id}"):
            self._client.delete_item(TableName=self._table, Key=key)
        secrets.delete(endpoint.secret_name)
        return endpoint


def _endpoint(item: dict[str, Any]) -> Endpoint:
    return Endpoint(
        endpoint_id=item["sk"]["S"].removeprefix(ENDPOINT_PREFIX),
        url=item["url"]["S"],
        event_types=tuple(t["S"] for t in item["event_types"]["L"]),
        secret_name=item["secret_name"]["S"],
    )
