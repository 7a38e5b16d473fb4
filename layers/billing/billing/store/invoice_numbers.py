"""The issuer's gap-free invoice-number sequence, in the invoice table.

A number is allocated in the same transaction that creates the invoice's record, so every
number that exists belongs to exactly one (account, period), and every (account, period)
has at most one number. Runs numbering at the same time race for the one counter: a loser
reads again and takes the next numbers (the NUMBERING retry policy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, Final

from billing.core.credit_draws import draw_in_order
from billing.core.invoice import CreditDraw
from billing.core.periods import Period
from billing.store.batches import batch_get
from billing.store.credit_balances import (
    CreditBalance,
    CreditRequest,
    balance_from_item,
    balance_key,
    balance_put,
    draws_text,
    is_balance,
)
from billing.store.errors import VersionConflict, translated
from billing.store.invoice_records import InvoiceRecord, InvoiceTable, record_from_item, record_key
from billing.store.retry import NUMBERING

SEQUENCE_KEY: Final = {"pk": {"S": "ISSUER"}, "sk": {"S": "SEQUENCE"}}
TRANSACTION_MAX: Final = 100  # DynamoDB's limit of items in one transaction

Key = tuple[str, str]  # account, period
FormatNumber = Callable[[int, datetime], str]


class InvoiceNumbers(InvoiceTable):
    def number(
        self,
        keys: list[Key],
        issued_at: datetime,
        format_number: FormatNumber,
        credits: Mapping[Key, CreditRequest] | None = None,
    ) -> dict[Key, InvoiceRecord]:
        """The records of these (account, period) pairs, numbered: existing ones as they
        are, new ones with the next numbers of the sequence, allocated in one transaction
        with their records (at most 99 pairs at a time).

        A pair in `credits` draws on its account's prepaid grants in that transaction: its
        record keeps the draws and the account's balance item moves (billing.store.
        credit_balances). Those balance items share the transaction's 100 items, so a
        batch with credits may be numbered in a few transactions, each account's pairs
        together and its periods oldest first."""
        if len(keys) > TRANSACTION_MAX - 1:
            raise ValueError(f"number at most {TRANSACTION_MAX - 1} invoices at a time")
        requests = credits or {}
        records: dict[Key, InvoiceRecord] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), requests):
            records.update(
                NUMBERING.call(
                    partial(self._allocate, chunk, issued_at, format_number, requests),
                    VersionConflict,  # another run took numbers, made records or drew: read again
                    sleep=self._sleep,
                )
            )
        return records

    def _allocate(
        self,
        keys: list[Key],
        issued_at: datetime,
        format_number: FormatNumber,
        credits: Mapping[Key, CreditRequest],
    ) -> dict[Key, InvoiceRecord]:
        """One attempt: read the records, the sequence and the balances, then number the
        new ones in one transaction conditional on the sequence and the balances as read;
        VersionConflict if any moved."""
        drawing = sorted({key[0] for key in keys if key in credits})
        records, last, balances = self._records_and_sequence(keys, drawing)
        new = [key for key in keys if key not in records]
        if not new:
            return records
        draws, balance_puts = self._draws([key for key in new if key in credits], credits, balances)
        items = {
            key: {
                **record_key(*key),
                "sequence": {"N": str(last + offset)},
                "invoice_number": {"S": format_number(last + offset, issued_at)},
                "issued_at": {"S": issued_at.isoformat()},
                "status": {"S": "numbered"},
                **(_drawn(draws[key], credits[key]) if key in draws else {}),
            }
            for offset, key in enumerate(new, start=1)
        }
        puts = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for item in items.values()
        ]
        counter = self._counter_update(last, last + len(new))
        with translated("allocate invoice numbers"):
            self._client.transact_write_items(
                TransactItems=[{"Update": counter}, *puts, *balance_puts]
            )
        records.update({key: record_from_item(item) for key, item in items.items()})
        return records

    def _draws(
        self,
        new: list[Key],
        credits: Mapping[Key, CreditRequest],
        balances: dict[str, CreditBalance],
    ) -> tuple[dict[Key, tuple[CreditDraw, ...]], list[dict[str, Any]]]:
        """The draws of these new invoices, each account's periods oldest first from its
        balance as read, and the writes that move the balances that changed."""
        draws: dict[Key, tuple[CreditDraw, ...]] = {}
        writes = []
        for account in sorted({key[0] for key in new}):
            mine = {Period.parse(key[1]): credits[key] for key in new if key[0] == account}
            before = balances.get(account) or CreditBalance(account)
            grants = next(iter(mine.values())).grants
            totals = {period: request.total for period, request in mine.items()}
            by_period, drawn = draw_in_order(grants, before.drawn, totals)
            draws.update({(account, str(period)): d for period, d in by_period.items()})
            if drawn != before.drawn:
                writes.append(balance_put(self._table, before, drawn))
        return draws, writes

    def _records_and_sequence(
        self, keys: list[Key], drawing: list[str]
    ) -> tuple[dict[Key, InvoiceRecord], int, dict[str, CreditBalance]]:
        """The records of `keys` that exist, the last number taken and the credit balances
        of the `drawing` accounts, in one read (one call for up to 100 keys)."""
        found = batch_get(
            self._client,
            self._table,
            [*(record_key(*key) for key in keys), SEQUENCE_KEY, *map(balance_key, drawing)],
            "load invoice records and sequence",
            sleep=self._sleep,
        )
        sequence = [item for item in found if item["pk"] == SEQUENCE_KEY["pk"]]
        last = int(sequence[0]["last"]["N"]) if sequence else 0
        rest = [item for item in found if item["pk"] != SEQUENCE_KEY["pk"]]
        balances = (balance_from_item(item) for item in rest if is_balance(item))
        records = (record_from_item(item) for item in rest if not is_balance(item))
        return (
            {(record.account_id, record.period): record for record in records},
            last,
            {balance.account_id: balance for balance in balances},
        )

    def _counter_update(self, last: int, after: int) -> dict[str, Any]:
        return counter_update(self._table, SEQUENCE_KEY, last, after)


def counter_update(table: str, key: dict[str, Any], last: int, after: int) -> dict[str, Any]:
    """A sequence item (`key`) moved from `last` to `after`, only if it is still at `last`:
    the invoices' sequence, and the credit notes' (billing.store.credit_notes)."""
    counter: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET #last = :next",
        "ExpressionAttributeNames": {"#last": "last"},
        "ExpressionAttributeValues": {":next": {"N": str(after)}},
    }
    if last:
        counter["ConditionExpression"] = "#last = :last"
        counter["ExpressionAttributeValues"][":last"] = {"N": str(last)}
    else:
        counter["ConditionExpression"] = "attribute_not_exists(#last)"
    return counter


def _chunks(keys: list[Key], credits: Mapping[Key, CreditRequest]) -> list[list[Key]]:
    """`keys` in groups one transaction takes: the counter, a record per key and a balance
    per account drawing credits, at most 100 items. An account's keys stay together, but
    for an account drawing on 99 periods at once: those go oldest first, 98 at a time."""
    by_account: dict[str, list[Key]] = {}
    for key in keys:
        by_account.setdefault(key[0], []).append(key)
    groups: list[tuple[list[Key], int]] = []  # keys, and the items they take
    for account_keys in by_account.values():
        if not any(key in credits for key in account_keys):
            groups.append((account_keys, len(account_keys)))
            continue
        ordered = sorted(account_keys, key=lambda key: key[1])
        step = TRANSACTION_MAX - 2  # with the account's balance and the counter
        groups += [
            (ordered[i : i + step], len(ordered[i : i + step]) + 1)
            for i in range(0, len(ordered), step)
        ]
    chunks: list[list[Key]] = [[]]
    used = 1  # the counter
    for group, cost in groups:
        if used + cost > TRANSACTION_MAX and chunks[-1]:
            chunks.append([])
            used = 1
        chunks[-1].extend(group)
        used += cost
    return [chunk for chunk in chunks if chunk]


def _drawn(draws: tuple[CreditDraw, ...], request: CreditRequest) -> dict[str, Any]:
    """A numbered record's draws and, when they depend on it, the total they were drawn
    for: when the invoice drew (less than its total, or all of it) or totalled 0. One that
    drew nothing from a total above 0 found no credit it could use, whatever its total."""
    item = {"credits": {"S": draws_text(draws)}}
    if draws or not request.total.amount:
        item["priced_total"] = {"S": format(request.total.amount, "f")}
    return item
