"""Which (account, period) pairs an invoice run without a period finds due: every period the
subscription overlaps that has no finished invoice (docs/contract-notes.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from billing.core.catalog import Account
from billing.invoicing.due import ListDue
from billing.invoicing.steps import DueInput, read
from billing.store.invoice_store import InvoiceRecord

RUN = {"now": "2026-12-01T06:00:00Z"}


def account(start: date | None = None, end: date | None = None) -> Account:
    return Account(
        id="acct-9",
        name="Nine",
        email="ap@nine.example",
        plan="pro",
        timezone="UTC",
        start=start,
        end=end,
    )


@dataclass
class Ledger:
    usage: dict[str, Any] = field(default_factory=dict)
    closed: dict[str, Any] = field(default_factory=dict)


class Config:
    def __init__(self, accounts: list[Account]) -> None:
        self._accounts = accounts

    def all_accounts(self) -> list[Account]:
        return self._accounts


class Ledgers:
    def __init__(self, ledgers: dict[str, Ledger]) -> None:
        self._ledgers = ledgers

    def load(self, account_ids: Any, *, fresh: bool = False) -> dict[str, Ledger]:
        return self._ledgers

    def open_periods(self, ledger: Ledger) -> set[str]:
        return set(ledger.usage) - set(ledger.closed)


class Invoices:
    def __init__(self, records: list[InvoiceRecord]) -> None:
        self._records = records

    def all_records(self) -> list[InvoiceRecord]:
        return self._records


def finished(period: str, sequence: int) -> InvoiceRecord:
    return InvoiceRecord(
        account_id="acct-9",
        period=period,
        sequence=sequence,
        invoice_number=f"INV-2026-{sequence:06d}",
        issued_at="2026-09-01T01:00:00+00:00",
        status="stored",
        email_status="sent",
    )


def due(
    accounts: list[Account],
    records: list[InvoiceRecord] = (),  # type: ignore[assignment]
    ledgers: dict[str, Ledger] | None = None,
) -> tuple[list[str], int]:
    run = ListDue(
        config=Config(accounts),  # type: ignore[arg-type]
        ledgers=Ledgers(ledgers or {}),  # type: ignore[arg-type]
        invoices=Invoices(list(records)),  # type: ignore[arg-type]
    )
    found = run.find(read(DueInput, RUN))
    periods = [item.period for item in found.items]
    return periods, found.skipped


def test_an_account_that_started_before_the_latest_period_owes_every_period_since_its_start() -> (
    None
):
    # GIVEN an account subscribed since 15 August, never invoiced, with no usage on record
    # WHEN the run of 1 December comes THEN August to November are due, oldest first
    assert due([account(start=date(2026, 8, 15))]) == (
        ["2026-08", "2026-09", "2026-10", "2026-11"],
        0,
    )


def test_a_period_between_two_invoiced_ones_is_still_owed() -> None:
    records = [finished("2026-08", 1), finished("2026-10", 2)]
    assert due([account(start=date(2026, 8, 15))], records) == (["2026-09", "2026-11"], 0)


def test_a_subscription_that_ended_owes_only_the_periods_it_overlaps() -> None:
    ended = account(start=date(2026, 8, 15), end=date(2026, 10, 1))
    assert due([ended]) == (["2026-08", "2026-09"], 0)


def test_without_a_start_the_latest_period_and_any_the_ledger_holds_are_due() -> None:
    # No start: the subscription's first period is not known; the earliest one the ledger or
    # an invoice shows is, and every period from it on is owed.
    assert due([account()]) == (["2026-11"], 0)
    ledgers = {"acct-9": Ledger(usage={"2026-09": {}})}
    assert due([account()], ledgers=ledgers) == (["2026-09", "2026-10", "2026-11"], 0)


def test_the_latest_period_invoiced_already_counts_as_skipped() -> None:
    records = [finished("2026-10", 1), finished("2026-11", 2)]
    assert due([account(start=date(2026, 10, 1))], records) == ([], 1)
