"""Invoice numbering under real concurrency. `python bench/numbering.py --json`.

C batches of the invoice run at once (the Distributed Map's concurrency: the default 10,
and 40), each numbering its 99 invoices through the real InvoiceNumbers code (one
BatchGetItem of the records and the sequence, one TransactWriteItems of the sequence's
conditional update and the 99 records), against an in-memory invoice table on virtual time
(bench/virtual_time.py): every call takes a latency drawn from the model below, and a
transaction finding the sequence moved (ConditionalCheckFailed) or in another transaction's
write (TransactionConflict) is cancelled, as DynamoDB does; the NUMBERING retry policy then
reads again. Each batch's other work is simulated as time: before numbering, its 99 closes
and renders; after, storing each invoice and emailing all 99 at the batch's share of SES's
rate (14 emails/s shared by the C batches), or unpaced (the most numbering pressure: only
the store's work between two allocations).

- conflicts_per_allocation: cancelled transactions per allocation (retries), mean and max.
- sequence writes per second: the run's mean and its busiest second, in transactions and in
  write units of the sequence item (2 WCU per transactional write of an item under 1 KB),
  against DynamoDB's 1,000 WCU/s for one item (one partition key).
- gap_free: the numbers taken are exactly 1..N, each once.
"""

from __future__ import annotations

import argparse
import bisect
import json
import platform
import random
import sys
import threading
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from billing.core.invoice import invoice_number
from billing.invoicing.due import BATCH_SIZE
from billing.settings import DEFAULT_RUN_CONCURRENCY
from billing.store.invoice_numbers import SEQUENCE_KEY, InvoiceNumbers
from billing.store.retry import NUMBERING
from virtual_time import VirtualTime

ISSUED_AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
TABLE = "invoices"
# DynamoDB: what one item (one partition key) takes per second, and what a transactional
# write of an item under 1 KB costs.
ITEM_WCU_PER_SECOND = 1000
TRANSACTIONAL_WCU = 2
GOALS = {"conflicts_per_allocation": 0.1, "sequence_wcu_share_of_item_limit": 0.01}


@dataclass(frozen=True)
class Model:
    """Seconds, drawn uniformly between the two bounds of each pair."""

    read: tuple[float, float] = (0.008, 0.020)  # BatchGetItem of 100 keys, consistent
    transaction: tuple[float, float] = (0.030, 0.080)  # TransactWriteItems of 100 items
    close_and_render: tuple[float, float] = (0.020, 0.060)  # per invoice, before numbering
    store: tuple[float, float] = (0.040, 0.080)  # per invoice after: S3 puts, record writes
    batch_start: tuple[float, float] = (0.05, 0.30)  # the Map starting a child, warm
    cold_start: tuple[float, float] = (0.20, 1.50)  # each worker's first batch


class Cancelled(ClientError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": reason} for reason in reasons],
            },  # type: ignore[typeddict-unknown-key]
            "TransactWriteItems",
        )


class SimulatedInvoiceTable:
    """The invoice table as InvoiceNumbers calls it, in memory and on virtual time. Accounts
    are `acct-<n>`, so a record is a bit per account and its number a slot in an array:
    a million invoices fit in a few MB."""

    def __init__(self, clock: VirtualTime, rng: random.Random, model: Model, size: int) -> None:
        self._clock, self._rng, self._model = clock, rng, model
        self.last = 0
        self.numbered = bytearray(size)
        self.numbers = array("q", [0]) * size
        self._busy_until = -1.0  # the sequence item is in another transaction's write
        self.commits: list[float] = []
        self.cancelled: Counter[int] = Counter()  # by thread: one allocation at a time each

    def _wait(self, bounds: tuple[float, float], share: float) -> None:
        self._clock.sleep(share * self._rng.uniform(*bounds))

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self._wait(self._model.read, 0.5)
        found = []
        for key in RequestItems[TABLE]["Keys"]:
            if key == SEQUENCE_KEY and self.last:
                found.append({**SEQUENCE_KEY, "last": {"N": str(self.last)}})
            elif key != SEQUENCE_KEY and self.numbered[_account(key)]:
                raise AssertionError("a batch's records are new: none is read twice")
        self._wait(self._model.read, 0.5)
        return {"Responses": {TABLE: found}, "UnprocessedKeys": {}}

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        duration = self._rng.uniform(*self._model.transaction)
        self._clock.sleep(duration / 2)
        reasons = self._check(TransactItems)
        if any(reason != "None" for reason in reasons):
            self.cancelled[threading.get_ident()] += 1
            self._clock.sleep(duration / 2)
            raise Cancelled(reasons)
        update, *puts = TransactItems
        self.last = int(update["Update"]["ExpressionAttributeValues"][":next"]["N"])
        for put in puts:
            item = put["Put"]["Item"]
            self.numbered[_account(item)] = 1
            self.numbers[_account(item)] = int(item["sequence"]["N"])
        self.commits.append(self._clock.now)
        self._busy_until = self._clock.now + duration / 2
        self._clock.sleep(duration / 2)
        return {}

    def _check(self, items: list[dict[str, Any]]) -> list[str]:
        """Each item's cancellation reason ("None" if its condition holds)."""
        if self._clock.now < self._busy_until:
            return ["TransactionConflict"] + ["None"] * (len(items) - 1)
        update = items[0]["Update"]
        expected = update["ExpressionAttributeValues"].get(":last")
        holds = self.last == int(expected["N"]) if expected else self.last == 0
        reasons = ["None" if holds else "ConditionalCheckFailed"]
        reasons += [
            "ConditionalCheckFailed" if self.numbered[_account(put["Put"]["Item"])] else "None"
            for put in items[1:]
        ]
        return reasons


def _account(key: dict[str, Any]) -> int:
    return int(key["pk"]["S"].removeprefix("ACCOUNT#acct-"))


@dataclass(frozen=True)
class Scenario:
    concurrency: int
    ses_rate: float | None  # emails/s shared by the batches; None: unpaced
    invoices: int

    @property
    def name(self) -> str:
        pace = f"{self.ses_rate:g}_per_s" if self.ses_rate else "unpaced"
        return f"c{self.concurrency}_{pace}"


def simulate(scenario: Scenario, model: Model = Model(), seed: int = 14) -> dict[str, Any]:
    """The scenario's run, every batch numbered through the real code on virtual time."""
    random.seed(seed)  # tenacity's jitter: the workers run one at a time, so this is stable
    rng = random.Random(seed)
    clock = VirtualTime()
    table = SimulatedInvoiceTable(clock, rng, model, scenario.invoices)
    numbers = InvoiceNumbers(table, TABLE, sleep=clock.sleep)
    batches = iter(range(0, scenario.invoices, BATCH_SIZE))
    conflicts: list[int] = []

    def worker() -> None:
        clock.sleep(rng.uniform(*model.cold_start))
        for start in batches:  # one worker runs at a time: the iterator is not shared at once
            count = min(BATCH_SIZE, scenario.invoices - start)
            clock.sleep(sum(rng.uniform(*model.close_and_render) for _ in range(count)))
            keys = [(f"acct-{start + n}", "2026-11") for n in range(count)]
            before = table.cancelled[threading.get_ident()]
            numbers.number(keys, ISSUED_AT, invoice_number)
            conflicts.append(table.cancelled[threading.get_ident()] - before)
            clock.sleep(sum(rng.uniform(*model.store) for _ in range(count)))
            if scenario.ses_rate:  # the batch's emails at its share of the account's rate
                clock.sleep((count - 1) * scenario.concurrency / scenario.ses_rate)
            clock.sleep(rng.uniform(*model.batch_start))

    clock.run([worker] * scenario.concurrency)
    return _report(scenario, table, conflicts, clock.now)


def _report(
    scenario: Scenario, table: SimulatedInvoiceTable, conflicts: list[int], seconds: float
) -> dict[str, Any]:
    taken = sorted(table.numbers)
    busiest = max(
        bisect.bisect_right(table.commits, at + 1.0) - index
        for index, at in enumerate(table.commits)
    )
    mean_rate = len(table.commits) / seconds
    return {
        "scenario": scenario.name,
        "concurrency": scenario.concurrency,
        "ses_rate_per_s": scenario.ses_rate,
        "invoices": scenario.invoices,
        "allocations": len(conflicts),
        "conflicts_per_allocation": _mean(conflicts),
        # the first wave: every batch starts at once and reaches numbering within a second
        "first_wave_conflicts_per_allocation": _mean(conflicts[: scenario.concurrency]),
        "later_conflicts_per_allocation": _mean(conflicts[scenario.concurrency :]),
        "max_conflicts_in_one_allocation": max(conflicts),
        "allocations_with_a_conflict_pct": round(
            100 * sum(1 for c in conflicts if c) / len(conflicts), 2
        ),
        "retries_allowed": NUMBERING.attempts - 1,
        "gap_free": taken == list(range(1, scenario.invoices + 1)),
        "run_hours": round(seconds / 3600, 2),
        "sequence_writes_per_s_mean": round(mean_rate, 3),
        "sequence_writes_busiest_second": busiest,
        "sequence_wcu_per_s_busiest": busiest * TRANSACTIONAL_WCU,
        "sequence_wcu_share_of_item_limit": round(
            busiest * TRANSACTIONAL_WCU / ITEM_WCU_PER_SECOND, 4
        ),
    }


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--invoices", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    scenarios = [
        Scenario(concurrency, rate, args.invoices)
        for concurrency in (DEFAULT_RUN_CONCURRENCY, 40)
        for rate in (14.0, None)
    ]
    report = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "model": asdict(Model()),
        "transactions_per_million_invoices": -(-1_000_000 // BATCH_SIZE),
        "scenarios": [simulate(scenario) for scenario in scenarios],
        "goals": GOALS,
    }
    print(json.dumps(report, indent=None if args.json else 2))
    return report


if __name__ == "__main__":
    main()
