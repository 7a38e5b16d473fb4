"""API Gateway REQUEST authorizer events, built from the real one kept in tests/events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

_TEMPLATE = json.loads(
    (
        Path(__file__).resolve().parent.parent
        / "events"
        / "api_gateway_authorizer_request_event.json"
    ).read_text()
)
API_ARN = "arn:aws:execute-api:us-east-1:123456789012:k9l8m7n6o5"


def authorizer_event(
    authorization: str | None, method: str = "GET", path: str = "/v1/accounts/acct-1/usage"
) -> dict[str, Any]:
    """The event for `method path` on the `live` stage, with this Authorization header (none
    when None; API Gateway itself answers 401 without calling the authorizer then)."""
    event: dict[str, Any] = copy.deepcopy(_TEMPLATE)
    event["methodArn"] = f"{API_ARN}/live/{method}{path}"
    event["path"] = path
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/live{path}"
    event["pathParameters"] = {"proxy": path.removeprefix("/v1/")}
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Authorization")
    if authorization is not None:
        event["headers"]["Authorization"] = authorization
        event["multiValueHeaders"]["Authorization"] = [authorization]
    return event
