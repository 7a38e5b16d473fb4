"""The quarantine's index as the rater writes it (billing.store.quarantine_index), read the
way `billing rejected list` reads it (billing_cli.quarantine): an entry before every
document, so a rejection whose document is not kept yet is listed only once it is."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from billing_cli.quarantine import QuarantineBrowser
from tests.integration.conftest import Aws
from tests.support.kinesis import shard


def event(event_id: str, meter: str = "nope") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": "acct-3",
        "meter": meter,
        "quantity": 1,
        "timestamp": "2026-11-10T10:00:00Z",
    }


class RefusingKept:
    """S3 that refuses to keep documents under `rejected/` (staging and indexing work)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_object(self, **request: Any) -> Any:
        if request["Key"].startswith("rejected/"):
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")
        return self._client.put_object(**request)


def test_a_rejection_is_listed_once_its_document_is_kept_from_the_staged_copy(
    aws: Aws,
) -> None:
    # GIVEN 3 acct-3 records rejected in a ledger write that landed, their documents not
    # written (S3 refused): indexed and staged, not kept
    service = aws.service()
    service._quarantine._client = RefusingKept(aws.s3)  # type: ignore[attr-defined]
    service.process(shard([event(f"b{i}") for i in range(3)]))
    browser = QuarantineBrowser(aws.s3, aws.bucket)
    entries = browser.entries(account="acct-3")
    assert (len(entries), browser.rows(entries)) == (3, [])

    # WHEN a later write of acct-3 keeps them from their staged copies
    aws.service().process(shard([event("good", meter="api_requests")], first=10**58))

    # THEN each is listed once, with its reason, account and event id
    rows = browser.rows(browser.entries(account="acct-3"))
    assert sorted((r.to_json()["event_id"], r.to_json()["reason"]) for r in rows) == [
        ("b0", "UNKNOWN_METER"),
        ("b1", "UNKNOWN_METER"),
        ("b2", "UNKNOWN_METER"),
    ]
    assert {r.to_json()["account"] for r in rows} == {"acct-3"}


def test_a_record_tied_to_no_account_is_indexed_with_none_and_a_retry_adds_nothing(
    aws: Aws,
) -> None:
    records = shard([b"not json", event("b1")])

    aws.service().process(records)
    aws.service().process(records)  # Lambda's retry of the same batch, at the same time

    browser = QuarantineBrowser(aws.s3, aws.bucket)
    entries = browser.entries()
    assert [(e.reason, e.account_id) for e in entries] == [
        ("UNKNOWN_METER", "acct-3"),
        ("MALFORMED_JSON", None),
    ]
    listing = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="index/")
    assert len(listing["Contents"]) == 2
