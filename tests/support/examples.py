"""What the example files (examples/catalog.yaml, accounts.yaml, events.jsonl) must give
for November 2026, worked out by hand: every aggregate, every record's fate and every
invoice line, with the arithmetic written beside it. Tests compare the pipeline's outputs
with these, never with what another part of the pipeline computes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.support.oracle import by_hand

D = Decimal

# --- rating: events.jsonl line by line (0-based positions) ------------------------------------
#
# 0, 1  a1-api-001 1,200,000 and a1-api-002 334,000: rated (acct-1 November)
# 2     a1-api-002 again (999,999): a duplicate; the first one seen wins
# 3-5   acct-1 storage 10,000 (eu-west-1, 23:59:59.999999999 on 30 Nov in Paris: November),
#       5,000.0 (us-east-1), 500 (ap-south-1): rated
# 6-8   acct-1 seats 3 (00:00 on 1 Nov Paris), 12, 7: rated
# 9-11  acct-1 exports (quantities 1, 40, 0): rated, counted 3
# 12    a1-seats-oct 40 at 23:59:59 on 31 Oct Paris: rated into October
# 13,14 acct-2 api 500,000 (00:00 on 16 Nov New York, its first day) and 250,000: rated
# 15    a2-api-early on 10 Nov, before acct-2's start: NOT_SUBSCRIBED
# 16    acct-2 storage 1,000 (us-west-2): rated
# 17    acct-3 api 123,457 (a CloudEvent): rated
# 18-20 acct-3 storage 2,000 and two exports: rated
# 21-23 acct-4 api 150,002, seats 4 and 6: rated
# 24,25 acct-5 api 6e4 = 60,000, storage 12,345.5: rated
# 26,27 acct-6 api 20,000 (2026-10-31T11:00Z = 1 Nov 01:00 in Kiritimati) and 10,000: rated
# 28    a6-api-late at 00:30 on 21 Nov Kiritimati, acct-6's (exclusive) end: NOT_SUBSCRIBED
# 29-33 bad-1 cut short: MALFORMED_JSON; bad-2 acct-99: UNKNOWN_ACCOUNT; bad-3 gpu_hours:
#       UNKNOWN_METER; bad-4 quantity "-5": SCHEMA_INVALID; bad-5 2027-01-01:
#       FUTURE_TIMESTAMP
# Rated 2 + 12 + 12 = 26, duplicates 1, rejected 7: 34 records.
EXAMPLE_RATING = by_hand(
    outcomes=[
        "rated",
        "rated",
        "duplicate",
        *["rated"] * 12,  # 3-14
        "NOT_SUBSCRIBED",  # 15
        *["rated"] * 12,  # 16-27
        "NOT_SUBSCRIBED",
        "MALFORMED_JSON",
        "UNKNOWN_ACCOUNT",
        "UNKNOWN_METER",
        "SCHEMA_INVALID",
        "FUTURE_TIMESTAMP",
    ],
    # (account, period, meter) -> (quantity, events)
    aggregates={
        ("acct-1", "2026-11", "api_requests"): (D(1534000), 2),  # 1,200,000 + 334,000
        ("acct-1", "2026-11", "storage_gb_hours"): (D(15500), 3),  # 10,000 + 5,000 + 500
        ("acct-1", "2026-11", "seats"): (D(12), 3),  # max(3, 12, 7)
        ("acct-1", "2026-11", "exports"): (D(3), 3),  # a count
        ("acct-1", "2026-10", "seats"): (D(40), 1),
        ("acct-2", "2026-11", "api_requests"): (D(750000), 2),  # 500,000 + 250,000
        ("acct-2", "2026-11", "storage_gb_hours"): (D(1000), 1),
        ("acct-3", "2026-11", "api_requests"): (D(123457), 1),
        ("acct-3", "2026-11", "storage_gb_hours"): (D(2000), 1),
        ("acct-3", "2026-11", "exports"): (D(2), 2),
        ("acct-4", "2026-11", "api_requests"): (D(150002), 1),
        ("acct-4", "2026-11", "seats"): (D(6), 2),  # max(4, 6)
        ("acct-5", "2026-11", "api_requests"): (D(60000), 1),
        ("acct-5", "2026-11", "storage_gb_hours"): (D("12345.5"), 1),
        ("acct-6", "2026-11", "api_requests"): (D(30000), 2),  # 20,000 + 10,000
    },
    # The pro plan's filtered storage charges: EU is eu-west-1 or eu-central-1, US is
    # us-east-1 or us-west-2 (acct-1's ap-south-1 500 is in neither).
    shares={
        ("acct-1", "2026-11", "storage_gb_hours", "Storage (EU)"): D(10000),
        ("acct-1", "2026-11", "storage_gb_hours", "Storage (US)"): D(5000),
        ("acct-2", "2026-11", "storage_gb_hours", "Storage (US)"): D(1000),
    },
)
EXAMPLE_SUMMARY = {
    "records": 34,
    "rated": 26,
    "duplicates": 1,
    "rejected": {
        "FUTURE_TIMESTAMP": 1,
        "MALFORMED_JSON": 1,
        "NOT_SUBSCRIBED": 2,
        "SCHEMA_INVALID": 1,
        "UNKNOWN_ACCOUNT": 1,
        "UNKNOWN_METER": 1,
    },
}

# --- invoices ----------------------------------------------------------------------------------
#
# Worked out by hand from examples/*.yaml and examples/events.jsonl for 2026-11.
# The run's clock: the latest end of November among the accounts' zones is New York's,
# 2026-12-01T00:00-05:00 = 05:00Z; + 1 h grace = 2026-12-01T06:00Z.
#
# acct-1 (pro, USD, Europe/Paris, tax 0.20, since 2026-10-10: all of November active)
#   api_requests: 1,200,000 + 334,000 (a1-api-002's resend is a duplicate) = 1,534,000
#     graduated: tier 2 534,000 × 0.000002 = 1.068 + 5.00 = 6.068 → 6.07
#   storage EU: 10,000 (eu-west-1, 23:59:59.999999999 on 30 Nov Paris) × 0.00012 = 1.20
#   storage US: 5,000.0 (us-east-1) × 0.00010 = 0.50; ap-south-1's 500 matches no filter
#   seats: max(3, 12, 7) = 12 (the 40 at 23:59:59 on 31 Oct is October's)
#     volume tier 2: 12 × 10.00 = 120.00 + 20.00 = 140.00
#   exports: count 3 (quantities 1, 40, 0 ignored) → ceil(3 / 1000) = 1 × 0.50 = 0.50
#   fixed 49.00
#   subtotal 6.07 + 1.20 + 0.50 + 140.00 + 0.50 + 49.00 = 197.27 ≥ 100.00 (no minimum)
#   tax 197.27 × 0.20 = 39.454 → 39.45; total 236.72
# acct-2 (pro, USD, America/New_York, no tax, start 2026-11-16: 15 of 30 days)
#   api_requests: 500,000 + 250,000 = 750,000 (a2-api-early on 10 Nov is NOT_SUBSCRIBED)
#     all in tier 1 → 0.00
#   storage EU 0 → 0.00; storage US 1,000 (us-west-2) × 0.00010 = 0.10
#   seats 0 → 0.00; exports 0 → ceil(0) = 0 → 0.00
#   fixed 49.00 × 15 / 30 = 24.50
#   lines 0.10 + 24.50 = 24.60; minimum 100.00 × 15 / 30 = 50.00 → minimum line 25.40
#   subtotal 50.00, tax 0.00, total 50.00
# acct-3 (starter-eur, EUR, Europe/Berlin, tax 0.19)
#   api_requests (a CloudEvent): 123,457 × 0.000015 = 1.851855 → 1.85
#   storage 2,000 × 0.00011 = 0.22
#   exports: count 2 → ceil(2 / 100) = 1 × 0.20 = 0.20
#   fixed 9.00; subtotal 1.85 + 0.22 + 0.20 + 9.00 = 11.27
#   tax 11.27 × 0.19 = 2.1413 → 2.14; total 13.41
# acct-4 (business-jpy, JPY, Asia/Tokyo, tax 0.10)
#   api_requests 150,002: 100,000 free, 50,002 × 0.25 = 12,500.5 → 12501
#   seats max(4, 6) = 6 × 1200 = 7200; fixed 5000
#   subtotal 12501 + 7200 + 5000 = 24701 ≥ 8000 (no minimum)
#   tax 24701 × 0.10 = 2470.1 → 2470; total 27171
# acct-5 (gulf-kwd, KWD, Asia/Kuwait, no tax)
#   api_requests 6e4 = 60,000 > 50,000: volume tier 2, 60,000 × 0.0003 = 18 + 1.500 = 19.500
#   storage 12,345.5 × 0.00004 = 0.49382 → 0.494
#   subtotal 19.994, tax 0.000, total 19.994
# acct-6 (starter-eur, EUR, Pacific/Kiritimati, tax 0.055, end 2026-11-21: 20 of 30 days)
#   api_requests: 20,000 (2026-10-31T11:00Z = 1 Nov 01:00 local) + 10,000 = 30,000
#     (a6-api-late at 00:30 on 21 Nov local is NOT_SUBSCRIBED)
#     × 0.000015 = 0.45
#   storage 0 → 0.00; exports 0 → 0.00
#   fixed 9.00 × 20 / 30 = 6.00; subtotal 6.45
#   tax 6.45 × 0.055 = 0.35475 → 0.35; total 6.80
# Records: 34. Duplicates: 1 (a1-api-002). Rejected: bad-1 MALFORMED_JSON, bad-2
# UNKNOWN_ACCOUNT, bad-3 UNKNOWN_METER, bad-4 ("-5") SCHEMA_INVALID, bad-5 (2027-01-01)
# FUTURE_TIMESTAMP, a2-api-early and a6-api-late NOT_SUBSCRIBED = 7.
# Rated: 34 − 1 − 7 = 26 (including a1-seats-oct, rated into October).
EXAMPLE_INVOICES: dict[str, dict[str, Any]] = {
    "acct-1": {
        "currency": "USD",
        "lines": [
            ("usage", "api_requests", "1534000", "6.07"),
            ("usage", "storage_gb_hours", "10000", "1.20"),
            ("usage", "storage_gb_hours", "5000", "0.50"),
            ("usage", "seats", "12", "140.00"),
            ("usage", "exports", "3", "0.50"),
            ("fixed", None, "1", "49.00"),
        ],
        "totals": ("197.27", "39.45", "236.72"),
    },
    "acct-2": {
        "currency": "USD",
        "lines": [
            ("usage", "api_requests", "750000", "0.00"),
            ("usage", "storage_gb_hours", "0", "0.00"),
            ("usage", "storage_gb_hours", "1000", "0.10"),
            ("usage", "seats", "0", "0.00"),
            ("usage", "exports", "0", "0.00"),
            ("fixed", None, "1", "24.50"),
            ("minimum", None, "1", "25.40"),
        ],
        "totals": ("50.00", "0.00", "50.00"),
    },
    "acct-3": {
        "currency": "EUR",
        "lines": [
            ("usage", "api_requests", "123457", "1.85"),
            ("usage", "storage_gb_hours", "2000", "0.22"),
            ("usage", "exports", "2", "0.20"),
            ("fixed", None, "1", "9.00"),
        ],
        "totals": ("11.27", "2.14", "13.41"),
    },
    "acct-4": {
        "currency": "JPY",
        "lines": [
            ("usage", "api_requests", "150002", "12501"),
            ("usage", "seats", "6", "7200"),
            ("fixed", None, "1", "5000"),
        ],
        "totals": ("24701", "2470", "27171"),
    },
    "acct-5": {
        "currency": "KWD",
        "lines": [
            ("usage", "api_requests", "60000", "19.500"),
            ("usage", "storage_gb_hours", "12345.5", "0.494"),
        ],
        "totals": ("19.994", "0.000", "19.994"),
    },
    "acct-6": {
        "currency": "EUR",
        "lines": [
            ("usage", "api_requests", "30000", "0.45"),
            ("usage", "storage_gb_hours", "0", "0.00"),
            ("usage", "exports", "0", "0.00"),
            ("fixed", None, "1", "6.00"),
        ],
        "totals": ("6.45", "0.35", "6.80"),
    },
}


def invoice_view(document: dict[str, Any]) -> dict[str, Any]:
    """An invoice's (or invoice preview's) JSON in EXAMPLE_INVOICES's shape."""
    view = {
        "lines": [
            (line["kind"], line.get("meter"), line["quantity"], line["amount"])
            for line in document["lines"]
        ],
        "totals": (document["subtotal"], document["tax"], document["total"]),
    }
    if "currency" in document:
        view["currency"] = document["currency"]
    return view
