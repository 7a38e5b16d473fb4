"""Starting a Step Functions workflow by a name that makes a repeated start a no-op."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from billing.store.errors import translated


class WorkflowStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, run_input: dict[str, Any]) -> bool:
        """Start an execution called `name`. False if one by that name has already run;
        while it runs, Step Functions itself answers a repeated start with the same one."""
        try:
            self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(run_input)
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            with translated("start workflow"):
                raise
        return True
