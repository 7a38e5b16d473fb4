"""Periods an account's ledger keeps outside itself: a period moved out of a full ledger
has its own item, and the ledger logs what each of its versions adds to it; a closed
period's item is its archive, its usage as it was when it closed.

An item records the ledger version whose changes it holds (`v`) and is written only over
an item of an older version, so two writers applying the same log change it once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any, Final

from billing.core.usage import MeterUsage
from billing.rating.ledger import AccountLedger, merged_usage
from billing.store.capacity import CapacityMeter, item_size, read_units, write_units
from billing.store.errors import VersionConflict, translated
from billing.store.ledger_items import (
    ARCHIVE_PREFIX,
    Item,
    account_key,
    period_item,
    period_key,
    period_usage_of,
)
from billing.store.retry import CONFLICT, Sleep

_APPLIED_HELD: Final = 100_000


class PeriodItems:
    def __init__(
        self, client: Any, table_name: str, capacity: CapacityMeter, *, sleep: Sleep = time.sleep
    ) -> None:
        self._client = client
        self._table = table_name
        self._capacity = capacity
        self._sleep = sleep
        self._applied: set[tuple[str, int]] = set()  # (account, version) logs applied

    def apply_log(self, ledger: AccountLedger) -> None:
        """Add what the ledger's version added to periods kept outside it to their items,
        once: an item records the version it holds, and is written only over an older one
        (two writers applying the same log: the second finds it done). A period the version
        moved out gets its whole usage, replacing whatever its item held."""
        if not ledger.log or (ledger.account_id, ledger.version) in self._applied:
            return
        for period, added in sorted(ledger.log.items()):
            # Lost to another writer (the same log, or a newer one): read again.
            apply = functools.partial(self._apply, ledger, period, added)
            CONFLICT.call(apply, VersionConflict, sleep=self._sleep)
        if len(self._applied) > _APPLIED_HELD:
            self._applied.clear()  # forgetting costs one read per period, never a change
        self._applied.add((ledger.account_id, ledger.version))

    def _apply(self, ledger: AccountLedger, period: str, added: Mapping[str, MeterUsage]) -> None:
        held, version = self.read(ledger.account_id, period)
        if version >= ledger.version:
            return  # applied already, or a newer version's log was
        if period in ledger.moved_out:
            held = {}
        usage = merged_usage(held, added)
        self.put(period_item(ledger.account_id, period, ledger.version, usage), "apply ledger log")

    def put(self, item: Item, operation: str, *, again: bool = False) -> None:
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
        self._capacity.wrote(write_units(item_size(item)))

    def read(self, account_id: str, period: str) -> tuple[dict[str, MeterUsage], int]:
        """The usage a period's item holds and the ledger version it holds it as of (no
        usage and version 0 when it has no item)."""
        with translated("load period usage"):
            response = self._client.get_item(
                TableName=self._table, Key=period_key(account_id, period), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:
            return {}, 0
        self._capacity.read(read_units(item_size(item)))
        return period_usage_of(item), int(item["v"]["N"])

    def period_usage(self, ledger: AccountLedger, period: str) -> dict[str, MeterUsage]:
        """An open period's usage as of `ledger`, wherever it is kept (for readers)."""
        if ledger.holds_inline(period):
            return dict(ledger.usage.get(period, {}))
        held, version = self.read(ledger.account_id, period)
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

    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]:
        """The usage of a closed period, as it was when it closed."""
        with translated("load archived period"):
            response = self._client.get_item(
                TableName=self._table, Key=period_key(account_id, period), ConsistentRead=True
            )
        item = response.get("Item")
        if item is None:  # closed with no ledger at all: nothing was ever rated
            return {}
        return period_usage_of(item)
