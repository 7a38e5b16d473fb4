"""CONTRACT.md 2a through `billing run`, checked against an independent oracle
(oracle_2a, which shares no code with the project) and, for each edge, against the
arithmetic written out by hand. One run of November 2026 holds every account."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness_2a import Run, comparable, expected_for, run

PERIOD = "2026-11"
GRADUATED = [
    {"up_to": 100, "unit_price": "0"},
    {"up_to": None, "unit_price": "0.10", "flat_fee": "1.00"},
]
VOLUME = [
    {"up_to": 10, "unit_price": "2.00"},
    {"up_to": None, "unit_price": "1.00", "flat_fee": "3.00"},
]
CATALOG: dict[str, Any] = {
    "meters": [
        {"name": "api", "unit": "request", "aggregation": "sum"},
        {"name": "calls", "unit": "call", "aggregation": "count"},
        {"name": "peak", "unit": "seat", "aggregation": "max"},
        {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user_id"},
        {"name": "seats", "unit": "seat", "aggregation": "latest"},
    ],
    "plans": [
        {
            "id": "basic", "name": "Basic", "currency": "USD", "fixed_fee": "30.00",
            "minimum_commitment": "50.00",
            "charges": [
                {"meter": "api", "model": "graduated", "tiers": GRADUATED},
                {"meter": "users", "model": "per_unit", "unit_price": "2.00"},
                {"meter": "seats", "model": "per_unit", "unit_price": "5.00"},
            ],
        },
        {
            "id": "plus", "name": "Plus", "currency": "USD", "fixed_fee": "90.00",
            "minimum_commitment": "120.00",
            "charges": [
                {"meter": "api", "model": "volume", "tiers": VOLUME},
                {"meter": "calls", "model": "package", "package_size": 10,
                 "package_price": "1.00"},
                {"meter": "peak", "model": "per_unit", "unit_price": "3.00"},
                {"meter": "users", "model": "per_unit", "unit_price": "3.00",
                 "filters": {"region": ["eu"]}},
            ],
        },
        {"id": "flat", "name": "Flat", "currency": "USD", "fixed_fee": "12.25",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.01"}]},
        {"id": "free", "name": "Free", "currency": "USD",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.01"}]},
        {"id": "jbasic", "name": "J Basic", "currency": "JPY", "fixed_fee": "1000",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.7"}]},
        {"id": "jplus", "name": "J Plus", "currency": "JPY", "fixed_fee": "3000",
         "minimum_commitment": "2000",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "1.5"}]},
        {"id": "kbasic", "name": "K Basic", "currency": "KWD", "fixed_fee": "10.000",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.0005"}]},
        {"id": "kplus", "name": "K Plus", "currency": "KWD", "fixed_fee": "25.500",
         "charges": [{"meter": "api", "model": "per_unit", "unit_price": "0.0015"}]},
        {
            "id": "uniq", "name": "Uniq", "currency": "USD",
            "charges": [
                {"meter": "users", "model": "per_unit", "unit_price": "1.00"},
                {"meter": "users", "model": "per_unit", "unit_price": "2.00",
                 "filters": {"region": ["eu"]}},
                {"meter": "seats", "model": "per_unit", "unit_price": "5.00"},
                {"meter": "seats", "model": "per_unit", "unit_price": "1.00",
                 "filters": {"tier": ["gold"]}},
                {"meter": "seats", "model": "per_unit", "unit_price": "1.00",
                 "filters": {"tier": ["platinum"]}},
            ],
        },
    ],
}  # fmt: skip


def account(ident: str, plan: str, timezone: str = "UTC", **more: Any) -> dict[str, Any]:
    return {
        "id": ident, "name": ident, "email": f"{ident}@example.com", "plan": plan,
        "timezone": timezone, **more,
    }  # fmt: skip


ACCOUNTS: list[dict[str, Any]] = [
    # A change on the 1st: November is one phase, all Plus.
    account("on-first", "basic", start="2026-09-01",
            changes=[{"effective": "2026-11-01", "plan": "plus"}]),
    # A change on the last day: Basic 29 days, Plus 1 day.
    account("on-last", "basic", start="2026-09-01",
            changes=[{"effective": "2026-11-30", "plan": "plus"}]),
    # Starts on the 10th, changes on the 20th.
    account("start-and-change", "basic", start="2026-11-10",
            changes=[{"effective": "2026-11-20", "plan": "plus"}]),
    # Changes on the 10th, ends on the 25th.
    account("change-and-end", "basic", start="2026-10-01", end="2026-11-25",
            changes=[{"effective": "2026-11-10", "plan": "plus"}]),
    # Three changes in the month: four phases.
    account("several", "basic", start="2026-10-01", changes=[
        {"effective": "2026-11-05", "plan": "plus"},
        {"effective": "2026-11-12", "plan": "basic"},
        {"effective": "2026-11-20", "plan": "plus"},
    ]),
    # New York, changing on 3 November (EST from 1 November 06:00Z).
    account("new-york", "basic", "America/New_York", start="2026-10-01",
            changes=[{"effective": "2026-11-03", "plan": "plus"}]),
    # Kathmandu (+05:45).
    account("kathmandu", "plus", "Asia/Kathmandu", start="2026-10-01", tax_rate="0.13",
            changes=[{"effective": "2026-11-16", "plan": "basic"}]),
    # Discounts in order: 10 % (half up), an amount, one larger than what is left, then a
    # percentage of nothing; windows that miss November add no line.
    account("discounts", "flat", start="2026-10-01", tax_rate="0.20", discounts=[
        {"id": "before", "percent": "50", "from": "2026-09", "periods": 2},
        {"id": "ten", "percent": "10", "from": "2026-10", "periods": 2},
        {"id": "five", "amount": "5.00", "from": "2026-11", "periods": 1},
        {"id": "big", "amount": "100.00", "from": "2026-11", "periods": 1},
        {"id": "third", "percent": "33.3333", "from": "2026-11", "periods": 1},
        {"id": "after", "amount": "1.00", "from": "2026-12", "periods": 1},
    ]),
    # A zero invoice still lists its discounts, at 0.
    account("zero-discount", "free", start="2026-10-01", discounts=[
        {"id": "pct", "percent": "100", "from": "2026-11", "periods": 1},
        {"id": "amt", "amount": "3.00", "from": "2026-11", "periods": 1},
    ], credits=[{"id": "g", "amount": "10.00", "granted": "2026-10-01"}]),
    # JPY with a phase change, discount, tax and a credit.
    account("yen", "jbasic", "Asia/Tokyo", start="2026-10-01", tax_rate="0.10",
            changes=[{"effective": "2026-11-16", "plan": "jplus"}],
            discounts=[{"id": "d", "percent": "15", "from": "2026-11", "periods": 1}],
            credits=[{"id": "y", "amount": "500", "granted": "2026-11-01"}]),
    # KWD with a phase change, an amount and a percent discount, a credit of "5.5".
    account("dinar", "kbasic", "Asia/Kuwait", start="2026-10-01",
            changes=[{"effective": "2026-11-11", "plan": "kplus"}],
            discounts=[{"id": "a", "amount": "1.125", "from": "2026-11", "periods": 1},
                       {"id": "p", "percent": "12.5", "from": "2026-11", "periods": 1}],
            credits=[{"id": "k", "amount": "5.5", "granted": "2026-10-01"}]),
    # Credit draw order: expiring first, no expiry last, then earliest granted, then id.
    account("credits", "flat", start="2026-10-01", tax_rate="0", credits=[
        {"id": "noexp", "amount": "10.00", "granted": "2026-10-01"},
        {"id": "lastday", "amount": "10.00", "granted": "2026-11-30"},
        {"id": "late", "amount": "3.00", "granted": "2026-09-01", "expires": "2027-06-01"},
        {"id": "soon-b", "amount": "2.00", "granted": "2026-10-01", "expires": "2027-01-01"},
        {"id": "soon-a", "amount": "2.00", "granted": "2026-10-01", "expires": "2027-01-01"},
        {"id": "soon-early", "amount": "1.00", "granted": "2026-08-01",
         "expires": "2027-01-01"},
        {"id": "dec1", "amount": "1.50", "granted": "2026-01-01", "expires": "2026-12-01"},
        {"id": "expired", "amount": "99.00", "granted": "2026-01-01", "expires": "2026-11-01"},
        {"id": "future", "amount": "99.00", "granted": "2026-12-01"},
    ]),
    # Plain string order of ids: "Z" sorts before "a".
    account("credit-ids", "flat", start="2026-10-01", credits=[
        {"id": "a", "amount": "10.00", "granted": "2026-10-01"},
        {"id": "Z", "amount": "10.00", "granted": "2026-10-01"},
        {"id": "b", "amount": "10.00", "granted": "2026-10-01"},
    ]),
    # unique_count and latest, with filters.
    account("uniq", "uniq", start="2026-10-01"),
    # No 2a field at all: as before 2a.
    account("plain", "basic", start="2026-11-08", end="2026-11-23", tax_rate="0.20"),
]  # fmt: skip


def ev(ident: str, acct: str, meter: str, quantity: Any, at: str, **dims: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": ident, "account_id": acct, "meter": meter, "quantity": quantity,
        "timestamp": at,
    }  # fmt: skip
    if dims:
        event["dimensions"] = dims
    return event


def usage_for(acct: str, days: list[int], tz_suffix: str = "T12:00:00Z") -> list[dict[str, Any]]:
    """Per day: 60 api units, one call, a peak, a user and a seat reading, so that tiers,
    packages, peaks, distinct users and latest readings differ phase by phase."""
    events = []
    for n, day in enumerate(days):
        at = f"2026-11-{day:02d}{tz_suffix}"
        events += [
            ev(f"{acct}-a{n}", acct, "api", 60, at),
            ev(f"{acct}-c{n}", acct, "calls", 1, at),
            ev(f"{acct}-p{n}", acct, "peak", day % 7, at),
            ev(f"{acct}-u{n}", acct, "users", 1, at, user_id=f"user{n % 3}", region="eu"),
            ev(f"{acct}-s{n}", acct, "seats", day, at),
        ]
    return events


EVENTS: list[dict[str, Any]] = [
    *usage_for("on-first", [1, 2, 30]),
    *usage_for("on-last", [1, 15, 29, 30]),
    *usage_for("start-and-change", [10, 19, 20, 30]),
    *usage_for("change-and-end", [1, 9, 10, 24]),
    *usage_for("several", [1, 4, 5, 6, 11, 12, 19, 20, 30]),
    # New York: 2 Nov 23:59:59 EST is 3 Nov 04:59:59Z; 3 Nov 00:00 EST is 05:00Z.
    ev("ny-1", "new-york", "api", 150, "2026-11-03T04:59:59Z"),
    ev("ny-2", "new-york", "api", 150, "2026-11-03T05:00:00Z"),
    ev("ny-3", "new-york", "seats", 4, "2026-11-01T04:00:00Z"),  # 1 Nov 00:00 EDT
    # Kathmandu: 16 Nov 00:00 +05:45 is 15 Nov 18:15Z.
    ev("kt-1", "kathmandu", "api", 50, "2026-11-15T18:14:59Z"),
    ev("kt-2", "kathmandu", "api", 500, "2026-11-15T18:15:00Z"),
    ev("kt-3", "kathmandu", "users", 0, "2026-11-15T18:14:00Z", user_id="x", region="eu"),
    ev("kt-4", "kathmandu", "users", 0, "2026-11-15T18:16:00Z", user_id="x", region="eu"),
    ev("yen-1", "yen", "api", 5, "2026-11-02T00:00:00+09:00"),
    ev("yen-2", "yen", "api", 3, "2026-11-16T00:00:00+09:00"),
    ev("kw-1", "dinar", "api", 7, "2026-11-05T10:00:00+03:00"),
    ev("kw-2", "dinar", "api", 3, "2026-11-11T00:00:00+03:00"),
    # unique_count: exact values; no field -> no value; quantity ignored; per filter.
    ev("q1", "uniq", "users", 5, "2026-11-02T00:00:00Z", user_id="alice", region="eu"),
    ev("q2", "uniq", "users", 0, "2026-11-03T00:00:00Z", user_id="alice", region="us"),
    ev("q3", "uniq", "users", 1, "2026-11-04T00:00:00Z", user_id="Alice", region="eu"),
    ev("q4", "uniq", "users", 1, "2026-11-05T00:00:00Z", user_id="alice ", region="eu"),
    ev("q5", "uniq", "users", 1, "2026-11-06T00:00:00Z", user_id="bob"),
    ev("q6", "uniq", "users", 1, "2026-11-07T00:00:00Z", region="eu"),
    ev("q7", "uniq", "users", 1, "2026-10-31T23:00:00Z", user_id="dave", region="eu"),
    ev("q8", "uniq", "users", 1, "2026-11-08T00:00:00Z", user_id="alice", region="eu"),
    # latest: the later timestamp wins over the later line; a tie goes to the later line.
    ev("l1", "uniq", "seats", 9, "2026-11-05T00:00:00Z", tier="gold"),
    ev("l2", "uniq", "seats", 4, "2026-11-25T00:00:00Z"),
    ev("l3", "uniq", "seats", 8, "2026-11-20T00:00:00Z"),
    ev("l4", "uniq", "seats", 7, "2026-11-26T10:00:00Z"),
    ev("l5", "uniq", "seats", 3, "2026-11-26T11:00:00+01:00"),
    ev("l6", "uniq", "seats", 6, "2026-11-05T00:00:00+00:00", tier="gold"),
    *usage_for("plain", [8, 22]),
]  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("contract-2a-november")
    return run(folder, CATALOG, {"accounts": ACCOUNTS}, EVENTS, PERIOD, ("--json",))


def test_the_run_succeeds_and_invoices_every_account(result: Run) -> None:
    assert result.exit_code == 0, result.stdout + result.stderr
    assert sorted(result.invoices) == sorted(a["id"] for a in ACCOUNTS)


@pytest.mark.parametrize("acct", [a["id"] for a in ACCOUNTS])
def test_each_invoice_matches_the_oracle(result: Run, acct: str) -> None:
    (spec,) = [a for a in ACCOUNTS if a["id"] == acct]
    expected = expected_for(CATALOG, spec, EVENTS, PERIOD)
    actual = result.invoices[acct]
    assert comparable(actual, expected) == expected


@pytest.mark.parametrize("acct", [a["id"] for a in ACCOUNTS])
def test_phase_fields_on_one_phase_invoices_mean_the_same(result: Run, acct: str) -> None:
    # "on other invoices they may be present and mean the same"
    (spec,) = [a for a in ACCOUNTS if a["id"] == acct]
    expected = expected_for(CATALOG, spec, EVENTS, PERIOD)
    for line in result.invoices[acct]["lines"]:
        if line["kind"] == "discount" or "plan" not in line:
            continue
        assert line["from"] < line["to"]
        assert line["from"][:7] == PERIOD
        assert line["to"] <= "2026-12-01"
    assert expected  # the oracle ran
