"""Amounts, quantities and dates as a reader in the account's locale writes them (Babel).

What is shown is always the exact value the invoice JSON holds: an amount keeps the digits
of its currency's ISO 4217 minor unit (this project's rounding, which for some currencies
differs from what CLDR would show), a price or a quantity keeps every digit it has. Digits
are always Latin (0-9), whatever the locale's own numbering system.
"""

from __future__ import annotations

import copy
import decimal
import functools
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Final

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton
from babel.numbers import (
    NumberPattern,
    format_decimal,
    format_percent,
    get_currency_name,
)

from billing import fonts
from billing.core.money import minor_units, plain

DEFAULT_LOCALE: Final = "en"
_BIDI_MARKS: Final = str.maketrans("", "", "\u200e\u200f\u061c")
# Babel rounds in the current decimal context; amounts can have more than its default 28
# digits.
_WIDE: Final = decimal.Context(prec=100)


def canonical_locale(value: str) -> str:
    """A locale name as Babel spells it ('fr_FR' for 'fr-FR'); ValueError if unknown."""
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(
            f"{value!r} is not a known locale (use a language code like en, fr, ja "
            "or a language and territory like fr_CA, pt_BR)"
        ) from None


@functools.cache
def locale_of(name: str) -> Locale:
    return Locale.parse(name)


@functools.cache
def _currency_pattern(locale: Locale, low: int, high: int) -> NumberPattern:
    pattern: NumberPattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (low, high)
    return pattern


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


# Equal values give equal texts (each function normalizes or quantizes its value), so the
# formatted texts are cached: an invoice repeats its amounts, a run repeats its prices.
@functools.lru_cache(maxsize=4096)
def money_text(amount: Decimal, currency: str, locale: Locale) -> str:
    """An amount with its currency's symbol and grouping ('$1,234.50', '1 234,500 KWD')."""
    digits = minor_units(currency)
    pattern = _currency_pattern(locale, digits, digits)
    with decimal.localcontext(_WIDE):
        shown = abs(amount) if amount.is_zero() else amount  # never "-$0.00"
        text = pattern.apply(shown, locale, currency=currency, currency_digits=False)
    return _drawable(str(text).translate(_BIDI_MARKS), currency, locale)


@functools.lru_cache(maxsize=4096)
def price_text(price: Decimal, currency: str, locale: Locale) -> str:
    """A unit price, exact: at least the currency's minor digits, more when it has them
    ('$0.000002')."""
    digits = minor_units(currency)
    exact = Decimal(plain(price.normalize(_WIDE)))  # 2E+1 -> 20, 0.500 -> 0.5
    pattern = _currency_pattern(locale, digits, max(digits, _decimals(exact)))
    with decimal.localcontext(_WIDE):
        text = pattern.apply(exact, locale, currency=currency, currency_digits=False)
    return _drawable(str(text).translate(_BIDI_MARKS), currency, locale)


def _drawable(text: str, currency: str, locale: Locale) -> str:
    """`text`, or with the currency's ISO code for a symbol the invoice fonts do not draw
    ('10,00 THB' for '10,00 ฿')."""
    symbol = locale.currency_symbols.get(currency, currency)
    if symbol != currency and fonts.missing(symbol):
        return text.replace(symbol, currency)
    return text


@functools.lru_cache(maxsize=4096)
def quantity_text(quantity: Decimal, locale: Locale) -> str:
    """A quantity with every digit it has, grouped ('1,534,000', '0.25')."""
    exact = Decimal(plain(quantity.normalize(_WIDE))) if quantity else Decimal(0)
    with decimal.localcontext(_WIDE):
        text = format_decimal(exact, locale=locale, decimal_quantization=False)
    return text.translate(_BIDI_MARKS)


def percent_text(rate: Decimal, locale: Locale) -> str:
    """A rate (a fraction) as a percentage ('20%', '20 %')."""
    with decimal.localcontext(_WIDE):
        text = format_percent(rate, locale=locale, decimal_quantization=False)
    return text.translate(_BIDI_MARKS)


def currency_name(currency: str, locale: Locale) -> str:
    """The currency by name and code ('US Dollar (USD)', 'dollar des États-Unis (USD)'): in
    English when the locale's name is in a right-to-left script (which would not read in
    order beside its code on a left-to-right page) or one the invoice fonts do not draw."""
    name = get_currency_name(currency, locale=locale)
    if fonts.missing(name) or any(unicodedata.bidirectional(c) in {"R", "AL"} for c in name):
        name = get_currency_name(currency, locale="en")
    return f"{name} ({currency})"


def date_text(day: date, locale: Locale) -> str:
    """A date written out ('Dec 1, 2026', '1 déc. 2026', '2026/12/01'); in digits when the
    locale would spell the month in a right-to-left script ('1.12.2026' for Hebrew), which
    on a left-to-right page would not read in order inside a sentence or a range; as
    2026-12-01 when it spells it in a script the invoice fonts do not draw."""
    text = format_date(day, format="medium", locale=locale).translate(_BIDI_MARKS)
    if any(unicodedata.bidirectional(c) in {"R", "AL"} for c in text):
        text = format_skeleton("yMd", day, locale=locale).translate(_BIDI_MARKS)
    if fonts.missing(text):  # a script the invoice fonts do not draw (Thai, Georgian, ...)
        return day.isoformat()
    return text
