"""`billing run` with prepaid credit grants (CONTRACT.md 2a, Credits): the invoices'
`credits`, `credits_applied` and `amount_due`, worked out by hand from the example totals
(tests/support/examples.py: acct-1 236.72 USD, acct-4 27171 JPY, acct-5 19.994 KWD)."""

from __future__ import annotations

import email
import json
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from billing_cli.main import app
from tests.e2e.test_billing_run import EXAMPLES, TOTALS, invoke_run
from tests.unit.test_pdf import readable, text_of

pytestmark = pytest.mark.e2e

GRANTS: dict[str, list[dict[str, Any]]] = {
    "acct-1": [
        {"id": "prepay-1", "amount": "500.00", "granted": "2026-10-01", "expires": "2027-10-01"},
        # expires first among those usable in November: drawn first
        {"id": "promo", "amount": "50.00", "granted": "2026-11-20", "expires": "2026-12-01"},
        # November's first day is not before 1 November: not usable
        {"id": "old", "amount": "100.00", "granted": "2026-09-01", "expires": "2026-11-01"},
        # November's last day is before 1 December: not usable yet
        {"id": "future", "amount": "10.00", "granted": "2026-12-01"},
    ],
    "acct-4": [
        {"id": "y1", "amount": "10000", "granted": "2026-11-01"},
        {"id": "y2", "amount": "5000", "granted": "2026-10-15"},
    ],
    "acct-5": [
        {"id": "k-b", "amount": "5.5", "granted": "2026-11-01", "expires": "2027-01-01"},
        {"id": "k-a", "amount": "5.500", "granted": "2026-11-01", "expires": "2027-01-01"},
    ],
}


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("credits-accounts")
    document = yaml.safe_load((EXAMPLES / "accounts.yaml").read_text(encoding="utf-8"))
    for account in document["accounts"]:
        if account["id"] in GRANTS:
            account["credits"] = GRANTS[account["id"]]
    accounts = folder / "accounts.yaml"
    accounts.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return accounts


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory, accounts_file: Path) -> Path:
    folder = tmp_path_factory.mktemp("credits")
    result = invoke_run(folder / "out", accounts=accounts_file)
    assert result.exit_code == 0, result.output
    return folder / "out"


@pytest.fixture(scope="module")
def invoices(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (out / "invoices").glob("*.json"):
        invoice = json.loads(path.read_text(encoding="utf-8"))
        found[invoice["account_id"]] = invoice
    return found


def credit_fields(invoice: dict[str, Any]) -> tuple[Any, ...]:
    return (invoice["credits"], invoice["credits_applied"], invoice["amount_due"])


def test_credits_never_change_the_totals(invoices: dict[str, dict[str, Any]]) -> None:
    assert {a: (i["total"], i["currency"]) for a, i in invoices.items()} == TOTALS


def test_usd_the_grant_expiring_first_then_the_rest_from_the_long_one(
    invoices: dict[str, dict[str, Any]],
) -> None:
    # promo 50.00 (expires 1 Dec), then prepay-1 236.72 − 50.00 = 186.72; nothing due.
    assert credit_fields(invoices["acct-1"]) == (
        [{"id": "promo", "amount": "50.00"}, {"id": "prepay-1", "amount": "186.72"}],
        "236.72",
        "0.00",
    )


def test_jpy_no_expiry_ties_go_to_the_earliest_granted(
    invoices: dict[str, dict[str, Any]],
) -> None:
    # y2 (granted 15 Oct) 5000, then y1 10000: 15000 of 27171; 12171 due.
    assert credit_fields(invoices["acct-4"]) == (
        [{"id": "y2", "amount": "5000"}, {"id": "y1", "amount": "10000"}],
        "15000",
        "12171",
    )


def test_kwd_same_dates_go_by_id_with_three_decimals(
    invoices: dict[str, dict[str, Any]],
) -> None:
    # k-a 5.500, k-b 5.500: 11.000 of 19.994; 8.994 due.
    assert credit_fields(invoices["acct-5"]) == (
        [{"id": "k-a", "amount": "5.500"}, {"id": "k-b", "amount": "5.500"}],
        "11.000",
        "8.994",
    )


def test_an_account_without_grants_draws_nothing(invoices: dict[str, dict[str, Any]]) -> None:
    assert credit_fields(invoices["acct-2"]) == ([], "0.00", "50.00")


def test_the_pdf_and_the_email_say_what_credits_paid_and_what_is_due(
    out: Path, invoices: dict[str, dict[str, Any]]
) -> None:
    number = invoices["acct-4"]["invoice_number"]
    # acct-4 writes Japanese: 27171 − 15000 = 12171 yen due
    text = readable(text_of((out / "invoices" / f"{number}.pdf").read_bytes()))
    assert "Paid with prepaid credits" in text
    assert "Amount due" in text
    assert "15,000" in text
    assert "12,171" in text
    message = email.message_from_bytes(
        (out / "emails" / f"{number}.eml").read_bytes(), policy=default
    )
    assert message["Subject"] == f"Invoice {number}: 12171 JPY due"
    body = message.get_body(("plain",))
    assert body is not None
    assert "Paid with prepaid credits: -15000 JPY" in body.get_content()
    assert "Amount due: 12171 JPY" in body.get_content()


def test_preview_draws_as_the_run_does(
    accounts_file: Path, invoices: dict[str, dict[str, Any]]
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "preview",
            "--catalog", str(EXAMPLES / "catalog.yaml"),
            "--accounts", str(accounts_file),
            "--events", str(EXAMPLES / "events.jsonl"),
            "--period", "2026-11",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    previewed = {i["account_id"]: credit_fields(i) for i in json.loads(result.output)["invoices"]}
    assert previewed == {account: credit_fields(i) for account, i in invoices.items()}
