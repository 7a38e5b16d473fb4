"""Property tests of the production rater, `billing.rating.rater.rate_batch`, against the
oracles of tests/support (which share no code with `billing`):

- random usage of the example accounts (valid events in three periods, producer resends,
  bad records, events for an invoiced period), delivered any way Lambda might (random batch
  boundaries, invocations that die with only some accounts' writes landed, ranges delivered
  again), ends with every record counted once, in the place the oracle says, and with the
  oracle's aggregates;
- the invoices made from what the rater stored (and those of the local preview, from the
  same records) are the oracle's, line by line.

The rater is driven invocation by invocation over ledgers kept in memory
(tests/support/rater_memory.py), the way the rating service drives it over DynamoDB.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.core.catalog import Accounts, Catalog
from billing.core.invoice import build_invoice
from billing.core.periods import Period
from billing.rating.ledger import AccountLedger
from billing.rating.rater import StreamRecord
from billing_cli.preview import invoice_period, rate_records
from tests.support.examples import invoice_view
from tests.support.invoice_oracle import ACCOUNTS, CATALOG, expected_invoice
from tests.support.kinesis import shard
from tests.support.oracle import (
    AGGREGATIONS,
    FILTERED_CHARGES,
    REGIONS,
    RUN_CLOCK,
    SUBSCRIPTIONS,
    Oracle,
    Sent,
    oracle,
    payload,
    resend,
    subscribed,
    valid,
)
from tests.support.rater_memory import MemoryRater

PROPERTIES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NOVEMBER = Period(2026, 11)
# acct-1's October is invoiced: its ledger says so before any record arrives.
CLOSED = {("acct-1", "2026-10")}
# Instants from late October to an hour past the run clock: three periods in some zones,
# and some instants more than the 5 minutes' tolerance ahead of the clock.
EARLIEST = datetime.fromisoformat("2026-10-25T00:00:00+00:00")
SPAN_SECONDS = int((RUN_CLOCK + timedelta(hours=1) - EARLIEST).total_seconds())
LATEST_ALLOWED = RUN_CLOCK + timedelta(minutes=5)
ACCOUNT_IDS = [*SUBSCRIPTIONS, "acct-404"]
QUANTITIES = st.one_of(
    st.integers(0, 5000),
    st.integers(0, 2 * 10**11).map(lambda n: str(Decimal(n).scaleb(-4))),  # into the tiers
    st.integers(0, 10**8).map(lambda n: str(Decimal(n).scaleb(-6))),
)


def instants() -> st.SearchStrategy[datetime]:
    return st.builds(
        lambda seconds, micros: EARLIEST + timedelta(seconds=seconds, microseconds=micros),
        st.integers(0, SPAN_SECONDS),
        st.sampled_from([0, 0, 999_999, 500_000]),
    )


def refusal(account: str, at: datetime) -> str | None:
    """Why a well-formed event of a known account and meter is refused, in the contract's
    order (the invoiced period is the oracle's to judge: it comes last)."""
    if at > LATEST_ALLOWED:
        return "FUTURE_TIMESTAMP"
    if not subscribed(account, at):
        return "NOT_SUBSCRIBED"
    return None


@st.composite
def workloads(draw: st.DrawFn, max_size: int = 30, busy: int = 1) -> list[Sent]:
    """Valid events, producer resends (some moved to another instant), and bad records;
    acct-3's events `busy` times as likely as another account's."""
    accounts = [*SUBSCRIPTIONS, *["acct-3"] * (busy - 1)]
    sent: list[Sent] = []
    fresh: list[Sent] = []
    for n in range(draw(st.integers(0, max_size))):
        kind = draw(st.sampled_from(["event"] * 6 + ["resend"] * 2 + ["bad"]))
        if kind == "resend" and fresh:
            first = draw(st.sampled_from(fresh))
            assert first.key is not None
            at: datetime | None = draw(st.none() | instants())
            if at is not None and refusal(first.key[0], at) is not None:
                at = None  # a resend the rater would refuse is another test's business
            sent.append(resend(first, str(draw(QUANTITIES)), at))
        elif kind == "bad":
            sent.append(draw(bad_records(f"bad-{n}")))
        else:
            account = draw(st.sampled_from(accounts))
            at = draw(instants())
            event = valid(
                f"e-{n}",
                account,
                at,
                draw(st.sampled_from(list(AGGREGATIONS))),
                draw(QUANTITIES),
                draw(st.none() | st.sampled_from(REGIONS)),
            )
            why = refusal(account, at)
            if why is not None:
                event = Sent(event.payload, why)
            else:
                fresh.append(event)
            sent.append(event)
    return sent


def bad_records(event_id: str) -> st.SearchStrategy[Sent]:
    at = "2026-11-10T10:00:00Z"
    return st.sampled_from(
        [
            Sent(f'{{"event_id": "{event_id}", "quantity": '.encode(), "MALFORMED_JSON"),
            Sent(_bytes(payload(event_id, "acct-1", quantity="-1", at=at)), "SCHEMA_INVALID"),
            Sent(_bytes(payload(event_id, "acct-404", at=at)), "UNKNOWN_ACCOUNT"),
            Sent(_bytes(payload(event_id, "acct-3", meter="teleports", at=at)), "UNKNOWN_METER"),
        ]
    )


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def memory_rater(catalog: Catalog, accounts: Accounts) -> MemoryRater:
    rater = MemoryRater(catalog, accounts.by_id, RUN_CLOCK)
    for account, period in CLOSED:
        rater.ledgers[account] = AccountLedger(account, version=1, closed=frozenset({period}))
    return rater


def deliver_any_way(rater: MemoryRater, records: Sequence[StreamRecord], data: Any) -> None:
    """Lambda's event source mapping, with the choices drawn: a batch of any size from the
    checkpoint; an invocation that dies (at most three) after some accounts' writes landed
    is delivered again from the same checkpoint; a partial failure moves the checkpoint to
    the lowest record to deliver again; a range already done may come again."""
    position, deaths = 0, 0
    while position < len(records):
        assert rater.invocations < 200, "the deliveries make no progress"
        size = data.draw(st.integers(1, len(records) - position), label="batch size")
        batch = records[position : position + size]
        if deaths < 3 and data.draw(st.booleans(), label="dies"):
            deaths += 1
            event("an invocation died")
            landing = data.draw(st.sets(st.sampled_from(ACCOUNT_IDS)), label="writes landed")
            rater.deliver(batch, landing.__contains__)
            continue
        again = rater.deliver(batch)
        position = records.index(again[0]) if again else position + size
        if position and data.draw(st.booleans(), label="a done range again"):
            start = data.draw(st.integers(0, position - 1), label="from")
            event("a range came again")
            assert rater.deliver(records[start:position]) == []


def stored(rater: MemoryRater, catalog: Catalog, accounts: Accounts) -> Oracle:
    """What the rater stored, in the oracle's shape (outcomes left to the caller)."""
    aggregates = {}
    shares = {}
    for account_id, ledger in rater.ledgers.items():
        plan = (
            catalog.plans_by_id[accounts.by_id[account_id].plan]
            if account_id in accounts.by_id
            else None
        )
        for period, meters in ledger.usage.items():
            for meter, usage in meters.items():
                aggregates[(account_id, period, meter)] = (usage.total.quantity, usage.total.events)
                for charge in plan.charges if plan else ():
                    if (
                        charge.meter == meter
                        and charge.filters
                        and charge.filter_key in usage.by_filter
                    ):
                        key = (account_id, period, meter, str(charge.description))
                        shares[key] = usage.by_filter[charge.filter_key].quantity
    return Oracle([], {}, aggregates, shares)


def fates(expected: Oracle) -> list[str]:
    return [expected.reasons.get(p, outcome) for p, outcome in enumerate(expected.outcomes)]


@PROPERTIES
@given(data=st.data())
def test_any_delivery_of_random_usage_counts_each_record_once_as_the_oracle_does(
    example_catalog: Catalog, example_accounts: Accounts, data: st.DataObject
) -> None:
    # GIVEN random usage of the example accounts, acct-3 busy enough for its event ids to
    # be spilled out of its ledger into chunks, and what the oracle makes of it
    sent = data.draw(workloads(max_size=90, busy=12), label="workload")
    records = shard([item.payload for item in sent])
    expected = oracle(sent, closed=CLOSED)

    # WHEN the rater gets it in any batches, with deaths and redeliveries
    rater = memory_rater(example_catalog, example_accounts)
    deliver_any_way(rater, records, data)

    for fate in sorted(set(fates(expected))):  # what the examples covered (pytest
        event(fate)  # --hypothesis-show-statistics)
    if any(ledger.chunk_refs for ledger in rater.ledgers.values()):
        event("event ids spilled into a chunk")

    # THEN no record was applied twice, each ended where the oracle says, the quarantine
    # holds exactly the rejected ones, and every aggregate is the oracle's
    assert rater.applied_twice == []
    assert [rater.final.get(r.sequence_number) for r in records] == fates(expected)
    assert rater.kept == {
        (records[p].shard_id, records[p].sequence_number) for p in expected.reasons
    }
    found = stored(rater, example_catalog, example_accounts)
    assert found.aggregates == expected.aggregates
    assert found.shares == expected.shares


@PROPERTIES
@given(data=st.data())
def test_invoices_of_random_usage_are_the_oracles(
    example_catalog: Catalog, example_accounts: Accounts, data: st.DataObject
) -> None:
    # GIVEN random usage of November (and around it), rated by the rater in random batches
    sent = data.draw(workloads(), label="workload")
    records = shard([item.payload for item in sent])
    expected = oracle(sent, closed=CLOSED)
    rater = memory_rater(example_catalog, example_accounts)
    deliver_any_way(rater, records, data)

    # WHEN each account's November invoice is built from its ledger, as the invoice run
    # does, and the local preview invoices the same records
    invoices = {}
    for account in example_accounts.accounts:
        ledger = rater.ledgers.get(account.id) or AccountLedger(account.id)
        invoices[account.id] = build_invoice(
            account,
            example_catalog.plans_by_id[account.plan],
            example_catalog,
            NOVEMBER,
            ledger.usage.get(str(NOVEMBER), {}),
            number="INV-2026-000001",
            issued_at=RUN_CLOCK,
        )
    preview = rate_records(
        [r.data for r in records],
        example_catalog,
        example_accounts,
        RUN_CLOCK,
        lambda account, period: (account, str(period)) in CLOSED,
    )
    previewed = invoice_period(
        NOVEMBER, example_catalog, example_accounts, preview.ledger, RUN_CLOCK
    )

    # THEN both are the oracle's, line by line: quantities, rounded amounts, fixed fees
    # prorated by active days, minimum lines, tax
    want = {account: expected_invoice(account, expected) for account in SUBSCRIPTIONS}
    assert {a: invoice_view(i.to_json()) for a, i in invoices.items()} == want
    assert {i.account_id: invoice_view(i.to_json()) for i in previewed} == want


def test_the_oracles_know_the_example_files() -> None:
    # The oracles' own tables of the example accounts and catalog are the YAML files'.
    accounts = {a["id"]: a for a in ACCOUNTS["accounts"]}
    assert {a: (v["timezone"], v.get("start"), v.get("end")) for a, v in accounts.items()} == {
        a: (zone, start and start.isoformat(), end and end.isoformat())
        for a, (zone, start, end) in SUBSCRIPTIONS.items()
    }
    assert {m["name"]: m["aggregation"] for m in CATALOG["meters"]} == AGGREGATIONS
    plans = {p["id"]: p for p in CATALOG["plans"]}
    filtered = {
        a: {
            (c["meter"], c["description"]): frozenset(c["filters"]["region"])
            for c in plans[v["plan"]]["charges"]
            if c.get("filters")
        }
        for a, v in accounts.items()
    }
    assert {a: f for a, f in filtered.items() if f} == FILTERED_CHARGES
