"""A period's replay reads the archive back to the earliest claim the rater still counts:
an open period's claims live for as long as it stays open, so an event id claimed before
the 37 days ahead of the period is still a duplicate at the rater, and in the replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from billing.core.events import Reason
from billing.core.periods import Period
from billing.corrections.replay import replay, stream_records
from billing.corrections.sources import CorrectionSources
from billing.rating.archive import ArchivedRecord
from billing.rating.ledger import AccountLedger
from tests.integration.test_replay_clock import Config

pytestmark = pytest.mark.integration


def api(event_id: str, at: datetime, quantity: str) -> bytes:
    return (
        f'{{"event_id":"{event_id}","account_id":"acct-1","meter":"api_requests",'
        f'"quantity":"{quantity}","timestamp":"{at.isoformat()}"}}'
    ).encode()


def archived(sequence: int, data: bytes, at: datetime) -> ArchivedRecord:
    return ArchivedRecord(
        shard_id="shardId-0",
        sequence_number=str(sequence),
        subsequence_number=0,
        aggregated=False,
        partition_key="acct-1",
        arrival_ms=round(at.timestamp() * 1000),
        data=data,
    )


class Archive:
    def __init__(self, records: list[ArchivedRecord]) -> None:
        self._records = records

    def records_between(self, start: datetime, end: datetime) -> Iterable[ArchivedRecord]:
        low, high = start.timestamp() * 1000, end.timestamp() * 1000
        return [r for r in self._records if low <= r.arrival_ms < high]


class NothingRefused:
    def rater_refusals(self, among: object) -> dict[tuple[str, str], Reason]:
        return {}

    def resent(self, positions: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return set()


class Ledgers:
    """acct-1's live ledger: October still open, so its claims still count."""

    def load(self, account_ids: Iterable[str], *, fresh: bool = False) -> dict[str, Any]:
        return {a: AccountLedger(a, version=3, usage={"2026-10": {}}) for a in account_ids}


def test_an_id_claimed_before_the_lookback_stays_a_duplicate() -> None:
    # GIVEN event "x" rated on 15 October (acct-1's October not invoiced yet, or invoiced
    # with the account rating since: its claim lives at the rater) and the same id sent
    # again with a December timestamp, on 10 December
    first_sent = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    resent = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
    records = [
        archived(1, api("x", first_sent, "1000"), first_sent),
        archived(2, api("x", resent, "5000000"), resent),
    ]
    config = Config()
    # The rater, which saw both: the November resend is a duplicate
    whole = replay(stream_records(records), config)
    assert [str(r.outcome) for r in whole.records] == ["rated", "duplicate"]
    # WHEN December is replayed as rerate and explain replay it (from 24 October)
    sources = CorrectionSources(
        archive=Archive(records),
        config=config,  # type: ignore[arg-type]
        ledgers=Ledgers(),  # type: ignore[arg-type]
        invoices=None,  # type: ignore[arg-type]
        documents=None,  # type: ignore[arg-type]
        quarantine=NothingRefused(),
    )
    account = config.accounts(["acct-1"])["acct-1"]
    period = sources.replayed(
        Period.parse("2026-12"),
        [account],
        config.catalog(),
        count_late=True,
        now=datetime(2027, 1, 1, tzinfo=UTC),
    )
    # THEN December's usage is the rater's: nothing (the resend was a duplicate)
    assert period.replay.usage("acct-1", "2026-12") == whole.usage("acct-1", "2026-12")
