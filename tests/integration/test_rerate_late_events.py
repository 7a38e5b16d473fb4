"""Late usage: an event for an invoiced period is refused as PERIOD_CLOSED by the rater and
kept; a re-rate of that period counts it (and reports it apart), while a resend of an event
already billed stays a duplicate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from billing_cli.main import app
from tests.integration.test_archive_replay import Run, examples_run

pytestmark = pytest.mark.integration

LATE = [
    # 100,000 more requests for acct-1 in November, after its invoice.
    b'{"event_id":"a1-late-1","account_id":"acct-1","meter":"api_requests",'
    b'"quantity":"100000","timestamp":"2026-11-29T10:00:00Z"}',
    # A resend of an event billed in November (first seen wins: a duplicate at the rater).
    b'{"event_id":"a1-api-001","account_id":"acct-1","meter":"api_requests",'
    b'"quantity":"5","timestamp":"2026-11-29T10:00:00Z"}',
]


@pytest.fixture(scope="module")
def late_run() -> Iterator[Run]:
    with examples_run(LATE) as done:
        yield done


def rerate(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["rerate", "--period", "2026-11", "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def test_the_rater_refused_the_late_event_and_kept_it(late_run: Run) -> None:
    kept = late_run.aws.s3.list_objects_v2(Bucket="billing-local-quarantine", Prefix="rejected/")
    reasons = [
        json.loads(late_run.aws.object("billing-local-quarantine", item["Key"]))["reason"]
        for item in kept["Contents"]
    ]
    assert reasons.count("PERIOD_CLOSED") == 2  # the late event and the resend: closed first


def test_a_rerate_counts_the_late_event_once_and_not_the_resend(late_run: Run) -> None:
    document = rerate("--account", "acct-1")
    (change,) = document["changes"]
    # 1,534,000 + 100,000 = 1,634,000 requests: tier 2 holds 634,000 × 0.000002 = 1.268,
    # plus 5.00 = 6.268 → 6.27 (was 6.07); subtotal 197.47, tax 39.49, total 236.96.
    assert change["lines"] == [
        {
            "line": "usage api_requests",
            "description": "API requests",
            "stored": {"quantity": "1534000", "amount": "6.07"},
            "rerated": {"quantity": "1634000", "amount": "6.27"},
        }
    ]
    assert change["rerated"] == {"subtotal": "197.47", "tax": "39.49", "total": "236.96"}
    assert (change["difference"], change["late_events"]) == ("0.24", 1)


def test_applying_the_late_event_charges_exactly_its_amount_by_an_adjustment(
    late_run: Run,
) -> None:
    # WHEN the invoiced period is applied (the stored catalog: only the late event differs)
    document = rerate("--account", "acct-1", "--apply", "--reason", "late usage")
    [applied] = document["applied"]
    # THEN one adjustment invoice for the late event alone: 6.27 − 6.07 = 0.20, tax
    # round(197.47 × 0.2 = 39.494) − 39.45 = 0.04, total 0.24 (236.72 + 0.24 = 236.96)
    assert applied == {
        "account_id": "acct-1",
        "outcome": "adjusted",
        "adjustment": {"number": "ADJ-2026-000001", "total": "0.24", "email": "sent"},
    }
    key = "invoices/acct-1/2026-11/ADJ-2026-000001.json"
    adjustment = json.loads(late_run.aws.object("billing-local-invoices", key))
    [line] = adjustment["lines"]
    assert (line["meter"], line["quantity"], line["amount"]) == ("api_requests", "100000", "0.20")
    assert (adjustment["tax"], adjustment["invoice_total_after"]) == ("0.04", "236.96")
