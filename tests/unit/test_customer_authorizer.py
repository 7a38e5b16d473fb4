"""The customer API's authorizer (billing.customer.authorizer and its handler), on a key
store in memory: the policy it answers, the refusals, and what it logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billing.core.credentials import (
    Credential,
    KeyRecord,
    Kind,
    generate,
    judge,
    throttle_value,
)
from billing.customer.authorizer import KeyAuthorizer, Unauthorized, allow_policy, stage_arn
from billing_cli.local.lambdas import LocalContext
from functions.customer_authorizer import app as authorizer_app
from tests.support.authorizer import API_ARN, authorizer_event

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class MemoryKeys:
    def __init__(self, *records: KeyRecord) -> None:
        self.records = {record.key_id: record for record in records}
        self.reads: list[str] = []

    def get(self, key_id: str) -> KeyRecord | None:
        self.reads.append(key_id)
        return self.records.get(key_id)


def stored(credential: Credential, **changes: Any) -> KeyRecord:
    fields: dict[str, Any] = {
        "key_id": credential.key_id,
        "account_id": "acct-1",
        "kind": Kind.KEY,
        "secret_hash": credential.secret_hash,
        "created_at": NOW - timedelta(days=1),
    }
    return KeyRecord(**{**fields, **changes})


def bearer(credential: Credential | str) -> str:
    return f"Bearer {credential}"


def test_a_key_is_allowed_every_method_under_v1_of_this_stage_with_its_account() -> None:
    # GIVEN a stored key
    credential = generate()
    authorizer = KeyAuthorizer(
        keys=MemoryKeys(stored(credential)), cache_seconds=60, clock=lambda: NOW
    )

    # WHEN its request is judged
    answer = authorizer.authorize(authorizer_event(bearer(credential)))

    # THEN the policy covers the whole /v1 tree of this API's stage (the answer is kept for
    # the header, whatever route comes next), and the context names the caller
    assert answer == {
        "principalId": credential.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": [f"{API_ARN}/live/*/v1/*"],
                }
            ],
        },
        "context": {"account_id": "acct-1", "key_id": credential.key_id, "kind": "key"},
        "usageIdentifierKey": throttle_value(credential.key_id),
    }


def test_a_portal_link_may_read_and_set_thresholds_only() -> None:
    credential = generate()
    record = stored(credential, kind=Kind.PORTAL, expires_at=NOW + timedelta(hours=12))
    authorizer = KeyAuthorizer(keys=MemoryKeys(record), cache_seconds=60, clock=lambda: NOW)

    answer = authorizer.authorize(authorizer_event(bearer(credential)))

    [statement] = answer["policyDocument"]["Statement"]
    assert statement["Resource"] == [
        f"{API_ARN}/live/GET/v1/*",
        f"{API_ARN}/live/PUT/v1/accounts/*/thresholds",
    ]
    assert answer["context"]["kind"] == "portal"


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "malformed: no Authorization header"),
        ("Basic dXNlcjpwYXNz", "malformed: the Authorization header is not 'Bearer <key>'"),
        ("Bearer bk_x", "malformed: a key id is 16 characters"),
    ],
)
def test_a_missing_or_malformed_header_is_refused_without_a_read(
    authorization: str | None, reason: str
) -> None:
    keys = MemoryKeys()
    authorizer = KeyAuthorizer(keys=keys, cache_seconds=60, clock=lambda: NOW)
    with pytest.raises(Unauthorized, match=reason):
        authorizer.authorize(authorizer_event(authorization))
    assert keys.reads == []


def test_unknown_revoked_and_expired_credentials_are_refused_naming_the_key_id() -> None:
    known, revoked, expired, unknown = generate(), generate(), generate(), generate()
    keys = MemoryKeys(
        stored(known),
        stored(revoked, revoked_at=NOW - timedelta(seconds=1)),
        stored(expired, kind=Kind.PORTAL, expires_at=NOW + timedelta(seconds=59)),
    )
    authorizer = KeyAuthorizer(keys=keys, cache_seconds=60, clock=lambda: NOW)
    cases = {
        unknown: "unknown key",
        revoked: "revoked",
        expired: "expired",  # it would still be kept, by its cache time, after it expired
        Credential(known.key_id, unknown.secret): "wrong secret",
    }
    for credential, reason in cases.items():
        with pytest.raises(Unauthorized, match=reason) as refused:
            authorizer.authorize(authorizer_event(bearer(credential)))
        assert refused.value.key_id == credential.key_id


def test_a_zero_cache_time_honours_a_link_to_its_last_second() -> None:
    credential = generate()
    record = stored(credential, kind=Kind.PORTAL, expires_at=NOW + timedelta(seconds=1))
    authorizer = KeyAuthorizer(keys=MemoryKeys(record), cache_seconds=0, clock=lambda: NOW)
    assert authorizer.authorize(authorizer_event(bearer(credential)))["principalId"]


@pytest.mark.parametrize(
    "method_arn",
    ["", "arn:aws:s3:::bucket/live/GET/v1", "arn:aws:execute-api:us-east-1:1:api", "x/y/z"],
)
def test_a_method_arn_that_is_not_one_is_an_error_not_a_policy(method_arn: str) -> None:
    with pytest.raises(ValueError, match="methodArn"):
        stage_arn(method_arn)


def test_the_policy_is_for_the_stage_of_the_method_arn() -> None:
    arn = "arn:aws:execute-api:eu-west-1:210987654321:zz/live/PUT/v1/accounts/a/thresholds"
    assert stage_arn(arn) == "arn:aws:execute-api:eu-west-1:210987654321:zz/live"
    credential = generate()
    answer = allow_policy(arn, judge(credential, stored(credential), NOW))
    assert answer["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:execute-api:eu-west-1:210987654321:zz/live/*/v1/*"
    ]


# --- the handler --------------------------------------------------------------------------


@pytest.fixture
def handler_keys(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> MemoryKeys:
    caplog.set_level(logging.INFO, logger="customer_authorizer")  # `billing local` lowers it
    keys = MemoryKeys()
    authorizer = KeyAuthorizer(keys=keys, cache_seconds=60, clock=lambda: NOW)
    monkeypatch.setattr(authorizer_app, "service", lambda: authorizer)
    return keys


def logged(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The handler's log lines with their extra fields."""
    return [
        {"message": r.getMessage(), **r.__dict__}
        for r in caplog.records
        if r.name == "customer_authorizer"
    ]


def test_the_handler_answers_the_policy_and_logs_only_the_key_id(
    handler_keys: MemoryKeys, caplog: pytest.LogCaptureFixture
) -> None:
    credential = generate()
    handler_keys.records[credential.key_id] = stored(credential)

    answer = authorizer_app.handler(
        authorizer_event(bearer(credential)), LocalContext("authorizer")
    )  # type: ignore[arg-type]

    assert answer["context"]["account_id"] == "acct-1"
    lines = logged(caplog)
    assert credential.secret not in str(lines)
    assert credential.secret_hash not in str(lines)
    assert [line["message"] for line in lines] == ["key accepted"]
    assert lines[0]["key_id"] == credential.key_id


@pytest.mark.parametrize("tamper", ["secret", "unknown", "malformed"])
def test_the_handler_refuses_with_the_word_api_gateway_turns_into_401(
    handler_keys: MemoryKeys, caplog: pytest.LogCaptureFixture, tamper: str
) -> None:
    # GIVEN a stored key, and a header with a wrong secret, an unknown id or garbage
    credential = generate()
    handler_keys.records[credential.key_id] = stored(credential)
    presented = {
        "secret": str(Credential(credential.key_id, generate().secret)),
        "unknown": str(generate()),
        "malformed": f"bk_{credential.key_id}_{credential.secret[:-1]}",
    }[tamper]

    # WHEN the handler runs THEN it raises exactly "Unauthorized" (API Gateway's 401)
    with pytest.raises(Exception, match=r"^Unauthorized$") as refused:
        authorizer_app.handler(authorizer_event(bearer(presented)), LocalContext("authorizer"))  # type: ignore[arg-type]
    assert type(refused.value) is Exception
    # AND the log says why, with no credential text, secret or hash in it
    [line] = logged(caplog)
    for secret in (presented.split("_", 2)[2], credential.secret, credential.secret_hash):
        assert secret not in str(line)
    assert line["message"] == "key refused"
    assert line["reason"] in {"wrong secret", "unknown key"} or line["reason"].startswith(
        "malformed: "
    )
