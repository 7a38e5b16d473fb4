"""Credit notes in the invoice table: the issuer's gap-free credit-note sequence, one record
per (invoice, correction), and what the notes took from each invoice, on its record.

A credit note is numbered in one transaction that (a) moves the sequence item
(`ISSUER` / `CREDIT_NOTE_SEQUENCE`) from n−1 to n only if it still says n−1, (b) creates the
note's record only if there is none for its (invoice, correction) key, and (c) moves the
invoice record's `credited` (what its notes took so far) only if its `credit_version` is
still the one read. So a number belongs to exactly one note, one correction key gets at
most one number however often it is retried or run at once, and two notes of one invoice
are never computed from the same `credited`. A loser reads again: it finds the winner's
record for its key (and returns it), or numbers again from what it now reads.

The record then moves as an invoice's does: `numbered`, `stored` (its documents written),
announced (`announced`, the outbox flag), and its one email claimed and recorded with the
invoice email's writes (billing.store.invoice_emails), on the note's own key.

An adjustment invoice (kind ADJUSTMENT: what a correction charges on top) is numbered the
same way in a sequence of its own (`ISSUER` / `ADJUSTMENT_SEQUENCE`), its record under
`ADJUSTMENT#<invoice>#<correction>`; it moves `credited` too, its lines counted negative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Final

from billing.core.credit_notes import (
    ADJUSTMENT,
    CREDIT_NOTE,
    NUMBER_KEYS,
    Credited,
    CreditNote,
    credit_note_number,
)
from billing.core.invoice import utc_text
from billing.store.batches import batch_get
from billing.store.errors import StoreError, VersionConflict, translated
from billing.store.invoice_emails import InvoiceEmails
from billing.store.invoice_numbers import counter_update
from billing.store.invoice_records import InvoiceRecord, record_key, record_texts
from billing.store.retry import NUMBERING

CREDIT_NOTE_SEQUENCE_KEY: Final = {"pk": {"S": "ISSUER"}, "sk": {"S": "CREDIT_NOTE_SEQUENCE"}}
ADJUSTMENT_SEQUENCE_KEY: Final = {"pk": {"S": "ISSUER"}, "sk": {"S": "ADJUSTMENT_SEQUENCE"}}
_PREFIX: Final = "CREDIT_NOTE#"
# Each kind of correction document: its records' sort-key prefix and its sequence item.
_PREFIXES: Final = {CREDIT_NOTE: _PREFIX, ADJUSTMENT: "ADJUSTMENT#"}
_SEQUENCES: Final = {CREDIT_NOTE: CREDIT_NOTE_SEQUENCE_KEY, ADJUSTMENT: ADJUSTMENT_SEQUENCE_KEY}

# Makes the note numbered `number` from what the invoice's earlier notes credited.
MakeNote = Callable[[Credited, str], CreditNote]


def credit_note_key(
    account_id: str, invoice_number: str, correction: str, kind: str = CREDIT_NOTE
) -> dict[str, Any]:
    return {
        "pk": {"S": f"ACCOUNT#{account_id}"},
        "sk": {"S": f"{_PREFIXES[kind]}{invoice_number}#{correction}"},
    }


@dataclass(frozen=True)
class CreditNoteRecord(InvoiceRecord):
    """A credit note's record: an invoice record's states (numbered, stored, announced,
    its email) under the note's number (`invoice_number`), for the corrected invoice's
    account and period, plus what it corrects and its JSON document as it is stored."""

    corrects: str = ""  # the corrected invoice's number
    correction: str = ""  # "void", or a re-rate's key
    document: str = ""  # the JSON document, the bytes stored
    kind: str = CREDIT_NOTE  # or ADJUSTMENT: an adjustment invoice's record

    def document_numbers(self) -> dict[str, str]:
        """The note's number (`credit_note_number` or `adjustment_number`) and the corrected
        invoice's, as CreditNoteIssued names them."""
        return {NUMBER_KEYS[self.kind]: self.invoice_number, "invoice_number": self.corrects}


def credit_note_from_item(item: dict[str, Any]) -> CreditNoteRecord:
    sort_key = item["sk"]["S"]
    kind = ADJUSTMENT if sort_key.startswith(_PREFIXES[ADJUSTMENT]) else CREDIT_NOTE
    corrects, _, correction = sort_key.removeprefix(_PREFIXES[kind]).partition("#")
    return CreditNoteRecord(
        kind=kind,
        account_id=item["pk"]["S"].removeprefix("ACCOUNT#"),
        period=item["period"]["S"],
        sequence=int(item["sequence"]["N"]),
        invoice_number=item[NUMBER_KEYS[kind]]["S"],
        issued_at=item["issued_at"]["S"],
        status=item["status"]["S"],
        announced=bool(item.get("announced", {"BOOL": False})["BOOL"]),
        failure_announced=bool(item.get("failure_announced", {"BOOL": True})["BOOL"]),
        corrects=corrects,
        correction=correction,
        document=item["document"]["S"],
        **record_texts(item),
    )


class CreditNoteStore(InvoiceEmails):
    def _record_key(self, record: InvoiceRecord) -> dict[str, dict[str, str]]:
        if not isinstance(record, CreditNoteRecord):
            raise TypeError("a credit note's store addresses credit note records only")
        return credit_note_key(record.account_id, record.corrects, record.correction, record.kind)

    def _from_item(self, item: dict[str, Any]) -> CreditNoteRecord:
        return credit_note_from_item(item)

    def record_document_delivery(
        self, account_id: str, invoice_number: str, kind: str, correction: str, message_id: str
    ) -> bool:
        """The invoice email's record_delivery, on the note (or adjustment) of (invoice,
        correction): its email, not known to have left, was delivered."""
        key = credit_note_key(account_id, invoice_number, correction, kind)
        return self._record_delivery(key, message_id)

    def record_document_feedback(
        self,
        account_id: str,
        invoice_number: str,
        kind: str,
        correction: str,
        message_id: str,
        status: str,
        reason: str,
    ) -> InvoiceRecord | None:
        """The invoice email's record_feedback, on the note (or adjustment) of (invoice,
        correction): SES's bounce or complaint of its email whose SES id is `message_id`."""
        key = credit_note_key(account_id, invoice_number, correction, kind)
        return self._record_feedback(key, message_id, status, reason)

    def for_account(self, account_id: str, kind: str = CREDIT_NOTE) -> list[CreditNoteRecord]:
        """The account's credit notes (or, of kind ADJUSTMENT, its adjustment invoices), by
        the invoice they correct: one Query on its key, for that kind's sort-key prefix."""
        items = self._query_items(
            "pk = :pk AND begins_with(sk, :prefix)",
            {":pk": {"S": f"ACCOUNT#{account_id}"}, ":prefix": {"S": _PREFIXES[kind]}},
        )
        return [credit_note_from_item(item) for item in items]

    def for_invoice(self, account_id: str, invoice_number: str) -> list[CreditNoteRecord]:
        """The credit notes and adjustment invoices issued against one invoice, of both
        kinds (one Query per kind on the account's key, the invoice's prefix)."""
        return [
            credit_note_from_item(item)
            for prefix in _PREFIXES.values()
            for item in self._query_items(
                "pk = :pk AND begins_with(sk, :prefix)",
                {
                    ":pk": {"S": f"ACCOUNT#{account_id}"},
                    ":prefix": {"S": f"{prefix}{invoice_number}#"},
                },
            )
        ]

    def issued_against(self, invoice: InvoiceRecord) -> list[CreditNoteRecord]:
        """The records of the documents the invoice record's `credited` names (one
        BatchGetItem: the Send function may not Query)."""
        credited = Credited.from_text(invoice.credited)
        keys = [
            credit_note_key(invoice.account_id, invoice.invoice_number, correction, kind)
            for kind, correction in credited.documents
        ]
        if not keys:
            return []
        found = batch_get(self._client, self._table, keys, "load corrections", sleep=self._sleep)
        return [credit_note_from_item(item) for item in found]

    def find(
        self, invoice: InvoiceRecord, correction: str, kind: str = CREDIT_NOTE
    ) -> CreditNoteRecord | None:
        """The note (or adjustment) of (invoice, correction), if one was numbered."""
        key = credit_note_key(invoice.account_id, invoice.invoice_number, correction, kind)
        found = batch_get(self._client, self._table, [key], "load credit note", sleep=self._sleep)
        return credit_note_from_item(found[0]) if found else None

    def number(
        self,
        invoice: InvoiceRecord,
        correction: str,
        issued_at: datetime,
        make: MakeNote,
        kind: str = CREDIT_NOTE,
    ) -> tuple[CreditNoteRecord, bool]:
        """The note of (invoice, correction): the one numbered before, or a new one, numbered
        next in the sequence with its record, made by `make` from what the invoice's notes
        credited so far; and whether it is new. An ADJUSTMENT `kind` is numbered the same
        way in its own sequence, and moves what stands of the invoice up."""
        return NUMBERING.call(
            partial(self._allocate, invoice, correction, issued_at, make, kind),
            VersionConflict,  # another note took the number, the key or the invoice: read again
            sleep=self._sleep,
        )

    def _allocate(
        self,
        invoice: InvoiceRecord,
        correction: str,
        issued_at: datetime,
        make: MakeNote,
        kind: str,
    ) -> tuple[CreditNoteRecord, bool]:
        key = credit_note_key(invoice.account_id, invoice.invoice_number, correction, kind)
        sequence_key = _SEQUENCES[kind]
        items = batch_get(
            self._client,
            self._table,
            [key, sequence_key, record_key(invoice.account_id, invoice.period)],
            "load credit note and sequence",
            sleep=self._sleep,
        )
        by_sk = {item["sk"]["S"]: item for item in items}
        if key["sk"]["S"] in by_sk:
            return credit_note_from_item(by_sk[key["sk"]["S"]]), False
        sequence = by_sk.get(sequence_key["sk"]["S"])
        last = int(sequence["last"]["N"]) if sequence else 0
        credited, version = _state(
            by_sk.get(record_key(invoice.account_id, invoice.period)["sk"]["S"])
        )
        note = make(credited, credit_note_number(last + 1, issued_at, kind))
        item = _item(key, last + 1, note)
        with translated("allocate a credit note number"):
            self._client.transact_write_items(
                TransactItems=[
                    {"Update": counter_update(self._table, sequence_key, last, last + 1)},
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Update": self._credited(invoice, credited.after(note), version)},
                ]
            )
        return credit_note_from_item(item), True

    def _credited(self, invoice: InvoiceRecord, after: Credited, version: int) -> dict[str, Any]:
        """The invoice record's `credited` moved on, only if still at `version` (and the
        invoice stored: a note corrects an issued invoice only)."""
        values: dict[str, Any] = {
            ":credited": {"S": after.to_text()},
            ":next": {"N": str(version + 1)},
            ":stored": {"S": "stored"},
        }
        condition = "#status = :stored AND "
        if version:
            condition += "credit_version = :version"
            values[":version"] = {"N": str(version)}
        else:
            condition += "attribute_not_exists(credit_version)"
        return {
            "TableName": self._table,
            "Key": record_key(invoice.account_id, invoice.period),
            "UpdateExpression": "SET credited = :credited, credit_version = :next",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values,
        }

    def mark_stored(self, record: CreditNoteRecord, json_key: str, pdf_key: str) -> bool:
        """Record the note's documents stored, not yet announced; False if another attempt
        recorded them first (it announces the note)."""
        try:
            with translated("mark credit note stored"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._record_key(record),
                    UpdateExpression="SET #status = :stored, json_key = :json, pdf_key = :pdf",
                    ConditionExpression="#status = :numbered",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":stored": {"S": "stored"},
                        ":numbered": {"S": "numbered"},
                        ":json": {"S": json_key},
                        ":pdf": {"S": pdf_key},
                    },
                )
        except VersionConflict:
            return False
        return True

    def claim_announcement(
        self, record: CreditNoteRecord, token: str, at: datetime, expired_before: datetime
    ) -> bool:
        """Claim the right to publish the note's CreditNoteIssued: True if this attempt
        (`token`) holds it, because none did, it did already, or the one that did claimed
        it before `expired_before` (it stopped: its lease is over). So two attempts at once
        publish one event, and one that stopped is taken over once its lease is over."""
        try:
            with translated("claim credit note announcement"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._record_key(record),
                    UpdateExpression="SET announce_token = :token, announce_at = :at",
                    ConditionExpression="#status = :stored AND announced = :false AND ("
                    "attribute_not_exists(announce_token) OR announce_token = :token OR "
                    "announce_at <= :expired)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":token": {"S": token},
                        ":at": {"S": at.isoformat()},
                        ":expired": {"S": expired_before.isoformat()},
                        ":false": {"BOOL": False},
                        ":stored": {"S": "stored"},
                    },
                )
        except VersionConflict:
            return False
        return True

    def release_announcement(self, record: CreditNoteRecord, token: str) -> None:
        """Give back the claim `token` holds after the bus refused the event (it certainly
        did not take it), so the next attempt publishes at once instead of after the
        lease. Only that claim: a late release never removes a claim another attempt
        took since. A release that does not land leaves the lease to run out."""
        try:
            with translated("release credit note announcement"):
                self._client.update_item(
                    TableName=self._table,
                    Key=self._record_key(record),
                    UpdateExpression="REMOVE announce_token, announce_at",
                    ConditionExpression="announce_token = :token AND announced = :false",
                    ExpressionAttributeValues={
                        ":token": {"S": token},
                        ":false": {"BOOL": False},
                    },
                )
        except StoreError:
            pass

    def reload(self, record: CreditNoteRecord) -> CreditNoteRecord:
        found = batch_get(
            self._client,
            self._table,
            [self._record_key(record)],
            "load credit note",
            sleep=self._sleep,
        )
        return credit_note_from_item(found[0])

    def all_notes(self, kind: str = CREDIT_NOTE) -> list[CreditNoteRecord]:
        """Every credit note (or, of kind ADJUSTMENT, adjustment invoice), of every account
        (a Scan: for the command line's list and search, operators' use only)."""
        scan: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": _PREFIXES[kind]}},
            "ConsistentRead": True,
        }
        notes: list[CreditNoteRecord] = []
        while True:
            with translated("list credit notes"):
                response = self._client.scan(**scan)
            notes.extend(credit_note_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return notes
            scan["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _state(item: dict[str, Any] | None) -> tuple[Credited, int]:
    """An invoice record's `credited` and its version (0: no note yet)."""
    if item is None:
        return Credited(), 0
    text = item.get("credited", {}).get("S")
    return Credited.from_text(text), int(item.get("credit_version", {"N": "0"})["N"])


def _item(key: dict[str, Any], sequence: int, note: CreditNote) -> dict[str, Any]:
    return {
        **key,
        "sequence": {"N": str(sequence)},
        NUMBER_KEYS[note.kind]: {"S": note.number},
        "period": {"S": note.invoice.period},
        "issued_at": {"S": utc_text(note.issued_at)},
        "status": {"S": "numbered"},
        "announced": {"BOOL": False},
        "currency": {"S": note.invoice.currency},
        "subtotal": {"S": str(note.subtotal)},
        "tax": {"S": str(note.tax)},
        "total": {"S": str(note.total)},
        "document": {"S": note.to_bytes().decode()},
    }
