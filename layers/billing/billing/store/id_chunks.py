"""Deduplication state a rater keeps at hand: the event-id digests an account's ledger
counts in its id chunks, held in memory across batches (chunks are immutable: never
stale), small chunks a new one may take in, a keyed account's pending chunks and the claim
items of their ids (see billing.store.ledger_store for who writes what, and why)."""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from billing.rating.ledger import AccountLedger, ChunkRef, IdChunk, epoch_day
from billing.rating.rater import MERGE_BELOW, LedgerWrite
from billing.store.batches import batch_get, batch_write
from billing.store.capacity import CapacityMeter, item_size, read_units
from billing.store.errors import StoreError
from billing.store.ledger_items import (
    account_key,
    chunk_from_item,
    chunk_key,
    claim_item,
    claim_key,
)
from billing.store.retry import Sleep

# Digests a warm rater holds in memory for deduplication, over all accounts (about 80
# bytes each in a Python set): an account's own are bounded by CHUNKED_DIGESTS_MAX.
DIGESTS_IN_MEMORY: Final = 2_000_000
_NONE: Final[frozenset[bytes]] = frozenset()
_PENDING_HELD: Final = 1_000  # pending chunks kept in memory (a few per keyed account)
_SMALL_HELD: Final = 10_000
_FLUSHED_HELD: Final = 100_000


class SeenIds:
    """The event-id digests an account has claimed, as one batch needs them: its ledger's
    recent ones, those of its chunks (kept across batches), and, for a keyed account, the
    claim items found for the batch's own ids."""

    __slots__ = ("chunked", "claimed", "recent")

    def __init__(
        self, recent: set[bytes], chunked: AbstractSet[bytes], claimed: set[bytes]
    ) -> None:
        self.recent, self.chunked, self.claimed = recent, chunked, claimed

    def __contains__(self, digest: object) -> bool:
        return digest in self.chunked or digest in self.recent or digest in self.claimed


@dataclass
class _ChunkedIds:
    keys: set[bytes]  # the chunks whose digests `digests` holds
    digests: set[bytes]


class IdChunks:
    """The id chunks and claims of the ledger table, and what of them is held in memory."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        capacity: CapacityMeter,
        *,
        digests_in_memory: int = DIGESTS_IN_MEMORY,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._capacity = capacity
        self._sleep = sleep
        # Per account, the digests of its chunks (chunks are immutable: never stale).
        self._chunked: OrderedDict[str, _ChunkedIds] = OrderedDict()
        self._digests_in_memory = digests_in_memory
        # Small chunks' contents, which a new chunk may take in.
        self._small: OrderedDict[bytes, IdChunk] = OrderedDict()
        self._pending: OrderedDict[bytes, IdChunk] = OrderedDict()  # keyed accounts' pending
        self.flushed: set[bytes] = set()  # pending chunks whose claims are written

    def seen(
        self, ledger: AccountLedger, now: datetime, candidates: Iterable[bytes] = ()
    ) -> SeenIds:
        """Every digest `ledger` counts as claimed that a batch with these candidate digests
        can meet. StoreError when a chunk it counts cannot be read: only this account's
        records can then wait."""
        today = epoch_day(now)
        chunked = self._chunked_ids(ledger, today)
        claimed: set[bytes] = set()
        if ledger.keyed:
            # Its pending chunks (a batch's ids, until their claims are written) and the
            # claims of this batch's own ids: nothing that grows with its volume is kept.
            for chunk in self._pending_chunks(ledger):
                claimed.update(chunk.digests())
                if chunk.key not in self.flushed:
                    self._write_claims(chunk)
            asked = {d for d in candidates if d not in chunked and d not in claimed}
            claimed |= self._claimed(ledger.account_id, asked)
        return SeenIds(ledger.recent_digests(today), chunked, claimed)

    def chunks_at_hand(self) -> Mapping[bytes, IdChunk]:
        """Small chunks read or written lately, by key: a new chunk may take them in."""
        return self._small

    def _chunked_ids(self, ledger: AccountLedger, today: int) -> AbstractSet[bytes]:
        account_id = ledger.account_id
        live = [ref for ref in ledger.live_chunks(today) if not ref.pending]
        held = self._chunked.get(account_id)
        if not live and held is None:
            return _NONE  # most accounts: nothing spilled
        needed = {ref.key for ref in live}
        if held is None or len(held.keys - needed) > len(needed):
            # First sight, or mostly expired: start again from the live chunks.
            held = self._chunked[account_id] = _ChunkedIds(set(), set())
        self._chunked.move_to_end(account_id)
        missing = [ref for ref in live if ref.key not in held.keys]
        if missing:
            for chunk in self._read_chunks(account_id, missing):
                held.digests.update(chunk.digests())
                held.keys.add(chunk.key)
            self._trim()
        return held.digests

    def _trim(self) -> None:
        total = sum(len(held.digests) for held in self._chunked.values())
        while total > self._digests_in_memory and len(self._chunked) > 1:
            _, dropped = self._chunked.popitem(last=False)
            total -= len(dropped.digests)

    def _read_chunks(self, account_id: str, refs: list[ChunkRef]) -> list[IdChunk]:
        keys = [
            {"pk": {"S": account_key(account_id)}, "sk": {"S": chunk_key(ref.key)}}
            for ref in refs
            if ref.key not in self._small
        ]
        found = {ref.key: self._small[ref.key] for ref in refs if ref.key in self._small}
        for item in batch_get(self._client, self._table, keys, "load id chunks", sleep=self._sleep):
            self._capacity.read(read_units(item_size(item)))
            chunk = chunk_from_item(account_id, item)
            found[chunk.key] = chunk
        for ref in refs:
            if ref.key not in found:
                raise StoreError("an id chunk a ledger counts is missing")
            self._keep_if_small(found[ref.key])
        return [found[ref.key] for ref in refs]

    def _keep_if_small(self, chunk: IdChunk) -> None:
        if chunk.pending or chunk.count >= MERGE_BELOW:
            return
        self._small[chunk.key] = chunk
        self._small.move_to_end(chunk.key)
        while len(self._small) > _SMALL_HELD:
            self._small.popitem(last=False)

    def _claimed(self, account_id: str, digests: set[bytes]) -> set[bytes]:
        if not digests:
            return set()
        keys = [claim_key(account_id, digest) for digest in sorted(digests)]
        found = batch_get(self._client, self._table, keys, "look up id claims", sleep=self._sleep)
        self._capacity.read(len(keys))  # a claim item is far under 4 KB
        return {bytes.fromhex(item["sk"]["S"]) for item in found}

    def _pending_chunks(self, ledger: AccountLedger) -> list[IdChunk]:
        """A keyed ledger's pending chunks: from memory, or read."""
        refs = [ref for ref in ledger.chunk_refs if ref.pending]
        missing = [ref for ref in refs if ref.key not in self._pending]
        for chunk in self._read_chunks(ledger.account_id, missing) if missing else ():
            self._hold_pending(chunk)
        return [self._pending[ref.key] for ref in refs]

    def _hold_pending(self, chunk: IdChunk) -> None:
        self._pending[chunk.key] = chunk
        while len(self._pending) > _PENDING_HELD:
            self._pending.popitem(last=False)

    def _write_claims(self, chunk: IdChunk) -> None:
        requests = [
            {"PutRequest": {"Item": claim_item(chunk.account_id, digest, chunk)}}
            for digest in chunk.digests()
        ]
        batch_write(self._client, self._table, requests, "store id claims", sleep=self._sleep)
        for _ in requests:
            self._capacity.wrote(1)  # a claim item is far under 1 KB: one unit each
        if len(self.flushed) > _FLUSHED_HELD:
            self.flushed.clear()  # forgetting costs writing some claims again, never a change
        self.flushed.add(chunk.key)

    def committed(self, write: LedgerWrite) -> None:
        """Keep the digests held for the account in step with the ledger that landed: the
        new chunk's digests join them, and chunks it took in or that expired leave the keys
        (their digests stay: still claimed, or past the window where it no longer matters)."""
        held = self._chunked.get(write.after.account_id)
        if held is not None:
            held.keys -= {r.key for r in write.before.chunk_refs} - {
                r.key for r in write.after.chunk_refs
            }
        chunk = write.chunk
        if chunk is None:
            return
        if chunk.pending:
            self._hold_pending(chunk)
        elif held is not None:
            held.digests.update(chunk.digests())
            held.keys.add(chunk.key)
        self._keep_if_small(chunk)
        if chunk.pending:
            # Committed either way: if the claims cannot be written now, the ledger keeps the
            # chunk pending (its digests still count from there) until a batch writes them.
            with contextlib.suppress(StoreError):
                self._write_claims(chunk)
