"""HTTP requests as the events API Gateway gives the customer API's Lambda functions: the
REQUEST authorizer's event and the REST proxy integration's event (tests/events holds one
of each as AWS sends them), and a proxy answer back into HTTP."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

DATA_RESOURCE: Final = "/v1/{proxy+}"
DATA_PREFIX: Final = "/v1/"


@dataclass(frozen=True, slots=True)
class Api:
    """Where the local customer API stands in for a deployed one: its ARN's parts."""

    api_id: str = "local"
    stage: str = "live"
    region: str = "us-east-1"
    account: str = "123456789012"
    domain: str = "127.0.0.1"

    def method_arn(self, method: str, path: str) -> str:
        return (
            f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}"
            f"/{method}{path}"
        )


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """API Gateway's two maps of a request's headers or query: the last value of each name,
    and every value in order (None for either when there are none)."""
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return {name: values[-1] for name, values in multi.items()}, multi


def _maps(request: Request) -> dict[str, Any]:
    headers, multi_headers = _single_and_multi(list(request.headers.items()))
    query, multi_query = _single_and_multi(list(request.args.items(multi=True)))
    return {
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
    }


def _request_context(request: Request, api: Api, path: str) -> dict[str, Any]:
    return {
        "resourceId": "local",
        "resourcePath": DATA_RESOURCE,
        "httpMethod": request.method,
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
        "path": f"/{api.stage}{path}",
        "accountId": api.account,
        "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        "stage": api.stage,
        "domainPrefix": api.api_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "requestId": str(uuid.uuid4()),
        "identity": {
            "sourceIp": request.remote_addr or "127.0.0.1",
            "userAgent": request.headers.get("User-Agent"),
        },
        "domainName": api.domain,
        "apiId": api.api_id,
    }


def authorizer_event(request: Request, api: Api, path: str) -> dict[str, Any]:
    """The REQUEST authorizer's event for a data route (`path` without the stage)."""
    return {
        "type": "REQUEST",
        "methodArn": api.method_arn(request.method, path),
        "resource": DATA_RESOURCE,
        "path": path,
        "httpMethod": request.method,
        **_maps(request),
        "pathParameters": {"proxy": path.removeprefix(DATA_PREFIX)},
        "stageVariables": {},
        "requestContext": _request_context(request, api, path),
    }


def proxy_event(
    request: Request, api: Api, path: str, authorizer: dict[str, Any], usage_key: str | None
) -> dict[str, Any]:
    """The REST proxy integration's event, with the authorizer's context and principal in
    `requestContext.authorizer` as API Gateway puts them."""
    context = _request_context(request, api, path)
    context["authorizer"] = authorizer
    context["identity"]["apiKey"] = usage_key
    data = request.get_data()
    return {
        "resource": DATA_RESOURCE,
        "path": path,
        "httpMethod": request.method,
        **_maps(request),
        "pathParameters": {"proxy": path.removeprefix(DATA_PREFIX)},
        "stageVariables": None,
        "requestContext": context,
        # No binary media types are configured: API Gateway passes the body as text.
        "body": data.decode("utf-8", errors="replace") if data else None,
        "isBase64Encoded": False,
    }


def http_response(answer: dict[str, Any]) -> Response:
    """A proxy integration's answer as HTTP (a malformed one is API Gateway's 502)."""
    try:
        status = int(answer["statusCode"])
        headers = Headers()
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            for value in values:
                headers.add(name, str(value))
        for name, value in (answer.get("headers") or {}).items():
            headers[name] = str(value)
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    except (KeyError, TypeError, ValueError):
        return json_response(502, {"message": "Internal server error"})
    return Response(data, status=status, headers=headers)


def json_response(
    status: int, body: dict[str, Any] | str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(text, status=status, headers=list(headers), content_type="application/json")
