"""The customer API on 127.0.0.1, as API Gateway serves the deployed one
(stacks/customer_api.py), for `billing local`.

A small WSGI app, under the stage's prefix (`/live/`): `GET /live/portal` answers the
portal page; every method of `/live/v1/...` runs the real authorizer handler
(`functions.customer_authorizer.app`) on a REQUEST event, keeps its answer for the
Authorization header for the cache time (on the runtime's clock, so a test clock moves
it), checks the request against the answer's policy and that the API key it names is
enabled in the usage plan, then calls the customer API's handler
(`functions.customer_api.app:handler`, imported at the first data request) with a REST
proxy event whose `requestContext.authorizer` holds the authorizer's context. Refusals are
API Gateway's own, as the stack declares them (billing.customer.gateway_answers): 401 for
a missing or refused credential, 403 outside the policy or for a disabled key, 404 for a
path that is no route, 500 when the authorizer fails, 502 when the function does. Not
emulated: throttling (the usage plan's and the stage's rates).

Like the moto endpoint, it answers only this machine's clients: a Host other than its
own is refused, and so is an Origin other than its own (a page elsewhere in the browser
must not read an account's data; the portal page, from this origin, may).
"""

from __future__ import annotations

import importlib
import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from werkzeug.wrappers import Request, Response

from billing.customer.gateway_answers import GATEWAY_ANSWERS, PORTAL_HEADERS, PORTAL_PAGE
from billing_cli.local.customer_events import (
    DATA_PREFIX,
    Api,
    authorizer_event,
    http_response,
    json_response,
    proxy_event,
)
from billing_cli.local.lambdas import Handler, LocalContext

CUSTOMER_API_HANDLER: Final = "functions.customer_api.app:handler"
# API Gateway's word, from a Lambda authorizer, for 401.
_UNAUTHORIZED: Final = "Unauthorized"


@dataclass(frozen=True, slots=True)
class _Kept:
    """An authorizer's answer for one Authorization header, until `until`."""

    answer: dict[str, Any]
    until: datetime


def allowed(policy: dict[str, Any], method_arn: str) -> bool:
    """Whether an IAM policy for execute-api:Invoke lets `method_arn` in: an Allow
    statement's resource matches (`*` spans any characters, `/` too) and no Deny's does."""

    def matches(statement: dict[str, Any]) -> bool:
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            pattern = ".*".join(re.escape(part) for part in str(resource).split("*"))
            if re.fullmatch(pattern, method_arn):
                return True
        return False

    statements = policy.get("Statement", [])
    effects = {statement.get("Effect") for statement in statements if matches(statement)}
    return "Allow" in effects and "Deny" not in effects


def _answer(name: str) -> Response:
    """One of API Gateway's own refusals, as the stack declares it."""
    answer = GATEWAY_ANSWERS[name]
    return json_response(answer.status, answer.body(), answer.headers)


class CustomerGateway:
    def __init__(
        self,
        *,
        authorizer: Handler,
        cache_seconds: int,
        clock: Callable[[], datetime],
        usage_key_enabled: Callable[[str], bool],
        api: Handler | None = None,
        hosts: Iterable[str] = (),
        stage: Api | None = None,
    ) -> None:
        self._authorizer = authorizer
        self._api = api
        self._keep = timedelta(seconds=cache_seconds)
        self._clock = clock
        self._usage_key_enabled = usage_key_enabled
        self.hosts: set[str] = set(hosts)
        self.stage = stage or Api()
        self._kept: dict[str, _Kept] = {}
        # The handlers run one request at a time: Powertools' resolver keeps the request
        # it is answering on its module-level app, and the server has a thread per request.
        self._one_at_a_time = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = self.respond(Request(environ))
        return response(environ, start_response)

    def respond(self, request: Request) -> Response:
        refused = self._foreign(request)
        if refused:
            return Response(f"refused by billing local: {refused}\n", status=403)
        prefix = f"/{self.stage.stage}"
        if not request.path.startswith(f"{prefix}/"):
            return _answer("MISSING_AUTHENTICATION_TOKEN")
        path = request.path.removeprefix(prefix)
        if path == "/portal" and request.method == "GET":
            return Response(PORTAL_PAGE, headers=list(PORTAL_HEADERS))
        if not path.startswith(DATA_PREFIX) or path == DATA_PREFIX:
            return _answer("MISSING_AUTHENTICATION_TOKEN")
        return self._data_route(request, path)

    def _foreign(self, request: Request) -> str | None:
        """Why a request from outside this machine's own clients is refused, if it is."""
        host = request.headers.get("Host", "").lower()
        if host not in self.hosts:
            return "unknown Host"
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host}":
            return "requests from other web pages (another Origin) are not served"
        return None

    def _data_route(self, request: Request, path: str) -> Response:
        header = request.headers.get("Authorization")
        if not header:  # the identity source is missing: the authorizer is not called
            return _answer("UNAUTHORIZED")
        answer = self._kept_answer(header) or self._authorize(request, path, header)
        if isinstance(answer, Response):
            return answer
        if not allowed(
            answer.get("policyDocument", {}), self.stage.method_arn(request.method, path)
        ):
            return _answer("ACCESS_DENIED")
        usage_key = answer.get("usageIdentifierKey")
        if not usage_key or not self._usage_key_enabled(str(usage_key)):
            return _answer("INVALID_API_KEY")
        context = {**answer.get("context", {}), "principalId": answer.get("principalId")}
        event = proxy_event(request, self.stage, path, context, str(usage_key))
        return self._call_api(event)

    def _kept_answer(self, header: str) -> dict[str, Any] | None:
        kept = self._kept.get(header)
        if kept is None or kept.until <= self._clock():
            return None
        return kept.answer

    def _authorize(self, request: Request, path: str, header: str) -> dict[str, Any] | Response:
        event = authorizer_event(request, self.stage, path)
        try:
            with self._one_at_a_time:
                answer = self._authorizer(event, LocalContext("customer_authorizer"))
        except Exception as error:  # what API Gateway makes of a failed authorizer
            if str(error) == _UNAUTHORIZED:
                return _answer("UNAUTHORIZED")
            print(f"billing local: the customer authorizer failed: {error!r}", file=sys.stderr)
            return _answer("AUTHORIZER_FAILURE")
        if self._keep:
            self._kept[header] = _Kept(answer, self._clock() + self._keep)
        return dict(answer)

    def _call_api(self, event: dict[str, Any]) -> Response:
        try:
            self._api = self._api or _import_handler(CUSTOMER_API_HANDLER)
        except ImportError as error:
            print(f"billing local: no customer API function yet: {error}", file=sys.stderr)
            return json_response(502, {"message": "Internal server error"})
        try:
            with self._one_at_a_time:
                answer = self._api(event, LocalContext("customer_api"))
        except Exception as error:  # Lambda's function error: API Gateway answers 502
            print(f"billing local: the customer API failed: {error!r}", file=sys.stderr)
            return json_response(502, {"message": "Internal server error"})
        return http_response(answer) if isinstance(answer, dict) else http_response({})


def _import_handler(path: str) -> Handler:
    module, _, name = path.partition(":")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler
