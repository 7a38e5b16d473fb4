"""moto's server, as `billing local` serves it: on 127.0.0.1 only, to this machine's own
clients only.

A web page open in the developer's browser can send requests to 127.0.0.1 too. moto's own
server answers every Origin with CORS headers that let the page read the answer, and any
Host name (so a DNS-rebound name reaches it as well): a page could read every customer's
usage and invoices off the local endpoint. Here a request with an Origin header is refused
(the SDKs and the `billing` command never send one), so is a Host other than this server's
own address, and no answer carries CORS headers. moto's ThreadedMotoServer also binds in
its thread and waits for a signal that never comes when the port is taken; this server
binds before it returns, so a taken port is an OSError at once.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

ADDRESS: Final = "127.0.0.1"
_CORS_PREFIX: Final = "access-control-"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guarded(app: WsgiApp, allowed_hosts: Callable[[], set[str]]) -> WsgiApp:
    """`app`, answering only requests from this machine's own non-browser clients."""

    def refuse(start_response: Callable[..., Any], reason: str) -> Iterable[bytes]:
        body = f"refused by billing local: {reason}\n".encode()
        start_response(
            "403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "HTTP_ORIGIN" in environ:
            return refuse(start_response, "requests from web pages (an Origin) are not served")
        if environ.get("HTTP_HOST", "").lower() not in allowed_hosts():
            return refuse(start_response, "unknown Host")

        def without_cors(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith(_CORS_PREFIX)]
            return start_response(status, kept, *rest)

        return app(environ, without_cors)

    return application


class LocalServer:
    """moto's backends over HTTP on 127.0.0.1:`port` (0: a free one), in a thread; or
    `app`, which then guards itself (the customer API's local gateway)."""

    def __init__(self, port: int, app: WsgiApp | None = None) -> None:
        self._hosts: set[str] = set()
        handler = None if app is not None else MotoRequestHandler
        if app is None:
            app = guarded(DomainDispatcherApplication(create_backend_app), lambda: self._hosts)
        # Bound here, before werkzeug sees it: a taken port raises OSError in the caller's
        # thread (werkzeug would print a hint and exit the process; moto's server would
        # wait for its thread forever).
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((ADDRESS, port))
            listener.listen()
            self.port = int(listener.getsockname()[1])
            self._server: BaseWSGIServer = make_server(
                ADDRESS,
                self.port,
                app,
                threaded=True,
                request_handler=handler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # the server holds its own duplicate of the socket
        # The SDKs send the address; Step Functions' interpreter calls back to localhost.
        self._hosts.update(self.hosts)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hosts(self) -> set[str]:
        """The Host values this server's own clients send."""
        return {f"{ADDRESS}:{self.port}", f"localhost:{self.port}"}

    @property
    def endpoint_url(self) -> str:
        return f"http://{ADDRESS}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
