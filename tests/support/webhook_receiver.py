"""A webhook receiver on 127.0.0.1 as an integrator would write one: it verifies each
delivery's signature and dedupes on webhook-id; it can be told to fail its first requests,
or every request to some paths."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from billing.core.webhooks.signing import SignatureError, verify

NOW = 1_796_000_000  # the deliverer's clock, also the receiver's: signatures are fresh


@dataclass
class Receiver:
    """A webhook receiver as an integrator would write one: verify, dedupe on webhook-id."""

    secrets: dict[str, str] = field(default_factory=dict)  # path -> secret
    failures_left: int = 0  # answer 500 to this many requests first
    down: set[str] = field(default_factory=set)  # paths answering 500 to every request
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, id, body
    accepted: dict[str, bytes] = field(default_factory=dict)  # webhook id -> body
    refused: list[str] = field(default_factory=list)
    url: str = ""
    clock: int | None = NOW  # None: the time now (a command signs with the real clock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            message_id = verify(
                self.secrets[path],
                headers,
                body,
                now=self.clock if self.clock is not None else int(time.time()),
            )
        except SignatureError as error:
            self.refused.append(str(error))
            return 401
        self.requests.append((path, message_id, body))
        if path in self.down:
            return 500
        if self.failures_left > 0:
            self.failures_left -= 1
            return 500
        self.accepted.setdefault(message_id, body)
        return 204


@contextmanager
def serving_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.answer(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
