"""The invoice record's conditional writes: the email claim and its release, and the
announcement flag (the outbox) they carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.core.invoice import invoice_number
from billing.settings import INVOICES_TABLE
from billing.store.invoice_store import Claim, InvoiceRecord, InvoiceStore, record_key
from tests.integration.conftest import Aws

ISSUED_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
KEY = ("acct-1", "2026-11")


@pytest.fixture
def store(aws: Aws) -> InvoiceStore:
    return InvoiceStore(aws.dynamodb, aws.tables[INVOICES_TABLE.env_var])


def stored(store: InvoiceStore) -> InvoiceRecord:
    record = store.number([KEY], ISSUED_AT, invoice_number)[KEY]
    return store.mark_stored(
        record,
        total="120.00",
        subtotal="100.00",
        tax="20.00",
        currency="USD",
        json_key="invoices/acct-1/2026-11/x.json",
        pdf_key="invoices/acct-1/2026-11/x.pdf",
        token="store-1",
    )


def raw_item(aws: Aws) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = aws.dynamodb.get_item(
        TableName=aws.tables[INVOICES_TABLE.env_var], Key=record_key(*KEY), ConsistentRead=True
    )["Item"]
    return item


def test_a_stored_record_is_not_announced_until_the_claim_says_so(store: InvoiceStore) -> None:
    record = stored(store)
    assert store.get(*KEY) == record
    assert (record.announced, record.subtotal, record.tax) == (False, "100.00", "20.00")
    assert not record.finished

    claim = store.claim_email(record, ISSUED_AT, "a", announced=True)

    assert claim == Claim(claimed=True, announced=True)
    after = store.get(*KEY)
    assert after is not None
    assert (after.announced, after.email_status) == (True, "sending")
    # The SDK retrying the same claim still finds it its own, announcement and all.
    assert store.claim_email(record, ISSUED_AT, "a", announced=True) == claim
    # Another run's claim gets neither; marking it announced again is refused.
    assert store.claim_email(record, ISSUED_AT, "b", announced=True) == Claim(False, False)
    assert store.mark_announced(record) is False


def test_a_claim_without_the_announcement_leaves_it_to_be_marked_once(
    store: InvoiceStore,
) -> None:
    record = stored(store)

    assert store.claim_email(record, ISSUED_AT, "a") == Claim(claimed=True, announced=False)
    store.email_result(record, "sent", message_id="m-1")
    after = store.get(*KEY)
    assert after is not None
    assert (after.announced, after.email_status, after.finished) == (False, "sent", False)

    assert store.mark_announced(record) is True
    assert store.mark_announced(record) is False
    after = store.get(*KEY)
    assert after is not None
    assert after.finished


def test_a_claim_after_another_write_recorded_the_announcement_does_not_count_it(
    store: InvoiceStore,
) -> None:
    record = stored(store)
    assert store.mark_announced(record) is True

    assert store.claim_email(record, ISSUED_AT, "a", announced=True) == Claim(True, False)


def test_a_record_stored_before_the_flag_existed_counts_as_announced(
    aws: Aws, store: InvoiceStore
) -> None:
    stored(store)
    aws.dynamodb.update_item(
        TableName=aws.tables[INVOICES_TABLE.env_var],
        Key=record_key(*KEY),
        UpdateExpression="REMOVE announced",
    )

    record = store.get(*KEY)

    assert record is not None
    assert record.announced


def test_a_release_with_another_token_changes_nothing(aws: Aws, store: InvoiceStore) -> None:
    # GIVEN B holds the claim (A's was released, then B claimed and is sending)
    record = stored(store)
    assert store.claim_email(record, ISSUED_AT, "token-a").claimed
    store.release_email(record, "token-a")
    assert store.claim_email(record, ISSUED_AT, "token-b").claimed
    before = raw_item(aws)

    # WHEN a late retry of A's release arrives
    store.release_email(record, "token-a")

    # THEN B's claim stands, untouched, and no other sender can take it
    assert raw_item(aws) == before
    assert (before["email_status"]["S"], before["email_token"]["S"]) == ("sending", "token-b")
    assert not store.claim_email(record, ISSUED_AT, "token-c").claimed
    # AND B's own release still works
    store.release_email(record, "token-b")
    assert "email_status" not in raw_item(aws)
