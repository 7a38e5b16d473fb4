"""How a sent record's outcome is told (billing_cli.outcomes) and how a fix file is read
(billing_cli.replay): pure parts, no AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_cli.outcomes import SentRecord, sorted_out
from billing_cli.replay import FixFileError, read_fixes

SHARD = "shardId-000000000000"


def sent(sequence: int, event_id: str, account: str = "acct-1") -> SentRecord:
    return SentRecord(sequence, account, event_id, SHARD, str(sequence))


def test_the_first_accepted_record_of_an_unclaimed_id_is_rated_any_other_a_duplicate() -> None:
    # GIVEN, in stream order: e-1 rejected, then e-1 accepted (a rejection claims nothing),
    # e-1 again, e-2 claimed before the send, e-2 of another account, and e-3 not done
    records = [
        sent(1, "e-1"),
        sent(2, "e-1"),
        sent(3, "e-1"),
        sent(4, "e-2"),
        sent(5, "e-2", account="acct-2"),
        sent(6, "e-3"),
    ]
    done = {(SHARD, str(n)) for n in range(1, 6)}
    rejected = {(SHARD, "1"): "UNKNOWN_METER"}

    outcomes = sorted_out(records, done, rejected, claimed={("acct-1", "e-2")})

    assert [r.tag for r in outcomes.rated] == [2, 5]
    assert [r.tag for r in outcomes.duplicates] == [3, 4]
    assert {k: [r.tag for r in v] for k, v in outcomes.rejected.items()} == {"UNKNOWN_METER": [1]}
    assert [r.tag for r in outcomes.pending] == [6]
    assert outcomes.counts() == {
        "rated": 2,
        "duplicates": 2,
        "rejected": {"UNKNOWN_METER": 1},
        "pending": 1,
    }


def test_a_fix_file_maps_each_id_to_its_corrected_record_as_compact_json(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fixes.jsonl"
    path.write_text(f'{{"id": "{SHARD}/42", "record": {{"event_id": "é", "quantity": 1}}}}\n\n')

    assert read_fixes(path) == {f"{SHARD}/42": '{"event_id":"é","quantity":1}'.encode()}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"record": {}}', "write {"),
        ('{"id": "no-slash", "record": {}}', "not a rejection id"),
        (f'{{"id": "{SHARD}/1", "record": [1]}}', "must be a JSON object"),
        ("not json", "write {"),
    ],
)
def test_a_fix_file_line_of_another_shape_is_refused_by_its_line(
    tmp_path: Path, line: str, says: str
) -> None:
    path = tmp_path / "fixes.jsonl"
    path.write_text(line + "\n")

    with pytest.raises(FixFileError, match=r"fixes\.jsonl:1") as refused:
        read_fixes(path)
    assert says in str(refused.value)


def test_a_fix_file_correcting_one_id_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fixes.jsonl"
    line = f'{{"id": "{SHARD}/1", "record": {{}}}}\n'
    path.write_text(line * 2)

    with pytest.raises(FixFileError, match="corrected twice"):
        read_fixes(path)
