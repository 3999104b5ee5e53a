"""Settlement calendars: trading sessions per market, payment-system holidays per currency,
and the settlement cycle per market with its dated switches.

No library computes settlement days; this module does, from two well-kept sources of holiday
rules (the ``holidays`` package's financial and country calendars). A settlement day is a day
that is both a trading session of the instrument's market and a business day of the currency's
payment system. Ad-hoc closures (a day of mourning, a system outage) come in as overrides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import holidays

# ISO 10383 market identifiers the calendar knows: the MIC -> its ``holidays`` market code.
MARKET_CALENDARS: dict[str, str] = {
    "XWAR": "XWAR",  # Warsaw Stock Exchange
    "XNYS": "XNYS",  # New York Stock Exchange
    "XNAS": "XNYS",  # Nasdaq keeps the NYSE holiday schedule
    "ARCX": "XNYS",  # NYSE Arca
    "BATS": "XNYS",  # Cboe BZX
    "XASE": "XNYS",  # NYSE American
    "XETR": "XETR",  # Xetra
    "XFRA": "XETR",  # Frankfurt floor follows the Xetra holiday schedule
    "XLON": "XLON",  # London Stock Exchange
    "XPAR": "XPAR",  # Euronext Paris
    "XAMS": "XAMS",  # Euronext Amsterdam
    "XBRU": "XBRU",  # Euronext Brussels
    "XLIS": "XLIS",  # Euronext Lisbon
    "XMIL": "XMIL",  # Borsa Italiana
    "XDUB": "XDUB",  # Euronext Dublin
    "XSWX": "XSWX",  # SIX Swiss Exchange
    "XMAD": "XMAD",  # Bolsa de Madrid
}
US_MARKETS = frozenset({"XNYS", "XNAS", "ARCX", "BATS", "XASE"})
KNOWN_MICS = frozenset(MARKET_CALENDARS)

# The settlement cycle N (in settlement days) with the date each value took effect.
US_CYCLE_SWITCHES: tuple[tuple[dt.date, int], ...] = ((dt.date(1995, 6, 7), 3),
                                                      (dt.date(2017, 9, 5), 2),
                                                      (dt.date(2024, 5, 28), 1))
EU_CYCLE_SWITCHES: tuple[tuple[dt.date, int], ...] = ((dt.date(2014, 10, 6), 2),
                                                      (dt.date(2027, 10, 11), 1))


@dataclass(frozen=True, slots=True)
class CalendarOverride:
    """An ad-hoc change to a calendar: ``closed`` adds a holiday, otherwise it removes one.

    ``calendar`` is a MIC (a market's sessions) or an ISO 4217 code (a payment system).
    """

    calendar: str
    day: dt.date
    closed: bool = True
    reason: str = ""


@lru_cache(maxsize=256)
def _market_holidays(code: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays.financial_holidays(code, years=year))


@lru_cache(maxsize=256)
def _payment_holidays(currency: str, year: int) -> frozenset[dt.date]:
    if currency == "USD":  # the Federal Reserve: a Saturday holiday is not moved to Friday
        calendar = holidays.financial_holidays("XFED", years=year)
    elif currency == "EUR":  # TARGET2 closing days
        calendar = holidays.financial_holidays("XECB", years=year)
    elif currency == "PLN":
        calendar = holidays.country_holidays("PL", years=year)
    elif currency == "GBP":  # England and Wales bank holidays
        calendar = holidays.country_holidays("GB", subdiv="ENG", years=year)
    elif currency == "CHF":
        calendar = holidays.country_holidays("CH", subdiv="ZH", years=year)
    else:
        return frozenset()
    return frozenset(calendar)


class SettlementCalendar:
    """Market sessions, payment days and settlement dates, with ad-hoc overrides applied."""

    def __init__(self, overrides: Iterable[CalendarOverride] = ()) -> None:
        self._settlement_dates: dict[tuple[dt.date, str, str], dt.date] = {}
        self._closed: set[tuple[str, dt.date]] = set()
        self._opened: set[tuple[str, dt.date]] = set()
        for override in overrides:
            target = self._closed if override.closed else self._opened
            target.add((override.calendar, override.day))

    def _override(self, calendar: str, day: dt.date) -> bool | None:
        if (calendar, day) in self._closed:
            return False
        if (calendar, day) in self._opened:
            return True
        return None

    def is_trading_session(self, day: dt.date, mic: str) -> bool:
        """A weekday that is not a holiday of the market (the MIC must be known)."""
        forced = self._override(mic, day)
        if forced is not None:
            return forced
        if day.weekday() >= 5:
            return False
        return day not in _market_holidays(MARKET_CALENDARS[mic], day.year)

    def is_payment_day(self, day: dt.date, currency: str) -> bool:
        forced = self._override(currency, day)
        if forced is not None:
            return forced
        if day.weekday() >= 5:
            return False
        return day not in _payment_holidays(currency, day.year)

    def is_settlement_day(self, day: dt.date, mic: str, currency: str) -> bool:
        return self.is_trading_session(day, mic) and self.is_payment_day(day, currency)

    @staticmethod
    def settlement_cycle(trade_date: dt.date, mic: str) -> int:
        """N in T+N for a trade executed on ``trade_date`` on ``mic``."""
        switches = US_CYCLE_SWITCHES if mic in US_MARKETS else EU_CYCLE_SWITCHES
        cycle = switches[0][1]
        for since, days in switches:
            if trade_date >= since:
                cycle = days
        return cycle

    def add_settlement_days(self, start: dt.date, count: int, mic: str, currency: str) -> dt.date:
        day = start
        remaining = count
        while remaining > 0:
            day += dt.timedelta(days=1)
            if self.is_settlement_day(day, mic, currency):
                remaining -= 1
        return day

    def settlement_date(self, trade_date: dt.date, mic: str, currency: str) -> dt.date:
        """trade_date + N settlement days (the contract's rule)."""
        key = (trade_date, mic, currency)
        found = self._settlement_dates.get(key)
        if found is None:
            found = self.add_settlement_days(trade_date, self.settlement_cycle(trade_date, mic),
                                             mic, currency)
            self._settlement_dates[key] = found
        return found

    def settlement_days_between(self, start: dt.date, end: dt.date, mic: str,
                                currency: str) -> int:
        """Settlement days after ``start`` up to and including ``end`` (ageing of fails)."""
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_settlement_day(day, mic, currency):
                count += 1
        return count


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every Monday-to-Friday from ``start`` through ``end``: the days end of day runs."""
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days
