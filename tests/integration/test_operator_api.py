"""operator_api against moto: real-shaped API Gateway REST events through the handler, on
the example catalog and accounts as `billing accounts push` stores them. Every route, with
its exact status and body; a write on a stale version refused with 409; the history rules
refusing exactly as the file push does."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from billing import wiring
from billing.core.catalog import Accounts, Catalog, parse_accounts
from billing.core.history import HistoryRewrite, check_push
from billing.operator.rules import PUSH_LEAD
from billing.store.config_store import ConfigStore
from billing_cli.local.lambdas import LocalContext
from functions.operator_api import app as operator_api
from tests.integration.conftest import Aws
from tests.support.api_gateway import rest_request

# 28 November 2026, noon UTC: November is open (and rated) in every example account's zone.
CLOCK = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ACCOUNTS = "/operator/accounts"
ACCOUNT = "/operator/accounts/{account_id}"
END = "/operator/accounts/{account_id}/end"
CATALOG = "/operator/catalog"
CONTEXT = LocalContext("operator-api")


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: Any

    @property
    def etag(self) -> str:
        return self.headers["ETag"][0]

    @property
    def message(self) -> str:
        return str(self.body["message"])


@dataclass
class Api:
    aws: Aws

    def call(
        self,
        method: str,
        resource: str,
        *,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        **path: str,
    ) -> Answer:
        event = rest_request(method, resource, path, query=query, headers=headers, body=body)
        response = operator_api.handler(event, CONTEXT)
        return Answer(
            response["statusCode"], response["multiValueHeaders"], json.loads(response["body"])
        )

    def stored(self, account_id: str) -> str:
        item = self.aws.dynamodb.get_item(
            TableName=self.aws.config_table,
            Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": "PROFILE"}},
        )
        return str(item["Item"]["document"]["S"])


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    service = wiring.operator_config(clock=lambda: CLOCK)
    monkeypatch.setattr(operator_api, "service", lambda: service)
    return Api(aws)


def etag(document: str) -> str:
    return '"' + hashlib.sha256(document.encode()).hexdigest()[:32] + '"'


NEW_ACCOUNT = {
    "name": "Fabrikam",
    "email": "billing@fabrikam.example",
    "plan": "pro",
    "timezone": "UTC",
    "start": "2026-12-01",
}


# --- reading ------------------------------------------------------------------------------


def test_list_gives_every_account_in_one_page(api: Api) -> None:
    answer = api.call("GET", ACCOUNTS, query={"limit": "1000"})

    assert answer.status == 200
    assert [a["id"] for a in answer.body["accounts"]] == [f"acct-{n}" for n in range(1, 7)]
    assert answer.body["next"] is None
    assert answer.body["accounts"][0] == json.loads(api.stored("acct-1"))


def test_list_pages_follow_their_tokens_to_every_account(api: Api) -> None:
    seen: list[str] = []
    query = {"limit": "2"}
    for _ in range(10):
        answer = api.call("GET", ACCOUNTS, query=query)
        assert answer.status == 200
        assert len(answer.body["accounts"]) <= 2
        seen += [account["id"] for account in answer.body["accounts"]]
        if answer.body["next"] is None:
            break
        query = {"limit": "2", "next": answer.body["next"]}

    assert sorted(seen) == [f"acct-{n}" for n in range(1, 7)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "1001"}, "limit: Input should be less than or equal to 1000"),
        ({"next": "not-a-token"}, "next: is not a page token this API gave"),
    ],
)
def test_list_refuses_a_bad_limit_or_token(api: Api, query: dict[str, str], message: str) -> None:
    answer = api.call("GET", ACCOUNTS, query=query)

    assert (answer.status, answer.body) == (400, {"statusCode": 400, "message": message})


def test_get_gives_the_account_as_stored_with_its_version(api: Api) -> None:
    answer = api.call("GET", ACCOUNT, account_id="acct-1")

    assert answer.status == 200
    assert answer.body == json.loads(api.stored("acct-1"))
    assert answer.etag == etag(api.stored("acct-1"))


def test_get_of_an_unknown_account_is_404(api: Api) -> None:
    answer = api.call("GET", ACCOUNT, account_id="acct-404")

    assert (answer.status, answer.message) == (404, "account 'acct-404' is not stored")


def test_get_refuses_a_malformed_id(api: Api) -> None:
    answer = api.call("GET", ACCOUNT, account_id="a b")

    assert answer.status == 400
    assert answer.message.startswith("account_id: ")


# --- creating and replacing ---------------------------------------------------------------


def test_create_with_if_none_match_stores_the_account_and_its_due_hint(api: Api) -> None:
    answer = api.call(
        "PUT", ACCOUNT, headers={"If-None-Match": "*"}, body=NEW_ACCOUNT, account_id="acct-7"
    )

    assert answer.status == 201
    assert answer.body == {
        **NEW_ACCOUNT,
        "id": "acct-7",
        "tax_rate": "0",
        "end": None,
        "locale": "en",
        "billing_address": None,
        "tax_id": None,
        "discounts": [],
        "credits": [],
    }
    assert answer.etag == etag(api.stored("acct-7"))
    assert "acct-7" in api.aws.due_hints().get_many(["acct-7"])


def test_create_over_a_stored_account_is_409(api: Api) -> None:
    before = api.stored("acct-1")
    answer = api.call(
        "PUT", ACCOUNT, headers={"If-None-Match": "*"}, body=NEW_ACCOUNT, account_id="acct-1"
    )

    assert answer.status == 409
    assert answer.message == (
        f"account 'acct-1' is already stored (version {etag(before)[1:-1]}): read it, then "
        "replace it with If-Match"
    )
    assert api.stored("acct-1") == before


def test_a_write_without_a_precondition_is_428(api: Api) -> None:
    answer = api.call("PUT", ACCOUNT, body=NEW_ACCOUNT, account_id="acct-7")

    assert (answer.status, answer.message) == (
        428,
        "writing account 'acct-7' needs If-Match with the version (ETag) read, or "
        "If-None-Match: * to create it",
    )


def test_replace_on_the_version_read_stores_it_and_gives_the_new_version(api: Api) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")
    changed = {**read.body, "name": "Acme Holdings Ltd"}

    answer = api.call(
        "PUT", ACCOUNT, headers={"If-Match": read.etag}, body=changed, account_id="acct-1"
    )

    assert answer.status == 200
    assert answer.body == changed
    assert answer.etag == etag(api.stored("acct-1")) != read.etag


def test_the_second_of_two_writes_on_the_same_version_is_409(api: Api) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")
    first = {**read.body, "name": "First"}
    second = {**read.body, "name": "Second"}
    assert (
        api.call(
            "PUT", ACCOUNT, headers={"If-Match": read.etag}, body=first, account_id="acct-1"
        ).status
        == 200
    )

    answer = api.call(
        "PUT", ACCOUNT, headers={"If-Match": read.etag}, body=second, account_id="acct-1"
    )

    assert answer.status == 409
    assert answer.message == (
        f"account 'acct-1' changed since version {read.etag[1:-1]} was read (it is at "
        f"{etag(api.stored('acct-1'))[1:-1]}): read it again and apply the change to that"
    )
    assert json.loads(api.stored("acct-1"))["name"] == "First"


def test_a_write_between_the_read_and_the_conditional_put_is_refused(api: Api) -> None:
    # GIVEN the version a write read, then another writer's change (a push) landing
    config = ConfigStore(api.aws.dynamodb, api.aws.config_table)
    read = config.versioned_account("acct-1")
    assert read is not None
    pushed = read.value.model_copy(update={"name": "Pushed"})
    config.put_accounts(Accounts(accounts=[pushed]))

    # WHEN the write stores on the version it read THEN DynamoDB's condition refuses it
    from billing.store.errors import VersionConflict

    catalog = config.versioned_catalog()
    assert catalog is not None
    with pytest.raises(VersionConflict):
        config.put_account_on(read.value.model_copy(update={"name": "Late"}), read, catalog)
    assert json.loads(api.stored("acct-1"))["name"] == "Pushed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not-an-email"}, "body.email: "),
        ({"plan": "gold"}, "body.plan: unknown plan 'gold'"),
        ({"nmae": "x"}, "body.nmae: is not a known field"),
        ({"id": "acct-8"}, "body.id: must be the path's account id 'acct-7'"),
        ({"timezone": "Mars/Olympus"}, "body.timezone: "),
    ],
)
def test_an_invalid_account_is_400_naming_the_field(
    api: Api, change: dict[str, str], message: str
) -> None:
    body = {**NEW_ACCOUNT, **change}
    answer = api.call(
        "PUT", ACCOUNT, headers={"If-None-Match": "*"}, body=body, account_id="acct-7"
    )

    assert answer.status == 400
    assert answer.message.startswith(message), answer.message
    assert "Traceback" not in answer.message


def test_a_body_that_is_not_an_object_is_400(api: Api) -> None:
    answer = api.call("PUT", ACCOUNT, headers={"If-None-Match": "*"}, body=[1], account_id="acct-7")

    assert answer.status == 400
    assert answer.message == "body: Input should be a valid dictionary"


# --- the history rules, as the file push applies them --------------------------------------


def push_refusal(stored: str, pushed: dict[str, Any], catalog: Catalog) -> str:
    """What `billing accounts push` of a file holding `pushed` says (without its file's
    name), over the account stored as `stored`."""
    accounts = parse_accounts({"accounts": [pushed]}, catalog, "accounts.yaml")
    before = Accounts.model_validate_json(json.dumps({"accounts": [json.loads(stored)]}))
    with pytest.raises(HistoryRewrite) as refused:
        check_push(before, accounts, CLOCK, lead=PUSH_LEAD)
    return f"{refused.value}; nothing was stored"


@pytest.mark.parametrize(
    "change",
    [
        {"plan": "team"},  # the plan, not through a future change
        {"timezone": "UTC"},
        {"start": "2026-11-01"},
        {"discounts": [{"id": "d1", "percent": "10", "from": "2026-11", "periods": 2}]},
        {"changes": [{"effective": "2026-11-28", "plan": "team"}]},  # not after now + lead
    ],
)
def test_a_history_rewrite_is_409_with_the_push_s_message(
    api: Api, example_catalog: Catalog, change: dict[str, Any]
) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")
    before = api.stored("acct-1")
    changed = {**read.body, **change}

    answer = api.call(
        "PUT", ACCOUNT, headers={"If-Match": read.etag}, body=changed, account_id="acct-1"
    )

    assert answer.status == 409
    assert answer.message == push_refusal(before, changed, example_catalog)
    assert answer.message.startswith("accounts[0] (acct-1): ")
    assert api.stored("acct-1") == before


def test_a_plan_change_from_a_later_midnight_is_taken(api: Api) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")
    changed = {**read.body, "changes": [{"effective": "2026-12-01", "plan": "team"}]}

    answer = api.call(
        "PUT", ACCOUNT, headers={"If-Match": read.etag}, body=changed, account_id="acct-1"
    )

    assert answer.status == 200
    assert answer.body["changes"] == [{"effective": "2026-12-01", "plan": "team"}]


# --- ending, never deleting ---------------------------------------------------------------


def test_end_sets_the_end_and_keeps_the_account(api: Api) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")

    answer = api.call(
        "POST",
        END,
        headers={"If-Match": read.etag},
        body={"end": "2027-01-01"},
        account_id="acct-1",
    )

    assert answer.status == 200
    assert answer.body == {**read.body, "end": "2027-01-01"}
    assert answer.etag == etag(api.stored("acct-1"))
    listed = api.call("GET", ACCOUNTS, query={"limit": "1000"}).body["accounts"]
    assert [a["end"] for a in listed if a["id"] == "acct-1"] == ["2027-01-01"]


def test_end_reaching_back_into_rated_time_is_409_as_a_push(
    api: Api, example_catalog: Catalog
) -> None:
    read = api.call("GET", ACCOUNT, account_id="acct-1")
    before = api.stored("acct-1")

    answer = api.call(
        "POST",
        END,
        headers={"If-Match": read.etag},
        body={"end": "2026-11-20"},
        account_id="acct-1",
    )

    assert answer.status == 409
    assert answer.message == push_refusal(
        before, {**read.body, "end": "2026-11-20"}, example_catalog
    )
    assert answer.message.startswith(
        "accounts[0] (acct-1): end: moving it from none to 2026-11-20 reaches back to 2026-11-20"
    )


def test_end_needs_if_match(api: Api) -> None:
    answer = api.call("POST", END, body={"end": "2027-01-01"}, account_id="acct-1")

    assert answer.status == 428


def test_end_of_an_unknown_account_is_404(api: Api) -> None:
    answer = api.call(
        "POST", END, headers={"If-Match": '"x"'}, body={"end": "2027-01-01"}, account_id="acct-9"
    )

    assert (answer.status, answer.message) == (404, "account 'acct-9' is not stored")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"end": "1 Jan"}, "end: "),
        ({"end": "2027-01-01", "why": "x"}, "why: "),
        ({}, "end: "),
    ],
)
def test_end_refuses_a_bad_body(api: Api, body: dict[str, str], message: str) -> None:
    answer = api.call("POST", END, headers={"If-Match": '"x"'}, body=body, account_id="acct-1")

    assert answer.status == 400
    assert answer.message.startswith(message), answer.message


def test_there_is_no_delete(api: Api) -> None:
    answer = api.call("DELETE", ACCOUNT, account_id="acct-1")

    assert answer.status == 404
    assert json.loads(api.stored("acct-1"))["id"] == "acct-1"


# --- the catalog ---------------------------------------------------------------------------


def test_catalog_is_read_with_its_version_and_replaced_on_it(api: Api) -> None:
    read = api.call("GET", CATALOG)
    assert read.status == 200
    renamed = {
        **read.body,
        "plans": [{**read.body["plans"][0], "name": "Pro 2"}, *read.body["plans"][1:]],
    }

    answer = api.call("PUT", CATALOG, headers={"If-Match": read.etag}, body=renamed)

    assert answer.status == 200
    assert answer.body["plans"][0]["name"] == "Pro 2"
    assert answer.etag != read.etag
    stale = api.call("PUT", CATALOG, headers={"If-Match": read.etag}, body=renamed)
    assert stale.status == 409


def test_a_catalog_losing_a_stored_account_s_plan_is_409(api: Api) -> None:
    read = api.call("GET", CATALOG)
    without_pro = {**read.body, "plans": [p for p in read.body["plans"] if p["id"] != "pro"]}

    answer = api.call("PUT", CATALOG, headers={"If-Match": read.etag}, body=without_pro)

    assert (answer.status, answer.message) == (
        409,
        "body: stored accounts use plans this catalog no longer has: acct-1 (pro), acct-2 (pro)",
    )


def test_an_invalid_catalog_is_400_naming_the_entry(api: Api) -> None:
    read = api.call("GET", CATALOG)
    broken = {**read.body, "plans": [{**read.body["plans"][0], "currency": "XXXX"}]}

    answer = api.call("PUT", CATALOG, headers={"If-Match": read.etag}, body=broken)

    assert answer.status == 400
    assert answer.message.startswith("body: plans[0] (pro): currency: "), answer.message


def test_catalog_put_needs_a_precondition(api: Api) -> None:
    read = api.call("GET", CATALOG)

    answer = api.call("PUT", CATALOG, body=read.body)

    assert answer.status == 428
