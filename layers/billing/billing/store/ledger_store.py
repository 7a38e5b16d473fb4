"""Account ledgers, their id chunks and id claims in DynamoDB (see docs/table-design.md).

Items are written in DynamoDB's low-level form, quantities as strings: a DynamoDB number
holds 38 digits, and an exact sum of quantities can need more.

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

import contextlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from billing.core.periods import Period
from billing.core.usage import Aggregate, MeterUsage
from billing.rating.ledger import (
    CHUNK_KEY_BYTES,
    ID_RETENTION_DAYS,
    AccountLedger,
    ChunkRef,
    IdChunk,
    RejectedRecord,
    epoch_day,
    merged_usage,
    new_token,
)
from billing.rating.rater import MERGE_BELOW, LedgerWrite
from billing.store.batches import batch_get, batch_write
from billing.store.capacity import CapacityMeter, item_size, read_units, write_units
from billing.store.errors import StoreError, VersionConflict, translated

Item = dict[str, dict[str, Any]]

LEDGER_SORT_KEY: Final = "LEDGER"
CHUNK_PREFIX: Final = "IDS#"
ARCHIVE_PREFIX: Final = "USAGE#"
_CLOSE_ATTEMPTS: Final = 10
# Chunks and claims matter while their periods are open and 35 days after their ids were
# rated; keep them well past any invoice run (a ledger drops them long before).
ID_RETENTION: Final = timedelta(days=ID_RETENTION_DAYS)
_BATCH_GET_MAX: Final = 100
# Digests a warm rater holds in memory for deduplication, over all accounts (about 80
# bytes each in a Python set): an account's own are bounded by CHUNKED_DIGESTS_MAX.
DIGESTS_IN_MEMORY: Final = 2_000_000
_REF_BYTES: Final = CHUNK_KEY_BYTES + 5  # key, count (4 bytes), group (1 byte)
_NONE: Final[frozenset[bytes]] = frozenset()
_PENDING_HELD: Final = 1_000  # pending chunks kept in memory (a few per keyed account)
_APPLIED_HELD: Final = 100_000


def account_key(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def chunk_key(key: bytes) -> str:
    return f"{CHUNK_PREFIX}{key.hex()}"


def claim_key(account_id: str, digest: bytes) -> Item:
    """A claimed id's item: spread over 16 partition keys per account, so one busy account's
    claims never make a hot partition."""
    return {
        "pk": {"S": f"{account_key(account_id)}#IDS#{digest.hex()[0]}"},
        "sk": {"S": digest.hex()},
    }


# --- item shapes ---------------------------------------------------------------------------


# The usage and the watermarks of a ledger are one JSON string attribute each, not nested
# maps: the item is always read and written whole, and a string is several times cheaper to
# (de)serialize than dozens of typed map entries. Quantities are decimal strings inside it.


def _json(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def _aggregate_json(aggregate: Aggregate) -> list[Any]:
    return [str(aggregate.quantity), aggregate.events]


def _aggregate(value: list[Any]) -> Aggregate:
    return Aggregate(Decimal(value[0]), int(value[1]))


def _usage_json(usage: MeterUsage) -> dict[str, Any]:
    fields: dict[str, Any] = {"a": usage.aggregation, "t": _aggregate_json(usage.total)}
    if usage.by_filter:
        fields["f"] = {key: _aggregate_json(agg) for key, agg in usage.by_filter.items()}
    return fields


def _usage(value: dict[str, Any]) -> MeterUsage:
    by_filter = {key: _aggregate(agg) for key, agg in value.get("f", {}).items()}
    return MeterUsage(value["a"], _aggregate(value["t"]), by_filter)


def _meters_json(meters: Mapping[str, MeterUsage]) -> dict[str, Any]:
    return {meter: _usage_json(usage) for meter, usage in meters.items()}


def _meters(value: dict[str, Any]) -> dict[str, MeterUsage]:
    return {meter: _usage(usage) for meter, usage in value.items()}


def _blobs(ids: Mapping[str, bytes]) -> dict[str, Any]:
    return {"M": {period: {"B": blob} for period, blob in ids.items()}}


def _refs_attributes(refs: Iterable[ChunkRef]) -> Item:
    """Chunk refs in stream order as one binary attribute (17 bytes each) and the few
    distinct (day, pending, periods) groups they share as JSON."""
    groups: dict[tuple[int, bool, tuple[str, ...]], int] = {}
    blob = bytearray()
    for ref in refs:
        group = (ref.day, ref.pending, tuple(sorted(ref.periods)))
        index = groups.setdefault(group, len(groups))
        blob += ref.key + ref.count.to_bytes(4, "big") + bytes([index])
    if not blob:
        return {}
    return {"ckr": {"B": bytes(blob)}, "ckg": _json([list(group) for group in groups])}


def _refs(item: Item) -> tuple[ChunkRef, ...]:
    if "ckr" not in item:
        return ()
    groups = json.loads(item["ckg"]["S"])
    blob: bytes = item["ckr"]["B"]
    refs = []
    for start in range(0, len(blob), _REF_BYTES):
        ref = blob[start : start + _REF_BYTES]
        day, pending, periods = groups[ref[-1]]
        count = int.from_bytes(ref[CHUNK_KEY_BYTES : CHUNK_KEY_BYTES + 4], "big")
        refs.append(ChunkRef(ref[:CHUNK_KEY_BYTES], count, frozenset(periods), day, pending))
    return tuple(refs)


def ledger_item(ledger: AccountLedger) -> Item:
    item: Item = {
        "pk": {"S": account_key(ledger.account_id)},
        "sk": {"S": LEDGER_SORT_KEY},
        "v": {"N": str(ledger.version)},
        "tok": {"S": ledger.token},
        "wm": _json({shard: str(mark) for shard, mark in ledger.watermarks.items()}),
        "use": _json({period: _meters_json(meters) for period, meters in ledger.usage.items()}),
        "ids": _blobs(ledger.recent_ids),
        "idd": {"N": str(ledger.recent_day)},
        **_refs_attributes(ledger.chunk_refs),
    }
    if ledger.closed:
        item["closed"] = {"SS": sorted(ledger.closed)}
    if ledger.keyed:
        item["keyed"] = {"BOOL": True}
    if ledger.rejections:
        item["rej"] = _json(
            [[r.shard_id, r.sequence_number, r.reason, r.message] for r in ledger.rejections]
        )
    if ledger.expires_at is not None:
        item["expires_at"] = {"N": str(ledger.expires_at)}
    if ledger.cold_until:
        item["cu"] = {"S": ledger.cold_until}
    if ledger.log:
        item["log"] = _json({period: _meters_json(meters) for period, meters in ledger.log.items()})
    if ledger.moved_out:
        item["mv"] = {"SS": sorted(ledger.moved_out)}
    return item


def ledger_from_item(account_id: str, item: Item) -> AccountLedger:
    marks = json.loads(item["wm"]["S"])
    return AccountLedger(
        account_id=account_id,
        version=int(item["v"]["N"]),
        token=item["tok"]["S"],
        watermarks={shard: int(mark) for shard, mark in marks.items()},
        usage={period: _meters(meters) for period, meters in json.loads(item["use"]["S"]).items()},
        closed=frozenset(item.get("closed", {"SS": []})["SS"]),
        recent_ids={period: blob["B"] for period, blob in item["ids"]["M"].items()},
        recent_day=int(item["idd"]["N"]),
        chunk_refs=_refs(item),
        keyed=item.get("keyed", {"BOOL": False})["BOOL"],
        rejections=tuple(
            RejectedRecord(*entry) for entry in json.loads(item.get("rej", {"S": "[]"})["S"])
        ),
        expires_at=int(item["expires_at"]["N"]) if "expires_at" in item else None,
        cold_until=item.get("cu", {"S": ""})["S"],
        log={
            period: _meters(meters)
            for period, meters in json.loads(item.get("log", {"S": "{}"})["S"]).items()
        },
        moved_out=frozenset(item.get("mv", {"SS": []})["SS"]),
    )


@dataclass(frozen=True, slots=True)
class UsageImage:
    """What a ledger item says about usage: by open period, then meter."""

    account_id: str
    usage: dict[str, dict[str, MeterUsage]]
    closed: frozenset[str]


def usage_image(item: Item | None) -> UsageImage | None:
    """The usage in a ledger item as a DynamoDB stream image shows it (the same low-level
    form); None for any other item of the table (id chunks and claims, archives, alerts)."""
    if not item or item.get("sk", {}).get("S") != LEDGER_SORT_KEY or "use" not in item:
        return None
    return UsageImage(
        account_id=item["pk"]["S"].removeprefix("ACCOUNT#"),
        usage={period: _meters(meters) for period, meters in json.loads(item["use"]["S"]).items()},
        closed=frozenset(item.get("closed", {"SS": []})["SS"]),
    )


def period_key(account_id: str, period: str) -> Item:
    """A period's own item: its usage once it moved out of the ledger, its final usage once
    it is closed (`v` is the ledger version whose changes it holds)."""
    return {"pk": {"S": account_key(account_id)}, "sk": {"S": f"{ARCHIVE_PREFIX}{period}"}}


def archive_item(account_id: str, ledger: AccountLedger, period: str, closed_at: datetime) -> Item:
    """A period's final usage, kept when the period is closed."""
    return {
        "pk": {"S": account_key(account_id)},
        "sk": {"S": f"{ARCHIVE_PREFIX}{period}"},
        "v": {"N": str(ledger.version)},
        "use": _json(_meters_json(ledger.usage.get(period, {}))),
        "closed_at": {"S": closed_at.astimezone(UTC).isoformat()},
    }


def _expiry(periods: Iterable[str], day: int) -> int:
    """When an id chunk or claim may go: ID_RETENTION after the later of its latest
    period's end and its latest rating day."""
    latest = max(Period.parse(period) for period in periods)
    end = datetime(latest.end_day.year, latest.end_day.month, 1, tzinfo=UTC)
    rated = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day + 1)
    return int((max(end, rated) + ID_RETENTION).timestamp())


def chunk_item(chunk: IdChunk) -> Item:
    item: Item = {
        "pk": {"S": account_key(chunk.account_id)},
        "sk": {"S": chunk_key(chunk.key)},
        "ids": _blobs(chunk.ids),
        "day": {"N": str(chunk.day)},
        "expires_at": {"N": str(_expiry(chunk.ids, chunk.day))},
    }
    if chunk.pending:
        item["pending"] = {"BOOL": True}
    return item


def chunk_from_item(account_id: str, item: Item) -> IdChunk:
    return IdChunk(
        account_id,
        {period: blob["B"] for period, blob in item["ids"]["M"].items()},
        int(item["day"]["N"]),
        item.get("pending", {"BOOL": False})["BOOL"],
    )


# --- deduplication state held in memory ----------------------------------------------------


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


# --- the store -----------------------------------------------------------------------------


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
    ) -> None:
        self._client = client
        self._table = table_name
        self.token = token
        self._sizes: dict[str, int] = {}  # ledger item sizes as last read, for write units
        self._ledgers: OrderedDict[str, AccountLedger] = OrderedDict()
        self._ledger_cache_size = ledger_cache_size
        # Per account, the digests of its chunks (chunks are immutable: never stale).
        self._chunked: OrderedDict[str, _ChunkedIds] = OrderedDict()
        self._digests_in_memory = digests_in_memory
        # Small chunks' contents, which a new chunk may take in.
        self._small: OrderedDict[bytes, IdChunk] = OrderedDict()
        self._pending: OrderedDict[bytes, IdChunk] = OrderedDict()  # keyed accounts' pending
        self.flushed: set[bytes] = set()  # pending chunks whose claims are written
        self._applied: set[tuple[str, int]] = set()  # (account, version) logs applied
        self.capacity = CapacityMeter()

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
        for start in range(0, len(wanted), _BATCH_GET_MAX):
            keys = [
                {"pk": {"S": account_key(a)}, "sk": {"S": LEDGER_SORT_KEY}}
                for a in wanted[start : start + _BATCH_GET_MAX]
            ]
            found = batch_get(self._client, self._table, keys, "load ledgers")
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
        today = epoch_day(now)
        self.apply_log(ledger)
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
        for item in batch_get(self._client, self._table, keys, "load id chunks"):
            self.capacity.read(read_units(item_size(item)))
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
        while len(self._small) > 10_000:
            self._small.popitem(last=False)

    def _claimed(self, account_id: str, digests: set[bytes]) -> set[bytes]:
        if not digests:
            return set()
        keys = [claim_key(account_id, digest) for digest in sorted(digests)]
        found = batch_get(self._client, self._table, keys, "look up id claims")
        self.capacity.read(len(keys))  # a claim item is far under 4 KB
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
        expires = {"N": str(_expiry(chunk.ids, chunk.day))}
        requests = [
            {"PutRequest": {"Item": {**claim_key(chunk.account_id, d), "expires_at": expires}}}
            for d in chunk.digests()
        ]
        batch_write(self._client, self._table, requests, "store id claims")
        for _ in requests:
            self.capacity.wrote(1)
        if len(self.flushed) > _APPLIED_HELD:
            self.flushed.clear()  # forgetting costs writing some claims again, never a change
        self.flushed.add(chunk.key)

    # --- periods kept outside the ledger ---

    def apply_log(self, ledger: AccountLedger) -> None:
        """Add what the ledger's version added to periods kept outside it to their items,
        once: an item records the version it holds, and is written only over an older one
        (two writers applying the same log: the second finds it done). A period the version
        moved out gets its whole usage, replacing whatever its item held."""
        if not ledger.log or (ledger.account_id, ledger.version) in self._applied:
            return
        for period, added in sorted(ledger.log.items()):
            for _ in range(_CLOSE_ATTEMPTS):
                held, version = self._period_item(ledger.account_id, period)
                if version >= ledger.version:
                    break
                if period in ledger.moved_out:
                    held = {}
                item = {
                    **period_key(ledger.account_id, period),
                    "v": {"N": str(ledger.version)},
                    "use": _json(_meters_json(merged_usage(held, added))),
                }
                try:
                    self._put_period_item(item, "apply ledger log")
                except VersionConflict:
                    continue  # another writer applied it (or a newer log): read again
                break
            else:
                raise VersionConflict("apply ledger log: attempts lost a race")
        if len(self._applied) > _APPLIED_HELD:
            self._applied.clear()  # forgetting costs one read per period, never a change
        self._applied.add((ledger.account_id, ledger.version))

    def _put_period_item(self, item: Item, operation: str, *, again: bool = False) -> None:
        """Write a period item holding a ledger version's changes (its `v`), only over one
        holding an older version (or, with `again`, the same one: an archive is the same for
        the same version, so a close whose answer was lost can write it again):
        VersionConflict otherwise."""
        with translated(operation):
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=f"attribute_not_exists(pk) OR v {'<=' if again else '<'} :v",
                ExpressionAttributeValues={":v": item["v"]},
            )
        self.capacity.wrote(write_units(item_size(item)))

    def _period_item(self, account_id: str, period: str) -> tuple[dict[str, MeterUsage], int]:
        with translated("load period usage"):
            response = self._client.get_item(
                TableName=self._table, Key=period_key(account_id, period), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:
            return {}, 0
        self.capacity.read(read_units(item_size(item)))
        return _meters(json.loads(item["use"]["S"])), int(item["v"]["N"])

    def period_usage(self, ledger: AccountLedger, period: str) -> dict[str, MeterUsage]:
        """An open period's usage as of `ledger`, wherever it is kept (for readers)."""
        if ledger.holds_inline(period):
            return dict(ledger.usage.get(period, {}))
        held, version = self._period_item(ledger.account_id, period)
        pending = ledger.log.get(period)
        if pending is None or version >= ledger.version:
            return held
        if period in ledger.moved_out:
            return dict(pending)
        return merged_usage(held, pending)

    def open_periods(self, ledger: AccountLedger) -> set[str]:
        """The open periods with usage, wherever it is kept."""
        periods = set(ledger.usage) | set(ledger.log)
        if ledger.cold_until:
            query: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :usage)",
                "ExpressionAttributeValues": {
                    ":pk": {"S": account_key(ledger.account_id)},
                    ":usage": {"S": ARCHIVE_PREFIX},
                },
                "ProjectionExpression": "sk",
                "ConsistentRead": True,
            }
            while True:
                with translated("list periods"):
                    response = self._client.query(**query)
                periods |= {i["sk"]["S"].removeprefix(ARCHIVE_PREFIX) for i in response["Items"]}
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return periods - ledger.closed

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
        self._committed(write)

    def _landed(self, after: AccountLedger) -> bool:
        """Whether the ledger now stored is `after` (by its token); StoreError if unknown."""
        with translated("read back ledger"):
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": account_key(after.account_id)}, "sk": {"S": LEDGER_SORT_KEY}},
                ConsistentRead=True,
            )
        stored = response.get("Item")
        return stored is not None and stored.get("tok", {}).get("S") == after.token

    def _committed(self, write: LedgerWrite) -> None:
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
        stale one costs a conflict and a fresh read, never a wrong close."""
        for attempt in range(_CLOSE_ATTEMPTS):
            if ledger is None or attempt:
                ledger = self.load([account_id], fresh=True)[account_id]
            if period in ledger.closed:
                return self.archived_usage(account_id, period)
            self.apply_log(ledger)
            inline = ledger.holds_inline(period)
            try:
                if inline:
                    archive = archive_item(account_id, ledger, period, closed_at)
                    self._put_period_item(archive, "archive period", again=True)
                # else its own item holds its usage already (the log is applied above)
                after = ledger.bumped(
                    usage={p: u for p, u in ledger.usage.items() if p != period},
                    closed=ledger.closed | {period},
                    expires_at=ledger.expires_at,
                )
                self.save(LedgerWrite(ledger, after))
            except VersionConflict:
                continue  # a batch or another close got there first: read again
            if inline:
                return dict(ledger.usage.get(period, {}))
            return self.archived_usage(account_id, period)
        raise VersionConflict(f"close period: {_CLOSE_ATTEMPTS} attempts lost a race")

    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of a closed period, as it was when it closed."""
        with translated("load archived period"):
            response = self._client.get_item(
                TableName=self._table, Key=period_key(account_id, period), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:  # closed with no ledger at all: nothing was ever rated
            return {}
        return _meters(json.loads(item["use"]["S"]))


__all__ = ["LedgerStore", "SeenIds", "VersionConflict", "ledger_from_item", "ledger_item"]
