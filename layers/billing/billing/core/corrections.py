"""What a correction of an issued invoice credits, and what it leaves to an adjustment
invoice (docs/invoicing.md, *Credit notes*).

**The tax rule.** An invoice's tax is round(subtotal × rate), rounded once on the sum of
its lines. A credit note's tax is the difference of two such roundings: round(subtotal
before it × rate) − round(subtotal after it × rate), never round(credited × rate). So
original total − credit note total == the corrected invoice's total, to the cent, tax
included: the credit note takes the invoice from one invoice's totals to another's. "Before
it" is the invoice less the credit notes already issued against it: their taxes were taken
the same way, so the invoice's tax as it stands is always round(its subtotal × rate). A
void credits what stands: every line's amount less what earlier notes credited, and the
tax as it stands, so original total − every note's total == 0.

**Which changes go where** (`split_correction`): a line is matched to its corrected self
by what it is (kind, meter, filters, discount, phase, description). When charges (usage
and fixed lines) moved one way only, or none moved, the correction is one document of the
net: a credit note when the invoice goes down, an adjustment invoice when it goes up, each
line's move on it (a derived line, a minimum commitment's top-up or a discount, moving the
other way included), and no document at all when the derived lines take up every move
(usage up 10 under a commitment whose top-up shrinks by 10: the total stands, nothing is
owed either way). When charges moved both ways (a price moved from one filter to
another), the decreases are credited, with the derived lines whichever way they moved
(usage down 60 under a commitment that now tops it up by 10 is one credit of 50: a line of
60 and one of −10), and the increases charged by an adjustment invoice: each line's charge
changed, and the documents say so. Should the derived lines outweigh the decreases, the
credit note is left empty and everything is an increase. Should the credit be more than
the invoice's subtotal as it stands (a fixed discount the invoice stood after: EU 100.00
moved to US under a discount of 80.00), a credit note would take the invoice below zero
and credit more tax than it carries: the correction is then one document of the net, as
when charges move one way (none when the net is 0). So a credit line's amount is
positive except a line that grew, which is negative and says so; an adjustment's line is
positive except one that went down. A line only the corrected invoice has (a minimum now
owed) has no invoice line.

**Prepaid credits drawn** (CONTRACT.md 2a) are a prepayment of the invoice, not part of
its total: a credit note never changes them and returns nothing to a grant. It credits
the total; what the customer is owed back (a refund, or a grant by hand) is the finance
team's decision, and the credit note states the total it leaves the invoice at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from billing.core.credit_notes import (
    ADJUSTMENT,
    DERIVED_KINDS,
    Credited,
    CreditLine,
    CreditNote,
    IssuedInvoice,
    IssuedLine,
    LineCredited,
    line_identity,
    line_reference,
    remaining_total,
)
from billing.core.invoice import Invoice, InvoiceLine
from billing.core.money import Money, multiply, subtract


@dataclass(frozen=True, slots=True)
class Increase:
    """A line that went up: for an adjustment invoice (not a credit note). `invoice_line`
    is the issued line it raises, None for a charge line the invoice did not have."""

    invoice_line: IssuedLine | None
    line: InvoiceLine | None  # the corrected line (None: a derived line that went away)
    quantity: Decimal
    amount: Money
    identity: str = ""  # neither: a line an earlier correction added, by its line_identity


@dataclass(frozen=True, slots=True)
class Split:
    """A correction split in two: what a credit note credits (its lines and tax) and what
    an adjustment invoice would charge (its lines and tax). original total − credited
    total + increased total == corrected total, to the cent."""

    credits: tuple[CreditLine, ...]
    credit_tax: Money
    increases: tuple[Increase, ...]
    increase_tax: Money

    @property
    def credit_subtotal(self) -> Money:
        return _sum((line.amount for line in self.credits), self.credit_tax.currency)


@dataclass(frozen=True, slots=True)
class _Change:
    """One line's move from the invoice as it stands to the corrected invoice: `amount`
    and `quantity` are what went down (negative when they went up)."""

    issued: IssuedLine | None
    line: InvoiceLine | None
    quantity: Decimal
    amount: Money
    identity: str = ""  # a line no invoice line is: its line_identity

    @property
    def kind(self) -> str:
        return str(self._reference()["kind"])

    def _reference(self) -> dict[str, Any]:
        """The line's reference and description: the issued line's, else the corrected
        line's, else (an added line gone again) what its identity says."""
        if self.issued is not None:
            return {**self.issued.reference, "description": self.issued.description}
        if self.line is not None:
            json_line = self.line.to_json()
            return {**line_reference(json_line), "description": json_line["description"]}
        found: dict[str, Any] = json.loads(self.identity)
        return found

    @property
    def unit_price(self) -> Decimal | None:
        """The line's price per unit after the change: the corrected line's, or (a line
        that goes away) the issued line's."""
        if self.line is not None:
            return self.line.unit_price
        return None if self.issued is None else self.issued.unit_price

    def credit(self) -> CreditLine:
        reference = self._reference()
        description = reference.pop("description")
        kind = reference["kind"]
        return CreditLine(
            self.issued, kind, description, self.quantity, self.amount, reference, self.unit_price
        )

    def increase(self) -> Increase:
        zero = Money.zero(self.amount.currency)
        return Increase(self.issued, self.line, -self.quantity, zero - self.amount, self.identity)


def void_lines(invoice: IssuedInvoice, credited: Credited) -> tuple[tuple[CreditLine, ...], Money]:
    """A void's lines and tax: each invoice line's amount and quantity not credited yet
    (lines with neither left out), each line an earlier correction added (credited back),
    and the tax as it stands."""
    currency = invoice.currency
    lines = []
    for line in invoice.lines:
        taken = credited.line(line.index)
        amount = subtract(line.amount.amount, taken.amount)
        quantity = subtract(line.quantity, taken.quantity)
        if amount or quantity:
            lines.append(
                CreditLine(
                    line, line.kind, line.description, quantity, Money(amount, currency),
                    line.reference, _price_as_issued(line, taken),
                )
            )  # fmt: skip
    for identity, taken in credited.added.items():
        if taken.amount or taken.quantity:
            change = _Change(None, None, -taken.quantity, Money(-taken.amount, currency), identity)
            lines.append(change.credit())
    return tuple(lines), Money(subtract(invoice.tax.amount, credited.tax), currency)


def _price_as_issued(line: IssuedLine, taken: LineCredited) -> Decimal | None:
    """A voided line's unit price: the invoice's, while no correction moved the line (the
    documents do not record the price a re-priced line stands at: none, then)."""
    return line.unit_price if not (taken.amount or taken.quantity) else None


def void_note(
    invoice: IssuedInvoice, credited: Credited, *, number: str, reason: str, issued_at: datetime
) -> CreditNote:
    """The credit note that voids what stands of `invoice`: it leaves the invoice at 0."""
    lines, tax = void_lines(invoice, credited)
    subtotal = _sum((line.amount for line in lines), invoice.currency)
    return CreditNote(
        number=number,
        invoice=invoice,
        correction="void",
        reason=reason,
        issued_at=issued_at,
        lines=lines,
        subtotal=subtotal,
        tax=tax,
        invoice_total_after=remaining_total(invoice, credited) - subtotal - tax,
    )


class NothingToCredit(ValueError):
    """The correction credits nothing: the invoice as it stands is not above the corrected
    one on any line a credit note takes (it is unchanged, or only went up)."""


def correction_note(
    invoice: IssuedInvoice,
    credited: Credited,
    corrected: Invoice,
    *,
    number: str,
    correction: str,
    reason: str,
    issued_at: datetime,
) -> CreditNote:
    """The credit note of the correction from `invoice` as it stands to `corrected`: the
    split's credit lines and tax (its increases are an adjustment's). NothingToCredit when
    the split has no credit line."""
    split = split_correction(invoice, credited, corrected)
    if not split.credits:
        raise NothingToCredit(f"nothing of {invoice.number} to credit")
    subtotal = split.credit_subtotal
    return CreditNote(
        number=number,
        invoice=invoice,
        correction=correction,
        reason=reason,
        issued_at=issued_at,
        lines=split.credits,
        subtotal=subtotal,
        tax=split.credit_tax,
        invoice_total_after=remaining_total(invoice, credited) - subtotal - split.credit_tax,
    )


def adjustment_note(
    invoice: IssuedInvoice,
    credited: Credited,
    corrected: Invoice,
    *,
    number: str,
    correction: str,
    reason: str,
    issued_at: datetime,
) -> CreditNote:
    """The adjustment invoice of the correction from `invoice` as it stands to `corrected`:
    the split's increases and their tax, charged. Made after the correction's credit note
    (which `credited` then holds), so the split has no credit left; NothingToCredit when it
    has no increase either."""
    split = split_correction(invoice, credited, corrected)
    if split.credits:
        raise ValueError("a correction's credit note is issued before its adjustment")
    if not split.increases:
        raise NothingToCredit(f"nothing of {invoice.number} to adjust")
    currency = invoice.currency
    lines = tuple(_charged(increase) for increase in split.increases)
    subtotal = _sum((line.amount for line in lines), currency)
    return CreditNote(
        number=number,
        invoice=invoice,
        correction=correction,
        reason=reason,
        issued_at=issued_at,
        lines=lines,
        subtotal=subtotal,
        tax=split.increase_tax,
        invoice_total_after=remaining_total(invoice, credited) + subtotal + split.increase_tax,
        kind=ADJUSTMENT,
    )


def _charged(increase: Increase) -> CreditLine:
    """An increase as an adjustment's line: what it charges on top of the invoice line it
    raises (`invoice_line`), or of nothing (a line only the corrected invoice has)."""
    if increase.invoice_line is not None:
        issued = increase.invoice_line
        reference, description = dict(issued.reference), issued.description
    elif increase.line is not None:
        json_line = increase.line.to_json()
        reference, description = line_reference(json_line), json_line["description"]
    elif increase.identity:  # a line an earlier correction added, gone again
        reference = json.loads(increase.identity)
        description = reference.pop("description")
    else:
        raise ValueError("an increase names neither an invoice line nor a corrected line")
    kind = str(reference["kind"])
    unit_price = increase.line.unit_price if increase.line is not None else None
    return CreditLine(
        increase.invoice_line,
        kind,
        description,
        increase.quantity,
        increase.amount,
        reference,
        unit_price,
    )


def split_correction(invoice: IssuedInvoice, credited: Credited, corrected: Invoice) -> Split:
    """The correction from `invoice` as it stands (less `credited`) to `corrected` (the
    same account and period, built again), split into a credit note's lines and an
    adjustment invoice's (see the module's rules)."""
    currency = invoice.currency
    changes = [
        change
        for change in _changes(invoice, credited, corrected)
        if change.amount.amount or change.quantity
    ]
    net = _sum((c.amount for c in changes), currency).amount  # above 0: the invoice goes down
    charges = [c for c in changes if c.kind not in DERIVED_KINDS]
    standing = subtract(invoice.subtotal.amount, credited.subtotal(currency).amount)
    credited_side = changes if net > 0 else []  # one document of the net
    if any(c.amount.amount > 0 for c in charges) and any(c.amount.amount < 0 for c in charges):
        # Charges moved both ways: the decreases (with the derived lines) are credited and
        # the increases charged, unless the derived lines outweigh the decreases, or the
        # credit would take the invoice below zero (a discount it stood after): then one
        # document of the net, as when charges move one way.
        both = [c for c in changes if c.amount.amount > 0 or c.kind in DERIVED_KINDS]
        credit = _sum((c.amount for c in both), currency).amount
        if credit <= 0:
            credited_side = []
        elif credit <= standing:
            credited_side = both
    increased = [c for c in changes if c not in credited_side and c.amount.amount]
    if not credited_side and not net:
        increased = []  # the derived lines took up every move: the total stands, none owed
    credits = tuple(change.credit() for change in credited_side)
    increases = tuple(change.increase() for change in increased)
    return _taxed(invoice, credited, corrected, credits, increases)


def _changes(invoice: IssuedInvoice, credited: Credited, corrected: Invoice) -> Iterator[_Change]:
    """Each issued line's change (against the corrected line that is the same line, or
    none), then each line no issued line is: those the corrected invoice adds, and those an
    earlier credit note added (what it credited on them is where they stand)."""
    currency = invoice.currency
    waiting: dict[str, list[InvoiceLine]] = {}
    for each in corrected.lines:
        waiting.setdefault(line_identity(each.to_json()), []).append(each)
    for issued in invoice.lines:
        same = waiting.get(line_identity({**issued.reference, "description": issued.description}))
        taken = credited.line(issued.index)
        standing = (
            subtract(issued.quantity, taken.quantity),
            Money(subtract(issued.amount.amount, taken.amount), currency),
        )
        yield _change(issued, same.pop(0) if same else None, standing)
    for identity in dict.fromkeys([*waiting, *credited.added]):
        taken = credited.added_line(identity)
        standing = (-taken.quantity, Money(-taken.amount, currency))  # credited negative
        alike: list[InvoiceLine | None] = [*waiting.get(identity, [])] or [None]
        for line in alike:  # lines alike beyond the first start from nothing
            yield _change(None, line, standing, identity)
            standing = (Decimal(0), Money.zero(currency))


def _change(
    issued: IssuedLine | None,
    line: InvoiceLine | None,
    standing: tuple[Decimal, Money],
    identity: str = "",
) -> _Change:
    quantity, amount = standing
    if line is not None:
        quantity, amount = subtract(quantity, line.quantity), amount - line.amount
    return _Change(issued, line, quantity, amount, identity)


def _taxed(
    invoice: IssuedInvoice,
    credited: Credited,
    corrected: Invoice,
    credits: tuple[CreditLine, ...],
    increases: tuple[Increase, ...],
) -> Split:
    """The two sides' taxes by the module's rule: the credit note from the tax as it stands
    to round(subtotal after it × rate), the adjustment from there to the corrected tax."""
    currency = invoice.currency
    standing_subtotal = invoice.subtotal - credited.subtotal(currency)
    standing_tax = Money(subtract(invoice.tax.amount, credited.tax), currency)
    after_credit = standing_subtotal - _sum((c.amount for c in credits), currency)
    tax_after_credit = Money(multiply(after_credit.amount, corrected.tax_rate), currency).rounded()
    credit_tax = standing_tax - tax_after_credit if credits else Money.zero(currency).rounded()
    base = tax_after_credit if credits else standing_tax
    return Split(credits, credit_tax, increases, corrected.tax - base)


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    return sum(amounts, Money.zero(currency).rounded())
