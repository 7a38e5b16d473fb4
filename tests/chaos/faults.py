"""The faults the chaos run injects into the rater's calls, all decided by one seeded plan.

- Throttling bursts: from time to time a burst of consecutive DynamoDB and S3 writes, of
  both environments, is refused (ProvisionedThroughputExceededException / SlowDown), as
  the services answer once the SDK's own retries are spent.
- Lost acknowledgements: a DynamoDB write lands, then the caller gets a read timeout.
- Crashes: an invocation stops (`Crash`, like a Lambda timeout: no handler runs) before its
  (k+1)-th write, the k before it landed.
- Races: just before an environment's conditional ledger write, the other environment
  processes the same batch to its end (the event source mapping delivering it again while
  the first invocation still runs), so the first write fails its condition for real.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError

from billing.store.ledger_store import LEDGER_SORT_KEY
from billing.store.memory_dynamodb import MemoryDynamoDB
from tests.support.faults import ENDPOINT, WRITE_OPERATIONS

S3_WRITES = frozenset({"put_object", "copy_object"})


class Crash(BaseException):
    """The invocation stopped (a timeout, out of memory): nothing after it runs."""


@dataclass
class FaultRates:
    burst_start: float = 0.002  # per write: a throttling burst begins
    burst_length: tuple[int, int] = (3, 40)
    lost_ack: float = 0.005
    crash: float = 0.05  # per invocation: it will stop after k writes
    crash_after: tuple[int, int] = (0, 8)
    race: float = 0.01  # per conditional ledger write
    redeliver: float = 0.06  # per successful batch: the mapping delivers it again


@dataclass
class FaultPlan:
    rng: random.Random
    rates: FaultRates = field(default_factory=FaultRates)
    injected: Counter[str] = field(default_factory=Counter)
    _burst_left: int = 0
    _crash_at: int | None = None
    _writes: int = 0
    _racing: bool = False
    race: Callable[[], None] | None = None  # what the other environment does in a race

    def begin_invocation(self, race: Callable[[], None] | None) -> None:
        self._writes, self.race = 0, race
        self._crash_at = None
        if self.rng.random() < self.rates.crash:
            self._crash_at = self.rng.randint(*self.rates.crash_after)

    def before_write(self) -> str | None:
        """Raise Crash, or say "throttle", "lost_ack" or None for the write about to go."""
        if self._crash_at is not None and not self._racing and self._writes >= self._crash_at:
            self._crash_at = None
            self.injected["crash after k writes"] += 1
            raise Crash()
        self._writes += 1
        if self._burst_left == 0 and self.rng.random() < self.rates.burst_start:
            self._burst_left = self.rng.randint(*self.rates.burst_length)
            self.injected["throttling bursts"] += 1
        if self._burst_left:
            self._burst_left -= 1
            self.injected["throttled writes"] += 1
            return "throttle"
        if self.rng.random() < self.rates.lost_ack:
            self.injected["lost acknowledgements"] += 1
            return "lost_ack"
        return None

    def maybe_race(self) -> None:
        if self.race is None or self._racing or self.rng.random() >= self.rates.race:
            return
        self._racing = True
        try:
            self.injected["races (other environment first)"] += 1
            self.race()
        finally:
            self._racing = False


def _throttled(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


class FaultyDynamoDB:
    """One environment's DynamoDB client: the shared table, through the plan's faults."""

    def __init__(self, table: Any, plan: FaultPlan) -> None:
        self._table, self._plan = table, plan

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._table, name)
        if name not in WRITE_OPERATIONS:
            return call

        def write(**request: Any) -> Any:
            if name == "put_item" and request["Item"]["sk"]["S"] == LEDGER_SORT_KEY:
                self._plan.maybe_race()
            fault = self._plan.before_write()
            if fault == "throttle":
                raise _throttled("ProvisionedThroughputExceededException", name)
            response = call(**request)
            if fault == "lost_ack":
                raise ReadTimeoutError(endpoint_url=ENDPOINT)
            return response

        return write


class CountingDynamoDB(MemoryDynamoDB):
    """The in-memory table, counting the conditional checks that failed."""

    def __init__(self) -> None:
        super().__init__()
        self.conditional_failures = 0

    def put_item(self, **request: Any) -> dict[str, Any]:
        try:
            return super().put_item(**request)
        except ClientError:
            self.conditional_failures += 1
            raise


class MemoryS3:
    """The quarantine bucket in memory: the calls billing.store.quarantine makes."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.objects[Key] = Body
        return {}

    def copy_object(self, *, Key: str, CopySource: dict[str, str], **_: Any) -> dict[str, Any]:  # noqa: N803
        if CopySource["Key"] not in self.objects:
            raise _throttled("NoSuchKey", "CopyObject")
        self.objects[Key] = self.objects[CopySource["Key"]]
        return {}

    def head_object(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        if Key not in self.objects:
            raise _throttled("404", "HeadObject")
        return {}


class FaultyS3:
    def __init__(self, bucket: MemoryS3, plan: FaultPlan) -> None:
        self._bucket, self._plan = bucket, plan

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._bucket, name)
        if name not in S3_WRITES:
            return call

        def write(**request: Any) -> Any:
            fault = self._plan.before_write()
            if fault == "throttle":
                raise _throttled("SlowDown", name)
            response = call(**request)
            if fault == "lost_ack":
                raise ReadTimeoutError(endpoint_url="https://s3.amazonaws.com/")
            return response

        return write
