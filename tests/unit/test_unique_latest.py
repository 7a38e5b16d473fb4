"""The `unique_count` and `latest` aggregations (CONTRACT 2a): counted by hand through the
local preview, and through the production rater (`rate_batch`, driven as the service drives
it by tests/support/rater_memory.py) delivered any way Lambda might, retries included."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.core.catalog import Accounts, Catalog, parse_accounts, parse_catalog
from billing.core.usage import Aggregate, MeterUsage
from billing.rating import rater
from billing_cli.preview import rate_records
from tests.support.kinesis import FIRST_SEQUENCE, shard
from tests.support.rater_memory import MemoryRater, deliver_any_way

D = Decimal

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
EU = "region=eu"  # the filter key of a charge filtered on {region: [eu]}

CATALOG: Catalog = parse_catalog(
    {
        "meters": [
            {"name": "users", "unit": "user", "aggregation": "unique_count", "field": "user"},
            {"name": "seats", "unit": "seat", "aggregation": "latest"},
        ],
        "plans": [
            {
                "id": "team",
                "name": "Team",
                "currency": "USD",
                "charges": [
                    {"meter": "users", "model": "per_unit", "unit_price": "1"},
                    {
                        "meter": "users",
                        "model": "per_unit",
                        "unit_price": "1",
                        "filters": {"region": ["eu"]},
                    },
                    {"meter": "seats", "model": "per_unit", "unit_price": "1"},
                    {
                        "meter": "seats",
                        "model": "per_unit",
                        "unit_price": "1",
                        "filters": {"region": ["eu"]},
                    },
                ],
            }
        ],
    }
)
ACCOUNTS: Accounts = parse_accounts(
    {
        "accounts": [
            {"id": a, "name": a, "email": "b@example.com", "plan": "team", "timezone": "UTC"}
            for a in ("acct-1", "acct-2")
        ]
    },
    CATALOG,
)


def event(
    event_id: str,
    meter: str,
    quantity: int | str = 1,
    at: str = "2026-11-10T12:00:00Z",
    account: str = "acct-1",
    **dimensions: str,
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


def previewed(events: list[dict[str, Any]]) -> dict[str, MeterUsage]:
    run = rate_records([json.dumps(e).encode() for e in events], CATALOG, ACCOUNTS, NOW)
    assert run.summary.rejected == {}, run.rejected
    return run.ledger.for_account("acct-1", "2026-11")


def quantities(usage: dict[str, MeterUsage], meter: str) -> tuple[D, D]:
    """The meter's quantity over all events, and over those in the eu share."""
    found = usage.get(meter) or MeterUsage("sum")
    return found.total.quantity, found.by_filter.get(EU, Aggregate()).quantity


# --- unique_count, counted by hand --------------------------------------------------------


UNIQUE_EVENTS = [
    event("e1", "users", 5, user="alice", region="us"),
    event("e2", "users", 1, user="alice", region="eu"),  # alice again: not in the total
    event("e2", "users", 1, user="bob", region="eu"),  # a duplicate id: never counted
    event("e3", "users", 1, user="bob", region="eu"),
    event("e4", "users", 1, user="carol"),  # no region: passes no filter
    event("e5", "users", 1, region="eu"),  # no user: counts nothing anywhere
    event("e6", "users", 0, user="dave", region="eu"),  # the quantity is ignored
    event("e7", "users", 1, user="bob", region="eu"),  # bob again, another id
    event("e8", "users", 1, "2026-10-31T23:00:00Z", user="erin"),  # October's
    event("e9", "users", 1, account="acct-2", user="frank"),  # another account's
]


def test_unique_count_counts_each_value_once_per_share() -> None:
    usage = previewed(UNIQUE_EVENTS)

    # all events: alice (e1), bob (e3), carol (e4), dave (e6) = 4; e2, e7 bring a value
    # already seen, e5 none, e8 is October's, e9 another account's
    # eu share: alice (e2: new to the share though not to the total), bob (e3), dave = 3
    assert quantities(usage, "users") == (D(4), D(3))
    # events rated into the meter: e1..e7 less the duplicate e2 = 7; in the eu share: e2,
    # e3, e5, e6, e7 = 5
    assert usage["users"].total.events == 7
    assert usage["users"].by_filter[EU].events == 5


def test_unique_count_is_0_with_events_but_no_values() -> None:
    usage = previewed([event("e1", "users", 3, region="eu"), event("e2", "users", 3)])

    # events without the `user` dimension are rated (not rejected) and count nothing
    assert quantities(usage, "users") == (D(0), D(0))
    assert usage["users"].total.events == 2


def test_values_differing_only_in_case_or_space_are_different_values() -> None:
    usage = previewed(
        [
            event("e1", "users", user="alice"),
            event("e2", "users", user="Alice"),
            event("e3", "users", user="alice "),
        ]
    )

    # dimension values are compared exactly, as the filters compare them: 3 values
    assert quantities(usage, "users") == (D(3), D(0))


# --- latest, by hand ----------------------------------------------------------------------


def test_latest_is_the_quantity_of_the_latest_event() -> None:
    usage = previewed(
        [
            event("s1", "seats", 7, "2026-11-20T12:00:00Z"),
            event("s2", "seats", 3, "2026-11-28T12:00:00Z", region="eu"),
            event("s3", "seats", 9, "2026-11-05T12:00:00Z", region="eu"),
            event("s4", "seats", 5, "2026-11-29T12:00:00Z"),  # latest of all, not eu
        ]
    )

    # all events: s4 (29 Nov) = 5; the eu share: s2 (28 Nov) = 3, not the later-listed s3
    assert quantities(usage, "seats") == (D(5), D(3))


def test_latest_tie_goes_to_the_event_later_on_the_stream() -> None:
    usage = previewed(
        [
            event("s1", "seats", 7, "2026-11-20T12:00:00Z"),
            event("s2", "seats", 4, "2026-11-20T13:00:00+01:00"),  # the same instant
            event("s3", "seats", 9, "2026-11-20T11:59:59.999999999Z"),  # 1 ns earlier
        ]
    )

    # s1 and s2 are at the same instant: s2 is later in the file (on the stream) and
    # wins; s3 is a nanosecond earlier although listed last
    assert quantities(usage, "seats") == (D(4), D(0))


def test_latest_nanoseconds_order_events() -> None:
    usage = previewed(
        [
            event("s1", "seats", 2, "2026-11-20T12:00:00.000000002Z"),
            event("s2", "seats", 1, "2026-11-20T12:00:00.000000001Z"),
        ]
    )

    # 2 ns after noon beats 1 ns after noon, though listed first
    assert quantities(usage, "seats") == (D(2), D(0))


def test_latest_is_0_without_events_and_a_resend_changes_nothing() -> None:
    usage = previewed(
        [
            event("s1", "seats", 6, "2026-11-20T12:00:00Z"),
            event("s1", "seats", 8, "2026-11-21T12:00:00Z"),  # a resend of s1: ignored
        ]
    )

    # only s1's first copy counts; nothing passed the eu filter: 0
    assert quantities(usage, "seats") == (D(6), D(0))


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_latest_merges_the_same_in_any_order(order: tuple[int, ...]) -> None:
    parts = [
        Aggregate(D(1), 1, (100, 5)),
        Aggregate(D(2), 2, (100, 9)),  # the same instant, later on the stream: wins
        Aggregate(D(3), 1, (99, 50)),
        Aggregate(),
    ]
    merged = Aggregate()
    for index in order:
        merged = merged.merge("latest", parts[index])

    assert merged == Aggregate(D(2), 4, (100, 9))


# --- the production rater, delivered any way ------------------------------------------------


def oracle(events: list[dict[str, Any]]) -> dict[str, tuple[D, D]]:
    """What the contract says, computed here from scratch: per account, meter and share."""
    seen_ids: set[tuple[str, str]] = set()
    values: dict[tuple[str, str, str], set[str]] = {}
    latest: dict[tuple[str, str, str], tuple[datetime, int, D]] = {}
    for position, e in enumerate(events):
        if (e["account_id"], e["event_id"]) in seen_ids:
            continue
        seen_ids.add((e["account_id"], e["event_id"]))
        dims = e.get("dimensions", {})
        shares = ["all"] + (["eu"] if dims.get("region") == "eu" else [])
        at = datetime.fromisoformat(e["timestamp"])
        for share in shares:
            key = (e["account_id"], e["meter"], share)
            if e["meter"] == "users" and "user" in dims:
                values.setdefault(key, set()).add(dims["user"])
            if e["meter"] == "seats":
                candidate = (at, position, D(e["quantity"]))
                latest[key] = max(latest.get(key, candidate), candidate)
    result = {}
    for account in ("acct-1", "acct-2"):
        result[f"{account}/users"] = (
            D(len(values.get((account, "users", "all"), ()))),
            D(len(values.get((account, "users", "eu"), ()))),
        )
        result[f"{account}/seats"] = (
            latest.get((account, "seats", "all"), (0, 0, D(0)))[2],
            latest.get((account, "seats", "eu"), (0, 0, D(0)))[2],
        )
    return result


def rated(rater: MemoryRater) -> dict[str, tuple[D, D]]:
    result = {}
    for account in ("acct-1", "acct-2"):
        ledger = rater.ledgers.get(account)
        usage = dict(ledger.usage.get("2026-11", {})) if ledger else {}
        for meter in ("users", "seats"):
            result[f"{account}/{meter}"] = quantities(usage, meter)
    return result


USERS = ["u0", "u1", "u2", "u3", "u4"]
HOURS = [f"2026-11-{day:02d}T{hour:02d}:00:00Z" for day in (3, 4) for hour in (8, 9)]


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events of two accounts on both meters, few values and instants (so ties and values
    seen again are common), with producer resends of earlier ids."""
    events: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, 40))):
        if events and draw(st.integers(0, 5)) == 0:
            earlier = dict(draw(st.sampled_from(events)))
            earlier["quantity"] = draw(st.integers(0, 9))  # a resend's body may differ
            events.append(earlier)
            continue
        dims = {}
        if draw(st.booleans()):
            dims["region"] = draw(st.sampled_from(["eu", "us"]))
        meter = draw(st.sampled_from(["users", "seats"]))
        if meter == "users" and draw(st.integers(0, 4)) > 0:
            dims["user"] = draw(st.sampled_from(USERS))
        events.append(
            event(
                f"id{n}",
                meter,
                draw(st.integers(0, 9)),
                draw(st.sampled_from(HOURS)),
                draw(st.sampled_from(["acct-1", "acct-2"])),
                **dims,
            )
        )
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), data=st.data())
def test_any_delivery_counts_each_value_once_and_keeps_the_latest(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    rater = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    # Lambda delivers the failed records again, then the rest; sometimes a whole landed
    # range is delivered again too (its records are replays then).
    deliver_any_way(rater, shard(events), data)

    assert rater.applied_twice == []
    assert rated(rater) == oracle(events)


def test_a_write_claims_at_most_its_digest_budget_and_the_rest_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a budget of 10 digests a write: each eu event with a user may claim 3 (its id,
    # its user in all events' share and in the eu share)
    monkeypatch.setattr(rater, "DIGESTS_PER_WRITE", 10)
    events = [event(f"e{i}", "users", user=f"u{i}", region="eu") for i in range(7)]
    memory = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)

    # WHEN the 7 events come in one batch, and the records left over are delivered again
    left = memory.deliver(shard(events))
    rounds = 1
    while left:
        left = memory.deliver(left)
        rounds += 1

    # THEN each write took 3 events (9 digests; a 4th would make 12): 3 + 3 + 1 in three
    # deliveries, and the 7 users count once each in both shares
    assert rounds == 3
    assert rated(memory)["acct-1/users"] == (D(7), D(7))


def test_values_stay_remembered_while_the_period_is_open_past_35_days() -> None:
    # GIVEN 40 users rated on 1 December (their digests spill from the ledger into a chunk)
    memory = MemoryRater(CATALOG, ACCOUNTS.by_id, NOW)
    first = [event(f"a{i}", "users", user=f"u{i}") for i in range(40)]
    assert memory.deliver(shard(first)) == []
    assert memory.ledgers["acct-1"].chunk_refs

    # WHEN November is still open 60 days later (never invoiced) and new ids bring u0..u9
    memory.now = NOW + timedelta(days=60)
    later = [event(f"b{i}", "users", user=f"u{i}") for i in range(10)]
    assert memory.deliver(shard(later, first=FIRST_SEQUENCE + 1000)) == []

    # THEN they count nothing more: 40 users, 50 events
    assert rated(memory)["acct-1/users"] == (D(40), D(0))
    assert memory.ledgers["acct-1"].usage["2026-11"]["users"].total.events == 50
