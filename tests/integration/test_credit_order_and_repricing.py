"""Prepaid credits drawn in period order when one period's Issue fails, and a numbered
invoice never finished under draws made for another total.

CONTRACT 2a: "An account's invoices draw on credits in the order they are issued, which is
period order (the invoice run issues an account's periods oldest first)". The Issue step
goes on with an account's other periods when closing one of them fails (a throttled
ledger write: "this account only; a later run closes it again"), but holds back the later
periods of an account with credits, so that a later run numbers them in period order.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pypdf
import pytest

from billing.core.catalog import Account, Accounts, Catalog, parse_catalog
from billing.core.history import HistoryRewrite, check_push
from billing.store.config_store import ConfigStore
from billing.store.documents import DocumentStore
from billing.store.errors import StoreError
from billing.store.ledger_store import LedgerStore
from billing_cli.local.runtime import task_handlers
from billing_cli.operations import PUSH_LEAD
from tests.integration.test_credit_draws import drawn
from tests.integration.test_invoice_owed import numbered_but_not_stored, push_accounts
from tests.integration.test_invoice_workflow import (  # noqa: F401  (the `stack` fixture)
    Stack,
    invoice_store,
    run_clock,
    stack,
)

FLAT = {
    "id": "flat",
    "name": "Flat",
    "currency": "USD",
    "fixed_fee": "70.00",
    "charges": [{"meter": "api_requests", "model": "per_unit", "unit_price": "1"}],
}


def with_flat_plan(catalog: Catalog) -> Catalog:
    """The example catalog with one more plan: 70.00 a month, nothing else owed."""
    document = catalog.model_dump(mode="json")
    return parse_catalog({**document, "plans": [*document["plans"], FLAT]})


ACCOUNT = Account.model_validate(
    {
        "id": "acct-c",
        "name": "Credit Co",
        "email": "ap@credit.example",
        "plan": "flat",
        "timezone": "UTC",
        "start": "2026-11-01",
        "credits": [{"id": "prepay", "amount": "100.00", "granted": "2026-11-01"}],
    }
)


def given(
    stack: Stack,  # noqa: F811
    example_catalog: Catalog,
    example_accounts: Accounts,
    account: Account,
) -> None:
    """The example catalog with the flat plan, and the example accounts with `account`."""
    ConfigStore(stack.aws.dynamodb, stack.aws.config_table).put_catalog(
        with_flat_plan(example_catalog)
    )
    push_accounts(stack, [*example_accounts.accounts, account])


def run_with_november_close_throttled(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    now: str,
) -> None:
    """One run at `now` in which closing acct-c's November is throttled."""
    original = LedgerStore.close_period

    def throttled(self: LedgerStore, account_id: str, period: str, *a: Any, **k: Any) -> Any:
        if (account_id, period) == ("acct-c", "2026-11"):
            raise StoreError("close period: ProvisionedThroughputExceededException")
        return original(self, account_id, period, *a, **k)

    monkeypatch.setattr(LedgerStore, "close_period", throttled)
    stack.run("run-1", now=now)
    monkeypatch.setattr(LedgerStore, "close_period", original)


def credits_on(stack: Stack, period: str) -> list[dict[str, Any]]:  # noqa: F811
    record = invoice_store(stack.aws).get("acct-c", period)
    assert record is not None
    assert record.json_key is not None
    document = json.loads(stack.document(record.json_key))
    return list(document["credits"])


def test_credits_follow_period_order_when_an_older_close_fails(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c (70.00 a month, one 100.00 grant) with November and December both due
    # in one hourly run, and the close of November throttled in that run
    given(stack, example_catalog, example_accounts, ACCOUNT)
    run_with_november_close_throttled(stack, monkeypatch, now="2027-01-01T02:00:00Z")

    # WHEN the next hourly run finishes November
    stack.run("run-2", now="2027-01-01T03:00:00Z")

    # THEN the grant went to the periods in period order: November 70.00, December the
    # 30.00 left (40.00 due)
    assert credits_on(stack, "2026-11") == [{"id": "prepay", "amount": "70.00"}]
    assert credits_on(stack, "2026-12") == [{"id": "prepay", "amount": "30.00"}]
    assert drawn(stack.aws, "acct-c") == {"prepay": "100.00"}


def lower_the_flat_fee(stack: Stack, example_catalog: Catalog, fee: str) -> None:  # noqa: F811
    document = with_flat_plan(example_catalog).model_dump(mode="json")
    plans = [p for p in document["plans"] if p["id"] != "flat"]
    ConfigStore(stack.aws.dynamodb, stack.aws.config_table).put_catalog(
        parse_catalog({**document, "plans": [*plans, {**FLAT, "fixed_fee": fee}]})
    )
    task_handlers()  # the handlers start afresh, as after the cache time


def left_numbered(stack: Stack, report: dict[str, Any]) -> None:  # noqa: F811
    """November was not finished, and says why: it stays numbered, with no documents."""
    record = invoice_store(stack.aws).get("acct-c", "2026-11")
    assert record is not None
    assert (record.status, record.json_key) == ("numbered", None)
    reasons = [f for f in report["failures"] if f["account_id"] == "acct-c"]
    assert [f["error"] for f in reasons] == ["PricedAgain"], reasons
    assert "the catalog or the account changed since" in reasons[0]["reason"]


def finished(stack: Stack) -> tuple[str, str, str]:  # noqa: F811
    record = invoice_store(stack.aws).get("acct-c", "2026-11")
    assert record is not None
    assert record.json_key is not None
    stored = json.loads(stack.document(record.json_key))
    return stored["total"], stored["credits_applied"], stored["amount_due"]


def test_a_numbered_invoice_priced_again_is_not_finished_under_its_draws(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c's November (70.00) numbered with its 70.00 draw, but not stored (S3
    # refused its documents)
    given(stack, example_catalog, example_accounts, ACCOUNT)
    now = run_clock(example_accounts)
    numbered_but_not_stored(stack, monkeypatch, now, "acct-c")
    assert drawn(stack.aws, "acct-c") == {"prepay": "70.00"}

    # WHEN the plan's fee is lowered to 50.00 in the catalog and the next run tries it
    lower_the_flat_fee(stack, example_catalog, "50.00")
    report = stack.run("run-2", period="2026-11", now=now)

    # THEN it is not finished at 50.00 with 70.00 drawn (-20.00 due): reported, numbered
    left_numbered(stack, report)
    assert drawn(stack.aws, "acct-c") == {"prepay": "70.00"}

    # WHEN the fee is restored, the next run finishes it as it was numbered
    lower_the_flat_fee(stack, example_catalog, "70.00")
    stack.run("run-3", period="2026-11", now=now)
    assert finished(stack) == ("70.00", "70.00", "0.00")


def test_a_lower_tax_rate_after_numbering_is_not_finished_under_its_draws(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c at 20% tax: November 70.00 + 14.00 = 84.00, numbered with its 84.00
    # draw, not stored (S3 refused its documents)
    taxed = Account.model_validate({**ACCOUNT.model_dump(), "tax_rate": "0.20"})
    given(stack, example_catalog, example_accounts, taxed)
    now = run_clock(example_accounts)
    numbered_but_not_stored(stack, monkeypatch, now, "acct-c")
    assert drawn(stack.aws, "acct-c") == {"prepay": "84.00"}

    # WHEN an accounts push sets the rate to 0 (tax is not pricing: the push takes it)
    push_accounts(stack, [*example_accounts.accounts, ACCOUNT])
    report = stack.run("run-2", period="2026-11", now=now)

    # THEN it is not finished at 70.00 with 84.00 drawn: reported, left numbered
    left_numbered(stack, report)

    # and once the rate is back, finished as numbered: 84.00, all paid by its draw
    push_accounts(stack, [*example_accounts.accounts, taxed])
    stack.run("run-3", period="2026-11", now=now)
    assert finished(stack) == ("84.00", "84.00", "0.00")


def test_the_pdf_finished_by_a_retry_says_what_the_stored_json_says(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c's November (70.00, 70.00 drawn): run 1 stored its JSON, then S3 refused
    # its PDF
    given(stack, example_catalog, example_accounts, ACCOUNT)
    now = run_clock(example_accounts)
    original = DocumentStore.put_new

    def no_pdf(self: DocumentStore, key: str, body: bytes, content_type: str) -> bytes:
        if key.startswith("invoices/acct-c/") and key.endswith(".pdf"):
            raise StoreError("store invoice document: ServiceUnavailable")
        return original(self, key, body, content_type)

    monkeypatch.setattr(DocumentStore, "put_new", no_pdf)
    stack.run("run-1", period="2026-11", now=now)
    monkeypatch.setattr(DocumentStore, "put_new", original)

    # WHEN the plan's fee is lowered to 50.00 in the catalog and the next run tries it
    lower_the_flat_fee(stack, example_catalog, "50.00")
    report = stack.run("run-2", period="2026-11", now=now)

    # THEN no PDF of the 50.00 invoice is stored beside the 70.00 JSON: reported
    record = invoice_store(stack.aws).get("acct-c", "2026-11")
    assert record is not None
    assert record.status == "numbered"
    assert [f["error"] for f in report["failures"] if f["account_id"] == "acct-c"] == [
        "PricedAgain"
    ]

    # WHEN the fee is restored, the next run stores the PDF of the JSON's invoice
    lower_the_flat_fee(stack, example_catalog, "70.00")
    stack.run("run-3", period="2026-11", now=now)
    record = invoice_store(stack.aws).get("acct-c", "2026-11")
    assert record is not None
    assert record.json_key is not None
    assert record.pdf_key is not None
    stored = json.loads(stack.document(record.json_key))
    assert (stored["total"], stored["amount_due"]) == ("70.00", "0.00")
    pdf = " ".join(
        page.extract_text()
        for page in pypdf.PdfReader(io.BytesIO(stack.document(record.pdf_key))).pages
    )
    assert ("70.00" in pdf, "50.00" in pdf, "20.00" in pdf) == (True, False, False), pdf


def test_an_end_moved_back_after_numbering_is_refused(
    example_accounts: Accounts,
) -> None:
    # An end moved back into invoiced time would price the numbered invoice again (70.00
    # drawn on an invoice of 2.33): the push is refused
    ended = Account.model_validate({**ACCOUNT.model_dump(), "end": "2026-11-02"})
    with pytest.raises(HistoryRewrite, match=r"\(acct-c\): end: moving it from none"):
        check_push(
            Accounts(accounts=[*example_accounts.accounts, ACCOUNT]),
            Accounts(accounts=[*example_accounts.accounts, ended]),
            datetime.fromisoformat(run_clock(example_accounts)),
            lead=PUSH_LEAD,
        )


def test_out_of_order_draws_let_a_grant_expire_unused(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c (70.00 a month) with prepay 70.00 (granted 1 Nov, expires 1 Jan) and
    # promo 50.00 (granted 1 Dec, expires 1 Jan: December only); November and December due
    # in one hourly run, November's close throttled in it
    grants = [
        {"id": "prepay", "amount": "70.00", "granted": "2026-11-01", "expires": "2027-01-01"},
        {"id": "promo", "amount": "50.00", "granted": "2026-12-01", "expires": "2027-01-01"},
    ]
    account = Account.model_validate({**ACCOUNT.model_dump(), "credits": grants})
    given(stack, example_catalog, example_accounts, account)
    run_with_november_close_throttled(stack, monkeypatch, now="2027-01-01T02:00:00Z")

    # WHEN the next hourly run finishes November
    stack.run("run-2", now="2027-01-01T03:00:00Z")

    # THEN in period order November takes prepay 70.00 and December promo 50.00: 120.00
    # of credit used, 20.00 due in all (not 70.00 with promo expired unused)
    assert credits_on(stack, "2026-11") == [{"id": "prepay", "amount": "70.00"}]
    assert credits_on(stack, "2026-12") == [{"id": "promo", "amount": "50.00"}]
    assert drawn(stack.aws, "acct-c") == {"prepay": "70.00", "promo": "50.00"}


def test_an_invoice_that_drew_no_credit_finishes_at_the_new_prices_as_before(
    stack: Stack,  # noqa: F811  (the fixture)
    example_catalog: Catalog,
    example_accounts: Accounts,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN acct-c whose only grant pays from December on (granted 1 Dec): November
    # (70.00) numbered drawing nothing, not stored (S3 refused its documents)
    later = [{"id": "prepay", "amount": "100.00", "granted": "2026-12-01"}]
    account = Account.model_validate({**ACCOUNT.model_dump(), "credits": later})
    given(stack, example_catalog, example_accounts, account)
    now = run_clock(example_accounts)
    numbered_but_not_stored(stack, monkeypatch, now, "acct-c")
    assert not drawn(stack.aws, "acct-c")

    # WHEN the plan's fee is lowered to 50.00 and the next run tries it
    lower_the_flat_fee(stack, example_catalog, "50.00")
    report = stack.run("run-2", period="2026-11", now=now)

    # THEN it finishes as an invoice of an account without credits does (no draw to keep
    # consistent with the total): 50.00, nothing applied, 50.00 due
    assert [f for f in report["failures"] if f["account_id"] == "acct-c"] == []
    assert finished(stack) == ("50.00", "0.00", "50.00")
