"""What a customer sees of an account that changes plan before its invoice: the usage
report (usage API, `billing usage`) and spend alerts show each phase as the invoice will."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.core.phases import Phases
from billing.core.spend import running_charges, running_subtotal
from billing.customer.api_models import UsageReportBody
from billing.customer.usage_view import usage_report
from billing.rating.ledger import AccountLedger
from tests.unit.test_phases import CATALOG, NOV, account, usage

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
STORED = {
    "api": usage("150"),
    "api@2026-11-16": usage("130", shares={"region=eu": "40"}),
    "seats@2026-11-16": usage("3", aggregation="max"),
}


def test_the_usage_report_shows_each_phases_charges_and_the_invoice_it_will_get() -> None:
    customer = account(changes=[{"effective": "2026-11-16", "plan": "pro"}])
    ledger = AccountLedger("acct-1", version=3, usage={"2026-11": STORED})
    report = usage_report(customer, CATALOG, ledger, NOV, now=NOW)
    document = report.to_json()
    api, seats = document["meters"]
    # api over the period: 150 + 130 = 280 in 2 events; starter's line 6.00 (50 × 0.10 +
    # 1.00), pro's 4.00 (30 × 0.10 + 1.00) and its EU share 0.40 (40 × 0.01).
    assert (api["quantity"], api["events"]) == ("280", 2)
    assert [(c.get("plan"), c.get("from"), c["amount"]) for c in api["charges"]] == [
        ("starter", "2026-11-01", "6.00"),
        ("pro", "2026-11-16", "4.00"),
        ("pro", "2026-11-16", "0.40"),
    ]
    assert [(c["plan"], c["amount"]) for c in seats["charges"]] == [("pro", "6.00")]
    assert document["usage_subtotal"] == "16.40"  # 6.00 + 4.00 + 0.40 + 6.00
    # the preview is the invoice (see test_a_tiered_meter_split_over_two_phases...): 85.40
    assert document["invoice_preview"]["total"] == "85.40"
    assert (
        UsageReportBody.model_validate(document).model_dump(by_alias=True)["meters"][0]["charges"][
            0
        ]["from"]
        == "2026-11-01"
    )


def test_spend_alerts_price_each_phase_as_the_invoice_will() -> None:
    customer = account(changes=[{"effective": "2026-11-16", "plan": "pro"}])
    phases = Phases(customer, CATALOG)
    charges = running_charges(CATALOG.plans_by_id["starter"], {"2026-11": STORED}, phases)
    assert charges["2026-11"] == {
        "api": Decimal("6.00"),
        "api@2026-11-16": Decimal("4.00"),
        "api|region=eu@2026-11-16": Decimal("0.40"),
        "seats@2026-11-16": Decimal("6.00"),
    }
    assert running_subtotal(charges["2026-11"], "USD") == Decimal("16.40")


def test_the_pdf_heads_each_phase_with_its_plan_and_dates_and_the_email_is_right() -> None:
    from billing.core.invoice import build_invoice
    from billing.invoicing.document import render_invoice_pdf
    from tests.unit.test_pdf import readable, text_of

    customer = account(changes=[{"effective": "2026-11-16", "plan": "pro"}])
    invoice = build_invoice(
        customer,
        CATALOG.plans_by_id["starter"],
        CATALOG,
        NOV,
        STORED,
        number="INV-2026-000001",
        issued_at=NOW,
    )
    text = readable(text_of(render_invoice_pdf(invoice, customer)))
    starter, pro = (
        text.index("Starter plan: Nov 1, 2026 – Nov 15, 2026"),
        text.index("Pro plan: Nov 16, 2026 – Nov 30, 2026"),
    )
    assert starter < text.index("Minimum commitment") < pro  # starter's minimum under it
    # one phase: no heading at all
    single = build_invoice(
        account(), CATALOG.plans_by_id["starter"], CATALOG, NOV, {}, number="N", issued_at=NOW
    )
    assert " plan: " not in readable(text_of(render_invoice_pdf(single, account())))
