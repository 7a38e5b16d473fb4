"""Review of issue 12: the raw archive reads back exactly the records the stream carried."""

from __future__ import annotations

import pytest

from billing.rating.archive import ArchiveCorrupt, ArchivedRecord, frame, read_archive

pytestmark = pytest.mark.unit

SHARD = "shardId-000000000000"


GOOD = frame(ArchivedRecord(SHARD, "1", 0, "acct-1", 0, b"{}")).rstrip(b"\n")


@pytest.mark.parametrize(
    "line",
    [
        GOOD.replace(b'"aggregated":false', b'"aggregated":0'),  # 0 == False
        GOOD.replace(b'"v":2', b'"v":2.0'),  # 2.0 == 2
        GOOD.replace(b'"data":"e30="', b'"data":"AAAA","data":"e30="'),  # duplicate key
        GOOD.replace(b'"data":"e30="', b'"data":"e31="'),  # non-canonical base64
        b"  " + GOOD + b"\r",  # whitespace around the frame
    ],
)
def test_read_archive_refuses_any_line_that_frame_did_not_write(line: bytes) -> None:
    # docs: read_archive refuses "any line that is not exactly one frame"
    with pytest.raises(ArchiveCorrupt):
        list(read_archive(line + b"\n"))


def test_a_truncated_archive_object_is_archive_corrupt() -> None:
    # read_archive's docstring: "a truncated or foreign object raises ArchiveCorrupt rather
    # than yield a guess" -- a gzip object cut short raises EOFError instead
    import gzip

    body = gzip.compress(GOOD + b"\n" + GOOD + b"\n")
    with pytest.raises(ArchiveCorrupt):
        list(read_archive(body[:-12]))
