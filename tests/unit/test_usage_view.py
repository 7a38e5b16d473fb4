"""The usage view: running charges and the invoice preview, from a ledger as the rater
keeps it, priced by the invoice's own code."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account, Catalog, CatalogError, parse_catalog
from billing.core.periods import Period
from billing.core.usage import Aggregate, MeterUsage
from billing.customer.usage_view import current_period, usage_report
from billing.rating.ledger import AccountLedger

D = Decimal
NOV = Period(2026, 11)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

CATALOG: Catalog = parse_catalog(
    {
        "meters": [
            {"name": "api_requests", "unit": "request", "aggregation": "sum"},
            {"name": "storage", "unit": "GB-hour", "aggregation": "sum", "description": "Storage"},
            {"name": "seats", "unit": "seat", "aggregation": "max"},
        ],
        "plans": [
            {
                "id": "pro",
                "name": "Pro",
                "currency": "USD",
                "fixed_fee": "10.00",
                "minimum_commitment": "20.00",
                "charges": [
                    {"meter": "api_requests", "model": "per_unit", "unit_price": "0.001"},
                    {
                        "meter": "storage",
                        "model": "per_unit",
                        "unit_price": "0.005",
                        "description": "Storage (EU)",
                        "filters": {"region": ["eu-west-1"]},
                    },
                ],
            }
        ],
    }
)
ACCOUNT = Account.model_validate(
    {
        "id": "acct-1",
        "name": "Acme",
        "email": "billing@acme.example",
        "plan": "pro",
        "timezone": "Europe/Paris",
        "tax_rate": "0.20",
    }
)
USAGE = {
    "api_requests": MeterUsage("sum", Aggregate(D("1234.5"), 3)),
    "storage": MeterUsage(
        "sum", Aggregate(D("300"), 2), {"region=eu-west-1": Aggregate(D(101), 1)}
    ),
    "seats": MeterUsage("max", Aggregate(D(4), 2)),
}
LEDGER = AccountLedger("acct-1", version=3, usage={"2026-11": USAGE})


def test_report_prices_each_charge_as_the_invoice_will() -> None:
    # GIVEN a ledger with November usage on two priced meters and one unpriced
    # WHEN the report is asked for in November
    report = usage_report(ACCOUNT, CATALOG, LEDGER, now=NOW)

    # THEN each charge line carries the invoice line's rounded amount (1.2345 -> 1.23,
    # 0.505 -> 0.51), the unpriced meter shows with no charge, and the preview adds the fee
    # and the minimum's difference, then tax
    document = report.to_json()
    assert {key: document[key] for key in ("period", "status", "as_of", "currency")} == {
        "period": "2026-11",
        "status": "open",
        "as_of": "2026-11-20T12:00:00Z",
        "currency": "USD",
    }
    assert document["period_start"] == "2026-11-01T00:00:00+01:00"
    assert document["period_end"] == "2026-12-01T00:00:00+01:00"
    assert document["meters"] == [
        {
            "meter": "api_requests",
            "description": "api_requests",
            "unit": "request",
            "aggregation": "sum",
            "quantity": "1234.5",
            "events": 3,
            "charges": [
                {"description": "api_requests", "quantity": "1234.5", "events": 3, "amount": "1.23"}
            ],
        },
        {
            "meter": "storage",
            "description": "Storage",
            "unit": "GB-hour",
            "aggregation": "sum",
            "quantity": "300",
            "events": 2,
            "charges": [
                {
                    "filters": {"region": ["eu-west-1"]},
                    "description": "Storage (EU)",
                    "quantity": "101",
                    "events": 1,
                    "amount": "0.51",
                }
            ],
        },
        {
            "meter": "seats",
            "description": "seats",
            "unit": "seat",
            "aggregation": "max",
            "quantity": "4",
            "events": 2,
            "charges": [],
        },
    ]
    assert document["usage_subtotal"] == "1.74"
    preview = document["invoice_preview"]
    assert [(line["kind"], line["amount"]) for line in preview["lines"]] == [
        ("usage", "1.23"),
        ("usage", "0.51"),
        ("fixed", "10.00"),
        ("minimum", "8.26"),
    ]
    assert (preview["subtotal"], preview["tax"], preview["total"]) == ("20.00", "4.00", "24.00")


def test_preview_is_the_whole_invoice_without_its_number() -> None:
    # GIVEN November's usage: api_requests 1,234.5, EU storage 101 of 300, seats 4
    # WHEN the report previews November's invoice
    preview = usage_report(ACCOUNT, CATALOG, LEDGER, NOV, now=NOW).to_json()["invoice_preview"]

    # THEN it holds every line an invoice holds, details and all, worked out by hand:
    # 1,234.5 x 0.001 = 1.2345 -> 1.23; 101 x 0.005 = 0.505 -> 0.51; the fixed fee for
    # 30 of 30 days, 10.00; 1.23 + 0.51 + 10.00 = 11.74, below the minimum of 20.00 by 8.26;
    # subtotal 20.00, tax 20.00 x 0.20 = 4.00, total 24.00. No invoice number, no dates.
    assert preview == {
        "lines": [
            {
                "kind": "usage",
                "meter": "api_requests",
                "description": "api_requests",
                "quantity": "1234.5",
                "amount": "1.23",
                "unit": "request",
                "details": [
                    {
                        "description": "units",
                        "quantity": "1234.5",
                        "unit_price": "0.001",
                        "amount": "1.2345",
                    }
                ],
            },
            {
                "kind": "usage",
                "meter": "storage",
                "filters": {"region": ["eu-west-1"]},
                "description": "Storage (EU)",
                "quantity": "101",
                "amount": "0.51",
                "unit": "GB-hour",
                "details": [
                    {
                        "description": "units",
                        "quantity": "101",
                        "unit_price": "0.005",
                        "amount": "0.505",
                    }
                ],
            },
            {
                "kind": "fixed",
                "description": "Pro plan",
                "quantity": "1",
                "amount": "10.00",
                "details": [{"description": "30 of 30 days", "quantity": "30", "amount": "10.00"}],
            },
            {
                "kind": "minimum",
                "description": "Minimum commitment",
                "quantity": "1",
                "amount": "8.26",
                "details": [{"description": "30 of 30 days", "quantity": "30", "amount": "20.00"}],
            },
        ],
        "subtotal": "20.00",
        "tax": "4.00",
        "total": "24.00",
        # an account without prepaid grants: nothing drawn, all of it due
        "credits": [],
        "credits_applied": "0.00",
        "amount_due": "24.00",
    }


def test_default_period_is_the_accounts_own_month() -> None:
    # GIVEN 23:30 UTC on 30 November, already 1 December in Paris
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)

    # WHEN no period is given
    report = usage_report(ACCOUNT, CATALOG, LEDGER, now=late)

    # THEN December is shown, with nothing rated in it yet
    assert current_period(ACCOUNT, late) == Period(2026, 12)
    assert str(report.period) == "2026-12"
    assert str(report.usage_subtotal) == "0.00"
    assert [meter.meter for meter in report.meters] == ["api_requests", "storage"]


def test_a_meter_dropped_from_the_catalog_still_shows_its_usage() -> None:
    # GIVEN usage of a meter the catalog no longer has
    ledger = AccountLedger(
        "acct-1", version=1, usage={"2026-11": {"legacy": MeterUsage("count", Aggregate(D(2), 2))}}
    )

    # WHEN the report is made
    meters = usage_report(ACCOUNT, CATALOG, ledger, NOV, now=NOW).to_json()["meters"]

    # THEN it is listed last, unpriced, with no unit
    assert meters[-1] == {
        "meter": "legacy",
        "description": "legacy",
        "unit": None,
        "aggregation": "count",
        "quantity": "2",
        "events": 2,
        "charges": [],
    }


def test_a_closed_period_is_shown_from_its_archived_usage() -> None:
    # GIVEN November closed: the ledger no longer holds its usage
    ledger = AccountLedger("acct-1", version=4, closed=frozenset({"2026-11"}))

    # WHEN the report is made with the archive, and without
    report = usage_report(ACCOUNT, CATALOG, ledger, NOV, now=NOW, closed_usage=USAGE)

    # THEN the archive gives the same figures; without it, the report refuses to guess
    assert report.status == "closed"
    assert str(report.preview.total) == "24.00"
    with pytest.raises(ValueError, match="period 2026-11 is closed"):
        usage_report(ACCOUNT, CATALOG, ledger, NOV, now=NOW)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"now": datetime(2026, 11, 20, 12)}, ValueError, "aware"),
        ({"account": ACCOUNT.model_copy(update={"plan": "gone"})}, CatalogError, "'gone'"),
    ],
)
def test_refuses_what_it_cannot_price(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"account": ACCOUNT, "now": NOW, **change}
    with pytest.raises(error, match=message):
        usage_report(arguments["account"], CATALOG, LEDGER, now=arguments["now"])
