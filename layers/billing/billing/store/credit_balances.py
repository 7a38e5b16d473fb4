"""What each of an account's prepaid credit grants has given, in the invoice table: one
item per account (`ACCOUNT#<id>` / `CREDITS`), moved only in the transaction that numbers
the invoices drawing on it (billing.store.invoice_numbers), conditional on the version read.

The draws an invoice takes are written on its record in that same transaction (`credits`),
so a retry, or a run that finds the record made by another, builds the invoice with
exactly those draws and draws nothing again; two runs numbering invoices of one account at
once race for this item, and the loser reads again (docs/table-design.md, Invoice table).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from billing.core.credits import Grant
from billing.core.invoice import CreditDraw
from billing.core.money import Money

BALANCE_SK: Final = "CREDITS"


def balance_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": BALANCE_SK}}


def is_balance(item: Mapping[str, Any]) -> bool:
    return bool(item["sk"]["S"] == BALANCE_SK)


@dataclass(frozen=True)
class CreditRequest:
    """What numbering needs to draw for one invoice: its account's grants and its total."""

    grants: tuple[Grant, ...]
    total: Money


@dataclass(frozen=True)
class CreditBalance:
    """What each grant of an account has given (by grant id), at a version (0: no item)."""

    account_id: str
    drawn: dict[str, Decimal] = field(default_factory=dict)
    version: int = 0


def balance_from_item(item: Mapping[str, Any]) -> CreditBalance:
    drawn = {gid: Decimal(amount) for gid, amount in json.loads(item["drawn"]["S"]).items()}
    return CreditBalance(item["pk"]["S"].removeprefix("ACCOUNT#"), drawn, int(item["v"]["N"]))


def balance_put(table: str, before: CreditBalance, drawn: Mapping[str, Decimal]) -> dict[str, Any]:
    """The transaction's write of the balance: `drawn` at the next version, only if the
    item is still at the version read (absent, when none was)."""
    put: dict[str, Any] = {
        "TableName": table,
        "Item": {
            **balance_key(before.account_id),
            "drawn": {"S": json.dumps({gid: str(amount) for gid, amount in sorted(drawn.items())})},
            "v": {"N": str(before.version + 1)},
        },
    }
    if before.version:
        put["ConditionExpression"] = "#v = :v"
        put["ExpressionAttributeNames"] = {"#v": "v"}
        put["ExpressionAttributeValues"] = {":v": {"N": str(before.version)}}
    else:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": put}


def draws_text(draws: tuple[CreditDraw, ...]) -> str:
    """The draws as the invoice record keeps them: the invoice's own `credits` JSON."""
    return json.dumps([draw.to_json() for draw in draws], separators=(",", ":"))


def draws_from_text(text: str | None, currency: str) -> tuple[CreditDraw, ...]:
    """The draws a record holds (none for a record made without any)."""
    if not text:
        return ()
    return tuple(
        CreditDraw(each["id"], Money(Decimal(each["amount"]), currency))
        for each in json.loads(text)
    )
