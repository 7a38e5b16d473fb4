"""The S3 calls the invoice run's files make (billing.store.run_files), in memory, every
call counted: for the unit tests of the manifest and the report, and the benchmarks."""

from __future__ import annotations

import hashlib
from typing import Any


class FakeS3:
    """The S3 calls RunFiles makes, kept in memory, with every call counted."""

    def __init__(self, *, keep_parts: bool = True, page_size: int = 2) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, list[bytes]] = {}
        self.calls: list[str] = []
        self.largest_part = 0
        # keys a listing page holds (S3's is 1,000; two by default, so paging is exercised)
        self.page_size = page_size
        # Without keeping parts (to measure the writer's memory, not the fake's), what was
        # uploaded is known by its digest and size only.
        self.keep_parts = keep_parts
        self.uploaded = hashlib.sha256()
        self.uploaded_bytes = 0

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.calls.append("put_object")
        self.objects[request["Key"]] = request["Body"]
        return {}

    def create_multipart_upload(self, **request: Any) -> dict[str, Any]:
        self.calls.append("create_multipart_upload")
        self.uploads[request["Key"]] = []
        return {"UploadId": request["Key"]}

    def upload_part(self, **request: Any) -> Any:
        self.calls.append("upload_part")
        parts, body, number = (
            self.uploads[request["UploadId"]],
            request["Body"],
            request["PartNumber"],
        )
        assert number == len(parts) + 1
        parts.append(body if self.keep_parts else b"")
        self.uploaded.update(body)
        self.uploaded_bytes += len(body)
        self.largest_part = max(self.largest_part, len(body))
        return {"ETag": f'"{number}"'}

    def complete_multipart_upload(self, **request: Any) -> Any:
        self.calls.append("complete_multipart_upload")
        upload = request["UploadId"]
        assert [p["PartNumber"] for p in request["MultipartUpload"]["Parts"]] == list(
            range(1, len(self.uploads[upload]) + 1)
        )
        self.objects[upload] = b"".join(self.uploads.pop(upload))
        return {}

    def abort_multipart_upload(self, **request: Any) -> Any:
        self.calls.append("abort_multipart_upload")
        self.uploads.pop(request["UploadId"])
        return {}

    def get_object(self, **request: Any) -> dict[str, Any]:
        class Body:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def read(self) -> bytes:
                return self.data

        return {"Body": Body(self.objects[request["Key"]])}

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        keys = sorted(k for k in self.objects if k.startswith(request["Prefix"]))
        start = int(request.get("ContinuationToken", 0))
        page = keys[start : start + self.page_size]
        more = start + self.page_size < len(keys)
        return {
            "Contents": [{"Key": k} for k in page],
            "IsTruncated": more,
            **({"NextContinuationToken": str(start + self.page_size)} if more else {}),
        }
