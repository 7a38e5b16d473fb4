"""`billing run` (and `billing preview`) with a `unique_count` meter priced with tiers and
a `latest` meter (CONTRACT 2a): exact invoice amounts, worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.runtime import RATE_USAGE, REGION, invoke_function, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage
from tests.e2e.test_operator_commands import on_stream

# After November 2026 ended everywhere, plus the grace time: the rater's clock.
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)

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
  - id: team
    name: Team
    currency: USD
    charges:
      - meter: active_users
        model: graduated
        tiers:
          - {up_to: 2, unit_price: "0"}
          - {up_to: 5, unit_price: "1.50", flat_fee: "2.00"}
          - {up_to: null, unit_price: "1.00"}
      - meter: active_users
        model: per_unit
        unit_price: "0.25"
        filters: {region: [eu]}
      - meter: seats_now
        model: per_unit
        unit_price: "10.00"
"""
ACCOUNTS = """
accounts:
  - {id: acct-1, name: Acme, email: billing@acme.example, plan: team, timezone: UTC,
     tax_rate: "0.20"}
  - {id: acct-2, name: Quiet, email: billing@quiet.example, plan: team,
     timezone: Europe/Paris}
"""


def user(event_id: str, who: str | None, region: str | None, at: str = "2026-11-02") -> str:
    dimensions = {k: v for k, v in {"user_id": who, "region": region}.items() if v}
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": "acct-1",
            "meter": "active_users",
            "quantity": 1,
            "timestamp": f"{at}T10:00:00Z",
            "dimensions": dimensions,
        }
    )


def seats(event_id: str, quantity: int, at: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "account_id": "acct-1",
            "meter": "seats_now",
            "quantity": quantity,
            "timestamp": at,
        }
    )


EVENTS = [
    user("u1", "alice", "eu"),
    user("u2", "bob", "eu"),
    user("u3", "bob", "eu", "2026-11-03"),  # bob again, another id
    user("u4", "carol", None),
    user("u5", "dave", "us"),
    user("u6", "erin", "eu"),
    user("u7", "frank", None),
    user("u8", "grace", "us"),
    user("u9", None, "eu"),  # rated, counts no user
    user("u1", "zed", "eu"),  # a resend of u1: a duplicate, zed never counts
    user("u10", "henry", "eu", "2026-10-31"),  # October's
    seats("s1", 7, "2026-11-20T12:00:00Z"),
    seats("s2", 3, "2026-11-10T12:00:00Z"),
    seats("s3", 4, "2026-11-20T13:00:00+01:00"),  # s1's instant, later on the stream
    seats("s4", 9, "2026-11-20T11:59:59.999999999Z"),  # a nanosecond before s1
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("aggregations")
    paths = {
        "catalog": folder / "catalog.yaml",
        "accounts": folder / "accounts.yaml",
        "events": folder / "events.jsonl",
    }
    paths["catalog"].write_text(CATALOG, encoding="utf-8")
    paths["accounts"].write_text(ACCOUNTS, encoding="utf-8")
    paths["events"].write_text("\n".join(EVENTS) + "\n", encoding="utf-8")
    return paths


def arguments(files: dict[str, Path]) -> list[str]:
    return [
        "--catalog", str(files["catalog"]),
        "--accounts", str(files["accounts"]),
        "--events", str(files["events"]),
        "--period", "2026-11",
        "--json",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def invoices(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    result = CliRunner().invoke(app, ["run", *arguments(files), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def by_account(out: Path) -> dict[str, dict[str, Any]]:
    documents = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    return {d["account_id"]: d for d in documents}


def amounts(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (line["meter"] + ("/eu" if "filters" in line else ""), line["quantity"], line["amount"])
        for line in document["lines"]
    ]


def test_unique_count_with_tiers_and_latest_invoice_exactly(invoices: Path) -> None:
    acme = by_account(invoices)["acct-1"]

    # active_users: alice, bob, carol, dave, erin, frank, grace = 7 (bob's second event, u9
    # without a user, the resend of u1 and October's henry add none); graduated: tier 1
    # 2 × 0 = 0; tier 2 3 × 1.50 = 4.50 + flat 2.00; tier 3 2 × 1.00 = 2.00; = 8.50
    # eu share: alice, bob, erin = 3 × 0.25 = 0.75
    # seats_now: s1 and s3 share the latest instant, s3 is later on the stream: 4 × 10.00
    # subtotal 8.50 + 0.75 + 40.00 = 49.25; tax 49.25 × 0.20 = 9.85; total 59.10
    assert amounts(acme) == [
        ("active_users", "7", "8.50"),
        ("active_users/eu", "3", "0.75"),
        ("seats_now", "4", "40.00"),
    ]
    assert (acme["subtotal"], acme["tax"], acme["total"], acme["amount_due"]) == (
        "49.25",
        "9.85",
        "59.10",
        "59.10",
    )


def test_an_account_without_events_counts_0_users_and_0_seats(invoices: Path) -> None:
    quiet = by_account(invoices)["acct-2"]

    # no events: no users, and `latest` is 0 when there is none
    assert amounts(quiet) == [
        ("active_users", "0", "0.00"),
        ("active_users/eu", "0", "0.00"),
        ("seats_now", "0", "0.00"),
    ]
    assert quiet["total"] == "0.00"


def test_the_summary_counts_the_resend_as_a_duplicate(invoices: Path) -> None:
    summary = json.loads((invoices / "summary.json").read_text())

    # 15 records: 14 rated (u10 into October), 1 duplicate (u1's resend)
    assert summary == {"records": 15, "rated": 14, "duplicates": 1, "rejected": {}}


def test_the_preview_invoices_the_same(files: dict[str, Path], invoices: Path) -> None:
    result = CliRunner().invoke(app, ["preview", *arguments(files)])
    assert result.exit_code == 0, result.output
    previewed = {d["account_id"]: d for d in json.loads(result.output)["invoices"]}

    for account, document in by_account(invoices).items():
        assert amounts(previewed[account]) == amounts(document)
        assert previewed[account]["total"] == document["total"]


def test_billing_usage_shows_the_running_counts_on_the_local_runtime(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the catalog and accounts pushed to the local runtime, and the events sent and
    # rated by the real handler (in one delivery, as they are on the stream)
    with local_aws():
        for kind in ("catalog", "accounts"):
            pushed = CliRunner().invoke(app, [kind, "push", str(files[kind])])
            assert pushed.exit_code == 0, pushed.output
        assert CliRunner().invoke(app, ["send", str(files["events"])]).exit_code == 0
        rate_usage.service.cache_clear()  # bind the handler to this runtime's tables
        monkeypatch.setattr(rate_usage.service(), "_clock", lambda: DECEMBER)
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        deliver(on_stream(), invoke, MappingSettings(1000))

        # WHEN the operator asks for acct-1's November
        result = CliRunner().invoke(app, ["usage", "acct-1", "--period", "2026-11", "--json"])

    # THEN it shows what the invoice will say (worked out above): 7 users (eu 3), 4 seats
    assert result.exit_code == 0, result.output
    usage = json.loads(result.output)
    meters = {m["meter"]: m for m in usage["meters"]}
    assert [c["quantity"] for c in meters["active_users"]["charges"]] == ["7", "3"]
    assert meters["seats_now"]["quantity"] == "4"
    assert usage["invoice_preview"]["total"] == "59.10"
