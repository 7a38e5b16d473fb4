"""Invoice documents (JSON and PDF) in S3, encrypted with the project's KMS key.

Written once: every put is conditional on the key being free (If-None-Match: *), and the
bucket's policy refuses any put without that condition, so an issued document is never
replaced (Object Lock keeps every version besides; docs/infrastructure.md)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

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
        """Store the document unless one is stored under `key` already: then that one
        stays (a retried step rebuilds the same document from the same record)."""
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                **self._encryption,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return
            with translated("store invoice document"):
                raise

    def get(self, key: str) -> bytes:
        with translated("load invoice document"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
