"""The customer API fuzzed at the handlers (docs/fuzzing.md), beyond what its OpenAPI
document lets schemathesis send (tests/e2e/test_customer_api_fuzz.py: documented
operations, through the local gateway):

- the function (functions/customer_api) over moto, with the example events rated: any
  method on any path under /v1/, path segments, queries (parameters repeated, unknown,
  `account_id` naming another account), headers, and bodies (thresholds mutated field by
  field, any JSON, text, base64), with the authorizer's context or without. Every answer is
  a 2xx with JSON or a 4xx `{"statusCode", "message"}`; never a 5xx, never a stack trace.
- the authorizer (billing.customer.authorizer) on any Authorization header: a policy for a
  valid key, or `Unauthorized` (API Gateway's 401); never another exception.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from billing import wiring
from billing.core.credentials import Credential, KeyRecord, Kind, secret_hash
from billing.customer.authorizer import KeyAuthorizer, Unauthorized
from billing_cli.local.lambdas import LocalContext
from functions.customer_api import app as customer_api
from tests.fuzz.fuzz_http import (
    assert_clear_answer,
    bodies,
    headers,
    in_path,
    queries,
    segments,
    with_request,
)
from tests.fuzz.fuzz_inputs import fuzz_settings, mostly, odd_text
from tests.integration.conftest import Aws, invoicing_environment
from tests.support.api_gateway import customer_event

CONTEXT: Final = LocalContext("customer-api")
CLOCK: Final = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CALLER: Final = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": "key"}
# Every route's path after the account; the last segment of some is a document's number.
ROUTES: Final = [
    "",
    "/usage",
    "/usage/daily",
    "/preview",
    "/explanation",
    "/credits",
    "/invoices",
    "/invoices/{number}",
    "/credit-notes",
    "/credit-notes/{number}",
    "/adjustments",
    "/adjustments/{number}",
    "/thresholds",
]
THRESHOLDS: Final[dict[str, Any]] = {
    "account_id": "acct-1",
    "budget": "500",
    "thresholds": [{"percent": "80"}, {"amount": "250"}],
}
METHODS: Final = mostly(st.sampled_from(["GET", "PUT"]), st.sampled_from(["POST", "DELETE"]))


@pytest.fixture
def customer(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    invoicing_environment(aws, monkeypatch)
    aws.rate_examples(batch_size=50)
    views = wiring.customer_views(clock=lambda: CLOCK)
    monkeypatch.setattr(customer_api, "service", lambda: views)
    return aws


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    route = draw(mostly(st.sampled_from(ROUTES), odd_text.map(lambda text: "/" + text)))
    account, number = draw(mostly(st.just("acct-1"), segments)), draw(segments)
    path = "/v1/accounts/" + in_path(account) + route.replace("{number}", in_path(number))
    caller = draw(mostly(st.just(CALLER), st.sampled_from([None, {**CALLER, "account_id": ""}])))
    event = customer_event(draw(METHODS), path, caller)
    return with_request(
        event,
        query=draw(queries),
        extra_headers=draw(headers),
        body=draw(bodies(THRESHOLDS)),
    )


def put_thresholds(body: str | None, content_type: str = "application/json") -> dict[str, Any]:
    event = customer_event("PUT", "/v1/accounts/acct-1/thresholds", CALLER)
    sent = {"Content-Type": content_type}
    return with_request(event, query={}, extra_headers=sent, body=(body, False))


# Found by the fuzzer: a body nested thousands deep made the JSON parser fail the function
# (now a 400), and a period before year 1 in the account's zone (now a 400).
@example(put_thresholds(None, "multipart/form-data"))
@example(put_thresholds("[" * 5000))
@example(put_thresholds('{"account_id": ' + "[" * 5000))
@example(
    with_request(
        customer_event("GET", "/v1/accounts/acct-1/usage", CALLER),
        query={"period": ["0001-01"]},
        extra_headers={},
    )
)
@example(put_thresholds('{"thresholds": [{"percent": "1e999999"}]}'))
@example(put_thresholds('{"budget": "NaN", "thresholds": []}'))
@given(requests())
@fuzz_settings(scale=0.5)
def test_any_request_to_the_customer_api_is_answered_clearly(
    customer: Aws, request: dict[str, Any]
) -> None:
    assert_clear_answer(customer_api.handler(request, CONTEXT))  # type: ignore[arg-type]


# --- the authorizer ------------------------------------------------------------------------

KEY: Final = Credential("a2b3c4d5e6f7g2h3", "A" * 42 + "A")
METHOD_ARN: Final = "arn:aws:execute-api:us-east-1:123456789012:abc123/live/GET/v1/accounts"


class OneKey:
    def get(self, key_id: str) -> KeyRecord | None:
        if key_id != KEY.key_id:
            return None
        return KeyRecord(
            KEY.key_id, "acct-1", Kind.KEY, secret_hash(KEY.secret), CLOCK - timedelta(days=1)
        )


AUTHORIZER: Final = KeyAuthorizer(keys=OneKey(), cache_seconds=300, clock=lambda: CLOCK)

authorizations = st.one_of(
    st.builds(lambda text: f"Bearer {text}", odd_text),
    st.builds(
        lambda scheme, middle, tail: f"{scheme}{middle}bk_{KEY.key_id}_{tail}",
        st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "", "Bearer\t"]),
        st.sampled_from([" ", "  ", "\t", "\u00a0", ""]),
        st.sampled_from([KEY.secret, KEY.secret[:-1], KEY.secret + "=", KEY.secret[:-1] + "B"])
        | odd_text,
    ),
    odd_text,
)


@example({"Authorization": f"Bearer {KEY}"})
@example({"authorization": f"bearer  {KEY} "})
@example({"Authorization": f"Bearer bk_{KEY.key_id}_{'ä' * 43}"})
@example({"Authorization": "Bearer " + "x" * 100_000})
@example({})
@given(st.dictionaries(st.sampled_from(["Authorization", "authorization", "X"]), authorizations))
@fuzz_settings()
def test_any_authorization_header_is_a_policy_or_unauthorized(
    request_headers: dict[str, str],
) -> None:
    event = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": request_headers}
    try:
        answer = AUTHORIZER.authorize(event)
    except Unauthorized as refused:
        reason: Unauthorized | None = refused
    else:
        reason = None
        assert answer["context"]["account_id"] == "acct-1"
    if reason is not None:
        assert reason.reason, reason  # for the log; API Gateway answers 401
