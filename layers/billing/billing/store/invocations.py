"""Calling a deployed function and waiting for its answer (Lambda's RequestResponse).

What the command line asks of a deployment that only a function may do: the function holds
the grants and the settings (the Send function's SES sender, for a resend)."""

from __future__ import annotations

import json
from typing import Any

from billing.store.errors import translated


class FunctionFailed(RuntimeError):
    """The function ran and raised: its error type and message, as Lambda reports them."""

    def __init__(self, error_type: str | None, message: str | None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type, self.message = error_type, message


class FunctionInvoker:
    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._name = function_name

    def call(self, event: dict[str, Any]) -> Any:
        """The function's answer to `event` (JSON, None when it returned nothing).
        FunctionFailed when its handler raised; StoreError when Lambda cannot be reached,
        refuses the call, or the function could not run."""
        with translated(f"invoke {self._name}"):
            response = self._client.invoke(
                FunctionName=self._name, Payload=json.dumps(event).encode()
            )
            payload = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            failure = payload if isinstance(payload, dict) else {}
            raise FunctionFailed(failure.get("errorType"), failure.get("errorMessage"))
        return payload
