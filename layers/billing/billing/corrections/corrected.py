"""The corrected invoice a `{"correct": ...}` request carries (`billing rerate --apply` on
an invoiced period): read at the edge, checked against the stored invoice it corrects, and
turned into the `Invoice` that `billing.core.corrections.split_correction` splits.

What is checked, and why:
- **Same document.** The account, period, currency and invoice number are the stored
  invoice's: a correction is of one invoice, never a second invoice for the period.
- **Totals that add up under the stored tax rate.** The subtotal is the sum of the lines
  and the tax round(subtotal × the stored account's rate): the rate is the account's,
  never the request's, and a document whose figures disagree is refused, not repaired.

**The correction key** (`correction_key`) is `rerate:` and the first 16 hex digits of the
SHA-256 of the corrected document's lines (what identifies each, its quantity and amount)
and totals, and of the documents the invoice stood after when it was re-rated (`after`), as
canonical JSON. The same correction applied again has the same key, so its documents are
found, not issued again; a later, different correction has its own, and so has the same
corrected invoice reached again from elsewhere (a price typed back: a revert is issued,
never taken for the first correction's retry).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from billing.core.catalog import Account
from billing.core.credit_notes import IssuedInvoice, line_reference
from billing.core.invoice import Invoice, InvoiceLine, PhaseMark
from billing.core.money import Money, multiply
from billing.core.periods import Period
from billing.core.pricing import PriceStep
from billing.invoicing.steps import PeriodText, Shape

_Amount = Field(pattern=r"^-?\d+(\.\d+)?$")
_Price = Field(default=None, pattern=r"^\d+(\.\d+)?$")


class CorrectedStep(BaseModel):
    """One price step of a corrected line (its `details`): read for the unit price the
    correction documents print (`InvoiceLine.unit_price`), never for an amount."""

    model_config = ConfigDict(extra="ignore")

    description: str
    quantity: str = _Amount
    unit_price: str | None = _Price
    amount: str = _Amount

    def step(self) -> PriceStep:
        price = None if self.unit_price is None else Decimal(self.unit_price)
        return PriceStep(self.description, Decimal(self.quantity), price, Decimal(self.amount))


class CorrectedLine(BaseModel):
    """One line of the corrected invoice, as CONTRACT.md section 4 writes it (its unit is
    read past; its steps only for the unit price: a correction credits amounts)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    kind: Literal["usage", "fixed", "minimum", "discount"]
    description: str
    quantity: str = _Amount
    amount: str = _Amount
    meter: str | None = None
    discount: str | None = None
    filters: dict[str, list[str]] | None = None
    plan: str | None = None
    first: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    details: list[CorrectedStep] = Field(default_factory=list)


class CorrectedInvoice(BaseModel):
    """The corrected invoice document: the stored one's number, account, period and
    currency, its lines and totals."""

    model_config = ConfigDict(extra="ignore")

    invoice_number: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    period: PeriodText
    issued_at: datetime
    currency: str = Field(min_length=3, max_length=3)
    lines: list[CorrectedLine]
    subtotal: str = _Amount
    tax: str = _Amount
    total: str = _Amount


class CorrectRequest(Shape):
    account_id: str = Field(min_length=1)
    period: PeriodText
    reason: str
    corrected: CorrectedInvoice
    # The credit notes and adjustments the invoice stood after when it was re-rated, in
    # the order they were issued: the correction starts from there, or is refused.
    after: list[str] = Field(default_factory=list)


class CorrectInput(Shape):
    correct: CorrectRequest


def corrected_invoice(
    document: CorrectedInvoice, issued: IssuedInvoice, account: Account
) -> Invoice:
    """`document` as an Invoice taxed at the account's rate; ValueError saying what does
    not match the stored invoice `issued`, or which figure does not add up."""
    for name, mine, stored in (
        ("account", document.account_id, issued.account_id),
        ("period", document.period, issued.period),
        ("currency", document.currency, issued.currency),
        ("invoice number", document.invoice_number, issued.number),
    ):
        if mine != stored:
            raise ValueError(
                f"the corrected invoice's {name} is {mine!r}, the stored invoice's {stored!r}"
            )
    currency = issued.currency
    lines = tuple(_line(line, currency) for line in document.lines)
    subtotal = sum((line.amount for line in lines), Money.zero(currency)).rounded()
    issued_tax = Money(multiply(issued.subtotal.amount, account.tax_rate), currency).rounded()
    if issued_tax != issued.tax:
        # The invoice does not keep its rate; the account's must still give its tax, or the
        # correction would move the tax of the whole invoice, not its own change's.
        raise ValueError(
            f"the account's tax rate {account.tax_rate} does not give the invoice's tax "
            f"{issued.tax} (it changed since the invoice): not corrected by a re-rate"
        )
    tax = Money(multiply(subtotal.amount, account.tax_rate), currency).rounded()
    for name, stated, computed in (
        ("subtotal", document.subtotal, subtotal),
        ("tax", document.tax, tax),
        ("total", document.total, subtotal + tax),
    ):
        if Decimal(stated) != computed.amount:
            raise ValueError(
                f"the corrected invoice's {name} {stated} is not {computed} (the sum of its "
                f"lines, taxed at the account's rate {account.tax_rate})"
            )
    period = Period.parse(document.period)
    return Invoice(
        invoice_number=document.invoice_number,
        account_id=document.account_id,
        period=period,
        period_start=period.start(account.zone),
        period_end=period.end(account.zone),
        issued_at=document.issued_at,
        currency=currency,
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        tax_rate=account.tax_rate,
    )


def _line(line: CorrectedLine, currency: str) -> InvoiceLine:
    amount = Money(Decimal(line.amount), currency)
    if amount.rounded() != amount:
        raise ValueError(
            f"{line.description}: {line.amount} is finer than {currency}'s smallest unit"
        )
    if amount.amount < 0 and line.kind != "discount":
        raise ValueError(f"{line.description}: a {line.kind} line's amount is never negative")
    phase = None
    if line.plan is not None and line.first is not None and line.end is not None:
        phase = PhaseMark(line.plan, line.plan, line.first, line.end)
    return InvoiceLine(
        kind=line.kind,
        description=line.description,
        quantity=Decimal(line.quantity),
        amount=amount,
        meter=line.meter,
        filters=line.filters,
        discount=line.discount,
        phase=phase,
        steps=tuple(step.step() for step in line.details),
    )


def correction_key(corrected: Invoice, after: Sequence[str] = ()) -> str:
    """`rerate:` + a short SHA-256 of the corrected invoice's lines and totals, and of the
    documents the invoice stood after when it was re-rated (none: as issued)."""
    document = corrected.to_json()
    canonical: dict[str, Any] = {
        "lines": [_identified(line) for line in document["lines"]],
        **{name: document[name] for name in ("subtotal", "tax", "total")},
        **({"after": list(after)} if after else {}),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "rerate:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _identified(line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **line_reference(line),
        "description": line["description"],
        "quantity": line["quantity"],
        "amount": line["amount"],
    }
