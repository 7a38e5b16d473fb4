"""Credit notes: the document that corrects one issued invoice (docs/invoicing.md, *Credit
notes*). An issued invoice is never edited; what it over-charged is credited by a credit
note of its own, numbered in its own gap-free sequence (`CN-<year>-<sequence>`).

Here: the issued invoice as its stored JSON says (`IssuedInvoice`), what earlier credit
notes took from it (`Credited`), and the credit note (`CreditNote`, its lines each naming
the invoice line it corrects). What a correction credits is `billing.core.corrections`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from billing.core.invoice import utc_text
from billing.core.money import Money, plain, plain_quantity, subtract

# The keys of an invoice line that say which line it is (CONTRACT.md 4 and 2a); a credit
# line repeats them, so the line it corrects reads without the invoice at hand.
LINE_REFERENCE_KEYS: Final = ("kind", "discount", "meter", "filters", "plan", "from", "to")
# Lines derived from the others (a minimum commitment's top-up, a discount): a correction
# moves them with the credit note, whichever way they change (billing.core.corrections).
DERIVED_KINDS: Final = frozenset({"minimum", "discount"})

# The two kinds of correction document: a credit note (what an invoice over-charged) and
# an adjustment invoice (what it under-charged). Each has its own gap-free sequence, its
# number's prefix and the JSON key its number is written under.
CREDIT_NOTE: Final = "credit_note"
ADJUSTMENT: Final = "adjustment"
_PREFIXES: Final = {CREDIT_NOTE: "CN", ADJUSTMENT: "ADJ"}
NUMBER_KEYS: Final = {CREDIT_NOTE: "credit_note_number", ADJUSTMENT: "adjustment_number"}


def credit_note_number(sequence: int, issued_at: datetime, kind: str = CREDIT_NOTE) -> str:
    """'CN-<year issued>-<sequence, at least 6 digits>' ('ADJ-…' for an adjustment): the
    issuer's own sequence of that kind, its year chosen as an invoice number's is (the UTC
    year of issue)."""
    if sequence < 1:
        raise ValueError("credit note sequence numbers start at 1")
    return f"{_PREFIXES[kind]}-{issued_at.astimezone(UTC).year:04d}-{sequence:06d}"


@dataclass(frozen=True, slots=True)
class IssuedLine:
    """One line of an issued invoice: its place in the invoice's `lines` and its JSON."""

    index: int
    kind: str
    description: str
    quantity: Decimal
    amount: Money
    reference: Mapping[str, Any]  # the LINE_REFERENCE_KEYS the line has
    unit_price: Decimal | None = None  # its one price per unit (InvoiceLine.unit_price)

    @property
    def derived(self) -> bool:
        return self.kind in DERIVED_KINDS


@dataclass(frozen=True, slots=True)
class IssuedInvoice:
    """An issued invoice as its stored JSON document says (CONTRACT.md section 4)."""

    number: str
    account_id: str
    period: str
    issued_at: str
    currency: str
    lines: tuple[IssuedLine, ...]
    subtotal: Money
    tax: Money
    total: Money
    credits_applied: Money
    # The period's bounds as the invoice states them (in the account's zone, with its
    # offset): what the correction documents print as the service period.
    period_start: datetime | None = None
    period_end: datetime | None = None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> IssuedInvoice:
        currency = document["currency"]

        def money(text: str) -> Money:
            return Money(Decimal(text), currency)

        lines = tuple(
            IssuedLine(
                index=index,
                kind=line["kind"],
                description=line["description"],
                quantity=Decimal(line["quantity"]),
                amount=money(line["amount"]),
                reference=line_reference(line),
                unit_price=_unit_price(line),
            )
            for index, line in enumerate(document["lines"])
        )
        return cls(
            number=document["invoice_number"],
            account_id=document["account_id"],
            period=document["period"],
            issued_at=document["issued_at"],
            currency=currency,
            lines=lines,
            subtotal=money(document["subtotal"]),
            tax=money(document["tax"]),
            total=money(document["total"]),
            credits_applied=money(document.get("credits_applied", "0")),
            period_start=_instant(document.get("period_start")),
            period_end=_instant(document.get("period_end")),
        )


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def line_reference(line: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of an invoice line's JSON that say which line it is."""
    return {key: line[key] for key in LINE_REFERENCE_KEYS if key in line}


def line_identity(line: Mapping[str, Any]) -> str:
    """What makes a line (its JSON) the same line on an invoice built again: its reference
    and description, as one text."""
    return json.dumps({**line_reference(line), "description": line["description"]}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class LineCredited:
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Credited:
    """What the credit notes issued so far took from one invoice: per invoice line (by
    index) the quantity and amount, the tax, and their numbers. Kept on the invoice's
    record, moved in the transaction that numbers each credit note."""

    lines: Mapping[int, LineCredited] = field(default_factory=dict)
    tax: Decimal = Decimal(0)
    notes: tuple[str, ...] = ()
    # Lines a correction added (a minimum commitment now owed), by line_identity: what the
    # notes credited on them (negative), so a later correction starts from them.
    added: Mapping[str, LineCredited] = field(default_factory=dict)
    # Each note's (kind, correction key), in the order of `notes`: where its record is, so
    # a later request finishes a note an attempt that stopped left unfinished.
    documents: tuple[tuple[str, str], ...] = ()

    def line(self, index: int) -> LineCredited:
        return self.lines.get(index, LineCredited(Decimal(0), Decimal(0)))

    def added_line(self, identity: str) -> LineCredited:
        return self.added.get(identity, LineCredited(Decimal(0), Decimal(0)))

    def after(self, note: CreditNote) -> Credited:
        """These credits and `note`'s (an adjustment's lines and tax count as negative
        credits: the invoice as it stands goes up by them)."""
        sign = -1 if note.kind == ADJUSTMENT else 1
        lines, added = dict(self.lines), dict(self.added)
        for credit in note.lines:
            quantity, amount = sign * credit.quantity, sign * credit.amount.amount
            # From what this note booked so far too: two alike lines add up, never replace.
            zero = LineCredited(Decimal(0), Decimal(0))
            if credit.invoice_line is None:
                identity = line_identity({**credit.reference, "description": credit.description})
                was = added.get(identity, zero)
                added[identity] = LineCredited(was.quantity + quantity, was.amount + amount)
                continue
            was = lines.get(credit.invoice_line.index, zero)
            lines[credit.invoice_line.index] = LineCredited(
                was.quantity + quantity, was.amount + amount
            )
        tax = self.tax + sign * note.tax.amount
        documents = (*self.documents, (note.kind, note.correction))
        return Credited(lines, tax, (*self.notes, note.number), added, documents)

    def to_text(self) -> str:
        return json.dumps(
            {
                "lines": {
                    str(index): [plain_quantity(each.quantity), format(each.amount, "f")]
                    for index, each in sorted(self.lines.items())
                },
                "tax": format(self.tax, "f"),
                "notes": list(self.notes),
                **(
                    {
                        "added": {
                            identity: [plain_quantity(each.quantity), format(each.amount, "f")]
                            for identity, each in sorted(self.added.items())
                        }
                    }
                    if self.added
                    else {}
                ),
                **(
                    {"documents": [list(each) for each in self.documents]} if self.documents else {}
                ),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_text(cls, text: str | None) -> Credited:
        if not text:
            return cls()
        data = json.loads(text)
        lines = {
            int(index): LineCredited(Decimal(quantity), Decimal(amount))
            for index, (quantity, amount) in data["lines"].items()
        }
        added = {
            identity: LineCredited(Decimal(quantity), Decimal(amount))
            for identity, (quantity, amount) in data.get("added", {}).items()
        }
        documents = tuple((kind, key) for kind, key in data.get("documents", []))
        return cls(lines, Decimal(data["tax"]), tuple(data["notes"]), added, documents)

    def subtotal(self, currency: str) -> Money:
        """What the credit notes took from the invoice's subtotal (lines they added too)."""
        every = [*self.lines.values(), *self.added.values()]
        return Money(sum((each.amount for each in every), Decimal(0)), currency)


@dataclass(frozen=True, slots=True)
class CreditLine:
    """One line of a credit note: the quantity and amount it credits of an invoice line
    (`invoice_line`; None for a line the correction added, such as a minimum commitment
    now owed, whose amount is then negative)."""

    invoice_line: IssuedLine | None
    kind: str
    description: str
    quantity: Decimal
    amount: Money
    reference: Mapping[str, Any]
    # The one price per unit the line is charged at after this document (for a line it
    # takes off the invoice, the price it was charged at); None when no single price
    # prices the line (tiers, a flat fee, a derived line).
    unit_price: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "invoice_line": None if self.invoice_line is None else self.invoice_line.index,
            **self.reference,
            "description": self.description,
            "quantity": plain_quantity(self.quantity),
            "amount": str(self.amount),
        }
        if self.unit_price is not None:
            line["unit_price"] = plain(self.unit_price)
        return line


@dataclass(frozen=True, slots=True)
class CreditNote:
    """A numbered credit note for one invoice (or, of kind ADJUSTMENT, an adjustment
    invoice: the same document charging what the invoice under-charged). subtotal = the
    sum of its lines; total = subtotal + tax; `invoice_total_after` what the invoice comes
    to after it (and the documents before it)."""

    number: str
    invoice: IssuedInvoice
    correction: str  # the key that makes it one: "void", or a re-rate's
    reason: str
    issued_at: datetime
    lines: tuple[CreditLine, ...]
    subtotal: Money
    tax: Money
    invoice_total_after: Money
    # CREDIT_NOTE, or ADJUSTMENT: then its lines and totals are what it charges on top
    kind: str = CREDIT_NOTE

    @property
    def total(self) -> Money:
        return self.subtotal + self.tax

    def to_json(self) -> dict[str, Any]:
        invoice = self.invoice
        return {
            NUMBER_KEYS[self.kind]: self.number,
            "account_id": invoice.account_id,
            "invoice_number": invoice.number,
            "invoice_issued_at": invoice.issued_at,
            "period": invoice.period,
            "correction": self.correction,
            "reason": self.reason,
            "issued_at": utc_text(self.issued_at),
            "currency": invoice.currency,
            "lines": [line.to_json() for line in self.lines],
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "invoice_total": str(invoice.total),
            "invoice_total_after": str(self.invoice_total_after),
        }

    def to_bytes(self) -> bytes:
        """The stored JSON document: the same bytes for the same credit note."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False).encode() + b"\n"


def credit_note_from_document(document: Mapping[str, Any], invoice: IssuedInvoice) -> CreditNote:
    """A stored credit note read back (for its PDF and email), against its invoice."""
    currency = invoice.currency
    lines = tuple(
        CreditLine(
            invoice_line=None
            if line["invoice_line"] is None
            else invoice.lines[line["invoice_line"]],
            kind=line["kind"],
            description=line["description"],
            quantity=Decimal(line["quantity"]),
            amount=Money(Decimal(line["amount"]), currency),
            reference=line_reference(line),
            unit_price=None if "unit_price" not in line else Decimal(line["unit_price"]),
        )
        for line in document["lines"]
    )
    kind = ADJUSTMENT if NUMBER_KEYS[ADJUSTMENT] in document else CREDIT_NOTE
    return CreditNote(
        kind=kind,
        number=document[NUMBER_KEYS[kind]],
        invoice=invoice,
        correction=document["correction"],
        reason=document["reason"],
        issued_at=datetime.fromisoformat(document["issued_at"]),
        lines=lines,
        subtotal=Money(Decimal(document["subtotal"]), currency),
        tax=Money(Decimal(document["tax"]), currency),
        invoice_total_after=Money(Decimal(document["invoice_total_after"]), currency),
    )


def _unit_price(line: Mapping[str, Any]) -> Decimal | None:
    """An invoice line's one price per unit, from its JSON `details` as `InvoiceLine.unit_price`
    decides it: a single step pricing the line's whole quantity."""
    details: list[Mapping[str, Any]] = line.get("details") or []
    if len(details) != 1 or "unit_price" not in details[0]:
        return None
    [step] = details
    same = Decimal(step["quantity"]) == Decimal(line["quantity"])
    return Decimal(step["unit_price"]) if same else None


def remaining_total(invoice: IssuedInvoice, credited: Credited) -> Money:
    """What the invoice comes to after the credit notes issued so far."""
    currency = invoice.currency
    taken = credited.subtotal(currency) + Money(credited.tax, currency)
    return Money(subtract(invoice.total.amount, taken.amount), currency)
