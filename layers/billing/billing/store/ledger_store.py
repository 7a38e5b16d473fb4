"""Account ledgers, their id chunks and id claims in DynamoDB (see docs/table-design.md).

Its parts: the items (billing.store.ledger_items), the deduplication state kept at hand
(billing.store.id_chunks), the periods kept outside a ledger (billing.store.period_items);
here, the ledgers read and written, and periods closed.

Who writes what, and why no writer can undo another's work:
- The ledger item is written only by a PutItem conditional on the version read. A writer
  that does not get an answer (a timeout, or a conditional failure on the SDK's own retry of
  a write that had landed) reads the ledger back: its token says whether the write landed.
- An id chunk is named by a hash of its content and written before the ledger that counts
  it, unconditionally: writing it again writes the same bytes, and a stale writer's chunk
  has another name. One no ledger counts is never read, and expires.
- A claim item (one per event id of a keyed account) is written only after a ledger that
  counts its digest (in a pending chunk) has landed, so it never claims an id that was not
  rated; writing it again changes nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from billing.core.usage import MeterUsage
from billing.rating.ledger import AccountLedger, IdChunk, new_token
from billing.rating.rater import LedgerWrite
from billing.store.batches import BATCH_GET_MAX, batch_get
from billing.store.capacity import CapacityMeter, item_size, read_units, write_units
from billing.store.errors import StoreError, VersionConflict, translated
from billing.store.id_chunks import DIGESTS_IN_MEMORY, IdChunks, SeenIds
from billing.store.ledger_items import (
    ARCHIVE_PREFIX,
    CHUNK_PREFIX,
    ID_RETENTION,
    LEDGER_SORT_KEY,
    UsageImage,
    account_key,
    archive_item,
    chunk_from_item,
    chunk_item,
    chunk_key,
    claim_key,
    ledger_from_item,
    ledger_item,
    ledger_key,
    period_key,
    usage_image,
)
from billing.store.period_items import PeriodItems
from billing.store.retry import CONFLICT, Sleep


class LedgerStore:
    """Reads and conditionally writes account ledgers; keeps what they refer to at hand."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        ledger_cache_size: int = 100_000,
        digests_in_memory: int = DIGESTS_IN_MEMORY,
        token: Callable[[], str] = new_token,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep
        self.token = token
        self._sizes: dict[str, int] = {}  # ledger item sizes as last read, for write units
        self._ledgers: OrderedDict[str, AccountLedger] = OrderedDict()
        self._ledger_cache_size = ledger_cache_size
        self.capacity = CapacityMeter()
        self._ids = IdChunks(
            client, table_name, self.capacity, digests_in_memory=digests_in_memory, sleep=sleep
        )
        self._periods = PeriodItems(client, table_name, self.capacity, sleep=sleep)
        self.flushed = self._ids.flushed  # pending chunks whose claims are written

    # --- ledgers ---

    def load(self, account_ids: Iterable[str], *, fresh: bool = False) -> dict[str, AccountLedger]:
        """The ledgers of these accounts (a new, empty ledger for one never stored).

        Ledgers this store wrote or read before come from its cache unless `fresh`: every
        write is conditional on the version it was computed from, so a stale ledger costs a
        VersionConflict and a fresh read, never a wrong write."""
        wanted = sorted(set(account_ids))
        ledgers: dict[str, AccountLedger] = {}
        if not fresh:
            for account_id in wanted:
                cached = self._ledgers.get(account_id)
                if cached is not None:
                    self._ledgers.move_to_end(account_id)
                    ledgers[account_id] = cached
            wanted = [account_id for account_id in wanted if account_id not in ledgers]
        ledgers.update({account_id: AccountLedger(account_id) for account_id in wanted})
        for start in range(0, len(wanted), BATCH_GET_MAX):
            keys = [ledger_key(a) for a in wanted[start : start + BATCH_GET_MAX]]
            found = batch_get(self._client, self._table, keys, "load ledgers", sleep=self._sleep)
            # A key with no item still costs a read unit.
            self.capacity.read(len(keys) - len(found))
            for item in found:
                account_id = item["pk"]["S"].removeprefix("ACCOUNT#")
                self._sizes[account_id] = item_size(item)
                self.capacity.read(read_units(self._sizes[account_id]))
                ledgers[account_id] = ledger_from_item(account_id, item)
        for account_id in wanted:
            self._remember(ledgers[account_id])
        return ledgers

    def forget(self, account_id: str) -> None:
        """Drop the cached ledger: the next load reads the table."""
        self._ledgers.pop(account_id, None)

    def _remember(self, ledger: AccountLedger) -> None:
        self._ledgers[ledger.account_id] = ledger
        self._ledgers.move_to_end(ledger.account_id)
        while len(self._ledgers) > self._ledger_cache_size:
            self._ledgers.popitem(last=False)

    # --- deduplication ---

    def seen(
        self, ledger: AccountLedger, now: datetime, candidates: Iterable[bytes] = ()
    ) -> SeenIds:
        """Every digest `ledger` counts as claimed that a batch with these candidate digests
        can meet. StoreError when a chunk it counts cannot be read: only this account's
        records can then wait."""
        self._periods.apply_log(ledger)
        return self._ids.seen(ledger, now, candidates)

    def chunks_at_hand(self) -> Mapping[bytes, IdChunk]:
        """Small chunks read or written lately, by key: a new chunk may take them in."""
        return self._ids.chunks_at_hand()

    # --- periods kept outside the ledger ---

    def apply_log(self, ledger: AccountLedger) -> None:
        """Add what the ledger's version added to periods kept outside it to their items,
        once (see PeriodItems.apply_log)."""
        self._periods.apply_log(ledger)

    def period_usage(self, ledger: AccountLedger, period: str) -> dict[str, MeterUsage]:
        """An open period's usage as of `ledger`, wherever it is kept (for readers)."""
        return self._periods.period_usage(ledger, period)

    def open_periods(self, ledger: AccountLedger) -> set[str]:
        """The open periods with usage, wherever it is kept."""
        return self._periods.open_periods(ledger)

    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of a closed period, as it was when it closed."""
        return self._periods.archived_usage(account_id, period)

    # --- writing ---

    def save(self, write: LedgerWrite) -> None:
        """Store the chunk, then the ledger over the version it was read at.

        Raises VersionConflict when another writer got there first (reload and rate again),
        StoreError when the write did not land. A write whose answer was lost is read back:
        it landed if the ledger carries its token."""
        account_id = write.after.account_id
        if write.chunk is not None:
            item = chunk_item(write.chunk)
            with translated("store id chunk"):
                self._client.put_item(TableName=self._table, Item=item)
            self.capacity.wrote(write_units(item_size(item)))
        item = ledger_item(write.after)
        condition: dict[str, Any]
        if write.before.version == 0:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "v = :v",
                "ExpressionAttributeValues": {":v": {"N": str(write.before.version)}},
            }
        try:
            with translated("store ledger"):
                self._client.put_item(TableName=self._table, Item=item, **condition)
        except StoreError:
            self.forget(account_id)
            if not self._landed(write.after):
                raise
        size = item_size(item)
        self.capacity.wrote(write_units(self._sizes.get(account_id, 0), size))
        self._sizes[account_id] = size
        self._remember(write.after)
        self._ids.committed(write)

    def _landed(self, after: AccountLedger) -> bool:
        """Whether the ledger now stored is `after` (by its token); StoreError if unknown."""
        with translated("read back ledger"):
            response = self._client.get_item(
                TableName=self._table, Key=ledger_key(after.account_id), ConsistentRead=True
            )
        stored = response.get("Item")
        return stored is not None and stored.get("tok", {}).get("S") == after.token

    def close_period(
        self,
        account_id: str,
        period: str,
        closed_at: datetime,
        *,
        ledger: AccountLedger | None = None,
    ) -> dict[str, MeterUsage]:
        """Close `period` in the account's ledger and return its final usage, by meter.

        Idempotent: once closed, the archived usage is returned. The archive is written
        before the ledger commits the close, and only over an archive of an older ledger
        version, so whichever close commits, the archive holds exactly what it removed.
        From then on the rater rejects the period's events as PERIOD_CLOSED; their ids still
        count as claimed for 35 days after they were rated.

        `ledger`, if given, is the account's ledger as the caller read it (in a batch):
        the first attempt starts from it. Every write is conditional on its version, so a
        stale one costs a conflict and a fresh read, never a wrong close (a batch or
        another close got there first: the CONFLICT policy reads again)."""
        given = [ledger] if ledger is not None else []

        def close() -> dict[str, MeterUsage]:
            read = given.pop() if given else self.load([account_id], fresh=True)[account_id]
            return self._close(read, period, closed_at)

        return CONFLICT.call(close, VersionConflict, sleep=self._sleep)

    def _close(
        self, ledger: AccountLedger, period: str, closed_at: datetime
    ) -> dict[str, MeterUsage]:
        """One attempt at closing `period` from `ledger` as read; VersionConflict if the
        ledger or the period's item changed since."""
        account_id = ledger.account_id
        if period in ledger.closed:
            return self._periods.archived_usage(account_id, period)
        self._periods.apply_log(ledger)
        inline = ledger.holds_inline(period)
        if inline:
            archive = archive_item(account_id, ledger, period, closed_at)
            self._periods.put(archive, "archive period", again=True)
        # else its own item holds its usage already (the log is applied above)
        after = ledger.bumped(
            usage={p: u for p, u in ledger.usage.items() if p != period},
            closed=ledger.closed | {period},
            expires_at=ledger.expires_at,
        )
        self.save(LedgerWrite(ledger, after))
        if inline:
            return dict(ledger.usage.get(period, {}))
        return self._periods.archived_usage(account_id, period)


# The items' shapes and keys, for the code and tests that read the table directly.
__all__ = [
    "ARCHIVE_PREFIX",
    "CHUNK_PREFIX",
    "ID_RETENTION",
    "LEDGER_SORT_KEY",
    "LedgerStore",
    "SeenIds",
    "UsageImage",
    "VersionConflict",
    "account_key",
    "chunk_from_item",
    "chunk_item",
    "chunk_key",
    "claim_key",
    "ledger_from_item",
    "ledger_item",
    "period_key",
    "usage_image",
]
