"""The invoice run's first step (ListDue): the (account, period) pairs to invoice, written
in batches to the run's manifest in S3, and how many are done already. Its output holds the
manifest's location and counts, never the pairs: a Distributed Map reads the batches from
S3, so the run's states stay small whatever the number of accounts (Step Functions refuses
a state over 256 KB).

What is owed is billing.core.owed's rule: every ended period the subscription overlaps,
from its first, that has no finished invoice; and a numbered invoice is owed its finish
under its number whatever its account became since (an `end` moved before the period, the
account removed), else its number would be a hole no run reports. A period is due once it
ended, in the account's zone, more than the grace time ago.

An hourly run (no period in its input) reads only what can be due now: the accounts whose
due hint is due (billing.store.due_hints), their profiles, and their invoice records from
the hint's period to the latest ended one; never a ledger, never the accounts or invoices
that are not due. It then moves each hint on. A run for a period reads every account and
that period's records (an explicit catch-up). docs/invoicing.md, "Finding what is due",
counts the reads of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Final, TypeVar

from billing.core.catalog import Account
from billing.core.owed import DueHint, advanced, latest_ended, owed, periods_between
from billing.core.periods import Period, zone
from billing.invoicing.ports import DueConfig, DueHintStore, DueInvoices
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
from billing.store.due_hints import HintMove, StoredHint
from billing.store.invoice_store import InvoiceRecord
from billing.store.run_files import RunFiles, new_prefix

# Accounts per Map iteration: as many as one numbering transaction takes (99 records and
# the sequence item, DynamoDB's 100-item limit), so a batch's reads, numbers and events
# are shared by as many invoices as can be. A batch of 99 takes seconds on AWS.
BATCH_SIZE: Final = 99
DEFAULT_GRACE: Final = timedelta(hours=1)
# Accounts read together: one BatchGetItem of profiles (its limit is 100 keys).
READ_CHUNK: Final = 100
# The zone whose periods end last (UTC-12): a hint at or before a period is due by then.
_LATEST_ZONE: Final = zone("Etc/GMT+12")

_T = TypeVar("_T")
Records = dict[tuple[str, str], InvoiceRecord]


class DueFound:
    """What a run finds: `items`, produced a page of accounts at a time (never the whole
    list at once), and `skipped`, the owed invoices found finished, final once `items` is
    exhausted."""

    def __init__(self, produce: Callable[[DueFound], Iterator[Item]]) -> None:
        self.skipped = 0
        self.items: Iterator[Item] = produce(self)


def in_batches(items: Iterable[Item]) -> Iterator[list[Item]]:
    """`items` in batches of at most BATCH_SIZE, taken as they come, an account's periods
    (listed together, oldest first) kept in one batch when they fit: one numbering then
    draws its prepaid credits in period order, whatever batches run at once."""
    batch: list[Item] = []
    for _, group in groupby(items, key=lambda item: item.account_id):
        periods = list(group)
        if batch and len(batch) + len(periods) > BATCH_SIZE:
            yield batch
            batch = []
        while len(periods) > BATCH_SIZE:  # over eight years owed: split, oldest first
            yield periods[:BATCH_SIZE]
            periods = periods[BATCH_SIZE:]
        batch.extend(periods)
    if batch:
        yield batch


class _Counted:
    """The manifest's elements, counted as they are written."""

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0

    def batches_of(self, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        for batch in in_batches(items):
            self.batches += 1
            self.items += len(batch)
            yield ManifestBatch(items=batch).model_dump(mode="json")


class ListDue:
    def __init__(
        self,
        *,
        config: DueConfig,
        invoices: DueInvoices,
        hints: DueHintStore,
        files: RunFiles | None = None,
        grace: timedelta = DEFAULT_GRACE,
        max_concurrency: int = DEFAULT_RUN_CONCURRENCY,
    ) -> None:
        self._config, self._invoices, self._hints = config, invoices, hints
        self._files = files  # where the manifest goes (the Lambda step's only)
        self._grace = grace
        self._max_concurrency = max_concurrency

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """The task's event (the run's input) as DueInput, its outcome as JSON."""
        return self.listed(read(DueInput, event)).model_dump(mode="json")

    def listed(self, request: DueInput) -> DueOutput:
        """What is due, written as it is found to a fresh folder of the run bucket as the
        manifest."""
        if self._files is None:
            raise RuntimeError("ListDue writes a manifest: it needs the run bucket")
        found = self.find(request)
        prefix = new_prefix(request.now)
        counted = _Counted()
        key = self._files.write_manifest(prefix, counted.batches_of(found.items))
        return DueOutput(
            issued_at=request.now,
            folder=RunFolder(bucket=self._files.bucket, prefix=prefix),
            manifest=FileRef(bucket=self._files.bucket, key=key),
            batches=counted.batches,
            items=counted.items,
            skipped=found.skipped,
            max_concurrency=self._max_concurrency,
        )

    def find(self, request: DueInput) -> DueFound:
        """What is due at `request.now`: for its period if it names one, else everything
        the due hints say may be due. Each account's periods come together, oldest first."""
        ended = request.now - self._grace
        period = request.period
        if period is None:
            return DueFound(lambda found: self._hinted(ended, found))
        return DueFound(lambda found: self._for_period(period, ended, found))

    # --- the hourly run: the due hints ---

    def _hinted(self, ended: datetime, found: DueFound) -> Iterator[Item]:
        # The shards' pages run on into chunks of a full batch read: a few due accounts
        # spread over many shards cost one read of profiles, not one a shard.
        hinted = (stored for page in self._hints.due(ended) for stored in page)
        for chunk in _chunks(hinted, READ_CHUNK):
            yield from self._hinted_chunk(sorted(chunk, key=lambda s: s.account_id), ended, found)

    def _hinted_chunk(
        self, chunk: list[StoredHint], ended: datetime, found: DueFound
    ) -> Iterator[Item]:
        accounts = self._config.read_accounts([stored.account_id for stored in chunk])
        latest = {a.id: latest_ended(ended, a.zone) for a in accounts.values()}
        records = self._invoices.get_many(
            [
                (stored.account_id, str(period))
                for stored in chunk
                if stored.account_id in accounts
                for period in periods_between(stored.hint.period, latest[stored.account_id])
            ]
        )
        items: list[Item] = []
        moves: list[HintMove] = []
        for stored in chunk:
            account = accounts.get(stored.account_id)
            if account is None:
                # Kept as it is: the account may be one a push is adding (its hint is
                # written before its profile), and deleting the hint would leave it never
                # invoiced. A profile deleted by hand keeps its hint (a read an hour).
                items += self._orphans(stored)
                continue
            mine, skipped = _owed_items(account, stored.hint.period, latest[account.id], records)
            found.skipped += skipped
            items += mine
            to = advanced(account, _periods(mine), latest[account.id])
            # A hint moved to a time this run's index query still reaches could be read
            # again on a later page, and its pairs listed twice: it stays early (harmless),
            # and a later run moves it once that period is finished.
            if to != stored.hint and (to is None or to.due_at > ended):
                moves.append(HintMove(stored.account_id, stored.hint, to))
        # Each move is conditional on the hint as read: a writer that moved it since (a late
        # event, a push) wins, and the next run reads its hint.
        self._hints.settle(moves)
        yield from items

    def _orphans(self, stored: StoredHint) -> list[Item]:
        """Unfinished invoices of an account no longer known: listed, so that Issue reports
        each one (its account is not known) on every run until resolved."""
        since = self._invoices.since(stored.account_id, str(stored.hint.period))
        return [_item(record) for record in since if not record.finished]

    # --- a run for one period ---

    def _for_period(self, period: Period, ended: datetime, found: DueFound) -> Iterator[Item]:
        for page in self._config.account_pages():
            for chunk in _chunks(page, READ_CHUNK):
                yield from self._period_chunk(chunk, period, ended, found)
        yield from self._period_orphans(period)

    def _period_chunk(
        self, chunk: list[Account], period: Period, ended: datetime, found: DueFound
    ) -> Iterator[Item]:
        records = self._invoices.get_many([(account.id, str(period)) for account in chunk])
        listed: list[Account] = []
        for account in chunk:
            record = records.get((account.id, str(period)))
            due = period.end(account.zone) <= ended and account.overlaps(period)
            if record is not None and record.finished:
                found.skipped += due
            elif due or record is not None:
                listed.append(account)
        self._hint_at_most(listed, period)
        for account in listed:
            yield Item(account_id=account.id, period=str(period))

    def _hint_at_most(self, accounts: Sequence[Account], period: Period) -> None:
        """Lower the hints of accounts listed for `period` to it where they are later (or
        missing), before the period is issued: should this run stop half-way, the hourly
        runs then finish what it numbered."""
        stored = self._hints.get_many([account.id for account in accounts])
        for account in accounts:
            hint = stored.get(account.id)
            if hint is None or hint.period > period:
                self._hints.lower(account.id, DueHint.of(period, account.zone))

    def _period_orphans(self, period: Period) -> Iterator[Item]:
        """Unfinished invoices for `period` of accounts no longer known. Such an account's
        hint is at or before the period (the rule every hint writer keeps), so only the
        hints due by the period's end in any zone are looked at."""
        hinted = (
            stored.account_id
            for page in self._hints.due(period.end(_LATEST_ZONE))
            for stored in page
            if stored.hint.period <= period
        )
        for chunk in _chunks(hinted, READ_CHUNK):
            known = self._config.read_accounts(chunk)
            unknown = sorted((a, str(period)) for a in chunk if a not in known)
            records = self._invoices.get_many(unknown)
            for key in unknown:
                record = records.get(key)
                if record is not None and not record.finished:
                    yield _item(record)


def _owed_items(
    account: Account, first: Period, latest: Period, records: Records
) -> tuple[list[Item], int]:
    """The account's items from `first` to `latest`, oldest first, and how many it skips:
    a period is listed when owed and not finished, or numbered and not finished whatever
    the account became. Of the finished ones only the latest counts as skipped (the run's
    report counts what the run looked at, as every run always looked at the latest)."""
    started = {
        period
        for period in periods_between(first, latest)
        if (record := records.get((account.id, str(period)))) is not None and not record.finished
    }
    items: list[Item] = []
    skipped = 0
    for period in sorted(set(owed(account, first, latest)) | started):
        record = records.get((account.id, str(period)))
        if record is None or not record.finished:
            items.append(Item(account_id=account.id, period=str(period)))
        elif period == latest:
            skipped += 1
    return items, skipped


def _periods(items: Iterable[Item]) -> list[Period]:
    return [Period.parse(item.period) for item in items]


def _item(record: InvoiceRecord) -> Item:
    return Item(account_id=record.account_id, period=record.period)


def _chunks(values: Iterable[_T], size: int) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
