"""Finding what is due by the accounts' due hints (docs/invoicing.md, "Finding what is
due"), on moto: an hourly run reads in proportion to the accounts due, whatever the number
of accounts and the invoices they had; the rater, pushes and runs keep every hint no later
than what its account owes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billing.core.catalog import Account, Accounts
from billing.core.invoice import utc_text
from billing.core.owed import DueHint
from billing.core.periods import Period, zone
from billing.invoicing.due import ListDue
from billing.invoicing.due_index import DueIndex
from billing.invoicing.steps import DueInput
from billing.rating.rater import StreamRecord
from billing.settings import CONFIG_TABLE, INVOICES_TABLE, LEDGER_TABLE
from billing.store.batches import batch_write
from billing.store.config_store import ConfigStore
from billing.store.due_hints import DueHints, HintMove, hint_key
from billing.store.invoice_records import record_key
from billing.store.invoice_store import InvoiceStore
from billing_cli.local.provision import create_tables
from tests.integration.conftest import NOW, Aws
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the `stack` fixture)
    Stack,
    invoice_store,
    run_clock,
    stack,
)
from tests.support.dynamodb_reads import dynamodb_calls
from tests.support.kinesis import FIRST_SEQUENCE, shard

EXAMPLE_IDS = [f"acct-{n}" for n in range(1, 7)]
DECEMBER_RUN = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def stores(
    aws: Aws, tables: dict[str, str] | None = None
) -> tuple[ConfigStore, InvoiceStore, DueHints]:
    names = tables or aws.tables
    return (
        ConfigStore(aws.dynamodb, names[CONFIG_TABLE.env_var]),
        InvoiceStore(aws.dynamodb, names[INVOICES_TABLE.env_var]),
        DueHints(aws.dynamodb, names[LEDGER_TABLE.env_var]),
    )


def list_due(aws: Aws, tables: dict[str, str] | None = None) -> ListDue:
    config, invoices, hints = stores(aws, tables)
    return ListDue(config=config, invoices=invoices, hints=hints)


def found(run: ListDue, now: datetime, period: str | None = None) -> list[tuple[str, str]]:
    request = DueInput(now=now, period=Period.parse(period) if period else None)
    return [(item.account_id, item.period) for item in run.find(request).items]


def hints_of(aws: Aws, account_ids: list[str]) -> dict[str, DueHint]:
    return stores(aws)[2].get_many(account_ids)


# --- reads proportional to the accounts due ---------------------------------------------------


def customer(number: int, start: str) -> Account:
    return Account.model_validate(
        {
            "id": f"cust-{number:04d}",
            "name": f"Customer {number}",
            "email": f"billing@cust-{number}.example",
            "plan": "pro",
            "timezone": ("Europe/Paris", "America/New_York", "Asia/Tokyo")[number % 3],
            "start": start,
        }
    )


def finished_record(account_id: str, period: str, sequence: int) -> dict[str, Any]:
    return {
        **record_key(account_id, period),
        "sequence": {"N": str(sequence)},
        "invoice_number": {"S": f"INV-2026-{sequence:06d}"},
        "issued_at": {"S": "2026-01-01T00:00:00+00:00"},
        "status": {"S": "stored"},
        "email_status": {"S": "sent"},
    }


def deployment_with_history(aws: Aws, prefix: str, total: int, due: int) -> dict[str, str]:
    """`total` customers since January, each invoiced for January to October; the first
    `due` hinted at November (its invoice not issued yet), the others at December (as the
    hourly runs left them once their November was invoiced)."""
    tables = create_tables(aws.dynamodb, prefix)
    config, invoices, hints = stores(aws, tables)
    accounts = [customer(n, "2026-01-01") for n in range(total)]
    DueIndex(hints=hints, invoices=invoices).pushed([], accounts, NOW)
    config.put_accounts(Accounts(accounts=accounts))
    months = [f"2026-{m:02d}" for m in range(1, 11)]
    history = [
        {"PutRequest": {"Item": finished_record(account.id, month, n * 12 + m)}}
        for n, account in enumerate(accounts)
        for m, month in enumerate(months + ([] if n < due else ["2026-11"]))
    ]
    batch_write(aws.dynamodb, tables[INVOICES_TABLE.env_var], history, "history")
    for n, account in enumerate(accounts):
        period = Period(2026, 11) if n < due else Period(2026, 12)
        pushed = hints.get_many([account.id])[account.id]
        assert hints.replace(account.id, pushed, DueHint.of(period, account.zone))
    return tables


def test_an_hourly_run_reads_the_same_for_10_due_among_500_as_among_50(aws: Aws) -> None:
    # GIVEN two deployments with ten months of invoices per customer, ten customers due
    small = deployment_with_history(aws, "small", total=50, due=10)
    large = deployment_with_history(aws, "large", total=500, due=10)

    # WHEN the hourly run of 1 December finds what is due on each
    reads = {}
    for name, tables in {"small": small, "large": large}.items():
        with dynamodb_calls() as calls:
            listed = found(list_due(aws, tables), DECEMBER_RUN)
        assert sorted(listed) == [(f"cust-{n:04d}", "2026-11") for n in range(10)]
        reads[name] = calls

    # THEN both read exactly the same: one Query per index shard (the ten hints), the ten
    # profiles and the ten November records (none yet), and scan nothing
    small_calls, large_calls = reads["small"], reads["large"]
    assert small_calls.calls == large_calls.calls
    assert small_calls.items_read == large_calls.items_read
    assert small_calls.read_units == large_calls.read_units
    assert large_calls.calls == {"Query": 16, "BatchGetItem": 2}
    assert large_calls.items_read == {"Query": 10, "BatchGetItem": 10}
    assert "Scan" not in large_calls.calls
    # 16 Query calls at half a unit each (eventually consistent, all under 4 KB), then 10
    # profiles and 10 record keys read consistently at one unit each
    assert large_calls.read_units == 16 * 0.5 + 10 + 10


# --- a month's end, run after run ---------------------------------------------------------------


def test_an_hourly_run_after_month_end_invoices_each_due_account_once_then_reads_only_the_index(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
) -> None:
    # GIVEN November rated for the six example accounts
    stack.aws.rate_examples()
    now = datetime.fromisoformat(run_clock(example_accounts))

    # WHEN the hourly runs come, one an hour, from November's end plus the grace time
    first = stack.run("hourly-1", now=utc_text(now))
    with dynamodb_calls() as second_calls:
        second = stack.run("hourly-2", now=utc_text(now + timedelta(hours=1)))
    with dynamodb_calls() as third_calls:
        third = stack.run("hourly-3", now=utc_text(now + timedelta(hours=2)))

    # THEN the first issues each account's November once (and acct-1's October, owed since
    # its start on 10 October), and the later ones issue nothing
    assert (first["issued"], first["failed"], first["emailed"]) == (7, 0, 7)
    assert (second["issued"], third["issued"]) == (0, 0)
    store = invoice_store(stack.aws)
    assert sorted((r.account_id, r.period) for a in EXAMPLE_IDS for r in store.for_account(a)) == [
        ("acct-1", "2026-10"),
        *[(a, "2026-11") for a in EXAMPLE_IDS],
    ]
    # AND the second reads the six accounts once more, finds them finished, and moves each
    # hint on: to December, and acct-6's (its subscription ended 21 November) away
    assert second["skipped"] == 6
    assert second_calls.items_read["Query"] == 6
    assert hints_of(stack.aws, EXAMPLE_IDS) == {
        account.id: DueHint.of(Period(2026, 12), account.zone)
        for account in example_accounts.accounts
        if account.id != "acct-6"
    }
    # AND the third reads nothing but the index: one empty Query per shard, no write
    assert third_calls.calls == {"Query": 16}
    assert third_calls.items_read == {"Query": 0}
    assert third["skipped"] == 0


# --- the rater: a late event lowers the hint; the common event writes none ----------------------


def event(account_id: str, event_id: str, timestamp: str, sequence: int) -> StreamRecord:
    """A record after the examples' on their shard."""
    payload = {
        "event_id": event_id,
        "account_id": account_id,
        "meter": "api_requests",
        "quantity": 1000,
        "timestamp": timestamp,
    }
    [record] = shard([payload], first=FIRST_SEQUENCE + 10_000 + sequence)
    return record


def test_events_in_the_current_period_write_no_hint_and_a_late_one_lowers_it(aws: Aws) -> None:
    # GIVEN the examples rated, acct-3 (no start, Berlin) hinted at December as a run left it
    aws.rate_examples()
    hints = stores(aws)[2]
    berlin = zone("Europe/Berlin")
    seen = hints.get_many(["acct-3"])["acct-3"]
    assert hints.replace("acct-3", seen, DueHint.of(Period(2026, 12), berlin))
    service = aws.service(now=datetime(2026, 12, 5, 12, 0, tzinfo=UTC))

    # WHEN December's events are rated, the first opening December in its ledger
    with dynamodb_calls() as common:
        for n in range(3):
            batch = [event("acct-3", f"dec-{n}", "2026-12-05T10:00:00Z", n)]
            assert not service.process(batch).failed
    # THEN no hint is written: only the ledger, once a batch
    assert [op for op, _ in common.writes] == ["PutItem"] * 3

    # WHEN an event of October comes late (no usage of October in its ledger)
    with dynamodb_calls() as late:
        assert not service.process([event("acct-3", "oct-1", "2026-10-20T10:00:00Z", 9)]).failed
    # THEN the hint is lowered to October, before the ledger is written
    assert [op for op, _ in late.writes] == ["UpdateItem", "PutItem"]
    assert hints.get_many(["acct-3"])["acct-3"] == DueHint.of(Period(2026, 10), berlin)

    # AND the next hourly run finds October owed
    assert ("acct-3", "2026-10") in found(list_due(aws), datetime(2026, 12, 5, 13, 0, tzinfo=UTC))


def test_a_late_event_is_invoiced_by_the_next_hourly_run(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
) -> None:
    # GIVEN November invoiced by the hourly runs, every hint moved on to December
    stack.aws.rate_examples()
    now = datetime.fromisoformat(run_clock(example_accounts))
    stack.run("hourly-1", now=utc_text(now))
    stack.run("hourly-2", now=utc_text(now + timedelta(hours=1)))

    # WHEN an October event of acct-3 (no start) comes late, on 2 December
    rated_at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    late = event("acct-3", "late-oct", "2026-10-20T10:00:00Z", 1)
    assert not stack.aws.service(now=rated_at).process([late]).failed

    # THEN the next hourly run issues acct-3's October, and only that
    report = stack.run("hourly-3", now=utc_text(rated_at + timedelta(hours=1)))
    assert (report["issued"], report["failed"]) == (1, 0)
    october = invoice_store(stack.aws).get("acct-3", "2026-10")
    assert october is not None
    assert october.email_status == "sent"


# --- pushes ------------------------------------------------------------------------------------


def with_fields(accounts: Accounts, account_id: str, **fields: Any) -> Accounts:
    return Accounts(
        accounts=[
            Account.model_validate({**a.model_dump(), **fields}) if a.id == account_id else a
            for a in accounts.accounts
        ]
    )


def test_a_zone_moved_east_makes_the_period_due_at_its_end_there(
    aws: Aws, example_accounts: Accounts
) -> None:
    # GIVEN acct-3 (Berlin) hinted at November, due at 23:00 UTC on 30 November
    run = list_due(aws)
    tokyo_due = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # Tokyo's end + grace + 30 min
    assert ("acct-3", "2026-11") not in found(run, tokyo_due)

    # WHEN it is pushed with Tokyo's zone
    aws.push_accounts(with_fields(example_accounts, "acct-3", timezone="Asia/Tokyo"))

    # THEN its November is due at Tokyo's month end
    assert hints_of(aws, ["acct-3"]) == {"acct-3": DueHint.of(Period(2026, 11), zone("Asia/Tokyo"))}
    assert ("acct-3", "2026-11") in found(run, tokyo_due)


def test_a_start_moved_earlier_is_backfilled_by_the_next_hourly_run(
    aws: Aws, example_accounts: Accounts
) -> None:
    # GIVEN acct-2 (start 16 November) pushed again as started on 3 August
    aws.push_accounts(with_fields(example_accounts, "acct-2", start="2026-08-03"))

    # THEN the next hourly run owes it August to November
    listed = [
        period for account, period in found(list_due(aws), DECEMBER_RUN) if account == "acct-2"
    ]
    assert listed == ["2026-08", "2026-09", "2026-10", "2026-11"]


def test_an_account_the_index_dropped_is_found_again_when_its_subscription_is_extended(
    aws: Aws, example_accounts: Accounts
) -> None:
    # GIVEN acct-6's hint removed (its subscription ended 21 November, all invoiced)
    _, _, hints = stores(aws)
    hints.delete("acct-6", hints.get_many(["acct-6"])["acct-6"])

    # WHEN it is pushed with its end moved to next year
    aws.push_accounts(with_fields(example_accounts, "acct-6", end="2027-01-01"))

    # THEN it is hinted again from its earliest invoice, else the latest ended period
    assert hints_of(aws, ["acct-6"]) == {
        "acct-6": DueHint.of(Period(2026, 11), zone("Pacific/Kiritimati"))
    }


# --- upgrading: the index rebuilt from ledgers and invoices -------------------------------------


def test_reindex_rebuilds_the_hints_a_deployment_had_before_the_index(aws: Aws) -> None:
    # GIVEN November rated, and then every hint lost (a deployment older than the index)
    aws.rate_examples()
    before = hints_of(aws, EXAMPLE_IDS)
    for account_id in EXAMPLE_IDS:
        aws.dynamodb.delete_item(TableName=aws.ledger_table, Key=hint_key(account_id))
    # AND an account removed by hand with an unfinished invoice left
    config, invoices, hints = stores(aws)
    aws.dynamodb.put_item(
        TableName=aws.tables[INVOICES_TABLE.env_var],
        Item={**finished_record("gone", "2026-09", 1), "status": {"S": "numbered"}},
    )

    # WHEN the operator rebuilds the index (billing invoices reindex)
    index = DueIndex(hints=hints, invoices=invoices)
    looked, written = index.reindex(config, aws.ledger_store(), NOW)

    # THEN each account has the hint a push and the rater gave it, and the removed one a
    # hint at its unfinished invoice, due no later than in any zone
    assert (looked, written) == (6, 7)
    assert hints_of(aws, EXAMPLE_IDS) == before
    assert hints_of(aws, ["gone"]) == {"gone": DueHint.of(Period(2026, 9), zone("Etc/GMT-14"))}
    assert ("gone", "2026-09") in found(list_due(aws), DECEMBER_RUN)
    # AND running it again changes nothing
    assert index.reindex(config, aws.ledger_store(), NOW) == (6, 0)


# --- the store -----------------------------------------------------------------------------------


def test_hint_moves_run_concurrently_and_each_yields_to_a_hint_moved_since(aws: Aws) -> None:
    # GIVEN 200 hints at November, 50 of them lowered to October since they were read
    hints = DueHints(aws.dynamodb, aws.ledger_table, move_workers=8)
    paris = zone("Europe/Paris")
    november, october = DueHint.of(Period(2026, 11), paris), DueHint.of(Period(2026, 10), paris)
    ids = [f"cust-{n:03d}" for n in range(200)]
    for account_id in ids:
        assert hints.replace(account_id, None, november)
    for account_id in ids[:50]:
        assert hints.lower(account_id, october)

    # WHEN a run moves all 200 on from November, half to December and half away
    december = DueHint.of(Period(2026, 12), paris)
    moves = [HintMove(a, november, december if n % 2 else None) for n, a in enumerate(ids)]
    made = hints.settle(moves)

    # THEN the 150 read as they were are moved, and the 50 lowered since keep October
    assert made == 150
    stored = hints.get_many(ids)
    assert {a: stored[a] for a in ids[:50]} == dict.fromkeys(ids[:50], october)
    assert {a: stored.get(a) for a in ids[50:]} == {
        a: december if n % 2 else None for n, a in enumerate(ids) if n >= 50
    }
    # AND the index finds exactly the hints due by December's end (the examples' aside)
    due = [s.account_id for page in hints.due(december.due_at) for s in page if s.account_id in ids]
    assert sorted(due) == sorted([*ids[:50], *(a for n, a in enumerate(ids) if n >= 50 and n % 2)])
