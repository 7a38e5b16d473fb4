"""Every object of a bucket under a prefix, listed and read whole: what the warehouse's
export reads from the archive, invoice and quarantine buckets (docs/warehouse.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from billing.store.errors import translated


class BucketObjects:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def keys(self, prefix: str) -> Iterator[str]:
        """The keys under `prefix`, in key order, one request per 1,000."""
        with translated(f"list objects under {prefix}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"]

    def get(self, key: str) -> bytes:
        with translated(f"read object {key}"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
