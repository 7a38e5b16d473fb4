"""The local Lambda bridge stands on one moto seam; these tests fail loudly if it moves."""

from __future__ import annotations

import inspect
import json
from typing import Any
from unittest import mock

import boto3
import pytest
from moto.awslambda.models import LambdaFunction

from billing_cli.local.lambdas import bridge, create_functions
from tests.integration.conftest import REGION, Aws


def test_moto_still_has_the_seam_the_bridge_patches() -> None:
    seam = getattr(LambdaFunction, "_invoke_lambda", None)
    assert seam is not None, "moto moved LambdaFunction._invoke_lambda: see local/lambdas.py"
    assert list(inspect.signature(seam).parameters) == ["self", "event"]


class Refused(Exception):
    pass


def test_invoking_a_function_runs_its_handler_and_reports_its_errors(aws: Aws) -> None:
    client = boto3.client("lambda", region_name=REGION)
    create_functions(client, boto3.client("iam", region_name=REGION), ["echo", "refuse"])

    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"got": event, "function": context.function_name}

    def refuse(event: dict[str, Any], context: Any) -> None:
        raise Refused("no")

    with bridge({"echo": echo, "refuse": refuse}):
        ok = client.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}))
        failed = client.invoke(FunctionName="refuse", Payload=b"{}")

    assert json.loads(ok["Payload"].read()) == {"got": {"a": 1}, "function": "echo"}
    assert "FunctionError" not in ok
    assert failed["FunctionError"] == "Handled"
    error = json.loads(failed["Payload"].read())
    assert (error["errorType"], error["errorMessage"]) == ("Refused", "no")


def test_a_transaction_copies_each_table_once_and_still_rolls_back(aws: Aws) -> None:
    import copy

    from moto.dynamodb.models.table import Table

    from billing.settings import INVOICES_TABLE

    table = aws.tables[INVOICES_TABLE.env_var]
    client = aws.dynamodb
    client.put_item(TableName=table, Item={"pk": {"S": "taken"}, "sk": {"S": "x"}})
    copies: list[Any] = []
    deepcopy = copy.deepcopy

    def counting(thing: Any, memo: Any = None) -> Any:
        if isinstance(thing, Table):
            copies.append(thing)
        return deepcopy(thing, memo)

    def put(pk: str) -> dict[str, Any]:
        item = {"pk": {"S": pk}, "sk": {"S": "x"}}
        return {
            "Put": {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    with bridge({}), mock.patch.object(copy, "deepcopy", counting):
        client.transact_write_items(TransactItems=[put(f"new-{i}") for i in range(5)])
        assert len(copies) == 1
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(TransactItems=[put("new-9"), put("taken")])

    # the cancelled transaction wrote nothing
    assert "Item" not in client.get_item(
        TableName=table, Key={"pk": {"S": "new-9"}, "sk": {"S": "x"}}
    )
    assert "Item" in client.get_item(TableName=table, Key={"pk": {"S": "new-4"}, "sk": {"S": "x"}})
