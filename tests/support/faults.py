"""Fault injection for DynamoDB: a proxy around a boto3 client whose writes can be refused
(throttled) or land while the caller sees an error (a lost acknowledgement).

- THROTTLE: the write is refused before it reaches the table, as DynamoDB does once the
  SDK's own retries are spent (ProvisionedThroughputExceededException).
- LOST_ACK: the write lands, then the caller gets botocore's ReadTimeoutError, as when the
  answer is lost on the way back (the outcome is unknown to the writer).

Every write operation goes through `decide(operation, request)`: a scripted queue of faults
(`fail_next`) is consulted first, then an optional policy (for example a seeded random one).
Reads pass through untouched.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

WRITE_OPERATIONS = frozenset(
    {"put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"}
)
ENDPOINT = "https://dynamodb.us-east-1.amazonaws.com/"


class Fault(StrEnum):
    THROTTLE = "throttle"
    LOST_ACK = "lost_ack"


Matcher = Callable[[str, dict[str, Any]], bool]
Policy = Callable[[str, dict[str, Any]], Fault | None]


def items_written(operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The items (or keys) a write request touches, in DynamoDB's low-level form."""
    if operation == "put_item":
        yield request["Item"]
    elif operation in ("update_item", "delete_item"):
        yield request["Key"]
    elif operation == "transact_write_items":
        for action in request["TransactItems"]:
            for kind, body in action.items():
                yield body["Item"] if kind == "Put" else body["Key"]
    elif operation == "batch_write_item":
        for requests in request["RequestItems"].values():
            for entry in requests:
                if "PutRequest" in entry:
                    yield entry["PutRequest"]["Item"]
                else:
                    yield entry["DeleteRequest"]["Key"]


def touches(account_id: str | None = None, sort_key: str | None = None) -> Matcher:
    """A matcher for writes to an item of `account_id` (pk ACCOUNT#<id>) whose sort key is
    `sort_key`; either may be left open."""

    def match(operation: str, request: dict[str, Any]) -> bool:
        for item in items_written(operation, request):
            pk = item.get("pk", {}).get("S", "")
            sk = item.get("sk", {}).get("S", "")
            if account_id is not None and pk != f"ACCOUNT#{account_id}":
                continue
            if sort_key is not None and sk != sort_key:
                continue
            return True
        return False

    return match


def random_policy(rng: random.Random, throttle: float, lost_ack: float) -> Policy:
    """Each write is throttled with probability `throttle`, else loses its answer with
    probability `lost_ack`."""

    def decide(operation: str, request: dict[str, Any]) -> Fault | None:
        roll = rng.random()
        if roll < throttle:
            return Fault.THROTTLE
        if roll < throttle + lost_ack:
            return Fault.LOST_ACK
        return None

    return decide


@dataclass
class _Scripted:
    fault: Fault
    match: Matcher


class FaultyDynamoDB:
    """A boto3 DynamoDB client whose writes fail as scripted or as a policy decides."""

    def __init__(self, client: Any, policy: Policy | None = None) -> None:
        self._client = client
        self.policy = policy
        self._script: list[_Scripted] = []
        self.injected: Counter[Fault] = Counter()
        self.enabled = True

    def fail_next(self, fault: Fault, match: Matcher) -> None:
        """Inject `fault` into the next write that `match` accepts (once)."""
        self._script.append(_Scripted(fault, match))

    @property
    def pending(self) -> int:
        """Scripted faults not injected yet."""
        return len(self._script)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in WRITE_OPERATIONS:
            return attribute

        def write(**request: Any) -> Any:
            fault = self._decide(name, request)
            if fault is Fault.THROTTLE:
                self.injected[fault] += 1
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ProvisionedThroughputExceededException",
                            "Message": "injected: throughput exceeded",
                        }
                    },
                    name.title().replace("_", ""),
                )
            response = attribute(**request)
            if fault is Fault.LOST_ACK:
                self.injected[fault] += 1
                raise ReadTimeoutError(endpoint_url=ENDPOINT)
            return response

        return write

    def _decide(self, operation: str, request: dict[str, Any]) -> Fault | None:
        if not self.enabled:
            return None
        for index, scripted in enumerate(self._script):
            if scripted.match(operation, request):
                del self._script[index]
                return scripted.fault
        return self.policy(operation, request) if self.policy else None
