"""The usage API's view of prepaid credits (CONTRACT.md 2a): each grant's balance after the
invoices issued, what the period's invoice draws (projected while open, as drawn once
invoiced), and the preview's credits_applied and amount_due. Worked out by hand from
acct-1's November total, 236.72 (tests/support/examples.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import yaml

from billing.core.catalog import Catalog, parse_accounts
from billing.store.config_store import ConfigStore
from tests.integration.test_usage_api import USAGE, Api, api, issue_invoices  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GRANTS = [
    {"id": "prepay", "amount": "200.00", "granted": "2026-10-01"},
    {"id": "promo", "amount": "50.00", "granted": "2026-11-01", "expires": "2026-12-01"},
]


def with_grants(api: Api, catalog: Catalog) -> None:  # noqa: F811
    """acct-1 with the two grants, and November's events rated."""
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    document["accounts"][0]["credits"] = GRANTS
    accounts = parse_accounts(document, catalog)
    ConfigStore(api.aws.dynamodb, api.aws.config_table).put_accounts(accounts)
    api.aws.rate_examples()


def test_an_open_period_projects_its_draw_on_balances_untouched(
    api: Api,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
) -> None:
    with_grants(api, example_catalog)

    # WHEN November is asked for while open
    live = api.json(USAGE, {"period": "2026-11"}, account_id="acct-1")

    # THEN promo (expiring first) 50.00, then prepay 236.72 − 50.00 = 186.72 are projected;
    # nothing has been drawn yet
    preview = live["invoice_preview"]
    assert (preview["total"], preview["credits_applied"], preview["amount_due"]) == (
        "236.72",
        "236.72",
        "0.00",
    )
    assert preview["credits"] == [
        {"id": "promo", "amount": "50.00"},
        {"id": "prepay", "amount": "186.72"},
    ]
    assert live["credits"] == [
        {
            "id": "prepay",
            "amount": "200.00",
            "granted": "2026-10-01",
            "expires": None,
            "remaining": "200.00",
            "this_period": "186.72",
        },
        {
            "id": "promo",
            "amount": "50.00",
            "granted": "2026-11-01",
            "expires": "2026-12-01",
            "remaining": "50.00",
            "this_period": "50.00",
        },
    ]


def test_an_invoiced_period_shows_what_it_drew_and_the_next_draws_what_is_left(
    api: Api,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
) -> None:
    with_grants(api, example_catalog)

    # WHEN November is invoiced, then asked for again, and December with it
    issue_invoices()
    api.clock[0] = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    closed = api.json(USAGE, {"period": "2026-11"}, account_id="acct-1")
    december = api.json(USAGE, account_id="acct-1")

    # THEN November shows what it drew, and the balances after it: prepay 200.00 − 186.72
    # = 13.28, promo 0.00
    assert closed["status"] == "closed"
    assert closed["invoice_preview"]["credits"] == [
        {"id": "promo", "amount": "50.00"},
        {"id": "prepay", "amount": "186.72"},
    ]
    assert [(g["remaining"], g["this_period"]) for g in closed["credits"]] == [
        ("13.28", "186.72"),
        ("0.00", "50.00"),
    ]
    # AND December (promo expired on 1 December) projects prepay's last 13.28
    due = december["invoice_preview"]
    assert due["credits"] == [{"id": "prepay", "amount": "13.28"}]
    assert due["amount_due"] == str(Decimal(due["total"]) - Decimal("13.28"))
    assert [(g["remaining"], g["this_period"]) for g in december["credits"]] == [
        ("13.28", "13.28"),
        ("0.00", "0.00"),
    ]
