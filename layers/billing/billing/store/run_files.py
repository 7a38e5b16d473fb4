"""The invoice run's working files in the run bucket: each run's manifest of due batches,
the result of each batch, and the run's full report, under the run's own folder.

The manifest is a JSON array (what a Distributed Map's S3 ItemReader reads with InputType
JSON, on AWS and in moto alike) written as it is produced: in one put when small, else as
a multipart upload of parts of `part_size` bytes, so that listing a million accounts holds
one part in memory, not the list. The bucket's lifecycle deletes a run's files after some
days (stacks/invoicing.py): they are the run's scratch, not records; the invoice records
and documents are.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from billing.store.errors import StoreError, translated

RUNS_PREFIX: Final = "runs/"
MANIFEST_NAME: Final = "manifest.json"
RESULTS_FOLDER: Final = "results/"
REPORT_NAME: Final = "report.json"
# S3's smallest part but the last is 5 MiB; 8 MiB parts keep a million accounts' manifest
# (about 60 MB) to a handful of parts.
PART_SIZE: Final = 8 * 1024 * 1024
# Results are small objects read side by side: S3 answers each in tens of milliseconds.
READERS: Final = 16


def new_prefix(now: datetime) -> str:
    """A fresh folder for one run: its clock, then a random part (a retried first step
    starts a new folder; the one it left is deleted with the rest by the lifecycle)."""
    return f"{RUNS_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}/"


def result_key(prefix: str, index: int) -> str:
    """Where the workflow's RecordBatch state writes batch `index`'s result (the ASL
    builds the same key: tests/unit/test_invoice_run_paths.py)."""
    return f"{prefix}{RESULTS_FOLDER}{index}.json"


class RunFiles:
    def __init__(self, client: Any, bucket: str, *, part_size: int = PART_SIZE) -> None:
        self._client = client
        self.bucket = bucket
        self._part_size = part_size

    def write_manifest(self, prefix: str, elements: Iterable[dict[str, Any]]) -> str:
        """Write `elements` as the run's manifest (a JSON array); its key."""
        key = prefix + MANIFEST_NAME
        upload = _Upload(self._client, self.bucket, key)
        pending = bytearray(b"[")
        try:
            for index, element in enumerate(elements):
                if index:
                    pending += b","
                pending += json.dumps(element, separators=(",", ":")).encode()
                if len(pending) >= self._part_size:
                    upload.part(bytes(pending))
                    pending.clear()
            pending += b"]"
            upload.finish(bytes(pending))
        except BaseException:
            upload.abort()  # parts of an upload never completed are billed until aborted
            raise
        return key

    def manifest(self, key: str) -> list[dict[str, Any]]:
        """The manifest's elements (read only to name the items of a batch that left no
        result, which a run that ended well never does)."""
        elements: list[dict[str, Any]] = json.loads(self._get(key))
        return elements

    def results(self, prefix: str) -> dict[int, Any]:
        """The batches' results written under the run's folder, by batch index (None for
        one that is not JSON; a key not named `<index>.json` is not a result)."""
        indexes = {
            int(name.removesuffix(".json")): key
            for key in self._keys(prefix + RESULTS_FOLDER)
            if (name := key.removeprefix(prefix + RESULTS_FOLDER)).removesuffix(".json").isdigit()
            and name.endswith(".json")
        }
        with ThreadPoolExecutor(READERS) as readers:
            bodies = readers.map(self._get, indexes.values())
            return dict(zip(indexes, map(_json_or_none, bodies), strict=True))

    def put_report(self, prefix: str, report: dict[str, Any]) -> str:
        key = prefix + REPORT_NAME
        with translated("store the run's report"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(report).encode(),
                ContentType="application/json",
            )
        return key

    def _keys(self, prefix: str) -> Iterator[str]:
        listing: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            with translated("list the run's results"):
                page = self._client.list_objects_v2(**listing)
            yield from (item["Key"] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return
            listing["ContinuationToken"] = page["NextContinuationToken"]

    def _get(self, key: str) -> bytes:
        with translated("read a run file"):
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Upload:
    """One object written in one put, or in parts once it is larger than a part."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def part(self, body: bytes) -> None:
        with translated("write the run's manifest"):
            if self._upload_id is None:
                created = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, ContentType="application/json"
                )
                self._upload_id = str(created["UploadId"])
            number = len(self._parts) + 1
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def abort(self) -> None:
        if self._upload_id is None:
            return
        try:
            with translated("abandon the run's manifest"):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
        except StoreError:
            pass  # the bucket's lifecycle aborts it after a day

    def finish(self, body: bytes) -> None:
        if self._upload_id is None:
            with translated("write the run's manifest"):
                self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=body, ContentType="application/json"
                )
            return
        self.part(body)
        with translated("write the run's manifest"):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
