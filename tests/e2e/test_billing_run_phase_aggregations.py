"""`billing run` (and `billing preview`) with `unique_count` and `latest` meters on an
account that changes plan mid-period (CONTRACT 2a): each phase counts its own distinct
values and takes its own latest reading. Amounts worked out by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from billing_cli.main import app

CATALOG = """
meters:
  - name: active_users
    unit: user
    aggregation: unique_count
    field: user_id
  - name: seats_now
    unit: seat
    aggregation: latest
plans:
  - id: basic
    name: Basic
    currency: USD
    charges:
      - {meter: active_users, model: per_unit, unit_price: "1.00"}
      - {meter: seats_now, model: per_unit, unit_price: "10.00"}
  - id: plus
    name: Plus
    currency: USD
    charges:
      - {meter: active_users, model: per_unit, unit_price: "2.00"}
      - {meter: active_users, model: per_unit, unit_price: "0.50", filters: {region: [eu]}}
      - {meter: seats_now, model: per_unit, unit_price: "20.00"}
"""
ACCOUNTS = """
accounts:
  - {id: acct-1, name: Acme, email: billing@acme.example, plan: basic, timezone: UTC,
     start: "2026-10-01", changes: [{effective: "2026-11-16", plan: plus}]}
"""


def event(event_id: str, meter: str, at: str, quantity: int = 1, **dimensions: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": "acct-1",
            "meter": meter,
            "quantity": quantity,
            "timestamp": at,
            "dimensions": dimensions,
        }
    )


EVENTS = [
    event("a1", "active_users", "2026-11-02T10:00:00Z", user_id="alice"),
    event("a2", "active_users", "2026-11-05T10:00:00Z", user_id="bob"),
    event("a3", "active_users", "2026-11-10T10:00:00Z", user_id="alice"),  # seen in phase 1
    event("a4", "active_users", "2026-11-20T10:00:00Z", user_id="alice", region="eu"),
    event("a5", "active_users", "2026-11-25T10:00:00Z", user_id="carol", region="us"),
    event("a6", "active_users", "2026-11-28T10:00:00Z", user_id="alice", region="eu"),
    event("s1", "seats_now", "2026-11-03T10:00:00Z", 5),
    event("s2", "seats_now", "2026-11-15T23:00:00Z", 8),  # phase 1's latest
    event("s3", "seats_now", "2026-11-16T01:00:00Z", 2),
    event("s4", "seats_now", "2026-11-29T10:00:00Z", 6),  # phase 2's latest
    event("s5", "seats_now", "2026-11-10T10:00:00Z", 9),  # later on the stream, earlier
]


@pytest.fixture(scope="module")
def arguments(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("phase-aggregations")
    (folder / "catalog.yaml").write_text(CATALOG, encoding="utf-8")
    (folder / "accounts.yaml").write_text(ACCOUNTS, encoding="utf-8")
    (folder / "events.jsonl").write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return [
        "--catalog", str(folder / "catalog.yaml"),
        "--accounts", str(folder / "accounts.yaml"),
        "--events", str(folder / "events.jsonl"),
        "--period", "2026-11",
        "--json",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def invoice(arguments: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("run") / "out"
    result = CliRunner().invoke(app, ["run", *arguments, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (document,) = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    return document


def lines(document: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (
            line["plan"],
            line["from"],
            line["to"],
            line["meter"] + ("/eu" if line.get("filters") else ""),
            line["quantity"],
            line["amount"],
        )
        for line in document["lines"]
    ]


# Basic from 1 to 15 November, Plus from 16 November (UTC midnights).
# Basic: active_users alice, bob = 2 × 1.00 = 2.00 (a3's alice seen before in the phase);
#        seats_now: latest timestamp in the phase is s2 (15 Nov 23:00) = 8 × 10.00 = 80.00
#        (s5 comes later on the stream but its timestamp is earlier).
# Plus:  active_users alice (again: a new phase), carol = 2 × 2.00 = 4.00 (a6 seen in it);
#        eu share: alice = 1 × 0.50 = 0.50; seats_now: s4 (29 Nov) = 6 × 20.00 = 120.00.
# Subtotal 2.00 + 80.00 + 4.00 + 0.50 + 120.00 = 206.50; no tax rate: total 206.50.
EXPECTED = [
    ("basic", "2026-11-01", "2026-11-16", "active_users", "2", "2.00"),
    ("basic", "2026-11-01", "2026-11-16", "seats_now", "8", "80.00"),
    ("plus", "2026-11-16", "2026-12-01", "active_users", "2", "4.00"),
    ("plus", "2026-11-16", "2026-12-01", "active_users/eu", "1", "0.50"),
    ("plus", "2026-11-16", "2026-12-01", "seats_now", "6", "120.00"),
]


def test_each_phase_counts_its_own_users_and_takes_its_own_latest(
    invoice: dict[str, Any],
) -> None:
    assert lines(invoice) == EXPECTED
    assert (invoice["subtotal"], invoice["total"], invoice["amount_due"]) == (
        "206.50",
        "206.50",
        "206.50",
    )


def test_the_preview_invoices_the_same(arguments: list[str], invoice: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["preview", *arguments])
    assert result.exit_code == 0, result.output
    (previewed,) = json.loads(result.output)["invoices"]
    assert lines(previewed) == EXPECTED
    assert previewed["total"] == invoice["total"]
