"""The command line's way to the deployed operator API: HTTPS to the stack's UsageApiUrl,
signed with SigV4 for execute-api with the command's own credentials (a local HTTP server
stands in for API Gateway and keeps what it was sent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from billing.settings import STACK_OUTPUTS
from billing_cli.deployment import Deployment
from billing_cli.operator_client import SignedOperatorApi, operator_api

Received = list[dict[str, Any]]


@pytest.fixture
def gateway() -> Iterator[tuple[str, Received]]:
    received: Received = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            received.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                }
            )
            status = 409 if self.command == "PUT" else 200
            answer = json.dumps(
                {"statusCode": 409, "message": "stale"} if status == 409 else {"id": "acct-1"}
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"abc"')
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer.encode())

        do_GET = do_PUT = _answer  # noqa: N815 (http.server names its handlers so)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/", received
    server.shutdown()
    server.server_close()
    thread.join()


def deployment(url: str) -> Deployment:
    session = boto3.Session(
        aws_access_key_id="AKIDOPERATOR", aws_secret_access_key="secret", region_name="eu-west-1"
    )
    return Deployment("UsageBilling-prod", {STACK_OUTPUTS.usage_api_url: url}, session, None)


def test_a_deployed_stack_is_called_through_its_url_signed_for_execute_api(
    gateway: tuple[str, Received],
) -> None:
    url, received = gateway
    api = operator_api(deployment(url))
    assert isinstance(api, SignedOperatorApi)

    answer = api.request("GET", "/operator/accounts", query={"limit": "2"})

    assert (answer.status, answer.headers["etag"], answer.body) == (200, '"abc"', {"id": "acct-1"})
    [request] = received
    assert (request["method"], request["path"]) == ("GET", "/v1/operator/accounts?limit=2")
    authorization = request["headers"]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDOPERATOR/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_a_refusal_comes_back_with_its_status_and_message(gateway: tuple[str, Received]) -> None:
    url, received = gateway

    answer = operator_api(deployment(url)).request(
        "PUT", "/operator/catalog", headers={"If-Match": '"x"'}, body={"plans": []}
    )

    assert (answer.status, answer.message) == (409, "stale")
    assert received[0]["headers"]["If-Match"] == '"x"'
    assert json.loads(received[0]["body"]) == {"plans": []}
