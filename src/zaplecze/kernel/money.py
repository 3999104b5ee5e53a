"""Exact amounts: Decimal in Python, integers at a declared scale in storage.

Every asset has a scale: a currency's minor unit (ISO 4217) or an instrument's quantity scale.
A ledger amount is an ``int`` count of the asset's smallest unit; ``units`` and ``decimal_of``
convert between the two without ever touching a binary float. Each rounding site names its
mode by calling ``round_half_up`` (the contract's only rounding) or ``round_down``.
"""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache

import iso4217

# Arithmetic on amounts never loses digits: 60 significant digits is far beyond any book.
_CONTEXT = decimal.Context(prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])
# The same, refusing to round: ``units`` scales in it and counts digits only when it would.
_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.Inexact])


# ASCII digits only: str.isdigit() would also admit '²' or Arabic-Indic digits.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)


class NotAnExactNumber(ValueError):
    """Text that is not a plain decimal number (NaN, Infinity, exponent, thousands separator)."""


def parse_decimal(text: str) -> Decimal:
    """A contract number: digits with an optional sign and '.' point; no exponent, NaN or ','."""
    cleaned = text.strip()
    if not _PLAIN_DECIMAL.fullmatch(cleaned):
        raise NotAnExactNumber(f"{text!r} is not a decimal number" if cleaned else "empty")
    return Decimal(cleaned)


@cache
def currency_scale(code: str) -> int:
    """The currency's minor unit from ISO 4217 (2 for USD, EUR, PLN, GBP; 0 for JPY)."""
    try:
        exponent = iso4217.Currency(code).exponent
    except (ValueError, KeyError) as error:
        raise ValueError(f"{code!r} is not an ISO 4217 currency") from error
    return int(exponent) if exponent is not None else 0


def is_currency(code: str) -> bool:
    try:
        currency_scale(code)
    except ValueError:
        return False
    return len(code) == 3 and code.isupper()


@cache
def _quantum(scale: int) -> Decimal:
    """One smallest unit at ``scale`` decimals (0.01 for 2): what amounts are quantized to."""
    return Decimal(1).scaleb(-scale)


def fits_scale(value: Decimal, scale: int) -> bool:
    """True when ``value`` has no digits below ``scale`` decimals."""
    return value == value.quantize(_quantum(scale), rounding=ROUND_DOWN)


def units(value: Decimal | Fraction, scale: int) -> int:
    """The exact integer count of smallest units; refuses a value that does not fit the scale."""
    if isinstance(value, Decimal):
        try:
            scaled = value.scaleb(scale, _EXACT)
        except decimal.Inexact:  # more digits than the context keeps: count them one by one
            return _units_of_digits(value, scale)
        count = int(scaled)
        if scaled != count:
            raise ValueError(f"{value} has more than {scale} decimals")
        return count
    scaled_fraction = Fraction(value) * 10**scale
    if scaled_fraction.denominator != 1:
        raise ValueError(f"{value} has more than {scale} decimals")
    return int(scaled_fraction)


def _units_of_digits(value: Decimal, scale: int) -> int:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), value
    shift = exponent + scale
    if shift >= 0:
        count = int("".join(map(str, digits)) or "0") * 10**shift
    else:
        whole, rest = divmod(int("".join(map(str, digits)) or "0"), 10**-shift)
        if rest:
            raise ValueError(f"{value} has more than {scale} decimals")
        count = whole
    return int(-count if sign else count)


def decimal_of(count: int, scale: int) -> Decimal:
    """The Decimal for an integer count of smallest units, written at exactly ``scale`` places."""
    return Decimal(count).scaleb(-scale, _CONTEXT)


def round_half_up(value: Decimal | Fraction, scale: int) -> Decimal:
    """Round half away from zero at ``scale`` decimals: the contract's rounding."""
    if isinstance(value, Fraction):
        return _round_fraction(value, scale, half_up=True)
    return value.quantize(_quantum(scale), rounding=ROUND_HALF_UP, context=_CONTEXT)


def round_down(value: Decimal | Fraction, scale: int) -> Decimal:
    """Round toward zero at ``scale`` decimals: fractional entitlements are cut, never rounded."""
    if isinstance(value, Fraction):
        return _round_fraction(value, scale, half_up=False)
    return value.quantize(_quantum(scale), rounding=ROUND_DOWN, context=_CONTEXT)


def _round_fraction(value: Fraction, scale: int, *, half_up: bool) -> Decimal:
    scaled = abs(value) * 10**scale
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if half_up and 2 * remainder >= scaled.denominator:
        whole += 1
    sign = -1 if value < 0 else 1
    return decimal_of(sign * whole, scale)


def plain(value: Decimal) -> str:
    """A quantity written exactly, without trailing zeros and never in exponent form."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(_CONTEXT), "f")


def at_scale(value: Decimal, scale: int) -> str:
    """Money written at its currency's minor unit ("1234.50")."""
    return format(value.quantize(_quantum(scale), context=_CONTEXT), "f")
