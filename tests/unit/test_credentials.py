"""Customer credentials: their form, what a malformed one is told, the stored hash, and the
judgement of a presented credential against its record (billing.core.credentials)."""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from billing.core.credentials import (
    Credential,
    KeyRecord,
    KeySummary,
    Kind,
    MalformedCredential,
    Refused,
    check_name,
    from_authorization,
    generate,
    judge,
    parse,
    portal_hours,
    portal_link,
    portal_throttle_value,
    secret_hash,
    stored_instant,
    throttle_value,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def fixed_random(size: int) -> bytes:
    """0x00, 0x01, ... : a credential the test can spell by hand."""
    return bytes(range(size))


# --- form --------------------------------------------------------------------------------


def test_a_generated_credential_has_a_base32_id_and_a_43_character_secret() -> None:
    # GIVEN bytes 0..9 for the id and 0..31 for the secret
    credential = generate(fixed_random)

    # THEN base32 of 00 01 .. 09, lowercased; URL-safe base64 of 00 .. 1f without "="
    assert credential.key_id == "aaaqeayeaudaocaj"
    assert credential.secret == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
    assert str(credential) == f"bk_{credential.key_id}_{credential.secret}"
    assert parse(str(credential)) == credential


def test_generated_credentials_differ_and_parse_back() -> None:
    drawn = [generate() for _ in range(50)]
    assert len({c.key_id for c in drawn}) == 50
    for credential in drawn:
        assert parse(str(credential)) == credential


def test_a_secret_with_underscores_parses_whole() -> None:
    # the secret's alphabet has "_" (and "-"): only the first two "_" separate parts
    secret = "_" * 42 + "A"
    credential = parse(f"bk_aaaqeayeaudaocaj_{secret}")
    assert credential == Credential("aaaqeayeaudaocaj", secret)


def test_the_secret_never_shows_in_repr() -> None:
    credential = generate(fixed_random)
    assert credential.secret not in repr(credential)
    record = KeyRecord(
        key_id=credential.key_id,
        account_id="acct-1",
        kind=Kind.KEY,
        secret_hash=credential.secret_hash,
        created_at=NOW,
    )
    assert credential.secret_hash not in repr(record)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "a key starts with bk_"),
        ("bk_", "a key starts with bk_"),
        ("BK_aaaqeayeaudaocaj_" + "A" * 43, "a key starts with bk_"),
        ("sk_aaaqeayeaudaocaj_" + "A" * 43, "a key starts with bk_"),
        ("bk_aaaqeayeaudaoca_" + "A" * 43, "a key id is 16 characters of a-z and 2-7"),
        ("bk_AAAQEAYEAUDAOCAJ_" + "A" * 43, "a key id is 16 characters of a-z and 2-7"),
        ("bk_aaaqeayeaudaoca1_" + "A" * 43, "a key id is 16 characters of a-z and 2-7"),
        ("bk_aaaqeayeaudaocaj", "the secret after the key id is 43 characters"),
        ("bk_aaaqeayeaudaocaj_" + "A" * 42, "the secret after the key id is 43 characters"),
        ("bk_aaaqeayeaudaocaj_" + "A" * 44, "the secret after the key id is 43 characters"),
        ("bk_aaaqeayeaudaocaj_" + "A" * 42 + "=", "the secret after the key id is 43"),
        ("bk_aaaqeayeaudaocaj_" + "A" * 42 + "+", "the secret after the key id is 43"),
        # the last character's two low bits are not part of 32 bytes: "B" spells what "A" does
        ("bk_aaaqeayeaudaocaj_" + "A" * 42 + "B", "the secret is not one a key was issued"),
        ("bk_" + "a" * 300, "a key is 64 characters; this is far longer"),
    ],
)
def test_a_malformed_credential_is_told_which_part_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(MalformedCredential, match=reason) as refused:
        parse(text)
    # the message never repeats what was given
    if len(text) > 20:
        assert text[3:] not in str(refused.value)


def test_every_credential_text_is_the_one_spelling_of_its_secret() -> None:
    # 43 base64 characters carry 258 bits: only 1 in 4 last characters is canonical
    accepted = []
    for last in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        with contextlib.suppress(MalformedCredential):
            accepted.append(parse(f"bk_aaaqeayeaudaocaj_{'A' * 42}{last}").secret[-1])
    assert accepted == list("AEIMQUYcgkosw048")  # the 16 of 64 whose two low bits are 0


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no Authorization header"),
        ("", "no Authorization header"),
        ("bk_aaaqeayeaudaocaj_" + "A" * 43, "is not 'Bearer <key>'"),
        ("Basic dXNlcjpwYXNz", "is not 'Bearer <key>'"),
        ("Bearer", "is not 'Bearer <key>'"),
        ("Bearer   ", "is not 'Bearer <key>'"),
        ("Bearer bk_nope", "a key id is 16 characters"),
    ],
)
def test_an_authorization_header_without_a_bearer_credential_is_malformed(
    header: str | None, reason: str
) -> None:
    with pytest.raises(MalformedCredential, match=reason):
        from_authorization(header)


def test_the_bearer_scheme_is_read_whatever_its_case() -> None:
    credential = generate(fixed_random)
    assert from_authorization(f"bearer {credential}") == credential
    assert from_authorization(f"  BEARER {credential} ") == credential


def test_the_stored_hash_is_the_sha256_of_the_secrets_text() -> None:
    credential = generate(fixed_random)
    expected = hashlib.sha256(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").hexdigest()
    assert credential.secret_hash == secret_hash(credential.secret) == expected
    assert len(expected) == 64


def test_throttle_values_are_long_enough_for_api_gateway_and_per_key_or_account() -> None:
    assert throttle_value("aaaqeayeaudaocaj") == "bk-throttle-aaaqeayeaudaocaj"
    portal = portal_throttle_value("acct-1")
    digest = hashlib.sha256(b"acct-1").hexdigest()[:40]
    assert portal == f"bk-portal-{digest}"
    assert portal != portal_throttle_value("acct-2")
    assert min(len(throttle_value("a" * 16)), len(portal)) >= 20


def test_a_portal_link_carries_the_credential_in_its_fragment() -> None:
    credential = generate(fixed_random)
    link = portal_link(
        "https://abc.execute-api.us-east-1.amazonaws.com/live/", "acct.1_x-Y", credential
    )
    assert link == (
        f"https://abc.execute-api.us-east-1.amazonaws.com/live/portal#account=acct.1_x-Y&token={credential}"
    )


@pytest.mark.parametrize("hours", [0, -1, 169])
def test_a_portal_link_lasts_an_hour_to_a_week(hours: int) -> None:
    with pytest.raises(ValueError, match="a portal link lasts 1 to 168 hours"):
        portal_hours(hours)
    assert portal_hours(168) == timedelta(days=7)


@pytest.mark.parametrize("name", ["", "a" * 65, "two\nlines", "tab\there"])
def test_a_key_name_is_one_short_line(name: str) -> None:
    with pytest.raises(ValueError, match="1 to 64 characters on one line"):
        check_name(name)
    assert check_name("CI on main — deploys") == "CI on main — deploys"


def test_instants_are_stored_in_utc_to_the_second() -> None:
    paris = datetime(2026, 12, 3, 10, 0, 1, 999_999).astimezone(UTC)
    assert stored_instant(paris.replace(tzinfo=UTC)) == "2026-12-03T10:00:01Z"
    with pytest.raises(ValueError, match="aware"):
        stored_instant(datetime(2026, 12, 3))


# --- judgement --------------------------------------------------------------------------


def record_for(credential: Credential, **changes: object) -> KeyRecord:
    fields: dict[str, object] = {
        "key_id": credential.key_id,
        "account_id": "acct-1",
        "kind": Kind.KEY,
        "secret_hash": credential.secret_hash,
        "created_at": NOW - timedelta(days=1),
    }
    return KeyRecord(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_stored_key_grants_its_account_and_its_own_throttle() -> None:
    credential = generate()
    grant = judge(credential, record_for(credential), NOW)
    assert grant.context() == {"account_id": "acct-1", "key_id": credential.key_id, "kind": "key"}
    assert grant.usage_identifier == throttle_value(credential.key_id)


def test_a_portal_credential_is_throttled_under_its_accounts_portal_key() -> None:
    credential = generate()
    record = record_for(credential, kind=Kind.PORTAL, expires_at=NOW + timedelta(hours=12))
    grant = judge(credential, record, NOW)
    assert grant.kind is Kind.PORTAL
    assert grant.usage_identifier == portal_throttle_value("acct-1")


def test_an_unknown_key_or_a_wrong_secret_is_refused() -> None:
    credential = generate()
    with pytest.raises(Refused, match="unknown key"):
        judge(credential, None, NOW)
    other = generate()
    with pytest.raises(Refused, match="wrong secret"):
        judge(Credential(credential.key_id, other.secret), record_for(credential), NOW)
    # a record of another key id (which the store never returns) is no match either
    with pytest.raises(Refused, match="unknown key"):
        judge(other, record_for(credential), NOW)


def test_one_changed_character_of_the_secret_or_the_id_is_refused() -> None:
    credential = generate(fixed_random)
    record = record_for(credential)
    text = str(credential)
    for position in (5, len(text) - 10):  # in the key id; in the secret
        changed = text[:position] + ("b" if text[position] != "b" else "c") + text[position + 1 :]
        tampered = parse(changed)
        with pytest.raises(Refused):
            judge(tampered, record if tampered.key_id == credential.key_id else None, NOW)


def test_a_revoked_key_is_refused_from_its_revocation_on() -> None:
    credential = generate()
    record = record_for(credential, revoked_at=NOW)
    with pytest.raises(Refused, match="revoked"):
        judge(credential, record, NOW)
    assert judge(credential, record, NOW - timedelta(seconds=1)).account_id == "acct-1"


def test_a_portal_link_is_refused_once_an_answer_kept_for_the_cache_time_would_outlive_it() -> None:
    # GIVEN a link that expires in 90 s, judged for an answer kept 60 s
    credential = generate()
    record = record_for(credential, kind=Kind.PORTAL, expires_at=NOW + timedelta(seconds=90))
    keep = timedelta(seconds=60)
    assert judge(credential, record, NOW, honoured_for=keep).kind is Kind.PORTAL
    # THEN 30 s later, when a kept answer would last past its expiry, it is refused
    with pytest.raises(Refused, match="expired"):
        judge(credential, record, NOW + timedelta(seconds=30), honoured_for=keep)
    with pytest.raises(Refused, match="expired"):
        judge(credential, record, NOW + timedelta(seconds=90))


def test_what_a_list_shows_holds_no_secret_and_says_the_status() -> None:
    summary = KeySummary(
        key_id="aaaqeayeaudaocaj",
        account_id="acct-1",
        kind=Kind.PORTAL,
        created_at=NOW,
        name="portal link",
        expires_at=NOW + timedelta(hours=12),
    )
    assert summary.to_json(NOW) == {
        "key_id": "aaaqeayeaudaocaj",
        "account_id": "acct-1",
        "kind": "portal",
        "name": "portal link",
        "created_at": "2026-12-03T09:00:00Z",
        "revoked_at": None,
        "expires_at": "2026-12-03T21:00:00Z",
        "status": "active",
    }
    assert summary.status(NOW + timedelta(hours=12)) == "expired"
