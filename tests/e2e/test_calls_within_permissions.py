"""The permissions table (stacks/permissions.py) against what the functions really call:
`billing run` on the examples, every AWS call recorded with the function that made it.
moto grants everything, so without this a call missing from a role's policy would first
fail on AWS."""

from __future__ import annotations

import functools
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.client import BaseClient
from werkzeug.test import Client

from billing import wiring
from billing.core.catalog import load_accounts, load_catalog
from billing.customer.access import CustomerAccess
from billing.invoicing.due import ListDue
from billing.invoicing.issue import IssueInvoices
from billing.invoicing.send import SendInvoices
from billing_cli.deployment import connect
from billing_cli.local import customer_gateway
from billing_cli.local.lambdas import LocalContext
from billing_cli.local.runtime import local_aws
from functions.customer_api import app as customer_api
from functions.usage_api import app as usage_api
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_billing_run import EXAMPLES, billing_run
from tests.support.api_gateway import customer_event, rest_event

USAGE = "/accounts/{account_id}/usage"
INVOICES = "/accounts/{account_id}/invoices"
INVOICE = "/accounts/{account_id}/invoices/{number}"

# The invoice workflow's step services, which billing.wiring.invoice_step(step) runs.
STEP_FUNCTIONS = {
    ListDue: "list_due",
    IssueInvoices: "issue_invoices",
    SendInvoices: "send_invoices",
}
# What a call is authorized as, where that is not the operation's own name.
AUTHORIZED_AS = {
    "dynamodb:TransactWriteItems": {"dynamodb:PutItem", "dynamodb:UpdateItem"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    **{
        f"s3:{operation}": {"s3:PutObject"}
        for operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
    },
}


def calling_function() -> str | None:
    """The function whose handler is running under this call, innermost first."""
    frame = sys._getframe(2)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.name == "app.py" and path.parent.parent.name == "functions":
            return path.parent.name
        if frame.f_code.co_name == "handle" and type(frame.f_locals.get("self")) in STEP_FUNCTIONS:
            return STEP_FUNCTIONS[type(frame.f_locals["self"])]
        frame = frame.f_back  # type: ignore[assignment]
    return None


@contextmanager
def recording() -> Iterator[dict[str, set[str]]]:
    calls: dict[str, set[str]] = defaultdict(set)
    original = BaseClient._make_api_call

    def recorded(client: BaseClient, operation: str, params: Any) -> Any:
        function = calling_function()
        if function is not None:
            action = f"{client.meta.service_model.signing_name}:{operation}"
            calls[function] |= AUTHORIZED_AS.get(action, {action})
        return original(client, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", recorded):
        yield calls


def test_every_call_the_functions_make_in_a_billing_run_is_in_their_row_of_the_table(
    tmp_path: Path,
) -> None:
    # GIVEN the whole pipeline on the examples, every AWS call recorded
    with recording() as calls:
        billing_run(tmp_path / "out")

    # THEN the functions that ran called AWS, and only as their rows in the table allow
    assert {"rate_usage", "list_due", "issue_invoices"} <= set(calls), dict(calls)
    for function, made in calls.items():
        allowed = {
            c.action for stores in [FUNCTION_ACTIONS[function]] for m in stores.values() for c in m
        }
        assert made <= allowed, f"{function} calls {sorted(made - allowed)} beyond its row"


def test_every_call_the_usage_api_makes_is_in_its_row_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the examples loaded on the local runtime, November invoiced by the workflow
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    with local_aws() as aws:
        aws.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog))
        aws.run_invoices("november", {"now": "2026-12-02T00:00:00Z", "period": "2026-11"})
        monkeypatch.setattr(usage_api, "service", functools.cache(wiring.account_views))
        # WHEN the API answers usage, the invoice list and an invoice's document
        with recording() as calls:
            usage = usage_api.handler(
                rest_event(USAGE, {"account_id": "acct-1"}, {"period": "2026-11"}),
                LocalContext("usage-api"),  # type: ignore[arg-type]
            )
            listed = usage_api.handler(
                rest_event(INVOICES, {"account_id": "acct-1"}),
                LocalContext("usage-api"),  # type: ignore[arg-type]
            )
            [invoice] = json.loads(listed["body"])["invoices"]
            document = usage_api.handler(
                rest_event(INVOICE, {"account_id": "acct-1", "number": invoice["invoice_number"]}),
                LocalContext("usage-api"),  # type: ignore[arg-type]
            )

    # THEN it answered, and called AWS only as its row in the table allows
    assert [usage["statusCode"], listed["statusCode"], document["statusCode"]] == [200] * 3
    allowed = {c.action for made in FUNCTION_ACTIONS["usage_api"].values() for c in made}
    assert set(calls) == {"usage_api"}
    assert "s3:GetObject" in calls["usage_api"]
    assert calls["usage_api"] <= allowed, sorted(calls["usage_api"] - allowed)


def test_every_call_the_customer_api_makes_is_in_its_row_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the examples loaded on the local runtime, November invoiced by the workflow
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    caller = {"account_id": "acct-1", "key_id": "abcdefghijklmnop", "kind": "key"}
    with local_aws() as aws:
        aws.load(catalog, load_accounts(EXAMPLES / "accounts.yaml", catalog))
        aws.run_invoices("november", {"now": "2026-12-02T00:00:00Z", "period": "2026-11"})
        monkeypatch.setattr(customer_api, "service", functools.cache(wiring.customer_views))

        def call(method: str, route: str, body: Any = None) -> dict[str, Any]:
            event = customer_event(method, f"/v1/accounts/acct-1{route}", caller, None, body)
            return customer_api.handler(event, LocalContext("customer-api"))  # type: ignore[arg-type]

        # WHEN the API answers every route, the thresholds set and read
        with recording() as calls:
            answers = [
                call("GET", route)
                for route in ("", "/usage", "/usage/daily", "/preview", "/credits", "/invoices")
            ]
            [invoice] = json.loads(answers[-1]["body"])["invoices"]
            answers.append(call("GET", f"/invoices/{invoice['invoice_number']}"))
            answers.append(call("PUT", "/thresholds", {"thresholds": [{"amount": "100"}]}))
            answers.append(call("GET", "/thresholds"))

    # THEN it answered, and called AWS only as its row in the table allows
    assert [answer["statusCode"] for answer in answers] == [200] * 9, answers
    allowed = {c.action for made in FUNCTION_ACTIONS["customer_api"].values() for c in made}
    assert set(calls) == {"customer_api"}
    assert {"s3:GetObject", "dynamodb:UpdateItem"} <= calls["customer_api"]
    assert calls["customer_api"] <= allowed, sorted(calls["customer_api"] - allowed)


def test_every_call_the_customer_authorizer_makes_is_in_its_row_of_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the local runtime with a customer key and a revoked one
    monkeypatch.setattr(
        customer_gateway, "CUSTOMER_API_HANDLER", "tests.support.customer_echo:handler"
    )
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
        key, revoked = access.create_key("acct-1"), access.create_key("acct-1")
        access.revoke(revoked.credential.key_id)
        client = Client(aws.customer_api.gateway)
        # WHEN the gateway has the authorizer judge them
        with recording() as calls:
            statuses = [
                client.get(
                    "/live/v1/accounts/acct-1",
                    headers={"Authorization": f"Bearer {issued.credential}"},
                ).status_code
                for issued in (key, revoked)
            ]

    # THEN it read the key table only, as its row in the table allows
    assert statuses == [200, 401]
    allowed = {c.action for made in FUNCTION_ACTIONS["customer_authorizer"].values() for c in made}
    assert calls["customer_authorizer"] == {"dynamodb:GetItem"} <= allowed
