"""usage_api against moto: real events rated by the real rater, then real-shaped API Gateway
REST events through the handler; the live figures equal the invoice issued afterwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from billing import wiring
from billing.core.catalog import Catalog, parse_accounts
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.invoicing.due import ListDue, in_batches
from billing.invoicing.steps import DueInput
from billing.store.config_store import ConfigStore
from billing_cli.local.lambdas import LocalContext
from functions.usage_api import app as usage_api
from tests.integration.conftest import NOW, Aws, invoicing_environment
from tests.support.api_gateway import rest_event
from tests.support.examples import EXAMPLE_INVOICES, invoice_view

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EVENTS = Path(__file__).resolve().parent.parent / "events"
# The API's clock: late November in every example account's zone, before any invoice run.
LIVE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
USAGE = "/accounts/{account_id}/usage"
INVOICES = "/accounts/{account_id}/invoices"
INVOICE = "/accounts/{account_id}/invoices/{number}"
CONTEXT = LocalContext("usage-api")


@dataclass
class Api:
    aws: Aws
    clock: list[datetime]

    def get(
        self, resource: str, query: dict[str, str] | None = None, **path: str
    ) -> tuple[int, dict[str, Any], str]:
        response = usage_api.handler(rest_event(resource, path, query), CONTEXT)  # type: ignore[arg-type]
        return response["statusCode"], response["multiValueHeaders"], response["body"]

    def json(self, resource: str, query: dict[str, str] | None = None, **path: str) -> Any:
        status, _, body = self.get(resource, query, **path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Api:
    invoicing_environment(aws, monkeypatch)
    clock = [LIVE]
    views = wiring.account_views(clock=lambda: clock[0])
    monkeypatch.setattr(usage_api, "service", lambda: views)
    return Api(aws, clock)


def issue_invoices() -> list[dict[str, Any]]:
    """The invoice run's Issue step for November, on the real services (it emails what it
    issues; a run's Send step would only finish what Issue could not)."""
    due = wiring.invoice_run("due")
    assert isinstance(due, ListDue)
    found = due.find(DueInput(now=NOW, period=Period(2026, 11)))
    issue = wiring.invoice_run("issue")
    issued: list[dict[str, Any]] = []
    for batch in in_batches(found.items):
        items = [item.model_dump() for item in batch]
        outcome = issue.handle({"issued_at": utc_text(NOW), "items": items})
        assert not outcome["failed"], outcome
        issued.extend(outcome["issued"])
    return issued


ACCOUNTS = ("acct-1", "acct-2", "acct-3", "acct-4", "acct-5", "acct-6")


def amounts(report: dict[str, Any]) -> dict[str, str]:
    """A usage report's running charges by charge line, and its totals."""
    lines = {
        f"{meter['meter']} {charge['description']}": charge["amount"]
        for meter in report["meters"]
        for charge in meter["charges"]
    }
    preview = report["invoice_preview"]
    totals = {name: preview[name] for name in ("subtotal", "tax", "total")}
    return {**lines, "usage_subtotal": report["usage_subtotal"], **totals}


def test_usage_shows_running_charges_of_the_current_period(api: Api) -> None:
    # GIVEN the example events rated by the real rater
    api.aws.rate_examples()

    # WHEN acct-1 asks for its usage without a period, on 28 November
    status, headers, body = api.get(USAGE, account_id="acct-1")

    # THEN it gets November (its current period in Europe/Paris), priced to the cent
    assert status == 200
    assert headers["Content-Type"] == ["application/json"]
    report = json.loads(body)
    assert (report["period"], report["status"], report["currency"]) == ("2026-11", "open", "USD")
    assert report["period_start"] == "2026-11-01T00:00:00+01:00"
    assert report["as_of"] == "2026-11-28T12:00:00Z"
    assert amounts(report) == {
        "api_requests API requests": "6.07",
        "storage_gb_hours Storage (EU)": "1.20",
        "storage_gb_hours Storage (US)": "0.50",
        "seats Seats": "140.00",
        "exports Exports": "0.50",
        "usage_subtotal": "148.27",
        "subtotal": "197.27",
        "tax": "39.45",
        "total": "236.72",
    }
    api_requests = report["meters"][0]
    assert api_requests == {
        "meter": "api_requests",
        "description": "API requests",
        "unit": "request",
        "aggregation": "sum",
        "quantity": "1534000",
        "events": 2,
        "charges": [
            {"description": "API requests", "quantity": "1534000", "events": 2, "amount": "6.07"}
        ],
    }


def test_live_figures_equal_the_invoices_issued_later(api: Api) -> None:
    # GIVEN every example account's live November figures
    api.aws.rate_examples()
    live = {
        account: api.json(USAGE, {"period": "2026-11"}, account_id=account) for account in ACCOUNTS
    }

    # WHEN the invoice run issues November
    issued = {item["account_id"]: item["invoice_number"] for item in issue_invoices()}

    # THEN each preview was the invoice worked out by hand (tests/support/examples.py), and
    # the stored invoice says exactly what the preview said, line by line
    assert {account: invoice_view(live[account]["invoice_preview"]) for account in ACCOUNTS} == {
        account: {"lines": expected["lines"], "totals": expected["totals"]}
        for account, expected in EXAMPLE_INVOICES.items()
    }
    assert sorted(issued) == list(ACCOUNTS)
    for account, number in issued.items():
        status, _, body = api.get(INVOICE, account_id=account, number=number)
        assert status == 200
        stored = api.aws.s3.get_object(
            Bucket="test-invoices", Key=f"invoices/{account}/2026-11/{number}.json"
        )["Body"].read()
        assert body.encode() == stored  # the document, byte for byte
        invoice = json.loads(body)
        preview = live[account]["invoice_preview"]
        assert invoice["lines"] == preview["lines"]
        assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (
            preview["subtotal"],
            preview["tax"],
            preview["total"],
        )
        assert invoice["currency"] == live[account]["currency"]
    assert live["acct-4"]["invoice_preview"]["total"] == "27171"  # JPY: no minor unit
    # AND the closed period still shows the same figures, from its archive
    closed = api.json(USAGE, {"period": "2026-11"}, account_id="acct-1")
    assert closed["status"] == "closed"
    assert amounts(closed) == amounts(live["acct-1"])


def test_invoices_lists_the_accounts_records(api: Api) -> None:
    # GIVEN November invoiced
    api.aws.rate_examples()
    issue_invoices()

    # WHEN acct-1 lists its invoices
    listing = api.json(INVOICES, account_id="acct-1")

    # THEN it sees its one invoice, with no storage keys or message ids
    assert listing == {
        "account_id": "acct-1",
        "invoices": [
            {
                "invoice_number": "INV-2026-000001",
                "period": "2026-11",
                "issued_at": "2026-12-01T06:00:00+00:00",
                "status": "stored",
                "currency": "USD",
                "total": "236.72",
                "email_status": "sent",
            }
        ],
    }


def test_the_kept_real_event_is_answered(api: Api) -> None:
    # GIVEN rated usage and the real API Gateway event kept in tests/events
    api.aws.rate_examples()
    event = json.loads((EVENTS / "api_gateway_rest_event.json").read_text())

    # WHEN the handler gets it unchanged
    response = usage_api.handler(event, CONTEXT)  # type: ignore[arg-type]

    # THEN it answers acct-1's November usage
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["invoice_preview"]["total"] == "236.72"


@pytest.mark.parametrize(
    ("resource", "path", "query", "status", "message"),
    [
        (
            USAGE,
            {"account_id": "acct-1"},
            {"period": "2026-13"},
            400,
            "'2026-13' is not a period of the form YYYY-MM",
        ),
        (
            USAGE,
            {"account_id": "acct-1"},
            {"period": "November"},
            400,
            "'November' is not a period of the form YYYY-MM",
        ),
        (USAGE, {"account_id": "nobody"}, None, 404, "account 'nobody' is not known"),
        (
            USAGE,
            {"account_id": "acct 1"},
            None,
            400,
            "account_id: must be 1-64 of A-Z a-z 0-9 . _ -",
        ),
        (INVOICES, {"account_id": "nobody"}, None, 404, "account 'nobody' is not known"),
        (
            INVOICE,
            {"account_id": "acct-1", "number": "INV-2026-000099"},
            None,
            404,
            "account 'acct-1' has no invoice 'INV-2026-000099'",
        ),
        (
            INVOICE,
            {"account_id": "acct-2", "number": "INV-2026-000001"},
            None,
            404,
            "account 'acct-2' has no invoice 'INV-2026-000001'",
        ),
        ("/accounts/{account_id}/charges", {"account_id": "acct-1"}, None, 404, "Not found"),
    ],
)
def test_bad_requests_get_a_status_and_a_reason(
    api: Api,
    resource: str,
    path: dict[str, str],
    query: dict[str, str] | None,
    status: int,
    message: str,
) -> None:
    # GIVEN, for invoice lookups, November invoiced (acct-1's is INV-2026-000001)
    if resource == INVOICE:
        issue_invoices()

    # WHEN the request names something that does not exist or cannot
    got, _, body = api.get(resource, query, **path)

    # THEN the status says which, and the body says why
    assert (got, json.loads(body)) == (status, {"statusCode": status, "message": message})


def test_store_outage_is_a_503_without_details(api: Api) -> None:
    # GIVEN the ledger table is gone
    api.aws.dynamodb.delete_table(TableName=api.aws.ledger_table)

    # WHEN usage is asked for
    status, _, body = api.get(USAGE, account_id="acct-1")

    # THEN the caller may retry, and learns nothing of the store
    assert (status, json.loads(body)) == (
        503,
        {"statusCode": 503, "message": "billing data is unavailable; try again"},
    )


def test_every_request_logs_who_asked_for_which_account(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.get(USAGE, account_id="acct-2")

    [audit] = [r for r in caplog.records if r.getMessage() == "account data requested"]
    assert audit.caller_arn == "arn:aws:sts::123456789012:assumed-role/billing-portal/session"
    assert audit.caller_account == "123456789012"
    assert audit.account_requested == "acct-2"
    assert audit.route == USAGE


def test_a_period_given_twice_is_answered_for_its_last_value_as_api_gateway_keeps_it(
    api: Api,
) -> None:
    # GIVEN a request that repeats the period (API Gateway's single-value map keeps the last)
    api.aws.rate_examples()
    event = rest_event(USAGE, {"account_id": "acct-1"}, {"period": "2026-11"})
    event["multiValueQueryStringParameters"] = {"period": ["2026-10", "2026-11"]}

    # WHEN it is answered, THEN for the last value, as before the resolver
    response = usage_api.handler(event, CONTEXT)  # type: ignore[arg-type]
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["period"] == "2026-11"


def test_the_preview_of_an_account_with_a_discount_carries_its_line(
    api: Api, example_catalog: Catalog
) -> None:
    # GIVEN acct-1 with a 10% discount on November
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    document["accounts"][0]["discounts"] = [
        {"id": "launch", "percent": "10", "from": "2026-11", "periods": 1}
    ]
    accounts = parse_accounts(document, example_catalog)
    ConfigStore(api.aws.dynamodb, api.aws.config_table).put_accounts(accounts)
    api.aws.rate_examples()

    # WHEN its usage is asked for
    status, _, body = api.get(USAGE, {"period": "2026-11"}, account_id="acct-1")

    # THEN the preview ends with the discount: 10% of 197.27 (6.07 + 1.20 + 0.50 + 140.00
    # + 0.50 + 49.00) = 19.727 → 19.73
    assert status == 200, body
    assert json.loads(body)["invoice_preview"]["lines"][-1] == {
        "kind": "discount",
        "discount": "launch",
        "description": "Discount launch (10%)",
        "quantity": "1",
        "amount": "-19.73",
    }


def test_an_answer_that_breaks_its_own_model_is_a_500_without_details(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN account views whose report carries an amount the contract forbids (an exponent)
    views = usage_api.service()
    report = views.usage("acct-1", "2026-11").to_json()
    report["usage_subtotal"] = "1.5E+2"
    monkeypatch.setattr(views, "usage", lambda *_: SimpleNamespace(to_json=lambda: report))

    # WHEN the usage is asked for
    status, _, body = api.get(USAGE, account_id="acct-1")

    # THEN the caller learns only that an operator is needed, and the log says why
    assert (status, json.loads(body)) == (
        500,
        {"statusCode": 500, "message": "the answer could not be formed; an operator is needed"},
    )
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert (logged.getMessage(), logged.error) == (
        "answer does not match its model",
        "string_pattern_mismatch",
    )
