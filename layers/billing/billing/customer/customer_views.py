"""What the customer API answers, for one account: the caller's own (docs/customer-api.md).

The handler (`functions/customer_api`) has already checked that the account asked for is
the caller's; every lookup here starts from that account, as in `AccountViews` (which
this builds on, for the usage report, the invoices and their documents). The stores are
passed in: the customer's thresholds and the documents' signed links.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from billing.core.customer_thresholds import CustomerThresholds, ThresholdsRefused
from billing.core.money import exact
from billing.core.periods import PeriodError, parse_asked
from billing.customer.account_views import AccountViews, BadRequest, NotFound
from billing.customer.api_models import AdjustmentBody, CreditNoteBody, InvoiceRecordBody
from billing.customer.customer_models import ThresholdsRequest
from billing.customer.daily_view import DailyUsage, daily_usage
from billing.customer.summary import (
    ThresholdsView,
    account_summary,
    credit_balances,
    plan_in_force,
    preview,
)
from billing.store.customer_thresholds import StoredThresholds
from billing.store.invoice_store import InvoiceRecord

# How long a PDF link works (an invoice's, a credit note's, an adjustment's): long enough
# to follow it, short enough that a link copied out of a page or a log is soon of no use.
PDF_LINK_SECONDS: Final = 300


class Thresholds(Protocol):
    def get(self, account_id: str) -> StoredThresholds | None: ...
    def put(
        self, account_id: str, thresholds: CustomerThresholds, at: datetime
    ) -> StoredThresholds: ...


class Links(Protocol):
    def presigned_get(self, key: str, seconds: int, attachment_name: str) -> str: ...


@dataclass(frozen=True, slots=True)
class InvoiceLink:
    document: bytes  # as stored, byte for byte
    pdf_url: str
    expires_at: datetime


class CustomerViews:
    def __init__(
        self,
        *,
        views: AccountViews,
        thresholds: Thresholds,
        links: Links,
        clock: Callable[[], datetime],
    ) -> None:
        self._views, self._thresholds, self._links, self._clock = views, thresholds, links, clock

    def account(self, account_id: str) -> dict[str, Any]:
        account = self._views.account(account_id)
        return account_summary(account, self._views.catalog(), self._clock())

    def usage(self, account_id: str, period: str | None) -> dict[str, Any]:
        return self._views.usage(account_id, _checked(period)).to_json()

    def daily(self, account_id: str, period: str | None) -> DailyUsage:
        found = self._views.period_usage(account_id, _checked(period))
        return daily_usage(
            found.account,
            found.catalog,
            found.period,
            found.usage,
            status=found.status,
            now=found.now,
        )

    def explanation(self, account_id: str, period: str | None) -> dict[str, Any]:
        return self._views.explanation(account_id, _checked(period))

    def preview(self, account_id: str, period: str | None) -> dict[str, Any]:
        report = self._views.usage(account_id, _checked(period))
        return preview(report, self._views.account(account_id), self._views.catalog())

    def credits(self, account_id: str) -> dict[str, Any]:
        return credit_balances(self._views.usage(account_id, None))

    def invoices(self, account_id: str) -> list[InvoiceRecordBody]:
        return self._views.invoices(account_id)

    def credit_notes(self, account_id: str) -> list[CreditNoteBody]:
        return self._views.credit_notes(account_id)

    def adjustments(self, account_id: str) -> list[AdjustmentBody]:
        return self._views.adjustments(account_id)

    def invoice(self, account_id: str, number: str) -> InvoiceLink:
        """The invoice's document and a link to its PDF that works PDF_LINK_SECONDS."""
        record = self._views.invoice_record(account_id, number)
        if record.pdf_key is None:
            raise NotFound(f"invoice {number} is being issued; try again shortly")
        return self._linked(record, number)

    def credit_note(self, account_id: str, number: str) -> InvoiceLink:
        """The credit note's document and a link to its PDF that works PDF_LINK_SECONDS, as
        for an invoice."""
        record = self._views.credit_note_record(account_id, number)
        return self._linked(record, number)

    def adjustment(self, account_id: str, number: str) -> InvoiceLink:
        """The adjustment invoice's document and its PDF's link, as for a credit note."""
        record = self._views.adjustment_record(account_id, number)
        return self._linked(record, number)

    def _linked(self, record: InvoiceRecord, number: str) -> InvoiceLink:
        assert record.pdf_key is not None  # a stored record has its documents' keys
        document = self._views.document(record)
        expires_at = self._clock() + timedelta(seconds=PDF_LINK_SECONDS)
        # saved as a file by a browser (the portal's download), not opened in its place
        url = self._links.presigned_get(record.pdf_key, PDF_LINK_SECONDS, f"{number}.pdf")
        return InvoiceLink(document, url, expires_at)

    def thresholds(self, account_id: str) -> ThresholdsView:
        account = self._views.account(account_id)
        stored = self._thresholds.get(account_id)
        if stored is None:
            currency = plan_in_force(account, self._views.catalog(), self._clock()).currency
            return ThresholdsView(account_id, CustomerThresholds(currency), None)
        return ThresholdsView(account_id, stored.thresholds, stored.updated_at)

    def set_thresholds(self, account_id: str, request: ThresholdsRequest) -> ThresholdsView:
        """Replace the account's thresholds (BadRequest naming the field when they cannot
        be kept: digits the currency does not have, a percentage without a budget, ...)."""
        account = self._views.account(account_id)
        now = self._clock()
        currency = plan_in_force(account, self._views.catalog(), now).currency
        try:
            chosen = CustomerThresholds.of(
                currency,
                None if request.budget is None else exact(request.budget),
                [
                    (
                        None if item.amount is None else exact(item.amount),
                        None if item.percent is None else exact(item.percent),
                    )
                    for item in request.thresholds
                ],
            )
        except ThresholdsRefused as error:
            raise BadRequest(str(error)) from None
        stored = self._thresholds.put(account_id, chosen, now)
        return ThresholdsView(account_id, stored.thresholds, stored.updated_at)


def _checked(period: str | None) -> str | None:
    """The period asked for, if it is one (BadRequest naming the parameter otherwise)."""
    if period is not None:
        try:
            parse_asked(period)
        except PeriodError as error:
            raise BadRequest(f"period: {error}") from None
    return period
