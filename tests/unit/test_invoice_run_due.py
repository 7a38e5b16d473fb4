"""Which (account, period) pairs an invoice run without a period finds due: every period the
subscription overlaps that has no finished invoice (docs/contract-notes.md)."""

from __future__ import annotations

from datetime import date

from billing.core.catalog import Account
from billing.core.owed import DueHint
from billing.core.periods import Period
from billing.invoicing.due import ListDue
from billing.invoicing.steps import DueInput, read
from billing.store.invoice_store import InvoiceRecord
from tests.support.due_memory import MemoryConfig, MemoryHints, MemoryInvoices

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


def hint(period: str) -> DueHint:
    return DueHint.of(Period.parse(period), account().zone)


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
    first: str | None = None,
) -> tuple[list[str], int]:
    """The periods an hourly run lists, and how many it skips, for acct-9 whose due hint
    is at `first` (by default the period of its start, as `billing accounts push` writes
    it)."""
    start = accounts[0].start
    period = first if first is not None or start is None else f"{start:%Y-%m}"
    run = ListDue(
        config=MemoryConfig(accounts),
        invoices=MemoryInvoices(records),
        hints=MemoryHints({"acct-9": hint(period)} if period else {}),
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
    # an invoice shows is, and every period from it on is owed. A push writes the hint at
    # the latest ended period; usage rated into September lowers it to September.
    assert due([account()], first="2026-11") == (["2026-11"], 0)
    assert due([account()], first="2026-09") == (["2026-09", "2026-10", "2026-11"], 0)


def test_the_latest_period_invoiced_already_counts_as_skipped() -> None:
    records = [finished("2026-10", 1), finished("2026-11", 2)]
    assert due([account(start=date(2026, 10, 1))], records) == ([], 1)


# --- what an hourly run reads, and where it leaves each hint --------------------------------


def named(account_id: str, **fields: object) -> Account:
    return Account.model_validate(
        {
            "id": account_id,
            "name": account_id,
            "email": f"{account_id}@example.com",
            "plan": "pro",
            "timezone": "UTC",
            **fields,
        }
    )


def record(account_id: str, period: str, *, done: bool = True) -> InvoiceRecord:
    return InvoiceRecord(
        account_id=account_id,
        period=period,
        sequence=1,
        invoice_number="INV-2026-000001",
        issued_at="2026-12-01T01:00:00+00:00",
        status="stored" if done else "numbered",
        email_status="sent" if done else None,
    )


def listed(run: ListDue, run_input: dict[str, str] = RUN) -> list[tuple[str, str]]:
    found = run.find(read(DueInput, run_input))
    return [(item.account_id, item.period) for item in found.items]


def test_an_hourly_run_reads_only_the_accounts_whose_hint_is_due() -> None:
    # GIVEN three accounts: one hinted at November (due), one at December (not yet), one
    # whose hint is gone (its subscription ended)
    config = MemoryConfig([named("due"), named("later"), named("gone", end="2026-06-01")])
    invoices = MemoryInvoices()
    hints = MemoryHints({"due": hint("2026-11"), "later": hint("2026-12")})
    run = ListDue(config=config, invoices=invoices, hints=hints)

    # WHEN the run of 1 December comes THEN it lists the due one, reading only it
    assert listed(run) == [("due", "2026-11")]
    assert (dict(config.read), invoices.keys_read) == ({"due": 1}, 1)
    # AND leaves its hint at November until an invoice is finished for it
    assert hints.hints["due"] == hint("2026-11")
    assert hints.writes == []


def test_an_hourly_run_moves_a_hint_past_what_is_finished() -> None:
    # GIVEN November invoiced and finished, the hint still at it
    hints = MemoryHints({"acct-9": hint("2026-11")})
    run = ListDue(
        config=MemoryConfig([account()]),
        invoices=MemoryInvoices([finished("2026-11", 1)]),
        hints=hints,
    )
    # WHEN the next run comes THEN nothing is listed, November counts as skipped, and the
    # hint moves on to December
    assert due_found(run) == ([], 1)
    assert hints.hints == {"acct-9": hint("2026-12")}
    # AND the run after reads nothing but the index
    assert due_found(run) == ([], 0)


def due_found(run: ListDue) -> tuple[list[tuple[str, str]], int]:
    found = run.find(read(DueInput, RUN))
    items = [(item.account_id, item.period) for item in found.items]
    return items, found.skipped


def test_a_subscription_over_and_all_invoiced_takes_its_hint_away() -> None:
    ended = account(start=date(2026, 8, 1), end=date(2026, 11, 10))
    hints = MemoryHints({"acct-9": hint("2026-11")})
    run = ListDue(
        config=MemoryConfig([ended]),
        invoices=MemoryInvoices([finished("2026-11", 1)]),
        hints=hints,
    )
    assert due_found(run) == ([], 1)
    assert hints.hints == {}
    assert hints.writes == [("delete", "acct-9")]


def test_an_unknown_accounts_unfinished_invoice_is_listed_until_finished_and_its_hint_kept() -> (
    None
):
    # GIVEN acct-9's profile gone, its November invoice numbered and not stored
    hints = MemoryHints({"acct-9": hint("2026-10")})
    invoices = MemoryInvoices([record("acct-9", "2026-11", done=False)])
    run = ListDue(config=MemoryConfig([]), invoices=invoices, hints=hints)
    # THEN every run lists it (Issue names it: its account is not known), keeping the hint
    assert listed(run) == listed(run) == [("acct-9", "2026-11")]
    assert hints.hints == {"acct-9": hint("2026-10")}
    # AND once it is finished nothing is listed, and the hint stays (the account may be one
    # a push is adding: its hint is written before its profile)
    invoices.records[("acct-9", "2026-11")] = record("acct-9", "2026-11")
    assert listed(run) == []
    assert hints.hints == {"acct-9": hint("2026-10")}


def test_a_run_finds_lazily_and_counts_skipped_once_its_items_are_read() -> None:
    config = MemoryConfig([account()])
    run = ListDue(
        config=config,
        invoices=MemoryInvoices([finished("2026-11", 1)]),
        hints=MemoryHints({"acct-9": hint("2026-10")}),
    )
    found = run.find(read(DueInput, RUN))
    assert (found.skipped, dict(config.read)) == (0, {})  # nothing read yet
    assert [(i.account_id, i.period) for i in found.items] == [("acct-9", "2026-10")]
    assert found.skipped == 1


def test_a_run_for_a_period_lowers_the_hints_of_what_it_lists() -> None:
    # GIVEN an account without a start whose hint is at November, and one with none
    accounts = [account(), named("no-hint", start="2026-01-01")]
    hints = MemoryHints({"acct-9": hint("2026-11")})
    run = ListDue(config=MemoryConfig(accounts), invoices=MemoryInvoices(), hints=hints)
    # WHEN an operator runs September THEN both are listed, and both hints are at September
    # before Issue numbers anything: a run stopped half-way is finished by the hourly ones
    run_input = {**RUN, "period": "2026-09"}
    assert listed(run, run_input) == [("acct-9", "2026-09"), ("no-hint", "2026-09")]
    assert hints.hints == {"acct-9": hint("2026-09"), "no-hint": hint("2026-09")}


def test_a_run_for_a_period_names_unknown_accounts_unfinished_invoices_of_it() -> None:
    hints = MemoryHints({"gone": hint("2026-10"), "other": hint("2026-12")})
    invoices = MemoryInvoices(
        [record("gone", "2026-11", done=False), record("gone", "2026-10", done=False)]
    )
    run = ListDue(config=MemoryConfig([]), invoices=invoices, hints=hints)
    assert listed(run, {**RUN, "period": "2026-11"}) == [("gone", "2026-11")]


def test_batches_keep_an_accounts_periods_together_when_they_fit() -> None:
    # GIVEN 98 accounts owing one period each, then one owing three, then 100 periods of
    # one account (over what a batch takes)
    from billing.invoicing.due import in_batches
    from billing.invoicing.steps import Item

    single = [Item(account_id=f"a{n}", period="2026-11") for n in range(98)]
    three = [Item(account_id="b", period=p) for p in ("2026-09", "2026-10", "2026-11")]
    long = [Item(account_id="c", period=f"{2018 + n // 12}-{n % 12 + 1:02d}") for n in range(100)]

    batches = list(in_batches([*single, *three, *long]))

    # THEN b's three periods go together into a second batch (98 + 3 > 99); c's 100 do not
    # fit beside them (3 + 100 > 99) and are split oldest first: 99, then the last one
    assert [len(batch) for batch in batches] == [98, 3, 99, 1]
    assert batches[1] == three
    assert batches[2:] == [long[:99], long[99:]]
