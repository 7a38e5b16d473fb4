"""The operator API on the local runtime: every AWS call its function makes is in its row
of the permissions table (moto grants everything, so a call beyond it would first fail on
AWS); and a customer key, which opens the customer API, never reaches it."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from werkzeug.test import Client

from billing import wiring
from billing.core.catalog import load_accounts, load_catalog
from billing.customer.access import CustomerAccess
from billing_cli.deployment import connect
from billing_cli.local.runtime import local_aws
from billing_cli.operator_client import operator_api
from functions.operator_api import app as operator_app
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_billing_run import EXAMPLES
from tests.e2e.test_calls_within_permissions import recording

NEW = {
    "name": "Fabrikam",
    "email": "billing@fabrikam.example",
    "plan": "pro",
    "timezone": "UTC",
    "start": "2027-01-01",
}


def test_every_call_the_operator_api_makes_is_in_its_row_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the examples loaded on the local runtime
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    with local_aws() as aws:
        aws.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog))
        monkeypatch.setattr(operator_app, "service", functools.cache(wiring.operator_config))
        api = operator_api(connect())

        # WHEN every route is called, each write on the version read
        with recording() as calls:
            statuses = _every_route(api)

    # THEN each answered, and its function called AWS only as its row in the table allows
    assert statuses == [200, 201, 200, 200, 200, 200, 200]
    allowed = {c.action for made in FUNCTION_ACTIONS["operator_api"].values() for c in made}
    assert set(calls) == {"operator_api"}
    assert {"dynamodb:PutItem", "dynamodb:Scan", "dynamodb:GetItem"} <= calls["operator_api"]
    assert calls["operator_api"] <= allowed, sorted(calls["operator_api"] - allowed)


def _every_route(api: Any) -> list[int]:
    listed = api.request("GET", "/operator/accounts")
    created = api.request(
        "PUT", "/operator/accounts/acct-7", headers={"If-None-Match": "*"}, body=NEW
    )
    read = api.request("GET", "/operator/accounts/acct-7")
    renamed = api.request(
        "PUT",
        "/operator/accounts/acct-7",
        headers={"If-Match": read.headers["etag"]},
        body={**read.body, "name": "Fabrikam Inc"},
    )
    ended = api.request(
        "POST",
        "/operator/accounts/acct-7/end",
        headers={"If-Match": renamed.headers["etag"]},
        body={"end": "2027-06-01"},
    )
    catalog = api.request("GET", "/operator/catalog")
    replaced = api.request(
        "PUT", "/operator/catalog", headers={"If-Match": catalog.headers["etag"]}, body=catalog.body
    )
    answers = [listed, created, read, renamed, ended, catalog, replaced]
    return [answer.status for answer in answers]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/live/v1/operator/accounts"),
        ("GET", "/live/v1/operator/accounts/acct-1"),
        ("PUT", "/live/v1/operator/catalog"),
        ("GET", "/live/operator/accounts/acct-1"),
    ],
)
def test_a_customer_key_never_reaches_the_operator_function(method: str, path: str) -> None:
    # GIVEN the local runtime with a valid customer key of acct-1
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    with local_aws() as aws:
        aws.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog))
        assert aws.customer_api is not None
        deployment = connect()
        access = CustomerAccess(
            keys=deployment.customer_keys(),
            throttle=deployment.throttle_keys(),
            accounts=deployment.config(),
            api_url=aws.customer_api.url,
        )
        key = access.create_key("acct-1")
        client = Client(aws.customer_api.gateway)

        # WHEN it asks the customer API for an operator route
        with recording() as calls:
            answer = client.open(
                path,
                method=method,
                headers={"Authorization": f"Bearer {key.credential}"},
                json={} if method == "PUT" else None,
            )

    # THEN it is not found, and the operator function never ran
    assert answer.status_code == 404, answer.get_data(as_text=True)
    assert answer.get_json() == {"statusCode": 404, "message": "Not found"}
    assert "operator_api" not in calls
