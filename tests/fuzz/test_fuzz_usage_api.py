"""The usage API's handler (functions/usage_api) fuzzed over moto (docs/fuzzing.md): any
path segment, query (each parameter once or several times, the routes' own and others),
and headers, on every route, with the example events rated. Every answer is a 2xx with a
JSON body or a 4xx `{"statusCode", "message"}`; never a 5xx, never a stack trace.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from billing import wiring
from billing_cli.local.lambdas import LocalContext
from functions.usage_api import app as usage_api
from tests.fuzz.fuzz_http import (
    assert_clear_answer,
    headers,
    in_path,
    queries,
    segments,
    with_request,
)
from tests.fuzz.fuzz_inputs import fuzz_settings
from tests.integration.conftest import Aws, invoicing_environment
from tests.support.api_gateway import rest_request

CONTEXT: Final = LocalContext("usage-api")
# Late November: every example account's November is open, and rated.
CLOCK: Final = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROUTES: Final = [
    "/accounts/{account_id}/usage",
    "/accounts/{account_id}/explanation",
    "/accounts/{account_id}/invoices",
    "/accounts/{account_id}/invoices/{number}",
    "/accounts/{account_id}/credit-notes",
    "/accounts/{account_id}/adjustments",
]
METHODS: Final = st.sampled_from(["GET"] * 6 + ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])


@pytest.fixture
def rated(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    invoicing_environment(aws, monkeypatch)
    aws.rate_examples(batch_size=50)
    views = wiring.account_views(clock=lambda: CLOCK)
    monkeypatch.setattr(usage_api, "service", lambda: views)
    return aws


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    resource = draw(st.sampled_from(ROUTES))
    values = {"account_id": draw(segments), "number": draw(segments)}
    used = {name: value for name, value in values.items() if "{" + name + "}" in resource}
    event = rest_request(draw(METHODS), resource, used)
    event["path"] = resource.format(**{k: in_path(v) for k, v in used.items()})
    return with_request(event, query=draw(queries), extra_headers=draw(headers))


def call(method: str, resource: str, query: dict[str, list[str]], **path: str) -> dict[str, Any]:
    event = rest_request(method, resource, path)
    event["path"] = resource.format(**{k: in_path(v) for k, v in path.items()})
    return with_request(event, query=query, extra_headers={})


USAGE: Final = "/accounts/{account_id}/usage"
EXPLANATION: Final = "/accounts/{account_id}/explanation"


# Found by the fuzzer: 0001-01 of an account east of UTC starts before year 1 (a crash, now
# a 400 naming the first period).
@example(call("GET", USAGE, {"period": ["0001-01"]}, account_id="acct-1"))
@example(call("GET", EXPLANATION, {"period": ["0001-01"]}, account_id="acct-4"))
@example(call("GET", USAGE, {"period": ["0001-01"]}, account_id="acct-6"))
@example(call("GET", USAGE, {"period": ["9998-12"]}, account_id="acct-6"))
@example(call("GET", USAGE, {"period": ["2026-11", "x"]}, account_id="acct-1"))
@example(call("GET", USAGE, {"period": ["\x00"]}, account_id="acct-1"))
@example(call("GET", USAGE, {}, account_id="acct-1\u200b"))
@example(call("GET", "/accounts/{account_id}/invoices/{number}", {}, account_id="a", number=""))
@given(requests())
@fuzz_settings(scale=0.5)
def test_any_request_to_the_usage_api_is_answered_clearly(
    rated: Aws, request: dict[str, Any]
) -> None:
    assert_clear_answer(usage_api.handler(request, CONTEXT))  # type: ignore[arg-type]
