"""Review of issue 12: an issued invoice document cannot be replaced."""

from __future__ import annotations

import pytest

from billing.store.documents import DocumentStore, document_key
from tests.integration.conftest import Aws

pytestmark = pytest.mark.integration


def test_a_delete_marker_lets_put_new_replace_an_issued_document(aws: Aws) -> None:
    aws.s3.create_bucket(Bucket="documents")
    aws.s3.put_bucket_versioning(Bucket="documents", VersioningConfiguration={"Status": "Enabled"})
    store = DocumentStore(aws.s3, "documents")
    key = document_key("acct-1", "2026-11", "INV-2026-000001", "json")
    assert store.put_new(key, b'{"total": "120.00"}', "application/json") == b'{"total": "120.00"}'

    # a principal with s3:DeleteObject (allowed on locked objects: it adds a delete marker)
    aws.s3.delete_object(Bucket="documents", Key=key)
    # ... then a conditional put, as the bucket policy requires
    stored = store.put_new(key, b'{"total": "0.00"}', "application/json")

    assert stored == b'{"total": "120.00"}'
    assert store.get(key) == b'{"total": "120.00"}'
