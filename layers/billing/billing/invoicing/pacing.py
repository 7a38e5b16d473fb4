"""Email at SES's pace: each batch of the invoice run sends at its share of the account's
maximum send rate, and starts no email its step would not have time to finish.

The model (docs/invoicing.md, Email at SES's pace): the run's batches that send at the same
time (the Distributed Map's concurrency) share the account's rate, so each sends at
max rate / concurrency, its sends spaced evenly (start to start). At 14 emails/s and 10
batches, a batch sends 1.4/s: its 99 emails take 98 intervals of 0.714 s, 70 s. A step
starts no email whose turn comes later than its deadline (the function's time left, less a
margin for the email in flight): what is left is not claimed, so certainly not sent, and
the Send step, the workflow's retry or the next run sends it.

Pure: the clock and the sleep are given (time.monotonic and time.sleep in the functions),
so tests assert every wait without waiting.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from billing.settings import EMAIL_DEADLINE_MARGIN_SECONDS, SES_FALLBACK_SEND_RATE
from billing.store.errors import StoreError
from billing.store.mailer import NotSent

Clock = Callable[[], float]  # seconds, only ever compared and subtracted (monotonic)
Sleep = Callable[[float], None]
Rate = Callable[[], float]  # emails per second

_LOG: Final = logging.getLogger(__name__)
# A warm function reads the account's quota again after this long (AWS may raise it).
QUOTA_REFRESH_SECONDS: Final = 300.0


class NoTimeToSend(NotSent):
    """The step's time ran out before SES's rate let this email go: certainly not sent,
    its claim not taken (or given back). The Send step, the workflow's retry or the next
    run sends it."""

    def __init__(self, message: str = "not sent yet: the step's time ran out at SES's rate"):
        super().__init__(message)


def unpaced() -> float:
    return math.inf


class Pacer:
    """One step's sends, spaced at least 1 / rate apart (start to start), none started
    after `deadline`. The rate is asked for when the first email is sent, not before: a
    step with nothing to email reads no quota."""

    def __init__(
        self, rate: Rate, *, clock: Clock, sleep: Sleep, deadline: float = math.inf
    ) -> None:
        self._rate, self._clock, self._sleep, self._deadline = rate, clock, sleep, deadline
        self._interval: float | None = None
        self._next_turn = -math.inf  # the earliest start of the next send
        self.stopped_by: NotSent | None = None

    @property
    def interval(self) -> float:
        """Seconds between two sends' starts."""
        if self._interval is None:
            self._interval = 1.0 / self._rate()
        return self._interval

    def stop(self, refusal: NotSent) -> None:
        """SES refused a send for the whole account (paused, an identity missing, its daily
        quota spent): it would refuse every other send of this step too, so none is made."""
        self.stopped_by = refusal

    def may_send(self) -> bool:
        """Whether the step may start another email (asked before claiming it)."""
        return self.stopped_by is None and self.in_time()

    def not_sent(self) -> NotSent:
        """Why the step starts no more emails: SES's refusal of the account, or its time."""
        return self.stopped_by or NoTimeToSend()

    def in_time(self) -> bool:
        """Whether the next send's turn comes by the deadline (asked before claiming it)."""
        return max(self._clock(), self._next_turn) <= self._deadline

    def take_turn(self) -> bool:
        """Wait for the next send's turn and take it; False, at once and without waiting,
        if that turn comes after the deadline."""
        now = self._clock()
        turn = max(now, self._next_turn)
        if turn > self._deadline:
            return False
        if turn > now:
            self._sleep(turn - now)
        self._next_turn = turn + self.interval
        return True

    def can_wait(self, seconds: float) -> bool:
        """Whether a wait of `seconds` (a throttled send's backoff) still leaves the next
        turn by the deadline."""
        return max(self._clock() + seconds, self._next_turn) <= self._deadline

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)


@dataclass(frozen=True)
class Pacing:
    """How a step paces its emails: one batch's rate, the clock and sleep, and the margin a
    step keeps before its deadline for the email in flight. Unpaced by default."""

    rate: Rate = unpaced
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep
    margin: float = EMAIL_DEADLINE_MARGIN_SECONDS

    def pacer(self, seconds_left: float | None = None) -> Pacer:
        """A pacer for one invocation with `seconds_left` before its function is stopped
        (None: no deadline)."""
        deadline = math.inf if seconds_left is None else self.clock() + seconds_left - self.margin
        return Pacer(self.rate, clock=self.clock, sleep=self.sleep, deadline=deadline)


@dataclass
class SharedRate:
    """One batch's share of the account's send rate: the account's maximum send rate (the
    setting when configured, else SES's quota, read at most every QUOTA_REFRESH_SECONDS in
    a warm function) divided among the `concurrency` batches that send at once. If SES's
    quota cannot be read, the lowest rate SES grants (SES_FALLBACK_SEND_RATE), read again
    at the next invocation."""

    read_quota: Rate  # SES's MaxSendRate (billing.store.mailer.SendQuota); StoreError if not
    concurrency: int
    configured: float | None = None
    clock: Clock = time.monotonic
    _read: tuple[float, float] | None = field(default=None, init=False)  # (rate, read at)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("at least one batch sends")

    def account_rate(self) -> float:
        if self.configured is not None:
            return self.configured
        now = self.clock()
        if self._read is not None and now - self._read[1] < QUOTA_REFRESH_SECONDS:
            return self._read[0]
        try:
            rate = self.read_quota()
        except StoreError as error:
            _LOG.warning(
                "SES sending quota not read: pacing at the lowest rate SES grants",
                extra={"reason": str(error), "rate": SES_FALLBACK_SEND_RATE},
            )
            return SES_FALLBACK_SEND_RATE
        self._read = (rate, now)
        return rate

    def __call__(self) -> float:
        return self.account_rate() / self.concurrency
