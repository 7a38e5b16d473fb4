"""The schedule's target starts no run while one is going: a month-end run emails at SES's
pace for hours, and an hourly run beside it would work the same invoices."""

from __future__ import annotations

from typing import Any

import pytest

from billing.store.workflows import WorkflowStarter
from billing_cli.local.lambdas import LocalContext
from functions.start_invoice_run import app as start_invoice_run

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:invoice-run"


class StepFunctions:
    """ListExecutions and StartExecution, with the executions running given."""

    def __init__(self, running: list[str]) -> None:
        self.running = running
        self.started: list[str] = []

    def list_executions(self, **request: Any) -> dict[str, Any]:
        assert request == {"stateMachineArn": MACHINE, "statusFilter": "RUNNING", "maxResults": 1}
        return {"executions": [{"executionArn": arn} for arn in self.running[:1]]}

    def start_execution(self, **request: Any) -> dict[str, Any]:
        assert request["stateMachineArn"] == MACHINE
        self.started.append(request["name"])
        return {"executionArn": f"{MACHINE}:{request['name']}".replace("stateMachine", "execution")}


@pytest.mark.parametrize(
    ("running", "started"),
    [
        ([], ["invoice-run-20261201T0700Z"]),
        (
            [
                "arn:aws:states:us-east-1:123456789012:execution:invoice-run:invoice-run-20261201T0100Z"
            ],
            [],
        ),
    ],
)
def test_a_scheduled_run_starts_only_when_none_is_going(
    monkeypatch: pytest.MonkeyPatch, running: list[str], started: list[str]
) -> None:
    client = StepFunctions(running)
    monkeypatch.setattr(start_invoice_run, "starter", lambda: WorkflowStarter(client, MACHINE))

    answer = start_invoice_run.handler(
        {"scheduled_time": "2026-12-01T07:00:00Z"}, LocalContext("start_invoice_run")
    )

    assert client.started == started
    assert answer["started"] is bool(started)
    if running:
        assert answer["running"] == "invoice-run-20261201T0100Z"
