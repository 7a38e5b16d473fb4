"""Invoice records in DynamoDB: the invoice store the invoice run, the usage API and the
command line use.

Its parts: the record and its item (billing.store.invoice_records), the issuer's gap-free
number sequence (billing.store.invoice_numbers), the record's email states
(billing.store.invoice_emails); here, the reads and the stored and announced marks.

`announced` is the outbox flag: false when the record is marked stored, true once the bus
accepted the invoice's InvoiceIssued event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from billing.store.batches import batch_get
from billing.store.errors import translated
from billing.store.invoice_emails import InvoiceEmails
from billing.store.invoice_numbers import SEQUENCE_KEY, InvoiceNumbers
from billing.store.invoice_records import Claim, InvoiceRecord, record_from_item, record_key


class InvoiceStore(InvoiceNumbers, InvoiceEmails):
    def for_account(self, account_id: str) -> list[InvoiceRecord]:
        """The account's invoice records, oldest period first (one Query on its key)."""
        return self._query(
            "pk = :pk AND begins_with(sk, :invoice)",
            {":pk": record_key(account_id, "")["pk"], ":invoice": {"S": "INVOICE#"}},
        )

    def _query(self, condition: str, values: dict[str, Any]) -> list[InvoiceRecord]:
        return [record_from_item(item) for item in self._query_items(condition, values)]

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InvoiceRecord]:
        """The records of these (account, period) pairs that exist, read in batches."""
        unique = list(dict.fromkeys(keys))
        keys_read = [record_key(*key) for key in unique]
        items = batch_get(
            self._client, self._table, keys_read, "load invoice records", sleep=self._sleep
        )
        records = (record_from_item(item) for item in items)
        return {(record.account_id, record.period): record for record in records}

    def since(self, account_id: str, period: str) -> list[InvoiceRecord]:
        """The account's records from `period` on, oldest first (one Query on its key)."""
        return self._query(
            "pk = :pk AND sk BETWEEN :first AND :last",
            {
                ":pk": record_key(account_id, "")["pk"],
                ":first": record_key(account_id, period)["sk"],
                ":last": record_key(account_id, "9999-12")["sk"],
            },
        )

    def all_records(self) -> list[InvoiceRecord]:
        """Every invoice record (for the command line's list and search)."""
        return [record for page in self.record_pages() for record in page]

    def record_pages(self) -> Iterator[list[InvoiceRecord]]:
        """Every invoice record, a Scan page at a time (for a one-off pass over all)."""
        scan: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :invoice)",
            "ExpressionAttributeValues": {":invoice": {"S": "INVOICE#"}},
            "ConsistentRead": True,
        }
        while True:
            with translated("list invoice records"):
                response = self._client.scan(**scan)
            yield [record_from_item(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return
            scan["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def mark_stored(
        self,
        record: InvoiceRecord,
        *,
        total: str,
        subtotal: str,
        tax: str,
        currency: str,
        json_key: str,
        pdf_key: str,
        token: str,
    ) -> InvoiceRecord:
        """Record the stored documents, not yet announced; VersionConflict if another run
        recorded them first. `token` names this attempt (the SDK may retry a write whose
        answer was lost)."""
        values = {
            "total": total,
            "subtotal": subtotal,
            "tax": tax,
            "currency": currency,
            "json_key": json_key,
            "pdf_key": pdf_key,
            "issued_by": token,
        }
        # Names through placeholders: several (TOTAL, STATUS) are DynamoDB reserved words.
        with translated("mark invoice stored"):
            self._client.update_item(
                TableName=self._table,
                Key=record_key(record.account_id, record.period),
                UpdateExpression="SET #status = :stored, announced = :false, "
                + ", ".join(f"#{name} = :{name}" for name in values),
                # Only one run marks it: the one that then announces the invoice.
                ConditionExpression="#status = :numbered OR #issued_by = :issued_by",
                ExpressionAttributeNames={"#status": "status", **{f"#{n}": n for n in values}},
                ExpressionAttributeValues={
                    ":stored": {"S": "stored"},
                    ":numbered": {"S": "numbered"},
                    ":false": {"BOOL": False},
                    **{f":{name}": {"S": value} for name, value in values.items()},
                },
            )
        return replace(
            record,
            status="stored",
            total=total,
            subtotal=subtotal,
            tax=tax,
            currency=currency,
            json_key=json_key,
            pdf_key=pdf_key,
            announced=False,
        )


__all__ = ["SEQUENCE_KEY", "Claim", "InvoiceRecord", "InvoiceStore", "record_key"]
