"""The operator API: two operators, one writing an account onto a plan and
one replacing the catalog without that plan. Each write is conditional on its own item's
version only, so when the catalog replacement lands between the account write's reading of
the catalog and its PutItem, both succeed, and the stored account names a plan the stored
catalog no longer has: what `billing accounts push` and `PUT /operator/catalog` promise
never to store (docs/operator-api.md: "a catalog that drops a plan a stored account uses"
is 409). Now an account write is one transaction with a conditional Update of the catalog
item (the catalog it was validated against, stamped with a fresh mark), and a catalog
replacement is conditional on that mark as read before it scanned the accounts: whichever
of the two lands second is refused, 409."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from billing import wiring
from billing.core.catalog import CatalogError, parse_accounts
from billing.store.config_store import ConfigStore
from billing_cli.local.lambdas import LocalContext
from functions.operator_api import app as operator_api
from tests.integration.conftest import Aws
from tests.support.api_gateway import rest_request

CLOCK = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CONTEXT = LocalContext("operator-api")
TEAM_ACCOUNT = {
    "name": "Fabrikam",
    "email": "billing@fabrikam.example",
    "plan": "team",  # in the example catalog, used by no stored account
    "timezone": "UTC",
    "start": "2026-12-01",
}


def call(method: str, resource: str, **request: Any) -> tuple[int, Any, dict[str, Any]]:
    path = request.pop("path", {})
    response = operator_api.handler(rest_request(method, resource, path, **request), CONTEXT)
    return response["statusCode"], json.loads(response["body"]), response["multiValueHeaders"]


def test_an_account_write_and_a_catalog_dropping_its_plan_cannot_both_succeed(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    service = wiring.operator_config(clock=lambda: CLOCK)
    monkeypatch.setattr(operator_api, "service", lambda: service)
    status, catalog, headers = call("GET", "/operator/catalog")
    without_team = {**catalog, "plans": [p for p in catalog["plans"] if p["id"] != "team"]}
    catalog_answers: list[int] = []

    # Operator B's catalog replacement lands after operator A's account write has read and
    # validated against the catalog, before A's PutItem.
    store: Any = service._config
    put_account_on = store.put_account_on

    def after_the_catalog_replacement(account: Any, read: Any, *catalog: Any) -> Any:
        answer = call(
            "PUT",
            "/operator/catalog",
            headers={"If-Match": headers["ETag"][0]},
            body=without_team,
        )
        catalog_answers.append(answer[0])
        return put_account_on(account, read, *catalog)

    monkeypatch.setattr(store, "put_account_on", after_the_catalog_replacement)

    account_status, _, _ = call(
        "PUT",
        "/operator/accounts/{account_id}",
        path={"account_id": "acct-7"},
        headers={"If-None-Match": "*"},
        body=TEAM_ACCOUNT,
    )

    # Expected: one of the two writes refused (409), so what is stored validates.
    # Got: the catalog replaced (200) and the account created (201) on plan 'team', which
    # the stored catalog no longer has.
    assert status == 200
    stored = ConfigStore(aws.dynamodb, aws.config_table)
    stored_catalog = stored.versioned_catalog()
    assert stored_catalog is not None
    accounts = {"accounts": [a.model_dump(mode="json") for a in stored.all_accounts()]}
    try:
        parse_accounts(accounts, stored_catalog.value, "stored")
        stored_is_valid = True
    except CatalogError:
        stored_is_valid = False
    assert stored_is_valid, f"catalog PUT {catalog_answers}, account PUT {account_status}"


def _race(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any], str]:
    """The operator service on moto, the stored catalog without 'team', its ETag."""
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    service = wiring.operator_config(clock=lambda: CLOCK)
    monkeypatch.setattr(operator_api, "service", lambda: service)
    _, catalog, headers = call("GET", "/operator/catalog")
    without_team = {**catalog, "plans": [p for p in catalog["plans"] if p["id"] != "team"]}
    return service._config, without_team, headers["ETag"][0]


def test_the_account_write_landing_second_is_refused(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, without_team, etag = _race(aws, monkeypatch)
    put_account_on = store.put_account_on
    catalog_answers: list[int] = []

    def after_the_catalog_replacement(*args: Any) -> Any:
        answer = call("PUT", "/operator/catalog", headers={"If-Match": etag}, body=without_team)
        catalog_answers.append(answer[0])
        return put_account_on(*args)

    monkeypatch.setattr(store, "put_account_on", after_the_catalog_replacement)

    status, body, _ = call(
        "PUT",
        "/operator/accounts/{account_id}",
        path={"account_id": "acct-7"},
        headers={"If-None-Match": "*"},
        body=TEAM_ACCOUNT,
    )

    # the catalog replacement (200) came first; the account, validated against the old
    # catalog, is refused and not stored
    assert (catalog_answers, status) == ([200], 409)
    assert "the catalog was replaced meanwhile" in json.dumps(body)
    assert ConfigStore(aws.dynamodb, aws.config_table).versioned_account("acct-7") is None


def test_the_catalog_replacement_landing_second_is_refused(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, without_team, etag = _race(aws, monkeypatch)
    put_catalog_on = store.put_catalog_on
    account_answers: list[int] = []

    # Operator A's account write lands after operator B's catalog replacement has read the
    # catalog and scanned the accounts (acct-7 not among them), before B's PutItem
    def after_the_account_write(*args: Any) -> Any:
        answer = call(
            "PUT",
            "/operator/accounts/{account_id}",
            path={"account_id": "acct-7"},
            headers={"If-None-Match": "*"},
            body=TEAM_ACCOUNT,
        )
        account_answers.append(answer[0])
        return put_catalog_on(*args)

    monkeypatch.setattr(store, "put_catalog_on", after_the_account_write)

    status, _, _ = call("PUT", "/operator/catalog", headers={"If-Match": etag}, body=without_team)

    # the account (201) came first; the catalog dropping its plan is refused, 409, and the
    # stored catalog still has 'team'
    assert (account_answers, status) == ([201], 409)
    stored = ConfigStore(aws.dynamodb, aws.config_table).versioned_catalog()
    assert stored is not None
    assert "team" in {plan.id for plan in stored.value.plans}
    assert stored.version == etag.strip('"')
