"""A customer's spend-alert email: raw MIME, plain text and a simple HTML part, amounts
written for the account's locale as its invoice writes them (billing.core.locales)."""

from __future__ import annotations

import hashlib
import html
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import Final

from babel import Locale

from billing.core.catalog import Account
from billing.core.locales import (
    DEFAULT_LOCALE,
    canonical_locale,
    locale_of,
    money_text,
    percent_text,
)
from billing.core.money import plain
from billing.core.seller import Issuer
from billing.core.spend import Crossing

# Names the alert an email carries (account, period, threshold id): for whoever reads the
# message's headers later. (SES's feedback looks only for an invoice's or a correction
# document's header, billing.invoicing.message, so bounces of these change no record.)
ALERT_HEADER: Final = "X-Billing-Spend-Alert"


def subject(crossing: Crossing) -> str:
    """'Your spend reached 100.00 EUR for 2026-11': the amount as the invoice's JSON
    writes it, with its ISO code, as invoice subjects do."""
    return (
        f"Your spend reached {plain(crossing.threshold)} {crossing.currency} for {crossing.period}"
    )


def _locale(account: Account) -> Locale:
    try:
        return locale_of(canonical_locale(account.locale))
    except ValueError:  # a stored locale this Babel does not know: still an email
        return locale_of(DEFAULT_LOCALE)


def threshold_text(crossing: Crossing, locale: Locale) -> str:
    """The threshold as the customer set it: '€100.00', or '80% of your budget (€400.00)'."""
    amount = money_text(crossing.threshold, crossing.currency, locale)
    kind, _, value = (crossing.threshold_id or "").partition(":")
    if kind == "percent":
        share = percent_text(Decimal(value).scaleb(-2), locale)
        return f"{share} of your budget ({amount})"
    return amount


def alert_email(crossing: Crossing, account: Account, issuer: Issuer, at: datetime) -> bytes:
    """The message as SES sends it raw (CRLF line ends, non-ASCII headers encoded)."""
    locale = _locale(account)
    spent = money_text(crossing.subtotal, crossing.currency, locale)
    threshold = threshold_text(crossing, locale)
    message = EmailMessage()
    message["From"] = formataddr((issuer.name, issuer.email))
    message["To"] = formataddr((account.name, account.email))
    message["Subject"] = subject(crossing)
    message["Date"] = format_datetime(at)
    marks = f"{crossing.account_id} {crossing.period} {crossing.threshold_id or ''}"
    domain = issuer.email.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(f"{marks} {crossing.currency}".encode()).hexdigest()[:32]
    message["Message-ID"] = f"<alert-{digest}@{domain}>"  # one alert, one id
    message[ALERT_HEADER] = marks
    said = (
        f"Your usage charges for {crossing.period} reached {spent}, "
        f"at or above the threshold you set: {threshold}."
    )
    note = (
        "These are the usage charges so far, before any fixed fee, minimum commitment, "
        "discount and tax: your invoice at the end of the period says what is due."
    )
    text = "\n".join([f"Hello {account.name},", "", said, "", note, "", issuer.name])
    body = "".join(
        [
            f"<p>Hello {html.escape(account.name)},</p>",
            f"<p>{html.escape(said)}</p>",
            f"<p>{html.escape(note)}</p>",
            f"<p>{html.escape(issuer.name)}</p>",
        ]
    )
    message.set_content(text)
    message.add_alternative(f"<html><body>{body}</body></html>", subtype="html")
    return message.as_bytes(policy=SMTP)
