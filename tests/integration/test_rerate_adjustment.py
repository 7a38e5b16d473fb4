"""`billing rerate --apply` on an invoiced period that a credit note already corrected: a
higher price pushed since is charged by one adjustment invoice, measured from where the
invoice stands (a runtime of its own: the test pushes another price)."""

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
def credited_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """November invoiced, the tier's price lowered to 0.000001 and applied once:
    CN-2026-000001 credits 0.64, and the invoice stands at 236.08."""
    with examples_run() as run:
        push_tier_price(run, tmp_path_factory.mktemp("catalogs"), "0.000001")
        rerate("--apply", "--reason", REASON)
        yield run


def test_a_higher_price_is_charged_by_one_hand_computed_adjustment_invoice(
    credited_once: Run, tmp_path: Path, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # GIVEN the tier at 0.000003: 534,000 × 0.000003 + 5.00 = 6.602 → 6.60, above the
    # 5.53 the invoice stands at after CN-2026-000001
    push_tier_price(credited_once, tmp_path, "0.000003")
    # (the dry run measures from where the invoice stands: 236.72 − 0.64 = 236.08, so the
    # difference is the adjustment's 237.36 − 236.08 = 1.28, not 237.36 − 236.72)
    (dry,) = rerate("--account", "acct-1")["changes"]
    assert (dry["stored"]["total"], dry["stands_at"], dry["difference"]) == (
        "236.72",
        "236.08",
        "1.28",
    )
    with recording() as calls:
        applied = by_account(rerate("--apply", "--reason", REASON))
    # THEN the Send function issued it within its row of the permissions table (its role)
    allowed = {c.action for made in FUNCTION_ACTIONS["send_invoices"].values() for c in made}
    assert {"dynamodb:PutItem", "s3:PutObject", "events:PutEvents"} <= calls["send_invoices"]
    assert calls["send_invoices"] <= allowed, sorted(calls["send_invoices"] - allowed)
    # AND one adjustment invoice, in its own sequence: 6.60 − 5.53 = 1.07; tax
    # round(197.80 × 0.2) − 39.35 = 39.56 − 39.35 = 0.21; total 1.28
    assert applied["acct-1"] == {
        "account_id": "acct-1",
        "outcome": "adjusted",
        "adjustment": {"number": "ADJ-2026-000001", "total": "1.28", "email": "sent"},
    }
    adjustment = stored_json(credited_once, "ADJ-2026-000001")
    assert "credit_note_number" not in adjustment
    assert (adjustment["adjustment_number"], adjustment["invoice_number"]) == (
        "ADJ-2026-000001",
        "INV-2026-000001",
    )
    [line] = adjustment["lines"]
    assert (line["meter"], line["quantity"], line["amount"]) == ("api_requests", "0", "1.07")
    # original − credit note + adjustment = corrected: 236.72 − 0.64 + 1.28 = 237.36
    # = 197.80 + 39.56, the re-rated invoice's total
    assert (adjustment["subtotal"], adjustment["tax"], adjustment["total"]) == (
        "1.07",
        "0.21",
        "1.28",
    )
    assert adjustment["invoice_total_after"] == "237.36"
    pdf = document_key("acct-1", "2026-11", "ADJ-2026-000001", "pdf")
    assert credited_once.aws.object(INVOICE_BUCKET, pdf).startswith(b"%PDF")
    # AND AdjustmentIssued announced it once
    announced = [detail for kind, detail in published if kind == "AdjustmentIssued"]
    assert [(each["adjustment_number"], each["total"]) for each in announced] == [
        ("ADJ-2026-000001", "1.28")
    ]
    # AND applying it again issues nothing more
    emails = len(credited_once.aws.sent_emails())
    again = by_account(rerate("--apply", "--reason", REASON))["acct-1"]
    assert (again["outcome"], again["reason"]) == ("unchanged", "ADJ-2026-000001: issued before")
    assert len(credited_once.aws.sent_emails()) == emails
    assert len([kind for kind, _ in published if kind == "AdjustmentIssued"]) == 1
