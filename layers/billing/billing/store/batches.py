"""Reading many items at once: DynamoDB's BatchGetItem within its limits, keys it left
unprocessed (throttling, or its 16 MB answer limit) asked for again with backoff."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from billing.store.errors import Throttled, translated

Item = dict[str, dict[str, Any]]

BATCH_GET_MAX: Final = 100  # keys in one BatchGetItem
_ATTEMPTS: Final = 8


def batch_get(
    client: Any,
    table: str,
    keys: Sequence[Item],
    operation: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Item]:
    """The items stored under `keys` (in no particular order; a key with no item is simply
    absent), read consistently, 100 keys a call."""
    items: list[Item] = []
    for start in range(0, len(keys), BATCH_GET_MAX):
        request: dict[str, Any] = {
            table: {"Keys": list(keys[start : start + BATCH_GET_MAX]), "ConsistentRead": True}
        }
        for attempt in range(_ATTEMPTS):
            with translated(operation):
                response = client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise Throttled(f"{operation}: keys left unprocessed")
    return items


BATCH_WRITE_MAX: Final = 25  # requests in one BatchWriteItem


def batch_write(
    client: Any,
    table: str,
    requests: Sequence[Item],
    operation: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Put or delete these items (`{"PutRequest": ...}` / `{"DeleteRequest": ...}`), 25 a
    call, asking again for what a call left unprocessed."""
    for start in range(0, len(requests), BATCH_WRITE_MAX):
        pending: dict[str, Any] = {table: list(requests[start : start + BATCH_WRITE_MAX])}
        for attempt in range(_ATTEMPTS):
            with translated(operation):
                response = client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                break
            sleep(min(0.05 * 2**attempt, 1.0))
        else:
            raise Throttled(f"{operation}: items left unprocessed")
