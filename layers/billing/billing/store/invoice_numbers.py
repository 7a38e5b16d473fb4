"""The issuer's gap-free invoice-number sequence, in the invoice table.

A number is allocated in the same transaction that creates the invoice's record, so every
number that exists belongs to exactly one (account, period), and every (account, period)
has at most one number. Runs numbering at the same time race for the one counter: a loser
reads again and takes the next numbers (the NUMBERING retry policy).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from billing.store.batches import batch_get
from billing.store.errors import VersionConflict, translated
from billing.store.invoice_records import InvoiceRecord, InvoiceTable, record_from_item, record_key
from billing.store.retry import NUMBERING

SEQUENCE_KEY: Final = {"pk": {"S": "ISSUER"}, "sk": {"S": "SEQUENCE"}}
TRANSACTION_MAX: Final = 100  # DynamoDB's limit of items in one transaction

Key = tuple[str, str]  # account, period
FormatNumber = Callable[[int, datetime], str]


class InvoiceNumbers(InvoiceTable):
    def number(
        self, keys: list[Key], issued_at: datetime, format_number: FormatNumber
    ) -> dict[Key, InvoiceRecord]:
        """The records of these (account, period) pairs, numbered: existing ones as they
        are, new ones with the next numbers of the sequence, allocated in one transaction
        with their records (at most 99 pairs at a time)."""
        if len(keys) > TRANSACTION_MAX - 1:
            raise ValueError(f"number at most {TRANSACTION_MAX - 1} invoices at a time")
        unique = list(dict.fromkeys(keys))
        return NUMBERING.call(
            lambda: self._allocate(unique, issued_at, format_number),
            VersionConflict,  # another run took numbers or made records: read again
            sleep=self._sleep,
        )

    def _allocate(
        self, keys: list[Key], issued_at: datetime, format_number: FormatNumber
    ) -> dict[Key, InvoiceRecord]:
        """One attempt: read the records and the sequence, then number the new ones in one
        transaction conditional on the sequence as read; VersionConflict if it moved."""
        records, last = self._records_and_sequence(keys)
        new = [key for key in keys if key not in records]
        if not new:
            return records
        items = {
            key: {
                **record_key(*key),
                "sequence": {"N": str(last + offset)},
                "invoice_number": {"S": format_number(last + offset, issued_at)},
                "issued_at": {"S": issued_at.isoformat()},
                "status": {"S": "numbered"},
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
            self._client.transact_write_items(TransactItems=[{"Update": counter}, *puts])
        records.update({key: record_from_item(item) for key, item in items.items()})
        return records

    def _records_and_sequence(self, keys: list[Key]) -> tuple[dict[Key, InvoiceRecord], int]:
        """The records of `keys` that exist and the last number taken, in one read (at
        most 100 keys: one call)."""
        found = batch_get(
            self._client,
            self._table,
            [*(record_key(*key) for key in keys), SEQUENCE_KEY],
            "load invoice records and sequence",
            sleep=self._sleep,
        )
        sequence = [item for item in found if item["pk"] == SEQUENCE_KEY["pk"]]
        last = int(sequence[0]["last"]["N"]) if sequence else 0
        records = (record_from_item(item) for item in found if item["pk"] != SEQUENCE_KEY["pk"])
        return {(record.account_id, record.period): record for record in records}, last

    def _counter_update(self, last: int, after: int) -> dict[str, Any]:
        """The sequence moved from `last` to `after`, only if it is still at `last`."""
        counter: dict[str, Any] = {
            "TableName": self._table,
            "Key": SEQUENCE_KEY,
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
