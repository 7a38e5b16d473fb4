"""An independent review's attempts to break the rater's exactly-once promises, on moto with
the real RatingService / LedgerStore, warm environments and faults, kept as regression
tests: those once named `test_break_*` reproduced a break in the first version of the
rework (and failed on it); those named `test_holds_*` are attacks it withstood.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account, Accounts
from billing.rating import rater
from billing.rating.rater import Outcome
from billing.store.config_store import ConfigStore
from billing.store.errors import StoreError
from billing.store.ledger_store import LEDGER_SORT_KEY, LedgerStore, account_key
from tests.integration.conftest import NOW, Aws
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard


def event(
    event_id: str,
    at: str = "2026-11-10T10:00:00Z",
    quantity: int = 1,
    account: str = "acct-3",
    meter: str = "api_requests",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": account,
        "meter": meter,
        "quantity": quantity,
        "timestamp": at,
    }


def month(back: int) -> str:
    """The period `back` months before 2026-11, as YYYY-MM."""
    index = 2026 * 12 + 10 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def quantity(usage: dict[str, Any], meter: str = "api_requests") -> tuple[Decimal, int]:
    total = usage[meter].total
    return (total.quantity, total.events)


def ledger_item(aws: Aws, account_id: str) -> dict[str, Any] | None:
    response = aws.dynamodb.get_item(
        TableName=aws.ledger_table,
        Key={"pk": {"S": account_key(account_id)}, "sk": {"S": LEDGER_SORT_KEY}},
        ConsistentRead=True,
    )
    return response.get("Item")


# --- BREAK A: a close that wrote its archive but not its ledger leaves an item that a later
# push-out adds the whole period to (usage counted twice, invoice doubled) -------------------


def test_a_failed_close_then_a_push_out_counts_the_period_once(aws: Aws) -> None:
    # GIVEN acct-3 (no start) with one event in each of the 12 months 2025-12 .. 2026-11
    # (all kept inline), event i for i + 1 requests: 2025-12 holds 12 requests
    aws.service().process(
        shard([event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(12)])
    )
    # ... an invoice close of 2025-12 whose archive lands but whose ledger write is
    # throttled (past the SDK's retries): the close fails and a later run will retry it
    faulty = FaultyDynamoDB(aws.dynamodb)
    faulty.fail_next(Fault.THROTTLE, touches("acct-3", LEDGER_SORT_KEY))
    with pytest.raises(StoreError):
        LedgerStore(faulty, aws.ledger_table).close_period("acct-3", month(11), NOW)

    # WHEN the rater meanwhile rates a December event (a 13th period inline: the oldest,
    # 2025-12, moves out of the ledger into its own item), and the close is retried
    aws.service().process(shard([event("dec", "2026-12-01T05:00:00Z")], first=10**57))
    store = aws.ledger_store()
    ledger = store.load(["acct-3"], fresh=True)["acct-3"]
    seen_by_usage_api = quantity(store.period_usage(ledger, month(11)))
    closed = quantity(store.close_period("acct-3", month(11), NOW))

    # THEN 2025-12 still holds its one event of 12 requests
    assert {"usage API": seen_by_usage_api, "close": closed} == {
        "usage API": (Decimal(12), 1),
        "close": (Decimal(12), 1),
    }


# --- BREAK B: a close whose archive write lost its answer (or whose ledger write failed) can
# never be completed while the ledger does not change: the invoice is stuck ---------------


@pytest.mark.parametrize(
    ("fault", "where"),
    [(Fault.LOST_ACK, "USAGE#2026-11"), (Fault.THROTTLE, LEDGER_SORT_KEY)],
    ids=["archive-lost-ack", "ledger-throttled"],
)
def test_a_close_retried_after_a_failed_attempt_succeeds(
    aws: Aws, fault: Fault, where: str
) -> None:
    # GIVEN acct-3 with 3 events in November, then no more events (a quiet or ended account)
    aws.service().process(shard([event(f"e{i}") for i in range(3)]))
    # ... a close of 2026-11 that fails once: its archive lands but the answer is lost, or
    # its ledger write is throttled
    faulty = FaultyDynamoDB(aws.dynamodb)
    faulty.fail_next(fault, touches("acct-3", where))
    with pytest.raises(StoreError):
        LedgerStore(faulty, aws.ledger_table).close_period("acct-3", "2026-11", NOW)

    # WHEN the next invoice run closes it again (a fresh store, no faults)
    try:
        closed: Any = quantity(aws.ledger_store().close_period("acct-3", "2026-11", NOW))
    except StoreError as error:
        closed = f"{type(error).__name__}: {error}"

    # THEN it closes with the period's 3 events
    assert closed == (Decimal(3), 3)


# --- BREAK C: a warm environment whose config cache still says "unknown account" puts a TTL
# on a ledger that holds rated usage ---------------------------------------------------------


def test_a_stale_unknown_account_view_never_sets_a_ttl_on_a_ledger_with_usage(
    aws: Aws, example_accounts: Accounts
) -> None:
    # GIVEN a producer that starts sending acct-new's events before the account is pushed:
    # warm environment B rejects the first one (UNKNOWN_ACCOUNT) and caches "not known"
    b = aws.service()
    first = b.process(shard([event("n0", account="acct-new")]))
    assert [str(r.rejection.reason) for r in first.results.values() if r.rejection] == [
        "UNKNOWN_ACCOUNT"
    ]
    new_account = Account.model_validate(
        {
            "id": "acct-new",
            "name": "New",
            "email": "b@new.example",
            "plan": "pro",
            "timezone": "UTC",
        }
    )
    ConfigStore(aws.dynamodb, aws.config_table).put_accounts(
        Accounts(accounts=[*example_accounts.accounts, new_account])
    )
    # ... then the account is pushed and environment A rates 5 of its events
    a = aws.service()
    rated = a.process(
        shard([event(f"n{i}", account="acct-new") for i in range(1, 6)], first=10**57)
    )
    assert rated.counts() == Counter({"rated": 5})
    assert "expires_at" not in (ledger_item(aws, "acct-new") or {})

    # WHEN B, within its 60-second config cache (allowed by the contract to still reject as
    # UNKNOWN_ACCOUNT), gets the account's next event
    b.process(shard([event("n6", account="acct-new")], first=10**58))

    # THEN the ledger holding the 5 rated events must not be set to expire (DynamoDB's TTL
    # would delete it, with the rated usage, 7 days later)
    item = ledger_item(aws, "acct-new") or {}
    ledger = aws.ledger_store().load(["acct-new"], fresh=True)["acct-new"]
    assert {
        "rated events in the ledger": quantity(ledger.usage["2026-11"]),
        "ledger expires_at": item.get("expires_at"),
    } == {"rated events in the ledger": (Decimal(5), 5), "ledger expires_at": None}


# --- BREAK D: a conflict on an account's second write of a batch (here: the invoice close
# of another period) reports the records the first write rated or rejected as "replayed" --


def test_a_conflict_on_a_later_part_reports_earlier_parts_as_they_ended(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN writes that touch one period each, and a batch of acct-3 with 2 events in
    # October and 1 in November (two writes for one account in one invocation)
    monkeypatch.setattr(rater, "PERIODS_PER_WRITE", 1)
    records = shard(
        [event("o1", "2026-10-10T10:00:00Z"), event("o2", "2026-10-11T10:00:00Z"), event("n1")]
    )
    # ... and an earlier event in September, so that there is a period for the invoice
    # close to close
    aws.service().process(shard([event("s1", "2026-09-10T10:00:00Z")], first=10**50))

    class Racing:
        """The ledger table, with the invoice close of September landing just before the
        rater's second ledger write of the batch."""

        def __init__(self, client: Any) -> None:
            self._client, self.ledger_puts = client, 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_item(self, **request: Any) -> Any:
            if request["Item"]["sk"]["S"] == LEDGER_SORT_KEY:
                self.ledger_puts += 1
                if self.ledger_puts == 2:
                    aws.ledger_store().close_period("acct-3", "2026-09", NOW)
            return self._client.put_item(**request)

    report = aws.service(dynamodb=Racing(aws.dynamodb)).process(records)

    # THEN (all three are rated once, in the stored state) the report says each was rated:
    # Lambda's metrics (EventsRated) are made from it
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert quantity(ledger.usage["2026-10"]) == (Decimal(2), 2)
    assert quantity(ledger.usage["2026-11"]) == (Decimal(1), 1)
    assert (report.failed, report.counts()) == ([], Counter({"rated": 3}))


# --- BREAK E: rejections that a landed ledger carries until their quarantine objects exist
# block the account once REJECTIONS_PER_WRITE of them are stuck ---------------------------


def test_a_quarantine_outage_blocks_nothing_once_it_is_over(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of 100 acct-3 events for an unknown meter (REJECTIONS_PER_WRITE, the
    # real bound) while the quarantine bucket refuses writes (S3 SlowDown for a few
    # minutes): the ledger decides and lists the 100 rejections, the records are reported
    # failed ...
    assert rater.REJECTIONS_PER_WRITE == 100
    bad = shard([event(f"b{i}", meter="nope") for i in range(100)])

    class Refusing:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_object(self, **request: Any) -> Any:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")

    service = aws.service()
    service._quarantine._client = Refusing(aws.s3)  # type: ignore[attr-defined]
    reports = [service.process(bad) for _ in range(11)]  # the first try and 10 retries
    assert all(len(report.failed) == 100 for report in reports)
    # ... and Lambda gives up on them (RATER_RETRY_ATTEMPTS = 10, stacks/settings.py): they
    # go to the DLQ and are never delivered again. The bucket works again.

    # WHEN later records of acct-3 arrive: one more bad one, then a good one
    later = shard([event("b9", meter="nope"), event("good")], first=10**58)
    reports = [aws.service().process(later) for _ in range(3)]  # Lambda's retries

    # THEN the good record is rated and the bad one rejected (a bad record never blocks its
    # shard and never loses the good records around it): nothing was decided while the
    # rejections could not be staged, so nothing is left stuck in the ledger
    assert [r.counts() for r in reports] == [
        Counter({"rated": 1, "rejected": 1}),
        Counter({"replayed": 2}),
        Counter({"replayed": 2}),
    ]
    carried = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"].rejections
    assert [r.sequence_number for r in carried] == [later[0].sequence_number]  # its own, kept


# --- attacks that held ------------------------------------------------------------------------


def test_holds_close_of_a_cold_period_racing_a_rater_mid_batch(aws: Aws) -> None:
    # acct-3 with 14 periods (2 moved out), a batch adding to the oldest (cold) period, and the
    # close of that period landing between the rater's read and its write
    aws.service().process(
        shard([event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(14)])
    )
    store = aws.ledger_store()
    assert store.load(["acct-3"], fresh=True)["acct-3"].cold_until == month(12)

    class Racing:
        def __init__(self, client: Any) -> None:
            self._client, self.done = client, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_item(self, **request: Any) -> Any:
            if request["Item"]["sk"]["S"] == LEDGER_SORT_KEY and not self.done:
                self.done = True
                aws.ledger_store().close_period("acct-3", month(13), NOW)
            return self._client.put_item(**request)

    late = shard([event("late", f"{month(13)}-12T10:00:00Z", quantity=100)], first=10**57)
    report = aws.service(dynamodb=Racing(aws.dynamodb)).process(late)
    (result,) = report.results.values()
    assert (result.outcome, str(result.rejection.reason)) == (Outcome.REJECTED, "PERIOD_CLOSED")
    assert quantity(store.archived_usage("acct-3", month(13))) == (Decimal(14), 1)


def test_holds_lost_ack_on_period_item_write_and_stale_env(aws: Aws) -> None:
    # two warm envs; the log of a write is applied with a lost ack, and a stale env rates next
    records = [event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(13)]
    a, b = aws.service(), aws.service()
    a.process(shard(records))  # month(12) moved out: in the log
    faulty = FaultyDynamoDB(aws.dynamodb)
    faulty.fail_next(Fault.LOST_ACK, touches("acct-3", f"USAGE#{month(12)}"))
    c = aws.service(dynamodb=faulty)
    more = shard(
        [event(f"x{i}", f"{month(12)}-11T10:00:00Z", quantity=1000) for i in range(3)], first=10**57
    )
    first = c.process(more)
    assert len(first.failed) == 3  # the apply of the earlier log lost its answer
    c.process(more)  # retry
    b.process(more)  # a stale env replays
    a.process(shard([event("y", f"{month(12)}-12T10:00:00Z", quantity=7)], first=10**58))
    store = aws.ledger_store()
    ledger = store.load(["acct-3"], fresh=True)["acct-3"]
    assert quantity(store.period_usage(ledger, month(12))) == (Decimal(13 + 3000 + 7), 5)
    assert quantity(store.close_period("acct-3", month(12), NOW)) == (Decimal(13 + 3000 + 7), 5)


def test_holds_keyed_account_two_envs_with_failed_claim_writes(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 40)
    a = aws.service()
    a.process(shard([event(f"a{i}") for i in range(60)]))  # keyed from here
    faulty = FaultyDynamoDB(
        aws.dynamodb, lambda op, req: Fault.THROTTLE if op == "batch_write_item" else None
    )
    b = aws.service(dynamodb=faulty)
    r1 = b.process(shard([event(f"b{i}") for i in range(40)], first=10**57))
    assert r1.counts() == Counter({"rated": 40})  # claims failed, chunk stays pending
    r2 = a.process(shard([event(f"b{i}") for i in range(0, 40, 3)] + [event("c0")], first=10**58))
    assert r2.counts() == Counter({"duplicate": 14, "rated": 1})
    faulty.policy = None
    r3 = b.process(shard([event(f"a{i}") for i in range(0, 60, 7)] + [event("b5")], first=10**59))
    assert r3.counts() == Counter({"duplicate": 10})
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert quantity(ledger.usage["2026-11"]) == (Decimal(101), 101)


def test_holds_reshard_parent_then_child(aws: Aws) -> None:
    # one account's records from a parent shard, then a child with smaller sequence numbers
    parent = shard(
        [event(f"p{i}") for i in range(5)], shard_id="shardId-000000000000", first=10**56
    )
    child = shard(
        [event(f"c{i}") for i in range(5)] + [event("p1")],
        shard_id="shardId-000000000001",
        first=10**40,
    )
    a, b = aws.service(), aws.service()
    assert a.process(parent).counts() == Counter({"rated": 5})
    assert b.process(child).counts() == Counter({"rated": 5, "duplicate": 1})
    assert a.process(child[:3]).counts() == Counter({"replayed": 3})


def test_holds_rejections_in_parts_with_a_failing_quarantine(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rater, "REJECTIONS_PER_WRITE", 4)
    records = shard([event(f"b{i}", meter="nope") for i in range(10)] + [event("good")])
    calls = {"n": 0}

    class Flaky:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_object(self, **request: Any) -> Any:
            calls["n"] += 1
            if calls["n"] in (2, 6):
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")
            return self._client.put_object(**request)

    service = aws.service()
    service._quarantine._client = Flaky(aws.s3)  # type: ignore[attr-defined]
    position, finals = 0, {}
    for _ in range(10):
        report = service.process(records[position:])
        for seq, result in report.results.items():
            if result.outcome != Outcome.REPLAYED:
                finals[seq] = str(result.outcome)
        if not report.failed:
            break
        position = records.index(report.failed[0])
    assert Counter(finals.values()) == Counter({"rejected": 10, "rated": 1})
    assert len(aws.quarantined()) == 10


def test_a_close_racing_a_push_out_counts_the_period_once(aws: Aws) -> None:
    # GIVEN acct-3 with one event in each of the 12 months 2025-12 .. 2026-11 (inline);
    # 2025-12 holds 12 requests
    aws.service().process(
        shard([event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(12)])
    )

    class Racing:
        """The invoice run's client: between the close's read of the ledger and its archive
        write, the rater rates a December event (2025-12 moves out of the ledger)."""

        def __init__(self, client: Any) -> None:
            self._client, self.done = client, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_item(self, **request: Any) -> Any:
            if request["Item"]["sk"]["S"] == f"USAGE#{month(11)}" and not self.done:
                self.done = True
                aws.service().process(shard([event("dec", "2026-12-01T05:00:00Z")], first=10**57))
            return self._client.put_item(**request)

    # WHEN the invoice run closes 2025-12 (no fault anywhere: the close retries its
    # conflict as designed)
    closed = LedgerStore(Racing(aws.dynamodb), aws.ledger_table).close_period(
        "acct-3", month(11), NOW
    )

    # THEN the invoice gets 2025-12's one event of 12 requests
    assert quantity(closed) == (Decimal(12), 1)


def test_holds_usage_api_for_a_cold_period_and_the_35_day_window_after_close(aws: Aws) -> None:
    from billing.customer.account_views import AccountViews
    from billing.store.config_store import ConfigStore as _Config

    aws.service().process(
        shard(
            [event(f"e{i}", f"{month(i)}-10T10:00:00Z", quantity=i + 1) for i in range(40)]
            + [event(f"f{i}", f"{month(20)}-11T10:00:00Z", quantity=2) for i in range(50)]
        )
    )
    views = AccountViews(
        config=_Config(aws.dynamodb, aws.config_table),
        ledgers=aws.ledger_store(),
        invoices=None,  # type: ignore[arg-type]
        documents=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    report = views.usage("acct-3", month(20)).to_json()
    assert json.dumps(report).count('"121"') >= 1, report  # 21 + 50 * 2 requests
    # close November, then 30 days later a resend of a November id into a later period
    store = aws.ledger_store()
    store.close_period("acct-3", "2026-11", NOW)
    later = NOW + timedelta(days=30)
    resend = shard([event("e0", "2026-12-30T10:00:00Z", quantity=5)], first=10**58)
    assert aws.service(now=later).process(resend).counts() == Counter({"duplicate": 1})


def test_holds_chaos_with_small_bounds_cold_periods_keyed_accounts_and_flaky_quarantine(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, example_accounts: Accounts
) -> None:
    """The issue's chaotic ESM run, but with every bound lowered so that accounts are keyed,
    periods move out of the ledger (1 kept inline), writes touch 2 periods, carry 3
    rejections, and the quarantine bucket fails 5% of writes."""
    import random

    from tests.integration import test_rater_exactly_once as chaos
    from tests.support.esm_driver import OutcomeLog, drive
    from tests.support.faults import random_policy

    monkeypatch.setattr(rater, "PERIODS_PER_WRITE", 2)
    monkeypatch.setattr(rater, "REJECTIONS_PER_WRITE", 3)
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 150)
    monkeypatch.setattr(rater, "INLINE_PERIODS_MAX", 1)
    rng = random.Random(1234)
    sent = chaos.chaos_workload(rng, 3000)
    records = shard([item.payload for item in sent])
    expected = chaos.oracle(sent)
    faults = FaultyDynamoDB(aws.dynamodb, random_policy(rng, throttle=0.03, lost_ack=0.03))

    class FlakyS3:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_object(self, **request: Any) -> Any:
            from botocore.exceptions import ClientError

            if rng.random() < 0.05:
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")
            return self._client.put_object(**request)

    environments = []
    for _ in range(3):
        service = aws.service(dynamodb=faults)
        service._quarantine._client = FlakyS3(aws.s3)  # type: ignore[attr-defined]
        environments.append(service)
    log = OutcomeLog()
    drive(records, environments, rng, log, max_batch=150)

    store = aws.ledger_store()
    ledgers = store.load(list(chaos.SUBSCRIPTIONS), fresh=True)
    periods = {(a, p) for (a, p, _) in expected.aggregates}
    for account, ledger in ledgers.items():
        periods |= {(account, p) for p in ledger.usage} | {(account, p) for p in ledger.log}
    stored = {}
    for account, period in periods:
        for meter, usage in store.period_usage(ledgers[account], period).items():
            stored[(account, period, meter)] = (usage.total.quantity, usage.total.events)
    wrong = {
        k: (stored.get(k), expected.aggregates.get(k))
        for k in set(stored) | set(expected.aggregates)
        if stored.get(k) != expected.aggregates.get(k)
    }
    assert any(ledger.keyed for ledger in ledgers.values())
    assert any(ledger.cold_until for ledger in ledgers.values())
    kept = set(chaos.quarantined(aws))
    should = {chaos.origin(records[p]) for p in expected.reasons}
    finals = log.finals(records)
    assert {
        "wrong aggregates": dict(list(wrong.items())[:5]),
        "applied twice": log.applied_twice,
        "quarantine - oracle": len(kept - should),
        "oracle - quarantine": len(should - kept),
        "finals differing": sum(
            1
            for r, want in zip(records, expected.outcomes, strict=True)
            if finals[r.sequence_number] not in (want, "unknown")
        ),
    } == {
        "wrong aggregates": {},
        "applied twice": [],
        "quarantine - oracle": 0,
        "oracle - quarantine": 0,
        "finals differing": 0,
    }


def test_the_ledger_stays_bounded_through_catalog_filter_changes_in_one_period() -> None:
    """period_bytes_bound is computed from the plan in force; a period keeps the filter keys
    of every catalog version that was in force during it, and the latest period always stays
    inline, so an operator's catalog pushes (here 16 within one month, each the widest the
    limits allow) grow one ledger item without bound."""
    from bench.rater import StaticConfig
    from billing.core.catalog import parse_accounts, parse_catalog
    from billing.rating.service import RatingService
    from billing.store.capacity import item_size
    from billing.store.memory_dynamodb import MemoryDynamoDB
    from tests.unit.test_ledger_bounds import KeepAll, meter_name

    def catalog(version: int) -> Any:
        meters = [{"name": meter_name(m), "unit": "u", "aggregation": "sum"} for m in range(100)]
        charges = [
            {
                "meter": meter_name(c),
                "model": "per_unit",
                "unit_price": "0.000001",
                "filters": {"d": [f"{c:03d}-{version:02d}".ljust(254, "v")]},
            }
            for c in range(100)
        ]
        plan = {"id": "wide", "name": "Wide", "currency": "USD", "charges": charges}
        return parse_catalog({"meters": meters, "plans": [plan]})

    class Recording(MemoryDynamoDB):
        largest = 0

        def put_item(self, **request: Any) -> dict[str, Any]:
            if request["Item"]["sk"]["S"] == "LEDGER":
                self.largest = max(self.largest, item_size(request["Item"]))
            return super().put_item(**request)

    account = {"id": "a", "name": "W", "email": "w@example.com", "plan": "wide", "timezone": "UTC"}
    client = Recording()
    store = LedgerStore(client, "ledger")
    failed = 0
    for version in range(16):
        current = catalog(version)
        accounts = parse_accounts({"accounts": [account]}, current)
        service = RatingService(
            StaticConfig(current, accounts), store, KeepAll(), clock=lambda: NOW
        )
        events = [
            {
                "event_id": f"e{version}-{c}",
                "account_id": "a",
                "meter": meter_name(c),
                "quantity": "1",
                "timestamp": "2026-11-10T10:00:00Z",
                "dimensions": {"d": f"{c:03d}-{version:02d}".ljust(254, "v")},
            }
            for c in range(100)
        ]
        report = service.process(shard(events, first=10**50 + version * 10**6))
        failed += len(report.failed)
    print("LARGEST", client.largest, "failed", failed)
    assert (failed, client.largest < 400 * 1024) == (0, True), client.largest


def test_rejections_kept_late_from_their_staged_copies_once_s3_takes_writes_again(
    aws: Aws,
) -> None:
    # GIVEN 5 acct-3 records rejected (unknown meter) in a write that landed, whose
    # quarantine objects could not be written afterwards (only `rejected/` refused): the
    # ledger carries them, and Lambda gives up on the records
    class RefusingKept:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def put_object(self, **request: Any) -> Any:
            from botocore.exceptions import ClientError

            if request["Key"].startswith("rejected/"):
                raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")
            return self._client.put_object(**request)

    service = aws.service()
    service._quarantine._client = RefusingKept(aws.s3)  # type: ignore[attr-defined]
    first = service.process(shard([event(f"b{i}", meter="nope") for i in range(5)]))
    assert (len(first.failed), len(aws.ledger_store().load(["acct-3"])["acct-3"].rejections)) == (
        5,
        5,
    )

    # WHEN a later record of acct-3 comes to another environment, S3 working again
    later = aws.service().process(shard([event("good")], first=10**58))

    # THEN that write keeps the 5 from their staged copies and stops carrying them
    assert later.counts() == Counter({"rated": 1})
    assert len(aws.quarantined()) == 5
    assert aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"].rejections == ()
