"""`billing explain`: the events, aggregate and price steps behind each invoice line, and
what was left out and why, checked by hand against examples/events.jsonl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from billing import wiring
from billing_cli.local.lambdas import LocalContext
from billing_cli.main import app
from functions.customer_api import app as customer_api
from functions.usage_api import app as usage_api
from tests.integration.test_archive_replay import Run, examples_run
from tests.support.api_gateway import customer_event, rest_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    with examples_run() as done:
        yield done


def explain(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["explain", *args, "--period", "2026-11", "--json"])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def event(event_id: str, timestamp: str, quantity: str) -> dict[str, str]:
    return {"event_id": event_id, "timestamp": timestamp, "quantity": quantity}


def test_the_api_line_shows_its_two_events_its_tiers_and_the_duplicate_left_out(
    run: Run,
) -> None:
    document = explain("acct-1", "--meter", "api_requests")
    assert (document["invoice_number"], document["total"]) == ("INV-2026-000001", "236.72")
    (line,) = document["lines"]
    # a1-api-001 (1,200,000 at 09:15 +01:00) and a1-api-002 (334,000); the second
    # a1-api-002 (999,999) is a duplicate: first seen wins.
    assert line["events"] == {
        "count": 2,
        "first": event("a1-api-001", "2026-11-03T08:15:00Z", "1200000"),
        "last": event("a1-api-002", "2026-11-17T18:40:12.5Z", "334000"),
        "biggest": event("a1-api-001", "2026-11-03T08:15:00Z", "1200000"),
    }
    assert (line["aggregation"], line["quantity"], line["amount"]) == ("sum", "1534000", "6.07")
    assert [(s["description"], s["quantity"], s["amount"]) for s in line["steps"]] == [
        ("tier 1", "1000000", "0"),
        ("tier 2", "534000", "1.068000"),
        ("tier 2 flat fee", "1", "5.00"),
    ]
    assert line["left_out"] == {
        "duplicates": 1,
        "rejected": {},
        "examples": [
            {
                **event("a1-api-002", "2026-11-17T18:40:13Z", "999999"),
                "why": "duplicate: its event_id was counted before",
            }
        ],
    }


def test_filtered_lines_take_their_regions_and_the_rest_is_unpriced(run: Run) -> None:
    document = explain("acct-1", "--meter", "storage_gb_hours")
    eu, us = document["lines"]
    assert eu["events"]["count"] == us["events"]["count"] == 1
    assert eu["events"]["first"] == event("a1-sto-eu", "2026-11-30T22:59:59.999999999Z", "10000")
    assert us["events"]["first"] == event("a1-sto-us", "2026-11-20T12:00:00Z", "5000")
    # ap-south-1 is in no charge's filters: rated, but priced by no line.
    assert document["unpriced"] == {
        "storage_gb_hours": {
            "count": 1,
            "first": event("a1-sto-ap", "2026-11-20T12:00:00Z", "500"),
            "last": event("a1-sto-ap", "2026-11-20T12:00:00Z", "500"),
            "biggest": event("a1-sto-ap", "2026-11-20T12:00:00Z", "500"),
        }
    }


def test_the_whole_invoice_accounts_for_every_event_of_the_period(run: Run) -> None:
    document = explain("acct-1")
    counts = {
        line.get("meter", line["kind"]): line["events"]["count"]
        for line in document["lines"]
        if line["kind"] == "usage"
    }
    # seats: the October event (23:59:59 +01:00 on 31 October) is not November's.
    assert counts == {"api_requests": 2, "storage_gb_hours": 1, "seats": 3, "exports": 3}
    seats = next(line for line in document["lines"] if line.get("meter") == "seats")
    assert (seats["aggregation"], seats["events"]["biggest"]["event_id"]) == ("max", "a1-seats-2")
    fixed = next(line for line in document["lines"] if line["kind"] == "fixed")
    assert (fixed["amount"], "events" in fixed) == ("49.00", False)
    # bad-3's meter is in no catalog: left out of every line, with its reason.
    assert document["left_out"]["rejected"] == {"UNKNOWN_METER": 1}
    assert document["left_out"]["examples"][0]["event_id"] == "bad-3"


def test_an_unknown_account_is_refused_plainly(run: Run) -> None:
    result = CliRunner().invoke(app, ["explain", "nobody", "--period", "2026-11"])
    assert (result.exit_code, "no account 'nobody'" in result.output) == (2, True)


def test_the_human_form_names_each_line_and_its_events(run: Run) -> None:
    result = CliRunner().invoke(app, ["explain", "acct-1", "--period", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "API requests: 1534000 → 6.07" in result.output
    assert "unpriced storage_gb_hours: 1 events" in result.output


def test_both_usage_apis_explain_the_accounts_own_lines(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's usage API and the customer's API, on the run's stores.
    monkeypatch.setattr(usage_api, "service", wiring.account_views)
    monkeypatch.setattr(customer_api, "service", wiring.customer_views)
    event = rest_event(
        "/accounts/{account_id}/explanation", {"account_id": "acct-1"}, {"period": "2026-11"}
    )
    operator = usage_api.handler(event, LocalContext("usage-api"))
    own = {"account_id": "acct-1", "key_id": "a2b3c4d5e6f7g2h3", "kind": "key"}
    path = "/v1/accounts/acct-1/explanation"
    customer = customer_api.handler(
        customer_event("GET", path, own, {"period": "2026-11"}), LocalContext("customer-api")
    )
    assert (operator["statusCode"], customer["statusCode"]) == (200, 200), operator
    document = json.loads(operator["body"])
    assert json.loads(customer["body"]) == document
    # November as invoiced: INV-2026-000001's lines, each with what makes it
    assert (document["status"], document["total"]) == ("closed", "236.72")
    api = document["lines"][0]
    assert (api["meter"], api["aggregation"], api["events"], api["amount"]) == (
        "api_requests",
        "sum",
        2,
        "6.07",
    )
    assert [s["description"] for s in api["steps"]] == ["tier 1", "tier 2", "tier 2 flat fee"]
    eu, us = document["lines"][1:3]
    assert (eu["events"], us["events"]) == (1, 1)
    # AND when each line's meter was used, by local day in Paris: the requests on 3 Nov
    # (1,200,000) and 17 Nov (334,000); the storage on 20 Nov (us-east-1 5,000 +
    # ap-south-1 500 at 13:00) and 30 Nov (eu-west-1 10,000 at 23:59:59): the meter's days,
    # so both storage lines show them; the seats (a max meter) 3 on 1 Nov, 12 on 12 Nov, 7
    # on 25 Nov; the exports (a count meter: one each, whatever the quantity) on 5, 6 and 7
    # Nov, the busiest the earliest of those equal days
    assert api["days"] == {
        "first": "2026-11-03",
        "last": "2026-11-17",
        "busiest": {"date": "2026-11-03", "quantity": "1200000"},
        "complete": True,
    }
    storage = {
        "first": "2026-11-20",
        "last": "2026-11-30",
        "busiest": {"date": "2026-11-30", "quantity": "10000"},
        "complete": True,
    }
    assert eu["days"] == us["days"] == storage
    by_meter = {line.get("meter"): line for line in document["lines"]}
    assert by_meter["seats"]["days"]["busiest"] == {"date": "2026-11-12", "quantity": "12"}
    assert (by_meter["seats"]["days"]["first"], by_meter["seats"]["days"]["last"]) == (
        "2026-11-01",
        "2026-11-25",
    )
    assert by_meter["exports"]["days"] == {
        "first": "2026-11-05",
        "last": "2026-11-07",
        "busiest": {"date": "2026-11-05", "quantity": "1"},
        "complete": True,
    }
    fixed = next(line for line in document["lines"] if line["kind"] == "fixed")
    assert ("events" in fixed, "days" in fixed, fixed["amount"]) == (False, False, "49.00")
    # ap-south-1 storage, priced by no line
    [unpriced] = document["unpriced"]
    assert (unpriced["meter"], unpriced["quantity"], unpriced["events"]) == (
        "storage_gb_hours",
        "500",
        1,
    )
    # another account's explanation is not the customer's to read
    other = customer_api.handler(
        customer_event("GET", "/v1/accounts/acct-2/explanation", own),
        LocalContext("customer-api"),
    )
    assert other["statusCode"] == 403
