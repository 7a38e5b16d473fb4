"""How the operator API judges a write's precondition headers against the item read, and
its page tokens: no AWS, the service's pure parts."""

from __future__ import annotations

import hashlib

import pytest

from billing.core.catalog import parse_catalog
from billing.operator.config_api import Precondition, page_token, start_key
from billing.operator.errors import Conflict, Invalid, PreconditionRequired
from billing.store.config_store import Versioned

DOCUMENT = '{"meters":[],"plans":[]}'
# sha256 of the document, its first 32 hex digits
VERSION = hashlib.sha256(DOCUMENT.encode()).hexdigest()[:32]


def read() -> Versioned:  # type: ignore[type-arg]
    return Versioned(parse_catalog({"meters": [], "plans": []}), DOCUMENT)


def test_the_version_is_the_document_s_digest() -> None:
    assert read().version == VERSION


@pytest.mark.parametrize("tag", [f'"{VERSION}"', VERSION, f' "{VERSION}" '])
def test_if_match_with_the_version_read_holds(tag: str) -> None:
    Precondition(if_match=tag).judge(read(), "the catalog")


@pytest.mark.parametrize(
    ("precondition", "stored", "refusal", "message"),
    [
        (Precondition(), True, PreconditionRequired, "writing the catalog needs If-Match"),
        (Precondition(if_match='"0"'), True, Conflict, "the catalog changed since version 0"),
        (Precondition(if_match=f'W/"{VERSION}"'), True, Conflict, "the catalog changed since"),
        (Precondition(if_match="*"), True, Invalid, "If-Match: give the version (ETag) read"),
        (Precondition(if_match='"0"'), False, Conflict, "the catalog is not stored"),
        (Precondition(if_none_match="*"), True, Conflict, "the catalog is already stored"),
        (Precondition(if_none_match='"x"'), False, Invalid, "If-None-Match: only * is taken"),
        (Precondition('"a"', "*"), False, Invalid, "give one of If-Match"),
    ],
)
def test_a_precondition_that_does_not_hold_is_refused(
    precondition: Precondition, stored: bool, refusal: type[Exception], message: str
) -> None:
    with pytest.raises(refusal) as refused:
        precondition.judge(read() if stored else None, "the catalog")
    assert str(refused.value).startswith(message), str(refused.value)


def test_if_none_match_holds_when_nothing_is_stored() -> None:
    Precondition(if_none_match="*").judge(None, "the catalog")


def test_a_page_token_gives_back_the_key_it_was_made_of() -> None:
    key = {"pk": {"S": "ACCOUNT#acct-1"}, "sk": {"S": "PROFILE"}}

    assert start_key(page_token(key)) == key
    assert page_token(None) is None
    assert start_key(None) is None


@pytest.mark.parametrize("token", ["x", "WzFd", "bnVsbA", "!!!"])
def test_a_token_the_api_did_not_give_is_refused(token: str) -> None:
    with pytest.raises(Invalid, match="next: is not a page token this API gave"):
        start_key(token)
