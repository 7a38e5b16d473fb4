"""Customer keys and portal links end to end: `billing keys` and `billing portal-link`
against the local runtime (found as a deployed stack is), and requests through the local
customer API gateway to a stand-in for the customer API's function
(tests/support/customer_echo.py), on the runtime's test clock: the authorizer's cache
time passes when the test moves the clock, never by waiting."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from typer.testing import CliRunner
from werkzeug.test import Client, TestResponse

from billing.core.credentials import parse, throttle_value
from billing.customer.gateway_answers import GATEWAY_ANSWERS, PORTAL_PAGE
from billing.settings import MAX_AUTHORIZER_CACHE_SECONDS
from billing.store.api_keys import ApiKeys
from billing_cli.local import customer_gateway
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from functions.customer_authorizer import app as authorizer_app
from tests.e2e.test_operator_commands import push_examples
from tests.support import customer_echo

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CACHE = MAX_AUTHORIZER_CACHE_SECONDS
USAGE = "/live/v1/accounts/acct-1/usage"
EVENTS = Path(__file__).resolve().parents[1] / "events"


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def billing_json(*args: str) -> dict[str, Any]:
    result = billing(*args, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    # The customer API's function is the echo stand-in, imported by path as the real one is.
    monkeypatch.setattr(
        customer_gateway, "CUSTOMER_API_HANDLER", "tests.support.customer_echo:handler"
    )
    customer_echo.CALLS.clear()
    with local_aws(clock=NOW) as aws:
        push_examples()
        yield aws


@pytest.fixture
def client(local: LocalAws) -> Client:
    assert local.customer_api is not None
    return Client(local.customer_api.gateway)


def advance(seconds: int) -> None:
    result = billing("clock", "advance", "--by", f"{seconds}s")
    assert result.exit_code == 0, result.output


def get(client: Client, key: str | None, path: str = USAGE, **kwargs: Any) -> TestResponse:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.get(path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)


def new_key(account_id: str = "acct-1") -> str:
    key: str = billing_json("keys", "create", account_id, "--name", "test")["key"]
    return key


def refused_as(response: TestResponse, name: str) -> None:
    answer = GATEWAY_ANSWERS[name]
    assert response.status_code == answer.status, response.text
    assert response.json == {"statusCode": answer.status, "message": answer.message}


# --- a key's requests ----------------------------------------------------------------------


def test_a_created_key_reaches_the_function_as_its_account(client: Client) -> None:
    # GIVEN a key created with the command line
    created = billing_json("keys", "create", "acct-1", "--name", "CI")
    key = created["key"]
    assert created["key_id"] == parse(key).key_id
    assert "only time the key is shown" in created["warning"]

    # WHEN it asks for acct-1's usage
    response = get(client, key, f"{USAGE}?period=2026-11&period=2026-10")

    # THEN the function was called with the authorizer's context, as API Gateway passes it
    assert response.status_code == 200, response.text
    assert response.json == {
        "authorizer": {
            "account_id": "acct-1",
            "key_id": created["key_id"],
            "kind": "key",
            "principalId": created["key_id"],
        },
        "method": "GET",
        "path": "/v1/accounts/acct-1/usage",
        "proxy": "accounts/acct-1/usage",
        "query": {"period": "2026-10"},  # the last of a repeated parameter
        "body": None,
    }
    assert response.headers.getlist("X-Echo") == ["one", "two"]
    [event] = customer_echo.CALLS
    assert event["multiValueQueryStringParameters"] == {"period": ["2026-11", "2026-10"]}
    assert event["requestContext"]["identity"]["apiKey"] == throttle_value(created["key_id"])
    assert event["resource"] == event["requestContext"]["resourcePath"] == "/v1/{proxy+}"


def test_the_proxy_event_has_the_shape_of_a_real_one(client: Client) -> None:
    real = json.loads((EVENTS / "api_gateway_rest_event.json").read_text())
    key = new_key()
    client.put(
        "/live/v1/accounts/acct-1/thresholds",
        headers={"Authorization": f"Bearer {key}"},
        data=b'{"amounts": ["100"]}',
    )
    [event] = customer_echo.CALLS
    assert set(real) <= set(event)
    assert set(real["requestContext"]) - {"extendedRequestId"} <= set(event["requestContext"])
    assert event["body"] == '{"amounts": ["100"]}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "live"
    assert event["requestContext"]["path"] == "/live/v1/accounts/acct-1/thresholds"


@pytest.mark.parametrize(
    "header",
    [
        None,  # no Authorization header: the authorizer is not even called
        "Basic dXNlcjpwYXNz",
        "Bearer bk_not_a_key",
        "Bearer " + "bk_aaaqeayeaudaocaj_" + "A" * 43,  # well-formed, unknown
    ],
)
def test_no_key_or_a_bad_one_gets_401_and_never_reaches_the_function(
    client: Client, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.get(USAGE, headers=headers)
    refused_as(response, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert customer_echo.CALLS == []


def test_one_changed_character_in_the_secret_or_the_key_id_is_refused(client: Client) -> None:
    key = new_key()
    assert get(client, key).status_code == 200
    prefix, key_id, secret = key.split("_", 2)

    def changed(text: str, at: int) -> str:
        return text[:at] + ("b" if text[at] != "b" else "c") + text[at + 1 :]

    for tampered in (
        f"{prefix}_{key_id}_{changed(secret, 10)}",
        f"{prefix}_{changed(key_id, 3)}_{secret}",
    ):
        refused_as(get(client, tampered), "UNAUTHORIZED")
    assert len(customer_echo.CALLS) == 1


# --- revocation and the cache time ----------------------------------------------------------


def test_a_revoked_key_is_refused_at_once_by_its_throttle_and_by_the_authorizer_after_the_cache(
    client: Client,
) -> None:
    # GIVEN a key whose answer the gateway keeps
    key = new_key()
    assert get(client, key).status_code == 200

    # WHEN it is revoked
    revoked = billing_json("keys", "revoke", parse(key).key_id)
    assert revoked["revoked_now"] is True

    # THEN it is refused at once (its throttle key is disabled, which API Gateway checks
    # on each request), and once the cache time has passed by the authorizer itself
    refused_as(get(client, key), "INVALID_API_KEY")
    advance(CACHE)
    refused_as(get(client, key), "UNAUTHORIZED")
    assert len(customer_echo.CALLS) == 1


def test_revocation_takes_effect_within_the_cache_time_whatever_else_happens(
    local: LocalAws, client: Client
) -> None:
    # GIVEN a key whose answer the gateway keeps for the cache time, and its record revoked
    # alone (its throttle key left enabled: the worst case, an interrupted `keys revoke`)
    key = new_key()
    assert get(client, key).status_code == 200
    assert local.customer_api is not None
    ApiKeys(local.dynamodb, local.customer_api.keys_table).revoke(parse(key).key_id, NOW)

    # THEN the kept answer still lets it in until the cache time is over, then never again
    advance(CACHE - 1)
    assert get(client, key).status_code == 200
    advance(1)
    refused_as(get(client, key), "UNAUTHORIZED")
    assert len(customer_echo.CALLS) == 2


def test_a_revocation_twice_says_when_and_an_unknown_key_id_is_an_error(local: LocalAws) -> None:
    key_id = parse(new_key()).key_id
    billing_json("keys", "revoke", key_id)
    advance(5)
    again = billing_json("keys", "revoke", key_id)
    assert again["revoked_now"] is False
    assert again["revoked_at"] == "2026-12-03T09:00:00Z"
    for bad, message in (("aaaqeayeaudaocaj", "no key has the id"), ("bk_x_y", "not the key")):
        result = billing("keys", "revoke", bad)
        assert result.exit_code == 2
        assert message in result.output


# --- portal links -----------------------------------------------------------------------------


def portal_credential(link: str) -> str:
    page, _, fragment = link.partition("#")
    assert page == "http://localhost/live/portal"
    account, token = fragment.split("&")
    assert account == "account=acct-1"
    name, _, credential = token.partition("=")
    assert name == "token"
    return credential


def test_a_portal_link_opens_its_page_reads_and_sets_thresholds_only(client: Client) -> None:
    made = billing_json("portal-link", "acct-1")
    assert made["expires_at"] == "2026-12-03T21:00:00Z"  # 12 hours by default
    credential = portal_credential(made["link"])

    page = client.get("/live/portal")  # the page: no credential needed, no data in it
    assert page.status_code == 200
    assert page.text == PORTAL_PAGE
    assert page.headers["Cache-Control"] == "no-store"

    assert get(client, credential).json["authorizer"]["kind"] == "portal"  # type: ignore[index]
    put = client.put(
        "/live/v1/accounts/acct-1/thresholds", headers={"Authorization": f"Bearer {credential}"}
    )
    assert put.status_code == 200
    for method in ("DELETE", "POST", "PATCH"):
        response = client.open(
            "/live/v1/accounts/acct-1/thresholds",
            method=method,
            headers={"Authorization": f"Bearer {credential}"},
        )
        refused_as(response, "ACCESS_DENIED")
    assert len(customer_echo.CALLS) == 2


def test_an_expired_portal_link_is_refused_and_never_honoured_past_its_expiry(
    client: Client,
) -> None:
    # GIVEN a one-hour link, used at once (its answer kept for the cache time)
    credential = portal_credential(billing_json("portal-link", "acct-1", "--hours", "1")["link"])
    assert get(client, credential).status_code == 200

    # WHEN the clock nears its expiry by less than the cache time THEN it is refused:
    # an answer kept from now would outlive it
    advance(3600 - CACHE + 1)
    refused_as(get(client, credential), "UNAUTHORIZED")
    advance(CACHE)
    refused_as(get(client, credential), "UNAUTHORIZED")


def test_portal_link_hours_are_bounded(local: LocalAws) -> None:
    for hours in ("0", "169"):
        result = billing("portal-link", "acct-1", "--hours", hours)
        assert result.exit_code == 2
        assert "a portal link lasts 1 to 168 hours" in result.output


# --- the commands ----------------------------------------------------------------------------


def test_a_list_shows_keys_and_links_and_never_a_secret_or_a_hash(
    local: LocalAws, client: Client
) -> None:
    key = new_key()
    advance(1)  # listed oldest first
    link = billing_json("portal-link", "acct-1", "--hours", "2")["link"]
    billing_json("keys", "revoke", parse(key).key_id)

    listed = billing_json("keys", "list", "acct-1")
    text = billing("keys", "list", "acct-1").output

    assert [(k["kind"], k["status"]) for k in listed["keys"]] == [
        ("key", "revoked"),
        ("portal", "active"),
    ]
    assert listed["keys"][0]["name"] == "test"
    assert listed["keys"][1]["expires_at"] == "2026-12-03T11:00:01Z"
    secrets = [parse(key), parse(portal_credential(link))]
    for credential in secrets:
        for output in (json.dumps(listed), text):
            assert credential.secret not in output
            assert credential.secret_hash not in output
        assert credential.key_id in json.dumps(listed)


def test_the_key_alone_goes_to_stdout_and_the_warning_to_stderr(local: LocalAws) -> None:
    result = billing("keys", "create", "acct-1")
    assert result.exit_code == 0
    [line] = result.stdout.splitlines()
    assert parse(line).key_id in result.stderr
    assert "only time the key is shown" in result.stderr


@pytest.mark.parametrize(
    "command",
    [("keys", "create"), ("keys", "list"), ("portal-link",)],
)
def test_an_unknown_account_is_an_error_exit_2(local: LocalAws, command: tuple[str, ...]) -> None:
    result = billing(*command, "acct-9")
    assert result.exit_code == 2
    assert "account 'acct-9' is not known" in result.output


# --- the gateway as API Gateway -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/live", "/live/", "/live/v1/", "/live/other", "/v1/x"])
def test_a_path_that_is_no_route_is_not_found(client: Client, path: str) -> None:
    refused_as(get(client, new_key(), path), "MISSING_AUTHENTICATION_TOKEN")


def test_other_hosts_and_other_pages_origins_are_refused(client: Client) -> None:
    key = new_key()
    assert get(client, key, headers={"Origin": "http://localhost"}).status_code == 200
    for headers in ({"Origin": "https://evil.example"}, {"Host": "evil.example"}):
        response = get(client, key, headers=headers)
        assert response.status_code == 403
        assert response.text.startswith("refused by billing local")


def test_a_failing_authorizer_is_500_and_a_failing_function_502(client: Client) -> None:
    key = new_key()
    assert get(client, key, "/live/v1/fail").status_code == 502
    other = new_key()

    def unavailable() -> Any:
        raise RuntimeError("the key table is unavailable")

    # (patched and restored inside the runtime, which patches the service itself)
    with mock.patch.object(authorizer_app, "service", unavailable):
        refused_as(get(client, other), "AUTHORIZER_FAILURE")
    assert get(client, other).status_code == 200  # a failure is not kept


def test_keys_made_with_endpoint_url_work_against_the_served_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        customer_gateway, "CUSTOMER_API_HANDLER", "tests.support.customer_echo:handler"
    )
    with local_aws(server_port=0, customer_api_port=0) as aws:
        assert aws.endpoint_url is not None
        assert aws.customer_api is not None
        push_examples()
        made = billing_json("--endpoint-url", aws.endpoint_url, "keys", "create", "acct-1")
        url = aws.customer_api.url
        assert url.startswith("http://127.0.0.1:")
        assert billing_json("--endpoint-url", aws.endpoint_url, "portal-link", "acct-1")[
            "link"
        ].startswith(f"{url}portal#account=acct-1&token=bk_")

        def fetch(key: str | None) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(f"{url}v1/accounts/acct-1")
            if key is not None:
                request.add_header("Authorization", f"Bearer {key}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())

        status, body = fetch(made["key"])
        assert status == 200
        assert body["authorizer"]["account_id"] == "acct-1"
        assert fetch(None)[0] == 401
