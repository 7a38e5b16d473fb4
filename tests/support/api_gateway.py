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
