"""With none of CONTRACT 2a's additions (no plan changes, discounts, credits, unique_count or
latest), every invoice is byte for byte what it was before they were built: the example
files' November invoices, as `billing run` wrote them then, are kept in tests/golden."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from billing_cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "examples-2026-11"


def test_the_example_invoices_are_byte_for_byte_as_before(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--catalog", str(EXAMPLES / "catalog.yaml"),
            "--accounts", str(EXAMPLES / "accounts.yaml"),
            "--events", str(EXAMPLES / "events.jsonl"),
            "--period", "2026-11",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    written = sorted(path.name for path in (out / "invoices").glob("*.json"))
    assert written == sorted(path.name for path in GOLDEN.glob("*.json"))
    assert len(written) == 6
    for name in written:
        assert (out / "invoices" / name).read_bytes() == (GOLDEN / name).read_bytes(), name
