"""An account whose ids no longer fit a rater's memory claims them one item per id: still
exactly once under stale caches, lost acknowledgements and failed claim writes.

The thresholds are lowered here (64 ids in chunks instead of 250,000) so that a few hundred
events make an account keyed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from billing.rating import rater
from billing.rating.ledger import id_digest
from billing.rating.rater import Outcome, StreamRecord
from billing.rating.service import BatchReport
from billing.store.ledger_store import LEDGER_SORT_KEY, claim_key
from tests.integration.conftest import Aws
from tests.support.faults import Fault, FaultyDynamoDB, touches
from tests.support.kinesis import shard


@pytest.fixture(autouse=True)
def _small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rater, "CHUNKED_DIGESTS_MAX", 64)


def event(event_id: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "account_id": "acct-3",
        "meter": "api_requests",
        "quantity": quantity,
        "timestamp": "2026-11-10T10:00:00Z",
    }


def outcomes(report: BatchReport) -> dict[str, int]:
    return dict(Counter(str(r.outcome) for r in report.results.values()))


def claimed(aws: Aws, event_ids: list[str]) -> list[str]:
    found = []
    for event_id in event_ids:
        item = aws.dynamodb.get_item(
            TableName=aws.ledger_table, Key=claim_key("acct-3", id_digest(event_id))
        )
        if "Item" in item:
            found.append(event_id)
    return found


def total(aws: Aws) -> tuple[int, int]:
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    usage = ledger.usage["2026-11"]["api_requests"].total
    return int(usage.quantity), usage.events


def stream(first: int, ids: list[str]) -> list[StreamRecord]:
    return shard([event(i) for i in ids], first=first)


def test_a_keyed_account_dedupes_through_claims_across_environments(aws: Aws) -> None:
    # GIVEN acct-3 with 100 ids spilled into a chunk (past 64: it becomes keyed), then 50 new
    # ids rated by environment A (their claims written once its ledger landed)
    first = [f"a{i}" for i in range(100)]
    second = [f"b{i}" for i in range(50)]
    env_a = aws.service()
    assert outcomes(env_a.process(stream(10**50, first))) == {"rated": 100}
    assert aws.ledger_store().load(["acct-3"])["acct-3"].keyed
    assert outcomes(env_a.process(stream(10**50 + 1000, second))) == {"rated": 50}

    # WHEN a cold environment B gets resends of ids of both kinds, and 10 new ones
    resent = ["a7", "a99", "b0", "b49"]
    report = aws.service().process(stream(10**50 + 2000, resent + [f"c{i}" for i in range(10)]))

    # THEN the resends are duplicates (a: from the chunk, b: from their claim items), the
    # new ones rated; every b id has its claim item, the a ids (in a chunk) none, and the c
    # ids none yet (10 of them stay in the ledger itself, like any account's last few)
    assert outcomes(report) == {"duplicate": 4, "rated": 10}
    assert claimed(aws, second) == second
    assert claimed(aws, first + [f"c{i}" for i in range(10)]) == []
    assert total(aws) == (160, 160)


def test_a_lost_acknowledgement_on_a_keyed_write_still_claims_its_ids(aws: Aws) -> None:
    # GIVEN a keyed acct-3, and a ledger write whose answer is lost (it lands)
    faulty = FaultyDynamoDB(aws.dynamodb)
    service = aws.service(faulty)
    service.process(stream(10**50, [f"a{i}" for i in range(100)]))
    faulty.fail_next(Fault.LOST_ACK, touches("acct-3", LEDGER_SORT_KEY))

    # WHEN 40 new ids are rated (more than a ledger keeps itself), then resent (with new
    # sequence numbers) to a cold service
    new = [f"b{i}" for i in range(40)]
    report = service.process(stream(10**50 + 1000, new))
    resend = aws.service().process(stream(10**50 + 2000, new))

    # THEN the write was read back and counted as landed, its claims were written, and the
    # resends are duplicates: 140 events, each once
    assert (report.failed, outcomes(report)) == ([], {"rated": 40})
    assert faulty.pending == 0
    assert claimed(aws, new) == new
    assert outcomes(resend) == {"duplicate": 40}
    assert total(aws) == (140, 140)


def claim_writes(operation: str, request: dict[str, Any]) -> bool:
    return operation == "batch_write_item"


def test_claims_that_could_not_be_written_are_written_by_the_next_batch(aws: Aws) -> None:
    # GIVEN a keyed acct-3 whose next write lands but whose claim writes are throttled
    faulty = FaultyDynamoDB(aws.dynamodb)
    service = aws.service(faulty)
    service.process(stream(10**50, [f"a{i}" for i in range(100)]))
    faulty.fail_next(Fault.THROTTLE, claim_writes)
    report = service.process(stream(10**50 + 1000, [f"b{i}" for i in range(40)]))
    ledger = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    pending_before = [ref for ref in ledger.chunk_refs if ref.pending]

    # WHEN the next batch comes (to a cold environment), with a resend of b3
    later = aws.service().process(stream(10**50 + 2000, ["b3", "c1"]))

    # THEN the first batch counted (its ledger landed), its ids stayed claimed through the
    # pending chunk, the next batch wrote their claims and dropped the chunk from the ledger
    assert (report.failed, outcomes(report)) == ([], {"rated": 40})
    assert len(pending_before) == 1
    assert outcomes(later) == {"duplicate": 1, "rated": 1}
    assert claimed(aws, [f"b{i}" for i in range(40)]) == [f"b{i}" for i in range(40)]
    after = aws.ledger_store().load(["acct-3"], fresh=True)["acct-3"]
    assert pending_before[0].key not in {ref.key for ref in after.chunk_refs}
    assert total(aws) == (141, 141)


def test_a_stale_environment_on_a_keyed_account_counts_nothing_twice(aws: Aws) -> None:
    # GIVEN environments A and B; B saw acct-3 early, then A rated three more batches
    env_a, env_b = aws.service(), aws.service()
    env_b.process(stream(10**50, [f"a{i}" for i in range(100)]))
    for n in range(3):
        env_a.process(stream(10**50 + 1000 * (n + 1), [f"b{n}-{i}" for i in range(30)]))

    # WHEN B, with its stale cache, gets resends of A's ids and new ones
    resent = ["b0-0", "b1-29", "b2-15"]
    report = env_b.process(stream(10**50 + 9000, [*resent, "c0", "c1"]))

    # THEN its conflict is resolved by a fresh read: resends are duplicates, new ids rated
    assert outcomes(report) == {"duplicate": 3, "rated": 2}
    assert Outcome.REPLAYED not in {r.outcome for r in report.results.values()}
    assert total(aws) == (192, 192)
