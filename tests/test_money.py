"""Exact amounts (kernel/money.py): parsing the contract's numbers, scales, rounding, writing.

Decisions recorded here (the contract: "Numbers have no thousands separators and no exponent;
NaN and Infinity are not numbers here"; `.` is the decimal point):
- accepted: an optional leading sign ("+1.5", "-2"), a bare leading or trailing point (".5",
  "5."), surrounding blanks (a spreadsheet's padding). Each is a plain decimal that reads
  exactly; none is a separator or an exponent.
- refused: "", NaN, Infinity (any spelling), exponents, "," and other separators ("1,000",
  "1 000", "1_000" - Python's Decimal would accept the last one), a lone sign or point, two
  points, two signs, and digits that are not ASCII 0-9 (the CSV contract's digits).
- "rounded half-up" is taken as half away from zero, the meaning of ROUND_HALF_UP in
  Python's decimal module and of commercial rounding: 2.5 -> 3 and -2.5 -> -3. Every amount
  the contract rounds (gross, commission, withholding, partial lot cost, cash in lieu) is
  positive, so the sign convention only matters for consistency: Decimal and Fraction agree.
"""

from __future__ import annotations

import os
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zaplecze.kernel.money import (
    NotAnExactNumber,
    at_scale,
    currency_scale,
    decimal_of,
    fits_scale,
    is_currency,
    parse_decimal,
    plain,
    round_down,
    round_half_up,
    units,
)

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = 2000 if DEEP else 200


# -- parse_decimal ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("0", "0"),
    ("1234.50", "1234.50"),
    ("100", "100"),
    ("-2", "-2"),
    ("+1.5", "1.5"),
    (".5", "0.5"),
    ("5.", "5"),
    ("-.5", "-0.5"),
    ("0.000001", "0.000001"),
    (" 7.25 ", "7.25"),
    ("007", "7"),
    ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
])
def test_parse_decimal_accepts_plain_decimals(text: str, value: str) -> None:
    parsed = parse_decimal(text)
    assert parsed == Decimal(value)
    assert parsed.is_finite()


def test_parse_decimal_keeps_the_written_scale() -> None:
    assert str(parse_decimal("1234.50")) == "1234.50"
    assert str(parse_decimal("0.10")) == "0.10"


@pytest.mark.parametrize("text", [
    "", "   ", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "Inf", "1e3", "1E3",
    "1.5e-2", "1,000", "1,5", "1 000", "1_000", "+", "-", ".", "+.", "1.2.3", "--1", "+-1",
    "1-", "$5", "5%", "0x10", "½",
])
def test_parse_decimal_refuses_what_the_contract_calls_not_a_number(text: str) -> None:
    with pytest.raises(NotAnExactNumber):
        parse_decimal(text)


@pytest.mark.parametrize("text", [
    "²",  # SUPERSCRIPT TWO: str.isdigit() is true but Decimal() raises InvalidOperation, which
          # is not a NotAnExactNumber: a CSV cell holding it aborts the whole `load`.
    "٤",  # ARABIC-INDIC DIGIT FOUR: read as 4 and booked.
    "１２",  # FULLWIDTH DIGITS: read as 12 and booked.
])
def test_parse_decimal_refuses_digits_other_than_ascii(text: str) -> None:
    with pytest.raises(NotAnExactNumber):
        parse_decimal(text)


def test_not_an_exact_number_is_a_value_error() -> None:
    assert issubclass(NotAnExactNumber, ValueError)


# -- scales ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "scale"), [
    ("USD", 2), ("EUR", 2), ("PLN", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("KWD", 3),
    ("BHD", 3),
])
def test_currency_scale_is_the_iso_4217_minor_unit(code: str, scale: int) -> None:
    assert currency_scale(code) == scale
    assert is_currency(code)


@pytest.mark.parametrize("code", ["ABC", "usd", "US", "", "EURO"])
def test_an_unknown_currency_is_refused(code: str) -> None:
    assert not is_currency(code)


def test_currency_scale_refuses_an_unknown_code() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        currency_scale("ABC")


def test_units_counts_smallest_units_exactly() -> None:
    assert units(Decimal("1234.50"), 2) == 123450
    assert units(Decimal("-0.05"), 2) == -5
    assert units(Decimal("100"), 0) == 100
    assert units(Decimal("1E+2"), 0) == 100
    assert units(Decimal("1.5"), 3) == 1500
    assert units(Fraction(1, 4), 2) == 25


@pytest.mark.parametrize(("value", "scale"), [
    (Decimal("1.005"), 2), (Decimal("0.5"), 0), (Decimal("12.3456"), 3),
    (Fraction(1, 3), 6), (Decimal("1E-3"), 2),
])
def test_units_refuses_excess_decimals(value: Decimal | Fraction, scale: int) -> None:
    with pytest.raises(ValueError, match="decimals"):
        units(value, scale)


def test_units_ignores_trailing_zeros_within_the_scale() -> None:
    assert units(Decimal("1.500"), 1) == 15


def test_decimal_of_writes_exactly_at_the_scale() -> None:
    assert str(decimal_of(123450, 2)) == "1234.50"
    assert str(decimal_of(-5, 2)) == "-0.05"
    assert str(decimal_of(7, 0)) == "7"
    assert str(decimal_of(0, 2)) == "0.00"
    assert str(decimal_of(1, 3)) == "0.001"


def test_fits_scale() -> None:
    assert fits_scale(Decimal("1.10"), 1)
    assert not fits_scale(Decimal("1.11"), 1)
    assert fits_scale(Decimal("5"), 0)
    assert not fits_scale(Decimal("0.5"), 0)


# -- rounding --------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "scale", "expected"), [
    ("2.5", 0, "3"),
    ("3.5", 0, "4"),  # not to even
    ("-2.5", 0, "-3"),  # half away from zero
    ("-2.4", 0, "-2"),
    ("2.345", 2, "2.35"),
    ("2.344999", 2, "2.34"),
    ("6051.565", 2, "6051.57"),  # golden figure 1: 12,103.13 x 50/100
    ("18.1275", 2, "18.13"),  # golden: T002's commission
    ("-0.005", 2, "-0.01"),
    ("0.0049", 2, "0.00"),
    ("45.345", 2, "45.35"),  # a banker's rounding would give 45.34
    ("1.0005", 3, "1.001"),
])
def test_round_half_up_on_decimal_and_fraction(value: str, scale: int, expected: str) -> None:
    assert str(round_half_up(Decimal(value), scale)) == expected
    assert str(round_half_up(Fraction(value), scale)) == expected


@pytest.mark.parametrize(("value", "scale", "expected"), [
    (Fraction(1, 3), 2, "0.33"),
    (Fraction(2, 3), 2, "0.67"),
    (Fraction(-2, 3), 2, "-0.67"),
    (Fraction(12103_13, 100) * Fraction(50, 100), 2, "6051.57"),
    (Fraction(1, 8), 2, "0.13"),
    (Fraction(-1, 8), 2, "-0.13"),
    (Fraction(1, 1000), 2, "0.00"),
    (Fraction(301, 3), 0, "100"),
])
def test_round_half_up_on_fractions_that_are_not_decimals(value: Fraction, scale: int,
                                                          expected: str) -> None:
    assert str(round_half_up(value, scale)) == expected


def test_round_down_cuts_toward_zero() -> None:
    assert str(round_down(Decimal("2.99"), 0)) == "2"
    assert str(round_down(Decimal("-2.99"), 0)) == "-2"
    assert str(round_down(Fraction(7, 3), 0)) == "2"
    assert str(round_down(Fraction(-7, 3), 0)) == "-2"
    assert str(round_down(Fraction(1, 3), 3)) == "0.333"


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=1, max_value=10**6),
       st.integers(min_value=0, max_value=4))
def test_round_half_up_agrees_on_decimal_and_fraction(numerator: int, denominator: int,
                                                      scale: int) -> None:
    """For a value that is a finite decimal, both paths give the same answer; for any value
    the result is within half a unit and rounds halves away from zero."""
    value = Fraction(numerator, denominator)
    rounded = round_half_up(value, scale)
    unit = Fraction(1, 10**scale)
    error = Fraction(rounded) - value
    assert abs(error) <= unit / 2
    if abs(error) == unit / 2:
        assert abs(Fraction(rounded)) > abs(value)  # away from zero
    if (value * 10**12).denominator == 1:
        assert round_half_up(Decimal(value.numerator) / Decimal(value.denominator), scale) \
            == rounded


# -- writing ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "written"), [
    ("100", "100"), ("100.000", "100"), ("1E+2", "100"), ("0.50", "0.5"), ("2.500", "2.5"),
    ("-2.500", "-2.5"), ("0.0000001", "0.0000001"), ("1E-7", "0.0000001"),
    ("123456789.123400", "123456789.1234"), ("0", "0"),
])
def test_plain_writes_quantities_without_trailing_zeros_or_exponent(value: str,
                                                                    written: str) -> None:
    assert plain(Decimal(value)) == written


@pytest.mark.parametrize(("value", "scale", "written"), [
    ("1234.5", 2, "1234.50"), ("5", 2, "5.00"), ("1E+3", 2, "1000.00"), ("7", 0, "7"),
    ("0.1", 3, "0.100"), ("-12.3", 2, "-12.30"), ("1.005", 2, "1.01"),
])
def test_at_scale_writes_money_at_the_minor_unit(value: str, scale: int, written: str) -> None:
    assert at_scale(Decimal(value), scale) == written


# -- round trips -----------------------------------------------------------------------------

@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=-10**20, max_value=10**20), st.integers(min_value=0, max_value=8))
def test_units_and_decimal_of_round_trip_from_units(count: int, scale: int) -> None:
    value = decimal_of(count, scale)
    assert units(value, scale) == count
    assert fits_scale(value, scale)
    assert parse_decimal(format(value, "f")) == value
    assert parse_decimal(plain(value)) == value
    assert parse_decimal(at_scale(value, scale)) == value


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=4,
                   min_value=Decimal("-1e12"), max_value=Decimal("1e12")))
def test_units_and_decimal_of_round_trip_from_decimals(value: Decimal) -> None:
    count = units(value, 4)
    assert decimal_of(count, 4) == value
    assert str(decimal_of(count, 4)) == at_scale(value, 4)
