"""The ledger table's items in DynamoDB's low-level form (see docs/table-design.md): an
account's ledger, its id chunks and id claims, and the items of periods kept outside the
ledger (moved out, or closed and archived).

Quantities are strings: a DynamoDB number holds 38 digits, and an exact sum of quantities
can need more.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from billing.core.periods import Period
from billing.core.unpriced import Unpriced
from billing.core.usage import Aggregate, MeterUsage
from billing.rating.ledger import (
    CHUNK_KEY_BYTES,
    ID_RETENTION_DAYS,
    AccountLedger,
    ChunkRef,
    IdChunk,
    RejectedRecord,
)

Item = dict[str, dict[str, Any]]

LEDGER_SORT_KEY: Final = "LEDGER"
CHUNK_PREFIX: Final = "IDS#"
ARCHIVE_PREFIX: Final = "USAGE#"
# Chunks and claims matter while their periods are open and 35 days after their ids were
# rated; keep them well past any invoice run (a ledger drops them long before).
ID_RETENTION: Final = timedelta(days=ID_RETENTION_DAYS)
_REF_BYTES: Final = CHUNK_KEY_BYTES + 5  # key, count (4 bytes), group (1 byte)


def account_key(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def ledger_key(account_id: str) -> Item:
    return {"pk": {"S": account_key(account_id)}, "sk": {"S": LEDGER_SORT_KEY}}


def chunk_key(key: bytes) -> str:
    return f"{CHUNK_PREFIX}{key.hex()}"


def claim_key(account_id: str, digest: bytes) -> Item:
    """A claimed id's item: spread over 16 partition keys per account, so one busy account's
    claims never make a hot partition."""
    return {
        "pk": {"S": f"{account_key(account_id)}#IDS#{digest.hex()[0]}"},
        "sk": {"S": digest.hex()},
    }


# The usage and the watermarks of a ledger are one JSON string attribute each, not nested
# maps: the item is always read and written whole, and a string is several times cheaper to
# (de)serialize than dozens of typed map entries. Quantities are decimal strings inside it.


def _json(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), sort_keys=True)}


def _aggregate_json(aggregate: Aggregate) -> list[Any]:
    if aggregate.last is not None:  # a `latest` aggregate: its event's stream order too
        return [str(aggregate.quantity), aggregate.events, *aggregate.last]
    return [str(aggregate.quantity), aggregate.events]


def _aggregate(value: list[Any]) -> Aggregate:
    if len(value) == 4:
        return Aggregate(Decimal(value[0]), int(value[1]), (int(value[2]), int(value[3])))
    return Aggregate(Decimal(value[0]), int(value[1]))


def _day_json(day: Aggregate | None) -> Any:
    """One day of a meter's days: its quantity, a JSON integer when its text is one (two
    bytes fewer than a string, read back as the same Decimal), else a decimal string; a
    `latest` day with its stream order. A day without one: 0, or null for `latest`."""
    if day is None:
        return None
    quantity = day.quantity
    value: Any = int(quantity) if quantity.as_tuple().exponent == 0 else str(quantity)
    return value if day.last is None else [str(quantity), *day.last]


def _days_json(days: Mapping[int, Aggregate], latest: bool) -> list[Any]:
    """A meter's days as one list: the first day of the month with a quantity, then each
    day's from it to the last one with a quantity (a dense list is about half the size of
    a map by day when most days have usage, as a busy meter's do)."""
    first, last = min(days), max(days)
    gap = None if latest else 0
    return [first, *(_day_json(days.get(d)) if d in days else gap for d in range(first, last + 1))]


def _days(value: list[Any] | None) -> dict[int, Aggregate] | None:
    if value is None:
        return None  # not kept: the period's days outgrew their budget
    first, *entries = value
    days = {}
    for offset, entry in enumerate(entries):
        if isinstance(entry, list):
            days[first + offset] = Aggregate(Decimal(entry[0]), 0, (int(entry[1]), int(entry[2])))
        elif entry is not None and entry != 0:
            days[first + offset] = Aggregate(Decimal(entry))
    return days


def _usage_json(usage: MeterUsage) -> dict[str, Any]:
    fields: dict[str, Any] = {"a": usage.aggregation, "t": _aggregate_json(usage.total)}
    if usage.by_filter:
        fields["f"] = {key: _aggregate_json(agg) for key, agg in usage.by_filter.items()}
    if usage.days is None:
        fields["d"] = None
    elif usage.days:
        fields["d"] = _days_json(usage.days, usage.aggregation == "latest")
    if usage.unpriced is not None:  # left out when none, so such a ledger is as before
        fields["u"] = [_aggregate_json(usage.unpriced.total), dict(usage.unpriced.values)]
    return fields


def _usage(value: dict[str, Any]) -> MeterUsage:
    by_filter = {key: _aggregate(agg) for key, agg in value.get("f", {}).items()}
    usage = MeterUsage(value["a"], _aggregate(value["t"]), by_filter)
    if "u" in value:
        total, values = value["u"]
        usage = usage._replace(unpriced=Unpriced(_aggregate(total), values))
    # A period rated before days were kept has no "d": an empty series, which its readers
    # tell from a whole one by its total (billing.customer.daily_view).
    return usage._replace(days=_days(value["d"])) if "d" in value else usage


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


def period_item(
    account_id: str, period: str, version: int, usage: Mapping[str, MeterUsage]
) -> Item:
    """A period's own item holding `usage` as of ledger `version`."""
    return {
        **period_key(account_id, period),
        "v": {"N": str(version)},
        "use": _json(_meters_json(usage)),
    }


def archive_item(account_id: str, ledger: AccountLedger, period: str, closed_at: datetime) -> Item:
    """A period's final usage, kept when the period is closed."""
    return {
        **period_item(account_id, period, ledger.version, ledger.usage.get(period, {})),
        "closed_at": {"S": closed_at.astimezone(UTC).isoformat()},
    }


def period_usage_of(item: Item) -> dict[str, MeterUsage]:
    """The usage a period's own item holds."""
    return _meters(json.loads(item["use"]["S"]))


def id_expiry(periods: Iterable[str], day: int) -> int:
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
        "expires_at": {"N": str(id_expiry(chunk.ids, chunk.day))},
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


def claim_item(account_id: str, digest: bytes, chunk: IdChunk) -> Item:
    """A claim of one of `chunk`'s ids, kept as long as the chunk would be."""
    return {
        **claim_key(account_id, digest),
        "expires_at": {"N": str(id_expiry(chunk.ids, chunk.day))},
    }
