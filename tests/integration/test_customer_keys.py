"""Customer keys on moto: the key table's conditional writes (billing.store.api_keys), the
throttle keys in the usage plan (billing.store.throttle_keys) and the operator's service
over both (billing.customer.access)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from billing.core.credentials import (
    Credential,
    KeyRecord,
    Kind,
    generate,
    judge,
    portal_throttle_value,
    throttle_value,
)
from billing.customer.access import AccessRefused, CustomerAccess
from billing.settings import CUSTOMER_KEYS_TABLE
from billing.store.api_keys import PURGE_AFTER, ApiKeys, KeyIdTaken, UnknownKey, key_of
from billing.store.errors import StoreError
from billing.store.throttle_keys import ThrottleKeys, ThrottleKeyTaken
from billing_cli.local.provision import create_table

REGION = "us-east-1"
TABLE = "keys"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
API_URL = "https://k9l8m7n6o5.execute-api.us-east-1.amazonaws.com/live/"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_table(dynamodb, CUSTOMER_KEYS_TABLE, TABLE)
        apigateway = boto3.client("apigateway", region_name=REGION)
        plan = apigateway.create_usage_plan(name="customer-keys")["id"]
        yield {"dynamodb": dynamodb, "apigateway": apigateway, "plan": plan}


def record(credential: Credential, account_id: str = "acct-1", **changes: Any) -> KeyRecord:
    return replace(
        KeyRecord(
            key_id=credential.key_id,
            account_id=account_id,
            kind=Kind.KEY,
            secret_hash=credential.secret_hash,
            created_at=NOW,
        ),
        **changes,
    )


# --- the key table ------------------------------------------------------------------------


def test_a_stored_key_reads_back_as_it_was_and_holds_only_the_hash(aws: dict[str, Any]) -> None:
    keys = ApiKeys(aws["dynamodb"], TABLE)
    credential = generate()
    stored = record(credential, name="CI", throttle_key_id="abc123")

    keys.create(stored)

    assert keys.get(credential.key_id) == stored
    item = aws["dynamodb"].get_item(TableName=TABLE, Key=key_of(credential.key_id))["Item"]
    assert credential.secret not in str(item)
    assert item["secret_hash"] == {"S": credential.secret_hash}
    assert item["created_at"] == {"S": "2026-12-03T09:00:00Z"}
    assert "purge_at" not in item  # a key does not expire
    assert keys.get(generate().key_id) is None


def test_a_key_id_already_stored_is_never_written_over(aws: dict[str, Any]) -> None:
    # GIVEN acct-1's key stored
    keys = ApiKeys(aws["dynamodb"], TABLE)
    credential = generate()
    keys.create(record(credential))

    # WHEN another account's key with the same id is stored THEN it is refused
    intruder = Credential(credential.key_id, generate().secret)
    with pytest.raises(KeyIdTaken):
        keys.create(record(intruder, account_id="acct-2"))
    stored = keys.get(credential.key_id)
    assert stored is not None
    assert (stored.account_id, stored.secret_hash) == ("acct-1", credential.secret_hash)


def test_a_portal_credential_expires_and_is_purged_a_month_later(aws: dict[str, Any]) -> None:
    keys = ApiKeys(aws["dynamodb"], TABLE)
    credential = generate()
    expires = NOW + timedelta(hours=12)
    keys.create(record(credential, kind=Kind.PORTAL, expires_at=expires))

    item = aws["dynamodb"].get_item(TableName=TABLE, Key=key_of(credential.key_id))["Item"]
    assert item["expires_at"] == {"S": "2026-12-03T21:00:00Z"}
    assert item["purge_at"] == {"N": str(int((expires + PURGE_AFTER).timestamp()))}
    assert int(item["purge_at"]["N"]) == 1798923600  # 2 January 2027, 21:00 UTC


def test_an_accounts_keys_are_listed_oldest_first_without_hashes(aws: dict[str, Any]) -> None:
    # GIVEN two keys of acct-1 (created out of order) and one of acct-2
    keys = ApiKeys(aws["dynamodb"], TABLE)
    later, earlier, other = generate(), generate(), generate()
    keys.create(record(later, created_at=NOW + timedelta(minutes=5), name="later"))
    keys.create(record(earlier, name="earlier"))
    keys.create(record(other, account_id="acct-2"))

    listed = keys.for_account("acct-1")

    assert [(k.key_id, k.name) for k in listed] == [
        (earlier.key_id, "earlier"),
        (later.key_id, "later"),
    ]
    assert not hasattr(listed[0], "secret_hash")
    assert keys.for_account("acct-3") == []


def test_an_account_with_many_keys_is_listed_whole_across_pages(aws: dict[str, Any]) -> None:
    keys = ApiKeys(aws["dynamodb"], TABLE)
    padding = "x" * 60  # bigger items: the query pages sooner
    made = []
    for minute in range(40):
        credential = generate()
        made.append(credential.key_id)
        keys.create(record(credential, created_at=NOW + timedelta(minutes=minute), name=padding))
    assert [k.key_id for k in keys.for_account("acct-1")] == made


def test_a_revocation_is_set_once_and_says_when(aws: dict[str, Any]) -> None:
    keys = ApiKeys(aws["dynamodb"], TABLE)
    credential = generate()
    keys.create(record(credential))

    first = keys.revoke(credential.key_id, NOW + timedelta(hours=1))
    again = keys.revoke(credential.key_id, NOW + timedelta(hours=2))

    assert first.revoked_now is True
    assert first.record.revoked_at == NOW + timedelta(hours=1)
    assert again.revoked_now is False
    assert again.record.revoked_at == NOW + timedelta(hours=1)  # unchanged
    stored = keys.get(credential.key_id)
    assert stored is not None
    assert stored.revoked_at == NOW + timedelta(hours=1)
    with pytest.raises(UnknownKey, match="no key has the id"):
        keys.revoke(generate().key_id, NOW)


def test_a_table_that_is_not_there_is_a_store_error(aws: dict[str, Any]) -> None:
    keys = ApiKeys(aws["dynamodb"], "missing")
    with pytest.raises(StoreError, match="load key"):
        keys.get(generate().key_id)


# --- throttle keys -------------------------------------------------------------------------


def plan_keys(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = aws["apigateway"].get_usage_plan_keys(usagePlanId=aws["plan"])["items"]
    return {key["name"]: key for key in listed}


def api_key(aws: dict[str, Any], api_key_id: str) -> dict[str, Any]:
    found: dict[str, Any] = aws["apigateway"].get_api_key(apiKey=api_key_id, includeValue=True)
    return found


def test_a_keys_throttle_is_a_new_enabled_api_key_in_the_usage_plan(aws: dict[str, Any]) -> None:
    throttle = ThrottleKeys(aws["apigateway"], aws["plan"])

    created = throttle.create("aaaqeayeaudaocaj", throttle_value("aaaqeayeaudaocaj"), "test")

    key = api_key(aws, created)
    assert (key["enabled"], key["value"]) == (True, "bk-throttle-aaaqeayeaudaocaj")
    assert plan_keys(aws)["aaaqeayeaudaocaj"]["value"] == "bk-throttle-aaaqeayeaudaocaj"
    # a value taken is refused: a new key never gets an old (maybe disabled) throttle
    with pytest.raises(ThrottleKeyTaken):
        throttle.create("aaaqeayeaudaocaj", throttle_value("aaaqeayeaudaocaj"), "test")
    throttle.disable(created)
    assert api_key(aws, created)["enabled"] is False


def test_an_accounts_portal_throttle_is_made_once_and_found_again(aws: dict[str, Any]) -> None:
    throttle = ThrottleKeys(aws["apigateway"], aws["plan"])
    value = portal_throttle_value("acct-1")

    first = throttle.ensure("portal-acct-1", value, "portal")
    throttle.disable(first)  # however it came to be disabled
    again = throttle.ensure("portal-acct-1", value, "portal")

    assert again == first
    assert api_key(aws, first)["enabled"] is True
    assert len(aws["apigateway"].get_api_keys()["items"]) == 1


# --- the operator's service ----------------------------------------------------------------


class KnownAccounts:
    def accounts(self, account_ids: Any) -> dict[str, Any]:
        return {a: object() for a in account_ids if a in {"acct-1", "acct-2"}}


def access_for(aws: dict[str, Any], **overrides: Any) -> CustomerAccess:
    arguments: dict[str, Any] = {
        "keys": ApiKeys(aws["dynamodb"], TABLE),
        "throttle": ThrottleKeys(aws["apigateway"], aws["plan"]),
        "accounts": KnownAccounts(),
        "api_url": API_URL,
        "clock": lambda: NOW + timedelta(microseconds=123),
    }
    return CustomerAccess(**{**arguments, **overrides})


def test_a_created_key_opens_its_account_and_is_throttled_alone(aws: dict[str, Any]) -> None:
    access = access_for(aws)

    issued = access.create_key("acct-1", "CI")

    stored = ApiKeys(aws["dynamodb"], TABLE).get(issued.credential.key_id)
    assert stored == issued.record
    assert stored.created_at == NOW  # to the second
    grant = judge(issued.credential, stored, NOW)
    assert (grant.account_id, grant.kind) == ("acct-1", Kind.KEY)
    assert stored.throttle_key_id is not None
    assert api_key(aws, stored.throttle_key_id)["value"] == grant.usage_identifier


def test_a_drawn_key_id_that_is_taken_is_drawn_again(aws: dict[str, Any]) -> None:
    # GIVEN a key stored under the id the next draw gives, and then a fresh one
    taken, fresh = generate(), generate()
    ApiKeys(aws["dynamodb"], TABLE).create(record(taken, account_id="acct-2"))
    draws = itertools.chain([Credential(taken.key_id, fresh.secret)], [fresh])
    access = access_for(aws, new_credential=lambda: next(draws))

    issued = access.create_key("acct-1")

    assert issued.credential == fresh
    # the throttle made for the taken draw was disabled again
    by_name = {k["name"]: k for k in aws["apigateway"].get_api_keys()["items"]}
    assert by_name[taken.key_id]["enabled"] is False
    assert by_name[fresh.key_id]["enabled"] is True


def test_an_unknown_account_or_a_bad_name_gets_no_key(aws: dict[str, Any]) -> None:
    access = access_for(aws)
    with pytest.raises(AccessRefused, match="account 'acct-9' is not known"):
        access.create_key("acct-9")
    with pytest.raises(AccessRefused, match="1 to 64 characters"):
        access.create_key("acct-1", "x" * 65)
    with pytest.raises(AccessRefused, match="account 'acct-9' is not known"):
        access.create_portal_link("acct-9", 12)
    with pytest.raises(AccessRefused, match="account 'acct-9' is not known"):
        access.list_keys("acct-9")
    assert aws["apigateway"].get_api_keys()["items"] == []


def test_a_portal_link_expires_after_its_hours_and_shares_the_accounts_throttle(
    aws: dict[str, Any],
) -> None:
    access = access_for(aws)

    link, first = access.create_portal_link("acct-1", 12)
    _, second = access.create_portal_link("acct-1", 1)

    assert link == f"{API_URL}portal#account=acct-1&token={first.credential}"
    assert first.record.expires_at == NOW + timedelta(hours=12)
    assert second.record.expires_at == NOW + timedelta(hours=1)
    assert first.record.throttle_key_id == second.record.throttle_key_id
    with pytest.raises(AccessRefused, match="1 to 168 hours"):
        access.create_portal_link("acct-1", 169)


def test_revoking_a_key_disables_its_throttle_and_a_second_time_says_when(
    aws: dict[str, Any],
) -> None:
    access = access_for(aws)
    issued = access.create_key("acct-1")
    throttle_id = issued.record.throttle_key_id
    assert throttle_id is not None

    revoked = access.revoke(issued.credential.key_id)
    again = access.revoke(issued.credential.key_id)

    assert (revoked.revoked_now, again.revoked_now) == (True, False)
    assert again.record.revoked_at == NOW
    assert api_key(aws, throttle_id)["enabled"] is False


def test_revoking_a_portal_link_leaves_the_accounts_other_links_throttled(
    aws: dict[str, Any],
) -> None:
    access = access_for(aws)
    _, first = access.create_portal_link("acct-1", 12)
    access.create_portal_link("acct-1", 12)

    access.revoke(first.credential.key_id)

    assert first.record.throttle_key_id is not None
    assert api_key(aws, first.record.throttle_key_id)["enabled"] is True


@pytest.mark.parametrize(
    ("key_id", "message"),
    [
        ("bk_aaaqeayeaudaocaj_xyz", "give the key id"),
        ("not-an-id", "a key id is 16 characters"),
        ("aaaqeayeaudaocaj", "no key has the id aaaqeayeaudaocaj"),
    ],
)
def test_a_revocation_names_what_it_cannot_revoke(
    aws: dict[str, Any], key_id: str, message: str
) -> None:
    with pytest.raises(AccessRefused, match=message):
        access_for(aws).revoke(key_id)


class FailingKeys(ApiKeys):
    def create(self, record: KeyRecord) -> None:
        raise StoreError("store key: ProvisionedThroughputExceededException")


def test_a_key_that_could_not_be_stored_leaves_its_throttle_disabled(aws: dict[str, Any]) -> None:
    access = access_for(aws, keys=FailingKeys(aws["dynamodb"], TABLE))

    with pytest.raises(StoreError, match="store key"):
        access.create_key("acct-1")

    [orphan] = aws["apigateway"].get_api_keys()["items"]
    assert orphan["enabled"] is False
