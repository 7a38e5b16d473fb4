"""The invoice workflow's definition: timeouts and retries that match the functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.invoicing.workflow import definition_text
from billing.settings import INVOICE_STEP_TIMEOUT_SECONDS, INVOICE_TASK_TIMEOUT_SECONDS


def _steps() -> dict[str, Any]:
    states: dict[str, Any] = json.loads(definition_text())["States"]
    return dict(states["Batches"]["ItemProcessor"]["States"])


def _retried(state: dict[str, Any]) -> set[str]:
    return {error for rule in state["Retry"] for error in rule["ErrorEquals"]}


@pytest.mark.parametrize("step", ["Issue", "Send"])
def test_a_step_times_out_after_its_function_and_is_retried(step: str) -> None:
    state = _steps()[step]

    # The function has stopped (its own timeout) before the task times out and retries,
    # so two attempts never run at once.
    assert state["TimeoutSeconds"] == INVOICE_TASK_TIMEOUT_SECONDS
    assert (
        INVOICE_STEP_TIMEOUT_SECONDS < state["TimeoutSeconds"] <= INVOICE_STEP_TIMEOUT_SECONDS + 60
    )
    assert {"States.Timeout", "Sandbox.Timedout", "Throttled", "StoreError"} <= _retried(state)


def test_send_retries_only_errors_it_can_raise() -> None:
    # NotSent is caught per invoice inside the step; naming it in Retry would never fire.
    assert "NotSent" not in _retried(_steps()["Send"])
