"""API Gateway REST (proxy) events built from the real one kept in tests/events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

_TEMPLATE = json.loads(
    (Path(__file__).resolve().parent.parent / "events" / "api_gateway_rest_event.json").read_text()
)


def rest_event(
    resource: str, path_parameters: dict[str, str], query: dict[str, str] | None = None
) -> dict[str, Any]:
    """A GET proxy event for `resource` ('/accounts/{account_id}/usage') with these values."""
    event: dict[str, Any] = copy.deepcopy(_TEMPLATE)
    path = resource
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    event["path"] = path
    event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    event["pathParameters"] = dict(path_parameters)
    event["queryStringParameters"] = dict(query) if query else None
    event["multiValueQueryStringParameters"] = (
        {name: [value] for name, value in query.items()} if query else None
    )
    return event


def rest_request(
    method: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A proxy event of the REST API for any method, with headers and a body (sent as JSON,
    or as is when a string), as an IAM-authorized caller sends it."""
    event = rest_event(resource, path_parameters or {}, query)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    sent = {**(headers or {})}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        sent["Content-Type"] = "application/json"
    event["headers"] = {**event["headers"], **sent}
    event["multiValueHeaders"] = {
        **event["multiValueHeaders"],
        **{name: [value] for name, value in sent.items()},
    }
    return event


# The customer API: one proxy resource for every route, behind a Lambda authorizer.
CUSTOMER_RESOURCE = "/v1/{proxy+}"


def customer_event(
    method: str,
    path: str,
    authorizer: dict[str, str] | None,
    query: dict[str, str | list[str]] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    """A proxy event of the customer API for `path` ('/v1/accounts/acct-1/usage') as its
    Lambda authorizer lets it through: its context (`account_id`, `key_id`, `kind`) under
    `requestContext.authorizer`, beside what API Gateway adds; `authorizer` None leaves
    the context out (an API without its authorizer). A query value may be a list (a
    parameter given several times); `body` is sent as JSON, or as is when a string."""
    event: dict[str, Any] = copy.deepcopy(_TEMPLATE)
    context = event["requestContext"]
    event["resource"] = context["resourcePath"] = CUSTOMER_RESOURCE
    event["httpMethod"] = context["httpMethod"] = method
    event["path"] = path
    context["path"] = f"/live{path}"
    context["stage"] = "live"
    event["pathParameters"] = {"proxy": path.removeprefix("/v1/")}
    for field in ("accessKey", "caller", "user", "userArn", "accountId"):
        context["identity"][field] = None  # no IAM caller: a bearer credential
    if authorizer is not None:
        context["authorizer"] = {
            "principalId": authorizer.get("key_id", ""),
            "integrationLatency": 12,
            **authorizer,
        }
    lists = {
        name: value if isinstance(value, list) else [value] for name, value in (query or {}).items()
    }
    event["multiValueQueryStringParameters"] = lists or None
    event["queryStringParameters"] = {name: values[-1] for name, values in lists.items()} or None
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
        event["multiValueHeaders"]["Content-Type"] = ["application/json"]
    return event
