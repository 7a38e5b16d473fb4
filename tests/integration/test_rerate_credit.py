"""`billing rerate --apply` on an invoiced period: the examples invoiced for November, then
a catalog with a lower price pushed; the apply credits what the invoice charged above its
re-rated self with one credit note (the Send function's `{"correct": ...}`), and applying
the same correction again issues nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from billing.core.catalog import load_catalog
from billing.store.documents import document_key
from billing.store.events import EventPublisher
from billing_cli.local.runtime import INVOICE_BUCKET
from billing_cli.main import app
from tests.integration.test_archive_replay import EXAMPLES, Run, examples_run

pytestmark = pytest.mark.integration

# The pro plan's second API tier (acct-1's 534,000 requests above the free million).
TIER = '{up_to: 10000000, unit_price: "0.000002", flat_fee: "5.00"}'
REASON = "price typed wrong"


def push_tier_price(run: Run, folder: Path, price: str) -> None:
    text = (EXAMPLES / "catalog.yaml").read_text()
    assert text.count(TIER) == 1
    changed = folder / f"catalog-{price}.yaml"
    changed.write_text(text.replace(TIER, TIER.replace("0.000002", price)))
    run.aws.config.put_catalog(load_catalog(changed))


@pytest.fixture(scope="module")
def lowered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """November invoiced, then the tier's price pushed at 0.000001 (typed 0.000002)."""
    with examples_run() as run:
        push_tier_price(run, tmp_path_factory.mktemp("catalogs"), "0.000001")
        yield run


@pytest.fixture(scope="module")
def first_apply(lowered: Run) -> dict[str, dict[str, Any]]:
    """The period applied once with the lowered price, whichever test asks first (each
    worker of the suite has its own runtime): what the apply said, by account."""
    return by_account(rerate("--apply", "--reason", REASON))


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every event the functions put on the bus, as (detail type, detail)."""
    events: list[tuple[str, dict[str, Any]]] = []
    original = EventPublisher._put

    def put(self: EventPublisher, batch: Any) -> dict[int, str]:
        events.extend(batch)
        return original(self, batch)

    monkeypatch.setattr(EventPublisher, "_put", put)
    return events


def rerate(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["rerate", "--period", "2026-11", "--json", *args])
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.output)
    return document


def by_account(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {result["account_id"]: result for result in document["applied"]}


def stored_json(run: Run, number: str) -> dict[str, Any]:
    key = document_key("acct-1", "2026-11", number, "json")
    document: dict[str, Any] = json.loads(run.aws.object(INVOICE_BUCKET, key))
    return document


def test_apply_on_an_invoiced_period_needs_a_reason(lowered: Run) -> None:
    result = CliRunner().invoke(app, ["rerate", "--period", "2026-11", "--apply"])
    assert result.exit_code == 2
    assert "needs a reason (--reason TEXT)" in result.output


def test_apply_credits_the_overcharge_with_one_hand_computed_credit_note(
    lowered: Run, first_apply: dict[str, dict[str, Any]]
) -> None:
    # WHEN the invoiced period is applied with the lowered price
    applied = first_apply
    # THEN acct-1 alone is credited (acct-2's 750,000 requests are all in the free tier):
    # 534,000 × 0.000001 = 0.534 + 5.00 = 5.534 → 5.53 (was 6.07): 0.54 credited;
    # tax round(197.27 × 0.2) − round(196.73 × 0.2) = 39.45 − 39.35 = 0.10; total 0.64
    assert applied["acct-1"] == {
        "account_id": "acct-1",
        "outcome": "credited",
        "credit_note": {"number": "CN-2026-000001", "total": "0.64", "email": "sent"},
    }
    others = {name: result["outcome"] for name, result in applied.items() if name != "acct-1"}
    assert set(others.values()) == {"unchanged"}
    assert len(others) == 5
    note = stored_json(lowered, "CN-2026-000001")
    assert (note["invoice_number"], note["reason"]) == ("INV-2026-000001", REASON)
    assert note["correction"].startswith("rerate:")
    assert len(note["correction"]) == 23
    [line] = note["lines"]
    assert {name: line[name] for name in ("kind", "meter", "quantity", "amount")} == {
        "kind": "usage",
        "meter": "api_requests",
        "quantity": "0",
        "amount": "0.54",
    }
    # 236.72 − 0.64 = 236.08 = 196.73 + 39.35, the re-rated invoice's total
    assert (note["subtotal"], note["tax"], note["total"]) == ("0.54", "0.10", "0.64")
    assert (note["invoice_total"], note["invoice_total_after"]) == ("236.72", "236.08")
    pdf = document_key("acct-1", "2026-11", "CN-2026-000001", "pdf")
    assert lowered.aws.object(INVOICE_BUCKET, pdf).startswith(b"%PDF")


def test_applying_the_same_correction_again_issues_nothing(
    lowered: Run, first_apply: dict[str, dict[str, Any]]
) -> None:
    emails = len(lowered.aws.sent_emails())
    applied = by_account(rerate("--apply", "--reason", REASON))
    assert applied["acct-1"]["outcome"] == "unchanged"
    assert applied["acct-1"]["reason"] == "the invoice stands corrected"
    assert len(lowered.aws.sent_emails()) == emails
    listed = lowered.aws.s3.list_objects_v2(
        Bucket=INVOICE_BUCKET, Prefix="invoices/acct-1/2026-11/CN-"
    )
    assert sorted(item["Key"].rsplit("/", 1)[1] for item in listed["Contents"]) == [
        "CN-2026-000001.json",
        "CN-2026-000001.pdf",
    ]
