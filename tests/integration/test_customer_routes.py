"""customer_api against moto: the events of tests/support/customer_scenario.py rated by the
real rater, then real-shaped API Gateway REST proxy events (the authorizer's context in
`requestContext.authorizer`) through the handler. Every route's answer is computed by
hand; acct-a's key never sees a byte of acct-b's data, wherever acct-b is named."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent

from billing import wiring
from billing.core.invoice import utc_text
from billing.core.periods import Period
from billing.customer.api_errors import NOT_JSON
from billing.invoicing.due import in_batches
from billing.invoicing.steps import DueInput
from billing.store.config_store import ConfigStore
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.lambdas import LocalContext
from functions.customer_api import app as customer_api
from functions.rate_usage import app as rate_usage
from tests.integration.conftest import NOW, Aws, invoicing_environment
from tests.support.api_gateway import customer_event
from tests.support.customer_scenario import (
    ACCOUNTS,
    ALPHA_EVENTS,
    BRAVO_EVENTS,
    BRAVO_SECRETS,
    CATALOG,
)
from tests.support.kinesis import shard

# 23:30 on 30 November in acct-a's zone (UTC+14): its November is the current period.
LIVE = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
ALPHA = {"account_id": "acct-a", "key_id": "a2b3c4d5e6f7g2h3", "kind": "key"}
CONTEXT = LocalContext("customer-api")
REFUSED = {"statusCode": 403, "message": "this key is not for that account"}


@dataclass
class Api:
    aws: Aws
    clock: list[datetime]
    bucket: str

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        caller: dict[str, str] | None = ALPHA,
        encoded: bool = False,
    ) -> tuple[int, str]:
        event = customer_event(method, path, caller, query, body)
        if encoded:  # as API Gateway passes a body of a binary media type
            event["body"] = base64.b64encode(event["body"].encode()).decode()
            event["isBase64Encoded"] = True
        response = customer_api.handler(event, CONTEXT)  # type: ignore[arg-type]
        return response["statusCode"], response["body"]

    def json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        status, body = self.call("GET", path, query)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def api(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Api:
    bucket = invoicing_environment(aws, monkeypatch)
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(CATALOG)
    aws.push_accounts(ACCOUNTS)
    service = aws.service()
    deliver(
        shard(ALPHA_EVENTS + BRAVO_EVENTS),
        lambda event: service.process(
            rate_usage.stream_records(KinesisStreamEvent(event))
        ).response(),
        MappingSettings(batch_size=4),
    )
    clock = [LIVE]
    views = wiring.customer_views(clock=lambda: clock[0])
    monkeypatch.setattr(customer_api, "service", lambda: views)
    return Api(aws, clock, bucket)


def issue_november(api: Api) -> dict[str, str]:
    """The invoice run's Issue step for November (acct-a's and acct-b's); each account's
    invoice number. The API's clock moves to after it."""
    found = wiring.invoice_run("due").find(DueInput(now=NOW, period=Period(2026, 11)))  # type: ignore[union-attr]
    ours = [item for item in found.items if item.account_id in ("acct-a", "acct-b")]
    numbers = {}
    for batch in in_batches(ours):
        items = [item.model_dump() for item in batch]
        outcome = wiring.invoice_run("issue").handle({"issued_at": utc_text(NOW), "items": items})
        assert not outcome["failed"], outcome
        numbers.update(
            {issued["account_id"]: issued["invoice_number"] for issued in outcome["issued"]}
        )
    api.clock[0] = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    return numbers


def test_the_account_as_its_customer_sees_it(api: Api) -> None:
    assert api.json("/v1/accounts/acct-a") == {
        "account_id": "acct-a",
        "name": "Alpha Co",
        "email": "billing@alpha.example",
        "currency": "USD",
        "timezone": "Pacific/Kiritimati",
        "plan": {"id": "team", "name": "Team"},
        "start": None,
        "end": None,
        "current_period": {
            "period": "2026-11",
            "start": "2026-11-01T00:00:00+14:00",
            "end": "2026-12-01T00:00:00+14:00",
        },
    }


PREVIEW_LINES = [
    ("usage", "7.50"),
    ("usage", "25.00"),
    ("fixed", "10.00"),
    ("discount", "-4.25"),
]
TOTALS = {
    "subtotal": "38.25",
    "tax": "3.83",
    "total": "42.08",
    "credits": [{"id": "pre-1", "amount": "20.00"}],
    "credits_applied": "20.00",
    "amount_due": "22.08",
}


def test_usage_and_running_charges_per_meter(api: Api) -> None:
    report = api.json("/v1/accounts/acct-a/usage")

    assert (report["period"], report["status"], report["as_of"]) == (
        "2026-11",
        "open",
        "2026-11-30T09:30:00Z",
    )
    meters = {
        m["meter"]: (m["quantity"], m["events"], [c["amount"] for c in m["charges"]])
        for m in report["meters"]
    }
    assert meters == {"api_calls": ("1750", 4, ["7.50"]), "seats": ("5", 3, ["25.00"])}
    assert report["usage_subtotal"] == "32.50"
    preview = report["invoice_preview"]
    assert [(line["kind"], line["amount"]) for line in preview["lines"]] == PREVIEW_LINES
    assert {key: preview[key] for key in TOTALS} == TOTALS


def test_usage_by_local_day_for_a_chart(api: Api) -> None:
    daily = api.json("/v1/accounts/acct-a/usage/daily", {"period": "2026-11"})

    assert {key: daily[key] for key in ("period", "timezone", "status")} == {
        "period": "2026-11",
        "timezone": "Pacific/Kiritimati",
        "status": "open",
    }
    assert daily["period_start"] == "2026-11-01T00:00:00+14:00"
    api_calls, seats = daily["meters"]
    assert (api_calls["meter"], api_calls["quantity"], api_calls["complete"]) == (
        "api_calls",
        "1750",
        True,
    )
    by_day = {d["date"]: (d["quantity"], d["to_date"]) for d in api_calls["days"]}
    assert len(by_day) == 30  # every local day up to today, the 30th
    assert by_day["2026-11-01"] == ("1200", "1200")  # 700 at 10:00Z on 31 Oct, and 500
    assert by_day["2026-11-02"] == ("300", "1500")
    assert by_day["2026-11-03"] == ("0", "1500")
    assert by_day["2026-11-30"] == ("250", "1750")  # not a8, 999 at local midnight (Dec)
    assert [(d["date"][-2:], d["quantity"], d["to_date"]) for d in seats["days"][:5]] == [
        ("01", "0", "0"),
        ("02", "3", "3"),
        ("03", "0", "3"),
        ("04", "5", "5"),
        ("05", "0", "5"),
    ]


def test_the_invoice_preview_with_its_phase_discount_and_credits(api: Api) -> None:
    preview = api.json("/v1/accounts/acct-a/preview")

    assert preview["phases"] == [
        {"plan": "team", "name": "Team", "from": "2026-11-01", "to": "2026-12-01"}
    ]
    assert [(line["kind"], line["amount"]) for line in preview["lines"]] == PREVIEW_LINES
    assert preview["lines"][3]["discount"] == "welcome"
    assert {key: preview[key] for key in TOTALS} == TOTALS
    assert (preview["account_id"], preview["currency"], preview["status"]) == (
        "acct-a",
        "USD",
        "open",
    )


def test_credit_balances(api: Api) -> None:
    assert api.json("/v1/accounts/acct-a/credits") == {
        "account_id": "acct-a",
        "currency": "USD",
        "period": "2026-11",
        "grants": [
            {
                "id": "pre-1",
                "amount": "20.00",
                "granted": "2026-11-01",
                "expires": None,
                "remaining": "20.00",
                "this_period": "20.00",
            }
        ],
    }


def test_issued_invoices_and_one_with_a_link_to_its_pdf(api: Api) -> None:
    # GIVEN November invoiced
    numbers = issue_november(api)

    # WHEN acct-a lists its invoices and asks for its November one
    listed = api.json("/v1/accounts/acct-a/invoices")
    status, body = api.call("GET", f"/v1/accounts/acct-a/invoices/{numbers['acct-a']}")

    # THEN it sees its own, the document byte for byte as stored, and a link that fetches
    # the stored PDF for 5 minutes
    [record] = listed["invoices"]
    assert (record["invoice_number"], record["period"], record["total"]) == (
        numbers["acct-a"],
        "2026-11",
        "42.08",
    )
    key = f"invoices/acct-a/2026-11/{numbers['acct-a']}"
    stored_json = api.aws.s3.get_object(Bucket=api.bucket, Key=f"{key}.json")["Body"].read()
    stored_pdf = api.aws.s3.get_object(Bucket=api.bucket, Key=f"{key}.pdf")["Body"].read()
    assert status == 200
    assert body.startswith('{"invoice":' + stored_json.decode().strip() + ',"pdf_url":')
    answer = json.loads(body)
    assert answer["invoice"]["amount_due"] == "22.08"
    assert answer["pdf_url_expires_at"] == "2026-12-01T07:05:00Z"
    fetched = requests.get(answer["pdf_url"], timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == stored_pdf
    # saved under its number by a browser, not opened in the portal's place
    assert fetched.headers["Content-Disposition"] == (
        f'attachment; filename="{numbers["acct-a"]}.pdf"'
    )
    # ... and the grant it drew is spent
    assert api.json("/v1/accounts/acct-a/credits")["grants"][0]["remaining"] == "0.00"


def test_thresholds_set_then_read_back(api: Api) -> None:
    assert api.json("/v1/accounts/acct-a/thresholds") == {
        "account_id": "acct-a",
        "currency": "USD",
        "budget": None,
        "thresholds": [],
        "updated_at": None,
    }
    request = {
        "budget": "500",
        "thresholds": [{"percent": "80.0"}, {"amount": "100"}, {"percent": "33.33"}],
    }

    status, body = api.call("PUT", "/v1/accounts/acct-a/thresholds", body=request)

    expected = {
        "account_id": "acct-a",
        "currency": "USD",
        "budget": "500.00",
        "thresholds": [
            {"id": "percent:80", "percent": "80", "amount": "400.00"},
            {"id": "amount:100.00", "amount": "100.00"},
            {"id": "percent:33.33", "percent": "33.33", "amount": "166.65"},  # 166.65
        ],
        "updated_at": "2026-11-30T09:30:00Z",
    }
    assert (status, json.loads(body)) == (200, expected)
    assert api.json("/v1/accounts/acct-a/thresholds") == expected
    # ... a PUT replaces them all
    status, body = api.call("PUT", "/v1/accounts/acct-a/thresholds", body={"thresholds": []})
    assert (status, json.loads(body)["thresholds"]) == (200, [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"thresholds": [{"amount": "1.005"}]}, "thresholds.0.amount: USD amounts have at most"),
        ({"thresholds": [{"amount": 12.5}]}, "thresholds.0.amount: "),
        ({"thresholds": [{"amount": "0"}]}, "thresholds.0.amount: must be above 0"),
        ({"thresholds": [{"percent": "50"}]}, "thresholds.0.percent: a percentage needs a budget"),
        ({"thresholds": [{"amount": "5", "percent": "5"}]}, "thresholds.0: give exactly one"),
        ({"thresholds": [{"amount": str(n + 1)} for n in range(11)]}, "thresholds: "),
        ({"thresholds": [], "colour": "red"}, "colour: "),
        ({"budget": "1e3", "thresholds": []}, "budget: "),
        ({}, "thresholds: is required"),
        ("{not json", "body: is not JSON"),
        # 0.01% of 1.00 is 0.0001, 0.00 in USD: a threshold no spend could ever cross
        (
            {"budget": "1.00", "thresholds": [{"percent": "0.01"}]},
            "thresholds.0.percent: 0.01% of the budget is 0 in USD: give a larger",
        ),
    ],
)
def test_thresholds_that_cannot_be_kept_are_refused_with_a_message(
    api: Api, body: Any, message: str
) -> None:
    status, answer = api.call("PUT", "/v1/accounts/acct-a/thresholds", body=body)

    assert status == 400, answer
    assert json.loads(answer)["message"].startswith(message), answer
    assert api.json("/v1/accounts/acct-a/thresholds")["thresholds"] == []


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", NOT_JSON),  # Powertools' own answer: a 415 of another shape
        ("multipart/form-data", NOT_JSON),  # no boundary: Powertools' parser raised
        ("multipart/form-data; boundary=x", NOT_JSON),  # Powertools read it as a form
        ("application/x-www-form-urlencoded", NOT_JSON),
        ("application/json; charset=utf-8", "thresholds.0.amount: "),
    ],
)
def test_a_body_that_is_not_json_is_refused_naming_it(
    api: Api, content_type: str, message: str
) -> None:
    body = {"thresholds": [{"amount": "1.001"}]}
    event = customer_event("PUT", "/v1/accounts/acct-a/thresholds", ALPHA, body=body)
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]

    response = customer_api.handler(event, CONTEXT)  # type: ignore[arg-type]

    assert response["statusCode"] == 400, response
    assert json.loads(response["body"])["message"].startswith(message), response
    assert api.json("/v1/accounts/acct-a/thresholds")["thresholds"] == []


def test_a_fault_of_ours_is_not_made_the_callers_400(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Faulty:
        def thresholds(self, account_id: str) -> Any:
            raise ValueError("a bug")

    monkeypatch.setattr(customer_api, "service", Faulty)
    event = customer_event("GET", "/v1/accounts/acct-a/thresholds", ALPHA)
    event["headers"]["Content-Type"] = "text/plain"  # no body: nothing to refuse

    with pytest.raises(ValueError, match="a bug"):  # the function fails: API Gateway's 502
        customer_api.handler(event, CONTEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/v1/accounts/acct-a/usage", {"period": "2026-13"}, "period: "),
        ("/v1/accounts/acct-a/usage/daily", {"period": "November"}, "period: "),
        ("/v1/accounts/acct-a/preview", {"period": "2026-1"}, "period: "),
        # the period after which no next one's first day is a date
        ("/v1/accounts/acct-a/usage", {"period": "9999-12"}, "period: '9999-12' is after the"),
        ("/v1/accounts/acct-a/usage/daily", {"period": "9999-01"}, "period: '9999-01' is after"),
        ("/v1/accounts/acct-a/preview", {"period": "9999-06"}, "period: '9999-06' is after"),
        ("/v1/accounts/acct-a/usage", {"period": "2" * 17}, "period: "),
        ("/v1/accounts/acct-a/usage", {"period": ["2026-11", "2026-10"]}, "period: must be given"),
        ("/v1/accounts/acct-a/invoices/INV_2026", None, "number: "),
        ("/v1/accounts/acct-a/invoices/" + "9" * 65, None, "number: "),
        ("/v1/accounts/acct-a/credits", {"period": "2026-11"}, "period: is not a parameter"),
        ("/v1/accounts/acct-a/usage", {"perod": "2026-11"}, "perod: is not a parameter"),
    ],
)
def test_a_malformed_parameter_is_refused_naming_it(
    api: Api, path: str, query: dict[str, Any] | None, parameter: str
) -> None:
    status, body = api.call("GET", path, query)

    assert status == 400, body
    assert json.loads(body)["message"].startswith(parameter), body


def test_without_the_authorizers_context_nothing_is_answered(api: Api) -> None:
    status, body = api.call("GET", "/v1/accounts/acct-a/usage", caller=None)

    assert (status, json.loads(body)) == (
        401,
        {"statusCode": 401, "message": "no credential for this request"},
    )


ROUTES = [
    ("GET", ""),
    ("GET", "/usage"),
    ("GET", "/usage/daily"),
    ("GET", "/preview"),
    ("GET", "/credits"),
    ("GET", "/invoices"),
    ("GET", "/invoices/{number}"),
    ("GET", "/credit-notes"),
    ("GET", "/thresholds"),
    ("PUT", "/thresholds"),
]
THRESHOLDS = {"thresholds": [{"amount": "1.00"}]}


def requests_for_another(route: str, method: str, other: str) -> list[dict[str, Any]]:
    """acct-a's key naming `other`: in the path, in the query, and (for a write) the body."""
    body = THRESHOLDS if method == "PUT" else None
    asked = [
        {"path": f"/v1/accounts/{other}{route}", "body": body},
        {"path": f"/v1/accounts/acct-a{route}", "query": {"account_id": other}, "body": body},
        {
            "path": f"/v1/accounts/acct-a{route}",
            "query": {"account_id": ["acct-a", other]},
            "body": body,
        },
    ]
    if method == "PUT":  # in the body, as JSON and base64-encoded
        named = {**THRESHOLDS, "account_id": other}
        asked.append({"path": f"/v1/accounts/acct-a{route}", "body": named})
        asked.append({"path": f"/v1/accounts/acct-a{route}", "body": named, "encoded": True})
    return asked


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_a_key_for_one_account_gets_403_and_nothing_of_another(
    api: Api, monkeypatch: pytest.MonkeyPatch, method: str, route: str
) -> None:
    # GIVEN November invoiced (acct-b has an invoice, grants, usage)
    numbers = issue_november(api)
    path = route.replace("{number}", numbers["acct-b"])
    real_service = customer_api.service

    def nothing_read() -> Any:
        raise AssertionError("the service was asked for data")

    # WHEN acct-a's key names acct-b, or an account that does not exist, anywhere
    monkeypatch.setattr(customer_api, "service", nothing_read)
    answers = [
        api.call(
            method,
            asked["path"],
            asked.get("query"),
            asked.get("body"),
            encoded=asked.get("encoded", False),
        )
        for other in ("acct-b", "acct-zzz")
        for asked in requests_for_another(path, method, other)
    ]

    # THEN every answer is the same 403, before anything is read, with no byte of acct-b's
    assert all((status, json.loads(body)) == (403, REFUSED) for status, body in answers), answers
    assert not any(secret in body for _, body in answers for secret in BRAVO_SECRETS)
    # ... while acct-b's own key is answered
    monkeypatch.setattr(customer_api, "service", real_service)
    bravo = {"account_id": "acct-b", "key_id": "b2b3c4d5e6f7g2h3", "kind": "portal"}
    status, body = api.call(
        method,
        f"/v1/accounts/acct-b{path}",
        body=THRESHOLDS if method == "PUT" else None,
        caller=bravo,
    )
    assert status == 200, body


def test_another_accounts_invoice_number_is_not_found_among_ones_own(api: Api) -> None:
    numbers = issue_november(api)

    status, body = api.call("GET", f"/v1/accounts/acct-a/invoices/{numbers['acct-b']}")

    assert status == 404
    assert json.loads(body)["message"] == f"account 'acct-a' has no invoice '{numbers['acct-b']}'"
    assert not any(secret in body for secret in BRAVO_SECRETS)
