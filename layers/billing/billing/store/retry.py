"""The one retry policy: how work another party refused for now is tried again.

What is retried here is what the SDK's own retries do not cover: the part of a batch a
service left undone (DynamoDB's unprocessed keys, Kinesis's and EventBridge's refused
entries), a conditional write that lost a race to another writer, S3's 409 while another
conditional write to a key is in flight. Each kind has a named policy below.

Every policy caps its attempts and waits between them with exponential backoff and full
jitter (a random wait up to a cap that doubles each time, never above `max_wait`), so
writers that collided do not collide again in step. When the last attempt fails, the
exception it raised goes to the caller unchanged (Throttled, VersionConflict, UsageNotSent,
...): callers handle exhaustion exactly as they handle a single failure.

`sleep` is passed in by whoever retries, so tests count the waits instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_any, stop_base
from tenacity.wait import wait_random_exponential

Sleep = Callable[[float], None]
# Whether a wait of that many seconds still leaves time for another attempt.
InTime = Callable[[float], bool]
Retried = type[BaseException] | tuple[type[BaseException], ...]
T = TypeVar("T")


class _StopUnlessInTime(stop_base):
    """Stop when the wait drawn before the next attempt would leave no time for it
    (tenacity draws the wait before it asks whether to stop)."""

    def __init__(self, in_time: InTime) -> None:
        self._in_time = in_time

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._in_time(retry_state.upcoming_sleep)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one kind of work is tried."""

    attempts: int  # in all, the first one included
    first_wait: float  # seconds: the cap of the wait before the second attempt
    max_wait: float  # seconds: the cap no wait goes above

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy makes at least one attempt")
        if not 0 <= self.first_wait <= self.max_wait:
            raise ValueError("waits need 0 <= first_wait <= max_wait")

    def wait_cap(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1 for the second attempt)."""
        return min(self.max_wait, self.first_wait * 2.0 ** (retry - 1))

    def retrying(
        self, retry_on: Retried, *, sleep: Sleep = time.sleep, in_time: InTime | None = None
    ) -> Retrying:
        """The attempts, for `for attempt in policy.retrying(...): with attempt: ...`: an
        attempt whose block raises `retry_on` is made again after a wait; anything else,
        and `retry_on` from the last attempt, propagates as it was raised. With `in_time`,
        an attempt whose wait would not leave time for another (a deadline) is the last."""
        stop: stop_base = stop_after_attempt(self.attempts)
        if in_time is not None:
            stop = stop_any(stop, _StopUnlessInTime(in_time))
        return Retrying(
            stop=stop,
            wait=wait_random_exponential(multiplier=self.first_wait, max=self.max_wait),
            retry=retry_if_exception_type(retry_on),
            sleep=sleep,
            reraise=True,
        )

    def call(
        self,
        work: Callable[[], T],
        retry_on: Retried,
        *,
        sleep: Sleep = time.sleep,
        in_time: InTime | None = None,
    ) -> T:
        """`work()`, made again while it raises `retry_on` (see `retrying`)."""
        return self.retrying(retry_on, sleep=sleep, in_time=in_time)(work)


# DynamoDB's BatchGetItem / BatchWriteItem leaving keys or items unprocessed (throttling,
# or the 16 MB answer limit): asked for again, what is left after the last is Throttled.
UNPROCESSED: Final = RetryPolicy(attempts=8, first_wait=0.05, max_wait=1.0)
# EventBridge entries the bus refused, or a PutEvents call that failed whole (the SDK's
# own retries spent): sent again a few times, then reported by position.
PUBLISH: Final = RetryPolicy(attempts=4, first_wait=0.2, max_wait=1.0)
# A conditional write to a ledger or a period item that lost a race to another writer
# (the rater, another close): read again, decide again, write again.
CONFLICT: Final = RetryPolicy(attempts=10, first_wait=0.01, max_wait=0.2)
# The rater re-rating an account whose ledger another writer changed: each attempt costs a
# read and a rating, and records still not written go back to Lambda, which delivers them
# again; so few attempts and short waits (the batch's time is the shard's).
RERATE: Final = RetryPolicy(attempts=5, first_wait=0.01, max_wait=0.1)
# Invoice numbers: one counter for the whole issuer, which every run numbering at the same
# time races for; a loser reads again and takes the next numbers.
NUMBERING: Final = RetryPolicy(attempts=20, first_wait=0.01, max_wait=0.5)
# S3's 409 ConditionalRequestConflict: another conditional write to the key is in flight.
S3_CONFLICT: Final = RetryPolicy(attempts=3, first_wait=0.05, max_wait=0.5)
# SES refusing an email for the account's send rate: certainly not sent, so sent again
# after a wait, the email's claim held meanwhile (billing.invoicing.delivery). The waits
# (caps 0.5, 1, 2, 4 s) let the shared rate recover; never past the step's deadline.
SES_THROTTLED: Final = RetryPolicy(attempts=5, first_wait=0.5, max_wait=4.0)
# Kinesis PutRecords: records a call reported failed (a throttled shard, an internal
# error), resent byte for byte; what still fails after the last is UsageNotSent.
STREAM_PUT: Final = RetryPolicy(attempts=8, first_wait=0.05, max_wait=5.0)
