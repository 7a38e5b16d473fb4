"""A batch read or write that DynamoDB keeps leaving unprocessed ends, after its last
attempt, as an error named `Throttled`: Lambda reports an error by its class name, and the
invoice workflow's Retry names `Throttled`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.invoicing.workflow import definition_text
from billing.store.batches import batch_get, batch_write
from billing.store.errors import Throttled

pytestmark = pytest.mark.unit


class NeverProcessed:
    """A DynamoDB client whose batch calls always leave everything unprocessed."""

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        return {"Responses": {}, "UnprocessedKeys": RequestItems}

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        return {"UnprocessedItems": RequestItems}


def retried_error_names() -> set[str]:
    """Every error name a Retry of the invoice workflow names."""
    definition = json.loads(definition_text())
    names: set[str] = set()

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            for retry in state.get("Retry", []):
                names.update(retry["ErrorEquals"])
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition["States"])
    return names


@pytest.mark.parametrize("call", ["get", "write"])
def test_exhausted_batch_raises_an_error_named_throttled_as_before(call: str) -> None:
    # (isinstance is not enough: a subclass would pass it yet be reported under its own
    # name, which no Retry of the workflow names)
    client = NeverProcessed()
    key = {"pk": {"S": "x"}, "sk": {"S": "y"}}
    with pytest.raises(Throttled) as raised:
        if call == "get":
            batch_get(client, "t", [key], "load invoice records", sleep=lambda _: None)
        else:
            batch_write(client, "t", [{"PutRequest": {"Item": key}}], "store", sleep=lambda _: None)
    name = type(raised.value).__name__
    assert name in retried_error_names(), f"{name} is not retried by the workflow"
    assert name == "Throttled"


# ruff: noqa: PT012
