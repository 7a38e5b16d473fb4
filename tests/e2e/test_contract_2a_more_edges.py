"""More CONTRACT.md 2a edges through `billing run`, against the independent oracle and by
hand: a plan change at a midnight DST skips (Santiago), minimums per phase with nothing
used, `latest` to the nanosecond, and resends that must not add a value or a reading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness_2a import Run, comparable, expected_for, run
from tests.e2e.test_contract_2a_phases_discounts_credits import CATALOG, account, ev

SEPTEMBER_ACCOUNTS = [
    # Chile skips 6 September 00:00 (-04) to 01:00 (-03): the phase starts at the jump,
    # 04:00Z; a subscription starting that day starts there too.
    account("santiago", "basic", "America/Santiago", start="2026-08-01",
            changes=[{"effective": "2026-09-06", "plan": "plus"}]),
    account("santiago-start", "basic", "America/Santiago", start="2026-09-06"),
]  # fmt: skip
SEPTEMBER_EVENTS = [
    ev("s1", "santiago", "api", 150, "2026-09-06T03:59:59Z"),  # 5 Sep 23:59:59 -04
    ev("s2", "santiago", "api", 151, "2026-09-06T04:00:00Z"),  # 6 Sep 01:00:00 -03
    ev("t1", "santiago-start", "api", 150, "2026-09-06T03:59:59Z"),  # not subscribed
    ev("t2", "santiago-start", "api", 151, "2026-09-06T04:00:00Z"),
]

NOVEMBER_ACCOUNTS = [
    # Nothing used: each phase owes its own rounded prorated minimum.
    account("idle", "basic", start="2026-10-01",
            changes=[{"effective": "2026-11-08", "plan": "plus"}]),
    account("readings", "uniq", start="2026-10-01"),
]  # fmt: skip
NOVEMBER_EVENTS = [
    # The first line is later by one nanosecond: it is the latest reading.
    ev("n1", "readings", "seats", 5, "2026-11-26T10:00:00.123456789Z"),
    ev("n2", "readings", "seats", 9, "2026-11-26T10:00:00.123456788Z"),
    # A resend (same event_id) with a later timestamp is a duplicate: no new reading.
    ev("n3", "readings", "seats", 2, "2026-11-20T00:00:00Z", tier="gold"),
    ev("n3", "readings", "seats", 99, "2026-11-28T00:00:00Z", tier="gold"),
    # A value seen in October counts once in November; a resend adds no value.
    ev("u1", "readings", "users", 1, "2026-10-20T00:00:00Z", user_id="erin", region="eu"),
    ev("u2", "readings", "users", 1, "2026-11-20T00:00:00Z", user_id="erin", region="eu"),
    ev("u3", "readings", "users", 1, "2026-11-21T00:00:00Z", user_id="frank", region="us"),
    ev("u3", "readings", "users", 1, "2026-11-21T00:00:00Z", user_id="gina", region="eu"),
]


@pytest.fixture(scope="module")
def september(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("contract-2a-september")
    return run(folder, CATALOG, {"accounts": SEPTEMBER_ACCOUNTS}, SEPTEMBER_EVENTS, "2026-09")


@pytest.fixture(scope="module")
def november(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("contract-2a-november-more")
    return run(folder, CATALOG, {"accounts": NOVEMBER_ACCOUNTS}, NOVEMBER_EVENTS, "2026-11")


def oracle_matches(
    result: Run, specs: list[dict[str, Any]], events: list[Any], period: str
) -> None:
    assert result.exit_code == 0, result.stdout + result.stderr
    for spec in specs:
        expected = expected_for(CATALOG, spec, events, period)
        assert comparable(result.invoices[spec["id"]], expected) == expected


def test_september_in_santiago_matches_the_oracle(september: Run) -> None:
    subscribed = [e for e in SEPTEMBER_EVENTS if e["event_id"] != "t1"]
    oracle_matches(september, SEPTEMBER_ACCOUNTS, subscribed, "2026-09")
    assert september.summary()["rejected"] == {"NOT_SUBSCRIBED": 1}


def test_a_change_at_a_skipped_midnight_starts_at_the_jump(september: Run) -> None:
    invoice = september.invoices["santiago"]
    assert (invoice["period_start"], invoice["period_end"]) == (
        "2026-09-01T00:00:00-04:00",
        "2026-10-01T00:00:00-03:00",
    )
    # Basic 1-5 September (5 of 30 days): 150 - 100 free = 50 × 0.10 + 1.00 = 6.00; fixed
    # 30.00 × 5/30 = 5.00. Plus 6-30 (25 days): 151 in the volume tier 2: 151 + 3 = 154.00;
    # fixed 90.00 × 25/30 = 75.00. No minimum is owed (8.33 and 100.00).
    api = [(line["plan"], line["from"], line["to"], line["quantity"], line["amount"])
           for line in invoice["lines"] if line.get("meter") == "api"]  # fmt: skip
    assert api == [
        ("basic", "2026-09-01", "2026-09-06", "150", "6.00"),
        ("plus", "2026-09-06", "2026-10-01", "151", "154.00"),
    ]
    assert invoice["total"] == "240.00"


def test_november_extras_match_the_oracle(november: Run) -> None:
    deduped: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for event in NOVEMBER_EVENTS:  # the first one seen wins
        key = (event["account_id"], event["event_id"])
        if key not in seen:
            seen.add(key)
            deduped.append(event)
    oracle_matches(november, NOVEMBER_ACCOUNTS, deduped, "2026-11")


def test_each_idle_phase_owes_its_rounded_minimum(november: Run) -> None:
    # Basic 1-7 November (7 of 30): fixed 7.00, minimum 50.00 × 7/30 = 11.666.. -> 11.67,
    # owed 4.67. Plus 8-30 (23 days): fixed 90 × 23/30 = 69.00, minimum 92.00, owed 23.00.
    amounts = [(line["kind"], line["amount"]) for line in november.invoices["idle"]["lines"]]
    assert [a for a in amounts if a[0] != "usage"] == [
        ("fixed", "7.00"), ("minimum", "4.67"), ("fixed", "69.00"), ("minimum", "23.00"),
    ]  # fmt: skip
    assert november.invoices["idle"]["total"] == "103.67"


def test_latest_to_the_nanosecond_and_resends_add_nothing(november: Run) -> None:
    quantities = {
        (line["meter"], str(line.get("filters"))): line["quantity"]
        for line in november.invoices["readings"]["lines"]
    }
    assert quantities == {
        ("users", "None"): "2",  # erin, frank (not gina: her record is a resend of u3)
        ("users", "{'region': ['eu']}"): "1",  # erin
        ("seats", "None"): "5",  # n1, one nanosecond after n2; not n3's resend of the 28th
        ("seats", "{'tier': ['gold']}"): "2",  # n3 of the 20th
        ("seats", "{'tier': ['platinum']}"): "0",
    }


def test_latest_and_unique_count_merge_across_rating_batches(tmp_path: Path) -> None:
    # The rater takes the stream 1,000 records a batch: 998 fillers put each pair's first
    # record last in the first batch and its second record first in the second batch.
    tie = "2026-11-20T10:00:00Z"
    fillers = [
        ev(f"f{i}", "readings", "api", 1, "2026-11-02T00:00:00Z") for i in range(998)
    ]  # an api event is rated and priced by no charge of "uniq"
    events = [
        *fillers,
        ev("b1", "readings", "seats", 7, tie),
        ev("b2", "readings", "users", 1, tie, user_id="hal", region="eu"),
        ev("b3", "readings", "seats", 3, "2026-11-20T11:00:00+01:00"),  # same instant, later
        ev("b4", "readings", "users", 1, tie, user_id="hal", region="eu"),
        ev("b5", "readings", "seats", 8, "2026-11-20T09:59:59Z", tier="gold"),
    ]
    spec = NOVEMBER_ACCOUNTS[1]
    result = run(tmp_path, CATALOG, {"accounts": [spec]}, events, "2026-11")
    assert result.exit_code == 0, result.stdout + result.stderr
    quantities = [line["quantity"] for line in result.invoices["readings"]["lines"]]
    # users: hal once (both filters); seats: b3 wins the tie; gold: b5; platinum: none
    assert quantities == ["1", "1", "3", "8", "0"]
