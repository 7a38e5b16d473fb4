"""Prepaid credits on the PDF and in the email (CONTRACT.md 2a): what they paid, as one
"Paid with prepaid credits" deduction after the total, and the amount due, each formatted
for the currency (USD, JPY, KWD)."""

from __future__ import annotations

import email
from dataclasses import replace
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default

import pytest

from billing.core.invoice import CreditDraw, Invoice
from billing.core.money import Money
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing.invoicing.message import invoice_email
from tests.unit.test_pdf import account, invoice_of, readable, text_of, usage

pytestmark = pytest.mark.unit


def with_credits(invoice: Invoice, *draws: tuple[str, str]) -> Invoice:
    return replace(
        invoice,
        credits=tuple(CreditDraw(gid, Money(Decimal(a), invoice.currency)) for gid, a in draws),
    )


@pytest.mark.parametrize(
    ("currency", "total", "draws", "paid", "due"),
    [
        # 236.72 − (50.00 + 100.00) = 86.72
        ("USD", "236.72", [("promo", "50.00"), ("prepay", "100.00")], "-$150.00", "$86.72"),
        # 27171 − 15000 = 12171
        ("JPY", "27171", [("y2", "5000"), ("y1", "10000")], "-¥15,000", "¥12,171"),
        # 19.994 − 11.000 = 8.994
        ("KWD", "19.994", [("k-a", "5.500"), ("k-b", "5.500")], "-KWD11.000", "KWD8.994"),
    ],
)
def test_the_pdf_shows_what_credits_paid_and_the_amount_due(
    currency: str, total: str, draws: list[tuple[str, str]], paid: str, due: str
) -> None:
    invoice = with_credits(invoice_of([usage("Compute", total, currency)], currency), *draws)
    text = readable(text_of(render_invoice_pdf(invoice, account())))
    assert f"Paid with prepaid credits {paid}" in text
    assert f"Amount due {due}" in text
    assert f"{due} due" in text  # the headline


def test_a_pdf_without_credits_has_no_credits_row() -> None:
    text = readable(text_of(render_invoice_pdf(invoice_of([usage("Compute", "10.00")]), account())))
    assert "prepaid" not in text
    assert "Amount due $10.00" in text


def test_the_email_says_the_total_what_credits_paid_and_the_amount_due() -> None:
    invoice = with_credits(invoice_of([usage("Compute", "27171", "JPY")], "JPY"), ("y", "15000"))
    pdf = render_invoice_pdf(invoice, account())
    raw = invoice_email(invoice, account(), pdf, Issuer("Example Cloud", email="i@cloud.example"))
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    # 27171 − 15000 = 12171 left to pay
    assert message["Subject"] == "Invoice INV-2026-000042: 12171 JPY due"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    for expected in (
        "Total: 27171 JPY",
        "Paid with prepaid credits: -15000 JPY",
        "Amount due: 12171 JPY",
    ):
        assert expected in text
    assert "Total due" not in text
