"""Customer credentials: API keys and portal links (docs/customer-access.md).

A credential is `bk_<key id>_<secret>`: the key id is 16 lowercase base32 characters (80
random bits; it names the key in lists, logs and `billing keys revoke`, and is no secret),
the secret 32 random bytes in URL-safe base64 without padding (43 characters). Only the
SHA-256 of the secret's text is stored; a presented secret is hashed the same way and
compared in constant time. A portal link carries a credential of kind `portal`, which
expires.

Everything here is a function of its arguments: the authorizer judges a credential against
the stored record with `judge`, at the instant it is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from urllib.parse import urlencode

PREFIX: Final = "bk"
KEY_ID_LENGTH: Final = 16
SECRET_BYTES: Final = 32
SECRET_LENGTH: Final = 43  # URL-safe base64 of 32 bytes, without its one "=" of padding
_KEY_ID: Final = re.compile(r"[a-z2-7]{16}")
_SECRET: Final = re.compile(r"[A-Za-z0-9_-]{43}")
# What a credential is at most, so a huge header is refused before any other work.
_MAX_LENGTH: Final = 256
_BEARER: Final = "bearer"

# Portal links: `--hours` from 1 to a week.
DEFAULT_PORTAL_HOURS: Final = 12
MAX_PORTAL_HOURS: Final = 24 * 7
# A key's name: one line of printable text, for the operator's own records.
_NAME: Final = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}")


class MalformedCredential(ValueError):
    """Not a credential at all; the message says which part is wrong (never its text)."""


class Kind(StrEnum):
    KEY = "key"  # an API key: no expiry, until revoked
    PORTAL = "portal"  # a portal link's credential: expires


@dataclass(frozen=True, slots=True)
class Credential:
    key_id: str
    # Kept out of repr: a credential that reaches a log line or a traceback shows its id only.
    secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"{PREFIX}_{self.key_id}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        return secret_hash(self.secret)


def secret_hash(secret: str) -> str:
    """The stored form of a secret: SHA-256 of its text, in hex. The secret is 256 random
    bits, so no salt or slow hash is needed: nothing can be guessed from the digest."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def generate(random_bytes: Callable[[int], bytes] | None = None) -> Credential:
    """A new credential from the operating system's randomness (`secrets`)."""
    draw = random_bytes or secrets.token_bytes
    key_id = base64.b32encode(draw(10)).decode("ascii").lower()  # 80 bits: 16 characters
    secret = base64.urlsafe_b64encode(draw(SECRET_BYTES)).decode("ascii").rstrip("=")
    return Credential(key_id, secret)


def parse(text: str) -> Credential:
    """A credential from its text; MalformedCredential says which part is wrong."""
    if len(text) > _MAX_LENGTH:
        raise MalformedCredential("a key is 64 characters; this is far longer")
    prefix, _, rest = text.partition("_")
    if prefix != PREFIX or not rest:
        raise MalformedCredential(f"a key starts with {PREFIX}_")
    # The key id has no "_"; the secret may (URL-safe base64), so split once only.
    key_id, _, secret = rest.partition("_")
    check_key_id(key_id)
    if not _SECRET.fullmatch(secret):
        raise MalformedCredential(
            f"the secret after the key id is {SECRET_LENGTH} characters of A-Z a-z 0-9 _ -"
        )
    # 43 characters carry 258 bits: the last one's two low bits are not part of the 32
    # bytes. Only the canonical spelling is a credential, so no two texts share a secret.
    decoded = base64.urlsafe_b64decode(secret + "=")
    if base64.urlsafe_b64encode(decoded).decode("ascii").rstrip("=") != secret:
        raise MalformedCredential("the secret is not one a key was issued with")
    return Credential(key_id, secret)


def check_key_id(key_id: str) -> str:
    if not _KEY_ID.fullmatch(key_id):
        raise MalformedCredential(
            f"a key id is {KEY_ID_LENGTH} characters of a-z and 2-7 (as `billing keys list` "
            "shows it)"
        )
    return key_id


def from_authorization(header: str | None) -> Credential:
    """The credential of an `Authorization: Bearer <credential>` header."""
    if not header:
        raise MalformedCredential("no Authorization header")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != _BEARER or not value.strip():
        raise MalformedCredential("the Authorization header is not 'Bearer <key>'")
    return parse(value.strip())


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError("a key's name is 1 to 64 characters on one line")
    return name


def portal_hours(hours: int) -> timedelta:
    if not 1 <= hours <= MAX_PORTAL_HOURS:
        raise ValueError(f"a portal link lasts 1 to {MAX_PORTAL_HOURS} hours, not {hours}")
    return timedelta(hours=hours)


def portal_link(api_url: str, account_id: str, credential: Credential) -> str:
    """The customer API's portal page with the account and the credential in the URL's
    fragment: a browser never sends a fragment to any server (nor in a Referer), and the
    page removes it from the address bar and history once it has read it."""
    fragment = urlencode({"account": account_id, "token": str(credential)})
    return f"{api_url.rstrip('/')}/portal#{fragment}"


def stored_instant(at: datetime) -> str:
    """An aware instant as stored: UTC, whole seconds, 'Z' (one length, so text order is
    time order in the account index)."""
    if at.tzinfo is None:
        raise ValueError("an instant must be aware")
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- throttling: the API Gateway API key each credential is counted under ---------------

THROTTLE_KEY_PREFIX: Final = "bk-throttle-"
PORTAL_THROTTLE_PREFIX: Final = "bk-portal-"


def throttle_value(key_id: str) -> str:
    """The value of the API Gateway API key a key's requests are throttled under. It is not
    a secret: with the API key source AUTHORIZER, API Gateway takes it only from the
    authorizer's answer, never from a request (API Gateway wants 20 characters or more)."""
    return f"{THROTTLE_KEY_PREFIX}{key_id}"


def portal_throttle_value(account_id: str) -> str:
    """The one API key an account's portal links share (links are short-lived and many;
    a key each would pile up in API Gateway): the account id's digest, so any characters
    an account id may have make a valid key value."""
    return f"{PORTAL_THROTTLE_PREFIX}{hashlib.sha256(account_id.encode()).hexdigest()[:40]}"


# --- judging a presented credential ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A credential as stored (billing.store.api_keys): never its secret, only its hash."""

    key_id: str
    account_id: str
    kind: Kind
    secret_hash: str = field(repr=False)
    created_at: datetime
    name: str | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    # API Gateway's id of the API key its requests are throttled under (to disable it).
    throttle_key_id: str | None = None

    @property
    def usage_identifier(self) -> str:
        if self.kind is Kind.PORTAL:
            return portal_throttle_value(self.account_id)
        return throttle_value(self.key_id)


@dataclass(frozen=True, slots=True)
class KeySummary:
    """What `billing keys list` shows of a credential: never its secret nor its hash."""

    key_id: str
    account_id: str
    kind: Kind
    created_at: datetime
    name: str | None = None
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    def status(self, at: datetime) -> str:
        if self.revoked_at is not None and self.revoked_at <= at:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def to_json(self, at: datetime) -> dict[str, str | None]:
        def instant(value: datetime | None) -> str | None:
            return stored_instant(value) if value is not None else None

        return {
            "key_id": self.key_id,
            "account_id": self.account_id,
            "kind": str(self.kind),
            "name": self.name,
            "created_at": instant(self.created_at),
            "revoked_at": instant(self.revoked_at),
            "expires_at": instant(self.expires_at),
            "status": self.status(at),
        }


class Refused(Exception):
    """A well-formed credential that opens nothing; the reason is for logs, never callers."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Who is asking, as the authorizer tells the customer API."""

    account_id: str
    key_id: str
    kind: Kind
    usage_identifier: str

    def context(self) -> dict[str, str]:
        return {"account_id": self.account_id, "key_id": self.key_id, "kind": str(self.kind)}


def judge(
    credential: Credential,
    record: KeyRecord | None,
    at: datetime,
    *,
    honoured_for: timedelta = timedelta(0),
) -> Grant:
    """The grant a credential gives at `at`, or Refused.

    `honoured_for` is how long the answer may be reused (the authorizer's cache time): a
    credential that expires before then is refused now, so no cached answer lets an
    expired portal link in."""
    if record is None or record.key_id != credential.key_id:
        raise Refused("unknown key")
    # Constant time: how much of the hash matched never shows in how long it took.
    if not hmac.compare_digest(record.secret_hash, credential.secret_hash):
        raise Refused("wrong secret")
    if record.revoked_at is not None and record.revoked_at <= at:
        raise Refused("revoked")
    if record.expires_at is not None and record.expires_at <= at + honoured_for:
        raise Refused("expired")
    return Grant(record.account_id, record.key_id, record.kind, record.usage_identifier)
