"""rate_usage against moto: nothing lost, nothing counted twice, whatever the delivery does.

Every test ends with the conservation check: each record put on the shard ends exactly once,
in the place the test expects (rated, duplicate, or rejected for the reason it expects), and
the stored aggregates equal the expected ones. The expectations are worked out by hand
(tests/support/examples.py for the example files, beside each test for the others) or, for
generated workloads, by the oracle of tests/support/oracle.py, which shares no code with the
rater.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from botocore.exceptions import ClientError

from billing.core.catalog import Accounts, Catalog
from billing.core.usage import MeterUsage
from billing.rating.ledger import AccountLedger, epoch_day, id_digest
from billing.rating.rater import LedgerWrite, Outcome, RecordResult, StreamRecord
from billing.rating.service import BatchReport, RatingService
from billing.store.errors import StoreError
from billing_cli.local.esm import MappingSettings, deliver, kinesis_event
from functions.rate_usage import app as rate_usage
from tests.integration.conftest import NOW, Aws
from tests.support.examples import EXAMPLE_RATING
from tests.support.kinesis import shard
from tests.support.oracle import Oracle, by_hand, chaos_workload, oracle

EVENTS = Path(__file__).resolve().parent.parent / "events"
EXAMPLE_EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


@dataclass
class LambdaContext:
    function_name: str = "rate-usage"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:rate-usage"
    aws_request_id: str = "request-1"


@dataclass
class Deliveries:
    """Every report the handler produced, to check what happened to each record."""

    reports: list[BatchReport] = field(default_factory=list)

    def final(self) -> dict[str, RecordResult]:
        """The one result that counts per record: the delivery that was not a replay.

        A record first seen as a replay was applied by an invocation that crashed before it
        could report; it stays REPLAYED here."""
        final: dict[str, RecordResult] = {}
        for report in self.reports:
            for sequence, result in report.results.items():
                previous = final.get(sequence)
                if result.outcome is Outcome.REPLAYED:
                    final.setdefault(sequence, result)
                    continue
                if previous is not None and previous.outcome is not Outcome.REJECTED:
                    raise AssertionError(f"record {sequence} was applied twice")
                final[sequence] = result
        return final


def through_handler(service: RatingService, deliveries: Deliveries) -> Callable[..., Any]:
    """Invoke the real handler, on `service`, recording its reports."""
    process = service.process

    def recording(records: Sequence[StreamRecord]) -> BatchReport:
        report = process(records)
        deliveries.reports.append(report)
        return report

    service.process = recording  # type: ignore[method-assign]

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        rate_usage.service.cache_clear()
        original = rate_usage.service
        rate_usage.service = lambda: service  # type: ignore[assignment]
        try:
            return rate_usage.handler(event, LambdaContext())  # type: ignore[arg-type]
        finally:
            rate_usage.service = original

    return invoke


@pytest.fixture(autouse=True)
def _quiet_powertools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "UsageBilling")


def stored_usage(aws: Aws, account_ids: Sequence[str]) -> dict[tuple[str, str, str], MeterUsage]:
    ledgers = aws.ledger_store().load(account_ids)
    return {
        (account_id, period, meter): usage
        for account_id, ledger in ledgers.items()
        for period, meters in ledger.usage.items()
        for meter, usage in meters.items()
    }


def stored_shares(
    aws: Aws, catalog: Catalog, accounts: Accounts
) -> dict[tuple[str, str, str, str], Decimal]:
    """The stored quantities of filtered charges that some event passed: (account, period,
    meter, charge description) -> quantity."""
    plans = {account.id: catalog.plans_by_id[account.plan] for account in accounts.accounts}
    shares = {}
    for (account_id, period, meter), usage in stored_usage(aws, list(plans)).items():
        for charge in plans[account_id].charges:
            if charge.meter == meter and charge.filters and charge.filter_key in usage.by_filter:
                description = str(charge.description)
                shares[(account_id, period, meter, description)] = usage.by_filter[
                    charge.filter_key
                ].quantity
    return shares


def assert_as_expected(
    aws: Aws,
    records: Sequence[StreamRecord],
    deliveries: Deliveries,
    expected: Oracle,
    catalog: Catalog,
    accounts: Accounts,
    crashed: bool = False,
) -> dict[str, int]:
    """Conservation, each record's place, the quarantine and the aggregates, all as expected."""
    final = deliveries.final()
    # Conservation: every record ends in exactly one place.
    assert sorted(final) == sorted(r.sequence_number for r in records)
    outcomes = Counter(str(result.outcome) for result in final.values())
    assert outcomes["rated"] + outcomes["duplicate"] + outcomes["rejected"] + outcomes[
        "replayed"
    ] == len(records)
    # Only an invocation that crashed applies records without reporting how.
    assert (outcomes["replayed"] > 0) == crashed
    if not crashed:
        reported = [
            str(final[r.sequence_number].rejection.reason)  # type: ignore[union-attr]
            if final[r.sequence_number].rejection
            else str(final[r.sequence_number].outcome)
            for r in records
        ]
        wanted = [
            expected.reasons.get(position, outcome)
            for position, outcome in enumerate(expected.outcomes)
        ]
        assert reported == wanted
    # Exactly the records expected to be rejected are in the quarantine, once each.
    rejected = sorted(records[position].sequence_number for position in expected.reasons)
    kept = [key.rsplit("/", 1)[1].removesuffix(".json") for key in aws.quarantined()]
    assert kept == rejected
    # Aggregates, and the quantities of filtered charges, exactly.
    totals = {
        key: (usage.total.quantity, usage.total.events)
        for key, usage in stored_usage(aws, [a.id for a in accounts.accounts]).items()
    }
    assert totals == expected.aggregates
    assert stored_shares(aws, catalog, accounts) == expected.shares
    return dict(outcomes)


def example_records() -> list[StreamRecord]:
    return shard(EXAMPLE_EVENTS.read_bytes().splitlines())


# --- the real event shape -------------------------------------------------------------------


def test_real_kinesis_event_is_rated_through_the_handler(aws: Aws) -> None:
    # GIVEN a Kinesis event exactly as Lambda delivers it
    event = json.loads((EVENTS / "kinesis_event.json").read_text())
    deliveries = Deliveries()

    # WHEN the handler gets it
    response = through_handler(aws.service(), deliveries)(event)

    # THEN nothing failed and its 1,200 requests are in acct-1's November ledger
    assert response == {"batchItemFailures": []}
    usage = stored_usage(aws, ["acct-1"])
    assert usage[("acct-1", "2026-11", "api_requests")].total.quantity == 1200
    assert usage[("acct-1", "2026-11", "api_requests")].total.events == 1


def test_local_mapping_shapes_events_like_lambda() -> None:
    real = json.loads((EVENTS / "kinesis_event.json").read_text())["Records"][0]
    local = kinesis_event(shard([b"{}"]), MappingSettings())["Records"][0]
    assert local.keys() == real.keys()
    assert local["kinesis"].keys() == real["kinesis"].keys()
    parsed = next(iter(KinesisStreamEvent({"Records": [local]}).records))
    assert parsed.kinesis.data_as_bytes() == b"{}"


# --- retries and replays ---------------------------------------------------------------------


def test_example_events_rated_once_end_as_worked_out_by_hand(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    records = example_records()
    deliveries = Deliveries()
    deliver(records, through_handler(aws.service(), deliveries), MappingSettings(batch_size=10))
    outcomes = assert_as_expected(
        aws, records, deliveries, EXAMPLE_RATING, example_catalog, example_accounts
    )
    assert outcomes == {"rated": 26, "duplicate": 1, "rejected": 7}


def test_batch_retried_with_other_boundaries_changes_nothing(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN the example shard, delivered once in batches of 7
    records = example_records()
    deliveries = Deliveries()
    deliver(records, through_handler(aws.service(), deliveries), MappingSettings(batch_size=7))
    first = stored_usage(aws, [a.id for a in example_accounts.accounts])
    delivered_once = len(deliveries.reports)

    # WHEN Lambda delivers all of it again, in batches of 5, then in one batch, cold each time
    for size in (5, 100):
        deliver(records, through_handler(aws.service(), deliveries), MappingSettings(size))

    # THEN nothing changed: the 26 rated events, the duplicate, the 4 records rejected for
    # known accounts and the one for an unknown account id are replays (their account ids'
    # watermarks passed them); the 2 records with no account id (malformed, bad schema) are
    # rejected again, by their bytes alone: 2 x 32 replays, 2 x 2 rejections
    assert stored_usage(aws, [a.id for a in example_accounts.accounts]) == first
    again = [r for report in deliveries.reports[delivered_once:] for r in report.results.values()]
    assert Counter(r.outcome for r in again) == {Outcome.REPLAYED: 64, Outcome.REJECTED: 4}
    assert_as_expected(aws, records, deliveries, EXAMPLE_RATING, example_catalog, example_accounts)


def test_sequence_numbers_are_compared_as_numbers(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN sequence numbers that grow from 56 to 57 digits mid-shard ("1000…" < "9999…" as text)
    payloads = [
        {
            "event_id": f"e{i}",
            "account_id": "acct-1",
            "meter": "api_requests",
            "quantity": 1,
            "timestamp": "2026-11-10T10:00:00Z",
        }
        for i in range(6)
    ]
    records = shard(payloads, first=10**56 - 21)
    assert [len(r.sequence_number) for r in records] == [56, 56, 56, 57, 57, 57]
    deliveries = Deliveries()

    # WHEN they arrive one per batch
    deliver(records, through_handler(aws.service(), deliveries), MappingSettings(batch_size=1))

    # THEN all six count
    six = by_hand(["rated"] * 6, {("acct-1", "2026-11", "api_requests"): (Decimal(6), 6)})
    assert_as_expected(aws, records, deliveries, six, example_catalog, example_accounts)


# --- producer duplicates ----------------------------------------------------------------------


def test_producer_resend_counts_once_even_after_its_id_was_spilled(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN an event, then 80 others (so its id is spilled out of the ledger into a chunk),
    # then the producer resending the first one with a new sequence number and another quantity
    def event(event_id: str, quantity: int) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "account_id": "acct-3",
            "meter": "api_requests",
            "quantity": quantity,
            "timestamp": "2026-11-10T10:00:00Z",
        }

    payloads = [event("first", 1000)] + [event(f"other-{i}", 1) for i in range(80)]
    payloads.append(event("first", 999999))
    records = shard(payloads)
    deliveries = Deliveries()

    # WHEN each batch is handled by a cold service (the chunk must come from the table)
    for start in range(0, len(records), 27):
        deliver(records[start : start + 27], through_handler(aws.service(), deliveries))

    # THEN the resend is a duplicate and the first quantity stands
    assert deliveries.final()[records[-1].sequence_number].outcome is Outcome.DUPLICATE
    ledger = aws.ledger_store().load(["acct-3"])["acct-3"]
    assert len(ledger.chunk_refs) == 1  # 27 + 27 ids passed the 32 kept inline: spilled once
    assert id_digest("first") not in ledger.recent_digests(epoch_day(NOW))  # only in the chunk
    # 1,000 + 80 x 1 = 1,080 from 81 events
    expected = by_hand(
        ["rated"] * 81 + ["duplicate"],
        {("acct-3", "2026-11", "api_requests"): (Decimal(1080), 81)},
    )
    assert_as_expected(aws, records, deliveries, expected, example_catalog, example_accounts)


class ChunkReadCountingClient:
    def __init__(self, client: Any) -> None:
        self._client, self.chunk_reads = client, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, **request: Any) -> Any:
        keys = [key for table in request["RequestItems"].values() for key in table["Keys"]]
        self.chunk_reads += sum(key["sk"]["S"].startswith("IDS#") for key in keys)
        return self._client.batch_get_item(**request)


def test_a_warm_service_reads_no_chunk_it_wrote_itself(aws: Aws) -> None:
    # GIVEN one warm service and batches that spill acct-3's ids into chunks
    client = ChunkReadCountingClient(aws.dynamodb)
    service = aws.service(dynamodb=client)
    payloads = [
        {
            "event_id": f"e-{n}",
            "account_id": "acct-3",
            "meter": "api_requests",
            "quantity": 1,
            "timestamp": "2026-11-10T10:00:00Z",
        }
        for n in range(200)
    ]
    records = shard(payloads)

    # WHEN it rates them in batches of 40
    for start in range(0, len(records), 40):
        service.process(records[start : start + 40])

    # THEN chunks were spilled (40 ids each time; equal neighbours merged, as a binary
    # counter: 40, 80, 80+40, 160, 160+40), and none was read back: kept once committed
    ledger = aws.ledger_store().load(["acct-3"])["acct-3"]
    assert [ref.count for ref in ledger.chunk_refs] == [160, 40]
    assert client.chunk_reads == 0
    assert ledger.usage["2026-11"]["api_requests"].total.quantity == 200


def test_duplicate_with_other_fields_in_the_same_batch_counts_once(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    base = {
        "event_id": "same",
        "account_id": "acct-1",
        "meter": "seats",
        "quantity": 3,
        "timestamp": "2026-11-10T10:00:00Z",
    }
    records = shard([base, {**base, "meter": "exports", "quantity": 50}])
    deliveries = Deliveries()
    deliver(records, through_handler(aws.service(), deliveries))
    assert [r.outcome for r in deliveries.final().values()] == [
        Outcome.RATED,
        Outcome.DUPLICATE,
    ]
    expected = by_hand(["rated", "duplicate"], {("acct-1", "2026-11", "seats"): (Decimal(3), 1)})
    assert_as_expected(aws, records, deliveries, expected, example_catalog, example_accounts)


# --- failures ---------------------------------------------------------------------------------


class Crash(RuntimeError):
    """The function dying mid-batch (timeout, out of memory)."""


@pytest.mark.parametrize("survive", [0, 1, 3, 5])
def test_crash_after_some_writes_then_retry_gives_a_clean_run(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts, survive: int
) -> None:
    # GIVEN a function that dies after `survive` ledger writes, once
    records = example_records()
    deliveries = Deliveries()
    service = aws.service()
    save = service._ledgers.save  # type: ignore[attr-defined]
    writes = Counter[str]()

    def crashing_save(write: LedgerWrite) -> None:
        writes["all"] += 1
        if writes["all"] == survive + 1:
            raise Crash("killed")
        save(write)

    service._ledgers.save = crashing_save  # type: ignore[attr-defined]

    # WHEN Lambda retries the failed invocation
    log = deliver(
        records,
        through_handler(service, deliveries),
        MappingSettings(batch_size=100, bisect_batch_on_error=False),
    )

    # THEN the retry completes the batch and the result is that of a clean run
    assert log.errors == 1
    assert log.sent_to_destination == []
    assert_as_expected(
        aws,
        records,
        deliveries,
        EXAMPLE_RATING,
        example_catalog,
        example_accounts,
        crashed=survive > 0,
    )


class ThrottlingClient:
    """A DynamoDB client whose writes for some accounts are throttled a number of times."""

    def __init__(self, client: Any, accounts: set[str], times: int) -> None:
        self._client, self._accounts, self._left = client, accounts, times
        self.throttled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **request: Any) -> Any:
        key = request["Item"]["pk"]["S"].removeprefix("ACCOUNT#")
        if key in self._accounts and self._left > 0:
            self._left -= 1
            self.throttled += 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem"
            )
        return self._client.put_item(**request)


def test_throttled_writes_are_redelivered_and_nothing_is_lost(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN writes for two accounts throttled three times beyond the SDK's own retries
    records = example_records()
    deliveries = Deliveries()
    client = ThrottlingClient(aws.dynamodb, {"acct-1", "acct-4"}, times=3)

    # WHEN the shard is delivered
    log = deliver(
        records, through_handler(aws.service(client), deliveries), MappingSettings(batch_size=10)
    )

    # THEN the failed records came back as partial failures, were retried, and all count once
    assert client.throttled == 3
    assert log.partial_failures == 3
    assert log.sent_to_destination == []
    assert_as_expected(aws, records, deliveries, EXAMPLE_RATING, example_catalog, example_accounts)


def test_poison_pills_amid_good_records_are_quarantined_and_block_nothing(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    good = {
        "event_id": "ok-1",
        "account_id": "acct-5",
        "meter": "api_requests",
        "quantity": "10",
        "timestamp": "2026-11-10T10:00:00Z",
    }
    pills: list[bytes | dict[str, Any]] = [
        b"\xff\xfe not utf-8",
        b'{"event_id": "x", ' + b" " * 17000 + b"}",
        b"[1, 2, 3]",
        b'{"event_id": "nan", "quantity": NaN}',
    ]
    records = shard([pills[0], good, pills[1], {**good, "event_id": "ok-2"}, pills[2], pills[3]])
    deliveries = Deliveries()

    response = through_handler(aws.service(), deliveries)(kinesis_event(records, MappingSettings()))

    assert response == {"batchItemFailures": []}
    final = deliveries.final()
    reasons = [final[r.sequence_number].rejection for r in records]
    assert [r.reason if r else None for r in reasons] == [
        "MALFORMED_JSON",
        None,
        "TOO_LARGE",
        None,
        "SCHEMA_INVALID",
        "MALFORMED_JSON",
    ]
    kept = json.loads(aws.s3.get_object(Bucket=aws.bucket, Key=aws.quarantined()[0])["Body"].read())
    assert kept["raw_base64"] == "//4gbm90IHV0Zi04"
    assert kept["reason"] == "MALFORMED_JSON"
    assert kept["shard_id"] == "shardId-000000000000"
    assert kept["sequence_number"] == records[0].sequence_number
    assert "raw" not in kept
    expected = by_hand(
        ["MALFORMED_JSON", "rated", "TOO_LARGE", "rated", "SCHEMA_INVALID", "MALFORMED_JSON"],
        {("acct-5", "2026-11", "api_requests"): (Decimal(20), 2)},  # 10 + 10
    )
    assert_as_expected(aws, records, deliveries, expected, example_catalog, example_accounts)


def test_event_for_an_invoiced_period_is_rejected_as_period_closed(aws: Aws) -> None:
    # GIVEN acct-1's October is invoiced (closed in its ledger)
    store = aws.ledger_store()
    empty = AccountLedger("acct-1")
    store.save(LedgerWrite(empty, empty.bumped(closed=frozenset({"2026-10"}))))
    october = {
        "event_id": "late",
        "account_id": "acct-1",
        "meter": "api_requests",
        "quantity": 5,
        "timestamp": "2026-10-31T23:00:00+01:00",
    }
    november = {**october, "event_id": "on-time", "timestamp": "2026-11-01T00:00:00+01:00"}
    records = shard([october, november])
    deliveries = Deliveries()

    # WHEN both arrive
    through_handler(aws.service(), deliveries)(kinesis_event(records, MappingSettings()))

    # THEN October's is kept in the quarantine as PERIOD_CLOSED and November's is rated
    final = deliveries.final()
    closed = final[records[0].sequence_number].rejection
    assert closed is not None
    assert closed.reason == "PERIOD_CLOSED"
    assert final[records[1].sequence_number].outcome is Outcome.RATED
    kept = json.loads(aws.s3.get_object(Bucket=aws.bucket, Key=aws.quarantined()[0])["Body"].read())
    assert kept["reason"] == "PERIOD_CLOSED"
    assert json.loads(kept["raw"])["event_id"] == "late"
    ledger = aws.ledger_store().load(["acct-1"])["acct-1"]
    assert set(ledger.usage) == {"2026-11"}


def test_close_racing_a_batch_rejects_its_events_instead_of_losing_them(aws: Aws) -> None:
    # GIVEN a batch read acct-2's ledger, and then the period is closed before it writes
    record = {
        "event_id": "racer",
        "account_id": "acct-2",
        "meter": "api_requests",
        "quantity": 5,
        "timestamp": "2026-11-20T10:00:00Z",
    }
    records = shard([record])
    deliveries = Deliveries()
    service = aws.service()
    save = service._ledgers.save  # type: ignore[attr-defined]
    closer = aws.ledger_store()

    def save_after_a_close(write: LedgerWrite) -> None:
        current = closer.load(["acct-2"])["acct-2"]
        if "2026-11" not in current.closed:
            closer.save(LedgerWrite(current, current.bumped(closed=frozenset({"2026-11"}))))
        save(write)

    service._ledgers.save = save_after_a_close  # type: ignore[attr-defined]

    # WHEN the batch's write loses the race
    through_handler(service, deliveries)(kinesis_event(records, MappingSettings()))

    # THEN it rates again, and the event is rejected as PERIOD_CLOSED, kept, not lost
    result = deliveries.final()[records[0].sequence_number]
    assert result.rejection is not None
    assert result.rejection.reason == "PERIOD_CLOSED"
    assert len(aws.quarantined()) == 1
    assert aws.ledger_store().load(["acct-2"])["acct-2"].usage == {}


# --- many random events ---------------------------------------------------------------------


def test_ten_thousand_random_events_match_the_oracle(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN 10,000 generated records: valid events over three periods, producer resends (some
    # in another period), bad records of seven reasons, corrected resends of some of them
    sent = chaos_workload(random.Random(20261122), 10_000)
    records = shard([item.payload for item in sent])
    deliveries = Deliveries()

    # WHEN they are delivered in batches of 500, then the second half again in batches of 333
    deliver(records, through_handler(aws.service(), deliveries), MappingSettings(batch_size=500))
    deliver(
        records[5000:], through_handler(aws.service(), deliveries), MappingSettings(batch_size=333)
    )

    # THEN every record is accounted for once, where the oracle says, and the ledgers equal
    # the oracle's, exactly
    outcomes = assert_as_expected(
        aws, records, deliveries, oracle(sent), example_catalog, example_accounts
    )
    assert outcomes["rated"] > 5000
    assert outcomes["duplicate"] > 300


class BrokenQuarantine:
    def keep(self, *_: Any) -> bool:
        raise StoreError("quarantine record: ServiceUnavailable")

    def holds(self, *_: Any) -> bool:
        return False

    def stage(self, *_: Any) -> None:
        raise StoreError("quarantine record: ServiceUnavailable")

    def promote(self, *_: Any) -> bool:
        return False


def test_quarantine_outage_fails_only_the_records_it_could_not_keep(
    aws: Aws, example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN a batch of 12 good records and a malformed one last, and S3 down
    records = example_records()[:12] + example_records()[29:30]
    assert records[-1].data.startswith(b'{"event_id":"bad-1"')
    broken = RatingService(
        config=aws.service()._config,  # type: ignore[attr-defined]
        ledgers=aws.ledger_store(),
        quarantine=BrokenQuarantine(),
        clock=lambda: NOW,
    )
    deliveries = Deliveries()

    # WHEN the batch is processed, then delivered again (from the failed record on) once S3
    # is back
    first = broken.process(records)
    deliveries.reports.append(first)
    deliver(records[-1:], through_handler(aws.service(), deliveries))

    # THEN only the malformed record failed the first time, the good ones were rated once,
    # and the retry kept the malformed one: each record ended in one place
    assert [r.sequence_number for r in first.failed] == [records[-1].sequence_number]
    assert deliveries.final()[records[-1].sequence_number].outcome is Outcome.REJECTED
    # events.jsonl's first 12 lines are all acct-1's November (see tests/support/examples.py)
    expected = by_hand(
        ["rated", "rated", "duplicate", *["rated"] * 9, "MALFORMED_JSON"],
        {
            ("acct-1", "2026-11", "api_requests"): (Decimal(1534000), 2),
            ("acct-1", "2026-11", "storage_gb_hours"): (Decimal(15500), 3),
            ("acct-1", "2026-11", "seats"): (Decimal(12), 3),
            ("acct-1", "2026-11", "exports"): (Decimal(3), 3),
        },
        {
            ("acct-1", "2026-11", "storage_gb_hours", "Storage (EU)"): Decimal(10000),
            ("acct-1", "2026-11", "storage_gb_hours", "Storage (US)"): Decimal(5000),
        },
    )
    assert_as_expected(aws, records, deliveries, expected, example_catalog, example_accounts)


def test_a_rejection_stays_rejected_when_a_retry_runs_with_a_later_clock(aws: Aws) -> None:
    # GIVEN acct-1's second event is 6 minutes ahead of the first delivery's clock, and
    # acct-4's write is throttled once, so Lambda delivers the batch again 2 minutes later
    def event(event_id: str, account: str, at: str) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "account_id": account,
            "meter": "api_requests",
            "quantity": 1000,
            "timestamp": at,
        }

    records = shard(
        [
            event("b1", "acct-4", "2026-11-30T10:00:00Z"),
            event("a1", "acct-1", "2026-11-30T10:00:00Z"),
            event("a2", "acct-1", "2026-12-01T06:06:00Z"),
        ]
    )
    throttled = ThrottlingClient(aws.dynamodb, {"acct-4"}, times=1)
    first = aws.service(throttled)
    later = aws.service(now=NOW + timedelta(minutes=2))
    services = iter([first, later, later])

    # WHEN both deliveries happen
    deliver(
        records,
        lambda e: (
            next(services).process(rate_usage.stream_records(KinesisStreamEvent(e))).response()
        ),
    )

    # THEN the future event was rejected once, is in the quarantine, and was never rated
    usage = stored_usage(aws, ["acct-1", "acct-4"])
    assert usage[("acct-1", "2026-11", "api_requests")].total.quantity == 1000
    assert ("acct-1", "2026-12", "api_requests") not in usage
    assert usage[("acct-4", "2026-11", "api_requests")].total.quantity == 1000
    assert [key.rsplit("/", 1)[1] for key in aws.quarantined()] == [
        f"{records[2].sequence_number}.json"
    ]


def test_ids_of_a_closed_period_count_for_35_days_after_they_were_rated(aws: Aws) -> None:
    # GIVEN acct-3's 70 November events, rated on 1 December (spilled into one chunk), and
    # November then invoiced (closed)
    def event(event_id: str, at: str) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "account_id": "acct-3",
            "meter": "api_requests",
            "quantity": 1,
            "timestamp": at,
        }

    november = shard([event(f"n{i}", "2026-11-10T10:00:00Z") for i in range(70)])
    deliver(november, through_handler(aws.service(), Deliveries()), MappingSettings(100))
    store = aws.ledger_store()
    (chunk,) = store.load(["acct-3"])["acct-3"].chunk_refs
    store.close_period("acct-3", "2026-11", NOW)

    # WHEN the producer resends n5 with a January timestamp 34 days later, and n6 on the
    # 36th day, after the chunk's items have expired
    resend = shard([event("n5", "2027-01-03T10:00:00Z")], first=10**57)
    within = aws.service(now=NOW + timedelta(days=34)).process(resend)
    aws.dynamodb.delete_item(
        TableName=aws.ledger_table,
        Key={"pk": {"S": "ACCOUNT#acct-3"}, "sk": {"S": "IDS#" + chunk.key.hex()}},
    )
    late = shard([event("n6", "2027-01-05T10:00:00Z")], first=10**57 + 10)
    after = aws.service(now=NOW + timedelta(days=36)).process(late)

    # THEN the first is a duplicate (its id still counts, though its period is closed), and
    # the second is rated: the window is over and nothing asks for the expired chunk
    assert [r.outcome for r in within.results.values()] == [Outcome.DUPLICATE]
    assert (after.failed, [r.outcome for r in after.results.values()]) == ([], [Outcome.RATED])
    assert stored_usage(aws, ["acct-3"])[("acct-3", "2027-01", "api_requests")].total.events == 1
