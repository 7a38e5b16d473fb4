"""The rating half of the chaos run: the workload's records on the resharded stream,
delivered by the mapping to two warm rating services (each its own caches) over one
in-memory ledger table and quarantine bucket, through the fault plan."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from billing.core.catalog import Account, Accounts, Catalog
from billing.rating.rater import StreamRecord
from billing.rating.service import RatingService
from billing.store.ledger_store import LedgerStore
from billing.store.quarantine import QUARANTINE_PREFIX, Quarantine
from tests.chaos import workload
from tests.chaos.faults import (
    CountingDynamoDB,
    FaultPlan,
    FaultRates,
    FaultyDynamoDB,
    FaultyS3,
    MemoryS3,
)
from tests.chaos.stream import Mapping, SimulatedStream
from tests.support.esm_driver import OutcomeLog

LEDGER_TABLE = "billing-local-ledger"
QUARANTINE = "billing-local-quarantine"
Position = tuple[str, str]  # (shard, sequence number)


class StaticConfig:
    """The catalog and accounts as a warm environment's cache holds them."""

    def __init__(self, catalog: Catalog, accounts: Accounts) -> None:
        self._catalog, self._accounts = catalog, accounts.by_id

    def catalog(self) -> Catalog:
        return self._catalog

    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]:
        return {a: self._accounts[a] for a in account_ids if a in self._accounts}


def _no_sleep(_seconds: float) -> None:
    """Retries wait no wall-clock time here: the faults are decided by the plan, not by time."""


@dataclass
class RatingRun:
    stream: SimulatedStream
    producer_order: dict[Position, int]  # each record's place in the producer's order
    table: CountingDynamoDB
    bucket: MemoryS3
    plan: FaultPlan
    mapping: Mapping
    outcomes: OutcomeLog

    def records(self) -> list[StreamRecord]:
        return self.stream.records()

    def aggregates(self, account_ids: list[str]) -> dict[tuple[str, str, str], tuple[Decimal, int]]:
        ledgers = LedgerStore(self.table, LEDGER_TABLE).load(account_ids)
        return {
            (account, period, meter): (usage.total.quantity, usage.total.events)
            for account, ledger in ledgers.items()
            for period, meters in ledger.usage.items()
            for meter, usage in meters.items()
        }

    def quarantined(self) -> dict[Position, str]:
        kept: dict[Position, str] = {}
        for key, body in self.bucket.objects.items():
            if key.startswith(QUARANTINE_PREFIX) and body:
                document: dict[str, Any] = json.loads(body)
                kept[(document["shard_id"], document["sequence_number"])] = document["reason"]
        return kept


def put_with_reshards(sent: list[workload.Sent]) -> tuple[SimulatedStream, dict[Position, int]]:
    """Two shards; the first split in two half-way, its children merged again at three
    quarters."""
    stream = SimulatedStream(2)
    order: dict[Position, int] = {}
    for index, record in enumerate(sent):
        if index == len(sent) // 2:
            children = stream.split("shardId-000000000000")
        if index == 3 * len(sent) // 4:
            stream.merge(*children)
        put = stream.put(record.data, record.partition_key)
        order[(put.shard_id, put.sequence_number)] = index
    return stream, order


def rate(
    catalog: Catalog,
    accounts: Accounts,
    sent: list[workload.Sent],
    rng: random.Random,
    rates: FaultRates,
    progress: Callable[[str], None] | None = None,
) -> RatingRun:
    stream, order = put_with_reshards(sent)
    table, bucket, plan = CountingDynamoDB(), MemoryS3(), FaultPlan(rng, rates)
    config = StaticConfig(catalog, accounts)
    environments = [
        RatingService(
            config,
            LedgerStore(FaultyDynamoDB(table, plan), LEDGER_TABLE, sleep=_no_sleep),
            Quarantine(FaultyS3(bucket, plan), QUARANTINE),
            clock=lambda: workload.RATE_CLOCK,
            sleep=_no_sleep,
        )
        for _ in range(2)
    ]
    outcomes = OutcomeLog()
    mapping = Mapping(stream, environments, plan, rng, outcomes, progress=progress)
    mapping.run()
    return RatingRun(stream, order, table, bucket, plan, mapping, outcomes)
