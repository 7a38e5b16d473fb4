"""Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 under the
endpoint's secret over `{webhook-id}.{webhook-timestamp}.{body}`, base64 in
`webhook-signature` as `v1,<signature>`. The secret is `whsec_` and base64 of its bytes,
the form the spec's libraries take, so a receiver verifies with any of them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Final

SECRET_PREFIX: Final = "whsec_"
SECRET_BYTES: Final = 32
SIGNATURE_VERSION: Final = "v1"
# How far a receiver lets `webhook-timestamp` stray from its clock: the spec's suggestion,
# which bounds how long a captured request can be replayed.
TOLERANCE_SECONDS: Final = 5 * 60
ID_HEADER: Final = "webhook-id"
TIMESTAMP_HEADER: Final = "webhook-timestamp"
SIGNATURE_HEADER: Final = "webhook-signature"


class SignatureError(ValueError):
    """A delivery that does not verify: what is wrong with it."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise SignatureError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise SignatureError("a webhook secret is base64 after its prefix") from None


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(
    secret: str | Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three headers; with several secrets (during a rotation's grace window), one
    signature under each, space-separated, as the spec allows: a receiver that knows
    either secret verifies."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a delivery as a receiver would; its `webhook-id` if it verifies. Header names
    are matched without regard to case (HTTP's rule); any one of the space-separated
    signatures may match (a sender rotating its secret sends two)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if h not in lowered]
    if missing:
        raise SignatureError(f"missing header {missing[0]}")
    message_id, stamp = lowered[ID_HEADER], lowered[TIMESTAMP_HEADER]
    if not stamp.isdigit():
        raise SignatureError("webhook-timestamp is not integer seconds")
    if abs(now - int(stamp)) > tolerance:
        raise SignatureError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, message_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, given) for given in lowered[SIGNATURE_HEADER].split()):
        raise SignatureError("no signature matches")
    return message_id
