"""What the fuzz tests of the HTTP handlers share: the promise every answer keeps, and the
odd parts of a request (path segments, query values, headers, bodies) as API Gateway would
pass them to a function."""

from __future__ import annotations

import base64
import json
from typing import Any, Final
from urllib.parse import quote

from hypothesis import event
from hypothesis import strategies as st

from tests.fuzz.fuzz_inputs import dumps, mostly, mutated, odd_text, odd_values

ERROR_FIELDS: Final = {"statusCode", "message"}


def assert_clear_answer(response: dict[str, Any]) -> int:
    """The promise of every handler: never a 5xx, a JSON body, and for a refusal (4xx) the
    `{"statusCode", "message"}` body with its status and a message, never a stack trace."""
    status = response["statusCode"]
    body = response["body"]
    assert status < 500, (status, body)
    assert "Traceback" not in body, body
    assert 'File "' not in body, body
    event(f"status {status}")
    if status >= 400:
        answer = json.loads(body)
        assert set(answer) == ERROR_FIELDS, answer
        assert answer["statusCode"] == status, answer
        assert isinstance(answer["message"], str), answer
        assert answer["message"].strip(), answer
    elif body:
        json.loads(body)
    return int(status)


# A path segment as a caller might write one, and how it reaches the function: API Gateway
# passes `path` percent-encoded as sent and `pathParameters` decoded.
segments = mostly(
    st.sampled_from(["acct-1", "acct-2", "acct-404", "INV-2026-000001", "x"]),
    odd_text | st.sampled_from(["..", ".", "%2F", "a/b", "a%00", " ", "~", "acct-1 "]),
)


def in_path(segment: str) -> str:
    return quote(segment, safe="-._~")


periods = mostly(
    st.sampled_from(["2026-11", "2026-10", "2026-12", "2027-01"]),
    st.sampled_from(
        ["0001-01", "0001-02", "9998-12", "9999-12", "0000-01", "2026-13", "2026-1", "2026-11 "]
    )
    | odd_text,
)

# Query parameters: each given once or several times (API Gateway's multi-value map), the
# routes' own and others.
queries = mostly(
    st.fixed_dictionaries({}, optional={"period": st.lists(periods, min_size=1, max_size=2)}),
    st.dictionaries(
        st.sampled_from(["period", "account_id", "limit", "next"]) | odd_text.filter(bool),
        st.lists(mostly(periods, odd_text), min_size=1, max_size=3),
        max_size=3,
    ),
)

header_names = st.sampled_from(
    ["Content-Type", "content-type", "Accept", "If-Match", "if-none-match", "X-Forwarded-For"]
) | odd_text.filter(lambda name: bool(name.strip()))
header_values = mostly(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=x",
            "*",
            '"abc"',
            'W/"abc"',
        ]
    ),
    odd_text,
)
headers = st.dictionaries(header_names, header_values, max_size=3)


@st.composite
def bodies(draw: st.DrawFn, document: Any) -> tuple[str | None, bool]:
    """A request body and whether it is base64-encoded (as API Gateway would pass a body of
    a binary media type, were one declared): `document` mutated and spelt as JSON, any
    JSON, text, or nothing."""
    kind = draw(st.sampled_from(["json", "json", "json", "odd", "text", "none", "base64"]))
    if kind == "none":
        return None, False
    if kind == "text":
        return draw(odd_text), False
    if kind == "odd":
        return dumps(draw(odd_values)), False
    text = dumps(draw(mostly(st.just(document), mutated(document))))
    if kind == "base64":  # only ever valid base64 of text: API Gateway encodes it itself
        return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode(), True
    return text, False


def with_request(
    event: dict[str, Any],
    *,
    query: dict[str, list[str]],
    extra_headers: dict[str, str],
    body: tuple[str | None, bool] = (None, False),
) -> dict[str, Any]:
    """`event` with the query (single- and multi-value maps, as API Gateway fills them),
    more headers, and a body."""
    event["multiValueQueryStringParameters"] = query or None
    event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} or None
    event["headers"] = {**(event.get("headers") or {}), **extra_headers}
    event["multiValueHeaders"] = {
        **(event.get("multiValueHeaders") or {}),
        **{name: [value] for name, value in extra_headers.items()},
    }
    event["body"], event["isBase64Encoded"] = body
    return event
