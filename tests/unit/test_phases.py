"""Plan changes (CONTRACT.md 2a): validation, the plan in force by local date, the rater's
keys, and invoices priced phase by phase, with amounts worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.core.catalog import Account, CatalogError, parse_accounts, parse_catalog
from billing.core.events import decode_record
from billing.core.invoice import build_invoice, phase_lines
from billing.core.periods import Period, start_of_day, zone
from billing.core.phases import Phases, phase_shares
from billing.core.usage import Aggregate, MeterUsage
from billing.rating.ledger import AccountLedger
from billing.rating.rater import Outcome, StreamRecord, rate_batch

pytestmark = pytest.mark.unit

D = Decimal
NOV = Period(2026, 11)
ISSUED = datetime(2026, 12, 1, 6, tzinfo=UTC)

TIERS = [
    {"up_to": 100, "unit_price": "0"},
    {"up_to": None, "unit_price": "0.10", "flat_fee": "1.00"},
]
CATALOG = parse_catalog(
    {
        "meters": [
            {"name": "api", "unit": "request", "aggregation": "sum"},
            {"name": "seats", "unit": "seat", "aggregation": "max"},
        ],
        "plans": [
            {
                "id": "starter",
                "name": "Starter",
                "currency": "USD",
                "fixed_fee": "30.00",
                "minimum_commitment": "60.00",
                "charges": [{"meter": "api", "model": "graduated", "tiers": TIERS}],
            },
            {
                "id": "pro",
                "name": "Pro",
                "currency": "USD",
                "fixed_fee": "90.00",
                "charges": [
                    {"meter": "api", "model": "graduated", "tiers": TIERS},
                    {
                        "meter": "api",
                        "model": "per_unit",
                        "unit_price": "0.01",
                        "filters": {"region": ["eu"]},
                        "description": "API (EU)",
                    },
                    {"meter": "seats", "model": "per_unit", "unit_price": "2.00"},
                ],
            },
            {"id": "euro", "name": "Euro", "currency": "EUR", "charges": []},
        ],
    }
)


def account(**fields: Any) -> Account:
    document = {
        "id": "acct-1",
        "name": "Customer",
        "email": "billing@customer.example",
        "plan": "starter",
        "timezone": "UTC",
        **fields,
    }
    return parse_accounts({"accounts": [document]}, CATALOG).accounts[0]


def usage(
    quantity: str, *, aggregation: Any = "sum", shares: dict[str, str] | None = None
) -> MeterUsage:
    by_filter = {key: Aggregate(D(value), 1) for key, value in (shares or {}).items()}
    return MeterUsage(aggregation, Aggregate(D(quantity), 1), by_filter)


# --- validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"start": "2026-11-15"}, "changes[0].effective", "must be after start"),
        ({"start": "2026-11-20"}, "changes[0].effective", "must be after start"),
        ({"end": "2026-11-15"}, "changes[0].effective", "must be before end"),
        (
            {"changes": [{"effective": "2026-11-15", "plan": "pro"}] * 2},
            "changes[1].effective",
            "after the change before it",
        ),
        ({"changes": [{"effective": "2026-11-15", "plan": "gold"}]}, "changes[0].plan", "unknown"),
        (
            {"changes": [{"effective": "2026-11-15", "plan": "starter"}]},
            "changes[0].plan",
            "already the plan in force",
        ),
        ({"changes": [{"effective": "2026-11-15", "plan": "euro"}]}, "changes[0].plan", "EUR"),
        (
            {"changes": [{"effective": "2026-11-15", "plan": "pro", "when": "now"}]},
            "changes[0].when",
            "not a known field",
        ),
        ({"changes": [{"effective": "15/11/2026", "plan": "pro"}]}, "changes[0].effective", ""),
    ],
)
def test_bad_changes_are_refused_naming_account_entry_and_field(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    fields = {"changes": [{"effective": "2026-11-15", "plan": "pro"}], **fields}
    with pytest.raises(CatalogError) as refused:
        account(**fields)
    assert refused.value.entry == "accounts[0] (acct-1)"
    assert refused.value.field == field
    assert reason in refused.value.reason


def test_changes_back_and_forth_are_phases_in_date_order() -> None:
    customer = account(
        start="2026-09-01",
        changes=[
            {"effective": "2026-10-01", "plan": "pro"},
            {"effective": "2026-11-10", "plan": "starter"},
            {"effective": "2026-11-20", "plan": "pro"},
        ],
    )
    phases = Phases(customer, CATALOG)
    assert phases.plan_on(date(2026, 9, 30)).id == "starter"
    assert phases.plan_on(date(2026, 10, 1)).id == "pro"
    assert [(p.plan.id, p.first.day, p.end.day, p.suffix) for p in phases.in_period(NOV)] == [
        ("pro", 1, 10, ""),
        ("starter", 10, 20, "@2026-11-10"),
        ("pro", 20, 1, "@2026-11-20"),
    ]
    # October: one phase from the 1st (a change on a period's first day marks nothing)
    assert [(p.plan.id, p.suffix) for p in phases.in_period(Period(2026, 10))] == [("pro", "")]


# --- invoices ----------------------------------------------------------------------------


def test_a_tiered_meter_split_over_two_phases_starts_its_tiers_again() -> None:
    customer = account(changes=[{"effective": "2026-11-16", "plan": "pro"}])
    stored = {
        "api": usage("150"),
        "api@2026-11-16": usage("130", shares={"region=eu": "40"}),
        "seats@2026-11-16": usage("3", aggregation="max"),
    }
    invoice = build_invoice(
        customer, CATALOG.plans_by_id["starter"], CATALOG, NOV, stored, number="", issued_at=ISSUED
    )
    amounts = [(line.kind, line.description, str(line.amount)) for line in invoice.lines]
    # Starter, 1-15 Nov (15 of 30 days): api 150 → 50 × 0.10 + 1.00 = 6.00; fixed
    # 30.00 × 15/30 = 15.00; minimum 60.00 × 15/30 = 30.00 - 21.00 = 9.00.
    # Pro, 16-30 Nov (15 days): api 130, tiers again from 0 → 30 × 0.10 + 1.00 = 4.00 (150
    # + 130 = 280 in one phase would be 180 × 0.10 + 1.00 = 19.00); EU 40 × 0.01 = 0.40;
    # seats 3 × 2.00 = 6.00; fixed 90.00 × 15/30 = 45.00; no minimum.
    assert amounts == [
        ("usage", "api", "6.00"),
        ("fixed", "Starter plan", "15.00"),
        ("minimum", "Minimum commitment", "9.00"),
        ("usage", "api", "4.00"),
        ("usage", "API (EU)", "0.40"),
        ("usage", "seats", "6.00"),
        ("fixed", "Pro plan", "45.00"),
    ]
    assert str(invoice.subtotal) == "85.40"  # 6 + 15 + 9 + 4 + 0.40 + 6 + 45
    marks = {(line["plan"], line["from"], line["to"]) for line in invoice.to_json()["lines"]}
    assert marks == {("starter", "2026-11-01", "2026-11-16"), ("pro", "2026-11-16", "2026-12-01")}


def test_fees_and_minimums_are_prorated_by_each_phases_active_days() -> None:
    # Subscribed from 10 Nov, pro from 20 Nov, ended 25 Nov: starter 10 days, pro 5.
    customer = account(
        start="2026-11-10", end="2026-11-25", changes=[{"effective": "2026-11-20", "plan": "pro"}]
    )
    invoice = build_invoice(
        customer, CATALOG.plans_by_id["starter"], CATALOG, NOV, {}, number="", issued_at=ISSUED
    )
    lines = [(line.kind, str(line.amount)) for line in invoice.lines if line.kind != "usage"]
    # starter: fixed 30.00 × 10/30 = 10.00; minimum 60.00 × 10/30 = 20.00, owed 10.00;
    # pro: fixed 90.00 × 5/30 = 15.00 (no minimum commitment).
    assert lines == [("fixed", "10.00"), ("minimum", "10.00"), ("fixed", "15.00")]
    assert str(invoice.total) == "35.00"
    first, last = invoice.to_json()["lines"][0], invoice.to_json()["lines"][-1]
    assert (first["from"], first["to"]) == ("2026-11-10", "2026-11-20")
    assert (last["from"], last["to"]) == ("2026-11-20", "2026-11-25")


def test_a_minimum_is_owed_per_phase_even_when_another_phase_exceeds_its_own() -> None:
    customer = account(changes=[{"effective": "2026-11-11", "plan": "pro"}])
    stored = {"api@2026-11-11": usage("2100")}
    invoice = build_invoice(
        customer, CATALOG.plans_by_id["starter"], CATALOG, NOV, stored, number="", issued_at=ISSUED
    )
    # starter 1-10 Nov: fixed 30.00 × 10/30 = 10.00, minimum 60.00 × 10/30 = 20.00 → 10.00
    # owed, though pro's 2000 × 0.10 + 1.00 = 201.00 is far above anything.
    assert [str(line.amount) for line in invoice.lines] == [
        "0.00",
        "10.00",
        "10.00",
        "201.00",
        "0.00",
        "0.00",
        "60.00",  # 90.00 × 20/30
    ]


def test_a_change_at_a_local_midnight_that_dst_skips_takes_effect_at_the_jump() -> None:
    # Santiago moves its clocks from 00:00 to 01:00 on 6 September 2026: that day starts at
    # 04:00Z (00:00 at -04:00, which is 01:00 at -03:00).
    customer = account(
        timezone="America/Santiago", changes=[{"effective": "2026-09-06", "plan": "pro"}]
    )
    midnight = start_of_day(date(2026, 9, 6), zone("America/Santiago"))
    assert midnight.astimezone(UTC) == datetime(2026, 9, 6, 4, tzinfo=UTC)
    events = [
        ("before", "2026-09-06T03:59:59Z", 120),  # 23:59:59 on the 5th: starter
        ("after", "2026-09-06T04:00:00Z", 150),  # 01:00 on the 6th: pro
    ]
    records = [
        StreamRecord(
            "shardId-0",
            str(100 + n),
            json.dumps(
                {
                    "event_id": e,
                    "account_id": "acct-1",
                    "meter": "api",
                    "quantity": q,
                    "timestamp": t,
                }
            ).encode(),
        )
        for n, (e, t, q) in enumerate(events)
    ]
    result = rate_batch(
        [(record, decode_record(record.data)) for record in records],
        catalog=CATALOG,
        accounts={"acct-1": customer},
        ledgers={"acct-1": AccountLedger("acct-1")},
        seen={"acct-1": set()},
        now=datetime(2026, 9, 30, tzinfo=UTC),
    )
    assert [item.outcome for item in result.results] == [Outcome.RATED] * 2
    stored = result.writes["acct-1"].after.usage["2026-09"]
    assert {key: value.total.quantity for key, value in stored.items()} == {
        "api": 120,
        "api@2026-09-06": 150,
    }
    invoice = build_invoice(
        customer,
        CATALOG.plans_by_id["starter"],
        CATALOG,
        Period(2026, 9),
        stored,
        number="",
        issued_at=ISSUED,
    )
    # starter 1-5 Sep (5 of 30 days): 20 × 0.10 + 1.00 = 3.00; fixed 30.00 × 5/30 = 5.00;
    # minimum 60.00 × 5/30 = 10.00 → 2.00. pro 6-30 Sep (25 days): 50 × 0.10 + 1.00 = 6.00,
    # EU 0, seats 0, fixed 90.00 × 25/30 = 75.00.
    assert [str(line.amount) for line in invoice.lines] == [
        "3.00", "5.00", "2.00", "6.00", "0.00", "0.00", "75.00"
    ]  # fmt: skip
    assert str(invoice.total) == "91.00"


def test_an_account_without_changes_keeps_its_usage_names_and_lines() -> None:
    customer = account()
    stored = {"api": usage("150")}
    assert phase_shares(stored, {"": CATALOG.plans_by_id["starter"]}) == stored
    invoice = build_invoice(
        customer, CATALOG.plans_by_id["starter"], CATALOG, NOV, stored, number="", issued_at=ISSUED
    )
    assert all(not {"plan", "from", "to"} & line.keys() for line in invoice.to_json()["lines"])


# --- property: phases of one plan price untiered usage as the whole period does -----------

UNTIERED = parse_catalog(
    {
        "meters": [
            {"name": "api", "unit": "request", "aggregation": "sum"},
            {"name": "jobs", "unit": "job", "aggregation": "count"},
        ],
        "plans": [
            {
                "id": "flat",
                "name": "Flat",
                "currency": "USD",
                "charges": [
                    {"meter": "api", "model": "per_unit", "unit_price": "0.25"},
                    {"meter": "jobs", "model": "per_unit", "unit_price": "1.10"},
                ],
            }
        ],
    }
)


@settings(max_examples=60, deadline=None)
@given(
    split=st.integers(min_value=1, max_value=29),
    events=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=29),
            st.sampled_from(["api", "jobs"]),
            st.integers(min_value=0, max_value=10_000),
        ),
        max_size=30,
    ),
)
def test_two_phases_of_one_plan_give_the_usage_lines_of_the_whole_period(
    split: int, events: list[tuple[int, str, int]]
) -> None:
    plan = UNTIERED.plans_by_id["flat"]

    def usage_of(days: range) -> dict[str, MeterUsage]:
        result: dict[str, MeterUsage] = {}
        for day, meter, quantity in events:
            if day in days:
                aggregation = UNTIERED.meters_by_name[meter].aggregation
                current = result.get(meter) or MeterUsage(aggregation)
                result[meter] = current.add(D(quantity), ())
        return result

    # Whole-cent prices of whole quantities: every line is exact, so no rounding differs.
    whole = phase_lines(plan, UNTIERED, NOV, usage_of(range(30)), 30)
    parts = [
        phase_lines(plan, UNTIERED, NOV, usage_of(range(split)), split),
        phase_lines(plan, UNTIERED, NOV, usage_of(range(split, 30)), 30 - split),
    ]
    for position, line in enumerate(whole):
        pieces = [part[position] for part in parts]
        assert all(piece.meter == line.meter for piece in pieces)
        assert sum(piece.quantity for piece in pieces) == line.quantity
        assert sum(piece.amount.amount for piece in pieces) == line.amount.amount


def test_three_phases_then_a_discount_on_everything_before_it() -> None:
    # pro → starter on 11 Nov → pro on 21 Nov: pro twice, each part its own phase, then a
    # 10% discount after all of their lines.
    customer = account(
        start="2026-10-01",
        changes=[
            {"effective": "2026-10-15", "plan": "pro"},
            {"effective": "2026-11-11", "plan": "starter"},
            {"effective": "2026-11-21", "plan": "pro"},
        ],
        discounts=[{"id": "d", "percent": "10", "from": "2026-11", "periods": 1}],
    )
    stored = {"api": usage("110"), "api@2026-11-11": usage("120"), "api@2026-11-21": usage("90")}
    invoice = build_invoice(
        customer, CATALOG.plans_by_id["starter"], CATALOG, NOV, stored, number="", issued_at=ISSUED
    )
    # pro 1-10 Nov (10 days): api 110 → 10 × 0.10 + 1.00 = 2.00; EU 0; seats 0; fixed
    # 90.00 × 10/30 = 30.00. starter 11-20 Nov (10 days): api 120 → 20 × 0.10 + 1.00 = 3.00;
    # fixed 10.00; minimum 20.00 - 13.00 = 7.00. pro 21-30 Nov (10 days): api 90 → 0.00;
    # fixed 30.00. Before the discount: 2 + 30 + 3 + 10 + 7 + 30 = 82.00; 10% → -8.20.
    amounts = [
        (line.phase.plan if line.phase else None, str(line.amount)) for line in invoice.lines
    ]
    assert amounts == [
        ("pro", "2.00"), ("pro", "0.00"), ("pro", "0.00"), ("pro", "30.00"),
        ("starter", "3.00"), ("starter", "10.00"), ("starter", "7.00"),
        ("pro", "0.00"), ("pro", "0.00"), ("pro", "0.00"), ("pro", "30.00"),
        (None, "-8.20"),
    ]  # fmt: skip
    assert str(invoice.subtotal) == "73.80"
    assert "plan" not in invoice.to_json()["lines"][-1]
