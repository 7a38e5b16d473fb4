"""What validation lets through can be mailed and printed (from an independent review of
issue 11): an address is ASCII and one address, a name is not invisible, and a date or a
currency symbol in a script the invoice fonts do not draw is written another way."""

from __future__ import annotations

import email
from datetime import date
from decimal import Decimal
from email.policy import default
from typing import Any

import pytest

from billing import fonts
from billing.core.catalog import Account
from billing.core.locales import date_text, locale_of, money_text
from billing.invoicing.document import Issuer, render_invoice_pdf
from billing.invoicing.message import invoice_email
from tests.unit.test_pdf import account, invoice_of, readable, text_of, usage

pytestmark = pytest.mark.unit

ISSUER = Issuer("Example Cloud Inc.", email="invoices@billing.example")


def validated(**fields: Any) -> Account | None:
    """The account if validation accepts it; None if refused."""
    try:
        return account(**fields)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None


@pytest.mark.parametrize(
    "address",
    [
        "josé@example.com",  # non-ASCII: the email could not be built
        "a@exämple.com",
        "ü@ü.example",
        "a,b@example.com",  # a To header would split these into two addresses
        "a;b@example.com",
        "a:b@example.com",
        "a<b@example.com",
        "a..b@example.com",
        "a@example",  # no dot in the domain
        "a@-example.com",
    ],
)
def test_an_address_that_cannot_be_mailed_as_written_is_refused(address: str) -> None:
    assert validated(email=address) is None


@pytest.mark.parametrize(
    "address", ["billing@acme.example", "a.b+invoices@mail.example.co.uk", "o'neil@x-y.example"]
)
def test_an_accepted_address_is_the_one_address_the_email_is_to(address: str) -> None:
    customer = validated(email=address)
    assert customer is not None
    raw = invoice_email(invoice_of([usage("Compute", "10")]), customer, b"%PDF-1.4", ISSUER)
    message = email.message_from_bytes(raw, policy=default)
    assert [a.addr_spec for a in message["To"].addresses] == [address]


@pytest.mark.parametrize(
    "name",
    [
        "\u0301\u0301\u0301",  # combining acute accents only
        "\u200b",  # zero-width space
        "\u200e",  # left-to-right mark
        "\u00ad",  # soft hyphen
        "\u3164",  # Hangul filler
        " \u200b ",
    ],
)
def test_a_name_that_prints_nothing_is_refused_as_blank(name: str) -> None:
    assert validated(name=name) is None


def test_a_name_with_combining_marks_on_letters_is_accepted() -> None:
    customer = validated(name="Cafe\u0301 Ne\u0301ro")
    assert customer is not None
    assert customer.name == "Cafe\u0301 Ne\u0301ro"


@pytest.mark.parametrize("locale", ["th", "ka", "hy", "am", "ta", "bn", "km", "te"])
def test_a_locale_whose_dates_no_font_draws_prints_them_in_iso_digits(locale: str) -> None:
    customer = validated(locale=locale)
    assert customer is not None  # validation accepts the locale
    due = date_text(date(2026, 12, 31), locale_of(customer.locale))
    pdf = render_invoice_pdf(invoice_of([usage("Compute", "10")]), customer)
    assert due == "2026-12-31"
    assert due in readable(text_of(pdf))


@pytest.mark.parametrize(
    ("locale", "currency", "shown"),
    [("de", "THB", "10,00\xa0THB"), ("ru", "THB", "10,00\xa0THB"), ("fr", "EUR", "10,00\xa0€")],
)
def test_a_currency_symbol_no_font_draws_is_written_as_its_code(
    locale: str, currency: str, shown: str
) -> None:
    customer = validated(locale=locale)
    assert customer is not None
    assert money_text(Decimal("10.00"), currency, locale_of(customer.locale)) == shown
    assert fonts.missing(shown) == []
