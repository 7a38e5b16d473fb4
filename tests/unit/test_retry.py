"""The one retry policy (billing.store.retry) and the loops built on it: attempts counted
and capped, waits exponential with full jitter and never above the cap, the last failure
handed to the caller as it was raised, and no real sleep (every wait goes to the `sleep`
passed in)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from billing.core.invoice import invoice_number
from billing.store import retry
from billing.store.batches import batch_write
from billing.store.documents import DocumentStore
from billing.store.errors import StoreError, Throttled, VersionConflict
from billing.store.events import EventPublisher
from billing.store.invoice_store import InvoiceStore
from billing.store.retry import RetryPolicy
from billing_cli.local.run import put_on_stream
from billing_cli.producer import UsageNotSent

POLICY = RetryPolicy(attempts=5, first_wait=0.1, max_wait=0.5)


class Flaky:
    """Raises `error` on its first `failures` calls, then answers "done"."""

    def __init__(self, failures: int, error: type[Exception] = VersionConflict) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls}")
        return "done"


def client_error(code: str, operation: str = "Call") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


# --- the mechanism -----------------------------------------------------------------------


def test_work_that_succeeds_on_the_third_attempt_is_made_three_times_with_two_waits() -> None:
    # GIVEN work that loses two races, then succeeds
    work, waits = Flaky(failures=2), []

    # WHEN it is run under a 5-attempt policy
    result = POLICY.call(work, VersionConflict, sleep=waits.append)

    # THEN it was made 3 times, with a wait before each of the 2 retries
    assert (result, work.calls, len(waits)) == ("done", 3, 2)


def test_work_that_always_fails_is_made_exactly_the_cap_and_its_last_error_is_raised() -> None:
    # GIVEN work that always loses its race
    work, waits = Flaky(failures=99), []

    # WHEN it is run under a 5-attempt policy
    with pytest.raises(VersionConflict) as raised:
        POLICY.call(work, VersionConflict, sleep=waits.append)

    # THEN 5 attempts, 4 waits, and the caller gets the 5th attempt's own exception
    assert (work.calls, len(waits)) == (5, 4)
    assert str(raised.value) == "attempt 5"


def test_an_error_the_policy_does_not_retry_goes_to_the_caller_at_once() -> None:
    # GIVEN work whose first attempt fails with throttling (not a lost race)
    work, waits = Flaky(failures=1, error=Throttled), []

    # WHEN it is run retrying lost races only
    with pytest.raises(Throttled):
        POLICY.call(work, VersionConflict, sleep=waits.append)

    # THEN it was made once and nothing waited
    assert (work.calls, waits) == (1, [])


def test_waits_are_full_jitter_under_a_doubling_cap_that_stops_at_max_wait() -> None:
    # GIVEN the caps: 0.1, 0.2, 0.4, then 0.5 (max_wait) however many retries follow
    policy = RetryPolicy(attempts=8, first_wait=0.1, max_wait=0.5)
    assert [policy.wait_cap(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]

    # WHEN work that always fails is run 200 times
    runs: list[list[float]] = []
    for _ in range(200):
        waits: list[float] = []
        with pytest.raises(VersionConflict):
            policy.call(Flaky(failures=99), VersionConflict, sleep=waits.append)
        runs.append(waits)

    # THEN every wait is within [0, its cap], and the waits are spread, not in step
    for waits in runs:
        assert len(waits) == 7
        assert all(0 <= wait <= policy.wait_cap(n) for n, wait in enumerate(waits, start=1))
    last = [waits[-1] for waits in runs]
    assert len(set(last)) == len(last)  # no two callers retry at the same moment
    # ... over the whole window [0, 0.5] (each bound missed by 200 draws: p < 1e-19)
    assert min(last) < 0.1
    assert max(last) > 0.4


def test_the_waits_go_to_the_sleep_passed_in_never_to_a_real_one() -> None:
    # GIVEN a policy whose waits would take minutes if they were slept
    slow, waits = RetryPolicy(attempts=4, first_wait=60.0, max_wait=600.0), []

    # WHEN work that always fails runs under it
    with pytest.raises(VersionConflict):
        slow.call(Flaky(failures=99), VersionConflict, sleep=waits.append)

    # THEN each of the three waits was handed to `sleep` (which returned at once)
    assert len(waits) == 3
    assert sum(waits) > 0
    assert slow.retrying(VersionConflict, sleep=waits.append).sleep == waits.append


def test_iterating_attempts_makes_the_block_again_until_it_succeeds() -> None:
    # GIVEN a block that raises on its first two attempts
    made, waits = [], []

    # WHEN it runs under the policy's attempts
    for attempt in POLICY.retrying(VersionConflict, sleep=waits.append):
        with attempt:
            made.append(attempt.retry_state.attempt_number)
            if len(made) < 3:
                raise VersionConflict("lost")

    # THEN it ran as attempts 1, 2 and 3, waiting twice
    assert (made, len(waits)) == ([1, 2, 3], 2)


def test_an_attempt_whose_wait_would_pass_the_deadline_is_the_last() -> None:
    # GIVEN work that always fails, and time left for one wait only
    work, waits, asked = Flaky(failures=10), [], []

    def in_time(wait: float) -> bool:
        asked.append(wait)
        return not waits  # a first wait fits, a second would pass the deadline

    # WHEN it runs under a 5-attempt policy
    with pytest.raises(VersionConflict, match="attempt 2"):
        POLICY.call(work, VersionConflict, sleep=waits.append, in_time=in_time)

    # THEN it was made twice: the wait drawn before a third attempt did not fit, so the
    # second attempt's error went to the caller without waiting
    assert (work.calls, len(waits), len(asked)) == (2, 1, 2)
    assert asked[0] == waits[0]


@pytest.mark.parametrize(
    ("attempts", "first_wait", "max_wait"), [(0, 0.1, 1.0), (3, -0.1, 1.0), (3, 2.0, 1.0)]
)
def test_a_policy_without_an_attempt_or_with_waits_out_of_order_is_refused(
    attempts: int, first_wait: float, max_wait: float
) -> None:
    with pytest.raises(ValueError, match=r"retry policy|waits"):
        RetryPolicy(attempts, first_wait, max_wait)


def test_every_named_policy_is_capped_and_jittered() -> None:
    named = {name: p for name, p in vars(retry).items() if isinstance(p, RetryPolicy)}
    assert set(named) == {
        "UNPROCESSED",
        "PUBLISH",
        "CONFLICT",
        "RERATE",
        "NUMBERING",
        "S3_CONFLICT",
        "STREAM_PUT",
        "SES_THROTTLED",
    }
    for name, policy in named.items():
        assert 1 < policy.attempts <= 20, name
        assert 0 < policy.first_wait <= policy.max_wait <= 5, name


# --- the loops built on it -----------------------------------------------------------------


class Stuck:
    """A DynamoDB client whose BatchWriteItem leaves every item unprocessed."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        return {"UnprocessedItems": RequestItems}


def test_items_left_unprocessed_after_every_attempt_are_throttled_after_the_cap() -> None:
    client, waits = Stuck(), []

    with pytest.raises(Throttled, match="store id claims: items left unprocessed"):
        batch_write(
            client, "t", [{"PutRequest": {"Item": {}}}], "store id claims", sleep=waits.append
        )

    assert client.calls == retry.UNPROCESSED.attempts
    assert len(waits) == retry.UNPROCESSED.attempts - 1
    assert all(0 <= w <= retry.UNPROCESSED.wait_cap(n) for n, w in enumerate(waits, start=1))


class LosingNumbering:
    """An invoice table where another run always takes the numbers first."""

    def __init__(self) -> None:
        self.transactions = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        return {"Responses": {}, "UnprocessedKeys": {}}

    def transact_write_items(self, **request: Any) -> dict[str, Any]:
        self.transactions += 1
        raise client_error("ConditionalCheckFailedException", "TransactWriteItems")


def test_invoice_numbering_that_loses_every_race_is_a_version_conflict_after_the_cap() -> None:
    client, waits = LosingNumbering(), []
    store = InvoiceStore(client, "invoices", sleep=waits.append)

    with pytest.raises(VersionConflict):
        store.number([("acct-1", "2026-11")], datetime(2026, 12, 1, tzinfo=UTC), invoice_number)

    assert client.transactions == retry.NUMBERING.attempts
    assert len(waits) == retry.NUMBERING.attempts - 1


class BusyS3:
    """A bucket where another conditional write to the key stays in flight `busy` times."""

    def __init__(self, busy: int) -> None:
        self.busy, self.puts = busy, 0

    def put_object(self, **request: Any) -> dict[str, Any]:
        self.puts += 1
        if self.puts <= self.busy:
            raise client_error("ConditionalRequestConflict", "PutObject")
        return {}

    def get_object(self, **request: Any) -> dict[str, Any]:
        raise client_error("NoSuchKey", "GetObject")


def test_a_document_write_is_retried_while_s3_reports_a_conflicting_write_in_flight() -> None:
    s3, waits = BusyS3(busy=2), []

    stored = DocumentStore(s3, "docs", sleep=waits.append).put_new("k", b"body", "text/plain")

    assert (stored, s3.puts, len(waits)) == (b"body", 3, 2)


def test_a_document_write_in_conflict_every_time_reads_the_key_then_is_a_store_error() -> None:
    s3, waits = BusyS3(busy=99), []

    with pytest.raises(StoreError, match="ConditionalRequestConflict"):
        DocumentStore(s3, "docs", sleep=waits.append).put_new("k", b"body", "text/plain")

    assert (s3.puts, len(waits)) == (retry.S3_CONFLICT.attempts, retry.S3_CONFLICT.attempts - 1)


class RefusingBus:
    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        refused = [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"} for _ in Entries]
        return {"FailedEntryCount": len(Entries), "Entries": refused}


def test_events_the_bus_refuses_every_time_are_reported_after_the_cap() -> None:
    bus, waits = RefusingBus(), []

    failed = EventPublisher(bus, "bus", sleep=waits.append).publish_all([("X", {})])

    assert list(failed) == [0]
    assert "InternalFailure" in failed[0]
    assert (bus.calls, len(waits)) == (retry.PUBLISH.attempts, retry.PUBLISH.attempts - 1)


class RefusingStream:
    def __init__(self) -> None:
        self.calls = 0

    def put_records(self, Records: list[dict[str, Any]], **stream: str) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        return {"Records": [{"ErrorCode": "InternalFailure"} for _ in Records]}


def test_billing_runs_stream_put_stops_after_the_cap_instead_of_looping_forever() -> None:
    # GIVEN a stream that refuses every record (the local put once resent them forever)
    kinesis, waits = RefusingStream(), []

    # WHEN `billing run` puts its records on it THEN it gives up after the cap, naming them
    with pytest.raises(UsageNotSent) as raised:
        put_on_stream(kinesis, [b'{"account_id": "acct-1"}'], sleep=waits.append)

    assert kinesis.calls == retry.STREAM_PUT.attempts
    assert len(waits) == retry.STREAM_PUT.attempts - 1
    assert [record.partition_key for record in raised.value.records] == ["acct-1"]
