"""Reference-data rows (instruments, accounts, fees, withholding, prices, fx) validated into
records. Each function takes one row's values and returns the record or raises ``Rejected``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

from stdnum import isin as isin_number

from zaplecze.kernel.calendar import KNOWN_MICS, CalendarOverride
from zaplecze.kernel.fields import (
    Rejected,
    country_field,
    currency_field,
    enum_field,
    required,
    required_date,
    required_decimal,
)
from zaplecze.kernel.limits import QUANTITY_SCALE_MAX
from zaplecze.kernel.money import is_currency
from zaplecze.kernel.problems import Rule
from zaplecze.refdata.model import (
    Account,
    AccountKind,
    FeeRule,
    Instrument,
    LotMethod,
    WithholdingRate,
)

INSTRUMENT_KINDS = ("EQUITY", "ETF")


@lru_cache(maxsize=65_536)
def is_valid_isin(code: str) -> bool:
    """ISO 6166 with its check digit (python-stdnum), upper case as the standard writes it."""
    return code == code.upper() and bool(isin_number.is_valid(code))


def isin_field(values: Mapping[str, str], column: str) -> str:
    code = required(values, column)
    if not is_valid_isin(code):
        raise Rejected(Rule.INVALID_ISIN,
                       f"{column} {code!r} is not a valid ISIN (ISO 6166 check digit)")
    return code


def mic_field(values: Mapping[str, str], column: str) -> str:
    mic = required(values, column)
    if mic not in KNOWN_MICS:
        raise Rejected(Rule.UNKNOWN_MIC, f"{column} {mic!r} is not a market the calendar knows "
                                         f"({', '.join(sorted(KNOWN_MICS))})")
    return mic


def instrument(values: Mapping[str, str]) -> Instrument:
    isin = isin_field(values, "isin")
    kind = required(values, "kind")
    if kind not in INSTRUMENT_KINDS:
        raise Rejected(Rule.INVALID_ENUM_VALUE, f"kind {kind!r} is not EQUITY or ETF")
    currency = currency_field(values, "currency")
    mic = mic_field(values, "mic")
    issuer = values.get("issuer_country", "") or isin[:2]
    if len(issuer) != 2 or not issuer.isalpha() or not issuer.isupper():
        raise Rejected(Rule.INVALID_COUNTRY, f"issuer_country {issuer!r} is not ISO 3166 alpha-2")
    scale_text = values.get("quantity_scale", "") or "0"
    if not (scale_text.isascii() and scale_text.isdigit()) or int(scale_text) > QUANTITY_SCALE_MAX:
        raise Rejected(Rule.INVALID_NUMBER, f"quantity_scale {scale_text!r} is not a whole "
                                            f"number from 0 to {QUANTITY_SCALE_MAX}")
    return Instrument(isin=isin, symbol=values.get("symbol", ""), name=values.get("name", ""),
                      kind=kind, currency=currency, mic=mic, issuer_country=issuer,
                      quantity_scale=int(scale_text))


def account(values: Mapping[str, str]) -> Account:
    return Account(account=required(values, "account"), name=required(values, "name"),
                   kind=enum_field(values, "kind", AccountKind),
                   base_currency=currency_field(values, "base_currency"),
                   tax_residence=country_field(values, "tax_residence"),
                   lot_method=enum_field(values, "lot_method", LotMethod, default=LotMethod.FIFO))


def fee_rule(values: Mapping[str, str]) -> FeeRule:
    rate = required_decimal(values, "rate_bps")
    minimum = required_decimal(values, "minimum")
    if rate < 0 or minimum < 0:
        raise Rejected(Rule.INVALID_RATE, f"rate_bps {rate} and minimum {minimum} must be ≥ 0")
    return FeeRule(mic=mic_field(values, "mic"), currency=currency_field(values, "currency"),
                   rate_bps=rate, minimum=minimum)


def withholding_rate(values: Mapping[str, str]) -> WithholdingRate:
    rate = required_decimal(values, "rate")
    if not Decimal(0) <= rate <= Decimal(1):
        raise Rejected(Rule.INVALID_RATE, f"rate {rate} is not a fraction between 0 and 1")
    return WithholdingRate(issuer_country=country_field(values, "issuer_country"),
                           tax_residence=country_field(values, "tax_residence", allow_star=True),
                           rate=rate)


def price(values: Mapping[str, str],
          instruments: Mapping[str, Instrument]) -> tuple[dt.date, str, Decimal, str]:
    day = required_date(values, "date")
    isin = isin_field(values, "isin")
    if isin not in instruments:
        raise Rejected(Rule.UNKNOWN_INSTRUMENT, f"isin {isin} is not in instruments.csv")
    close = required_decimal(values, "close")
    if close <= 0:
        raise Rejected(Rule.NON_POSITIVE_PRICE, f"close {close} must be positive")
    currency = currency_field(values, "currency")
    if currency != instruments[isin].currency:
        raise Rejected(Rule.CURRENCY_MISMATCH,
                       f"currency {currency} differs from {isin}'s {instruments[isin].currency}")
    return day, isin, close, currency


def fx_rate(values: Mapping[str, str]) -> tuple[dt.date, str, str, Decimal]:
    day = required_date(values, "date")
    base = currency_field(values, "base")
    quote = currency_field(values, "quote")
    rate = required_decimal(values, "rate")
    if rate <= 0:
        raise Rejected(Rule.INVALID_RATE, f"rate {rate} must be positive")
    return day, base, quote, rate


def calendar_override(values: Mapping[str, str]) -> CalendarOverride:
    """An ad-hoc closure (closed=true, the default) or opening of a market (a MIC) or a
    payment system (an ISO 4217 code) on one date."""
    calendar = required(values, "calendar")
    if calendar not in KNOWN_MICS and not is_currency(calendar):
        raise Rejected(Rule.UNKNOWN_MIC, f"calendar {calendar!r} is neither a known MIC nor an "
                                         f"ISO 4217 currency")
    day = required_date(values, "date")
    flag = (values.get("closed", "") or "true").lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise Rejected(Rule.INVALID_ENUM_VALUE, f"closed {flag!r} is not true or false")
    return CalendarOverride(calendar, day, flag in ("true", "1", "yes"),
                            values.get("reason", ""))
