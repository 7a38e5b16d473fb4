"""CONTRACT.md 2a, History is never rewritten: `billing accounts push` on a running (local)
deployment refuses a file that would change how already rated or invoiced time is priced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from billing_cli import operations
from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from tests.e2e.test_contract_2a_phases_discounts_credits import CATALOG, account

pytestmark = pytest.mark.e2e

# 3 December 2026, 09:00 UTC: December is the open period of a UTC account.
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PERCENT = {"id": "pct", "percent": "10", "from": "2026-10", "periods": 6}
AMOUNT = {"id": "amt", "amount": "5.00", "from": "2026-10", "periods": 6}


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def write(folder: Path, name: str, **more: Any) -> Path:
    path = folder / name
    document = {"accounts": [account("acct-1", "flat", start="2026-10-01", **more)]}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalAws]:
    monkeypatch.setattr(operations, "utc_now", lambda: NOW)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(CATALOG), encoding="utf-8")
    with local_aws() as aws:
        assert billing("catalog", "push", str(tmp_path / "catalog.yaml")).exit_code == 0
        first = billing(
            "accounts", "push", str(write(tmp_path, "a.yaml", discounts=[PERCENT, AMOUNT]))
        )
        assert first.exit_code == 0, first.output
        yield aws


def test_reordering_discounts_that_priced_rated_time_is_refused(
    local: LocalAws, tmp_path: Path
) -> None:
    # Order matters (2a: "applied in this order"): on a 12.25 invoice, 10 % then 5.00 gives
    # -1.23 and -5.00 (subtotal 6.02); 5.00 then 10 % gives -5.00 and -0.73 (6.52). Both
    # discounts cover October to March, so the swap reprices October, November and the
    # open December: the push reaches back into rated and invoiced time.
    result = billing(
        "accounts", "push", str(write(tmp_path, "b.yaml", discounts=[AMOUNT, PERCENT]))
    )
    assert result.exit_code == 2, result.output
    assert "acct-1" in result.output
    assert "discounts" in result.output


def test_a_discount_from_the_next_period_is_taken_and_one_from_this_period_refused(
    local: LocalAws, tmp_path: Path
) -> None:
    later = {"id": "jan", "amount": "1.00", "from": "2027-01", "periods": 1}
    taken = billing(
        "accounts", "push", str(write(tmp_path, "c.yaml", discounts=[PERCENT, AMOUNT, later]))
    )
    assert taken.exit_code == 0, taken.output
    now = {"id": "dec", "amount": "1.00", "from": "2026-12", "periods": 1}
    refused = billing(
        "accounts", "push", str(write(tmp_path, "d.yaml", discounts=[PERCENT, AMOUNT, later, now]))
    )
    assert refused.exit_code == 2, refused.output


def test_moving_the_account_to_another_time_zone_is_refused(
    local: LocalAws, tmp_path: Path
) -> None:
    # The zone draws the periods' boundaries: moving acct-1 from UTC to Tokyo moves nine
    # hours of rated events from one period (and day, and so phase) to another.
    moved = write(tmp_path, "e.yaml", discounts=[PERCENT, AMOUNT])
    document = yaml.safe_load(moved.read_text())
    document["accounts"][0]["timezone"] = "Asia/Tokyo"
    moved.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = billing("accounts", "push", str(moved))
    assert result.exit_code == 2, result.output


def test_moving_start_back_into_invoiced_time_is_refused(local: LocalAws, tmp_path: Path) -> None:
    # start 1 October -> 15 November: October (ended, owed) loses its subscription and
    # November's fixed fee becomes prorated: both are already rated time.
    later = write(tmp_path, "f.yaml", discounts=[PERCENT, AMOUNT])
    document = yaml.safe_load(later.read_text())
    document["accounts"][0]["start"] = "2026-11-15"
    later.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = billing("accounts", "push", str(later))
    assert result.exit_code == 2, result.output
