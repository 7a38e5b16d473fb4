"""The explanation of an invoiced period explains the invoice as it was made
(docs/usage-api.md: "each line of the period's invoice (as it stands; as made, once
invoiced)"), whatever the operator pushes afterwards."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from billing import wiring
from billing_cli.local.lambdas import LocalContext
from functions.usage_api import app as usage_api
from tests.integration.test_archive_replay import examples_run
from tests.support.api_gateway import rest_event

pytestmark = pytest.mark.integration


def answer(path: str, params: dict[str, str], query: dict[str, str] | None = None) -> Any:
    response = usage_api.handler(rest_event(path, params, query), LocalContext("usage-api"))
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def test_a_catalog_pushed_after_the_invoice_does_not_change_the_invoiced_periods_explanation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(usage_api, "service", wiring.account_views)
    with examples_run() as run:
        # GIVEN acct-1's November invoice INV-2026-000001: Pro plan 49.00, total 236.72
        invoice = answer(
            "/accounts/{account_id}/invoices/{number}",
            {"account_id": "acct-1", "number": "INV-2026-000001"},
        )
        fixed = next(line for line in invoice["lines"] if line["kind"] == "fixed")
        assert (fixed["amount"], invoice["total"]) == ("49.00", "236.72")
        # WHEN, in December, the operator pushes a catalog raising Pro's fee to 59.00
        # (for the periods to come: November is invoiced)
        pro = run.catalog.plans_by_id["pro"]
        raised = run.catalog.model_copy(
            update={
                "plans": [
                    plan.model_copy(update={"fixed_fee": Decimal("59.00")}) if plan is pro else plan
                    for plan in run.catalog.plans
                ]
            }
        )
        run.aws.load(raised, run.accounts)
        # THEN November's explanation still explains the invoice as it was made
        explained = answer(
            "/accounts/{account_id}/explanation", {"account_id": "acct-1"}, {"period": "2026-11"}
        )
        assert explained["status"] == "closed"
        explained_lines = [(line["description"], line["amount"]) for line in explained["lines"]]
        invoiced_lines = [(line["description"], line["amount"]) for line in invoice["lines"]]
        assert explained_lines == invoiced_lines
        assert explained["total"] == invoice["total"] == "236.72"
