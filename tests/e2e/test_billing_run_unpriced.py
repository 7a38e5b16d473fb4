"""Unpriced usage (docs/contract-notes.md, "Unpriced usage"): storage events in a region no
charge of the plan filters on, and events of a meter the plan has no charge for, are rated
and kept, leave every invoice exactly as it is, and show in `billing usage` (and `billing
preview`) by meter, phase and value, whatever the batching, retries included. Worked out
by hand."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from typer.testing import CliRunner

from billing.settings import LEDGER_TABLE
from billing_cli.local.esm import MappingSettings, deliver
from billing_cli.local.runtime import RATE_USAGE, REGION, invoke_function, local_aws
from billing_cli.main import app
from functions.rate_usage import app as rate_usage
from tests.e2e.test_operator_commands import on_stream

# After November 2026 ended, plus the grace time: the rater's clock.
DECEMBER = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)

CATALOG = """
meters:
  - {name: api_requests, unit: request, aggregation: sum}
  - {name: storage_gb_hours, unit: GB-hour, aggregation: sum}
  - {name: exports, unit: export, aggregation: count}
plans:
  - id: basic
    name: Basic
    currency: USD
    charges:
      - {meter: api_requests, model: per_unit, unit_price: "0.01"}
      - meter: storage_gb_hours
        model: per_unit
        unit_price: "0.10"
        filters: {region: [eu-west-1, eu-central-1]}
      - meter: storage_gb_hours
        model: per_unit
        unit_price: "0.05"
        filters: {region: [us-east-1]}
  - id: pro
    name: Pro
    currency: USD
    charges:
      - {meter: api_requests, model: per_unit, unit_price: "0.01"}
      - meter: storage_gb_hours
        model: per_unit
        unit_price: "0.50"
        filters: {region: [ap-south-1, eu-west-1]}
      - {meter: exports, model: package, package_size: 2, package_price: "1.00"}
"""
ACCOUNTS = """
accounts:
  - {id: acct-1, name: Acme, email: billing@acme.example, plan: basic, timezone: UTC,
     tax_rate: "0.20"}
  - id: acct-2
    name: Initech
    email: ap@initech.example
    plan: basic
    timezone: UTC
    changes:
      - {effective: "2026-11-16", plan: pro}
  - {id: acct-3, name: Priced, email: billing@priced.example, plan: basic, timezone: UTC}
"""


def record(
    event_id: str, account: str, meter: str, quantity: str, day: int, region: str | None = None
) -> str:
    event: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account,
        "meter": meter,
        "quantity": quantity,
        "timestamp": f"2026-11-{day:02d}T10:00:00Z",
    }
    if region is not None:
        event["dimensions"] = {"region": region}
    return json.dumps(event)


PRICED = [
    record("a1", "acct-1", "api_requests", "100", 2),
    record("s1", "acct-1", "storage_gb_hours", "10", 2, "eu-west-1"),
    record("s2", "acct-1", "storage_gb_hours", "20", 3, "us-east-1"),
    record("p3", "acct-2", "storage_gb_hours", "6", 20, "ap-south-1"),  # pro takes it
    record("p4", "acct-2", "exports", "1", 20),
    record("p5", "acct-2", "exports", "1", 21),
    record("p6", "acct-2", "exports", "1", 22),
    record("p8", "acct-2", "storage_gb_hours", "1", 3, "eu-west-1"),
    record("c1", "acct-3", "api_requests", "50", 4),
    record("c2", "acct-3", "storage_gb_hours", "1", 4, "eu-central-1"),
]
UNPRICED = [
    record("s3", "acct-1", "storage_gb_hours", "5", 4, "ap-south-1"),
    record("s4", "acct-1", "storage_gb_hours", "7", 5, "ap-south-1"),
    record("s5", "acct-1", "storage_gb_hours", "3", 5),  # no region at all
    record("s6", "acct-1", "storage_gb_hours", "2.5", 6, "sa-east-1"),
    record("e1", "acct-1", "exports", "1", 6),  # basic has no charge on exports
    record("e2", "acct-1", "exports", "1", 7),
    record("s3", "acct-1", "storage_gb_hours", "900", 8, "ap-south-1"),  # s3 again: duplicate
    record("p1", "acct-2", "storage_gb_hours", "4", 5, "ap-south-1"),  # basic's phase
    record("p2", "acct-2", "exports", "1", 6),  # basic's phase: no charge
    record("p7", "acct-2", "storage_gb_hours", "2", 25, "us-east-1"),  # pro's phase
]
# Interleaved, so that any batch boundaries mix the two kinds.
EVENTS = [e for pair in zip(PRICED, UNPRICED, strict=True) for e in pair]

BASIC_PHASE = {"plan": "basic", "from": "2026-11-01", "to": "2026-11-16"}
PRO_PHASE = {"plan": "pro", "from": "2026-11-16", "to": "2026-12-01"}
STORAGE = {"meter": "storage_gb_hours", "description": "storage_gb_hours", "unit": "GB-hour"}
EXPORTS = {"meter": "exports", "description": "exports", "unit": "export"}
NO_VALUES: dict[str, Any] = {"dimension": None, "values": [], "other_events": 0}
# acct-1 (basic): storage in ap-south-1 (5 + 7), with no region (3) and in sa-east-1 (2.5)
# passes neither of basic's storage filters: 17.5 GB-hours in 4 events (s3's resend is a
# duplicate); basic has no charge on exports: its 2 events (count: 2).
ACCT_1_UNPRICED = [
    {
        **STORAGE,
        "reason": "no_filter_matched",
        "quantity": "17.5",
        "events": 4,
        "dimension": "region",
        # most events first, then by value (an event without the dimension: null)
        "values": [
            {"value": "ap-south-1", "events": 2},
            {"value": None, "events": 1},
            {"value": "sa-east-1", "events": 1},
        ],
        "other_events": 0,
    },
    {**EXPORTS, "reason": "no_charge", "quantity": "2", "events": 2, **NO_VALUES},
]
# acct-2 changes from basic to pro on 16 November: ap-south-1 is unpriced in basic's phase
# (p1: 4) and priced in pro's (p3); exports have no charge in basic's phase (p2) and are
# priced in pro's (p4-p6); us-east-1 is priced by basic and unpriced in pro's phase (p7: 2).
ACCT_2_UNPRICED = [
    {
        **STORAGE,
        "reason": "no_filter_matched",
        "quantity": "4",
        "events": 1,
        "dimension": "region",
        "values": [{"value": "ap-south-1", "events": 1}],
        "other_events": 0,
        **BASIC_PHASE,
    },
    {**EXPORTS, "reason": "no_charge", "quantity": "1", "events": 1, **NO_VALUES, **BASIC_PHASE},
    {
        **STORAGE,
        "reason": "no_filter_matched",
        "quantity": "2",
        "events": 1,
        "dimension": "region",
        "values": [{"value": "us-east-1", "events": 1}],
        "other_events": 0,
        **PRO_PHASE,
    },
]


def write_files(folder: Path, events: list[str]) -> dict[str, Path]:
    paths = {name: folder / f"{name}.{ext}" for name, ext in [
        ("catalog", "yaml"), ("accounts", "yaml"), ("events", "jsonl")
    ]}  # fmt: skip
    paths["catalog"].write_text(CATALOG, encoding="utf-8")
    paths["accounts"].write_text(ACCOUNTS, encoding="utf-8")
    paths["events"].write_text("\n".join(events) + "\n", encoding="utf-8")
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
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_files(tmp_path_factory.mktemp("unpriced"), EVENTS)


def run(files: dict[str, Path], out: Path) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(app, ["run", *arguments(files), "--out", str(out)])
    assert result.exit_code == 0, result.output
    documents = [json.loads(p.read_text()) for p in (out / "invoices").glob("*.json")]
    return {d["account_id"]: d for d in documents}


def lines(invoice: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (line["meter"], line.get("plan", ""), line["quantity"], line["amount"])
        for line in invoice["lines"]
    ]


def test_unpriced_usage_leaves_every_invoice_exactly_as_it_is(
    files: dict[str, Path], tmp_path: Path
) -> None:
    # GIVEN the run of every event, and the run of the priced events alone
    invoices = run(files, tmp_path / "all")
    priced = run(write_files(tmp_path, PRICED), tmp_path / "priced")

    # THEN the invoices are the same documents
    assert invoices == priced
    # acct-1: api 100 × 0.01 = 1.00; storage EU 10 × 0.10 = 1.00; storage US 20 × 0.05 =
    # 1.00; subtotal 3.00, tax 3.00 × 0.20 = 0.60, total 3.60
    assert lines(invoices["acct-1"]) == [
        ("api_requests", "", "100", "1.00"),
        ("storage_gb_hours", "", "10", "1.00"),
        ("storage_gb_hours", "", "20", "1.00"),
    ]
    assert (invoices["acct-1"]["subtotal"], invoices["acct-1"]["total"]) == ("3.00", "3.60")
    # acct-2, basic's phase: storage EU 1 × 0.10 = 0.10; pro's: storage (ap-south-1, eu-west-1)
    # 6 × 0.50 = 3.00, exports ceil(3 / 2) × 1.00 = 2.00; total 5.10
    assert lines(invoices["acct-2"]) == [
        ("api_requests", "basic", "0", "0.00"),
        ("storage_gb_hours", "basic", "1", "0.10"),
        ("storage_gb_hours", "basic", "0", "0.00"),
        ("api_requests", "pro", "0", "0.00"),
        ("storage_gb_hours", "pro", "6", "3.00"),
        ("exports", "pro", "3", "2.00"),
    ]
    assert invoices["acct-2"]["total"] == "5.10"
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert summary == {"records": 20, "rated": 19, "duplicates": 1, "rejected": {}}


def test_the_preview_shows_the_unpriced_usage(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["preview", *arguments(files)])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["unpriced"] == {
        "acct-1": ACCT_1_UNPRICED,
        "acct-2": ACCT_2_UNPRICED,
    }


def test_the_preview_table_lists_the_unpriced_usage(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["preview", *arguments(files)[:-1]])  # no --json

    # (the console is 80 columns wide: the longer cells wrap)
    assert result.exit_code == 0, result.output
    assert "Unpriced usage (rated, not on the invoices)" in result.output
    assert "│ acct-1  │ exports (no charge)   │        2 │      2 │" in result.output
    assert "│ region us-east-1: 1 " in result.output


class Published:
    """The rater's Powertools metrics, with the counts its handler adds kept aside."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)
        self.metrics.add_metric(name, unit, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.metrics, name)


def rate_locally(files: dict[str, Path], batch_size: int) -> dict[str, Any]:
    """On a fresh local runtime: the files pushed, the events sent and rated by the real
    handler in batches of `batch_size`, then all delivered again (every record a replay).
    What `billing usage --json` shows and the ledger items store, and the metrics the
    handler added on each delivery."""
    with local_aws() as local, pytest.MonkeyPatch.context() as patch:
        for kind in ("catalog", "accounts"):
            pushed = CliRunner().invoke(app, [kind, "push", str(files[kind])])
            assert pushed.exit_code == 0, pushed.output
        assert CliRunner().invoke(app, ["send", str(files["events"])]).exit_code == 0
        rate_usage.service.cache_clear()  # bind the handler to this runtime's tables
        patch.setattr(rate_usage.service(), "_clock", lambda: DECEMBER)
        invoke = invoke_function(boto3.client("lambda", region_name=REGION), RATE_USAGE)
        deliveries = [Published(rate_usage.metrics), Published(rate_usage.metrics)]
        for metrics in deliveries:
            patch.setattr(rate_usage, "metrics", metrics)
            log = deliver(on_stream(), invoke, MappingSettings(batch_size))
            assert log.errors == 0
        patch.undo()
        found: dict[str, Any] = {"metrics": [m.counts for m in deliveries]}
        for account in ("acct-1", "acct-2", "acct-3"):
            shown = CliRunner().invoke(app, ["usage", account, "--period", "2026-11", "--json"])
            assert shown.exit_code == 0, shown.output
            found[account] = json.loads(shown.output)
            item = local.dynamodb.get_item(
                TableName=local.tables[LEDGER_TABLE.env_var],
                Key={"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": "LEDGER"}},
            )["Item"]
            found[f"{account} use"] = item["use"]["S"]
        table = CliRunner().invoke(app, ["usage", "acct-1", "--period", "2026-11"])
        found["table"] = table.output
    rate_usage.service.cache_clear()
    return found


@pytest.fixture(scope="module")
def in_one_batch(files: dict[str, Path]) -> dict[str, Any]:
    return rate_locally(files, 1000)


@pytest.fixture(scope="module")
def in_batches_of_3(files: dict[str, Path]) -> dict[str, Any]:
    return rate_locally(files, 3)


def test_billing_usage_shows_the_unpriced_usage_exactly(in_one_batch: dict[str, Any]) -> None:
    assert in_one_batch["acct-1"]["unpriced"] == ACCT_1_UNPRICED
    assert in_one_batch["acct-2"]["unpriced"] == ACCT_2_UNPRICED
    assert in_one_batch["acct-3"]["unpriced"] == []
    # the running charges are the invoice's, unpriced usage adds nothing to them
    assert in_one_batch["acct-1"]["invoice_preview"]["total"] == "3.60"
    assert in_one_batch["acct-2"]["invoice_preview"]["total"] == "5.10"
    # and the table says it too, value by value
    table = in_one_batch["table"]
    assert "unpriced (not on the invoice)" in table
    assert "region=ap-south-1" in table
    assert "region=(none)" in table


def test_other_batch_boundaries_and_a_redelivery_store_the_same_bytes(
    in_one_batch: dict[str, Any], in_batches_of_3: dict[str, Any]
) -> None:
    for account in ("acct-1", "acct-2", "acct-3"):
        assert in_batches_of_3[f"{account} use"] == in_one_batch[f"{account} use"]
        assert in_batches_of_3[account]["unpriced"] == in_one_batch[account]["unpriced"]
    # acct-1's November as stored: storage's unpriced aggregate and its values' counts
    stored = json.loads(in_one_batch["acct-1 use"])["2026-11"]
    assert stored["storage_gb_hours"]["u"] == [
        ["17.5", 4],
        {"": 1, "ap-south-1": 2, "sa-east-1": 1},
    ]
    assert "u" not in stored["exports"]  # no charge: its total says it all


def test_an_account_without_unpriced_usage_stores_no_more_than_before(
    in_one_batch: dict[str, Any],
) -> None:
    assert '"u"' not in in_one_batch["acct-3 use"]


def test_the_rater_counts_unpriced_events_once(in_one_batch: dict[str, Any]) -> None:
    first, again = in_one_batch["metrics"]
    # acct-1: s3, s4, s5, s6, e1, e2; acct-2: p1, p2, p7 (s3's resend is a duplicate)
    assert (first["UnpricedEvents"], first["EventsRated"], first["Duplicates"]) == (9, 19, 1)
    # delivered again, every record is a replay: nothing rated, nothing unpriced
    assert (again["UnpricedEvents"], again["EventsRated"], again["Replayed"]) == (0, 0, 20)
