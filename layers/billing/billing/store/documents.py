"""Invoice documents (JSON and PDF) in S3, encrypted with the project's KMS key.

A document is written once for its invoice number and never replaced: `put_new` writes with
`If-None-Match: *` (the bucket's policy refuses any put without it, and Object Lock keeps
every version besides; docs/infrastructure.md), and an attempt that finds the key taken
gets the stored bytes back to use instead of its own. So what is emailed and announced is
what is stored, byte for byte, whichever of two racing attempts wrote first.
"""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from billing.store.errors import StoreError, translated

# S3 answers 409 ConditionalRequestConflict while another conditional write to the key is in
# flight, and asks for a retry; after these, the key is read (the other write has landed).
_CONFLICT_ATTEMPTS: Final = 3


def document_key(account_id: str, period: str, number: str, extension: str) -> str:
    return f"invoices/{account_id}/{period}/{number}.{extension}"


class DocumentStore:
    def __init__(self, client: Any, bucket: str, kms_key_id: str | None = None) -> None:
        self._client = client
        self._bucket = bucket
        self._encryption: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id

    def put_new(self, key: str, body: bytes, content_type: str) -> bytes:
        """Store the document unless one is stored under `key` already; the stored bytes
        (`body`, or the ones another attempt wrote first)."""
        for _ in range(_CONFLICT_ATTEMPTS):
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
                code = error.response.get("Error", {}).get("Code", "")
                if code == "PreconditionFailed":
                    return self.get(key)
                if code != "ConditionalRequestConflict":
                    with translated("store invoice document"):
                        raise
                continue
            return body
        try:
            return self.get(key)
        except StoreError:
            raise StoreError("store invoice document: ConditionalRequestConflict") from None

    def get(self, key: str) -> bytes:
        with translated("load invoice document"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
