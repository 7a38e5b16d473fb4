"""Money: exact decimals, ISO 4217 currencies, and the one place where amounts are rounded.

Nothing here accepts a float. Amounts are computed exactly as `Decimal` and rounded once,
half up, to the currency's minor unit by `round_money` (see CONTRACT.md section 3).
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Final

# Enough digits that no product or quotient the rating rules form (prices with a dozen
# decimals times quantities up to 1e15, prorations over at most 31 days) is ever cut short.
_EXACT: Final = decimal.Context(prec=80, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])

# ISO 4217 active codes and their minor units. Codes with no minor unit (XAU, XDR, ...) are
# not currencies one can invoice in and are left out on purpose.
_TWO_DECIMALS = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT
    LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
    NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES
    WST XCD XCG YER ZAR ZMW ZWG
"""
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DECIMALS = "CLF UYW"

_MINOR_UNITS: Final[dict[str, int]] = {
    code: digits
    for codes, digits in (
        (_TWO_DECIMALS, 2),
        (_NO_DECIMALS, 0),
        (_THREE_DECIMALS, 3),
        (_FOUR_DECIMALS, 4),
    )
    for code in codes.split()
}


_QUANTA: dict[str, Decimal] = {}  # the minor unit of each currency seen, as 0.01 or 1


class MoneyError(ValueError):
    """A value that cannot be money: a float, an unknown currency, mixed currencies."""


def minor_units(currency: str) -> int:
    """Digits after the point in `currency`'s minor unit (USD 2, JPY 0, KWD 3)."""
    try:
        return _MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 currency code {currency!r}") from None


def is_currency(code: str) -> bool:
    return code in _MINOR_UNITS


def exact(value: Decimal | int | str) -> Decimal:
    """An exact Decimal from a Decimal, an int or a decimal string; floats are refused."""
    if isinstance(value, bool | float):
        raise MoneyError(f"{value!r} is a {type(value).__name__}; money needs exact decimals")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except decimal.InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{value!r} is a {type(value).__name__}; money needs exact decimals")
    if not result.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    return result


def add(a: Decimal, b: Decimal) -> Decimal:
    """a + b, exactly (the default context would round past 28 digits)."""
    return _EXACT.add(a, b)


def subtract(a: Decimal, b: Decimal) -> Decimal:
    """a - b, exactly."""
    return _EXACT.subtract(a, b)


def total(values: Iterable[Decimal]) -> Decimal:
    """The exact sum of `values` (0 for none)."""
    result = Decimal(0)
    for value in values:
        result = _EXACT.add(result, value)
    return result


def multiply(a: Decimal, b: Decimal | int) -> Decimal:
    """a × b, exactly."""
    return _EXACT.multiply(a, b)  # the context takes an int exactly, as it is


def prorate(amount: Decimal, numerator: int, denominator: int) -> Decimal:
    """amount × numerator / denominator, exact to 80 significant digits before rounding."""
    return _EXACT.divide(_EXACT.multiply(amount, Decimal(numerator)), Decimal(denominator))


def ceil_div(quantity: Decimal, size: Decimal) -> Decimal:
    """ceil(quantity / size) as a whole Decimal."""
    return _EXACT.divide(quantity, size).to_integral_value(rounding=ROUND_CEILING)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The project's one rounding rule: half up, to the currency's minor unit."""
    if not isinstance(amount, Decimal):
        raise MoneyError(f"{amount!r} is a {type(amount).__name__}; money needs exact decimals")
    quantum = _QUANTA.get(currency) or _QUANTA.setdefault(
        currency, Decimal(1).scaleb(-minor_units(currency))
    )
    # In the exact context: the default one refuses results of more than 28 digits.
    return amount.quantize(quantum, rounding=ROUND_HALF_UP, context=_EXACT)


def plain(value: Decimal) -> str:
    """A decimal as a plain string, never in exponent form ('1534000', '0.00', '12.5')."""
    return format(value.copy_abs() if value.is_zero() else value, "f")


def plain_quantity(value: Decimal) -> str:
    """An exact quantity without trailing zeros ('1.5' for 1.500, '1534000' for 1.534E+6)."""
    if value.is_zero():
        return "0"
    return format(value.normalize(_EXACT), "f")  # the default context would cut to 28 digits


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Adding two currencies is an error, not a conversion."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or isinstance(self.amount, bool):
            raise MoneyError(
                f"{self.amount!r} is a {type(self.amount).__name__}; money needs exact decimals"
            )
        minor_units(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError(f"cannot combine money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(subtract(self.amount, other.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def times(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise MoneyError("cannot multiply money by a float")
        return Money(multiply(self.amount, factor), self.currency)

    def rounded(self) -> Money:
        """Rounded half up to the currency's minor unit (see `round_money`)."""
        return Money(round_money(self.amount, self.currency), self.currency)

    def __str__(self) -> str:
        return plain(self.amount)
