"""Calling the operator API (docs/operator-api.md) the way the deployment offers it.

On AWS: HTTPS to the usage API's URL (the stack's `UsageApiUrl`), signed with SigV4 for
`execute-api` with the command's own credentials, so API Gateway's IAM authorization and
resource policy judge the caller as they judge any other. On the local runtime (`billing
local`), which serves no API Gateway: the operator_api function itself, invoked through
Lambda with the proxy event API Gateway would give it, as the command line reaches the
Send function; the local stack names it by the output `OperatorApiFunctionName`, which a
deployed stack does not have.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Final, Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from billing.settings import STACK_OUTPUTS
from billing.store.errors import StoreError
from billing.store.invocations import FunctionFailed, FunctionInvoker
from billing_cli.deployment import Deployment

# The local runtime's operator function (billing_cli.local.runtime); deployed stacks have none.
OPERATOR_FUNCTION_OUTPUT: Final = "OperatorApiFunctionName"
_TIMEOUT_SECONDS: Final = 30


class OperatorApiError(Exception):
    """The operator API could not be asked, or answered something other than JSON."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: Any

    @property
    def message(self) -> str:
        """The API's own message for a refusal (`{"statusCode", "message"}`)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return f"HTTP {self.status}"


class OperatorApi(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> Answer: ...


def operator_api(deployment: Deployment) -> OperatorApi:
    """The deployment's operator API: its function locally, its URL (SigV4) on AWS."""
    name = deployment.outputs.get(OPERATOR_FUNCTION_OUTPUT)
    if name:
        return FunctionOperatorApi(FunctionInvoker(deployment.client("lambda"), name))
    return SignedOperatorApi(deployment.output(STACK_OUTPUTS.usage_api_url), deployment)


def _answer(status: int, headers: dict[str, str], text: str) -> Answer:
    try:
        body = json.loads(text) if text else None
    except ValueError:
        raise OperatorApiError(f"the operator API answered {status} with no JSON") from None
    return Answer(status, {k.lower(): v for k, v in headers.items()}, body)


class SignedOperatorApi:
    """HTTPS to the deployed API, each request signed (SigV4, service `execute-api`)."""

    def __init__(self, base_url: str, deployment: Deployment) -> None:
        self._base = base_url.rstrip("/")
        self._session = deployment.session

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> Answer:
        url = self._base + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        signed = AWSRequest(method=method, url=url, data=data, headers=sent)
        credentials = self._session.get_credentials()
        if credentials is None:
            raise OperatorApiError("no AWS credentials to sign the request with")
        SigV4Auth(
            credentials.get_frozen_credentials(), "execute-api", self._session.region_name
        ).add_auth(signed)
        request = urllib.request.Request(
            url, data=data, headers=dict(signed.headers), method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                return _answer(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as error:
            return _answer(error.code, dict(error.headers), error.read().decode())
        except (urllib.error.URLError, TimeoutError) as error:
            raise OperatorApiError(
                f"cannot reach the operator API at {self._base}: {error}"
            ) from None


class FunctionOperatorApi:
    """The local runtime's operator function, given the event API Gateway would give it."""

    def __init__(self, function: FunctionInvoker) -> None:
        self._function = function

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> Answer:
        event = proxy_event(method, path, query or {}, headers or {}, body)
        try:
            answer = self._function.call(event)
        except FunctionFailed as failed:
            raise OperatorApiError(f"the operator function failed: {failed.message}") from None
        except StoreError as error:
            raise OperatorApiError(f"cannot invoke the operator function: {error}") from None
        headers = {k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items() if v}
        return _answer(int(answer["statusCode"]), headers, answer.get("body") or "")


def proxy_event(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
) -> dict[str, Any]:
    """A REST proxy integration's event for the request, as API Gateway gives it."""
    sent = {**headers, **({"Content-Type": "application/json"} if body is not None else {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": sent,
        "multiValueHeaders": {name: [value] for name, value in sent.items()},
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"userArn": "local", "accountId": None, "sourceIp": "127.0.0.1"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


# --- what the commands ask ------------------------------------------------------------------

PAGE_LIMIT: Final = 1000


def all_accounts(api: OperatorApi) -> list[dict[str, Any]]:
    """Every stored account, as stored, by id (`billing accounts list`): the pages in turn."""
    accounts: list[dict[str, Any]] = []
    query = {"limit": str(PAGE_LIMIT)}
    while True:
        answer = _ok(api.request("GET", "/operator/accounts", query=query))
        accounts += answer.body["accounts"]
        if answer.body.get("next") is None:
            return sorted(accounts, key=lambda account: str(account["id"]))
        query = {"limit": str(PAGE_LIMIT), "next": answer.body["next"]}


def one_account(api: OperatorApi, account_id: str) -> tuple[dict[str, Any], str]:
    """The account as stored, and its version (`billing accounts show`)."""
    path = f"/operator/accounts/{urllib.parse.quote(account_id, safe='')}"
    answer = _ok(api.request("GET", path))
    return answer.body, answer.headers.get("etag", "").strip('"')


def _ok(answer: Answer) -> Answer:
    if answer.status != 200:
        raise OperatorApiError(answer.message)
    return answer
