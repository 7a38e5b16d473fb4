"""Issue 16: the customer API's OpenAPI document (docs/customer-openapi.json) fuzzed with
schemathesis against the local server (`billing local --customer-api-port`: the real
authorizer and function behind the local gateway, on 127.0.0.1): no answer is a 5xx, and
every answer is one the document declares, in its content type and schema.

The server holds the examples with their events rated and November invoiced, on a test
clock in December, and a key for acct-1. Every request carries that key (a request without
one is refused by the gateway before the function, see test_customer_access.py). Almost
every account a fuzzer makes up is another account's, so each operation is fuzzed twice:
with the path's account pinned to the key's own (the routes' answers), and a smaller run
with it unconstrained (the 403s and 400s of the check before every route). The runs are
derandomized and keep no example database, so every run sends the same requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.runtime import RATE_USAGE, REGION, invoke_function, local_aws
from tests.e2e.test_customer_access import billing, billing_json
from tests.e2e.test_invoice_commands import EXAMPLES, on_stream

pytestmark = pytest.mark.e2e

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "customer-openapi.json"
OWN = "acct-1"
# November is closed and invoiced; December, the current period, has begun.
CLOCK = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Served:
    base_url: str  # up to the stage: the document's paths start with /v1/
    key: str
    invoice: str  # the number of acct-1's November invoice

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def fuzzed(max_examples: int, **parameters: str) -> Any:
    """The document as schemathesis fuzzes it: `parameters` fixed (e.g. `path.account_id`),
    no Authorization generated (the key is sent with every request), derandomized."""
    schema = schemathesis.openapi.from_path(DOCUMENT, config=schemathesis.Config())
    schema.config.generation.update(
        max_examples=max_examples,
        deterministic=True,
        database="none",
        with_security_parameters=False,
    )
    schema.config.update(parameters=parameters)
    return schema


PINNED = fuzzed(25, **{"path.account_id": OWN})
ANY_ACCOUNT = fuzzed(8)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with local_aws(clock=CLOCK, customer_api_port=0) as aws:
        assert billing("catalog", "push", str(EXAMPLES / "catalog.yaml")).exit_code == 0
        assert billing("accounts", "push", str(EXAMPLES / "accounts.yaml")).exit_code == 0
        billing("send", str(EXAMPLES / "events.jsonl"))  # some lines refused, on purpose
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        deliver(on_stream(), invoke, MappingSettings(1000))
        run = billing_json("invoices", "run", "--period", "2026-11")
        assert run["report"]["issued"] == 6
        [invoice] = billing_json("invoices", "list", "--account", OWN)["invoices"]
        key = billing_json("keys", "create", OWN, "--name", "fuzz")["key"]
        assert aws.customer_api is not None
        yield Served(aws.customer_api.url.rstrip("/"), key, invoice["invoice_number"])


@PINNED.parametrize()
def test_the_own_accounts_routes_answer_as_documented(case: Any, served: Served) -> None:
    case.call_and_validate(base_url=served.base_url, headers=served.headers(), checks=CHECKS)


@ANY_ACCOUNT.parametrize()
def test_any_account_is_answered_as_documented(case: Any, served: Served) -> None:
    case.call_and_validate(base_url=served.base_url, headers=served.headers(), checks=CHECKS)


# What a fuzzer hardly makes up: a period with usage and an invoice, the account's own
# invoice, thresholds with a budget. Each is answered 200, with its data, as documented.
WITH_DATA: list[tuple[str, str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("GET", "/v1/accounts/{account_id}/usage", {"period": "2026-11"}, None),
    ("GET", "/v1/accounts/{account_id}/usage/daily", {"period": "2026-11"}, None),
    ("GET", "/v1/accounts/{account_id}/preview", {"period": "2026-11"}, None),
    ("GET", "/v1/accounts/{account_id}/invoices/{number}", None, None),
    (
        "PUT",
        "/v1/accounts/{account_id}/thresholds",
        None,
        {"budget": "500", "thresholds": [{"percent": "80"}, {"amount": "250"}]},
    ),
    ("GET", "/v1/accounts/{account_id}/thresholds", None, None),
]


def test_answers_with_data_are_as_documented(served: Served) -> None:
    parameters = {"account_id": OWN, "number": served.invoice}
    for method, path, query, body in WITH_DATA:
        operation = PINNED[path][method]
        case = operation.Case(
            path_parameters={name: parameters[name] for name in re.findall(r"{(\w+)}", path)},
            query=query,
            **({"body": body, "media_type": "application/json"} if body else {}),
        )
        response = case.call_and_validate(
            base_url=served.base_url, headers=served.headers(), checks=CHECKS
        )
        assert response.status_code == 200, (method, path, response.text)
