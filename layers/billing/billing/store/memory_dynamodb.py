"""An in-memory table for the few DynamoDB calls the ledger store makes.

A replay of the raw archive (billing.corrections.replay) rates into ledgers that live only
in memory, and the benchmarks run hundreds of thousands of events; moto would take minutes
where this takes seconds. Any other call or condition raises NotImplementedError. Write
units are computed by the store itself from item sizes, so they do not depend on the
backend; tests/integration/test_bench_backend.py checks that this stand-in
and moto give the same ledgers and the same units.
"""

from __future__ import annotations

import copy
from typing import Any

from botocore.exceptions import ClientError


def _conditional_failure() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"}}, "PutItem"
    )


class MemoryDynamoDB:
    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}

    def _table(self, name: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.tables.setdefault(name, {})

    @staticmethod
    def _key(item: dict[str, Any]) -> tuple[str, str]:
        return item["pk"]["S"], item["sk"]["S"]

    def put_item(self, *, TableName: str, Item: dict[str, Any], **condition: Any) -> dict[str, Any]:  # noqa: N803
        table = self._table(TableName)
        current = table.get(self._key(Item))
        expression = condition.get("ConditionExpression")
        if expression == "attribute_not_exists(pk)":
            if current is not None:
                raise _conditional_failure()
        elif expression == "v = :v":
            expected = condition["ExpressionAttributeValues"][":v"]
            if current is None or current.get("v") != expected:
                raise _conditional_failure()
        elif expression in (
            "attribute_not_exists(pk) OR v < :v",
            "attribute_not_exists(pk) OR v <= :v",
        ):
            limit = int(condition["ExpressionAttributeValues"][":v"]["N"])
            held = None if current is None else int(current["v"]["N"])
            if held is not None and (held > limit or (held == limit and "<=" not in expression)):
                raise _conditional_failure()
        elif expression is not None:
            raise NotImplementedError(expression)
        table[self._key(Item)] = copy.deepcopy(Item)
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        item = self._table(TableName).get(self._key(Key))
        return {"Item": copy.deepcopy(item)} if item else {}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        responses = {}
        for name, request in RequestItems.items():
            table = self._table(name)
            found = [table.get(self._key(key)) for key in request["Keys"]]
            responses[name] = [copy.deepcopy(item) for item in found if item is not None]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        for name, requests in RequestItems.items():
            for request in requests:
                item = request["PutRequest"]["Item"]
                self._table(name)[self._key(item)] = copy.deepcopy(item)
        return {"UnprocessedItems": {}}

    def query(self, **request: Any) -> dict[str, Any]:
        if request["KeyConditionExpression"] != "pk = :pk AND sk BETWEEN :first AND :last":
            raise NotImplementedError(request["KeyConditionExpression"])
        values = request["ExpressionAttributeValues"]
        pk, first, last = values[":pk"]["S"], values[":first"]["S"], values[":last"]["S"]
        items = [
            copy.deepcopy(item)
            for (item_pk, sk), item in sorted(self._table(request["TableName"]).items())
            if item_pk == pk and first <= sk <= last
        ]
        return {"Items": items}
