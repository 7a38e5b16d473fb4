"""`billing rerate --apply` on an invoiced period with a higher price: one adjustment
invoice, issued once; the price typed back is a credit note from where the invoice then
stands (a runtime of its own: the test pushes prices)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from billing.store.documents import document_key
from billing_cli.local.runtime import INVOICE_BUCKET
from stacks.permissions import FUNCTION_ACTIONS
from tests.e2e.test_calls_within_permissions import recording
from tests.integration.test_archive_replay import Run, examples_run
from tests.integration.test_rerate_credit import (
    REASON,
    by_account,
    published,
    push_tier_price,
    rerate,
    stored_json,
)

pytestmark = pytest.mark.integration
__all__ = ["published"]  # the fixture


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """November invoiced, then the tier's price pushed at 0.000003 (typed 0.000002)."""
    with examples_run() as run:
        push_tier_price(run, tmp_path_factory.mktemp("catalogs"), "0.000003")
        yield run


def test_a_higher_price_is_charged_by_one_hand_computed_adjustment_invoice(
    raised: Run, tmp_path: Path, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN the tier at 0.000003: 534,000 × 0.000003 + 5.00 = 6.602 → 6.60, above the
    # invoice's 6.07
    with recording() as calls:
        applied = by_account(rerate("--apply", "--reason", REASON))
    # THEN the Send function issued it within its row of the permissions table (its role)
    allowed = {c.action for made in FUNCTION_ACTIONS["send_invoices"].values() for c in made}
    assert {"dynamodb:PutItem", "s3:PutObject", "events:PutEvents"} <= calls["send_invoices"]
    assert calls["send_invoices"] <= allowed, sorted(calls["send_invoices"] - allowed)
    # AND one adjustment invoice, in its own sequence: 6.60 − 6.07 = 0.53; tax
    # round(197.80 × 0.2) − round(197.27 × 0.2) = 39.56 − 39.45 = 0.11; total 0.64
    assert applied["acct-1"] == {
        "account_id": "acct-1",
        "outcome": "adjusted",
        "adjustment": {"number": "ADJ-2026-000001", "total": "0.64", "email": "sent"},
    }
    adjustment = stored_json(raised, "ADJ-2026-000001")
    assert "credit_note_number" not in adjustment
    assert (adjustment["adjustment_number"], adjustment["invoice_number"]) == (
        "ADJ-2026-000001",
        "INV-2026-000001",
    )
    [line] = adjustment["lines"]
    assert (line["meter"], line["amount"]) == ("api_requests", "0.53")
    # original + adjustment = corrected: 236.72 + 0.64 = 237.36 = 197.80 + 39.56
    assert (adjustment["subtotal"], adjustment["tax"], adjustment["total"]) == (
        "0.53",
        "0.11",
        "0.64",
    )
    assert adjustment["invoice_total_after"] == "237.36"
    pdf = document_key("acct-1", "2026-11", "ADJ-2026-000001", "pdf")
    assert raised.aws.object(INVOICE_BUCKET, pdf).startswith(b"%PDF")
    # AND AdjustmentIssued announced it once
    announced = [detail for kind, detail in published if kind == "AdjustmentIssued"]
    assert [(each["adjustment_number"], each["total"]) for each in announced] == [
        ("ADJ-2026-000001", "0.64")
    ]
    # AND applying it again issues nothing more
    emails = len(raised.aws.sent_emails())
    again = by_account(rerate("--apply", "--reason", REASON))["acct-1"]
    assert (again["outcome"], again["reason"]) == ("unchanged", "the invoice stands corrected")
    assert len(raised.aws.sent_emails()) == emails
    # AND the price typed back is a further correction from where the invoice stands
    # (237.36), not the first one's retry: a credit note of 0.64 (0.53 + tax 39.56 − 39.45)
    push_tier_price(raised, tmp_path, "0.000002")
    (dry,) = rerate("--account", "acct-1")["changes"]
    assert (dry["stands_at"], dry["rerated"]["total"], dry["difference"]) == (
        "237.36",
        "236.72",
        "-0.64",
    )
    reverted = by_account(rerate("--apply", "--reason", REASON))["acct-1"]
    assert reverted == {
        "account_id": "acct-1",
        "outcome": "credited",
        "credit_note": {"number": "CN-2026-000001", "total": "0.64", "email": "sent"},
    }
    note = stored_json(raised, "CN-2026-000001")
    assert (note["invoice_total"], note["invoice_total_after"]) == ("236.72", "236.72")
    # AND the invoice then stands where it was issued: nothing left to apply
    assert rerate("--account", "acct-1")["changes"] == []
    assert by_account(rerate("--apply", "--reason", REASON))["acct-1"]["outcome"] == "unchanged"
