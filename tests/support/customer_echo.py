"""A stand-in for the customer API's function (functions/customer_api/app.py) in the local
gateway's tests: it answers with what it was given, so a test sees the proxy event the
gateway built and the authorizer's context in it. A test double only; never deployed."""

from __future__ import annotations

import json
from typing import Any

CALLS: list[dict[str, Any]] = []


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    CALLS.append(event)
    if event["path"].endswith("/fail"):
        raise RuntimeError("the function failed")
    body = {
        "authorizer": event["requestContext"]["authorizer"],
        "method": event["httpMethod"],
        "path": event["path"],
        "proxy": event["pathParameters"]["proxy"],
        "query": event["queryStringParameters"],
        "body": event["body"],
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Echo": ["one", "two"]},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
