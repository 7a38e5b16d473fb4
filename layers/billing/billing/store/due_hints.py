"""The due hints: one item per account in the ledger table (`pk=ACCOUNT#<id>`, `sk=DUE`)
and the sparse index `due` over them, by shard and due time (billing.core.owed says what a
hint means and the one rule its writers keep; docs/invoicing.md, "Finding what is due").

Every write is conditional, so no writer moves a hint another has just moved:
- `lower` (the rater's late event, a run for a period): only to an earlier due time.
- `replace` and `delete` (a push, the hourly run): only over the hint as it was read.
A write that loses is not an error: the caller reads again, or leaves it to the next run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from billing.core.owed import DueHint, due_shard, due_shards, instant_text
from billing.core.periods import Period
from billing.settings import DUE_INDEX
from billing.store.batches import batch_get
from billing.store.errors import VersionConflict, translated
from billing.store.retry import Sleep

HINT_SORT_KEY: Final = "DUE"
# Hint moves in flight at once: a run after a month's end moves one hint per account due,
# and a million conditional writes one after another (5 ms each) would outlast a Lambda.
MOVE_WORKERS: Final = 16
# The index's keys and the one attribute it carries besides them.
SHARD_ATTRIBUTE: Final = DUE_INDEX.partition_key
DUE_AT_ATTRIBUTE: Final = DUE_INDEX.sort_key
(PERIOD_ATTRIBUTE,) = DUE_INDEX.projected


def hint_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": HINT_SORT_KEY}}


@dataclass(frozen=True, slots=True)
class HintMove:
    """Move the account's hint, read as `seen`, to `to`; remove it when `to` is None."""

    account_id: str
    seen: DueHint
    to: DueHint | None


@dataclass(frozen=True, slots=True)
class StoredHint:
    """A hint as stored: the account's, with the due time's text as written (a conditional
    write compares against it)."""

    account_id: str
    hint: DueHint


def _from_item(item: dict[str, Any]) -> StoredHint:
    due_at = datetime.strptime(item[DUE_AT_ATTRIBUTE]["S"], "%Y-%m-%dT%H:%M:%SZ")
    return StoredHint(
        item["pk"]["S"].removeprefix("ACCOUNT#"),
        DueHint(Period.parse(item[PERIOD_ATTRIBUTE]["S"]), due_at.replace(tzinfo=UTC)),
    )


def _values(hint: DueHint, prefix: str) -> dict[str, dict[str, str]]:
    return {f":{prefix}_period": {"S": str(hint.period)}, f":{prefix}_at": {"S": hint.due_text}}


class DueHints:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        sleep: Sleep = time.sleep,
        move_workers: int = MOVE_WORKERS,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep
        self._move_workers = move_workers
        self._pool: ThreadPoolExecutor | None = None  # made on the first moves, then kept

    # --- reading ---

    def due(self, cutoff: datetime) -> Iterator[list[StoredHint]]:
        """The hints due at or before `cutoff`, a page at a time, shard after shard: one
        Query page of the index each (at most 1 MB, about 10,000 hints), read lazily."""
        for shard in due_shards():
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": DUE_INDEX.name,
                "KeyConditionExpression": "#shard = :shard AND #at <= :cutoff",
                "ExpressionAttributeNames": {"#shard": SHARD_ATTRIBUTE, "#at": DUE_AT_ATTRIBUTE},
                "ExpressionAttributeValues": {
                    ":shard": {"S": shard},
                    ":cutoff": {"S": instant_text(cutoff)},
                },
            }
            while True:
                with translated("list due hints"):
                    response = self._client.query(**query)
                page = [_from_item(item) for item in response.get("Items", [])]
                if page:
                    yield page
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_many(self, account_ids: Iterable[str]) -> dict[str, DueHint]:
        """The stored hints of these accounts (an account with none is absent)."""
        keys = [hint_key(account_id) for account_id in dict.fromkeys(account_ids)]
        items = batch_get(self._client, self._table, keys, "load due hints", sleep=self._sleep)
        return {stored.account_id: stored.hint for stored in map(_from_item, items)}

    # --- writing ---

    def lower(self, account_id: str, hint: DueHint) -> bool:
        """Make the account's hint `hint` if it has none or a later one; False if it was
        not later (nothing written)."""
        return self._update(
            account_id,
            hint,
            "attribute_not_exists(#at) OR #at > :new_at",
            {},
            "lower due hint",
        )

    def replace(self, account_id: str, seen: DueHint | None, hint: DueHint) -> bool:
        """Write `hint` over the hint read as `seen` (None: none was stored); False if it
        changed since (nothing written)."""
        if seen is None:
            return self._update(account_id, hint, "attribute_not_exists(#at)", {}, "write due hint")
        return self._update(
            account_id,
            hint,
            "#period = :seen_period AND #at = :seen_at",
            _values(seen, "seen"),
            "move due hint",
        )

    def settle(self, moves: Sequence[HintMove]) -> int:
        """Make these moves, `move_workers` at a time, each conditional on the hint read;
        how many were made (a hint moved since is left as it is). StoreError if any write
        failed (throttling past the SDK's retries, an outage)."""
        if len(moves) <= 1 or self._move_workers <= 1:
            return sum(map(self._settle, moves))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._move_workers, thread_name_prefix="due-hints")
        return sum(self._pool.map(self._settle, moves))

    def _settle(self, move: HintMove) -> bool:
        if move.to is None:
            return self.delete(move.account_id, move.seen)
        return self.replace(move.account_id, move.seen, move.to)

    def delete(self, account_id: str, seen: DueHint) -> bool:
        """Remove the hint read as `seen`; False if it changed since (nothing removed)."""
        try:
            with translated("remove due hint"):
                self._client.delete_item(
                    TableName=self._table,
                    Key=hint_key(account_id),
                    ConditionExpression="#period = :seen_period AND #at = :seen_at",
                    ExpressionAttributeNames={"#period": PERIOD_ATTRIBUTE, "#at": DUE_AT_ATTRIBUTE},
                    ExpressionAttributeValues=_values(seen, "seen"),
                )
        except VersionConflict:
            return False
        return True

    def _update(
        self,
        account_id: str,
        hint: DueHint,
        condition: str,
        seen: dict[str, dict[str, str]],
        operation: str,
    ) -> bool:
        try:
            with translated(operation):
                self._client.update_item(
                    TableName=self._table,
                    Key=hint_key(account_id),
                    UpdateExpression="SET #period = :new_period, #at = :new_at, #shard = :shard",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={
                        "#period": PERIOD_ATTRIBUTE,
                        "#at": DUE_AT_ATTRIBUTE,
                        "#shard": SHARD_ATTRIBUTE,
                    },
                    ExpressionAttributeValues={
                        **_values(hint, "new"),
                        ":shard": {"S": due_shard(account_id)},
                        **seen,
                    },
                )
        except VersionConflict:
            return False
        return True
