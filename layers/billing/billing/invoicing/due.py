"""The invoice run's first step (ListDue): the (account, period) pairs to invoice, written
in batches to the run's manifest in S3, and how many are done already.

The step's output holds the manifest's location and counts, never the pairs: a Distributed
Map reads the batches from S3, so the run's states stay small whatever the number of
accounts (Step Functions refuses a state over 256 KB)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Final

from billing.core.catalog import Account
from billing.core.periods import Period
from billing.invoicing.ports import Config, Invoices, Ledgers
from billing.invoicing.steps import (
    DueInput,
    DueOutput,
    FileRef,
    Item,
    ManifestBatch,
    RunFolder,
    read,
)
from billing.settings import DEFAULT_RUN_CONCURRENCY
from billing.store.invoice_store import InvoiceRecord
from billing.store.run_files import RunFiles, new_prefix

# Accounts per Map iteration: as many as one numbering transaction takes (99 records and
# the sequence item, DynamoDB's 100-item limit), so a batch's reads, numbers and events
# are shared by as many invoices as can be. A batch of 99 takes seconds on AWS.
BATCH_SIZE: Final = 99
DEFAULT_GRACE: Final = timedelta(hours=1)


@dataclass
class DueFound:
    """What is due: `items` produced as they are found (never all held at once), and
    `skipped`, the pairs found finished already (final once `items` is exhausted)."""

    items: Iterator[Item]
    skipped: int = 0


def in_batches(items: Iterable[Item]) -> Iterator[list[Item]]:
    """`items` in batches of BATCH_SIZE, taken as they come."""
    pending = iter(items)
    while batch := list(islice(pending, BATCH_SIZE)):
        yield batch


@dataclass
class _Counted:
    batches: int = 0
    items: int = 0

    def batches_of(self, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """The manifest's elements: `items` in batches of BATCH_SIZE, counted."""
        for batch in in_batches(items):
            self.batches += 1
            self.items += len(batch)
            yield ManifestBatch(items=batch).model_dump(mode="json")


@dataclass
class ListDue:
    config: Config
    ledgers: Ledgers
    invoices: Invoices
    files: RunFiles | None = None  # where the manifest goes (the Lambda step's only)
    grace: timedelta = DEFAULT_GRACE
    max_concurrency: int = DEFAULT_RUN_CONCURRENCY

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """The task's event (the run's input) as DueInput, its outcome as JSON."""
        return self.listed(read(DueInput, event)).model_dump(mode="json")

    def listed(self, request: DueInput) -> DueOutput:
        """What is due, written to a fresh folder of the run bucket as the manifest."""
        if self.files is None:
            raise RuntimeError("ListDue writes a manifest: it needs the run bucket")
        found = self.find(request)
        prefix = new_prefix(request.now)
        counted = _Counted()
        key = self.files.write_manifest(prefix, counted.batches_of(found.items))
        return DueOutput(
            issued_at=request.now,
            folder=RunFolder(bucket=self.files.bucket, prefix=prefix),
            manifest=FileRef(bucket=self.files.bucket, key=key),
            batches=counted.batches,
            items=counted.items,
            skipped=found.skipped,
            max_concurrency=self.max_concurrency,
        )

    def find(self, request: DueInput) -> DueFound:
        pending, skipped = self._due(request)
        return DueFound(items=iter(pending), skipped=skipped)

    def _due(self, request: DueInput) -> tuple[list[Item], int]:
        """The (account, period) pairs to invoice, and how many are done already.

        A period is due once it ended, in the account's zone, more than the grace time
        ago. Without a period in the input, every ended period the account's subscription
        overlaps, from its first (the one holding `start`; without a start, the earliest an
        invoice or its ledger shows) to its latest, that has no finished invoice: never
        invoiced, or left unfinished by a failed run (not stored, not announced, not
        emailed, a delivery failure not announced)."""
        accounts = self.config.all_accounts()
        # Open and closed periods in the ledgers matter only when no period is given.
        ledgers = {} if request.period else self.ledgers.load([a.id for a in accounts], fresh=True)
        records: dict[str, dict[str, InvoiceRecord]] = {}
        for known in self.invoices.all_records():
            records.setdefault(known.account_id, {})[known.period] = known
        pending: list[Item] = []
        skipped = 0
        for account in accounts:
            mine = records.pop(account.id, {})
            for period in self._due_periods(account, request, ledgers.get(account.id), mine):
                record = mine.get(str(period))
                if record is not None and record.finished:
                    skipped += 1
                else:
                    pending.append(Item(account_id=account.id, period=str(period)))
        pending.extend(_orphans(records, request.period))
        return pending, skipped

    def _due_periods(
        self,
        account: Account,
        request: DueInput,
        ledger: Any,
        records: dict[str, InvoiceRecord],
    ) -> list[Period]:
        tz = account.zone
        ended = request.now - self.grace
        if request.period is not None:
            candidates = {request.period}
        else:
            candidates = self._owed_since_first(account, ended, ledger, records)
        # A numbered invoice is owed its finish under its number whatever its account
        # became since (an `end` moved before the period, say): it is never dropped here,
        # else its number would be a hole no run reports.
        unfinished = {Period.parse(p) for p, r in records.items() if not r.finished}
        if request.period is not None:
            unfinished &= candidates
        owed = {p for p in candidates if p.end(tz) <= ended and account.overlaps(p)}
        return sorted(owed | unfinished)

    def _owed_since_first(
        self,
        account: Account,
        ended: datetime,
        ledger: Any,
        records: dict[str, InvoiceRecord],
    ) -> set[Period]:
        """Every period the subscription overlaps is owed one invoice (CONTRACT.md 3), from
        its first: the one holding `start`, or without a start the earliest an invoice or
        the ledger shows. The latest ended period is always looked at (and counted as
        skipped if it is done); an earlier one only while it is not done."""
        latest = Period.containing(ended, account.zone).previous()
        shown = {Period.parse(p) for p in records}
        if ledger is not None:
            open_periods = self.ledgers.open_periods(ledger)
            shown |= {Period.parse(p) for p in (*open_periods, *ledger.closed)}
        if account.start is not None:
            first = Period.of(account.start.year, account.start.month)
        else:
            first = min(shown | {latest})
        candidates = {latest}
        period = first
        while period < latest:
            record = records.get(str(period))
            if record is None or not record.finished:
                candidates.add(period)
            period = period.next()
        return candidates


def _orphans(records: dict[str, dict[str, InvoiceRecord]], period: Period | None) -> list[Item]:
    """Unfinished invoices of accounts no longer in the accounts file: listed, so that
    Issue reports each one (its account is not known) on every run until resolved."""
    return [
        Item(account_id=account_id, period=str(Period.parse(period_text)))
        for account_id, orphans in sorted(records.items())
        for period_text, record in sorted(orphans.items())
        if not record.finished and period in (None, Period.parse(period_text))
    ]
