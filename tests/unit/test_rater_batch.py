"""rate_batch resolves each account's checks once per batch (billing.rating.intake.AccountIntake):
events that move between open and closed months within a batch are each judged as if alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from billing.core.catalog import Accounts, Catalog
from billing.core.events import Reason, Rejection, decode_record
from billing.rating.ledger import AccountLedger
from billing.rating.rater import Outcome, StreamRecord, rate_batch

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_months_open_and_closed_alternating_in_one_batch(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    # GIVEN acct-3 (Europe/Berlin) whose October is invoiced
    ledger = AccountLedger("acct-3", version=1, closed=frozenset({"2026-10"}))
    months = ["11", "10", "11", "10", "09", "11"]
    records = [
        StreamRecord(
            "shardId-0",
            str(100 + n),
            json.dumps(
                {
                    "event_id": f"e{n}",
                    "account_id": "acct-3",
                    "meter": "api_requests",
                    "quantity": n + 1,
                    "timestamp": f"2026-{month}-15T12:00:00Z",
                }
            ).encode(),
        )
        for n, month in enumerate(months)
    ]
    decoded = [(record, decode_record(record.data)) for record in records]

    # WHEN they are rated in one batch
    result = rate_batch(
        decoded,
        catalog=example_catalog,
        accounts=example_accounts.by_id,
        ledgers={"acct-3": ledger},
        seen={"acct-3": set()},
        now=NOW,
    )

    # THEN each October event is PERIOD_CLOSED and the others are rated into their month
    outcomes = [item.outcome for item in result.results]
    assert outcomes == [Outcome.RATED, Outcome.REJECTED] * 2 + [Outcome.RATED] * 2
    usage = result.writes["acct-3"].after.usage
    assert usage["2026-11"]["api_requests"].total.quantity == 1 + 3 + 6
    assert usage["2026-09"]["api_requests"].total.quantity == 5
    assert "2026-10" not in usage
    # ... each October event with the message it would get alone (the intake's cache of the
    # last open month must not leak into a closed one, nor the other way)
    closed = Rejection(Reason.PERIOD_CLOSED, "period 2026-10 of account 'acct-3' is invoiced")
    assert [item.rejection for item in result.results] == [None, closed, None, closed, None, None]
