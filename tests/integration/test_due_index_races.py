"""The due hints against a second writer (docs/invoicing.md, "Finding what is due"): an
hourly run in the middle of a push, and a hint the run moves while paging its index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from billing.core.catalog import Account, Accounts
from billing.core.owed import due_shard
from billing.core.periods import Period
from billing.invoicing.due import ListDue
from billing.invoicing.due_index import DueIndex
from billing.invoicing.steps import DueInput
from billing.settings import INVOICES_TABLE
from billing.store.batches import batch_write
from billing.store.due_hints import DueHints
from tests.integration.conftest import NOW, Aws
from tests.integration.test_due_index import finished_record, found, hints_of, list_due, stores


def new_customer() -> Account:
    return Account.model_validate(
        {
            "id": "acct-new",
            "name": "New Customer",
            "email": "billing@new.example",
            "plan": "pro",
            "timezone": "UTC",
            "start": "2026-11-01",
        }
    )


def test_an_hourly_run_between_a_pushs_hints_and_its_profiles_keeps_the_new_hint(
    aws: Aws, example_accounts: Accounts
) -> None:
    # GIVEN `billing accounts push` of a new account (started 1 November) that has written
    # the due hints (its first write) but not stored the profiles yet (its second)
    config, invoices, hints = stores(aws)
    accounts = Accounts(accounts=[*example_accounts.accounts, new_customer()])
    DueIndex(hints=hints, invoices=invoices).pushed(config.all_accounts(), accounts.accounts, NOW)
    assert "acct-new" in hints_of(aws, ["acct-new"])

    # WHEN the hourly run's ListDue runs in between (the account is not known yet)...
    list(list_due(aws).find(DueInput(now=NOW)).items)
    # ...and then the push stores the profiles
    config.put_accounts(accounts)

    # THEN the account still has its hint, and the next hourly run owes it November
    # (operations.push_accounts: "a hint written for a profile not stored yet is only
    # early (harmless)"). Observed: ListDue took the hinted, unknown account for a removed
    # one with no unfinished invoice and deleted its hint; no hourly run ever finds it, and
    # pushing the same file again writes no hint (its subscription did not change).
    assert "acct-new" in hints_of(aws, ["acct-new"])
    later = found(list_due(aws), NOW + timedelta(hours=1))
    assert ("acct-new", "2026-11") in later


# --- an hourly run's index pages and the hints it moves meanwhile --------------------------------


class PagedQueries:
    """The DynamoDB client with each Query answering at most `limit` items a page, as
    DynamoDB answers a shard of thousands of hints (a page is at most 1 MB)."""

    def __init__(self, client: Any, limit: int) -> None:
        self._client, self._limit = client, limit

    def query(self, **request: Any) -> Any:
        return self._client.query(**request, Limit=self._limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def same_shard_ids(count: int) -> list[str]:
    ids = (f"acct-s{n:05d}" for n in range(100_000))
    return [account_id for account_id in ids if due_shard(account_id) == "00"][:count]


def test_an_hourly_run_lists_each_due_pair_once_when_a_hint_it_moved_is_paged_again(
    aws: Aws,
) -> None:
    # GIVEN one shard of the index holding 101 due hints: acct A (Los Angeles) hinted at
    # October, whose invoice is finished, and November owed; and 100 Tokyo accounts hinted
    # at November (its end in Tokyo is before its end in Los Angeles)
    late, *bulk = same_shard_ids(101)

    def account(account_id: str, tz: str, start: str) -> Account:
        return Account.model_validate(
            {
                "id": account_id,
                "name": account_id,
                "email": f"billing@{account_id}.example",
                "plan": "pro",
                "timezone": tz,
                "start": start,
            }
        )

    accounts = [
        account(late, "America/Los_Angeles", "2026-10-01"),
        *(account(a, "Asia/Tokyo", "2026-11-01") for a in bulk),
    ]
    aws.push_accounts(Accounts(accounts=accounts))
    batch_write(
        aws.dynamodb,
        aws.tables[INVOICES_TABLE.env_var],
        [{"PutRequest": {"Item": finished_record(late, "2026-10", 1)}}],
        "history",
    )
    assert hints_of(aws, [late])[late].period == Period(2026, 10)

    # WHEN the hourly run of 1 December 10:00 UTC (November ended everywhere) reads the
    # index a page at a time
    config, invoices, _ = stores(aws)
    run = ListDue(
        config=config,
        invoices=invoices,
        hints=DueHints(PagedQueries(aws.dynamodb, 10), aws.ledger_table),
    )
    listed = found(run, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))

    # THEN each (account, period) is in the manifest once. Observed: acct A's hint, moved
    # from October to November (due later than the page being read) by the first chunk, is
    # read again on a later page, and (A, 2026-11) is listed twice: the same invoice in two
    # items of the manifest (its batches issue it side by side, the report counts it twice).
    assert listed.count((late, "2026-11")) == 1
    assert len(listed) == len(set(listed))
