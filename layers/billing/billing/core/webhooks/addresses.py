"""Which network addresses a webhook may be sent to: public ones only. An endpoint on a
loopback, private, link-local (the instance metadata address 169.254.169.254 among them)
or otherwise reserved address is no integrator's receiver, and a signed POST there from
inside AWS could reach what only the deployment should; the local runtime alone may send
to loopback, where its receivers run (docs/webhooks.md)."""

from __future__ import annotations

import ipaddress
from typing import Final

# Names every resolver maps to the loopback address (RFC 6761).
LOOPBACK_NAME: Final = "localhost"


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why a webhook may not go to this IP address ("loopback", "private", ...), or None
    if it may. `address` is a literal IPv4 or IPv6 address (ValueError otherwise)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0: the zone is no part
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "reserved"
    return None


def host_refusal(host: str, *, allow_loopback: bool) -> str | None:
    """Why a URL's host, as written, may not be sent to (see address_refusal), or None if
    it may or if only resolving it will tell (a DNS name)."""
    name = host.lower().rstrip(".")
    if name == LOOPBACK_NAME or name.endswith(f".{LOOPBACK_NAME}"):
        return None if allow_loopback else "loopback"
    try:
        return address_refusal(name, allow_loopback=allow_loopback)
    except ValueError:
        return None  # a DNS name
