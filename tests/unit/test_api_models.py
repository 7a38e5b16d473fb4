"""The usage API's body models, and the OpenAPI document generated from its routes.

The models restate JSON the domain writes; the API sends the model's dump, so a body is the
domain's JSON only if the dump gives it back unchanged: same keys, same order, same text,
and no null where the domain leaves a key out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from billing.core.catalog import parse_catalog
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.customer.api_models import (
    InvoiceDocumentBody,
    InvoiceRecordBody,
    UsageReportBody,
)
from billing.customer.usage_view import usage_report
from billing.rating.ledger import AccountLedger
from billing.store.invoice_store import InvoiceRecord
from functions.usage_api import app as usage_api
from tests.unit.test_usage_view import ACCOUNT, USAGE

ROOT = Path(__file__).resolve().parents[2]
NOV = Period(2026, 11)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# Lines of every shape: graduated tiers with a flat fee (details, one step without a unit
# price), a filtered charge, a fixed fee and a minimum (no meter, no unit).
CATALOG = parse_catalog(
    {
        "meters": [
            {"name": "api_requests", "unit": "request", "aggregation": "sum"},
            {"name": "storage", "unit": "GB-hour", "aggregation": "sum"},
        ],
        "plans": [
            {
                "id": "pro",
                "name": "Pro",
                "currency": "USD",
                "fixed_fee": "10.00",
                "minimum_commitment": "50.00",
                "charges": [
                    {
                        "meter": "api_requests",
                        "model": "graduated",
                        "tiers": [
                            {"up_to": 1000, "unit_price": "0"},
                            {"up_to": None, "unit_price": "0.002", "flat_fee": "5.00"},
                        ],
                    },
                    {
                        "meter": "storage",
                        "model": "per_unit",
                        "unit_price": "0.005",
                        "description": "Storage (EU)",
                        "filters": {"region": ["eu-west-1"]},
                    },
                ],
            }
        ],
    }
)
# The usage view's tests' usage: its `seats` meter is not in this catalog (shown as dropped,
# with "unit": null).
LEDGER = AccountLedger("acct-1", version=3, usage={"2026-11": USAGE})


def dumped(body: BaseModel) -> str:
    """The body as the API sends it: Powertools dumps the model in JSON mode, by alias."""
    return json.dumps(body.model_dump(mode="json", by_alias=True))


def test_a_usage_report_is_sent_exactly_as_the_domain_writes_it() -> None:
    # GIVEN a report with filtered and unfiltered charges, details, a dropped meter, a fee
    # and a minimum
    report = usage_report(ACCOUNT, CATALOG, LEDGER, NOV, now=NOW).to_json()
    lines = report["invoice_preview"]["lines"]
    assert [line["kind"] for line in lines] == ["usage", "usage", "fixed", "minimum"]
    assert "filters" in lines[1]
    assert "filters" not in lines[0]
    assert "unit" not in lines[2]
    assert any("unit_price" not in step for step in lines[0]["details"])
    assert report["meters"][-1]["unit"] is None

    # WHEN it goes through its model
    body = UsageReportBody.model_validate(report)

    # THEN the JSON is the same text, key for key and in the same order
    assert dumped(body) == json.dumps(report)


def test_an_invoice_document_is_described_by_its_model() -> None:
    # GIVEN an invoice document as the invoice run stores it
    plan = CATALOG.plans_by_id["pro"]
    invoice = build_invoice(
        ACCOUNT, plan, CATALOG, NOV, USAGE, number="INV-2026-000001", issued_at=NOW
    )
    document = invoice.to_json()

    # WHEN it is read with the model the API documents it by
    # THEN it fits, and reads back the same
    assert dumped(InvoiceDocumentBody.model_validate(document)) == json.dumps(document)


def test_an_invoice_record_is_listed_without_its_storage_keys() -> None:
    record = InvoiceRecord(
        account_id="acct-1",
        period="2026-11",
        sequence=7,
        invoice_number="INV-2026-000007",
        issued_at="2026-12-01T06:00:00+00:00",
        status="stored",
        total="24.00",
        currency="USD",
        json_key="invoices/acct-1/2026-11/INV-2026-000007.json",
        pdf_key="invoices/acct-1/2026-11/INV-2026-000007.pdf",
        email_status="sent",
        message_id="0100018c-example",
    )

    assert json.loads(dumped(InvoiceRecordBody.of(record))) == {
        "invoice_number": "INV-2026-000007",
        "period": "2026-11",
        "issued_at": "2026-12-01T06:00:00+00:00",
        "status": "stored",
        "currency": "USD",
        "total": "24.00",
        "email_status": "sent",
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("usage_subtotal",), "1.5E+3"),  # an exponent: the contract's amounts never have one
        (("period",), "2026-11-01"),
        (("meters", 0, "events"), -1),
        (("invoice_preview", "lines", 0, "surprise"), "x"),  # a key the API never sends
    ],
)
def test_a_report_that_breaks_the_documented_shape_is_refused(
    path: tuple[Any, ...], value: Any
) -> None:
    report = usage_report(ACCOUNT, CATALOG, LEDGER, NOV, now=NOW).to_json()
    *parents, last = path
    target = report
    for key in parents:
        target = target[key]
    target[last] = value

    with pytest.raises(ValidationError):
        UsageReportBody.model_validate(report)


def test_the_committed_openapi_document_is_the_one_the_api_generates() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()

    generated = usage_api.openapi_document()

    assert generated == committed, (
        "docs/openapi.json is stale: the usage API's routes or models changed. "
        "Regenerate it with `make openapi` and commit it."
    )


def test_the_openapi_document_lists_the_routes_and_the_answers_they_give() -> None:
    document = json.loads(usage_api.openapi_document())

    answers = {
        path: sorted(operation["responses"])
        for path, operations in document["paths"].items()
        for operation in operations.values()
    }
    # no 422: validation errors are answered with a 400 that names the parameter
    assert answers == {
        "/accounts/{account_id}/usage": ["200", "400", "404", "500", "503"],
        "/accounts/{account_id}/explanation": ["200", "400", "404", "500", "503"],
        "/accounts/{account_id}/invoices": ["200", "400", "404", "500", "503"],
        "/accounts/{account_id}/invoices/{number}": ["200", "400", "404", "503"],
        "/accounts/{account_id}/credit-notes": ["200", "400", "404", "500", "503"],
        "/accounts/{account_id}/adjustments": ["200", "400", "404", "500", "503"],
    }
    assert document["security"] == [{"sigv4": []}]
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == (
        "awsSigv4"
    )
    assert "ValidationError" not in document["components"]["schemas"]
