"""Invoice numbers allocated by two runs at once (CONTRACT.md section 4: one decimal
sequence per issuer, from 1, no gaps, no repeats).

The interleaving is forced, not hoped for: a botocore hook on each allocator's own
DynamoDB client holds its first TransactWriteItems until both allocators have read the
sequence and are about to write it, then lets them write one after the other. The second
one therefore writes over a sequence value the first has already moved, the one race the
condition on the sequence item exists for.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from billing.core.invoice import invoice_number
from billing.settings import INVOICES_TABLE
from billing.store.invoice_store import InvoiceRecord, InvoiceStore
from tests.integration.conftest import REGION, Aws

ISSUED_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
# How long a thread may wait for the other before the test calls it stuck: a guard against
# hanging, never a race (the order of the writes is fixed by the events, not by time).
STUCK_SECONDS = 20
Key = tuple[str, str]


class Interleaving:
    """Holds the first TransactWriteItems of each allocator (named in the order they are to
    write) until every allocator has reached its own, then releases them in that order,
    each once the one before has had its answer. Later writes (retries) pass at once."""

    def __init__(self, order: Sequence[str]) -> None:
        self._order = list(order)
        self._all_read = threading.Barrier(len(order), timeout=STUCK_SECONDS)
        self._turn = {name: threading.Event() for name in order}
        self._turn[self._order[0]].set()
        self.writes = dict.fromkeys(order, 0)

    def client(self, name: str) -> Any:
        """A DynamoDB client of its own for allocator `name`, with the hooks on it."""
        client = boto3.client("dynamodb", region_name=REGION)
        client.meta.events.register(
            "before-call.dynamodb.TransactWriteItems", lambda **_: self._before(name)
        )
        client.meta.events.register(
            "after-call.dynamodb.TransactWriteItems", lambda **_: self._after(name)
        )
        return client

    def _before(self, name: str) -> None:
        self.writes[name] += 1
        if self.writes[name] > 1:
            return
        self._all_read.wait()  # every allocator has read the sequence: none has written
        if not self._turn[name].wait(STUCK_SECONDS):
            raise AssertionError(f"allocator {name} never got its turn to write")

    def _after(self, name: str) -> None:
        if self.writes[name] > 1:
            return
        position = self._order.index(name)
        if position + 1 < len(self._order):
            self._turn[self._order[position + 1]].set()


def table(aws: Aws) -> str:
    return aws.tables[INVOICES_TABLE.env_var]


def allocate_at_once(
    aws: Aws, keys_by_allocator: dict[str, list[Key]]
) -> tuple[dict[str, dict[Key, InvoiceRecord]], dict[str, int]]:
    """Each allocator numbers its keys on its own thread and client, the writes interleaved
    in the dict's order; what each got, and how many transactions each sent."""
    interleaving = Interleaving(list(keys_by_allocator))
    stores = {
        name: InvoiceStore(interleaving.client(name), table(aws)) for name in keys_by_allocator
    }
    with ThreadPoolExecutor(max_workers=len(stores)) as pool:
        futures = {
            name: pool.submit(stores[name].number, keys, ISSUED_AT, invoice_number)
            for name, keys in keys_by_allocator.items()
        }
        got = {name: future.result(timeout=STUCK_SECONDS * 2) for name, future in futures.items()}
    return got, interleaving.writes


def numbers(records: dict[Key, InvoiceRecord]) -> dict[Key, tuple[int, str]]:
    return {key: (record.sequence, record.invoice_number) for key, record in records.items()}


def sequence_in_table(aws: Aws) -> dict[str, Any]:
    """What the table holds: how many invoice records, and which numbers repeat or are
    missing below the highest one."""
    found = Counter(r.sequence for r in InvoiceStore(aws.dynamodb, table(aws)).all_records())
    return {
        "records": found.total(),
        "repeated": sorted(n for n, times in found.items() if times > 1),
        "missing": sorted(set(range(1, max(found, default=0) + 1)) - set(found)),
    }


def gap_free(count: int) -> dict[str, Any]:
    return {"records": count, "repeated": [], "missing": []}


def accounts(*numbers: int, period: str = "2026-11") -> list[Key]:
    return [(f"acct-{n}", period) for n in numbers]


def test_two_runs_writing_over_the_same_sequence_value_get_consecutive_numbers(
    aws: Aws,
) -> None:
    # GIVEN no invoice yet, and two runs that both read the sequence (none) before either
    # writes: run A for acct-1..3, run B for acct-4..6
    # WHEN A writes first, then B over the sequence value it read
    got, writes = allocate_at_once(aws, {"A": accounts(1, 2, 3), "B": accounts(4, 5, 6)})

    # THEN A has 1..3; B's first write is refused (the sequence moved) and its second,
    # after reading again, takes 4..6: six numbers, no gap, no repeat
    assert sequence_in_table(aws) == gap_free(6)
    assert numbers(got["A"]) == {
        ("acct-1", "2026-11"): (1, "INV-2026-000001"),
        ("acct-2", "2026-11"): (2, "INV-2026-000002"),
        ("acct-3", "2026-11"): (3, "INV-2026-000003"),
    }
    assert numbers(got["B"]) == {
        ("acct-4", "2026-11"): (4, "INV-2026-000004"),
        ("acct-5", "2026-11"): (5, "INV-2026-000005"),
        ("acct-6", "2026-11"): (6, "INV-2026-000006"),
    }
    assert writes == {"A": 1, "B": 2}


def test_racing_runs_continue_a_sequence_already_under_way(aws: Aws) -> None:
    # GIVEN 41 invoices of October numbered 1..41
    InvoiceStore(aws.dynamodb, table(aws)).number(
        accounts(*range(100, 141), period="2026-10"), ISSUED_AT, invoice_number
    )

    # WHEN two runs read the sequence at 41 and write one after the other
    got, writes = allocate_at_once(aws, {"A": accounts(1, 2), "B": accounts(3, 4, 5)})

    # THEN A takes 42, 43 and B, refused once, 44..46
    assert sequence_in_table(aws) == gap_free(46)
    assert numbers(got["A"]) == {
        ("acct-1", "2026-11"): (42, "INV-2026-000042"),
        ("acct-2", "2026-11"): (43, "INV-2026-000043"),
    }
    assert numbers(got["B"]) == {
        ("acct-3", "2026-11"): (44, "INV-2026-000044"),
        ("acct-4", "2026-11"): (45, "INV-2026-000045"),
        ("acct-5", "2026-11"): (46, "INV-2026-000046"),
    }
    assert writes == {"A": 1, "B": 2}


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # A writes first: acct-1 1, acct-2 2; B then finds acct-2's record and numbers
        # only acct-3: 3
        (
            ("A", "B"),
            {"A": {"acct-1": 1, "acct-2": 2}, "B": {"acct-2": 2, "acct-3": 3}},
        ),
        # B writes first: acct-2 1, acct-3 2; A then finds acct-2's record and numbers
        # only acct-1: 3
        (
            ("B", "A"),
            {"B": {"acct-2": 1, "acct-3": 2}, "A": {"acct-1": 3, "acct-2": 1}},
        ),
    ],
)
def test_racing_runs_over_overlapping_accounts_number_each_invoice_once(
    aws: Aws, order: tuple[str, str], expected: dict[str, dict[str, int]]
) -> None:
    # GIVEN run A for acct-1, acct-2 and run B for acct-2, acct-3, both having read the
    # sequence (none) and found no record
    keys = {"A": accounts(1, 2), "B": accounts(2, 3)}

    # WHEN they write one after the other
    got, writes = allocate_at_once(aws, {name: keys[name] for name in order})

    # THEN the second is refused once, then numbers only what the first did not: acct-2
    # has one number, the same in both runs, and the three numbers have no gap
    assert sequence_in_table(aws) == gap_free(3)
    first, second = order
    assert {
        name: {account: record.sequence for (account, _), record in records.items()}
        for name, records in got.items()
    } == expected
    assert writes == {first: 1, second: 2}
