"""Starting a Step Functions workflow by a name that makes a repeated start a no-op, and
following an execution to its end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from billing.store.errors import StoreError, translated


class ExecutionExists(StoreError):
    """An execution by that name has already been started (names are unique for 90 days
    after an execution ends)."""


@dataclass(frozen=True)
class Execution:
    """Where an execution is: RUNNING, or how it ended (SUCCEEDED, FAILED, TIMED_OUT,
    ABORTED), with its output when it succeeded and its error and cause when not."""

    status: str
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"


class WorkflowStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, run_input: dict[str, Any]) -> bool:
        """Start an execution called `name`. False if one by that name has already run;
        while it runs, Step Functions itself answers a repeated start with the same one."""
        try:
            self.begin(name, run_input)
        except ExecutionExists:
            return False
        return True

    def begin(self, name: str, run_input: dict[str, Any]) -> str:
        """Start an execution called `name`; its ARN. ExecutionExists if one by that name
        has already run; StoreError if Step Functions cannot be reached or refuses."""
        with translated(f"start execution {name}"):
            try:
                started = self._client.start_execution(
                    stateMachineArn=self._arn, name=name, input=json.dumps(run_input)
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                    raise ExecutionExists(f"start execution {name}: it has already run") from None
                raise
        return str(started["executionArn"])

    def running(self) -> str | None:
        """The ARN of an execution of this state machine that is running, if any (one a
        Distributed Map started for a batch is not one of them: those are its map run's)."""
        with translated("list running executions"):
            listed = self._client.list_executions(
                stateMachineArn=self._arn, statusFilter="RUNNING", maxResults=1
            )
        executions = listed.get("executions", [])
        return str(executions[0]["executionArn"]) if executions else None

    def execution(self, execution_arn: str) -> Execution:
        return describe_execution(self._client, execution_arn)


def describe_execution(client: Any, execution_arn: str) -> Execution:
    """The execution as it is now (Step Functions reads are eventually consistent, so one
    just started may still say RUNNING after it ended)."""
    with translated("describe execution"):
        described = client.describe_execution(executionArn=execution_arn)
    output = described.get("output")
    return Execution(
        status=described["status"],
        output=json.loads(output) if output else None,
        error=described.get("error"),
        cause=described.get("cause"),
    )
