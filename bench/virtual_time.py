"""Virtual time for simulated concurrent workers: real code, run in threads, one at a time.

Each worker runs until it sleeps (a call's latency, a retry's wait, work it stands for);
then the worker whose wake-up comes first runs, with the clock set to that wake-up. So
hours of a concurrent run pass in seconds, every interleaving the real timing would allow
can happen, and a seeded run is the same every time (nothing depends on the host's speed).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Sequence


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()
        self._waiting: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()
        self.errors: list[BaseException] = []

    def sleep(self, seconds: float) -> None:
        """The calling worker waits `seconds` of virtual time while the others run."""
        event = threading.Event()
        with self._lock:
            heapq.heappush(self._waiting, (self.now + max(seconds, 0.0), next(self._order), event))
            self._run_next()
        event.wait()

    def _run_next(self) -> None:
        if self._waiting:
            wake_at, _, event = heapq.heappop(self._waiting)
            self.now = wake_at
            event.set()

    def run(self, workers: Sequence[Callable[[], None]]) -> None:
        """Run the workers to the end, all starting at the current time."""
        started = []
        for work in workers:
            event = threading.Event()
            heapq.heappush(self._waiting, (self.now, next(self._order), event))
            thread = threading.Thread(target=self._worker, args=(work, event), daemon=True)
            thread.start()
            started.append(thread)
        with self._lock:
            self._run_next()
        for thread in started:
            thread.join()
        if self.errors:
            raise self.errors[0]

    def _worker(self, work: Callable[[], None], turn: threading.Event) -> None:
        turn.wait()
        try:
            work()
        except BaseException as error:  # reported by run(), after the others finish
            self.errors.append(error)
        finally:
            with self._lock:
                self._run_next()
