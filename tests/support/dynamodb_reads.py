"""Every DynamoDB call a block of code makes, with the items it read or wrote and the read
units DynamoDB would bill for them (moto reports none): for tests that hold a run's reads
to what it should cost."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.client import BaseClient

from billing.store.capacity import READ_UNIT_BYTES, item_size

_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


@dataclass
class DynamoDbCalls:
    calls: Counter[str] = field(default_factory=Counter)  # by operation
    items_read: Counter[str] = field(default_factory=Counter)  # by operation
    read_units: float = 0.0
    writes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return sum(count for op, count in self.calls.items() if op not in _WRITES)

    def record(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        self.calls[operation] += 1
        if operation in _WRITES:
            self.writes.append((operation, params))
        elif operation in ("Query", "Scan"):
            items = response.get("Items", [])
            self.items_read[operation] += len(items)
            # one bill per call: the items' sizes together, in 4 KB units, halved when
            # eventually consistent (an index is always)
            units = math.ceil(sum(map(item_size, items)) / READ_UNIT_BYTES) or 1
            self.read_units += units if params.get("ConsistentRead") else units / 2
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = response.get("Responses", {}).get(table, [])
                self.items_read[operation] += len(found)
                # each key as a GetItem: a key with no item still costs a unit
                units = [math.ceil(item_size(item) / READ_UNIT_BYTES) for item in found]
                units += [1] * (len(request["Keys"]) - len(found))
                self.read_units += sum(units) * (1 if request.get("ConsistentRead") else 0.5)
        elif operation == "GetItem":
            self.items_read[operation] += "Item" in response
            self.read_units += 1


@contextmanager
def dynamodb_calls() -> Iterator[DynamoDbCalls]:
    """Record every DynamoDB call made in the block, whichever client makes it."""
    recorded = DynamoDbCalls()
    original = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: Any) -> Any:
        response = original(client, operation, params)
        if client.meta.service_model.service_name == "dynamodb":
            recorded.record(operation, params, response)
        return response

    with mock.patch.object(BaseClient, "_make_api_call", recording):
        yield recorded
