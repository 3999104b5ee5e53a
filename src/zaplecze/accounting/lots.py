"""Lots: the cost sub-ledger of an account's holdings, as a pure fold over its events.

Each BUY opens a lot (quantity, cost = gross + commission, acquisition date = trade date). A
SELL closes lots by the account's method (FIFO, LIFO, HIFO, AVERAGE). Closing part of a lot
takes cost × closed / lot quantity, rounded half-up; the lot keeps the rest, so a lot's cost is
always used up exactly. Corporate actions transform lots on their ex date, before that day's
trades (trades on the ex date carry no entitlement).

Quantities are exact: an ``int`` while whole (the usual case, and quick to fold), a
``Fraction`` once a ratio leaves part of a share (1:3 is not a decimal); costs are Decimals at
the currency's minor unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.limits import FRACTION_PLACES
from zaplecze.kernel.money import currency_scale, round_half_up
from zaplecze.refdata.model import Instrument, LotMethod
from zaplecze.trading.model import Side, Trade

Exact = Fraction | int  # a lot quantity, see the module's docstring


def exact(value: Fraction | int) -> Exact:
    """``value`` as a lot quantity: an int when whole."""
    return value.numerator if value.denominator == 1 else value


@lru_cache(maxsize=65_536)
def exact_of(quantity: Decimal) -> Exact:
    """A trade's quantity as a lot quantity (trades repeat their quantities: cached)."""
    return exact(Fraction(quantity))


class LotTrade(NamedTuple):
    """A trade as the lot fold needs it, cheap to make by the million (a report replaying
    every account's lots builds one per stored trade). The fold takes a ``Trade`` as well."""
    trade_id: str
    isin: str
    side: Side
    quantity: Decimal
    currency: str
    trade_date: dt.date
    gross: Decimal
    commission: Decimal
    sequence: int


@dataclass(slots=True)
class Lot:
    isin: str
    acquired: dt.date
    order: int  # booking order among lots with the same acquisition date
    quantity: Exact
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Realized:
    account: str
    trade_id: str
    isin: str
    close_date: dt.date
    quantity: Decimal
    proceeds: Decimal
    cost: Decimal
    currency: str

    @property
    def gain(self) -> Decimal:
        return self.proceeds - self.cost


@dataclass
class LotBook:
    """One account's open lots per ISIN and its realised rows, built by ``replay``."""

    account: str
    method: LotMethod
    instruments: Mapping[str, Instrument]
    lots: dict[str, list[Lot]] = field(default_factory=dict)
    realized: list[Realized] = field(default_factory=list)
    _order: int = 0

    # -- queries ------------------------------------------------------------------------------

    def quantity(self, isin: str) -> Fraction:
        return Fraction(sum((lot.quantity for lot in self.lots.get(isin, ())), Fraction(0)))

    def cost(self, isin: str) -> Decimal:
        return sum((lot.cost for lot in self.lots.get(isin, ())), Decimal(0))

    # -- events -------------------------------------------------------------------------------

    @property
    def next_order(self) -> int:
        """The booking-order counter: the order of the last lot opened by a trade."""
        return self._order

    @classmethod
    def resumed(cls, account: str, method: LotMethod, instruments: Mapping[str, Instrument],
                lots: Iterable[Lot], next_order: int) -> LotBook:
        """An account's lots as a checkpoint kept them, in their stored order, to fold on
        from (its realised rows stay behind: they are the checkpoint's past)."""
        book = cls(account, method, instruments, _order=next_order)
        for lot in lots:
            book.lots.setdefault(lot.isin, []).append(lot)
        return book

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def buy(self, isin: str, day: dt.date, quantity: Exact, cost: Decimal) -> None:
        self._add(Lot(isin, day, self._next_order(), quantity, cost))

    def _add(self, lot: Lot) -> None:
        """Open ``lot``; under AVERAGE it joins the security's one pooled lot instead."""
        lots = self.lots.setdefault(lot.isin, [])
        if self.method is LotMethod.AVERAGE and lots:
            pool = lots[0]
            pool.quantity = exact(pool.quantity + lot.quantity)
            pool.cost += lot.cost
            return
        lots.append(lot)

    def take(self, isin: str, quantity: Exact) -> tuple[Exact, Decimal]:
        """Close up to ``quantity`` from the lots in sell order; returns (taken, cost taken)."""
        scale = currency_scale(self.instruments[isin].currency)
        remaining = quantity
        cost_taken = Decimal(0)
        for lot in self._sell_order(isin):
            if remaining <= 0:
                break
            held = lot.quantity
            if held <= remaining:  # the whole lot
                taken, part = held, lot.cost
            else:
                taken = remaining
                part = round_half_up(Fraction(lot.cost) * taken / held, scale)
            lot.quantity = exact(held - taken)
            lot.cost -= part
            cost_taken += part
            remaining -= taken
        self.lots[isin] = [lot for lot in self.lots.get(isin, []) if lot.quantity != 0]
        return exact(quantity - remaining), cost_taken

    def _sell_order(self, isin: str) -> list[Lot]:
        lots = self.lots.get(isin, [])
        if len(lots) < 2:
            return list(lots)
        by_age = sorted(lots, key=lambda lot: (lot.acquired, lot.order))
        if self.method is LotMethod.LIFO:
            return by_age[::-1]
        if self.method is LotMethod.HIFO:
            return sorted(by_age, key=lambda lot: -(Fraction(lot.cost) / lot.quantity))
        return by_age

    def trade(self, trade: LotTrade | Trade) -> None:
        if trade.side is Side.BUY:
            self.buy(trade.isin, trade.trade_date, exact_of(trade.quantity),
                     trade.gross + trade.commission)
            return
        _, cost = self.take(trade.isin, exact_of(trade.quantity))
        self.realized.append(Realized(self.account, trade.trade_id, trade.isin, trade.trade_date,
                                      trade.quantity, trade.gross - trade.commission, cost,
                                      trade.currency))

    def corporate_action(self, event: CorporateAction) -> None:
        held = self.lots.get(event.isin, [])
        if not held:
            return
        if event.kind in (CaKind.SPLIT, CaKind.STOCK_DIVIDEND):
            factor = event.ratio if event.kind is CaKind.SPLIT else 1 + event.ratio
            for lot in held:
                lot.quantity = exact(lot.quantity * factor)
        elif event.kind is CaKind.SPINOFF:
            self._spinoff(event, held)
        elif event.kind is CaKind.MERGER:
            del self.lots[event.isin]
            for lot in held:
                self._add(Lot(event.new_isin, lot.acquired, lot.order,
                              exact(lot.quantity * event.ratio), lot.cost))
        elif event.kind is CaKind.CASH_MERGER:
            self._cash_merger(event, held)
            return
        else:
            return  # a cash dividend leaves lots alone
        self._cash_in_lieu(event)

    def _spinoff(self, event: CorporateAction, held: list[Lot]) -> None:
        scale = currency_scale(self.instruments[event.isin].currency)
        for lot in held:
            moved = round_half_up(lot.cost * event.cost_fraction, scale)
            lot.cost -= moved
            self._add(Lot(event.new_isin, lot.acquired, lot.order,
                          exact(lot.quantity * event.ratio), moved))

    def _cash_merger(self, event: CorporateAction, held: list[Lot]) -> None:
        quantity = Fraction(sum((lot.quantity for lot in held), Fraction(0)))
        cost = sum((lot.cost for lot in held), Decimal(0))
        scale = currency_scale(event.currency)
        proceeds = round_half_up(Fraction(event.amount) * quantity, scale)
        del self.lots[event.isin]
        self.realized.append(Realized(self.account, event.event_id, event.isin, event.ex_date,
                                      _decimal(quantity), proceeds, cost, event.currency))

    def _cash_in_lieu(self, event: CorporateAction) -> None:
        isin = event.resulting_isin
        instrument = self.instruments[isin]
        total = self.quantity(isin)
        fraction = fractional_part(total, instrument.quantity_scale)
        if fraction == 0:
            return
        _, cost = self.take(isin, fraction)
        proceeds = round_half_up(fraction * Fraction(event.fraction_price),
                                 currency_scale(instrument.currency))
        self.realized.append(Realized(self.account, event.event_id, isin, event.ex_date,
                                      _decimal(fraction), proceeds, cost, instrument.currency))


def fractional_part(quantity: Fraction, scale: int) -> Fraction:
    """The part of a holding below the quantity scale (what cash in lieu pays out)."""
    unit = Fraction(1, 10**scale)
    whole_units = (quantity / unit).__floor__()
    return quantity - whole_units * unit


def _decimal(value: Fraction) -> Decimal:
    """A Fraction that is a terminating decimal, exactly. A cash-in-lieu fraction need not be
    one (a third of a share after a 2-for-3 ratio): it is written rounded half-up at
    FRACTION_PLACES decimals, which the contract leaves open."""
    numerator, denominator = value.numerator, value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return round_half_up(value, FRACTION_PLACES)
    places = max(twos, fives)
    return Decimal(numerator * 10**places // value.denominator).scaleb(-places)


EventKey = tuple[dt.date, int, int]


def replay(account: str, method: LotMethod, instruments: Mapping[str, Instrument],
           trades: Iterable[LotTrade | Trade], actions: Iterable[CorporateAction],
           start: LotBook | None = None) -> LotBook:
    """Fold an account's trades and corporate actions in order: by date, corporate actions
    before the day's trades, trades in booking order. From ``start`` (the lots as they stood
    at the close of a day, every event given dated after it) or from nothing."""
    book = start if start is not None else LotBook(account, method, instruments)
    events: list[tuple[EventKey, LotTrade | Trade | CorporateAction]] = []
    for trade in trades:
        events.append(((trade.trade_date, 1, trade.sequence), trade))
    for index, event in enumerate(actions):
        events.append(((event.ex_date, 0, index), event))
    events.sort(key=lambda item: item[0])
    for _, item in events:
        if isinstance(item, CorporateAction):
            book.corporate_action(item)
        else:
            book.trade(item)
    return book
