"""An invoice's one email, as its record tracks it: claimed (`sending`) before it is sent,
then `sent`, `undelivered` or `unknown`; SES's bounces and complaints after; claimed
again for an operator's resend.

Every change is conditional on the state it moves from, and a claim carries its attempt's
token, so the SDK retrying a write whose answer was lost finds its own work, and no
attempt undoes another's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.store.errors import VersionConflict, translated
from billing.store.invoice_records import (
    Claim,
    InvoiceRecord,
    InvoiceTable,
    record_from_item,
    record_key,
)


class InvoiceEmails(InvoiceTable):
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
                    Key=self._record_key(record),
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
                    Key=self._record_key(record),
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
                    Key=self._record_key(record),
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
                Key=self._record_key(record),
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
                    Key=self._record_key(record),
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
                    Key=self._record_key(record),
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
        return self._record_delivery(record_key(account_id, period), message_id)

    def record_feedback(
        self, account_id: str, period: str, message_id: str, status: str, reason: str
    ) -> InvoiceRecord | None:
        """Record SES's bounce or complaint (`status`) of the invoice's email whose SES id is
        `message_id`, opening the failure outbox; the record as it is then, or None if its
        last email is another one (resent since) or there is no such invoice. Recording the
        same feedback twice (an event delivered again) finds it recorded."""
        return self._record_feedback(record_key(account_id, period), message_id, status, reason)

    def _record_delivery(self, key: dict[str, dict[str, str]], message_id: str) -> bool:
        """record_delivery on the item `key` names (an invoice's, or a credit note's)."""
        try:
            with translated("record invoice email delivery"):
                self._client.update_item(
                    TableName=self._table,
                    Key=key,
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

    def _record_feedback(
        self, key: dict[str, dict[str, str]], message_id: str, status: str, reason: str
    ) -> InvoiceRecord | None:
        """record_feedback on the item `key` names (an invoice's, or a credit note's)."""
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
            found = self._read_record(key)
            recorded = (
                found is not None
                and found.message_id == message_id
                and found.email_status == status
            )
            return found if recorded else None
        return self._from_item(response["Attributes"])

    def _read_record(self, key: dict[str, dict[str, str]]) -> InvoiceRecord | None:
        with translated("load invoice record"):
            response = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        return self._from_item(response["Item"]) if "Item" in response else None

    def _from_item(self, item: dict[str, Any]) -> InvoiceRecord:
        """The record an item of this store's kind holds (a credit note store's: a note's)."""
        return record_from_item(item)

    def mark_failure_announced(self, record: InvoiceRecord) -> None:
        """Record that the bus took the invoice's InvoiceDeliveryFailed event."""
        with translated("mark invoice delivery failure announced"):
            self._client.update_item(
                TableName=self._table,
                Key=self._record_key(record),
                UpdateExpression="SET failure_announced = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
