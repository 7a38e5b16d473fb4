"""An (account, period) the Issue step closed, and the invoice it makes: provisionally,
before numbering, and under its number, with the prepaid credits its record drew."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from billing.core.catalog import Account, Catalog, Plan
from billing.core.credit_draws import draw
from billing.core.invoice import Invoice, build_invoice, invoice_number
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.invoicing.steps import Item
from billing.store.credit_balances import CreditRequest, draws_from_text
from billing.store.invoice_store import InvoiceRecord

# The sequence an invoice is rendered under before it has a number: as wide as any real one.
_PROVISIONAL_SEQUENCE: Final = 999_999_999


@dataclass(frozen=True)
class Closed:
    """An (account, period) whose period this attempt closed, with the usage it closed on."""

    item: Item
    account: Account
    plan: Plan
    usage: dict[str, MeterUsage]

    def invoice(self, catalog: Catalog, number: str, issued_at: datetime) -> Invoice:
        """The invoice under `number`, from the archived usage, before any credit: the
        same at every build."""
        period = Period.parse(self.item.period)
        return build_invoice(
            self.account, self.plan, catalog, period, self.usage, number=number, issued_at=issued_at
        )

    def provisional(self, catalog: Catalog, issued_at: datetime) -> Invoice:
        """The invoice as rendered before numbering: a provisional number, and the draws
        its grants would give if no earlier invoice had drawn on them, so that whatever
        the real draw is, the rendered document differs only in its digits (a document
        with credits shows lines one without them does not)."""
        invoice = self.invoice(catalog, invoice_number(_PROVISIONAL_SEQUENCE, issued_at), issued_at)
        if not self.account.credits:
            return invoice
        untouched = draw(self.account.credits, {}, invoice.period, invoice.total)
        return replace(invoice, credits=untouched)

    def credit_request(self, catalog: Catalog, issued_at: datetime) -> CreditRequest | None:
        """What numbering needs to draw this invoice's credits; None for an account with
        no grant."""
        if not self.account.credits:
            return None
        total = self.invoice(catalog, "", issued_at).total
        return CreditRequest(tuple(self.account.credits), total)

    def numbered(self, catalog: Catalog, record: InvoiceRecord) -> Invoice:
        """The invoice under its record's number and issue time, with the draws numbering
        wrote on the record: what every retry builds again, byte for byte."""
        invoice = self.invoice(
            catalog, record.invoice_number, datetime.fromisoformat(record.issued_at)
        )
        return replace(invoice, credits=draws_from_text(record.credits, invoice.currency))
