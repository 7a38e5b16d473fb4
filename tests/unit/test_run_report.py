"""What an invoice run reports and how `billing run` and `billing invoices run` read it: every
account the run could not finish is named, so the command exits 1."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from billing.invoicing.report import report
from billing.invoicing.steps import BatchResult
from billing_cli.operations import needing_attention


def run_report(batches: list[dict[str, Any]], skipped_before: int) -> dict[str, Any]:
    """The Report step on the Map's results as the workflow hands them over, as JSON."""
    results = TypeAdapter(list[BatchResult]).validate_python(batches)
    return report(results, skipped=skipped_before).model_dump(mode="json")


def test_failed_and_undelivered_invoices_are_each_named_with_their_reason() -> None:
    # GIVEN a batch where acct-4 failed and acct-5's address was refused
    batch = {
        "issued": 4,
        "skipped": 0,
        "emailed": 4,
        "failed": [
            {"account_id": "acct-4", "period": "2026-11", "error": "TypeError", "reason": "x"}
        ],
        "undelivered": [
            {
                "account_id": "acct-5",
                "period": "2026-11",
                "invoice_number": "INV-2026-000005",
                "reason": "send invoice email: BadRequestException",
            }
        ],
        "send_failed": [],
    }

    counts = run_report([batch], skipped_before=0)

    assert (counts["failed"], counts["undelivered"]) == (1, 1)
    assert needing_attention(counts) == [
        "acct-4 2026-11: failed: TypeError: x",
        "acct-5 2026-11: undelivered: INV-2026-000005 send invoice email: BadRequestException",
    ]


def test_a_batch_that_failed_whole_names_each_of_its_accounts() -> None:
    batch = {
        "items": [{"account_id": "acct-1", "period": "2026-11"}],
        "error": "States.Timeout",
    }
    assert needing_attention(run_report([batch], 0)) == ["acct-1 2026-11: failed: States.Timeout"]


def test_a_run_that_finished_everything_needs_no_attention() -> None:
    batch = {
        "issued": 6,
        "skipped": 0,
        "emailed": 6,
        "failed": [],
        "undelivered": [],
        "send_failed": [],
    }
    assert needing_attention(run_report([batch], 0)) == []


def test_an_account_failed_in_issue_and_left_to_a_send_that_failed_is_named_once() -> None:
    # GIVEN acct-1's announcement refused in Issue (failed) and its email left to Send
    # (unsent), acct-2's email also left to Send, and the Send step failing whole
    acct_1 = {"account_id": "acct-1", "period": "2026-11", "invoice_number": "INV-2026-000001"}
    acct_2 = {"account_id": "acct-2", "period": "2026-11", "invoice_number": "INV-2026-000002"}
    batch = {
        "issued": 1,
        "skipped": 0,
        "emailed": 0,
        "failed": [{**acct_1, "error": "StoreError", "reason": "refused"}],
        "undelivered": [],
        "send_failed": [],
        "send_error": "RuntimeError",
        "unsent": [acct_1, acct_2],
        "unsent_skipped": [],
    }

    counts = run_report([batch], skipped_before=0)

    # THEN each account is counted and named once: acct-1 for its refusal, acct-2 for Send
    maybe = "maybe not emailed: the Send step failed (the next run emails it if not)"
    assert counts["failed"] == 2
    assert [(f["account_id"], f["error"], f["reason"]) for f in counts["failures"]] == [
        ("acct-1", "StoreError", "refused"),
        ("acct-2", "RuntimeError", maybe),
    ]


def test_a_truncated_report_says_how_many_more_and_where_they_all_are() -> None:
    report = {
        "failed": 3000,
        "undelivered": 2,
        "failures": [{"account_id": "acct-1", "period": "2026-11", "error": "E"}],
        "undelivered_invoices": [],
        "truncated": True,
        "report": {"bucket": "runs", "key": "runs/r1/report.json"},
    }
    assert needing_attention(report) == [
        "acct-1 2026-11: failed: E",
        "and 3001 more: every one is in s3://runs/runs/r1/report.json",
    ]


def test_an_email_left_pending_is_named_and_counted_pending_not_failed() -> None:
    # GIVEN a batch whose Send step left one email throttled and failed another account
    batch = {
        "issued": 3,
        "skipped": 0,
        "emailed": 1,
        "failed": [],
        "undelivered": [],
        "send_failed": [
            {
                "account_id": "acct-1",
                "period": "2026-11",
                "invoice_number": "INV-2026-000001",
                "error": "SendThrottled",
                "reason": "send invoice email: ThrottlingException",
            },
            {
                "account_id": "acct-2",
                "period": "2026-11",
                "invoice_number": "INV-2026-000002",
                "error": "DeliveryUnknown",
                "reason": "send invoice email: InternalFailure",
            },
        ],
    }
    counts = run_report([batch], skipped_before=0)

    # THEN one is pending and one failed, and each is named as what it is
    assert (counts["emailed"], counts["pending"], counts["failed"]) == (1, 1, 1)
    assert needing_attention(counts) == [
        "acct-1 2026-11: email pending: SendThrottled: send invoice email: ThrottlingException",
        "acct-2 2026-11: failed: DeliveryUnknown: send invoice email: InternalFailure",
    ]
