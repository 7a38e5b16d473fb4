"""The invoice run's files: the manifest streamed to S3 in bounded memory (one part at a
time, in parts once it outgrows one), read back element for element, and the Report step
naming every account of a batch that left no result, with its output kept small."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from billing.invoicing.due import BATCH_SIZE, _Counted
from billing.invoicing.report import NAMES_BUDGET, NO_RESULT, ReportRun
from billing.invoicing.steps import Item
from billing.store.run_files import RunFiles, new_prefix, result_key
from tests.integration.conftest import NOW
from tests.support.s3_memory import FakeS3


def items(count: int) -> Iterator[Item]:
    for n in range(count):
        yield Item(account_id=f"acct-{n:07d}", period="2026-11")


def test_a_small_manifest_is_one_put_of_a_json_array_of_batches() -> None:
    s3 = FakeS3()
    counted = _Counted()
    key = RunFiles(s3, "runs").write_manifest("runs/r1/", counted.batches_of(items(100)))

    assert key == "runs/r1/manifest.json"
    assert s3.calls == ["put_object"]
    manifest = json.loads(s3.objects[key])
    # 100 items: one batch of 99 (one numbering transaction) and one of 1
    assert [len(batch["items"]) for batch in manifest] == [99, 1]
    assert manifest[1] == {"items": [{"account_id": "acct-0000099", "period": "2026-11"}]}
    assert (counted.batches, counted.items) == (2, 100)


def test_a_large_manifest_streams_in_parts_holding_about_one_part_in_memory() -> None:
    # GIVEN 200,000 due items produced one by one (~9.8 MB of manifest), and 256 KiB parts
    s3 = FakeS3(keep_parts=False)
    part_size = 256 * 1024
    files = RunFiles(s3, "runs", part_size=part_size)
    counted = _Counted()

    # WHEN the manifest is written, its memory traced
    tracemalloc.start()
    files.write_manifest("runs/r1/", counted.batches_of(items(200_000)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # THEN it went up in ~38 parts, none much larger than a part, and the writer never held
    # more than a few parts' worth (never the whole, 37 times a part)
    assert s3.uploaded_bytes > 37 * part_size
    assert s3.calls.count("upload_part") == -(-s3.uploaded_bytes // part_size)
    assert s3.largest_part < part_size + 8 * 1024  # a part, and at most one batch beyond it
    assert peak < 4 * part_size, peak
    # AND it is the JSON array of every item in batches of 99, in order (built here anew)
    expected = hashlib.sha256(b"[")
    for n, start in enumerate(range(0, 200_000, BATCH_SIZE)):
        batch = [
            {"account_id": f"acct-{i:07d}", "period": "2026-11"}
            for i in range(start, min(start + BATCH_SIZE, 200_000))
        ]
        expected.update(
            (b"," if n else b"")
            + json.dumps({"items": batch}).replace(", ", ",").replace(": ", ":").encode()
        )
    expected.update(b"]")
    assert s3.uploaded.hexdigest() == expected.hexdigest()
    assert (counted.batches, counted.items) == (2021, 200_000)


def test_a_manifest_that_fails_half_way_aborts_its_upload() -> None:
    s3 = FakeS3()

    def failing() -> Iterator[dict[str, Any]]:
        yield {"items": [{"account_id": "a" * 2000, "period": "2026-11"}]}
        raise RuntimeError("the index could not be read")

    with pytest.raises(RuntimeError):
        RunFiles(s3, "runs", part_size=1024).write_manifest("runs/r1/", failing())
    assert s3.calls == ["create_multipart_upload", "upload_part", "abort_multipart_upload"]
    assert s3.uploads == {}
    assert s3.objects == {}


def test_each_run_gets_its_own_folder_named_by_its_clock() -> None:
    first, second = new_prefix(NOW), new_prefix(NOW)
    assert first != second
    assert first.startswith("runs/20261201T060000Z-")
    assert first.endswith("/")
    assert result_key(first, 12) == f"{first}results/12.json"


# --- the Report step over the run's files -------------------------------------------------


class QuietLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append(message)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        pass

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        pass


def report_input(batches: int) -> dict[str, Any]:
    return {
        "folder": {"bucket": "runs", "prefix": "runs/r1/"},
        "manifest": {"bucket": "runs", "key": "runs/r1/manifest.json"},
        "batches": batches,
        "skipped": 3,
    }


def done(issued: int) -> bytes:
    result = {
        "issued": issued,
        "skipped": 0,
        "emailed": issued,
        "failed": [],
        "undelivered": [],
        "send_failed": [],
    }
    return json.dumps(result).encode()


def test_a_batch_that_left_no_result_has_each_of_its_accounts_named_from_the_manifest() -> None:
    # GIVEN three batches in the manifest, and results for the first and the third only
    s3 = FakeS3()
    files = RunFiles(s3, "runs")
    files.write_manifest("runs/r1/", _Counted().batches_of(items(2 * 99 + 5)))
    s3.objects[result_key("runs/r1/", 0)] = done(99)
    s3.objects[result_key("runs/r1/", 2)] = done(5)

    # WHEN the Report step reads them
    answer = ReportRun(files=files, log=QuietLog()).handle(report_input(3))

    # THEN the second batch's 99 accounts are failed by name, the rest counted
    assert (answer["issued"], answer["emailed"], answer["skipped"]) == (104, 104, 3)
    assert answer["failed"] == 99
    assert {f["error"] for f in answer["failures"]} == {NO_RESULT}
    assert [f["account_id"] for f in answer["failures"]] == [
        f"acct-{n:07d}" for n in range(99, 198)
    ]
    # AND the whole report is stored beside the results
    assert answer["report"] == {"bucket": "runs", "key": "runs/r1/report.json"}
    assert json.loads(s3.objects["runs/r1/report.json"])["failed"] == 99


def test_a_report_with_more_names_than_a_state_holds_is_truncated_and_stored_whole() -> None:
    # GIVEN 30 batches whose every account failed with a long reason
    s3 = FakeS3()
    files = RunFiles(s3, "runs")
    for index in range(30):
        failed = [
            {
                "account_id": f"acct-{index}-{n}",
                "period": "2026-11",
                "error": "E",
                "reason": "r" * 900,
            }
            for n in range(99)
        ]
        body = {"issued": 0, "skipped": 0, "emailed": 0, "failed": failed}
        s3.objects[result_key("runs/r1/", index)] = json.dumps(
            {**body, "undelivered": [], "send_failed": []}
        ).encode()

    # WHEN the Report step reads them
    answer = ReportRun(files=files, log=QuietLog()).handle(report_input(30))

    # THEN its output stays within the budget, says so, and the stored report has all 2,970
    assert answer["failed"] == 2970
    assert answer["truncated"] is True
    assert 0 < len(answer["failures"]) < 2970
    assert len(json.dumps(answer)) < NAMES_BUDGET + 1024
    stored = json.loads(s3.objects["runs/r1/report.json"])
    assert len(stored["failures"]) == 2970


def test_a_result_that_is_not_a_batchs_is_named_failed_from_the_manifest() -> None:
    # GIVEN two batches, the first's result not JSON, the second's not a result's shape,
    # and a stray object in the results folder
    s3 = FakeS3()
    files = RunFiles(s3, "runs")
    files.write_manifest("runs/r1/", _Counted().batches_of(items(100)))
    s3.objects[result_key("runs/r1/", 0)] = b"{not json"
    s3.objects[result_key("runs/r1/", 1)] = b'{"issued": "many"}'
    s3.objects["runs/r1/results/notes.txt"] = b"hello"

    # WHEN the Report step reads them
    answer = ReportRun(files=files, log=QuietLog()).handle(report_input(2))

    # THEN every account of both batches is failed by name, and the report is written
    assert answer["failed"] == 100
    assert {f["error"] for f in answer["failures"]} == {"BatchResultUnreadable"}
    assert answer["report"] == {"bucket": "runs", "key": "runs/r1/report.json"}


def test_the_stored_report_and_the_steps_output_hold_no_email_address() -> None:
    # GIVEN a batch whose Send step had an address refused and an email fail naming it
    s3 = FakeS3()
    files = RunFiles(s3, "runs")
    result = {
        "issued": 2,
        "skipped": 0,
        "emailed": 0,
        "failed": [],
        "undelivered": [
            {
                "account_id": "acct-1",
                "period": "2026-11",
                "invoice_number": "INV-2026-000001",
                "reason": "send invoice email: BadRequestException: <ap@one.example> bounced",
            }
        ],
        "send_failed": [
            {
                "account_id": "acct-2",
                "period": "2026-11",
                "invoice_number": "INV-2026-000002",
                "error": "DeliveryUnknown",
                "reason": "identity billing@two.example not verified",
            }
        ],
    }
    s3.objects[result_key("runs/r1/", 0)] = json.dumps(result).encode()

    # WHEN the Report step reads it
    answer = ReportRun(files=files, log=QuietLog()).handle(report_input(1))

    # THEN neither its output nor the report it stored shows either address
    stored = s3.objects["runs/r1/report.json"].decode()
    for text in (json.dumps(answer), stored):
        assert "@" not in text, text
    assert answer["undelivered_invoices"][0]["reason"] == (
        "send invoice email: BadRequestException: <<email address>> bounced"
    )
    assert answer["failures"][0]["reason"] == "identity <email address> not verified"
