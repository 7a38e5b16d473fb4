"""Invoice documents (JSON and PDF) in S3, encrypted with the project's KMS key."""

from __future__ import annotations

from typing import Any

from billing.store.errors import translated


def document_key(account_id: str, period: str, number: str, extension: str) -> str:
    return f"invoices/{account_id}/{period}/{number}.{extension}"


class DocumentStore:
    def __init__(self, client: Any, bucket: str, kms_key_id: str | None = None) -> None:
        self._client = client
        self._bucket = bucket
        self._encryption: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id

    def put(self, key: str, body: bytes, content_type: str) -> None:
        with translated("store invoice document"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                **self._encryption,
            )

    def get(self, key: str) -> bytes:
        with translated("load invoice document"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
