"""The store classes behind the operator commands (`invoices run`, `invoices resend`, the
test clock): each AWS failure comes out as the store's own error, naming what failed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from billing.store.clock_parameter import ClockParameter
from billing.store.errors import StoreError
from billing.store.invocations import FunctionFailed, FunctionInvoker
from billing.store.workflows import ExecutionExists, WorkflowStarter

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/invoice-run"
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def state_machine(sfn: Any) -> str:
    created = sfn.create_state_machine(name="invoice-run", definition=PASS, roleArn=ROLE)
    return str(created["stateMachineArn"])


def test_a_started_execution_is_named_and_can_be_followed(mocked: None) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    starter = WorkflowStarter(sfn, state_machine(sfn))

    arn = starter.begin("invoice-run-2026-11-20261201T130000Z", {"period": "2026-11"})

    assert arn.endswith(":invoice-run-2026-11-20261201T130000Z")
    assert starter.execution(arn).status in {"RUNNING", "SUCCEEDED"}


def test_a_name_already_taken_is_told_apart_from_a_failure(mocked: None) -> None:
    # GIVEN an execution started under a name
    sfn = boto3.client("stepfunctions", region_name=REGION)
    starter = WorkflowStarter(sfn, state_machine(sfn))
    starter.begin("invoice-run-manual-20261201T130000Z", {"now": "2026-12-01T13:00:00Z"})

    # WHEN the same name is started with another input THEN the caller learns it is taken
    # (with the same input, Step Functions answers with the same execution only while it
    # runs: moto may have finished it already, so that case is not asserted here)
    with pytest.raises(ExecutionExists, match="invoice-run-manual-20261201T130000Z"):
        starter.begin("invoice-run-manual-20261201T130000Z", {"now": "2026-12-01T13:00:01Z"})
    # AND the schedule's target, which only needs to know, gets False
    assert starter.start("invoice-run-manual-20261201T130000Z", {}) is False


def test_a_missing_state_machine_or_execution_is_a_store_error(mocked: None) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    gone = state_machine(sfn)
    sfn.delete_state_machine(stateMachineArn=gone)
    starter = WorkflowStarter(sfn, gone)

    with pytest.raises(StoreError, match="start execution invoice-run-x: StateMachineDoesNotExist"):
        starter.begin("invoice-run-x", {})
    with pytest.raises(StoreError, match="describe execution: ExecutionDoesNotExist"):
        starter.execution(gone.replace(":stateMachine:", ":execution:") + ":nothing")


def test_the_clock_parameter_round_trips_and_a_missing_one_is_a_store_error(
    mocked: None,
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    clock = ClockParameter(ssm, "/billing-local/test-clock")
    with pytest.raises(
        StoreError, match="get parameter /billing-local/test-clock: ParameterNotFound"
    ):
        clock.now()

    clock.set(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    clock.set(datetime(2027, 1, 1, 1, 0, tzinfo=UTC))  # moved again: overwritten

    assert clock.now() == datetime(2027, 1, 1, 1, 0, tzinfo=UTC)
    assert ssm.get_parameter(Name="/billing-local/test-clock")["Parameter"]["Value"] == (
        "2027-01-01T01:00:00Z"
    )


def payload(document: Any) -> StreamingBody:
    raw = json.dumps(document).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def lambda_client() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_a_function_answers_with_its_json(lambda_client: tuple[Any, Stubber]) -> None:
    client, stubber = lambda_client
    request = {"resend": {"account_id": "acct-1", "period": "2026-11"}}
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload({"status": "sent"})},
        {"FunctionName": "send-invoices", "Payload": json.dumps(request).encode()},
    )

    assert FunctionInvoker(client, "send-invoices").call(request) == {"status": "sent"}


def test_a_function_that_raised_is_told_apart_from_lambda_failing(
    lambda_client: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_client
    function = FunctionInvoker(client, "send-invoices")
    # GIVEN the handler raised, then Lambda itself refused
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": payload({"errorType": "KeyError", "errorMessage": "'resend'"}),
        },
    )
    stubber.add_client_error("invoke", "ResourceNotFoundException", http_status_code=404)

    # THEN the first is the function's failure, with its type and message
    with pytest.raises(FunctionFailed) as failed:
        function.call({})
    assert (failed.value.error_type, failed.value.message) == ("KeyError", "'resend'")
    # AND the second a store error naming the call
    with pytest.raises(StoreError, match="invoke send-invoices: ResourceNotFoundException"):
        function.call({})
