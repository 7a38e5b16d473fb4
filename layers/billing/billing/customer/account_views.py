"""What the usage API answers, per account: usage so far, invoice records, invoice documents,
credit notes and adjustment invoices.

The stores are passed in; the handler (`functions/usage_api`) only validates the request
and turns `NotFound` and `BadRequest` into HTTP 404 and 400. Every lookup starts from the
account asked for: an invoice is found among that account's own records only, so a caller
never learns of another account's invoice, even by its number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, Protocol

from billing.core.catalog import Account, Catalog
from billing.core.credit_notes import ADJUSTMENT, CREDIT_NOTE
from billing.core.periods import Period, PeriodError, parse_asked
from billing.core.usage import MeterUsage
from billing.customer.api_models import AdjustmentBody, CreditNoteBody, InvoiceRecordBody
from billing.customer.credit_view import with_credits
from billing.customer.explanation_view import explanation
from billing.customer.usage_view import PeriodStatus, UsageReport, by_meter_name, usage_report
from billing.rating.ledger import AccountLedger
from billing.store.credit_notes import CreditNoteRecord
from billing.store.invoice_store import InvoiceRecord


class NotFound(LookupError):
    """No such account, or no such invoice for it."""


class BadRequest(ValueError):
    """The request names something that cannot exist (a malformed period)."""


class Config(Protocol):
    def catalog(self) -> Catalog: ...
    def accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class Ledgers(Protocol):
    def load(
        self, account_ids: Sequence[str], *, fresh: bool = False
    ) -> dict[str, AccountLedger]: ...
    def archived_usage(self, account_id: str, period: str) -> dict[str, MeterUsage]: ...
    def period_usage(self, ledger: AccountLedger, period: str) -> dict[str, MeterUsage]: ...


class Invoices(Protocol):
    def for_account(self, account_id: str) -> list[InvoiceRecord]: ...


class CreditNotes(Protocol):
    def for_account(self, account_id: str, kind: str = ...) -> list[CreditNoteRecord]: ...


class Documents(Protocol):
    def get(self, key: str) -> bytes: ...


# How a correction document of each kind is named in an answer.
_DOCUMENT_NAMES: Final = {CREDIT_NOTE: "credit note", ADJUSTMENT: "adjustment invoice"}


def _now() -> datetime:
    return datetime.now(UTC)


class PeriodUsage(NamedTuple):
    """An account's usage in one period, with what pricing it needs: the ledger as read
    (holding the period's usage unless it is closed) and, for a closed period, the usage
    its invoice was built from."""

    account: Account
    catalog: Catalog
    ledger: AccountLedger
    period: Period
    now: datetime
    closed_usage: Mapping[str, MeterUsage] | None

    @property
    def status(self) -> PeriodStatus:
        return "closed" if self.closed_usage is not None else "open"

    @property
    def usage(self) -> Mapping[str, MeterUsage]:
        if self.closed_usage is not None:
            return self.closed_usage
        return self.ledger.usage.get(str(self.period), {})


class AccountViews:
    def __init__(
        self,
        *,
        config: Config,
        ledgers: Ledgers,
        invoices: Invoices,
        documents: Documents,
        clock: Callable[[], datetime] = _now,
        credit_notes: CreditNotes | None = None,
    ) -> None:
        self._config, self._ledgers = config, ledgers
        self._invoices, self._documents, self._clock = invoices, documents, clock
        self._credit_notes = credit_notes

    def catalog(self) -> Catalog:
        return self._config.catalog()

    def account(self, account_id: str) -> Account:
        account = self._config.accounts([account_id]).get(account_id)
        if account is None:
            raise NotFound(f"account {account_id!r} is not known")
        return account

    def period_usage(self, account_id: str, period: str | None = None) -> PeriodUsage:
        """The account's usage in `period` (YYYY-MM), by default its current one, wherever
        it is kept: in the ledger, in a period item, or archived once the period closed."""
        try:
            wanted = parse_asked(period) if period is not None else None
        except PeriodError as error:
            raise BadRequest(str(error)) from None
        account = self.account(account_id)
        catalog = self._config.catalog()
        # Fresh: a container's cached ledger may be older than the rater's last write.
        ledger = self._ledgers.load([account_id], fresh=True)[account_id]
        now = self._clock()
        chosen = wanted or Period.containing(now, account.zone)
        closed_usage = None
        if str(chosen) in ledger.closed:
            closed_usage = self._ledgers.archived_usage(account_id, str(chosen))
        elif not ledger.holds_inline(str(chosen)):  # an old period kept in its own item
            usage = self._ledgers.period_usage(ledger, str(chosen))
            ledger = replace(ledger, usage={**ledger.usage, str(chosen): usage})
        return PeriodUsage(account, catalog, ledger, chosen, now, closed_usage)

    def usage(self, account_id: str, period: str | None = None) -> UsageReport:
        """The account's usage report for `period` (YYYY-MM), by default its current one."""
        return self._report(self.period_usage(account_id, period))

    def _report(self, found: PeriodUsage) -> UsageReport:
        account = found.account
        report = usage_report(
            account,
            found.catalog,
            found.ledger,
            found.period,
            now=found.now,
            closed_usage=found.closed_usage,
        )
        if not account.credits:
            return report
        # What the issued invoices drew, from their records: each grant's balance, and what
        # this period draws (projected while open, as drawn once invoiced).
        records = self._invoices.for_account(account.id)
        preview, grants = with_credits(account, report.preview, records)
        return replace(report, preview=preview, credits=grants)

    def explanation(self, account_id: str, period: str | None = None) -> dict[str, Any]:
        """Each line of the period's invoice with what makes it (explanation_view): of the
        stored invoice once the period is invoiced, else of the invoice it makes now."""
        found = self.period_usage(account_id, period)
        report = self._report(found)
        issued = None
        if report.status == "closed":
            for record in self._invoices.for_account(account_id):
                if record.period == str(report.period) and record.stored and record.json_key:
                    issued = json.loads(self.document(record))
        return explanation(report, issued, by_meter_name(found.usage))

    def invoices(self, account_id: str) -> list[InvoiceRecordBody]:
        """The account's invoice records, oldest period first, as the API lists them."""
        self.account(account_id)
        return [InvoiceRecordBody.of(record) for record in self._invoices.for_account(account_id)]

    def credit_notes(self, account_id: str) -> list[CreditNoteBody]:
        """The account's credit notes, by the invoice they correct, as the API lists them."""
        self.account(account_id)
        return [CreditNoteBody.of(note) for note in self._corrections(account_id, CREDIT_NOTE)]

    def adjustments(self, account_id: str) -> list[AdjustmentBody]:
        """The account's adjustment invoices, by the invoice they correct, as the API lists
        them."""
        self.account(account_id)
        return [AdjustmentBody.of(each) for each in self._corrections(account_id, ADJUSTMENT)]

    def _corrections(self, account_id: str, kind: str) -> list[CreditNoteRecord]:
        """The account's correction documents of one kind (one Query on its key)."""
        if self._credit_notes is None:
            return []
        return self._credit_notes.for_account(account_id, kind)

    def invoice_record(self, account_id: str, number: str) -> InvoiceRecord:
        """The account's own invoice of that number, stored (NotFound otherwise: another
        account's number is not found either)."""
        self.account(account_id)
        for record in self._invoices.for_account(account_id):
            if record.invoice_number == number:
                if not record.stored or record.json_key is None:
                    raise NotFound(f"invoice {number} is being issued; try again shortly")
                return record
        raise NotFound(f"account {account_id!r} has no invoice {number!r}")

    def credit_note_record(self, account_id: str, number: str) -> CreditNoteRecord:
        """The account's own credit note of that number, stored (NotFound otherwise, as for
        an invoice: another account's number is not found either)."""
        return self._correction_record(account_id, number, CREDIT_NOTE)

    def adjustment_record(self, account_id: str, number: str) -> CreditNoteRecord:
        """The account's own adjustment invoice of that number, stored (NotFound otherwise,
        as for a credit note; a credit note's number is not one)."""
        return self._correction_record(account_id, number, ADJUSTMENT)

    def _correction_record(self, account_id: str, number: str, kind: str) -> CreditNoteRecord:
        self.account(account_id)
        what = _DOCUMENT_NAMES[kind]
        for record in self._corrections(account_id, kind):
            if record.invoice_number == number:
                if not record.stored or record.json_key is None or record.pdf_key is None:
                    raise NotFound(f"{what} {number} is being issued; try again shortly")
                return record
        raise NotFound(f"account {account_id!r} has no {what} {number!r}")

    def invoice_document(self, account_id: str, number: str) -> bytes:
        """The invoice's JSON document, byte for byte as it was stored."""
        return self.document(self.invoice_record(account_id, number))

    def document(self, record: InvoiceRecord) -> bytes:
        """A stored invoice's JSON document, byte for byte."""
        assert record.json_key is not None  # a stored record has its documents' keys
        return self._documents.get(record.json_key)
