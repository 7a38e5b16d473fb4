"""The invoice email: raw MIME with a plain-text and an HTML body and the PDF attached."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from billing.core.catalog import Account
from billing.core.invoice import Invoice, InvoiceLine
from billing.invoicing.document import Issuer

# Names the invoice an email carries: SES returns the headers with bounce and complaint
# events, so billing.invoicing.feedback finds the invoice's record by its key.
INVOICE_HEADER = "X-Billing-Invoice"
# Names the correction document (credit note or adjustment invoice) an email carries, by
# what its record's key is made of: `<account> <invoice> <number> <kind> <correction>`.
CREDIT_NOTE_HEADER = "X-Billing-Credit-Note"


def subject(invoice: Invoice) -> str:
    # What is left to pay: the total, less any prepaid credits the invoice drew.
    if invoice.credits_applied.amount and not invoice.amount_due.amount:
        return f"Invoice {invoice.invoice_number}: paid with prepaid credits"
    return f"Invoice {invoice.invoice_number}: {invoice.amount_due} {invoice.currency} due"


def _totals(invoice: Invoice) -> list[tuple[str, str]]:
    """The total due, or, when prepaid credits paid part of it, the total, what they paid
    and what is left to pay."""
    if not invoice.credits_applied.amount:
        return [("Total due", f"{invoice.total} {invoice.currency}")]
    return [
        ("Total", f"{invoice.total} {invoice.currency}"),
        ("Paid with prepaid credits", f"-{invoice.credits_applied} {invoice.currency}"),
        ("Amount due", f"{invoice.amount_due} {invoice.currency}"),
    ]


def _label(line: InvoiceLine) -> str:
    """A line's description, with its phase's plan and days on an invoice of several."""
    phase = line.phase
    if phase is None:
        return line.description
    last = phase.end - timedelta(days=1)
    return f"{line.description} ({phase.plan}: {phase.first} – {last})"


def invoice_email(invoice: Invoice, account: Account, pdf: bytes, issuer: Issuer) -> bytes:
    """The message as SES sends it raw (CRLF line ends, non-ASCII headers encoded)."""
    lines = [(_label(line), f"{line.amount} {invoice.currency}") for line in invoice.lines]
    summary = [
        ("Subtotal", f"{invoice.subtotal} {invoice.currency}"),
        ("Tax", f"{invoice.tax} {invoice.currency}"),
        *_totals(invoice),
    ]
    return document_email(
        Letter(
            subject=subject(invoice),
            number=invoice.invoice_number,
            sent_at=invoice.issued_at,
            header=(
                INVOICE_HEADER,
                f"{invoice.account_id} {invoice.period} {invoice.invoice_number}",
            ),
            intro=(
                f"Your invoice {invoice.invoice_number} for {invoice.period} is attached.",
                f"Your invoice <b>{html.escape(invoice.invoice_number)}</b> for "
                f"{html.escape(str(invoice.period))} is attached.",
            ),
            rows=(*lines, *summary),
        ),
        account,
        pdf,
        issuer,
    )


@dataclass(frozen=True)
class Letter:
    """What a document's email says: its subject, the document's number (its Message-ID and
    attachment's name), when it was issued, the header naming it for SES's feedback, one
    sentence (as text and as HTML) and the rows of label and amount under it."""

    subject: str
    number: str
    sent_at: datetime
    header: tuple[str, str]
    intro: tuple[str, str]
    rows: tuple[tuple[str, str], ...]


def document_email(letter: Letter, account: Account, pdf: bytes, issuer: Issuer) -> bytes:
    """An invoice's or a credit note's email, with its PDF attached, as SES sends it raw
    (CRLF line ends, non-ASCII headers encoded)."""
    message = EmailMessage()
    message["From"] = formataddr((issuer.name, issuer.email))
    message["To"] = formataddr((account.name, account.email))
    message["Subject"] = letter.subject
    message["Date"] = format_datetime(letter.sent_at)
    domain = issuer.email.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{letter.number}@{domain}>"
    message[letter.header[0]] = letter.header[1]
    text = "\n".join(
        [
            f"Hello {account.name},",
            "",
            letter.intro[0],
            "",
            *(f"  {label}: {amount}" for label, amount in letter.rows),
            "",
            f"{issuer.name}",
        ]
    )
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td style='text-align:right'>{html.escape(amount)}"
        "</td></tr>"
        for label, amount in letter.rows
    )
    body = (
        f"<p>Hello {html.escape(account.name)},</p>"
        f"<p>{letter.intro[1]}</p>"
        f"<table>{rows}</table><p>{html.escape(issuer.name)}</p>"
    )
    message.set_content(text)
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    message.add_attachment(
        pdf, maintype="application", subtype="pdf", filename=f"{letter.number}.pdf"
    )
    return message.as_bytes(policy=SMTP)
