"""The invoice email parses as MIME with both bodies and the PDF attached."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from billing.core.catalog import Accounts, Catalog
from billing.core.periods import Period
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing.invoicing.message import invoice_email
from billing_cli.preview import invoice_period, invoice_run_clock, rate_records

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events.jsonl"


def test_email_carries_subject_bodies_and_the_pdf(
    example_catalog: Catalog, example_accounts: Accounts
) -> None:
    period = Period.parse("2026-11")
    now = invoice_run_clock(period, example_accounts)
    run = rate_records(EVENTS.read_bytes().splitlines(), example_catalog, example_accounts, now)
    invoice = invoice_period(period, example_catalog, example_accounts, run.ledger, now)[5]
    account = example_accounts.by_id[invoice.account_id]
    pdf = render_invoice_pdf(invoice, account)
    issuer = Issuer("Example Cloud", email="invoices@cloud.example")

    raw = invoice_email(invoice, account, pdf, issuer)

    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Invoice INV-2026-000006: 6.80 EUR due"
    assert message["To"] == "Société Océane <factures@oceane.example>"
    assert message["From"] == "Example Cloud <invoices@cloud.example>"
    assert message["Message-ID"] == "<INV-2026-000006@cloud.example>"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert "Total due: 6.80 EUR" in text.get_content()
    assert html is not None
    assert "Société Océane" in html.get_content()
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["INV-2026-000006.pdf"]
    assert attachments[0].get_content_type() == "application/pdf"
    assert attachments[0].get_content() == pdf
    assert b"\r\n" in raw
    assert not raw.replace(b"\r\n", b"").count(b"\n")
