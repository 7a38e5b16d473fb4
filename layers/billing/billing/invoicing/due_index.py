"""Keeping the accounts' due hints (billing.core.owed) when accounts are pushed, and
building them once for accounts stored before the index existed (`reindex`).

The command line's `billing accounts push` and the local runtime's load call `pushed`
BEFORE they store the profiles: a hint without its profile yet is only early (the run
reads the account and finds it as it was), where a profile stored without its hint would
never be found by an hourly run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from billing.core.catalog import Account
from billing.core.owed import (
    EARLIEST_ZONE,
    DueHint,
    advanced,
    first_period,
    latest_ended,
    needs_earliest_invoice,
    owed,
    pushed,
    same_subscription,
)
from billing.core.periods import Period
from billing.invoicing.due import DEFAULT_GRACE, READ_CHUNK
from billing.invoicing.ports import DueHintStore
from billing.store.errors import VersionConflict
from billing.store.invoice_store import InvoiceRecord
from billing.store.retry import CONFLICT


class IndexInvoices(Protocol):
    def for_account(self, account_id: str) -> list[InvoiceRecord]: ...
    def record_pages(self) -> Iterator[list[InvoiceRecord]]: ...


class IndexLedgers(Protocol):
    def load(self, account_ids: Sequence[str], *, fresh: bool = False) -> dict[str, Any]: ...
    def open_periods(self, ledger: Any) -> set[str]: ...


class IndexConfig(Protocol):
    def account_pages(self) -> Iterator[list[Account]]: ...
    def read_accounts(self, account_ids: Sequence[str]) -> dict[str, Account]: ...


class DueIndex:
    def __init__(
        self,
        *,
        hints: DueHintStore,
        invoices: IndexInvoices,
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        self._hints, self._invoices, self._grace = hints, invoices, grace

    def pushed(self, stored: Iterable[Account], accounts: Iterable[Account], now: datetime) -> int:
        """Write the hints of `accounts` as pushed over `stored` (the accounts as stored
        before) at the deployment's clock `now`: a new account's, and an existing one's
        whose start, end or zone changed (the others are not even read). How many it
        wrote."""
        before = {account.id: account for account in stored}
        changed = [
            account
            for account in accounts
            if account.id not in before or not same_subscription(before[account.id], account)
        ]
        written = 0
        for start in range(0, len(changed), READ_CHUNK):
            chunk = changed[start : start + READ_CHUNK]
            seen = self._hints.get_many([account.id for account in chunk])
            for account in chunk:
                written += self._write_pushed(account, before.get(account.id), seen, now)
        return written

    def _write_pushed(
        self, account: Account, before: Account | None, seen: Mapping[str, DueHint], now: datetime
    ) -> int:
        """One account's hint, conditional on the hint read (in `seen`): read again and
        done again when another writer (a late event's rater, a run) moved it since."""
        read = [seen.get(account.id)]

        def attempt() -> int:
            stored = read.pop() if read else self._hints.get_many([account.id]).get(account.id)
            earliest = None
            if needs_earliest_invoice(account, before, stored is not None):
                records = self._invoices.for_account(account.id)
                earliest = Period.parse(records[0].period) if records else None
            hint = pushed(
                account,
                before=before,
                stored=stored,
                earliest_invoice=earliest,
                latest=latest_ended(now - self._grace, account.zone),
            )
            if hint is None:
                return 0
            if not self._hints.replace(account.id, stored, hint):
                raise VersionConflict("write due hint: moved since read")
            return 1

        return CONFLICT.call(attempt, VersionConflict)

    def reindex(self, config: IndexConfig, ledgers: IndexLedgers, now: datetime) -> tuple[int, int]:
        """Give every stored account the hint the hourly run needs, from its ledger and
        invoices as the run read them before the index existed (`billing invoices
        reindex`, once, after an upgrade); then the unfinished invoices of accounts no
        longer known. Only lowers or adds hints, so it may run at any time, again.
        (accounts looked at, hints written)."""
        looked = written = 0
        for page in config.account_pages():
            for start in range(0, len(page), READ_CHUNK):
                chunk = page[start : start + READ_CHUNK]
                loaded = ledgers.load([account.id for account in chunk], fresh=True)
                for account in chunk:
                    looked += 1
                    hint = self._rebuilt(account, ledgers, loaded.get(account.id), now)
                    written += hint is not None and self._hints.lower(account.id, hint)
        for account_id, period in self._orphans(config):
            written += self._hints.lower(account_id, DueHint.of(period, EARLIEST_ZONE))
        return looked, written

    def _rebuilt(
        self, account: Account, ledgers: IndexLedgers, ledger: Any, now: datetime
    ) -> DueHint | None:
        """The account's hint from everything the run once read: its first period (the
        start's, else the earliest its ledger or an invoice shows), then the earliest owed
        and unfinished period from it, or the next after the latest ended."""
        records = {Period.parse(r.period): r for r in self._invoices.for_account(account.id)}
        shown = set(records)
        if ledger is not None:
            shown |= {Period.parse(p) for p in (*ledgers.open_periods(ledger), *ledger.closed)}
        latest = latest_ended(now - self._grace, account.zone)
        first = first_period(account, shown, latest)
        unfinished = [
            period
            for period in sorted(set(owed(account, first, latest)) | set(records))
            if period <= latest and not _finished(records.get(period))
        ]
        return advanced(account, unfinished, latest)

    def _orphans(self, config: IndexConfig) -> Iterator[tuple[str, Period]]:
        """Each account no longer known with an unfinished invoice, and the earliest one."""
        for page in self._invoices.record_pages():
            earliest: dict[str, Period] = {}
            for record in page:
                if not record.finished:
                    period = Period.parse(record.period)
                    earliest[record.account_id] = min(
                        period, earliest.get(record.account_id, period)
                    )
            known: Mapping[str, Account] = (
                config.read_accounts(sorted(earliest)) if earliest else {}
            )
            yield from ((a, p) for a, p in sorted(earliest.items()) if a not in known)


def _finished(record: InvoiceRecord | None) -> bool:
    return record is not None and record.finished
