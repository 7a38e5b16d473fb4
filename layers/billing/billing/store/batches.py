"""Reading and writing many items at once: DynamoDB's BatchGetItem and BatchWriteItem within
their limits, the keys or items a call left unprocessed (throttling, or its 16 MB answer
limit) asked for again under the UNPROCESSED retry policy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

from billing.store.errors import Throttled, translated
from billing.store.retry import UNPROCESSED, Sleep

Item = dict[str, dict[str, Any]]

BATCH_GET_MAX: Final = 100  # keys in one BatchGetItem
BATCH_WRITE_MAX: Final = 25  # requests in one BatchWriteItem


class _LeftUnprocessed(Throttled):
    """A call left part of its batch undone: retried here (a Throttled the SDK already
    retried is not). After the last attempt callers get a plain Throttled: Lambda reports
    an error by its class name, and the workflow retries `Throttled`."""


def _exhausted(error: _LeftUnprocessed) -> Throttled:
    return Throttled(str(error))


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Item],
    operation: str,
    *,
    sleep: Sleep = time.sleep,
) -> list[Item]:
    """The items stored under `keys` (in no particular order; a key with no item is simply
    absent), read consistently, 100 keys a call."""
    items: list[Item] = []
    for start in range(0, len(keys), BATCH_GET_MAX):
        request: dict[str, Any] = {
            table: {"Keys": list(keys[start : start + BATCH_GET_MAX]), "ConsistentRead": True}
        }
        try:
            for attempt in UNPROCESSED.retrying(_LeftUnprocessed, sleep=sleep):
                with attempt:
                    with translated(operation):
                        response = client.batch_get_item(RequestItems=request)
                    items.extend(response.get("Responses", {}).get(table, []))
                    request = response.get("UnprocessedKeys") or {}
                    if request:
                        raise _LeftUnprocessed(f"{operation}: keys left unprocessed")
        except _LeftUnprocessed as error:
            raise _exhausted(error) from None
    return items


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[Item],
    operation: str,
    *,
    sleep: Sleep = time.sleep,
) -> None:
    """Put or delete these items (`{"PutRequest": ...}` / `{"DeleteRequest": ...}`), 25 a
    call, asking again for what a call left unprocessed."""
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        pending: dict[str, Any] = {table: list(requests[start : start + BATCH_WRITE_MAX])}
        try:
            for attempt in UNPROCESSED.retrying(_LeftUnprocessed, sleep=sleep):
                with attempt:
                    with translated(operation):
                        response = client.batch_write_item(RequestItems=pending)
                    pending = response.get("UnprocessedItems") or {}
                    if pending:
                        raise _LeftUnprocessed(f"{operation}: items left unprocessed")
        except _LeftUnprocessed as error:
            raise _exhausted(error) from None
