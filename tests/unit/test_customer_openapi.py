"""The customer API's OpenAPI document (docs/customer-openapi.json): generated from its
routes and models, committed current, and saying what the handler does."""

from __future__ import annotations

import json
from pathlib import Path

from billing.customer.gateway_answers import GATEWAY_ANSWERS
from functions.customer_api import app as customer_api

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_document_is_the_one_the_api_generates() -> None:
    committed = (ROOT / "docs" / "customer-openapi.json").read_text()

    generated = customer_api.openapi_document()

    assert generated == committed, (
        "docs/customer-openapi.json is stale: the customer API's routes or models changed. "
        "Regenerate it with `make openapi` and commit it."
    )


def test_every_route_is_on_the_callers_account_and_answers_401_and_403() -> None:
    document = json.loads(customer_api.openapi_document())

    operations = {
        (method.upper(), path): sorted(operation["responses"])
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }

    assert set(operations) == {
        ("GET", "/v1/accounts/{account_id}"),
        ("GET", "/v1/accounts/{account_id}/usage"),
        ("GET", "/v1/accounts/{account_id}/usage/daily"),
        ("GET", "/v1/accounts/{account_id}/preview"),
        ("GET", "/v1/accounts/{account_id}/explanation"),
        ("GET", "/v1/accounts/{account_id}/credits"),
        ("GET", "/v1/accounts/{account_id}/invoices"),
        ("GET", "/v1/accounts/{account_id}/invoices/{number}"),
        ("GET", "/v1/accounts/{account_id}/credit-notes"),
        ("GET", "/v1/accounts/{account_id}/credit-notes/{number}"),
        ("GET", "/v1/accounts/{account_id}/adjustments"),
        ("GET", "/v1/accounts/{account_id}/adjustments/{number}"),
        ("GET", "/v1/accounts/{account_id}/thresholds"),
        ("PUT", "/v1/accounts/{account_id}/thresholds"),
    }
    assert all(
        {"400", "401", "403", "404", "503"} <= set(answers) for answers in operations.values()
    )
    # API Gateway's own answers may come on any route: each is documented on every one.
    gateway = {str(answer.status) for answer in GATEWAY_ANSWERS.values()}
    assert gateway == {"401", "403", "404", "429", "500"}
    assert all(gateway <= set(answers) for answers in operations.values())
    assert all("422" not in answers for answers in operations.values())
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["name"] == "Authorization"


def test_the_query_parameters_the_handler_takes_are_the_documents() -> None:
    document = json.loads(customer_api.openapi_document())

    documented = {
        path: frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
        for path, methods in document["paths"].items()
        for operation in methods.values()
    }

    assert {path: names for path, names in documented.items() if names} == (
        customer_api.ROUTE_QUERIES
    )
