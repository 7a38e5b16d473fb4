"""Review: a replay judges FUTURE_TIMESTAMP as the rater did, whatever its batching.

replay.py promises the answer does not depend on the batching and that each batch is
judged "as near as the archive can tell to how the rater judged it". The archive tells
each record's arrival; the rater judged it within seconds of it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing.core.catalog import Account, Catalog
from billing.corrections.replay import replay
from billing.rating.records import Outcome, StreamRecord
from billing_cli.commands.common import load_files

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Config:
    def __init__(self) -> None:
        self._catalog, accounts = load_files(EXAMPLES / "catalog.yaml", EXAMPLES / "accounts.yaml")
        self._accounts = {a.id: a for a in accounts.accounts}

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return {i: self._accounts[i] for i in account_ids if i in self._accounts}


def api(event_id: str, at: datetime) -> bytes:
    return (
        f'{{"event_id":"{event_id}","account_id":"acct-1","meter":"api_requests",'
        f'"quantity":"1000","timestamp":"{at.isoformat()}"}}'
    ).encode()


def test_a_record_the_rater_refused_as_future_is_refused_by_the_replay() -> None:
    # GIVEN a record stamped 10 minutes after it arrived (the rater, judging it within
    # seconds of its arrival, refuses it: more than 5 minutes ahead), and one more record
    # of the same shard arriving an hour later
    arrived = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    later = arrived + timedelta(hours=1)
    records = [
        StreamRecord(
            "shardId-0",
            "1",
            api("ahead", arrived + timedelta(minutes=10)),
            arrival_timestamp=arrived.timestamp(),
        ),
        StreamRecord("shardId-0", "2", api("next", later), arrival_timestamp=later.timestamp()),
    ]
    # WHEN the archive is replayed record by record, and in the replay's own batches
    one_by_one = replay(records, Config(), batch_size=1)
    batched = replay(records, Config())
    # THEN both refuse it as FUTURE_TIMESTAMP, as the rater did
    assert [str(r.outcome) for r in one_by_one.records] == ["rejected", "rated"]
    assert [str(r.outcome) for r in batched.records] == [
        str(r.outcome) for r in one_by_one.records
    ], "the replay's batch clock (its last record's arrival) accepted a future event"
    # AND the aggregates agree
    assert batched.usage("acct-1", "2026-11") == one_by_one.usage("acct-1", "2026-11")


def test_outcomes_do_not_depend_on_how_the_archive_is_batched() -> None:
    # A month of records, one a day, each stamped at its arrival: nothing is ahead
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    records = [
        StreamRecord(
            "shardId-0",
            str(n + 1),
            api(f"e{n}", start + timedelta(days=n)),
            arrival_timestamp=(start + timedelta(days=n)).timestamp(),
        )
        for n in range(20)
    ]
    assert all(r.outcome == Outcome.RATED for r in replay(records, Config()).records)


def test_first_seen_wins_across_shards_by_arrival_whatever_the_batching() -> None:
    # GIVEN acct-1 writing on two shards (a resharded stream, or a partition key that is
    # not the account): shard A carries an event first, then shard B event "x" (1,000),
    # then shard A the same id "x" again with another quantity, later
    t0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    def api_quantity(event_id: str, quantity: str, when: datetime) -> bytes:
        return api(event_id, when).replace(b'"1000"', f'"{quantity}"'.encode())

    records = [
        StreamRecord("shardId-A", "1", api("first", at(0)), arrival_timestamp=at(0).timestamp()),
        StreamRecord(
            "shardId-B", "1", api_quantity("x", "1000", at(1)), arrival_timestamp=at(1).timestamp()
        ),
        StreamRecord(
            "shardId-A",
            "2",
            api_quantity("x", "999999", at(2)),
            arrival_timestamp=at(2).timestamp(),
        ),
    ]
    # WHEN replayed one record at a time (the order the rater saw them) and in batches
    one_by_one = replay(records, Config(), batch_size=1)
    batched = replay(records, Config())
    # THEN the first seen "x" (shard B's, 1,000) wins both times: 1,000 + 1,000
    assert [str(r.outcome) for r in one_by_one.records] == ["rated", "rated", "duplicate"]
    assert [str(r.outcome) for r in batched.records] == ["rated", "rated", "duplicate"]
    assert batched.usage("acct-1", "2026-11") == one_by_one.usage("acct-1", "2026-11")
