"""The invoice workflow on the local runtime: moto's Step Functions interpreter runs the
same ASL file the stack deploys, its tasks calling the project's handlers."""

from __future__ import annotations

import json
import time
from typing import Any, Final

from billing.invoicing import workflow as workflows
from billing.store.workflows import WorkflowStarter, describe_execution

ROLE_ARN: Final = "arn:aws:iam::123456789012:role/invoice-run"
POLL_SECONDS: Final = 0.02
# The interval grows to this: every poll is a moto call that takes the interpreter's
# thread off the CPU (one Python process), so a long run is polled a few times a second.
MAX_POLL_SECONDS: Final = 0.5


class WorkflowFailed(RuntimeError):
    def __init__(self, status: str, error: str | None, cause: str | None) -> None:
        super().__init__(f"invoice run {status}: {error}: {cause}")
        self.status, self.error, self.cause = status, error, cause


def create_invoice_run(sfn: Any, run_bucket: str, name: str = "invoice-run") -> str:
    """The invoice run's state machine, its tasks named as the local functions are and its
    ResultWriter writing to `run_bucket`."""
    definition = workflows.substituted(
        {**workflows.INVOICE_RUN_FUNCTIONS, workflows.RUN_BUCKET_VARIABLE: run_bucket}
    )
    response = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE_ARN
    )
    return str(response["stateMachineArn"])


def start(sfn: Any, state_machine: str, name: str, run_input: dict[str, Any]) -> str:
    return WorkflowStarter(sfn, state_machine).begin(name, run_input)


def wait(sfn: Any, execution: str, timeout: float = 600.0) -> dict[str, Any]:
    """The execution's output once it ends; WorkflowFailed if it did not succeed."""
    deadline = time.monotonic() + timeout
    interval = POLL_SECONDS
    described = describe_execution(sfn, execution)
    while described.running:
        if time.monotonic() > deadline:
            raise WorkflowFailed("TIMED_OUT", "timeout", f"still running after {timeout} s")
        time.sleep(interval)
        interval = min(interval * 1.5, MAX_POLL_SECONDS)
        described = describe_execution(sfn, execution)
    if described.status != "SUCCEEDED":
        raise WorkflowFailed(described.status, described.error, described.cause)
    return described.output or {}
