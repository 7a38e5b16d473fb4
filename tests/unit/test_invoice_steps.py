"""The invoice run's steps at their edges: a malformed input is refused naming the field,
outputs are the JSON the workflow passes on (nothing written as null), and failures are
logged, an unexpected one with its traceback and none with an email address."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import TypeAdapter

from billing.invoicing.failures import UnknownAccount, failed
from billing.invoicing.report import log_failures, report
from billing.invoicing.steps import (
    BatchFile,
    BatchResult,
    DueInput,
    Failure,
    IssueInput,
    IssueOutput,
    Item,
    Numbered,
    ReportInput,
    ResendInput,
    StepInputError,
    read,
)

ITEM = {"account_id": "acct-1", "period": "2026-11"}


@pytest.mark.parametrize(
    ("model", "event", "message"),
    [
        (DueInput, {}, "DueInput: now: is required"),
        (DueInput, {"now": "2026-12-01"}, "DueInput: now: must be an RFC 3339 date-time"),
        (DueInput, {"now": "2026-12-01T01:00:00Z", "periods": "2026-11"}, "DueInput: periods: "),
        (
            IssueInput,
            {"issued_at": "2026-12-01T01:00:00Z", "items": [ITEM, {**ITEM, "period": "2026-13"}]},
            "IssueInput: items.1.period: '2026-13' is not a period of the form YYYY-MM",
        ),
        (ResendInput, {"resend": {"period": "2026-11"}}, "ResendInput: resend.account_id: is "),
        (
            ReportInput,
            {
                "folder": {"bucket": "runs", "prefix": "runs/r1/"},
                "manifest": {"bucket": "runs", "key": "runs/r1/manifest.json"},
                "batches": -1,
                "skipped": 0,
            },
            "ReportInput: batches: Input should be greater than or equal to 0",
        ),
        (
            BatchFile,
            {"bucket": "runs", "key": "runs/r1/results/0.json", "result": {"items": [ITEM]}},
            "BatchFile: result.error: is required",
        ),
    ],
)
def test_a_malformed_step_input_is_refused_naming_the_field(
    model: Any, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(StepInputError) as refused:
        read(model, event)
    assert str(refused.value).startswith(message), str(refused.value)


def test_a_step_output_is_written_without_nulls_in_the_order_the_workflow_had_it() -> None:
    # GIVEN an Issue outcome: one account failed before it had a number, one after
    outcome = IssueOutput()
    outcome.failed.append(Failure.of(Item(**ITEM), ValueError("no plan")))
    numbered = Numbered(**ITEM, invoice_number="INV-2026-000001")
    outcome.failed.append(Failure.of(numbered, UnknownAccount("acct-1")))
    outcome.unsent.append(numbered)

    # THEN its JSON has no invoice_number where there is none, and the keys in order
    dumped = outcome.model_dump(mode="json")
    assert dumped == {
        "issued": [],
        "skipped": [],
        "failed": [
            {**ITEM, "error": "ValueError", "reason": "no plan"},
            {
                **ITEM,
                "invoice_number": "INV-2026-000001",
                "error": "UnknownAccount",
                "reason": "account 'acct-1' is not known",
            },
        ],
        "emails": {"sent": [], "undelivered": [], "failed": []},
        "unsent": [{**ITEM, "invoice_number": "INV-2026-000001"}],
    }
    assert list(dumped["failed"][1]) == [
        "account_id",
        "period",
        "invoice_number",
        "error",
        "reason",
    ]


def test_the_run_clock_is_written_back_in_utc_as_it_was_read() -> None:
    request = read(IssueInput, {"issued_at": "2026-12-01T02:15:00+01:00", "items": []})
    assert request.model_dump(mode="json") == {"issued_at": "2026-12-01T01:15:00Z", "items": []}


def test_an_unexpected_error_is_logged_with_its_traceback_an_expected_one_without(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.invoice_steps")
    caplog.set_level(logging.WARNING, logger=log.name)

    # WHEN a render fails with an error nobody expected, and a close for an unknown account
    try:
        raise TypeError("unsupported operand type(s)")
    except TypeError as error:
        unexpected = failed(log, Item(**ITEM), error, "render")
    try:
        raise UnknownAccount("acct-2")
    except UnknownAccount as error:
        expected = failed(log, Item(account_id="acct-2", period="2026-11"), error, "close")

    # THEN both are reported; the first is logged at error with its traceback
    assert (unexpected.error, expected.error) == ("TypeError", "UnknownAccount")
    first, second = caplog.records
    assert (first.levelno, first.exc_info is not None) == (logging.ERROR, True)
    assert (first.account_id, first.period, first.doing) == ("acct-1", "2026-11", "render")  # type: ignore[attr-defined]
    assert (second.levelno, second.exc_info) == (logging.WARNING, None)
    assert second.reason == "account 'acct-2' is not known"  # type: ignore[attr-defined]


def test_the_report_logs_each_failure_with_email_addresses_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a batch with a failure whose text names an address, and an undelivered email
    batch = {
        "issued": 2,
        "skipped": 0,
        "emailed": 1,
        "failed": [{**ITEM, "error": "ValueError", "reason": "bad To: <ap@one.example>"}],
        "undelivered": [
            {
                "account_id": "acct-2",
                "period": "2026-11",
                "invoice_number": "INV-2026-000002",
                "reason": "send invoice email: BadRequestException",
            }
        ],
        "send_failed": [],
    }
    counts = report([TypeAdapter(BatchResult).validate_python(batch)])
    log = logging.getLogger("test.report")
    caplog.set_level(logging.WARNING, logger=log.name)

    # WHEN the report step logs what it reports
    log_failures(counts, log)

    # THEN one line per account, naming it, its period and why, without the address
    logged = [
        (r.message, r.account_id, r.period, r.reason)  # type: ignore[attr-defined]
        for r in caplog.records
    ]
    assert logged == [
        ("invoice run: not finished", "acct-1", "2026-11", "bad To: <<email address>>"),
        (
            "invoice run: email undelivered",
            "acct-2",
            "2026-11",
            "send invoice email: BadRequestException",
        ),
    ]
    assert "ap@one.example" not in caplog.text
