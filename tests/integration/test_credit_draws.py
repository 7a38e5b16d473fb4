"""Prepaid credits drawn exactly once (CONTRACT.md 2a, Credits): in the transaction that
numbers the invoice, against the account's balance item as read. A second run numbering
the same invoice finds its record and its draws; two runs numbering invoices of one account
at once race for the balance, and the loser draws from what the winner left. Amounts
worked by hand."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from billing.core.catalog import Account, Accounts
from billing.core.credits import Grant
from billing.core.invoice import invoice_number
from billing.core.money import Money
from billing.store.credit_balances import CreditRequest, balance_key
from billing.store.documents import DocumentStore
from billing.store.errors import StoreError
from billing.store.invoice_store import InvoiceRecord, InvoiceStore
from tests.integration.conftest import Aws
from tests.integration.test_invoice_numbering import (
    ISSUED_AT,
    STUCK_SECONDS,
    Interleaving,
    gap_free,
    sequence_in_table,
    table,
)
from tests.integration.test_invoice_owed import numbered_but_not_stored, push_accounts
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the `stack` fixture)
    Stack,
    invoice_store,
    run_clock,
    stack,
)

Key = tuple[str, str]
PREPAY = Grant.model_validate({"id": "prepay", "amount": "100.00", "granted": "2026-10-01"})
PROMO = Grant.model_validate(
    {"id": "promo", "amount": "30.00", "granted": "2026-10-01", "expires": "2026-12-01"}
)


def request(total: str, *grants: Grant) -> CreditRequest:
    return CreditRequest(grants or (PREPAY,), Money(Decimal(total), "USD"))


def drawn(aws: Aws, account_id: str = "acct-1") -> dict[str, str] | None:
    item = aws.dynamodb.get_item(TableName=table(aws), Key=balance_key(account_id)).get("Item")
    return None if item is None else dict(json.loads(item["drawn"]["S"]))


def credits_of(records: dict[Key, InvoiceRecord]) -> dict[str, Any]:
    return {key[1]: json.loads(r.credits or "null") for key, r in sorted(records.items())}


def number_at_once(
    aws: Aws, runs: dict[str, tuple[list[Key], dict[Key, CreditRequest]]]
) -> tuple[dict[str, dict[Key, InvoiceRecord]], dict[str, int]]:
    """Each run numbers its keys on its own thread and client, both having read before
    either writes, the writes in the dict's order."""
    interleaving = Interleaving(list(runs))
    stores = {name: InvoiceStore(interleaving.client(name), table(aws)) for name in runs}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {
            name: pool.submit(stores[name].number, keys, ISSUED_AT, invoice_number, credits)
            for name, (keys, credits) in runs.items()
        }
        got = {name: future.result(timeout=STUCK_SECONDS * 2) for name, future in futures.items()}
    return got, interleaving.writes


def test_two_runs_numbering_the_same_invoice_draw_its_credits_once(aws: Aws) -> None:
    # GIVEN two runs that both read acct-1's November (no record, no balance) before
    # either writes, each about to draw 70.00 of the 100.00 grant
    key = ("acct-1", "2026-11")
    both = ([key], {key: request("70.00")})

    # WHEN A writes, then B over what it read
    got, writes = number_at_once(aws, {"A": both, "B": both})

    # THEN B's write is refused; reading again it finds A's record and takes its number and
    # its draw, writing nothing: 70.00 drawn once, 30.00 left
    assert writes == {"A": 1, "B": 1}
    assert got["A"][key] == got["B"][key]
    assert credits_of(got["B"]) == {"2026-11": [{"id": "prepay", "amount": "70.00"}]}
    assert drawn(aws) == {"prepay": "70.00"}
    assert sequence_in_table(aws) == gap_free(1)


def test_two_runs_numbering_two_periods_of_one_account_never_spend_the_same_credit(
    aws: Aws,
) -> None:
    # GIVEN run A numbering acct-1's October and run B its November, both 70.00, both
    # having read the balance (nothing drawn yet)
    october, november = ("acct-1", "2026-10"), ("acct-1", "2026-11")
    runs = {
        "A": ([october], {october: request("70.00")}),
        "B": ([november], {november: request("70.00")}),
    }

    # WHEN A writes first, then B over the balance it read
    got, writes = number_at_once(aws, runs)

    # THEN B is refused (sequence and balance moved), reads again and draws what is left:
    # October 70.00, November 100.00 − 70.00 = 30.00 (40.00 due); the grant is spent once
    assert writes == {"A": 1, "B": 2}
    assert credits_of(got["A"]) == {"2026-10": [{"id": "prepay", "amount": "70.00"}]}
    assert credits_of(got["B"]) == {"2026-11": [{"id": "prepay", "amount": "30.00"}]}
    assert drawn(aws) == {"prepay": "100.00"}


def test_several_periods_of_one_account_in_one_batch_draw_oldest_first_in_one_write(
    aws: Aws,
) -> None:
    # GIVEN acct-1's December, October and November in one batch (listed out of order),
    # with promo (30.00, expires 1 Dec) and prepay (100.00)
    keys = [("acct-1", p) for p in ("2026-12", "2026-10", "2026-11")]
    totals = {"2026-10": "20.00", "2026-11": "50.00", "2026-12": "90.00"}
    credits = {key: request(totals[key[1]], PREPAY, PROMO) for key in keys}

    # WHEN they are numbered
    records = InvoiceStore(aws.dynamodb, table(aws)).number(
        keys, ISSUED_AT, invoice_number, credits
    )

    # THEN October: promo 20.00 (10.00 left); November: promo 10.00, prepay 40.00 (60.00
    # left); December: promo expired, prepay 60.00 of 90.00. One balance write holds it all.
    assert credits_of(records) == {
        "2026-10": [{"id": "promo", "amount": "20.00"}],
        "2026-11": [{"id": "promo", "amount": "10.00"}, {"id": "prepay", "amount": "40.00"}],
        "2026-12": [{"id": "prepay", "amount": "60.00"}],
    }
    assert drawn(aws) == {"prepay": "100.00", "promo": "30.00"}
    item = aws.dynamodb.get_item(TableName=table(aws), Key=balance_key("acct-1"))["Item"]
    assert item["v"] == {"N": "1"}


def test_numbering_again_changes_nothing(aws: Aws) -> None:
    # GIVEN acct-1's November numbered with a 70.00 draw
    store = InvoiceStore(aws.dynamodb, table(aws))
    key = ("acct-1", "2026-11")
    first = store.number([key], ISSUED_AT, invoice_number, {key: request("70.00")})

    # WHEN it is numbered again (a retried step), even with another total
    again = store.number([key], ISSUED_AT, invoice_number, {key: request("95.00")})

    # THEN the same record, the same draw; the balance did not move
    assert again == first
    assert drawn(aws) == {"prepay": "70.00"}


def test_a_batch_of_99_accounts_with_credits_is_numbered_in_a_few_gap_free_transactions(
    aws: Aws,
) -> None:
    # GIVEN 99 accounts, each drawing 1.00: 99 records, 99 balances and the counter do not
    # fit in one transaction of 100 items
    keys = [(f"acct-{n}", "2026-11") for n in range(99)]
    credits = {key: request("1.00") for key in keys}

    records = InvoiceStore(aws.dynamodb, table(aws)).number(
        keys, ISSUED_AT, invoice_number, credits
    )

    # THEN every one is numbered once, 1..99, and drew its 1.00
    assert sequence_in_table(aws) == gap_free(99)
    assert sorted(r.sequence for r in records.values()) == list(range(1, 100))
    assert all(drawn(aws, key[0]) == {"prepay": "1.00"} for key in keys[::7])


# --- through the invoice workflow ----------------------------------------------------------


def with_grants(accounts: Accounts, account_id: str, grants: list[dict[str, Any]]) -> list[Account]:
    return [
        Account.model_validate({**a.model_dump(), "credits": grants}) if a.id == account_id else a
        for a in accounts.accounts
    ]


GRANT_200 = {"id": "prepay-1", "amount": "200.00", "granted": "2026-10-01"}


def test_a_retried_issue_after_numbering_builds_the_invoice_with_the_draws_it_recorded(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-1 (November total 236.72) with a 200.00 grant, its invoice numbered (drawing
    # 200.00) but not stored: S3 refused its documents
    push_accounts(stack, with_grants(example_accounts, "acct-1", [GRANT_200]))
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    number = numbered_but_not_stored(stack, monkeypatch, now, "acct-1")
    assert drawn(stack.aws) == {"prepay-1": "200.00"}

    # WHEN the next run comes
    second = stack.run("run-2", period="2026-11", now=now)

    # THEN it stores the invoice under its number with the draw its record holds, draws
    # nothing more: 200.00 applied, 36.72 due
    assert (second["issued"], second["failures"]) == (1, [])
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert record.json_key is not None
    document = json.loads(stack.document(record.json_key))
    assert document["invoice_number"] == number
    assert (document["credits"], document["credits_applied"], document["amount_due"]) == (
        [{"id": "prepay-1", "amount": "200.00"}],
        "200.00",
        "36.72",
    )
    assert drawn(stack.aws) == {"prepay-1": "200.00"}


def test_a_retry_writes_the_same_bytes_as_a_run_that_did_not_fail(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-1's first run numbered its invoice, built it and had its JSON refused by
    # S3: the bytes it tried to store are kept aside
    push_accounts(stack, with_grants(example_accounts, "acct-1", [GRANT_200]))
    stack.aws.rate_examples()
    now = run_clock(example_accounts)
    refused: dict[str, bytes] = {}
    original = DocumentStore.put_new

    def refusing(self: DocumentStore, key: str, body: bytes, content_type: str) -> bytes:
        if key.startswith("invoices/acct-1/"):
            refused.setdefault(key, body)
            raise StoreError("store invoice document: ServiceUnavailable")
        return original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put_new", refusing)
    stack.run("run-1", period="2026-11", now=now)
    monkeypatch.setattr(DocumentStore, "put_new", original)
    (first_key,) = refused

    # WHEN the next run finishes it
    stack.run("run-2", period="2026-11", now=now)

    # THEN it stored, under the same number, the same JSON bytes the first run built
    record = invoice_store(stack.aws).get("acct-1", "2026-11")
    assert record is not None
    assert record.json_key == first_key
    assert stack.document(first_key) == refused[first_key]
    assert json.loads(refused[first_key])["amount_due"] == "36.72"


def test_two_concurrent_invoice_runs_draw_a_grant_once(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
) -> None:
    # GIVEN acct-1 (November 236.72) and acct-2 (50.00) each with a 200.00 grant
    grants = with_grants(example_accounts, "acct-1", [GRANT_200])
    push_accounts(stack, with_grants(Accounts(accounts=grants), "acct-2", [GRANT_200]))
    stack.aws.rate_examples()
    now = run_clock(example_accounts)

    # WHEN two runs for November go at once
    outputs: list[dict[str, Any]] = []

    def run(name: str) -> None:
        outputs.append(stack.run(name, period="2026-11", now=now))

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN each invoice is issued once and each grant drawn once: acct-1 200.00 of 236.72,
    # acct-2 50.00 of 50.00 (150.00 left)
    assert sum(o["issued"] for o in outputs) == 6
    assert drawn(stack.aws, "acct-1") == {"prepay-1": "200.00"}
    assert drawn(stack.aws, "acct-2") == {"prepay-1": "50.00"}
    for account_id, applied, due in (("acct-1", "200.00", "36.72"), ("acct-2", "50.00", "0.00")):
        record = invoice_store(stack.aws).get(account_id, "2026-11")
        assert record is not None
        assert record.json_key is not None
        document = json.loads(stack.document(record.json_key))
        assert (document["credits_applied"], document["amount_due"]) == (applied, due)


def test_a_scheduled_run_draws_an_accounts_owed_periods_oldest_first(
    stack: Stack,  # noqa: F811  (the fixture)
    example_accounts: Accounts,
) -> None:
    # GIVEN acct-1 (from 10 October) with a 600.00 grant, owing October and November
    grant = {**GRANT_200, "amount": "600.00"}
    push_accounts(stack, with_grants(example_accounts, "acct-1", [grant]))
    stack.aws.rate_examples()

    # WHEN the scheduled run comes (no period: every ended period owed)
    stack.run("run-1", now=run_clock(example_accounts))

    # THEN October, issued first (its example usage totals 545.72), draws 545.72, nothing
    # due; November (236.72) draws the 600.00 − 545.72 = 54.28 left, 182.44 due. (Had
    # November drawn first, it would have taken 236.72.)
    found = {}
    for period in ("2026-10", "2026-11"):
        record = invoice_store(stack.aws).get("acct-1", period)
        assert record is not None
        assert record.json_key is not None
        document = json.loads(stack.document(record.json_key))
        found[period] = (document["total"], document["credits"], document["amount_due"])
    assert found == {
        "2026-10": ("545.72", [{"id": "prepay-1", "amount": "545.72"}], "0.00"),
        "2026-11": ("236.72", [{"id": "prepay-1", "amount": "54.28"}], "182.44"),
    }
    assert drawn(stack.aws) == {"prepay-1": "600.00"}


def test_99_periods_of_one_account_drawing_credits_are_numbered_oldest_first_in_two_parts(
    aws: Aws,
) -> None:
    # GIVEN 99 periods of acct-1 (2018-01 .. 2026-03), each 1.00, and a 98.50 grant
    keys = [("acct-1", f"{2018 + n // 12}-{n % 12 + 1:02d}") for n in range(99)]
    grant = Grant.model_validate({"id": "big", "amount": "98.50", "granted": "2017-01-01"})
    credits = {key: request("1.00", grant) for key in keys}

    # WHEN they are numbered (99 records + the balance + the counter: over 100 items)
    records = InvoiceStore(aws.dynamodb, table(aws)).number(
        keys[::-1], ISSUED_AT, invoice_number, credits
    )

    # THEN 98 oldest first in one transaction, the last in another: each of the first 98
    # draws 1.00, the 99th the 0.50 left; numbers without a gap
    drew = credits_of(records)
    assert all(drew[key[1]] == [{"id": "big", "amount": "1.00"}] for key in keys[:98])
    assert drew["2026-03"] == [{"id": "big", "amount": "0.50"}]
    assert drawn(aws) == {"big": "98.50"}
    assert sequence_in_table(aws) == gap_free(99)
