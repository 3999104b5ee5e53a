"""CSDR settlement fails: cash penalties, ageing and the buy-in deadline.

Legal basis: Regulation (EU) No 909/2014 (CSDR) art. 7; Commission Delegated Regulation (EU)
2017/389 arts. 2-3 and Annex (the rates); RTS on settlement discipline, Delegated Regulation
(EU) 2018/1229. The Annex rates below were checked against the consolidated text of
2017/389 (see /work/shared/standards/market/settlement_facts.json); ESMA advised changes in
November 2024, so check whether a later delegated act amended the Annex before relying on them.

The daily penalty for a failing instruction is ``rate × reference value``, the reference value
being ``failed quantity × reference price`` (the closing price of the most relevant market in
terms of liquidity, 2017/389 art. 3), for lack of securities and lack of cash alike:

====================  ==========================================================  ==========
``PenaltyClass``      Annex row (fail due to lack of …)                           bp per day
====================  ==========================================================  ==========
LIQUID_SHARE          1. shares with a liquid market (MiFIR 2(1)(17)(b)), not SME  1.0
ILLIQUID_SHARE        2. shares without a liquid market, not SME growth            0.5
SME_GROWTH            3. instruments traded on SME growth markets (not debt, 6)    0.25
SOVEREIGN_DEBT        4. sovereign, central bank, MDB, EFSF/ESM debt               0.10
OTHER_DEBT            5. other debt instruments                                    0.20
SME_DEBT              6. debt instruments traded on SME growth markets             0.15
OTHER                 7. all other financial instruments                           0.5
====================  ==========================================================  ==========

Lack of cash (Annex row 8): the official interest rate for overnight credit of the central
bank issuing the settlement currency, floored at zero. It is an annual rate; this module
applies ``annual_rate / 365`` per failing day (actual/365, ESMA's and the CSDs' practice),
with ``annual_rate`` given as a fraction (5.75 % → ``Decimal("0.0575")``). ``CASH_DAY_COUNT``
names the divisor.

Conventions chosen here (each tested):

- *Failing days*: the settlement days (market session and currency payment day) from the
  intended settlement date (ISD) **inclusive** to ``today`` **exclusive**, ``today`` being the
  day it settled or the day not yet over. An instruction that settles on ISD has 0; one
  settling on the next settlement day has 1 (the ISD itself was failed).
- *Rounding*: ``daily_penalty`` is exact; each day's penalty is then rounded half up to the
  currency's minor unit (ISO 4217, ``kernel.money.currency_scale``), and totals are sums of
  the rounded days, as a CSD reports them day by day.
- *Buy-in*: the extension period is counted in settlement days after the ISD. CSDR art. 7(3):
  a buy-in is initiated when the failing participant has not delivered within 4 business days
  after the ISD; art. 7(4)(b) lets the RTS raise it up to 7 business days by asset type and
  liquidity, which RTS 2018/1229 art. 37 does for instruments without a liquid market
  (illiquid shares; other instruments only when flagged illiquid here); art. 7(3) gives SME
  growth market instruments 15 days (counted here as 15 settlement days, unless the market
  sets a shorter period: pass ``extension_days``). A buy-in is due from the settlement day
  after the extension period ends: ISD + extension + 1. Note: Regulation (EU) 2023/2845
  (CSDR Refit) made mandatory buy-ins apply only if the Commission activates them by an
  implementing act; ``buy_in_due`` says when the extension period is over, the fact a buy-in
  decision (mandatory or contractual) starts from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.money import currency_scale, round_half_up

ZERO = Decimal(0)
BASIS_POINT = Decimal("0.0001")
CASH_DAY_COUNT = 365  # actual/365: the annual overnight rate applied per failing day


class PenaltyClass(StrEnum):
    """The instrument rows of the 2017/389 Annex (lack of securities)."""

    LIQUID_SHARE = "LIQUID_SHARE"
    ILLIQUID_SHARE = "ILLIQUID_SHARE"
    SME_GROWTH = "SME_GROWTH"
    SOVEREIGN_DEBT = "SOVEREIGN_DEBT"
    OTHER_DEBT = "OTHER_DEBT"
    SME_DEBT = "SME_DEBT"
    OTHER = "OTHER"


RATE_BP_PER_DAY: dict[PenaltyClass, Decimal] = {
    PenaltyClass.LIQUID_SHARE: Decimal("1.0"),
    PenaltyClass.ILLIQUID_SHARE: Decimal("0.5"),
    PenaltyClass.SME_GROWTH: Decimal("0.25"),
    PenaltyClass.SOVEREIGN_DEBT: Decimal("0.10"),
    PenaltyClass.OTHER_DEBT: Decimal("0.20"),
    PenaltyClass.SME_DEBT: Decimal("0.15"),
    PenaltyClass.OTHER: Decimal("0.5"),
}

# Business days after the ISD before a buy-in (CSDR art. 7(3), 7(4)(b); RTS 2018/1229 art. 37).
EXTENSION_DAYS = 4
EXTENSION_DAYS_ILLIQUID = 7
EXTENSION_DAYS_SME_GROWTH = 15


class FailReason(StrEnum):
    LACK_OF_SECURITIES = "LACK_OF_SECURITIES"
    LACK_OF_CASH = "LACK_OF_CASH"


class FailingParty(StrEnum):
    """Who fails: we pay the penalty (US) or we receive it (THEM)."""

    US = "US"
    THEM = "THEM"


@dataclass(frozen=True, slots=True)
class Fail:
    """An instruction that did not settle on its intended settlement date."""

    reference: str  # our instruction reference (SEME) or the trade id
    counterparty: str
    isin: str
    intended_settlement_date: dt.date
    quantity: Decimal  # failing quantity, positive (the remainder after partial settlement)
    currency: str  # the settlement currency: penalties are computed in it
    reason: FailReason
    failing_party: FailingParty


@dataclass(frozen=True, slots=True)
class Penalty:
    """One day's cash penalty on one fail."""

    reference: str
    counterparty: str
    isin: str
    day: dt.date  # the failing day it is for
    currency: str
    quantity: Decimal
    reference_price: Decimal
    daily_rate: Decimal  # the fraction applied to the reference value that day
    exact: Decimal  # full precision
    amount: Decimal  # rounded half up to the currency's minor unit
    reason: FailReason
    failing_party: FailingParty

    @property
    def signed(self) -> Decimal:
        """Owed to us (+) or charged to us (−)."""
        return self.amount if self.failing_party is FailingParty.THEM else -self.amount


def daily_rate(penalty_class: PenaltyClass) -> Decimal:
    """The Annex rate of a lack-of-securities fail as a fraction per day (1 bp → 0.0001)."""
    return RATE_BP_PER_DAY[penalty_class] * BASIS_POINT


def daily_cash_rate(annual_rate: Decimal) -> Decimal:
    """The lack-of-cash rate per day: the overnight rate (floor 0) / 365."""
    return max(annual_rate, ZERO) / CASH_DAY_COUNT


def daily_penalty(failed_quantity: Decimal, reference_price: Decimal,
                  penalty_class: PenaltyClass) -> Decimal:
    """One day's penalty for lack of securities, full precision (not rounded)."""
    return failed_quantity * reference_price * daily_rate(penalty_class)


def daily_cash_penalty(failed_quantity: Decimal, reference_price: Decimal,
                       annual_rate: Decimal) -> Decimal:
    """One day's penalty for lack of cash, full precision: reference value × rate / 365."""
    return failed_quantity * reference_price * max(annual_rate, ZERO) / CASH_DAY_COUNT


def rounded(amount: Decimal, currency: str) -> Decimal:
    """Half up to the currency's minor unit (ISO 4217)."""
    return round_half_up(amount, currency_scale(currency))


def accrue(fail: Fail, day: dt.date, closing_price: Decimal, penalty_class: PenaltyClass, *,
           overnight_rate: Decimal | None = None) -> Penalty:
    """The penalty of ``fail`` for the failing ``day`` at that day's reference (closing)
    price. A lack-of-cash fail needs the central bank's ``overnight_rate`` (annual fraction)."""
    if day < fail.intended_settlement_date:
        raise ValueError(f"{day} is before the intended settlement date "
                         f"{fail.intended_settlement_date} of {fail.reference}")
    if fail.reason is FailReason.LACK_OF_CASH:
        if overnight_rate is None:
            raise ValueError(f"{fail.reference} fails for lack of cash: the overnight rate "
                             f"of the {fail.currency} central bank is needed")
        rate = daily_cash_rate(overnight_rate)
        exact = daily_cash_penalty(fail.quantity, closing_price, overnight_rate)
    else:
        rate = daily_rate(penalty_class)
        exact = daily_penalty(fail.quantity, closing_price, penalty_class)
    return Penalty(reference=fail.reference, counterparty=fail.counterparty, isin=fail.isin,
                   day=day, currency=fail.currency, quantity=fail.quantity,
                   reference_price=closing_price, daily_rate=rate, exact=exact,
                   amount=rounded(exact, fail.currency), reason=fail.reason,
                   failing_party=fail.failing_party)


def failing_days(isd: dt.date, today: dt.date, calendar: SettlementCalendar, mic: str,
                 currency: str) -> list[dt.date]:
    """The settlement days from ``isd`` inclusive to ``today`` exclusive."""
    days = []
    day = isd
    while day < today:
        if calendar.is_settlement_day(day, mic, currency):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def penalty_days(isd: dt.date, today: dt.date, calendar: SettlementCalendar, mic: str,
                 currency: str) -> int:
    """How many settlement days an instruction due on ``isd`` and not settled before
    ``today`` has failed (ISD inclusive, today exclusive): its age and its penalty days."""
    return len(failing_days(isd, today, calendar, mic, currency))


def extension_period(penalty_class: PenaltyClass, *, liquid: bool = True) -> int:
    """Business days after the ISD before a buy-in: 15 for SME growth market instruments
    (shares and debt), 7 for illiquid shares (and any instrument flagged ``liquid=False``),
    4 for the others (CSDR art. 7(3), 7(4)(b); RTS 2018/1229 art. 37)."""
    if penalty_class in (PenaltyClass.SME_GROWTH, PenaltyClass.SME_DEBT):
        return EXTENSION_DAYS_SME_GROWTH
    if penalty_class is PenaltyClass.ILLIQUID_SHARE or not liquid:
        return EXTENSION_DAYS_ILLIQUID
    return EXTENSION_DAYS


def buy_in_date(isd: dt.date, calendar: SettlementCalendar, mic: str, currency: str,
                extension_days: int) -> dt.date:
    """The first settlement day after the extension period: ISD + extension + 1."""
    return calendar.add_settlement_days(isd, extension_days + 1, mic, currency)


def buy_in_due(isd: dt.date, today: dt.date, calendar: SettlementCalendar, mic: str,
               currency: str, penalty_class: PenaltyClass, *, liquid: bool = True,
               extension_days: int | None = None) -> bool:
    """True once the extension period after ``isd`` is over for an instruction still failing
    on ``today``: more than ``extension`` settlement days after the ISD up to ``today``."""
    days = extension_period(penalty_class, liquid=liquid) if extension_days is None \
        else extension_days
    return calendar.settlement_days_between(isd, today, mic, currency) > days


@dataclass(frozen=True, slots=True)
class MonthlyPenaltyRow:
    """Penalties of one month with one counterparty in one currency (CSDs net monthly, RTS
    2018/1229 art. 17): charged to us, owed to us (both ≥ 0), and the net (+ we receive)."""

    month: str  # YYYY-MM
    counterparty: str
    currency: str
    charged_to_us: Decimal
    owed_to_us: Decimal

    @property
    def net(self) -> Decimal:
        return self.owed_to_us - self.charged_to_us


def monthly_report(penalties: Iterable[Penalty]) -> list[MonthlyPenaltyRow]:
    """Rounded daily penalties summed per (month of the failing day, counterparty, currency),
    sorted by those three."""
    totals: dict[tuple[str, str, str], tuple[Decimal, Decimal]] = {}
    for penalty in penalties:
        slot = (f"{penalty.day:%Y-%m}", penalty.counterparty, penalty.currency)
        charged, owed = totals.get(slot, (ZERO, ZERO))
        if penalty.failing_party is FailingParty.US:
            charged += penalty.amount
        else:
            owed += penalty.amount
        totals[slot] = (charged, owed)
    return [MonthlyPenaltyRow(month, counterparty, currency, *totals[(month, counterparty,
                                                                       currency)])
            for month, counterparty, currency in sorted(totals)]
