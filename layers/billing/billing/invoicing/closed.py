"""An (account, period) the Issue step closed, and the invoice it makes: provisionally,
before numbering, and under its number, with the prepaid credits its record drew."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from billing.core.catalog import Account, Catalog, Plan
from billing.core.credit_draws import draw
from billing.core.invoice import Invoice, build_invoice, invoice_number
from billing.core.periods import Period
from billing.core.usage import MeterUsage
from billing.invoicing.failures import EarlierPeriodPending, PricedAgain
from billing.invoicing.steps import Failure, Item
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
        wrote on the record: what every retry builds again, byte for byte. PricedAgain if
        it no longer totals what its credits were drawn for."""
        invoice = self.invoice(
            catalog, record.invoice_number, datetime.fromisoformat(record.issued_at)
        )
        if record.priced_total is not None and invoice.total.amount != Decimal(record.priced_total):
            raise PricedAgain(
                f"invoice {record.invoice_number} drew its prepaid credits for a total of "
                f"{record.priced_total} {invoice.currency}, and now totals "
                f"{invoice.total.amount} (the catalog or the account changed since it was "
                "numbered): it is not finished, and stays numbered until what changed is "
                "restored"
            )
        return replace(invoice, credits=draws_from_text(record.credits, invoice.currency))


def in_period_order(
    closed: list[Closed], failures: Iterable[Failure]
) -> tuple[list[Closed], list[tuple[Closed, EarlierPeriodPending]]]:
    """The closed invoices to number now, and those held back: of an account with prepaid
    credits, every one later than one of its periods that failed in this attempt (that
    one draws first; a later run numbers both, in period order)."""
    failed_first: dict[str, str] = {}
    for failure in failures:
        earliest = failed_first.get(failure.account_id)
        if earliest is None or failure.period < earliest:
            failed_first[failure.account_id] = failure.period
    kept, held = [], []
    for entry in closed:
        earlier = failed_first.get(entry.account.id)
        if entry.account.credits and earlier is not None and earlier < entry.item.period:
            held.append((entry, EarlierPeriodPending(entry.item.period, earlier)))
        else:
            kept.append(entry)
    return kept, held
