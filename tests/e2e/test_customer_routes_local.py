"""The customer API's real function behind the local gateway and its authorizer: a key made
with `billing keys create` reads its own account's routes, sets its thresholds, and gets
the same 403 for another account's (docs/customer-api.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.test import Client

from billing_cli.local.runtime import local_aws
from tests.e2e.test_customer_access import billing_json
from tests.e2e.test_operator_commands import push_examples

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def client() -> Iterator[Client]:
    with local_aws(clock=NOW) as aws:
        push_examples()
        assert aws.customer_api is not None
        yield Client(aws.customer_api.gateway)


def call(client: Client, key: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    response = client.open(
        f"/live/v1/accounts/{path}", method=method, headers=headers, data=json.dumps(body)
    )
    return response.status_code, response.json


def test_a_key_reads_its_own_account_and_sets_its_thresholds_and_nothing_else(
    client: Client,
) -> None:
    key = billing_json("keys", "create", "acct-1", "--name", "routes")["key"]

    account = call(client, key, "GET", "acct-1")
    daily = call(client, key, "GET", "acct-1/usage/daily")
    stored = call(client, key, "PUT", "acct-1/thresholds", {"thresholds": [{"amount": "250"}]})
    other = call(client, key, "GET", "acct-2/usage")

    assert account[0] == 200
    assert (account[1]["name"], account[1]["current_period"]["period"]) == ("Acme Ltd", "2026-11")
    assert daily[0] == 200
    assert [d["date"] for d in daily[1]["meters"][0]["days"]][-1] == "2026-11-20"
    assert stored == (
        200,
        {
            "account_id": "acct-1",
            "currency": "USD",
            "budget": None,
            "thresholds": [{"id": "amount:250.00", "amount": "250.00"}],
            "updated_at": "2026-11-20T09:00:00Z",
        },
    )
    assert other == (403, {"statusCode": 403, "message": "this key is not for that account"})
