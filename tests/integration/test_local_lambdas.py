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


def test_an_update_expression_is_parsed_once_and_each_call_binds_its_own_values(
    aws: Aws,
) -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from billing.settings import INVOICES_TABLE

    table = aws.tables[INVOICES_TABLE.env_var]
    client = aws.dynamodb
    parses: list[str] = []
    parse = UpdateExpressionParser.make

    def counting(expression: str) -> Any:
        parses.append(expression)
        return parse(expression)

    def add(pk: str, amount: str) -> dict[str, Any]:
        return client.update_item(
            TableName=table,
            Key={"pk": {"S": pk}, "sk": {"S": "x"}},
            UpdateExpression="SET #label = :label ADD #n :amount",
            ExpressionAttributeNames={"#label": "label", "#n": "n"},
            ExpressionAttributeValues={":label": {"S": pk}, ":amount": {"N": amount}},
            ReturnValues="ALL_NEW",
        )["Attributes"]

    with mock.patch.object(UpdateExpressionParser, "make", counting), bridge({}):
        first = add("a", "2")
        second = add("b", "5")
        again = add("a", "3")
        # A text that does not parse is refused every time, not remembered as parsed.
        for _ in range(2):
            with pytest.raises(client.exceptions.ClientError, match="Invalid UpdateExpression"):
                client.update_item(
                    TableName=table,
                    Key={"pk": {"S": "a"}, "sk": {"S": "x"}},
                    UpdateExpression="SET #label = = :label",
                    ExpressionAttributeNames={"#label": "label"},
                    ExpressionAttributeValues={":label": {"S": "z"}},
                )
        # A text that parses but does not fit the item is refused every time too.
        for _ in range(2):
            with pytest.raises(client.exceptions.ClientError, match="operand type"):
                client.update_item(
                    TableName=table,
                    Key={"pk": {"S": "a"}, "sk": {"S": "x"}},
                    UpdateExpression="SET #label = #label + :one",
                    ExpressionAttributeNames={"#label": "label"},
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )

    assert (first["label"], first["n"]) == ({"S": "a"}, {"N": "2"})
    assert (second["label"], second["n"]) == ({"S": "b"}, {"N": "5"})
    assert (again["label"], again["n"]) == ({"S": "a"}, {"N": "5"})
    # moto parses an UpdateItem's expression twice (its handler, then its backend): the
    # good text once in all, each bad text at each call.
    assert parses.count("SET #label = :label ADD #n :amount") == 1
    assert parses.count("SET #label = = :label") == 2
    assert parses.count("SET #label = #label + :one") == 1
    item = client.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "x"}})["Item"]
    assert (item["label"], item["n"]) == ({"S": "a"}, {"N": "5"})
