"""Renders the sample invoices whose pages are kept beside this file for review.

`python docs/invoice_samples.py` writes invoice-short.pdf/.png (the example acct-1 invoice)
and invoice-long.pdf with invoice-long-<page>.png (60 lines in several scripts, over
three pages), credit-note.pdf with credit-note-1.png (the credit note that voids the
short invoice) and adjustment.pdf with adjustment-1.png (the adjustment invoice charging the
short invoice's plan at 52.00 instead of 49.00), using poppler's pdftoppm (Debian's
poppler-utils) for the pictures.
"""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from billing.core.catalog import Account, load_accounts, load_catalog
from billing.core.corrections import adjustment_note, void_note
from billing.core.credit_notes import Credited, IssuedInvoice
from billing.core.invoice import Invoice, InvoiceLine
from billing.core.money import Money, multiply
from billing.core.periods import Period
from billing.core.pricing import PriceStep
from billing.corrections.credit_note_pdf import render_credit_note_pdf
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
SELLER = Issuer(
    name="Example Cloud Ltd",
    address=("1 Main Street", "London EC1A 1AA", "United Kingdom"),
    tax_id="GB123456789",
    email="billing@example-cloud.example",
    payment_instructions=(
        "Bank transfer to Example Bank, IBAN GB33 BUKB 2020 1555 5555 55, BIC BUKBGB22.",
    ),
)
DESCRIPTIONS = (
    "API requests",
    "東京リージョンのデータ転送",
    "تخزين البيانات",
    "אחסון גיבויים",
    "डेटा स्थानांतरण",
    "Rocket launches 🚀",
)


def short() -> tuple[Invoice, Account]:
    catalog = load_catalog(EXAMPLES / "catalog.yaml")
    accounts = load_accounts(EXAMPLES / "accounts.yaml", catalog)
    period = Period.parse("2026-11")
    now = invoice_run_clock(period, accounts)
    events = (EXAMPLES / "events.jsonl").read_bytes().splitlines()
    ledger = rate_records(events, catalog, accounts, now).ledger
    invoice = next(
        i
        for i in invoice_period(period, catalog, accounts, ledger, now)
        if i.account_id == "acct-1"
    )
    acme = accounts.by_id["acct-1"].model_copy(
        update={
            "billing_address": ["12 Rue de la Paix", "75002 Paris", "France"],
            "tax_id": "FR40303265045",
        }
    )
    return invoice, acme


def long() -> tuple[Invoice, Account]:
    lines = []
    for n in range(1, 61):
        quantity, price = Decimal(n * 1250), Decimal("0.0125") + Decimal(n).scaleb(-4)
        amount = (quantity * price).quantize(Decimal("0.01"))
        filters = (
            {"region": ["eu-west-1", "eu-central-1", "ap-northeast-1"]} if n % 7 == 0 else None
        )
        lines.append(
            InvoiceLine(
                "usage",
                f"{DESCRIPTIONS[n % len(DESCRIPTIONS)]} {n}",
                quantity,
                Money(amount, "EUR"),
                meter="m",
                unit="GB",
                filters=filters,
                steps=(PriceStep("units", quantity, price, quantity * price),),
            )
        )
    subtotal = sum((line.amount for line in lines), Money.zero("EUR"))
    tax = Money(subtotal.amount * Decimal("0.2"), "EUR").rounded()
    invoice = Invoice(
        invoice_number="INV-2026-000123",
        account_id="acct-5",
        period=Period.parse("2026-11"),
        period_start=datetime(2026, 11, 1, tzinfo=UTC),
        period_end=datetime(2026, 12, 1, tzinfo=UTC),
        issued_at=datetime(2026, 12, 1, 1, 15, tzinfo=UTC),
        currency="EUR",
        lines=tuple(lines),
        subtotal=subtotal,
        tax=tax,
        total=subtotal + tax,
        tax_rate=Decimal("0.2"),
    )
    customer = Account.model_validate(
        {
            "id": "acct-5",
            "name": "شركة الخليج للتحليلات · Gulf Analytics Holding International Trading Company",
            "email": "finance@gulf-analytics.example",
            "plan": "pro",
            "timezone": "Asia/Dubai",
            "locale": "fr",
            "billing_address": [
                "Office 1204, Tower B",
                "Sheikh Zayed Road",
                "Dubai, United Arab Emirates",
            ],
            "tax_id": "AE100123456700003",
        }
    )
    return invoice, customer


def credit_note() -> bytes:
    """The credit note that voids the short invoice, ten days after it was issued."""
    invoice, customer = short()
    note = void_note(
        IssuedInvoice.from_document(invoice.to_json()),
        Credited(),
        number="CN-2026-000001",
        reason="Billed twice for November: see invoice INV-2026-000002",
        issued_at=datetime(2026, 12, 11, 9, 30, tzinfo=UTC),
    )
    return render_credit_note_pdf(note, customer, SELLER)


def adjustment() -> bytes:
    """The adjustment invoice that charges the short invoice's plan at 52.00 (49.00 issued),
    ten days after it was issued: a price correction, due on the seller's terms."""
    invoice, customer = short()
    lines = tuple(
        dataclasses.replace(line, amount=Money(Decimal("52.00"), invoice.currency))
        if line.kind == "fixed"
        else line
        for line in invoice.lines
    )
    subtotal = sum((line.amount for line in lines), Money.zero(invoice.currency))
    tax = Money(multiply(subtotal.amount, invoice.tax_rate), invoice.currency).rounded()
    corrected = dataclasses.replace(
        invoice, lines=lines, subtotal=subtotal, tax=tax, total=subtotal + tax
    )
    note = adjustment_note(
        IssuedInvoice.from_document(invoice.to_json()),
        Credited(),
        corrected,
        number="ADJ-2026-000001",
        correction="rerate:sample",
        reason="Pro plan price raised on 1 November, invoiced at the old price",
        issued_at=datetime(2026, 12, 11, 9, 30, tzinfo=UTC),
    )
    return render_credit_note_pdf(note, customer, SELLER)


def write(name: str, document: bytes) -> None:
    pdf = HERE / f"{name}.pdf"
    pdf.write_bytes(document)
    subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(HERE / name)], check=True)
    print(pdf)


def main() -> None:
    for name, (invoice, customer) in (("invoice-short", short()), ("invoice-long", long())):
        write(name, render_invoice_pdf(invoice, customer, SELLER))
    write("credit-note", credit_note())
    write("adjustment", adjustment())


if __name__ == "__main__":
    main()
