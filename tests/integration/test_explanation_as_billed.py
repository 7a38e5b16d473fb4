"""The usage API's explanation of an invoiced period after a catalog change, against
docs/usage-api.md ("an invoiced one: its invoice as stored, whatever was pushed since")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing import wiring
from billing.core.catalog import load_catalog
from billing_cli.local.lambdas import LocalContext
from functions.usage_api import app as usage_api
from tests.integration.test_archive_replay import EXAMPLES, examples_run
from tests.support.api_gateway import rest_event

pytestmark = pytest.mark.integration


def _explained(account_id: str) -> dict[str, Any]:
    event = rest_event(
        "/accounts/{account_id}/explanation", {"account_id": account_id}, {"period": "2026-11"}
    )
    answer = usage_api.handler(event, LocalContext("usage-api"))
    assert answer["statusCode"] == 200, answer
    document: dict[str, Any] = json.loads(answer["body"])
    return document


def test_an_invoiced_lines_aggregation_is_the_one_it_was_billed_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usage_api, "service", wiring.account_views)
    # A catalog pushed after November was invoiced: api_requests now takes each period's
    # peak (max) instead of the sum
    text = (EXAMPLES / "catalog.yaml").read_text()
    before = "    unit: request\n    aggregation: sum"
    assert before in text
    (tmp_path / "catalog.yaml").write_text(
        text.replace(before, "    unit: request\n    aggregation: max", 1)
    )
    peak = load_catalog(tmp_path / "catalog.yaml")
    with examples_run() as run:
        # GIVEN INV-2026-000001's API requests line: a1-api-001 1,200,000 + a1-api-002
        # 334,000 = 1,534,000, summed
        api = _explained("acct-1")["lines"][0]
        assert (api["meter"], api["quantity"], api["aggregation"]) == (
            "api_requests",
            "1534000",
            "sum",
        )
        # WHEN the catalog changes the meter's aggregation
        run.aws.config.put_catalog(peak)
        # THEN the invoiced line is still explained by the sum it was billed by (its
        # quantity is 1,200,000 + 334,000, not the peak 1,200,000)
        again = _explained("acct-1")["lines"][0]
        assert (again["quantity"], again["amount"]) == ("1534000", "6.07")
        assert again["aggregation"] == "sum"
