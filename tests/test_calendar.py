"""The settlement calendar (kernel/calendar.py) against the contract and an independent source.

Market sessions come from the ``holidays`` package; ``exchange_calendars`` is a second,
independently maintained source of the same facts. Every weekday of 2025-2028 is compared for
the five markets of the contract. Where the two legitimately differ, the day is listed in
``KNOWN_DIFFERENCES`` with the reason; the test fails on any other difference, and also on a
listed difference that no longer occurs (so the list never goes stale).
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import cache

import pytest

from zaplecze.kernel.calendar import (
    KNOWN_MICS,
    CalendarOverride,
    SettlementCalendar,
    weekdays,
)

D = dt.date
FIRST, LAST = D(2025, 1, 1), D(2028, 12, 31)
CROSS_CHECKED = ("XWAR", "XNYS", "XNAS", "XETR", "XLON")

# (MIC, day) -> why the two libraries differ. Empty: on 2025-2028 they agree on every weekday
# for all five markets (checked with holidays 0.109 and exchange_calendars 4.13.2), including
# the 2025-01-09 NYSE/Nasdaq closure for President Carter and Poland's new 24 December holiday.
# An entry must name the exact date and the reason (e.g. an ad-hoc closure one library lacks).
KNOWN_DIFFERENCES: dict[tuple[str, dt.date], str] = {}


@cache
def _exchange_sessions(mic: str) -> frozenset[dt.date]:
    import exchange_calendars as xcals

    # exchange_calendars has its own XNAS calendar; fall back to XNYS only if it ever lacks one.
    name = mic if mic in xcals.get_calendar_names() else "XNYS"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calendar = xcals.get_calendar(name, start=FIRST.isoformat(), end=LAST.isoformat())
    return frozenset(day.date() for day in calendar.sessions)


def _disagreements(mic: str) -> dict[dt.date, tuple[bool, bool]]:
    ours = SettlementCalendar()
    theirs = _exchange_sessions(mic)
    found = {}
    for day in weekdays(FIRST, LAST):
        a, b = ours.is_trading_session(day, mic), day in theirs
        if a != b:
            found[day] = (a, b)
    return found


@pytest.mark.parametrize("mic", CROSS_CHECKED)
def test_sessions_agree_with_exchange_calendars_on_every_weekday_2025_2028(mic: str) -> None:
    found = _disagreements(mic)
    expected = {day for (m, day) in KNOWN_DIFFERENCES if m == mic}
    unexplained = {day: f"zaplecze session={a}, exchange_calendars session={b}"
                   for day, (a, b) in found.items() if day not in expected}
    stale = expected - set(found)
    assert not unexplained, f"{mic}: unexplained calendar differences: {unexplained}"
    assert not stale, f"{mic}: documented differences that no longer occur: {sorted(stale)}"


def test_the_cross_check_compares_a_full_set_of_sessions() -> None:
    """Guard against a vacuous comparison (an empty or truncated exchange_calendars range)."""
    for mic in CROSS_CHECKED:
        sessions = _exchange_sessions(mic)
        assert min(sessions) <= D(2025, 1, 3) and max(sessions) >= D(2028, 12, 28), mic
        assert 4 * 245 <= len(sessions) <= 4 * 256, (mic, len(sessions))


def test_every_cross_checked_market_is_known() -> None:
    assert set(CROSS_CHECKED) <= KNOWN_MICS


# -- the contract's worked examples ---------------------------------------------------------

def test_warsaw_trade_on_14_august_2024_settles_on_the_19th() -> None:
    """T+2 in settlement days; Thu 15 August is a Polish holiday (market and PLN both shut):
    Fri 16 is day 1, Mon 19 day 2 (golden figure 3)."""
    calendar = SettlementCalendar()
    assert not calendar.is_trading_session(D(2024, 8, 15), "XWAR")
    assert not calendar.is_payment_day(D(2024, 8, 15), "PLN")
    assert calendar.settlement_date(D(2024, 8, 14), "XWAR", "PLN") == D(2024, 8, 19)


def test_new_york_trade_on_3_july_2024_settles_on_the_5th() -> None:
    """T+1; Thu 4 July is neither an NYSE session nor a Fed business day (golden figure 4)."""
    calendar = SettlementCalendar()
    assert calendar.settlement_date(D(2024, 7, 3), "XNYS", "USD") == D(2024, 7, 5)


@pytest.mark.parametrize("mic", ["XNYS", "XNAS"])
def test_us_cycle_is_two_days_before_28_may_2024_and_one_from_it(mic: str) -> None:
    calendar = SettlementCalendar()
    assert calendar.settlement_cycle(D(2024, 5, 24), mic) == 2
    assert calendar.settlement_cycle(D(2024, 5, 27), mic) == 2
    assert calendar.settlement_cycle(D(2024, 5, 28), mic) == 1
    # Fri 24 May + 2: Mon 27 is Memorial Day, so Tue 28, Wed 29 ...
    assert calendar.settlement_date(D(2024, 5, 24), mic, "USD") == D(2024, 5, 29)
    # ... and the first T+1 trade settles the same day: the industry's "double settlement day".
    assert calendar.settlement_date(D(2024, 5, 28), mic, "USD") == D(2024, 5, 29)


@pytest.mark.parametrize(("mic", "currency"),
                         [("XWAR", "PLN"), ("XETR", "EUR"), ("XLON", "GBP")])
def test_european_cycle_is_two_days_until_and_one_day_from_11_october_2027(
        mic: str, currency: str) -> None:
    calendar = SettlementCalendar()
    assert calendar.settlement_cycle(D(2027, 10, 8), mic) == 2
    assert calendar.settlement_cycle(D(2027, 10, 11), mic) == 1
    # Fri 8 October + 2 = Tue 12; Mon 11 October + 1 = Tue 12 as well.
    assert calendar.settlement_date(D(2027, 10, 8), mic, currency) == D(2027, 10, 12)
    assert calendar.settlement_date(D(2027, 10, 11), mic, currency) == D(2027, 10, 12)


def test_a_fed_holiday_on_a_saturday_is_not_moved_to_the_friday() -> None:
    """Veterans Day 2028 is Saturday 11 November. The Fed stays open on Friday the 10th (the
    NYSE is open on Veterans Day anyway), so a Thursday trade settles on the Friday. Christmas
    2027 and 4 July 2026 are Saturdays too: the NYSE closes on the Friday, the Fed does not."""
    calendar = SettlementCalendar()
    assert calendar.is_payment_day(D(2028, 11, 10), "USD")
    assert calendar.settlement_date(D(2028, 11, 9), "XNYS", "USD") == D(2028, 11, 10)
    for friday in (D(2027, 12, 24), D(2026, 7, 3)):
        assert calendar.is_payment_day(friday, "USD"), friday
        assert not calendar.is_trading_session(friday, "XNYS"), friday
    # A Fed holiday on a weekday that the NYSE trades through still blocks USD settlement:
    # Fri 10 October 2025 + 1 skips Columbus Day (Mon 13) and settles on Tue 14.
    assert calendar.is_trading_session(D(2025, 10, 13), "XNYS")
    assert not calendar.is_payment_day(D(2025, 10, 13), "USD")
    assert calendar.settlement_date(D(2025, 10, 10), "XNYS", "USD") == D(2025, 10, 14)


def test_the_nyse_closure_of_9_january_2025() -> None:
    """The national day of mourning for President Carter: NYSE and Nasdaq closed, the Fed
    open. A trade of the 8th settles on the 10th."""
    calendar = SettlementCalendar()
    for mic in ("XNYS", "XNAS"):
        assert not calendar.is_trading_session(D(2025, 1, 9), mic)
        assert calendar.settlement_date(D(2025, 1, 8), mic, "USD") == D(2025, 1, 10)
    assert calendar.is_payment_day(D(2025, 1, 9), "USD")


def test_weekends_are_never_sessions_or_payment_days() -> None:
    calendar = SettlementCalendar()
    for day in (D(2025, 3, 1), D(2025, 3, 2)):
        for mic in CROSS_CHECKED:
            assert not calendar.is_trading_session(day, mic)
        for currency in ("USD", "EUR", "PLN", "GBP"):
            assert not calendar.is_payment_day(day, currency)


# -- overrides -------------------------------------------------------------------------------

def test_an_ad_hoc_market_closure_moves_a_settlement_date() -> None:
    """Tue 4 March 2025 on XWAR settles Thu 6 (T+2). Close Wed 5 (say, a system outage): the
    settlement moves to Fri 7. The override touches that market only."""
    plain = SettlementCalendar()
    assert plain.settlement_date(D(2025, 3, 4), "XWAR", "PLN") == D(2025, 3, 6)
    closed = SettlementCalendar([CalendarOverride("XWAR", D(2025, 3, 5), reason="outage")])
    assert not closed.is_trading_session(D(2025, 3, 5), "XWAR")
    assert closed.settlement_date(D(2025, 3, 4), "XWAR", "PLN") == D(2025, 3, 7)
    assert closed.is_trading_session(D(2025, 3, 5), "XETR")
    assert closed.is_payment_day(D(2025, 3, 5), "PLN")


def test_an_ad_hoc_payment_system_closure_moves_a_settlement_date() -> None:
    closed = SettlementCalendar([CalendarOverride("PLN", D(2025, 3, 5))])
    assert closed.is_trading_session(D(2025, 3, 5), "XWAR")
    assert not closed.is_settlement_day(D(2025, 3, 5), "XWAR", "PLN")
    assert closed.settlement_date(D(2025, 3, 4), "XWAR", "PLN") == D(2025, 3, 7)


def test_a_reopening_override_makes_a_holiday_a_settlement_day() -> None:
    """Had the NYSE traded on 9 January 2025, a trade of the 8th would settle on the 9th; had
    the Fed opened on Columbus Day 2025, a trade of Fri 10 October would settle on Mon 13."""
    reopened = SettlementCalendar([
        CalendarOverride("XNYS", D(2025, 1, 9), closed=False, reason="no closure"),
        CalendarOverride("USD", D(2025, 10, 13), closed=False),
    ])
    assert reopened.is_trading_session(D(2025, 1, 9), "XNYS")
    assert reopened.settlement_date(D(2025, 1, 8), "XNYS", "USD") == D(2025, 1, 9)
    assert not reopened.is_trading_session(D(2025, 1, 9), "XNAS")  # XNAS has its own MIC
    assert reopened.settlement_date(D(2025, 10, 10), "XNYS", "USD") == D(2025, 10, 13)


# -- settlement_days_between (ageing of fails) -----------------------------------------------

def test_settlement_days_between_counts_after_start_through_end() -> None:
    calendar = SettlementCalendar()
    # After Wed 14 August 2024 through Mon 19: Fri 16 and Mon 19 (Thu 15 is a holiday).
    assert calendar.settlement_days_between(D(2024, 8, 14), D(2024, 8, 19), "XWAR", "PLN") == 2
    assert calendar.settlement_days_between(D(2024, 8, 14), D(2024, 8, 14), "XWAR", "PLN") == 0
    assert calendar.settlement_days_between(D(2024, 8, 19), D(2024, 8, 14), "XWAR", "PLN") == 0
    # Through a weekend that is not a settlement day: Fri 16 -> Sat 17 counts nothing.
    assert calendar.settlement_days_between(D(2024, 8, 16), D(2024, 8, 17), "XWAR", "PLN") == 0
    # The whole of 2025 on the NYSE in dollars: sessions that are also Fed business days.
    sessions = [day for day in weekdays(D(2025, 1, 1), D(2025, 12, 31))
                if calendar.is_settlement_day(day, "XNYS", "USD")]
    assert calendar.settlement_days_between(D(2024, 12, 31), D(2025, 12, 31), "XNYS",
                                            "USD") == len(sessions)
    closed = SettlementCalendar([CalendarOverride("XWAR", D(2024, 8, 16))])
    assert closed.settlement_days_between(D(2024, 8, 14), D(2024, 8, 19), "XWAR", "PLN") == 1


def test_settlement_days_between_is_the_inverse_of_add_settlement_days() -> None:
    calendar = SettlementCalendar()
    start = D(2025, 12, 19)
    for count in range(0, 12):
        end = calendar.add_settlement_days(start, count, "XETR", "EUR")
        assert calendar.settlement_days_between(start, end, "XETR", "EUR") == count
