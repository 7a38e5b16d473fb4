"""Invoice documents (JSON and PDF) in S3, encrypted with the project's KMS key.

A document is written once for its invoice number and never replaced: `put_new` writes with
`If-None-Match: *` (the bucket's policy refuses any put without it, and Object Lock keeps
every version besides; docs/infrastructure.md), and an attempt that finds the key taken
gets the stored bytes back to use instead of its own. So what is emailed and announced is
what is stored, byte for byte, whichever of two racing attempts wrote first. S3's 409 while
another conditional write to the key is in flight is retried (S3_CONFLICT), then the key is
read.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from billing.store.errors import StoreError, translated
from billing.store.retry import S3_CONFLICT, Sleep


class _InFlight(Exception):
    """S3 answered 409 ConditionalRequestConflict: another conditional write to the key is
    in flight, and S3 asks for a retry."""


def document_key(account_id: str, period: str, number: str, extension: str) -> str:
    return f"invoices/{account_id}/{period}/{number}.{extension}"


class DocumentStore:
    def __init__(
        self,
        client: Any,
        bucket: str,
        kms_key_id: str | None = None,
        *,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._sleep = sleep
        self._encryption: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id

    def put_new(self, key: str, body: bytes, content_type: str) -> bytes:
        """Store the document unless one is stored under `key` already; the stored bytes
        (`body`, or the ones another attempt wrote first)."""
        try:
            for attempt in S3_CONFLICT.retrying(_InFlight, sleep=self._sleep):
                with attempt:
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
                        if code == "ConditionalRequestConflict":
                            raise _InFlight from error
                        with translated("store invoice document"):
                            raise
            return body
        except _InFlight:
            pass  # the writes in flight have landed by now: read what they wrote
        try:
            return self.get(key)
        except StoreError:
            raise StoreError("store invoice document: ConditionalRequestConflict") from None

    def presigned_get(self, key: str, seconds: int, attachment_name: str) -> str:
        """A link that GETs the document for `seconds`, signed with this client's
        credentials (no request is made; S3 checks them, and the function's role, when the
        link is followed), answered as an attachment named `attachment_name`."""
        params = {
            "Bucket": self._bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{attachment_name}"',
        }
        with translated("sign invoice document link"):
            url: str = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=seconds
            )
        return url

    def get(self, key: str) -> bytes:
        with translated("load invoice document"):
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        return body
