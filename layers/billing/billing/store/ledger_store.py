"""Account ledgers and their spilled id chunks in DynamoDB (see docs/table-design.md).

Items are written in DynamoDB's low-level form, quantities and amounts as strings: a
DynamoDB number holds 38 digits, and an exact sum of quantities can need more.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from billing.ledger import AccountLedger, IdChunk
from billing.periods import Period
from billing.rater import LedgerWrite
from billing.store.batches import batch_get
from billing.store.capacity import CapacityMeter, item_size, read_units, write_units
from billing.store.errors import StoreError, VersionConflict, translated
from billing.usage import Aggregate, MeterUsage

Item = dict[str, dict[str, Any]]

LEDGER_SORT_KEY: Final = "LEDGER"
CHUNK_PREFIX: Final = "IDS#"
ARCHIVE_PREFIX: Final = "USAGE#"
_CLOSE_ATTEMPTS: Final = 10
# Spilled ids matter while their period is open; keep them well past any invoice run.
CHUNK_RETENTION: Final = timedelta(days=400)
_BATCH_GET_MAX: Final = 100


def account_key(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def chunk_key(index: int) -> str:
    return f"{CHUNK_PREFIX}{index:010d}"


# --- item shapes ---------------------------------------------------------------------------


# The usage, charges and chunk ranges of a ledger are one JSON string attribute each, not
# nested maps: the item is always read and written whole, and a string is several times
# cheaper to (de)serialize than dozens of typed map entries (in the SDK, in Lambda, and in
# the local runtime). Quantities and amounts are decimal strings inside it, never numbers.


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


def _amounts(value: dict[str, str]) -> dict[str, Decimal]:
    return {key: Decimal(amount) for key, amount in value.items()}


def _blobs(ids: Mapping[str, bytes]) -> dict[str, Any]:
    return {"M": {period: {"B": blob} for period, blob in ids.items()}}


def ledger_item(ledger: AccountLedger) -> Item:
    item: Item = {
        "pk": {"S": account_key(ledger.account_id)},
        "sk": {"S": LEDGER_SORT_KEY},
        "v": {"N": str(ledger.version)},
        "seq": {"S": str(ledger.sequence)},
        "use": _json({period: _meters_json(meters) for period, meters in ledger.usage.items()}),
        "chg": _json(
            {
                period: {key: str(amount) for key, amount in amounts.items()}
                for period, amounts in ledger.charges.items()
            }
        ),
        "ids": _blobs(ledger.recent_ids),
        "chunks": {"N": str(ledger.chunks)},
        "cr": _json({period: list(bounds) for period, bounds in ledger.chunk_ranges.items()}),
    }
    if ledger.closed:
        item["closed"] = {"SS": sorted(ledger.closed)}
    return item


def ledger_from_item(account_id: str, item: Item) -> AccountLedger:
    ranges = json.loads(item["cr"]["S"]) if "cr" in item else {}
    return AccountLedger(
        account_id=account_id,
        version=int(item["v"]["N"]),
        sequence=int(item["seq"]["S"]),
        usage={period: _meters(meters) for period, meters in json.loads(item["use"]["S"]).items()},
        charges={
            period: _amounts(amounts) for period, amounts in json.loads(item["chg"]["S"]).items()
        },
        closed=frozenset(item.get("closed", {"SS": []})["SS"]),
        recent_ids={period: blob["B"] for period, blob in item["ids"]["M"].items()},
        chunks=int(item["chunks"]["N"]),
        chunk_ranges={period: (int(first), int(last)) for period, (first, last) in ranges.items()},
    )


@dataclass(frozen=True, slots=True)
class ChargesImage:
    """What a ledger item says about running charges: by open period, then charge line."""

    account_id: str
    charges: dict[str, dict[str, Decimal]]
    closed: frozenset[str]


def charges_image(item: Item | None) -> ChargesImage | None:
    """The running charges in a ledger item as a DynamoDB stream image shows it (the same
    low-level form); None for any other item of the table (id chunks, archives, claims)."""
    if not item or item.get("sk", {}).get("S") != LEDGER_SORT_KEY or "chg" not in item:
        return None
    return ChargesImage(
        account_id=item["pk"]["S"].removeprefix("ACCOUNT#"),
        charges={
            period: _amounts(amounts) for period, amounts in json.loads(item["chg"]["S"]).items()
        },
        closed=frozenset(item.get("closed", {"SS": []})["SS"]),
    )


def archive_item(account_id: str, ledger: AccountLedger, period: str, closed_at: datetime) -> Item:
    """A period's final usage and charges, kept when the period is closed."""
    return {
        "pk": {"S": account_key(account_id)},
        "sk": {"S": f"{ARCHIVE_PREFIX}{period}"},
        "v": {"N": str(ledger.version)},
        "use": _json(_meters_json(ledger.usage.get(period, {}))),
        "chg": _json({key: str(amount) for key, amount in ledger.charges.get(period, {}).items()}),
        "closed_at": {"S": closed_at.astimezone(UTC).isoformat()},
    }


def chunk_item(chunk: IdChunk) -> Item:
    latest = max(Period.parse(period) for period in chunk.ids)
    expires = datetime(latest.end_day.year, latest.end_day.month, 1, tzinfo=UTC) + CHUNK_RETENTION
    return {
        "pk": {"S": account_key(chunk.account_id)},
        "sk": {"S": chunk_key(chunk.index)},
        "ids": _blobs(chunk.ids),
        "expires_at": {"N": str(int(expires.timestamp()))},
    }


def chunk_from_item(account_id: str, item: Item) -> IdChunk:
    index = int(item["sk"]["S"].removeprefix(CHUNK_PREFIX))
    return IdChunk(account_id, index, {p: blob["B"] for p, blob in item["ids"]["M"].items()})


# --- the store -----------------------------------------------------------------------------


class LedgerStore:
    """Reads and conditionally writes account ledgers; caches immutable id chunks."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        chunk_cache_size: int = 100_000,
        ledger_cache_size: int = 100_000,
    ) -> None:
        self._client = client
        self._table = table_name
        self._chunks: OrderedDict[tuple[str, int], IdChunk] = OrderedDict()
        self._chunk_cache_size = chunk_cache_size
        self._sizes: dict[str, int] = {}  # ledger item sizes as last read, for write units
        self._ledgers: OrderedDict[str, AccountLedger] = OrderedDict()
        self._ledger_cache_size = ledger_cache_size
        self.capacity = CapacityMeter()

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
            found = self._batch_get(keys)
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

    def _remember(self, ledger: AccountLedger) -> None:
        self._ledgers[ledger.account_id] = ledger
        self._ledgers.move_to_end(ledger.account_id)
        while len(self._ledgers) > self._ledger_cache_size:
            self._ledgers.popitem(last=False)

    def _batch_get(self, keys: list[Item]) -> list[Item]:
        return batch_get(self._client, self._table, keys, "load ledgers")

    def open_digests(self, ledger: AccountLedger) -> set[bytes]:
        """Every event-id digest claimed in the ledger's open periods, chunks included."""
        return ledger.open_digests(self.chunks(ledger))

    def chunks(self, ledger: AccountLedger) -> list[IdChunk]:
        """The committed chunks holding the ledger's open periods, from cache or table."""
        account_id = ledger.account_id
        needed = ledger.needed_chunks()
        found = {
            i: self._chunks[(account_id, i)] for i in needed if (account_id, i) in self._chunks
        }
        missing = [i for i in needed if i not in found]
        if missing:
            found.update(self._fetch_chunks(account_id, missing[0], missing[-1]))
        for index in needed:
            if index not in found:
                raise StoreError(f"id chunk {index} of a ledger is missing")
            self._chunks[(account_id, index)] = found[index]
            self._chunks.move_to_end((account_id, index))
        # Trimmed after use: a busy account's chunks are all returned even when they
        # outnumber the cache.
        while len(self._chunks) > self._chunk_cache_size:
            self._chunks.popitem(last=False)
        return [found[index] for index in needed]

    def _fetch_chunks(self, account_id: str, first: int, last: int) -> dict[int, IdChunk]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": account_key(account_id)},
                ":first": {"S": chunk_key(first)},
                ":last": {"S": chunk_key(last)},
            },
            "ConsistentRead": True,
        }
        fetched: dict[int, IdChunk] = {}
        while True:
            with translated("load id chunks"):
                response = self._client.query(**query)
            for item in response.get("Items", []):
                self.capacity.read(read_units(item_size(item)))
                chunk = chunk_from_item(account_id, item)
                fetched[chunk.index] = chunk
            if "LastEvaluatedKey" not in response:
                return fetched
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def save(self, write: LedgerWrite) -> None:
        """Store the chunk, then the ledger over the version it was read at.

        Raises VersionConflict when another writer got there first: reload and rate again.
        An orphan chunk left by a failed ledger write carries the next index, so the retry
        overwrites it, and until then no ledger counts it."""
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
        account_id = write.after.account_id
        with translated("store ledger"):
            self._client.put_item(TableName=self._table, Item=item, **condition)
        size = item_size(item)
        self.capacity.wrote(write_units(self._sizes.get(account_id, 0), size))
        self._sizes[account_id] = size
        self._remember(write.after)
        if write.chunk is not None:
            # Committed now that the ledger counts it, and immutable: the next batch of this
            # account needs it and need not read it back.
            self._chunks[(account_id, write.chunk.index)] = write.chunk

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
        From then on the rater rejects the period's events as PERIOD_CLOSED.

        `ledger`, if given, is the account's ledger as the caller read it (in a batch):
        the first attempt starts from it. Every write is conditional on its version, so a
        stale one costs a conflict and a fresh read, never a wrong close."""
        for attempt in range(_CLOSE_ATTEMPTS):
            if ledger is None or attempt:
                ledger = self.load([account_id], fresh=True)[account_id]
            if period in ledger.closed:
                return self.archived_usage(account_id, period)
            archive = archive_item(account_id, ledger, period, closed_at)
            try:
                with translated("archive period"):
                    self._client.put_item(
                        TableName=self._table,
                        Item=archive,
                        ConditionExpression="attribute_not_exists(pk) OR v < :v",
                        ExpressionAttributeValues={":v": {"N": str(ledger.version)}},
                    )
                self.capacity.wrote(write_units(item_size(archive)))
                after = ledger.bumped(
                    usage={p: u for p, u in ledger.usage.items() if p != period},
                    charges={p: c for p, c in ledger.charges.items() if p != period},
                    closed=ledger.closed | {period},
                    recent_ids={p: b for p, b in ledger.recent_ids.items() if p != period},
                    chunk_ranges={p: r for p, r in ledger.chunk_ranges.items() if p != period},
                )
                self.save(LedgerWrite(ledger, after))
            except VersionConflict:
                continue  # a batch or another close got there first: read again
            return dict(ledger.usage.get(period, {}))
        raise VersionConflict(f"close period: {_CLOSE_ATTEMPTS} attempts lost a race")

    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of a closed period, as it was when it closed."""
        with translated("load archived period"):
            response = self._client.get_item(
                TableName=self._table,
                Key={
                    "pk": {"S": account_key(account_id)},
                    "sk": {"S": f"{ARCHIVE_PREFIX}{period}"},
                },
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:  # closed with no ledger at all: nothing was ever rated
            return {}
        return _meters(json.loads(item["use"]["S"]))


__all__ = ["LedgerStore", "VersionConflict", "ledger_from_item", "ledger_item"]
