"""Running the project's own handlers where moto would run a Lambda function.

moto's Lambda runs no Python code without Docker. Its one seam for what an invocation does
is `LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs)` (moto 5.2,
pinned); `bridge()` patches it so that invoking a function by name calls the handler
registered for that name, in this process. tests/integration/test_local_lambdas.py fails
loudly if the seam moves in another moto version.

A handler's exception becomes a function error whose `errorType` is the exception's class
name, as in Lambda, so a workflow's Retry and Catch match on it.

Invocations run one at a time: moto's in-process DynamoDB applies a TransactWriteItems by
copying the table and swapping it in, which loses a write made by another thread meanwhile.
Real DynamoDB has no such gap, and a Map state's iterations do run side by side there.

While the bridge is open, moto's DynamoDB also does less needless work
(billing_cli.local.moto_costs).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import traceback
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final
from unittest import mock

from moto.awslambda.models import LambdaFunction

from billing_cli.local.moto_costs import cheaper_dynamodb

Handler = Callable[[dict[str, Any], Any], Any]

ACCOUNT: Final = "123456789012"  # moto's default account, where its interpreter calls
ROLE_NAME: Final = "local-function-role"


@dataclass(frozen=True)
class LocalContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"


class _Stderr:
    """stderr as it is at each write (a test's capture replaces it after handlers exist):
    where handlers log locally, stdout being the user's."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


CURRENT_STDERR: Final = _Stderr()


@contextmanager
def bridge(handlers: Mapping[str, Handler]) -> Iterator[None]:
    """While open, invoking a moto Lambda function runs `handlers[function name]`."""

    one_at_a_time = threading.Lock()

    def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        with one_at_a_time:
            return run(function, event)

    def run(function: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        if isinstance(event, str):
            event = json.loads(event) if event else {}
        handler = handlers.get(function.function_name)
        if handler is None:
            return _error("HandlerNotFound", function.function_name), True, ""
        try:
            result = handler(event, LocalContext(function.function_name))
        except Exception as error:  # every failure is reported to the caller, as Lambda does
            return _error(type(error).__name__, str(error), error), True, ""
        return json.dumps(result), False, ""

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(LambdaFunction, "_invoke_lambda", invoke))
        stack.enter_context(cheaper_dynamodb())
        yield


def _error(kind: str, message: str, error: BaseException | None = None) -> str:
    body: dict[str, Any] = {"errorType": kind, "errorMessage": message}
    if error is not None:
        body["stackTrace"] = traceback.format_exception(error)[-3:]
    return json.dumps(body)


def create_functions(lambda_client: Any, iam_client: Any, names: list[str]) -> None:
    """Declare the functions in moto (the code is never run: the bridge is)."""
    role = iam_client.create_role(
        RoleName=ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    for name in names:
        lambda_client.create_function(
            FunctionName=name,
            Role=role,
            Code={"ZipFile": package.getvalue()},
            Runtime="python3.12",
            Handler="app.handler",
            Architectures=["arm64"],
        )
