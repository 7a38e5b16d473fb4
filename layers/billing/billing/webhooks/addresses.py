"""Where a webhook URL's host points, checked: what a DNS name resolves to must be public
too (billing.core.webhooks.addresses), at registration and, on AWS, again just before each
POST, which then connects to exactly the addresses it checked (a name that resolves
differently a moment later changes nothing)."""

from __future__ import annotations

import socket
from typing import Final
from urllib.parse import urlsplit

from billing.core.webhooks.addresses import address_refusal
from billing.store.webhook_endpoints import EndpointError

DEFAULT_PORTS: Final = {"https": 443, "http": 80}


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (socket.gaierror, an OSError, if none)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def checked_addresses(host: str, port: int, *, allow_loopback: bool) -> list[str]:
    """The addresses `host` resolves to, if every one may be sent to; EndpointError if
    any may not (one bad address is enough: a resolver may hand out either) or if the host
    does not resolve."""
    try:
        addresses = resolve(host, port)
    except OSError:
        raise EndpointError(f"{host} does not resolve to an address") from None
    for address in addresses:
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal is not None:
            raise EndpointError(f"{host} resolves to {address}, a {refusal} address")
    if not addresses:
        raise EndpointError(f"{host} does not resolve to an address")
    return addresses


def checked_url_addresses(url: str, *, allow_loopback: bool) -> list[str]:
    """checked_addresses for a URL checked_url accepted."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    return checked_addresses(parts.hostname or "", port, allow_loopback=allow_loopback)


def public_connection(host: str, port: int, timeout: float) -> socket.socket:
    """A connection to `host` on one of the addresses it resolves to, all of them checked
    public first (EndpointError if not)."""
    last: OSError | None = None
    for address in checked_addresses(host, port, allow_loopback=False):
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as error:
            last = error
    assert last is not None  # checked_addresses returns at least one address
    raise last


def any_connection(host: str, port: int, timeout: float) -> socket.socket:
    """A connection to `host` wherever it points: the local runtime's (its receivers are on
    127.0.0.1)."""
    return socket.create_connection((host, port), timeout)
