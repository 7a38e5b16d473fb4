"""An invoice record as the invoice table keeps it: one item per (account, period).

A record is `numbered` until its documents are stored, then `stored`; its email moves from
`sending` to `sent` or `undelivered` (see billing.store.invoice_emails).

`announced` is the outbox flag: false when the record is marked stored, true once the bus
accepted the invoice's InvoiceIssued event. A record stored before the flag existed has
none and counts as announced (it was announced, or lost, when it was stored).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from billing.store.errors import VersionConflict, translated
from billing.store.retry import Sleep


def record_key(account_id: str, period: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": f"INVOICE#{period}"}}


@dataclass(frozen=True)
class InvoiceRecord:
    account_id: str
    period: str
    sequence: int
    invoice_number: str
    issued_at: str
    status: str  # numbered | stored
    total: str | None = None
    currency: str | None = None
    json_key: str | None = None
    pdf_key: str | None = None
    email_status: str | None = None  # sending | sent | undelivered | unknown
    message_id: str | None = None
    # Kept so that InvoiceIssued can be published again from the record alone.
    subtotal: str | None = None
    tax: str | None = None
    announced: bool = True
    # The email's claim (wall-clock time and the claiming attempt's token) and, once it
    # failed or may have, why.
    email_claimed_at: str | None = None
    email_token: str | None = None
    email_reason: str | None = None
    # InvoiceDeliveryFailed's outbox flag: false from `undelivered` until the bus took it.
    failure_announced: bool = True
    # The prepaid credits the invoice drew, as its JSON's `credits` (written when it was
    # numbered, with the balance it moved); None when its account had no grant to draw on.
    credits: str | None = None
    # The invoice's total those credits were drawn for (with `credits`): a rebuild that
    # totals otherwise is not finished under the draws (billing.invoicing.closed).
    priced_total: str | None = None
    # What its credit notes and adjustments moved so far (billing.core.credit_notes
    # `Credited`, as text); None before the first.
    credited: str | None = None

    @property
    def stored(self) -> bool:
        return self.status == "stored"

    def document_numbers(self) -> dict[str, str]:
        """What names the record's document in its events: the invoice's number."""
        return {"invoice_number": self.invoice_number}

    @property
    def finished(self) -> bool:
        """Stored, announced and emailed (or its one email tried) with any delivery failure
        announced: nothing left to do. A claim still `sending` is not finished: its holder
        may have stopped (see billing.invoicing.send.SendInvoices._expire_claim)."""
        return (
            self.stored
            and self.announced
            and self.email_status in _EMAIL_DONE
            and self.failure_announced
        )


# Email states no run changes by itself (an operator's resend may).
_EMAIL_DONE: Final = frozenset({"sent", "undelivered", "unknown", "bounced", "complained"})


class Claim(NamedTuple):
    """What claim_email did: whether this attempt holds the email, and whether its write
    recorded the invoice's announcement (which no write had recorded before)."""

    claimed: bool
    announced: bool


# The text attributes an invoice record and a credit note's (billing.store.credit_notes)
# both keep: the stored documents, the totals and the email's state.
_TEXTS: Final = (
    "total",
    "currency",
    "json_key",
    "pdf_key",
    "email_status",
    "message_id",
    "subtotal",
    "tax",
    "email_claimed_at",
    "email_token",
    "email_reason",
)


def record_texts(item: dict[str, Any]) -> dict[str, str | None]:
    """The record's _TEXTS attributes, None where absent."""
    return {name: str(item[name]["S"]) if name in item else None for name in _TEXTS}


def record_from_item(item: dict[str, Any]) -> InvoiceRecord:
    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    return InvoiceRecord(
        account_id=item["pk"]["S"].removeprefix("ACCOUNT#"),
        period=item["sk"]["S"].removeprefix("INVOICE#"),
        sequence=int(item["sequence"]["N"]),
        invoice_number=item["invoice_number"]["S"],
        issued_at=item["issued_at"]["S"],
        status=item["status"]["S"],
        announced=bool(item.get("announced", {"BOOL": True})["BOOL"]),
        failure_announced=bool(item.get("failure_announced", {"BOOL": True})["BOOL"]),
        credits=text("credits"),
        priced_total=text("priced_total"),
        credited=text("credited"),
        **record_texts(item),
    )


class InvoiceTable:
    """The invoice table and one record read by its key: what the parts of the invoice
    store (billing.store.invoice_store) share."""

    def __init__(self, client: Any, table_name: str, *, sleep: Sleep = time.sleep) -> None:
        self._client = client
        self._table = table_name
        self._sleep = sleep

    def _record_key(self, record: InvoiceRecord) -> dict[str, dict[str, str]]:
        """The key of `record`'s item: what the email's writes (billing.store.invoice_emails)
        address, so that a credit note's email goes through them too
        (billing.store.credit_notes)."""
        return record_key(record.account_id, record.period)

    def mark_announced(self, record: InvoiceRecord) -> bool:
        """Record that the bus accepted the record's announcement (InvoiceIssued, or a
        credit note's CreditNoteIssued); False if a write had recorded it already (another
        run's, or an earlier answer lost on the way)."""
        try:
            with translated("mark invoice announced"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._record_key(record),
                    UpdateExpression="SET announced = :true",
                    ConditionExpression="#status = :stored AND announced = :false",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":true": {"BOOL": True},
                        ":false": {"BOOL": False},
                        ":stored": {"S": "stored"},
                    },
                )
        except VersionConflict:
            return False
        return True

    def _query_items(self, condition: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        """The items of one key condition, every page, read consistently."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            with translated("list invoice records"):
                response = self._client.query(**query)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, account_id: str, period: str) -> InvoiceRecord | None:
        with translated("load invoice record"):
            response = self._client.get_item(
                TableName=self._table, Key=record_key(account_id, period), ConsistentRead=True
            )
        return record_from_item(response["Item"]) if "Item" in response else None
