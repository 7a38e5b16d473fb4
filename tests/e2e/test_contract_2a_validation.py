"""CONTRACT.md 2a's cross-checks through `billing run`: a bad accounts or catalog file is
refused whole (no invoice, exit code 2) with a message naming the file, the entry and the
field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness_2a import run
from tests.e2e.test_contract_2a_phases_discounts_credits import CATALOG, account

ONE = {"from": "2026-11", "periods": 1}
ACCOUNT_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "change on start": (
        {"start": "2026-10-01", "changes": [{"effective": "2026-10-01", "plan": "plus"}]},
        "changes[0].effective",
    ),
    "change before start": (
        {"start": "2026-10-01", "changes": [{"effective": "2026-09-15", "plan": "plus"}]},
        "changes[0].effective",
    ),
    "change on end": (
        {"end": "2026-11-15", "changes": [{"effective": "2026-11-15", "plan": "plus"}]},
        "changes[0].effective",
    ),
    "changes not increasing": (
        {"changes": [{"effective": "2026-11-10", "plan": "plus"},
                     {"effective": "2026-11-10", "plan": "basic"}]},
        "changes[1].effective",
    ),
    "change to the plan in force": (
        {"changes": [{"effective": "2026-11-10", "plan": "basic"}]}, "changes[0].plan",
    ),
    "change to an unknown plan": (
        {"changes": [{"effective": "2026-11-10", "plan": "nope"}]}, "changes[0].plan",
    ),
    "change to another currency": (
        {"changes": [{"effective": "2026-11-10", "plan": "jbasic"}]}, "changes[0].plan",
    ),
    "percent and amount": (
        {"discounts": [{"id": "d", "percent": "10", "amount": "1.00", **ONE}]}, "discounts[0]",
    ),
    "neither percent nor amount": ({"discounts": [{"id": "d", **ONE}]}, "discounts[0]"),
    "percent 0": ({"discounts": [{"id": "d", "percent": "0", **ONE}]}, "discounts[0].percent"),
    "percent over 100": (
        {"discounts": [{"id": "d", "percent": "100.01", **ONE}]}, "discounts[0].percent",
    ),
    "amount with 3 decimals in USD": (
        {"discounts": [{"id": "d", "amount": "1.001", **ONE}]}, "discounts[0].amount",
    ),
    "grant with 3 decimals in USD": (
        {"credits": [{"id": "c", "amount": "1.001", "granted": "2026-11-01"}]},
        "credits[0].amount",
    ),
    "grant expiring when granted": (
        {"credits": [{"id": "c", "amount": "1", "granted": "2026-11-01",
                      "expires": "2026-11-01"}]},
        "credits[0].expires",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ACCOUNT_CASES))
def test_a_bad_accounts_file_is_refused_naming_file_entry_and_field(
    tmp_path: Path, case: str
) -> None:
    more, field = ACCOUNT_CASES[case]
    spec = account("acct-x", "basic", **more)
    result = run(tmp_path, CATALOG, {"accounts": [spec]}, [], "2026-11")
    message = " ".join(result.stderr.split()).replace("\\n", "")
    assert result.exit_code == 2
    assert result.invoices == {}
    assert "accounts.yaml" in message
    assert "accounts[0] (acct-x)" in message
    assert field in message


@pytest.mark.parametrize(
    ("meter", "text"),
    [
        ({"aggregation": "unique_count"}, "field: is required"),
        ({"aggregation": "sum", "field": "user_id"}, "field: is not a known field"),
        ({"aggregation": "latest", "field": "user_id"}, "field: is not a known field"),
    ],
)
def test_field_is_required_for_unique_count_and_only_there(
    tmp_path: Path, meter: dict[str, str], text: str
) -> None:
    catalog = copy.deepcopy(CATALOG)
    catalog["meters"].append({"name": "extra", "unit": "u", **meter})
    result = run(tmp_path, catalog, {"accounts": [account("acct-x", "basic")]}, [], "2026-11")
    message = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert "catalog.yaml" in message
    assert "meters[5] (extra)" in message
    assert text in message
