"""The benchmarks' in-memory table behaves like DynamoDB (moto) for the ledger store."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from bench import workloads
from bench.rater import Discard, StaticConfig, shard
from billing.rating.service import RatingService
from billing.store.ledger_store import LedgerStore
from billing.store.memory_dynamodb import MemoryDynamoDB
from tests.integration.conftest import Aws


def test_in_memory_table_gives_the_same_ledgers_and_write_units_as_moto(aws: Aws) -> None:
    # GIVEN 3,000 skewed events over 200 accounts, in batches of 500
    catalog = workloads.catalog()
    accounts = workloads.accounts(200, catalog)
    records = shard(workloads.skewed(random.Random(3), 3000, accounts=200))

    def tokens() -> Callable[[], str]:  # the same write tokens on both, one per write
        return map(str, itertools.count()).__next__

    stores = {
        "moto": LedgerStore(aws.dynamodb, aws.ledger_table, token=tokens()),
        "memory": LedgerStore(MemoryDynamoDB(), "ledger", token=tokens()),
    }

    # WHEN both stores rate them through the same service
    for store in stores.values():
        service = RatingService(
            StaticConfig(catalog, accounts), store, Discard(), clock=lambda: workloads.NOW
        )
        for start in range(0, len(records), 500):
            assert not service.process(records[start : start + 500]).failed

    # THEN they count the same units and hold the same ledgers
    moto, memory = stores["moto"], stores["memory"]
    assert moto.capacity.write_units == memory.capacity.write_units
    assert moto.capacity.writes == memory.capacity.writes
    assert moto.capacity.read_units == memory.capacity.read_units
    ids = [account.id for account in accounts.accounts]
    assert LedgerStore(aws.dynamodb, aws.ledger_table).load(ids) == memory.load(ids)
    assert memory.capacity.write_units > 0
