"""Invoice documents are written once: a second put under an issued document's key keeps
the first (S3's conditional write, If-None-Match: *, which moto honours)."""

from __future__ import annotations

import pytest

from billing.store.documents import DocumentStore, document_key
from tests.integration.conftest import Aws

pytestmark = pytest.mark.integration


def test_a_second_put_of_an_issued_document_leaves_the_first_in_place(aws: Aws) -> None:
    # GIVEN an issued invoice document
    aws.s3.create_bucket(Bucket="documents")
    store = DocumentStore(aws.s3, "documents")
    key = document_key("acct-1", "2026-11", "INV-2026-000001", "json")
    first = store.put_new(key, b'{"total": "120.00"}', "application/json")

    # WHEN a writer puts other bytes under its key (a retry, or a writer gone wrong)
    second = store.put_new(key, b'{"total": "0.00"}', "application/json")

    # THEN the issued document is what is stored (and what the second writer got back to
    # use), and S3 kept no second version
    assert first == second == store.get(key) == b'{"total": "120.00"}'
    versions = aws.s3.list_object_versions(Bucket="documents", Prefix=key).get("Versions", [])
    assert len(versions) == 1
