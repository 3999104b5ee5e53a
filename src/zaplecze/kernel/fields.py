"""Field parsers for input rows. Inside a row's validator a broken rule raises ``Rejected``;
the validator's caller turns it into a ``Problem`` value for that row, so one bad row never
stops the others."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from zaplecze.kernel.money import NotAnExactNumber, is_currency, parse_decimal
from zaplecze.kernel.problems import Rule

E = TypeVar("E", bound=StrEnum)


class Rejected(Exception):
    """A row broke ``rule``; ``detail`` says how, with the numbers."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(f"{rule.value}: {detail}")
        self.rule = rule
        self.detail = detail


def required(values: Mapping[str, str], column: str) -> str:
    value = values.get(column, "")
    if not value:
        raise Rejected(Rule.MISSING_REQUIRED_VALUE, f"{column} is required")
    return value


def decimal_field(values: Mapping[str, str], column: str, *, optional: bool = False,
                  default: Decimal | None = None) -> Decimal | None:
    text = values.get(column, "")
    if not text:
        if optional:
            return default
        raise Rejected(Rule.MISSING_REQUIRED_VALUE, f"{column} is required")
    try:
        return parse_decimal(text)
    except NotAnExactNumber:
        raise Rejected(Rule.INVALID_NUMBER,
                       f"{column} {text!r} is not a plain decimal (digits, '.' point, "
                       f"no exponent or thousands separator)") from None


def required_decimal(values: Mapping[str, str], column: str) -> Decimal:
    value = decimal_field(values, column)
    assert value is not None
    return value


def date_field(values: Mapping[str, str], column: str, *,
               optional: bool = False) -> dt.date | None:
    text = values.get(column, "")
    if not text:
        if optional:
            return None
        raise Rejected(Rule.MISSING_REQUIRED_VALUE, f"{column} is required")
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise Rejected(Rule.INVALID_DATE, f"{column} {text!r} is not a date YYYY-MM-DD") from None


def required_date(values: Mapping[str, str], column: str) -> dt.date:
    value = date_field(values, column)
    assert value is not None
    return value


def currency_field(values: Mapping[str, str], column: str) -> str:
    code = required(values, column)
    if not is_currency(code):
        raise Rejected(Rule.INVALID_CURRENCY, f"{column} {code!r} is not an ISO 4217 currency")
    return code


def country_field(values: Mapping[str, str], column: str, *, allow_star: bool = False) -> str:
    code = required(values, column)
    if allow_star and code == "*":
        return code
    if len(code) != 2 or not code.isalpha() or not code.isupper():
        raise Rejected(Rule.INVALID_COUNTRY, f"{column} {code!r} is not an ISO 3166 alpha-2 code")
    return code


def enum_field(values: Mapping[str, str], column: str, enum: type[E], *,
               default: E | None = None) -> E:
    text = values.get(column, "")
    if not text and default is not None:
        return default
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise Rejected(Rule.INVALID_ENUM_VALUE,
                       f"{column} {text!r} is not one of {allowed}") from None


def weekday(day: dt.date, column: str) -> dt.date:
    if day.weekday() >= 5:
        raise Rejected(Rule.NOT_A_BUSINESS_DAY, f"{column} {day} is a {day:%A}")
    return day
