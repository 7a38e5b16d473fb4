"""CONTRACT.md 2a, Credits: one scheduled invoice run on the local runtime issues an
account's owed periods oldest first, and each draws on what the earlier ones left (grants
usable by the period rule, the one expiring first first). A discount spans two of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from billing_cli.local.runtime import LocalAws, local_aws
from billing_cli.main import app
from tests.e2e.test_contract_2a_phases_discounts_credits import CATALOG, account

pytestmark = pytest.mark.e2e

DECEMBER = "2026-12-01T13:00:00Z"
ACCOUNT = account(
    "multi", "flat", start="2026-09-01",
    discounts=[{"id": "span", "percent": "10", "from": "2026-10", "periods": 2}],
    credits=[
        # usable in September and October (October's first day is before 1 November)
        {"id": "g1", "amount": "20.00", "granted": "2026-09-01", "expires": "2026-11-01"},
        # usable from October (its last day is after the 15th)
        {"id": "g2", "amount": "10.00", "granted": "2026-10-15"},
        # usable in November only
        {"id": "g3", "amount": "5.00", "granted": "2026-11-30", "expires": "2026-12-01"},
    ],
)  # fmt: skip


def billing(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("contract-2a-credits")
    (folder / "catalog.yaml").write_text(yaml.safe_dump(CATALOG), encoding="utf-8")
    (folder / "accounts.yaml").write_text(yaml.safe_dump({"accounts": [ACCOUNT]}), encoding="utf-8")
    aws: LocalAws
    with local_aws() as aws:
        assert aws is not None
        assert billing("catalog", "push", str(folder / "catalog.yaml")).exit_code == 0
        pushed = billing("accounts", "push", str(folder / "accounts.yaml"))
        assert pushed.exit_code == 0, pushed.output
        result = billing("invoices", "run", "--now", DECEMBER, "--json")
        assert result.exit_code == 0, result.output
        listed = json.loads(billing("invoices", "list", "--json").stdout)["invoices"]
        documents = {}
        for item in listed:
            shown = billing("invoices", "show", item["invoice_number"], "--json")
            document = json.loads(shown.stdout)["invoice"]
            documents[document["period"]] = document
        yield documents


def test_each_owed_period_is_invoiced_oldest_first(issued: dict[str, dict[str, Any]]) -> None:
    numbers = [issued[p]["invoice_number"] for p in ("2026-09", "2026-10", "2026-11")]
    assert numbers == sorted(numbers)


def test_the_discount_spans_october_and_november(issued: dict[str, dict[str, Any]]) -> None:
    # 12.25 fixed; 10 % of 12.25 = 1.225 -> 1.23 in October and November only
    assert [issued[p]["total"] for p in ("2026-09", "2026-10", "2026-11")] == [
        "12.25",
        "11.02",
        "11.02",
    ]


def test_each_invoice_draws_what_the_earlier_ones_left(
    issued: dict[str, dict[str, Any]],
) -> None:
    # September: only g1 is usable: 12.25 of its 20.00, 7.75 left.
    # October: g1 (expires first) 7.75, then g2 3.27 of 10.00, 6.73 left.
    # November: g1 expired; g3 (expires 1 Dec) 5.00, then g2 6.02 of 6.73.
    drawn = {p: (d["credits"], d["credits_applied"], d["amount_due"]) for p, d in issued.items()}
    assert drawn == {
        "2026-09": ([{"id": "g1", "amount": "12.25"}], "12.25", "0.00"),
        "2026-10": ([{"id": "g1", "amount": "7.75"}, {"id": "g2", "amount": "3.27"}], "11.02",
                    "0.00"),
        "2026-11": ([{"id": "g3", "amount": "5.00"}, {"id": "g2", "amount": "6.02"}], "11.02",
                    "0.00"),
    }  # fmt: skip
