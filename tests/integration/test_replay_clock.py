"""A replay decides FUTURE_TIMESTAMP as the rater did, whatever its batching: the rater's
verdict (it depended on the rater's clock) comes from the quarantine, by position.

Not held to, on purpose: which of two records of one account on two shards is "first
seen" (a producer whose partition key is not the account). The rater rates shards in
parallel, so its own order between them is a race (docs/corrections.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from billing.core.catalog import Account, Catalog
from billing.core.events import Reason
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
    # GIVEN a record stamped 10 minutes after it arrived, which the rater refused as
    # FUTURE_TIMESTAMP (the quarantine says so, by its position), and one more record of
    # the same shard arriving an hour later
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
    verdicts = {("shardId-0", "1"): Reason.FUTURE_TIMESTAMP}
    # WHEN the archive is replayed record by record, and in the replay's own batches
    one_by_one = replay(records, Config(), verdicts, batch_size=1)
    batched = replay(records, Config(), verdicts)
    # THEN both refuse it as the rater did, with the rater's reason: a replay takes the
    # verdicts that depended on the rater's clock from the quarantine, never from its own
    for replayed in (one_by_one, batched):
        assert [str(r.outcome) for r in replayed.records] == ["rejected", "rated"]
        first = replayed.records[0].rejection
        assert first is not None
        assert first.reason == Reason.FUTURE_TIMESTAMP
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
