"""A clock that moves only when slept on (or moved by hand): pacing and deadlines are
asserted to the exact wait, and no test sleeps for real."""

from __future__ import annotations


class FakeClock:
    """`now()` for a monotonic clock, `sleep(seconds)` that records the wait and moves the
    clock by it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now_at = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.now_at

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now_at += seconds

    def advance(self, seconds: float) -> None:
        """Time spent working (a call's latency), not waiting."""
        self.now_at += seconds
