"""A small world for the customer API and the rater's days, computed by hand.

acct-a (Alpha Co) is on Pacific/Kiritimati, UTC+14: its November runs from
2026-10-31T10:00Z to 2026-11-30T10:00Z, so its local day of an event is 14 hours after the
event's UTC time. acct-b (Bravo Secret Ltd, UTC) is the other account its key must never
see. acct-c (UTC) uses every aggregation, for the rater's days.

acct-a's November, by hand (the plan `team`: fixed fee 10.00; api_calls graduated, the
first 1,000 free then 0.01; seats per_unit 5.00; a 10% discount for 2026-11; tax 10%; a
prepaid grant of 20.00):

| event | UTC | local (UTC+14) | meter | quantity |
|---|---|---|---|---|
| a1 | 2026-10-31T10:00:00Z | 11-01 00:00 | api_calls | 700 |
| a2 | 2026-11-01T09:59:59Z | 11-01 23:59:59 | api_calls | 500 |
| a3 | 2026-11-01T10:00:00Z | 11-02 00:00 | api_calls | 300 |
| a4 | 2026-11-01T12:00:00Z | 11-02 02:00 | seats | 3 |
| a5 | 2026-11-04T00:00:00Z | 11-04 14:00 | seats | 5 |
| a6 | 2026-11-04T01:00:00Z | 11-04 15:00 | seats | 4 |
| a7 | 2026-11-30T09:00:00Z | 11-30 23:00 | api_calls | 250 |
| a8 | 2026-11-30T10:00:00Z | 12-01 00:00 | api_calls | 999 (December) |

api_calls: 1,750 (days 1: 1,200, 2: 300, 30: 250) → 750 × 0.01 = 7.50;
seats: max 5 (days 2: 3, 4: 5) → 5 × 5.00 = 25.00; fixed fee 10.00; subtotal before the
discount 42.50; discount −4.25 (10%); subtotal 38.25; tax 3.825 → 3.83; total 42.08; the
grant draws 20.00; amount due 22.08.
"""

from __future__ import annotations

from typing import Any

from billing.core.catalog import Accounts, Catalog, parse_accounts, parse_catalog

CATALOG: Catalog = parse_catalog(
    {
        "meters": [
            {"name": "api_calls", "unit": "call", "aggregation": "sum"},
            {"name": "seats", "unit": "seat", "aggregation": "max"},
            {"name": "exports", "unit": "export", "aggregation": "count"},
            {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user"},
            {"name": "level", "unit": "level", "aggregation": "latest"},
        ],
        "plans": [
            {
                "id": "team",
                "name": "Team",
                "currency": "USD",
                "fixed_fee": "10.00",
                "charges": [
                    {
                        "meter": "api_calls",
                        "model": "graduated",
                        "tiers": [
                            {"up_to": 1000, "unit_price": "0"},
                            {"up_to": None, "unit_price": "0.01"},
                        ],
                    },
                    {"meter": "seats", "model": "per_unit", "unit_price": "5.00"},
                ],
            }
        ],
    }
)

ACCOUNTS: Accounts = parse_accounts(
    {
        "accounts": [
            {
                "id": "acct-a",
                "name": "Alpha Co",
                "email": "billing@alpha.example",
                "plan": "team",
                "timezone": "Pacific/Kiritimati",
                "tax_rate": "0.10",
                "discounts": [{"id": "welcome", "percent": "10", "from": "2026-11", "periods": 1}],
                "credits": [{"id": "pre-1", "amount": "20.00", "granted": "2026-11-01"}],
            },
            {
                "id": "acct-b",
                "name": "Bravo Secret Ltd",
                "email": "ap@bravo-secret.example",
                "plan": "team",
                "timezone": "UTC",
                "credits": [{"id": "bravo-grant-77", "amount": "777.77", "granted": "2026-11-01"}],
            },
            {
                "id": "acct-c",
                "name": "Charlie",
                "email": "c@charlie.example",
                "plan": "team",
                "timezone": "UTC",
            },
        ]
    },
    CATALOG,
)


def event(
    event_id: str, account: str, meter: str, quantity: int | str, at: str, **dimensions: str
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account,
        "meter": meter,
        "quantity": quantity,
        "timestamp": at,
    }
    if dimensions:
        document["dimensions"] = dimensions
    return document


ALPHA_EVENTS = [
    event("a1", "acct-a", "api_calls", 700, "2026-10-31T10:00:00Z"),
    event("a2", "acct-a", "api_calls", 500, "2026-11-01T09:59:59Z"),
    event("a3", "acct-a", "api_calls", 300, "2026-11-01T10:00:00Z"),
    event("a4", "acct-a", "seats", 3, "2026-11-01T12:00:00Z"),
    event("a5", "acct-a", "seats", 5, "2026-11-04T00:00:00Z"),
    event("a6", "acct-a", "seats", 4, "2026-11-04T01:00:00Z"),
    event("a7", "acct-a", "api_calls", 250, "2026-11-30T09:00:00Z"),
    event("a8", "acct-a", "api_calls", 999, "2026-11-30T10:00:00Z"),
]
# acct-b's figures are distinctive, so that any of them in an answer to acct-a is found.
BRAVO_EVENTS = [
    event("bravo-evt-1", "acct-b", "api_calls", 123457, "2026-11-10T00:00:00Z"),
    event("bravo-evt-2", "acct-b", "seats", 77, "2026-11-11T00:00:00Z"),
]
# What acct-b's data is made of: none of it may appear in an answer to acct-a's key.
BRAVO_SECRETS = (
    "acct-b",
    "Bravo",
    "bravo",
    "123457",
    "77",
    "777.77",
)
