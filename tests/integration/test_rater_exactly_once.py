"""Exactly once, for real (issue 10): the rater against moto with warm environments that
hold stale caches, lost acknowledgements, throttling, retries with new batch boundaries,
catalog changes, missing id chunks and closed periods.

Each finding test drives `RatingService.process` on services built like Lambda's warm
environments (`Aws.service()`: each its own ConfigStore and LedgerStore, so its own caches,
over the same moto tables) and gathers what it observed into one dict compared with the
expected one, so a failure shows every symptom at once. Faults are injected by wrapping the
boto3 DynamoDB client (tests/support/faults.py); Lambda's event source mapping is played by
tests/support/esm_driver.py.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account, Accounts, Catalog, parse_catalog
from billing.core.spend import Crossing, SpendThresholds, running_charges, running_subtotal
from billing.customer.spend_alerts import SpendAlerts
from billing.customer.usage_view import usage_report
from billing.rating.rater import StreamRecord
from billing.store.alert_claims import AlertClaims
from billing.store.config_store import ConfigStore
from billing.store.errors import StoreError
from billing.store.ledger_store import CHUNK_PREFIX, LEDGER_SORT_KEY, account_key
from billing.store.quarantine import QUARANTINE_PREFIX
from billing_cli.preview import rate_records
from tests.integration.conftest import NOW, Aws
from tests.support.esm_driver import UNKNOWN, OutcomeLog, drive
from tests.support.faults import Fault, FaultyDynamoDB, random_policy, touches
from tests.support.kinesis import shard
from tests.support.oracle import SUBSCRIPTIONS, Oracle, chaos_workload, oracle

NOVEMBER = "2026-11-10T10:00:00Z"


def event(
    event_id: str,
    account: str = "acct-3",
    *,
    meter: str = "api_requests",
    quantity: int | str = 1,
    at: str = NOVEMBER,
    dimensions: dict[str, str] | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event_id": event_id,
        "account_id": account,
        "meter": meter,
        "quantity": quantity,
        "timestamp": at,
    }
    if dimensions:
        payload["dimensions"] = dimensions
    return payload


def outcomes(records: Sequence[StreamRecord], report: Any) -> Counter[str]:
    """What a report says about these records ("failed" for those it asks to redeliver)."""
    failed = {record.sequence_number for record in report.failed}
    return Counter(
        "failed" if r.sequence_number in failed else str(report.results[r.sequence_number].outcome)
        for r in records
    )


def totals(aws: Aws, account_id: str) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """The account's stored aggregates as a cold reader sees them: (period, meter) ->
    (quantity, events)."""
    ledger = aws.ledger_store().load([account_id])[account_id]
    return {
        (period, meter): (usage.total.quantity, usage.total.events)
        for period, meters in ledger.usage.items()
        for meter, usage in meters.items()
    }


def quarantined(aws: Aws) -> dict[tuple[str, str], str]:
    """Every record kept in the quarantine (the bucket's `rejected/`; `staged/` holds
    documents staged before the ledger write that decides them): (shard, sequence number)
    -> reason, read from the documents themselves (whatever their keys)."""
    kept: dict[tuple[str, str], str] = {}
    pages = aws.s3.get_paginator("list_objects_v2").paginate(
        Bucket=aws.bucket, Prefix=QUARANTINE_PREFIX
    )
    for page in pages:
        for item in page.get("Contents", []):
            body = aws.s3.get_object(Bucket=aws.bucket, Key=item["Key"])["Body"].read()
            document = json.loads(body)
            origin = (document["shard_id"], document["sequence_number"])
            assert origin not in kept, f"record {origin} is in the quarantine twice"
            kept[origin] = document["reason"]
    return kept


def origin(record: StreamRecord) -> tuple[str, str]:
    return (record.shard_id, record.sequence_number)


# --- finding 1: a stale cache overwrites a committed id chunk ---------------------------------


def test_stale_warm_environment_neither_loses_new_events_nor_forgets_committed_ids(
    aws: Aws,
) -> None:
    # GIVEN two warm environments rating acct-3's consecutive batches of 20 new events each
    # (A, then B, then A again with its cached ledger one write behind), and later a
    # producer resend of an event of B's batch
    records = shard([event(f"e{n}") for n in range(60)] + [event("e25", quantity=1000)])
    first, second, third, resend = records[:20], records[20:40], records[40:60], records[60:]
    a, b = aws.service(), aws.service()

    # WHEN they are processed in that order, the resend by a third (cold) environment
    reports = [a.process(first), b.process(second), a.process(third)]
    again = aws.service().process(resend)

    # THEN all 60 events are rated once, and the resend is a duplicate
    observed = {
        "batch 1 (A)": outcomes(first, reports[0]),
        "batch 2 (B)": outcomes(second, reports[1]),
        "batch 3 (A, stale cache)": outcomes(third, reports[2]),
        "resend of e25": outcomes(resend, again),
        "acct-3 November api_requests": totals(aws, "acct-3").get(("2026-11", "api_requests")),
    }
    assert observed == {
        "batch 1 (A)": {"rated": 20},
        "batch 2 (B)": {"rated": 20},
        "batch 3 (A, stale cache)": {"rated": 20},
        "resend of e25": {"duplicate": 1},
        "acct-3 November api_requests": (Decimal(60), 60),
    }


def test_lost_ledger_acknowledgement_then_longer_retry_loses_no_event(aws: Aws) -> None:
    # GIVEN one warm environment that rated 20 of acct-3's events, and whose next ledger
    # write (for 20 more, spilling ids into a chunk) lands but times out on the way back
    records = shard([event(f"e{n}") for n in range(60)] + [event("e30", quantity=1000)])
    client = FaultyDynamoDB(aws.dynamodb)
    service = aws.service(dynamodb=client)
    log = OutcomeLog()
    log.add(records[:20], service.process(records[:20]))
    client.fail_next(Fault.LOST_ACK, touches("acct-3", LEDGER_SORT_KEY))
    lost = service.process(records[20:40])
    log.add(records[20:40], lost)
    assert client.injected == {Fault.LOST_ACK: 1}

    # WHEN Lambda delivers again from the lowest failed record (if any), with a longer batch
    # up to the 60th event, to the same environment; then the producer resends one of the
    # events whose write was not acknowledged
    resume = min((records.index(r) for r in lost.failed), default=40)
    retry = service.process(records[resume:60])
    log.add(records[resume:60], retry)
    again = aws.service().process(records[60:])

    # THEN every event counts once: the 20 new ones are rated, the 20 unacknowledged ones
    # end rated or replayed (never duplicates of themselves, never counted twice), and the
    # resend is a duplicate
    lost_outcomes = outcomes(records[20:40], lost)
    finals = Counter(log.finals(records[:60]).values())
    observed = {
        "unacknowledged batch reported other than rated or failed": lost_outcomes.total()
        - lost_outcomes["rated"]
        - lost_outcomes["failed"],
        "final outcomes of the 60 events": {"rated or replayed": finals["rated"] + finals[UNKNOWN]},
        "new events in the retry": outcomes(records[40:60], retry),
        "records applied twice": log.applied_twice,
        "resend of e30": outcomes(records[60:], again),
        "acct-3 November api_requests": totals(aws, "acct-3").get(("2026-11", "api_requests")),
    }
    assert observed == {
        "unacknowledged batch reported other than rated or failed": 0,
        "final outcomes of the 60 events": {"rated or replayed": 60},
        "new events in the retry": {"rated": 20},
        "records applied twice": [],
        "resend of e30": {"duplicate": 1},
        "acct-3 November api_requests": (Decimal(60), 60),
    }


# --- finding 2: a record both quarantined and rated -------------------------------------------


def test_record_rejected_before_a_failed_commit_is_not_also_rated_on_the_retry(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN a batch with a good acct-1 event, an event of acct-new (not pushed yet) and an
    # acct-1 event 6 minutes ahead of the clock; every write for acct-1 is throttled
    records = shard(
        [
            event("a1", "acct-1"),
            event("n1", "acct-new"),
            event("a2", "acct-1", at=(NOW + timedelta(minutes=6)).isoformat()),
        ]
    )
    acct_1 = touches("acct-1")
    client = FaultyDynamoDB(
        aws.dynamodb, lambda op, request: Fault.THROTTLE if acct_1(op, request) else None
    )
    log = OutcomeLog()
    first = aws.service(dynamodb=client).process(records)
    log.add(records, first)
    assert client.injected[Fault.THROTTLE] >= 1
    assert first.failed, "setup: the throttled writes must fail acct-1's records"

    # WHEN acct-new is pushed meanwhile, and Lambda delivers again from the lowest failed
    # record two minutes later (another environment)
    new_account = Account.model_validate(
        {
            "id": "acct-new",
            "name": "New Co",
            "email": "billing@new.example",
            "plan": "pro",
            "timezone": "UTC",
        }
    )
    config = ConfigStore(aws.dynamodb, aws.config_table)
    config.put_accounts(Accounts(accounts=[*example_accounts.accounts, new_account]))
    lowest = min(records.index(r) for r in first.failed)
    retry = aws.service(now=NOW + timedelta(minutes=2)).process(records[lowest:])
    log.add(records[lowest:], retry)

    # THEN each record ends in exactly one place: the quarantine holds exactly the records
    # whose final outcome is rejected, and the ledgers hold exactly the rated ones
    finals = log.finals(records)
    rated = [r for r in records if finals[r.sequence_number] == "rated"]
    stored_events = sum(events for _, events in totals(aws, "acct-1").values()) + sum(
        events for _, events in totals(aws, "acct-new").values()
    )
    observed = {
        "records rated and also in the quarantine": sorted(
            json.loads(r.data)["event_id"] for r in rated if origin(r) in quarantined(aws)
        ),
        "quarantine = records finally rejected": set(quarantined(aws))
        == {origin(r) for r in records if finals[r.sequence_number] == "rejected"},
        "events in the ledgers = records finally rated": stored_events == len(rated),
    }
    assert observed == {
        "records rated and also in the quarantine": [],
        "quarantine = records finally rejected": True,
        "events in the ledgers = records finally rated": True,
    }


# --- finding 4: running charges stale after a catalog price change ----------------------------


@dataclass
class PublishedEvents:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.sent.append(detail)


def test_price_change_reprices_running_charges_of_meters_no_batch_touched(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN acct-1 (pro, USD) used 100,000 GB-hours of EU storage in November, at 0.00012
    storage = event(
        "sto-1",
        "acct-1",
        meter="storage_gb_hours",
        quantity=100000,
        dimensions={"region": "eu-west-1"},
    )
    records = shard([storage, event("exp-1", "acct-1", meter="exports")])
    assert outcomes(records[:1], aws.service().process(records[:1])) == {"rated": 1}

    # ... and the EU storage price is then doubled to 0.00024 (the catalog push)
    document = example_catalog.model_dump(mode="json")
    pro = next(plan for plan in document["plans"] if plan["id"] == "pro")
    eu = next(c for c in pro["charges"] if c.get("description") == "Storage (EU)")
    assert eu["unit_price"] == "0.00012"
    eu["unit_price"] = "0.00024"
    catalog = parse_catalog(document, "repriced catalog")
    ConfigStore(aws.dynamodb, aws.config_table).put_catalog(catalog)
    eu_line = next(c.line_key for c in catalog.plans_by_id["pro"].charges if c.filters)

    # WHEN a batch touching only another meter (one export: 0.50) is rated, with a spend
    # alert at 24.50 USD watching the ledger's stream
    key = {"pk": {"S": account_key("acct-1")}, "sk": {"S": LEDGER_SORT_KEY}}
    before = aws.dynamodb.get_item(TableName=aws.ledger_table, Key=key, ConsistentRead=True)
    assert outcomes(records[1:], aws.service().process(records[1:])) == {"rated": 1}
    after = aws.dynamodb.get_item(TableName=aws.ledger_table, Key=key, ConsistentRead=True)
    published = PublishedEvents()
    alerts = SpendAlerts(
        config=ConfigStore(aws.dynamodb, aws.config_table),
        claims=AlertClaims(aws.dynamodb, aws.ledger_table),
        events=published,
        thresholds=SpendThresholds.parse('{"USD": ["24.50"]}'),
        clock=lambda: NOW,
    )
    crossed: list[Crossing] = alerts.handle(before.get("Item"), after.get("Item"))

    # THEN the usage report, the ledger's running charges and the spend alert all see the
    # EU storage at the new price: 100,000 x 0.00024 = 24.00, 24.50 with the export
    ledger = aws.ledger_store().load(["acct-1"], fresh=True)["acct-1"]
    report = usage_report(
        example_accounts.by_id["acct-1"], catalog, ledger, now=NOW - timedelta(days=2)
    ).to_json()
    storage_view = next(m for m in report["meters"] if m["meter"] == "storage_gb_hours")
    running = running_charges(catalog.plans_by_id["pro"], ledger.usage)
    observed = {
        "usage report: Storage (EU)": next(
            c["amount"] for c in storage_view["charges"] if c["description"] == "Storage (EU)"
        ),
        "usage report: usage subtotal": report["usage_subtotal"],
        "running charge: Storage (EU)": str(running["2026-11"][eu_line]),
        "running subtotal (spend)": str(running_subtotal(running["2026-11"], "USD")),
        "spend alerts crossed": [
            (str(c.crossing.threshold), str(c.crossing.subtotal)) for c in crossed
        ],
    }
    assert observed == {
        "usage report: Storage (EU)": "24.00",
        "usage report: usage subtotal": "24.50",
        "running charge: Storage (EU)": "24.00",
        "running subtotal (spend)": "24.50",
        "spend alerts crossed": [("24.50", "24.50")],
    }


# --- finding 5: a missing id chunk fails the whole invocation ---------------------------------


def test_missing_id_chunk_fails_only_its_accounts_records(aws: Aws) -> None:
    # GIVEN acct-3 spilled November's ids into a chunk, and that chunk item is gone
    spill = shard([event(f"e{n}") for n in range(40)])
    assert outcomes(spill, aws.service().process(spill)) == {"rated": 40}
    chunks = aws.dynamodb.query(
        TableName=aws.ledger_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :chunk)",
        ExpressionAttributeValues={
            ":pk": {"S": account_key("acct-3")},
            ":chunk": {"S": CHUNK_PREFIX},
        },
        ConsistentRead=True,
    )["Items"]
    assert chunks, "setup: acct-3 must have spilled an id chunk"
    for item in chunks:
        aws.dynamodb.delete_item(
            TableName=aws.ledger_table, Key={"pk": item["pk"], "sk": item["sk"]}
        )

    # WHEN a cold environment gets a batch with events of acct-1, acct-3 and acct-4
    batch = shard(
        [event("a1", "acct-1"), event("e40"), event("d1", "acct-4"), event("a2", "acct-1")],
        first=10**57,
    )
    try:
        report = aws.service().process(batch)
    except StoreError as error:
        pytest.fail(f"the whole invocation failed, not only acct-3's records: {error!r}")

    # THEN only acct-3's record is failed (to be delivered again); the others are rated
    observed = {
        "failed": [json.loads(r.data)["event_id"] for r in report.failed],
        "acct-1 and acct-4": outcomes([batch[0], batch[2], batch[3]], report),
        "acct-1 stored": totals(aws, "acct-1").get(("2026-11", "api_requests")),
        "acct-4 stored": totals(aws, "acct-4").get(("2026-11", "api_requests")),
    }
    assert observed == {
        "failed": ["e40"],
        "acct-1 and acct-4": {"rated": 3},
        "acct-1 stored": (Decimal(2), 2),
        "acct-4 stored": (Decimal(1), 1),
    }


# --- the dedupe window: 35 days after the first rating, even past the invoice close ------------


def test_resend_in_next_period_after_invoice_close_within_35_days_is_a_duplicate(
    aws: Aws,
) -> None:
    # GIVEN acct-1's event rated on 20 November, and November then invoiced (closed)
    rated_at = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    original = event("once", "acct-1", quantity=7, at="2026-11-20T10:00:00Z")
    resend = event("once", "acct-1", quantity=7, at="2026-12-05T09:00:00Z")
    records = shard([original, resend])
    first = aws.service(now=rated_at).process(records[:1])
    assert outcomes(records[:1], first) == {"rated": 1}
    aws.ledger_store().close_period("acct-1", "2026-11", NOW)

    # WHEN the producer resends it 15 days later with a December timestamp
    again = aws.service(now=rated_at + timedelta(days=15)).process(records[1:])

    # THEN the resend is a duplicate: December has no usage
    observed = {
        "resend": outcomes(records[1:], again),
        "acct-1 December": totals(aws, "acct-1").get(("2026-12", "api_requests")),
    }
    assert observed == {"resend": {"duplicate": 1}, "acct-1 December": None}


# --- finding 7: watermarks across a reshard ----------------------------------------------


def test_child_shard_records_are_rated_whatever_their_sequence_numbers(aws: Aws) -> None:
    # GIVEN acct-3's records on a parent shard, handled, then (after a reshard) on its child
    # shard, whose sequence numbers Kinesis orders only within that shard: here lower
    parent = shard([event(f"p{i}") for i in range(5)], "shardId-000000000000", first=10**56)
    child = shard([event(f"c{i}") for i in range(5)], "shardId-000000000001", first=10**55)
    service = aws.service()

    # WHEN the parent is read to its end, then the child, then both delivered again
    first = [service.process(parent), service.process(child)]
    again = [aws.service().process(parent), aws.service().process(child)]

    # THEN the child's records are rated (not taken for replays of the parent's), and the
    # second deliveries are replays on their own shard's watermark: 10 events, each once
    assert [
        outcomes(batch, report) for batch, report in zip((parent, child), first, strict=True)
    ] == [
        Counter({"rated": 5}),
        Counter({"rated": 5}),
    ]
    assert [
        outcomes(batch, report) for batch, report in zip((parent, child), again, strict=True)
    ] == [
        Counter({"replayed": 5}),
        Counter({"replayed": 5}),
    ]
    assert totals(aws, "acct-3") == {("2026-11", "api_requests"): (Decimal(10), 10)}


# --- randomized: the event source mapping with chaos, against an independent oracle -----------

WORKLOAD_SEED = 20261203
RECORDS = 10_000

NO_PROBLEMS: dict[str, Any] = {
    "aggregates differing from the oracle": 0,
    "first differing aggregates": {},
    "(expected, reported) final outcomes that differ": {},
    "records applied twice": 0,
    "records with only replays, never failed": 0,
    "records not accounted for": 0,
    "quarantined but not rejected by the oracle": 0,
    "rejected by the oracle but not quarantined": 0,
    "quarantined with another reason": 0,
    "finally rejected but not quarantined": 0,
}


def compare_with_oracle(
    aws: Aws, records: Sequence[StreamRecord], expected: Oracle, log: OutcomeLog
) -> dict[str, Any]:
    """Every way the stored state and the reported outcomes differ from the oracle's."""
    ledgers = aws.ledger_store().load(list(SUBSCRIPTIONS))
    stored = {
        (account, period, meter): (usage.total.quantity, usage.total.events)
        for account, ledger in ledgers.items()
        for period, meters in ledger.usage.items()
        for meter, usage in meters.items()
    }
    wrong = {
        key: {"stored": stored.get(key), "expected": expected.aggregates.get(key)}
        for key in sorted(set(stored) | set(expected.aggregates))
        if stored.get(key) != expected.aggregates.get(key)
    }
    finals = log.finals(records)
    final_counts = Counter(finals.values())
    mismatched = Counter(
        (want, finals[record.sequence_number])
        for record, want in zip(records, expected.outcomes, strict=True)
        if finals[record.sequence_number] not in (want, UNKNOWN)
    )
    unexplained = [s for s, outcome in finals.items() if outcome == UNKNOWN and log.failed[s] == 0]
    kept = quarantined(aws)
    should_keep = {
        origin(record): expected.reasons[position]
        for position, record in enumerate(records)
        if position in expected.reasons
    }
    finally_rejected = {origin(r) for r in records if finals[r.sequence_number] == "rejected"}
    return {
        "aggregates differing from the oracle": len(wrong),
        "first differing aggregates": dict(list(wrong.items())[:5]),
        "(expected, reported) final outcomes that differ": dict(mismatched),
        "records applied twice": len(log.applied_twice),
        "records with only replays, never failed": len(unexplained),
        "records not accounted for": len(records) - sum(final_counts.values()),
        "quarantined but not rejected by the oracle": len(set(kept) - set(should_keep)),
        "rejected by the oracle but not quarantined": len(set(should_keep) - set(kept)),
        "quarantined with another reason": sum(
            1 for o, reason in kept.items() if o in should_keep and should_keep[o] != reason
        ),
        "finally rejected but not quarantined": len(finally_rejected - set(kept)),
    }


def test_ten_thousand_events_through_a_chaotic_event_source_mapping_match_the_oracle(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN 10,000 records (valid events in three periods with acct-3 busy, producer
    # resends, bad records of seven reasons, corrected resends), and an oracle over them
    for account in example_accounts.accounts:
        zone, start, end = SUBSCRIPTIONS[account.id]
        assert (account.timezone, account.start, account.end) == (zone, start, end)
    rng = random.Random(WORKLOAD_SEED)
    sent = chaos_workload(rng, RECORDS)
    records = shard([item.payload for item in sent])
    expected = oracle(sent)
    assert len({period for (_, period, _) in expected.aggregates}) == 3
    # the oracle agrees with the in-memory pipeline on the same records (a check of the test)
    pipeline = rate_records(
        [item.payload for item in sent], example_catalog, example_accounts, NOW
    ).summary
    assert (pipeline.rated, pipeline.duplicates, sum(pipeline.rejected.values())) == (
        expected.outcomes.count("rated"),
        expected.outcomes.count("duplicate"),
        expected.outcomes.count("rejected"),
    )

    # WHEN an event source mapping delivers them: random batch boundaries (new ones on every
    # retry), three warm environments taking batches at random, writes throttled or with
    # their acknowledgement lost, retries from the lowest failed sequence number
    faults = FaultyDynamoDB(aws.dynamodb, random_policy(rng, throttle=0.03, lost_ack=0.03))
    environments = [aws.service(dynamodb=faults) for _ in range(3)]
    log = OutcomeLog()
    started = time.perf_counter()
    drove = drive(records, environments, rng, log, max_batch=120)
    seconds = time.perf_counter() - started
    assert faults.injected[Fault.THROTTLE] > 20
    assert faults.injected[Fault.LOST_ACK] > 20
    assert drove.partial_failures > 20
    assert min(drove.environments.values()) > 20

    # THEN every aggregate equals the oracle's, every record ends exactly once in the place
    # the oracle says, and the quarantine holds exactly the finally rejected records
    problems = compare_with_oracle(aws, records, expected, log)
    assert problems == NO_PROBLEMS, (
        f"{drove} in {seconds:.1f}s, faults {dict(faults.injected)}, "
        f"finals {dict(Counter(log.finals(records).values()))}"
    )
