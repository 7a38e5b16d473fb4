"""Invoice records and the issuer's gap-free invoice-number sequence, in DynamoDB.

A number is allocated in the same transaction that creates the invoice's record, so every
number that exists belongs to exactly one (account, period), and every (account, period)
has at most one number. A record is `numbered` until its documents are stored, then
`stored`; its email moves from `sending` to `sent` or `undelivered`.

`announced` is the outbox flag: false when the record is marked stored, true once the bus
accepted the invoice's InvoiceIssued event. A record stored before the flag existed has
none and counts as announced (it was announced, or lost, when it was stored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, NamedTuple

from billing.store.batches import batch_get
from billing.store.errors import VersionConflict, translated

SEQUENCE_KEY: Final = {"pk": {"S": "ISSUER"}, "sk": {"S": "SEQUENCE"}}
_ALLOCATION_ATTEMPTS: Final = 20
_TRANSACTION_MAX: Final = 100  # DynamoDB's limit of items in one transaction


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

    @property
    def stored(self) -> bool:
        return self.status == "stored"

    @property
    def finished(self) -> bool:
        """Stored, announced and emailed (or its one email tried) with any delivery failure
        announced: nothing left to do. A claim still `sending` is not finished: its holder
        may have stopped (see InvoiceRun._expire_claim)."""
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


def _record(item: dict[str, Any]) -> InvoiceRecord:
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
        total=text("total"),
        currency=text("currency"),
        json_key=text("json_key"),
        pdf_key=text("pdf_key"),
        email_status=text("email_status"),
        message_id=text("message_id"),
        subtotal=text("subtotal"),
        tax=text("tax"),
        announced=bool(item.get("announced", {"BOOL": True})["BOOL"]),
        email_claimed_at=text("email_claimed_at"),
        email_token=text("email_token"),
        email_reason=text("email_reason"),
        failure_announced=bool(item.get("failure_announced", {"BOOL": True})["BOOL"]),
    )


class InvoiceStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, account_id: str, period: str) -> InvoiceRecord | None:
        with translated("load invoice record"):
            response = self._client.get_item(
                TableName=self._table, Key=record_key(account_id, period), ConsistentRead=True
            )
        return _record(response["Item"]) if "Item" in response else None

    def for_account(self, account_id: str) -> list[InvoiceRecord]:
        """The account's invoice records, oldest period first (one Query on its key)."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :invoice)",
            "ExpressionAttributeValues": {
                ":pk": record_key(account_id, "")["pk"],
                ":invoice": {"S": "INVOICE#"},
            },
            "ConsistentRead": True,
        }
        records: list[InvoiceRecord] = []
        while True:
            with translated("list invoice records"):
                response = self._client.query(**query)
            records.extend(_record(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InvoiceRecord]:
        """The records of these (account, period) pairs that exist, read in batches."""
        unique = list(dict.fromkeys(keys))
        items = batch_get(
            self._client, self._table, [record_key(*key) for key in unique], "load invoice records"
        )
        records = (_record(item) for item in items)
        return {(record.account_id, record.period): record for record in records}

    def all_records(self) -> list[InvoiceRecord]:
        """Every invoice record (for the run's list of what is due or unfinished)."""
        records: list[InvoiceRecord] = []
        scan: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(sk, :invoice)",
            "ExpressionAttributeValues": {":invoice": {"S": "INVOICE#"}},
            "ConsistentRead": True,
        }
        while True:
            with translated("list invoice records"):
                response = self._client.scan(**scan)
            records.extend(_record(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            scan["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def number(
        self,
        keys: list[tuple[str, str]],
        issued_at: datetime,
        format_number: Callable[[int, datetime], str],
    ) -> dict[tuple[str, str], InvoiceRecord]:
        """The records of these (account, period) pairs, numbered: existing ones as they
        are, new ones with the next numbers of the sequence, allocated in one transaction
        with their records (at most 99 pairs at a time)."""
        if len(keys) > _TRANSACTION_MAX - 1:
            raise ValueError(f"number at most {_TRANSACTION_MAX - 1} invoices at a time")
        keys = list(dict.fromkeys(keys))
        for _ in range(_ALLOCATION_ATTEMPTS):
            # The records and the sequence in one read (at most 100 keys: one call).
            found = batch_get(
                self._client,
                self._table,
                [*(record_key(*key) for key in keys), SEQUENCE_KEY],
                "load invoice records and sequence",
            )
            sequence = [item for item in found if item["pk"] == SEQUENCE_KEY["pk"]]
            last = int(sequence[0]["last"]["N"]) if sequence else 0
            records: dict[tuple[str, str], InvoiceRecord] = {
                (record.account_id, record.period): record
                for record in (_record(item) for item in found if item["pk"] != SEQUENCE_KEY["pk"])
            }
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
            counter: dict[str, Any] = {
                "TableName": self._table,
                "Key": SEQUENCE_KEY,
                "UpdateExpression": "SET #last = :next",
                "ExpressionAttributeNames": {"#last": "last"},
                "ExpressionAttributeValues": {":next": {"N": str(last + len(new))}},
            }
            if last:
                counter["ConditionExpression"] = "#last = :last"
                counter["ExpressionAttributeValues"][":last"] = {"N": str(last)}
            else:
                counter["ConditionExpression"] = "attribute_not_exists(#last)"
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
            try:
                with translated("allocate invoice numbers"):
                    self._client.transact_write_items(TransactItems=[{"Update": counter}, *puts])
            except VersionConflict:
                continue  # another run took numbers or made records: read again
            records.update({key: _record(item) for key, item in items.items()})
            return records
        raise VersionConflict("allocate invoice numbers: lost every race")

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

    def mark_announced(self, record: InvoiceRecord) -> bool:
        """Record that the bus accepted the invoice's InvoiceIssued event; False if a write
        had recorded it already (another run's, or an earlier answer lost on the way)."""
        try:
            with translated("mark invoice announced"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
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

    def claim_email(
        self, record: InvoiceRecord, at: datetime, token: str, *, announced: bool = False
    ) -> Claim:
        """Claim the right to send the invoice's one email; not claimed if it was claimed
        before. `token` names this attempt, so the SDK retrying a claim whose answer was
        lost still finds it its own.

        With `announced` (the bus accepted InvoiceIssued just before), the claim also
        records the announcement: the outbox flag rides on a write made anyway."""
        update = "SET email_status = :sending, email_claimed_at = :at, email_token = :token"
        values: dict[str, dict[str, Any]] = {
            ":sending": {"S": "sending"},
            ":at": {"S": at.isoformat()},
            ":token": {"S": token},
        }
        if announced:
            update += ", announced = :true"
            values[":true"] = {"BOOL": True}
        try:
            with translated("claim invoice email"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
                    UpdateExpression=update,
                    ConditionExpression="attribute_not_exists(email_status) OR "
                    "(email_status = :sending AND email_token = :token)",
                    ExpressionAttributeValues=values,
                    # The item as it was says whether the announcement was recorded before
                    # (the whole of it: UPDATED_OLD may leave out a value the write repeats).
                    ReturnValues="ALL_OLD",
                )
        except VersionConflict:
            return Claim(claimed=False, announced=False)
        old = response.get("Attributes", {})
        # Ours if no write recorded it before, or the write that did was this very claim
        # (the SDK retried it after its answer was lost).
        first = not old.get("announced", {}).get("BOOL", False)
        retried = old.get("email_token", {}).get("S") == token
        return Claim(claimed=True, announced=announced and (first or retried))

    def release_email(self, record: InvoiceRecord, token: str) -> None:
        """Give the claim back after a send that certainly did not happen (to retry it).
        Only the claim `token` names: a late retry of this release must not remove a claim
        another sender took since, and may be sending under."""
        try:
            with translated("release invoice email"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
                    UpdateExpression="REMOVE email_status, email_claimed_at, email_token",
                    ConditionExpression="email_status = :sending AND email_token = :token",
                    ExpressionAttributeValues={
                        ":sending": {"S": "sending"},
                        ":token": {"S": token},
                    },
                )
        except VersionConflict:
            pass  # not ours any more: released already (a lost answer), or another's claim

    def restore_email(self, record: InvoiceRecord, token: str) -> None:
        """Put back the email state `record` holds in place of the claim `token` names: an
        operator's resend that certainly did not leave changes nothing (a `sent` invoice
        stays sent, and no run emails it again)."""
        sets, removes = [], []
        values: dict[str, dict[str, Any]] = {":sending": {"S": "sending"}, ":token": {"S": token}}
        for name, value in (
            ("email_status", record.email_status),
            ("email_token", record.email_token),
            ("email_claimed_at", record.email_claimed_at),
        ):
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = {"S": value}
        update = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        try:
            with translated("restore invoice email"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
                    UpdateExpression=update,
                    ConditionExpression="email_status = :sending AND email_token = :token",
                    ExpressionAttributeValues=values,
                )
        except VersionConflict:
            pass  # not ours any more: restored already (a lost answer), or another's claim

    def email_result(
        self, record: InvoiceRecord, status: str, *, message_id: str = "", reason: str = ""
    ) -> None:
        """Record what became of the email. `undelivered` also opens InvoiceDeliveryFailed's
        outbox (`failure_announced = false`), in the same write."""
        update = "SET email_status = :status, message_id = :id, email_reason = :reason"
        values: dict[str, dict[str, Any]] = {
            ":status": {"S": status},
            ":id": {"S": message_id},
            ":reason": {"S": reason},
        }
        if status == "undelivered":
            update += ", failure_announced = :false"
            values[":false"] = {"BOOL": False}
        with translated("record invoice email"):
            self._client.update_item(
                TableName=self._table,
                Key=record_key(record.account_id, record.period),
                UpdateExpression=update,
                ExpressionAttributeValues=values,
            )

    def expire_claim(self, record: InvoiceRecord, reason: str) -> bool:
        """Record the email `unknown` in place of the claim `record` holds (an expired one);
        False if the claim changed since it was read (its holder recorded a result, or
        another run expired it first)."""
        condition = "email_status = :sending AND "
        values: dict[str, dict[str, Any]] = {
            ":sending": {"S": "sending"},
            ":unknown": {"S": "unknown"},
            ":reason": {"S": reason},
        }
        if record.email_token is None:
            condition += "attribute_not_exists(email_token)"
        else:
            condition += "email_token = :token"
            values[":token"] = {"S": record.email_token}
        try:
            with translated("expire invoice email claim"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
                    UpdateExpression="SET email_status = :unknown, email_reason = :reason",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except VersionConflict:
            return False
        return True

    def reclaim_email(self, record: InvoiceRecord, at: datetime, token: str) -> bool:
        """Claim the invoice's email again for an operator's resend, if its email is still
        as `record` says (whatever that is); False if it changed since it was read. A
        pending InvoiceDeliveryFailed of the email it replaces is dropped with it."""
        values: dict[str, dict[str, Any]] = {
            ":sending": {"S": "sending"},
            ":at": {"S": at.isoformat()},
            ":token": {"S": token},
            ":true": {"BOOL": True},
            ":one": {"N": "1"},
        }
        if record.email_status is None:
            condition = "attribute_not_exists(email_status)"
        else:
            condition = "email_status = :old"
            values[":old"] = {"S": record.email_status}
            if record.email_token is None:
                condition += " AND attribute_not_exists(email_token)"
            else:
                condition += " AND email_token = :old_token"
                values[":old_token"] = {"S": record.email_token}
        try:
            with translated("claim invoice email again"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(record.account_id, record.period),
                    UpdateExpression="SET email_status = :sending, email_claimed_at = :at, "
                    "email_token = :token, failure_announced = :true ADD email_resends :one",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except VersionConflict:
            return False
        return True

    def record_delivery(self, account_id: str, period: str, message_id: str) -> bool:
        """Record that the invoice's email, whose send was not recorded (`sending` from a
        step that stopped, or `unknown`), was delivered; False if the record already said
        what became of it."""
        try:
            with translated("record invoice email delivery"):
                self._client.update_item(
                    TableName=self._table,
                    Key=record_key(account_id, period),
                    UpdateExpression="SET email_status = :sent, message_id = :id "
                    "REMOVE email_reason",
                    ConditionExpression="email_status IN (:sending, :unknown)",
                    ExpressionAttributeValues={
                        ":sent": {"S": "sent"},
                        ":id": {"S": message_id},
                        ":sending": {"S": "sending"},
                        ":unknown": {"S": "unknown"},
                    },
                )
        except VersionConflict:
            return False
        return True

    def record_feedback(
        self, account_id: str, period: str, message_id: str, status: str, reason: str
    ) -> InvoiceRecord | None:
        """Record SES's bounce or complaint (`status`) of the invoice's email whose SES id is
        `message_id`, opening the failure outbox; the record as it is then, or None if its
        last email is another one (resent since) or there is no such invoice. Recording the
        same feedback twice (an event delivered again) finds it recorded."""
        key = record_key(account_id, period)
        try:
            with translated("record invoice email feedback"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET email_status = :status, email_reason = :reason, "
                    "failure_announced = :false",
                    ConditionExpression="message_id = :id AND email_status = :sent",
                    ExpressionAttributeValues={
                        ":status": {"S": status},
                        ":reason": {"S": reason},
                        ":false": {"BOOL": False},
                        ":id": {"S": message_id},
                        ":sent": {"S": "sent"},
                    },
                    ReturnValues="ALL_NEW",
                )
        except VersionConflict:
            found = self.get(account_id, period)
            recorded = (
                found is not None
                and found.message_id == message_id
                and found.email_status == status
            )
            return found if recorded else None
        return _record(response["Attributes"])

    def mark_failure_announced(self, record: InvoiceRecord) -> None:
        """Record that the bus took the invoice's InvoiceDeliveryFailed event."""
        with translated("mark invoice delivery failure announced"):
            self._client.update_item(
                TableName=self._table,
                Key=record_key(record.account_id, record.period),
                UpdateExpression="SET failure_announced = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
