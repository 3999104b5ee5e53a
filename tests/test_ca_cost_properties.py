"""Property tests: corporate actions and the cost of lots (accounting/lots.py), no database.

Random books of buys and sells (never more than held) in an old ISIN and a new ISIN (the
target of a merger or spin-off), each instrument with a random quantity scale (0, 2 or 4
decimals), then one corporate action. ``replay`` is run with and without the action and the
cost and quantity of the holdings compared.

Cash in lieu, as lots.py does it (``LotBook._cash_in_lieu``): after a SPLIT, STOCK_DIVIDEND,
MERGER or SPINOFF, the part of the *resulting* ISIN's total holding below its quantity scale
(``fractional_part``) is always closed -- whether or not ``fraction_price`` is given (proceeds
are fraction x fraction_price, half-up to the minor unit, so 0.00 without a price). It is closed
like a SELL: lots in the account's sell order, a whole lot gives its whole cost, a part of a lot
gives lot cost x part / lot quantity rounded half-up to the minor unit. That cost leaves the
holding and is the cost of the event's realised row. So the rule asserted everywhere is:

    cost after = cost before (moved as the event says) - cost of the fraction closed, exactly.

The cost of the fraction is computed here by our own walk over a snapshot of the lots.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import event as label
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reference_model import half_up, terminates
from zaplecze.accounting.lots import LotBook, replay
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.limits import FRACTION_PLACES
from zaplecze.refdata.model import Instrument, LotMethod
from zaplecze.trading.model import Side, Trade

SETTINGS = settings(max_examples=150, deadline=None)
ACCOUNT = "C1"
OLD = "US0000000001"
NEW = "US0000000002"
START = dt.date(2025, 1, 6)
CENT = Decimal("0.01")
METHODS = list(LotMethod)
_sequence = itertools.count(1)


def instruments(old_scale: int, new_scale: int) -> dict[str, Instrument]:
    return {
        OLD: Instrument(OLD, "OLDC", "Old Corp.", "EQUITY", "USD", "XNAS", "US", old_scale),
        NEW: Instrument(NEW, "NEWC", "New Corp.", "EQUITY", "USD", "XNAS", "US", new_scale),
    }


def make_trade(isin: str, side: Side, quantity: Decimal, price: Decimal, commission: Decimal,
               day: dt.date) -> Trade:
    """A trade as tests/test_lots.py builds them: gross = quantity x price, half-up to cents."""
    n = next(_sequence)
    gross = (quantity * price).quantize(CENT, rounding=ROUND_HALF_UP)
    return Trade(f"T{n}", ACCOUNT, isin, side, quantity, price, "USD", day, day, "", "STREET",
                 gross, commission, "", n)


def unit(scale: int) -> Fraction:
    return Fraction(1, 10**scale)


def floor_to_scale(quantity: Fraction, scale: int) -> Fraction:
    """The whole units of the quantity scale in ``quantity`` (what is left after cash in lieu)."""
    return (quantity / unit(scale)).__floor__() * unit(scale)


# -- random scenarios ---------------------------------------------------------------------------

@dataclass
class Scenario:
    method: LotMethod
    instruments: dict[str, Instrument]
    trades: list[Trade]
    event: CorporateAction
    position: dict[str, Fraction]  # our own position per ISIN after everything


def ratios() -> st.SearchStrategy[Decimal]:
    """A ratio side: 1..40, sometimes with one decimal (1.5:1 is a real ratio)."""
    return st.builds(lambda n, places: Decimal(n).scaleb(-places),
                     st.integers(1, 40), st.sampled_from([0, 0, 1]))


def transform(held: dict[str, Fraction], event: CorporateAction,
              scales: dict[str, int]) -> None:
    """Our position model of the event: what one share becomes or brings, then the fraction of
    the resulting ISIN below its quantity scale goes (cash in lieu). No holding: no effect."""
    if held[event.isin] == 0:
        return
    if event.kind is CaKind.SPLIT:
        held[event.isin] *= event.ratio
    elif event.kind is CaKind.STOCK_DIVIDEND:
        held[event.isin] *= 1 + event.ratio
    elif event.kind is CaKind.MERGER:
        held[event.new_isin] += held[event.isin] * event.ratio
        held[event.isin] = Fraction(0)
    elif event.kind is CaKind.SPINOFF:
        held[event.new_isin] += held[event.isin] * event.ratio
    resulting = event.resulting_isin
    held[resulting] = floor_to_scale(held[resulting], scales[resulting])


@st.composite
def scenarios(draw: st.DrawFn, kinds: tuple[CaKind, ...], trades_after: bool = False,
              method: LotMethod | None = None) -> Scenario:
    """Buys and sells in OLD and NEW over a few days, then (or, with ``trades_after``, among
    them) one corporate action on OLD. The first trade is a buy of OLD, so it is held."""
    scales = {OLD: draw(st.sampled_from([0, 2, 4])), NEW: draw(st.sampled_from([0, 2, 4]))}
    chosen = method if method is not None else draw(st.sampled_from(METHODS))
    kind = draw(st.sampled_from(kinds))
    n_steps = draw(st.integers(1, 12))
    days = sorted(draw(st.lists(st.integers(0, 10), min_size=n_steps, max_size=n_steps)))
    days[0] = 0
    last = days[-1]
    ex_day = draw(st.integers(1, last + 1)) if trades_after else last + 1
    ex_date = START + dt.timedelta(days=ex_day)
    event = CorporateAction(
        f"CA-{kind.value}", kind, OLD, ex_date, ex_date - dt.timedelta(days=1),
        ex_date + dt.timedelta(days=2),
        ratio_old=draw(ratios()), ratio_new=draw(ratios()),
        new_isin=NEW if kind in (CaKind.MERGER, CaKind.SPINOFF) else "",
        cost_fraction=(Decimal(draw(st.integers(0, 10_000))).scaleb(-4)
                       if kind is CaKind.SPINOFF else Decimal(0)),
        fraction_price=Decimal(draw(st.sampled_from([0, 1, 1234, 99_999]))).scaleb(-2),
    )
    held = {OLD: Fraction(0), NEW: Fraction(0)}
    applied = False
    trades: list[Trade] = []
    for index, day in enumerate(days):
        if not applied and day >= ex_day:
            transform(held, event, scales)
            applied = True
        isin = OLD if index == 0 else draw(st.sampled_from([OLD, NEW]))
        scale = scales[isin]
        held_units = int(held[isin] / unit(scale))
        price = Decimal(draw(st.integers(1, 1_000_000))).scaleb(-2)
        commission = Decimal(draw(st.integers(0, 2_000))).scaleb(-2)
        if index and held_units and draw(st.booleans()):
            units, side = draw(st.integers(1, held_units)), Side.SELL
            held[isin] -= units * unit(scale)
        else:
            units, side = draw(st.integers(1, 10 ** (scale + 3))), Side.BUY
            held[isin] += units * unit(scale)
        quantity = Decimal(units).scaleb(-scale)
        trades.append(make_trade(isin, side, quantity, price, commission,
                                 START + dt.timedelta(days=day)))
    if not applied:
        transform(held, event, scales)
    return Scenario(chosen, instruments(scales[OLD], scales[NEW]), trades, event, held)


# -- our own reference for the cost of lots -----------------------------------------------------

@dataclass
class RefLot:
    acquired: dt.date
    order: int
    quantity: Fraction
    cost: Decimal


def snapshot(book: LotBook) -> dict[str, list[RefLot]]:
    return {isin: [RefLot(lot.acquired, lot.order, lot.quantity, lot.cost) for lot in lots]
            for isin, lots in book.lots.items() if lots}


def half_up_cents(value: Fraction) -> Decimal:
    """value rounded half away from zero to cents, by integer arithmetic (value >= 0 here)."""
    hundredths = value * 100
    whole, rest = divmod(hundredths.numerator, hundredths.denominator)
    if 2 * rest >= hundredths.denominator:
        whole += 1
    return Decimal(whole).scaleb(-2)


def sell_order(lots: list[RefLot], method: LotMethod) -> list[RefLot]:
    by_age = sorted(lots, key=lambda lot: (lot.acquired, lot.order))
    if method is LotMethod.LIFO:
        return by_age[::-1]
    if method is LotMethod.HIFO:
        return sorted(by_age, key=lambda lot: (-Fraction(lot.cost) / lot.quantity,
                                               lot.acquired, lot.order))
    return by_age


def cost_of_closing(lots: list[RefLot], quantity: Fraction, method: LotMethod) -> Decimal:
    """The cost a close of ``quantity`` takes: whole lots whole, a part of a lot
    lot cost x part / lot quantity, half-up to cents."""
    remaining, cost = quantity, Decimal(0)
    for lot in sell_order(lots, method):
        if remaining == 0:
            break
        taken = min(lot.quantity, remaining)
        cost += lot.cost if taken == lot.quantity else half_up_cents(
            Fraction(lot.cost) * taken / lot.quantity)
        remaining -= taken
    assert remaining == 0
    return cost


def pooled(lots: list[RefLot], method: LotMethod) -> list[RefLot]:
    """Under AVERAGE a security has one pooled lot: its quantity and cost are the sums."""
    if method is not LotMethod.AVERAGE or not lots:
        return lots
    return [RefLot(lots[0].acquired, lots[0].order, sum((lot.quantity for lot in lots),
                                                        Fraction(0)),
                   sum((lot.cost for lot in lots), Decimal(0)))]


def fraction_closed(lots: list[RefLot], scale: int, method: LotMethod) -> tuple[Fraction,
                                                                               Decimal]:
    """(quantity, cost) of the cash-in-lieu close of the holding ``lots`` at ``scale``."""
    total = sum((lot.quantity for lot in lots), Fraction(0))
    fraction = total - floor_to_scale(total, scale)
    if fraction == 0:
        return Fraction(0), Decimal(0)
    return fraction, cost_of_closing(lots, fraction, method)


def books(scenario: Scenario) -> tuple[LotBook, LotBook]:
    """The book without the action, and with it (all trades are before its ex date)."""
    assert all(t.trade_date < scenario.event.ex_date for t in scenario.trades)
    before = replay(ACCOUNT, scenario.method, scenario.instruments, scenario.trades, [])
    after = replay(ACCOUNT, scenario.method, scenario.instruments, scenario.trades,
                   [scenario.event])
    return before, after


def cash_in_lieu_rows(book: LotBook, event: CorporateAction) -> list[tuple[Decimal, Decimal,
                                                                          Decimal]]:
    return [(row.quantity, row.proceeds, row.cost) for row in book.realized
            if row.trade_id == event.event_id]


def assert_cash_in_lieu(book: LotBook, event: CorporateAction, fraction: Fraction,
                        cost: Decimal) -> None:
    """One realised row per fraction closed: proceeds fraction x fraction_price half-up, cost
    the fraction's cost; none when the holding is whole."""
    label(f"cash in lieu: {'none' if fraction == 0 else 'a fraction closed'}")
    rows = cash_in_lieu_rows(book, event)
    if fraction == 0:
        assert rows == []
        return
    assert len(rows) == 1
    quantity, proceeds, row_cost = rows[0]
    assert row_cost == cost
    assert proceeds == half_up_cents(fraction * Fraction(event.fraction_price))
    if terminates(fraction):  # else see test_a_non_terminating_fraction_is_written_to_12_places
        assert Fraction(quantity) == fraction


# -- 1. SPLIT and STOCK_DIVIDEND -----------------------------------------------------------------

@SETTINGS
@given(scenarios((CaKind.SPLIT, CaKind.STOCK_DIVIDEND)))
def test_split_and_stock_dividend_conserve_cost_but_the_fraction_paid_in_lieu(
        scenario: Scenario) -> None:
    """A SPLIT (each share becomes ratio_new/ratio_old shares, reverse splits included) or a
    STOCK_DIVIDEND (each share becomes 1 + ratio_new/ratio_old) multiplies every lot's quantity
    and leaves every lot's cost alone. Then the fraction of the total below the quantity scale is
    closed in sell order (cash in lieu), so

        cost(OLD) after = cost(OLD) before - cost of the fraction, exactly,

    the cost of the fraction being whole lots' costs plus lot cost x part / lot quantity rounded
    half-up to cents for a lot closed in part. With no fraction the cost is unchanged, exactly.
    The quantity becomes floor_to_scale(quantity x factor)."""
    event, method = scenario.event, scenario.method
    before, after = books(scenario)
    factor = event.ratio if event.kind is CaKind.SPLIT else 1 + event.ratio
    scale = scenario.instruments[OLD].quantity_scale
    lots = snapshot(before).get(OLD, [])
    for lot in lots:
        lot.quantity *= factor
    fraction, fraction_cost = fraction_closed(lots, scale, method)

    assert after.cost(OLD) == before.cost(OLD) - fraction_cost
    assert after.quantity(OLD) == floor_to_scale(before.quantity(OLD) * factor, scale)
    assert_cash_in_lieu(after, event, fraction, fraction_cost)
    if fraction == 0:
        assert after.cost(OLD) == before.cost(OLD)
    # nothing else moves
    assert after.cost(NEW) == before.cost(NEW) and after.quantity(NEW) == before.quantity(NEW)


# -- 2. MERGER -----------------------------------------------------------------------------------

@SETTINGS
@given(scenarios((CaKind.MERGER,)))
def test_a_merger_moves_the_whole_cost_to_the_new_isin(scenario: Scenario) -> None:
    """A MERGER replaces each lot of OLD by a lot of ratio_new/ratio_old times as many NEW
    shares with the same cost and acquisition date (under AVERAGE they join NEW's pool). OLD is
    left with nothing; the fraction of NEW's whole holding below its scale is paid in lieu:

        cost(OLD) after = 0,  quantity(OLD) after = 0,
        cost(NEW) after = cost(OLD) before + cost(NEW) before - cost of the fraction, exactly."""
    event, method = scenario.event, scenario.method
    before, after = books(scenario)
    snap = snapshot(before)
    moved = [RefLot(lot.acquired, lot.order, lot.quantity * event.ratio, lot.cost)
             for lot in snap.get(OLD, [])]
    lots = pooled(snap.get(NEW, []) + moved, method)
    fraction, fraction_cost = fraction_closed(lots, scenario.instruments[NEW].quantity_scale,
                                              method)

    assert after.cost(OLD) == 0 and after.quantity(OLD) == 0 and not after.lots.get(OLD)
    assert after.cost(NEW) == before.cost(OLD) + before.cost(NEW) - fraction_cost
    assert after.cost(OLD) + after.cost(NEW) + fraction_cost == before.cost(OLD) + before.cost(
        NEW)
    assert_cash_in_lieu(after, event, fraction, fraction_cost)


# -- 3. SPINOFF ----------------------------------------------------------------------------------

@SETTINGS
@given(scenarios((CaKind.SPINOFF,)))
def test_a_spinoff_moves_cost_fraction_of_each_lots_cost(scenario: Scenario) -> None:
    """A SPINOFF with cost_fraction f moves, from each lot of OLD, moved = lot cost x f rounded
    half-up to cents *per lot* (lots.py rounds each lot, not the total) to a new lot of NEW of
    lot quantity x ratio_new/ratio_old shares; OLD keeps lot cost - moved. So

        cost(OLD) after = cost(OLD) before - sum(moved),
        cost(NEW) after = cost(NEW) before + sum(moved) - cost of NEW's fraction paid in lieu,
        cost(OLD) after + cost(NEW) after + that fraction's cost = cost before, exactly,

    and sum(moved) is within half a cent per lot of f x cost(OLD) before (exactly its half-up
    rounding when there is one lot, as under AVERAGE)."""
    event, method = scenario.event, scenario.method
    f = event.cost_fraction
    before, after = books(scenario)
    snap = snapshot(before)
    old_lots = snap.get(OLD, [])
    moved_costs = [half_up_cents(Fraction(lot.cost) * Fraction(f)) for lot in old_lots]
    moved = sum(moved_costs, Decimal(0))
    new_lots = snap.get(NEW, []) + [
        RefLot(lot.acquired, lot.order, lot.quantity * event.ratio, cost)
        for lot, cost in zip(old_lots, moved_costs, strict=True)]
    lots = pooled(new_lots, method)
    fraction, fraction_cost = fraction_closed(lots, scenario.instruments[NEW].quantity_scale,
                                              method)
    total_before = before.cost(OLD) + before.cost(NEW)

    assert after.cost(OLD) == before.cost(OLD) - moved
    assert after.cost(NEW) == before.cost(NEW) + moved - fraction_cost
    assert after.cost(OLD) + after.cost(NEW) + fraction_cost == total_before
    assert after.quantity(OLD) == before.quantity(OLD)
    exact = Fraction(before.cost(OLD)) * Fraction(f)
    assert abs(Fraction(moved) - exact) <= Fraction(len(old_lots), 200)
    if len(old_lots) == 1:
        assert moved == half_up_cents(exact)
    assert_cash_in_lieu(after, event, fraction, fraction_cost)


# -- 4. quantities = position, for every method ------------------------------------------------

ALL_KINDS = (CaKind.SPLIT, CaKind.STOCK_DIVIDEND, CaKind.MERGER, CaKind.SPINOFF)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_open_lots_add_up_to_the_position_for_every_method(data: st.DataObject) -> None:
    """Buys and sells (never more than held) in OLD and NEW with one SPLIT, STOCK_DIVIDEND,
    MERGER or SPINOFF of OLD among them (trades on the ex date come after it). Our position per
    ISIN is the sum of signed trade quantities, transformed at the ex date -- SPLIT: x r,
    STOCK_DIVIDEND: x (1 + r), MERGER: NEW += OLD x r and OLD = 0, SPINOFF: NEW += OLD x r,
    r = ratio_new/ratio_old, nothing when OLD is not held -- and the resulting ISIN floored to
    its quantity scale (the fraction is paid in lieu). For FIFO, LIFO, HIFO and AVERAGE alike:

        sum of the open lots' quantities = position, per ISIN, and every open lot is > 0;
        under AVERAGE each ISIN has at most one lot."""
    scenario = data.draw(scenarios(ALL_KINDS, trades_after=True, method=LotMethod.FIFO))
    for method in METHODS:
        book = replay(ACCOUNT, method, scenario.instruments, scenario.trades, [scenario.event])
        for isin in (OLD, NEW):
            lots = book.lots.get(isin, [])
            assert sum((lot.quantity for lot in lots), Fraction(0)) == scenario.position[isin], (
                method, isin)
            assert all(lot.quantity > 0 and lot.cost >= 0 for lot in lots), (method, isin)
            if method is LotMethod.AVERAGE:
                assert len(lots) <= 1


# -- the cash-in-lieu row's quantity -------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 200))
@example(3, 1, 1)  # 1 share, 3:1 reverse split: 1/3 of a share paid in lieu
def test_a_non_terminating_fraction_is_written_to_12_places(old: int, new: int,
                                                            shares: int) -> None:
    """lots.py's ``_decimal`` writes the quantity of a cash-in-lieu row that is not a
    terminating decimal (1/3 of a share) rounded half-up at 12 decimals (FRACTION_PLACES; the
    contract is silent): for a SPLIT old:new of ``shares`` whole shares (scale 0), the row's
    quantity is frac(shares x new / old) at 12 places; exactly when it terminates.
    The cost bookkeeping is covered above; this checks the quantity alone."""
    event = CorporateAction("CA-SPLIT", CaKind.SPLIT, OLD, START + dt.timedelta(days=1), START,
                            START + dt.timedelta(days=3), ratio_old=Decimal(old),
                            ratio_new=Decimal(new))
    trade = make_trade(OLD, Side.BUY, Decimal(shares), Decimal("10.00"), Decimal(0), START)
    book = replay(ACCOUNT, LotMethod.FIFO, instruments(0, 0), [trade], [event])
    total = Fraction(shares * new, old)
    fraction = total - total.__floor__()
    rows = cash_in_lieu_rows(book, event)
    if fraction == 0:
        assert rows == []
        return
    [(quantity, _, _)] = rows
    if terminates(fraction):
        assert Fraction(quantity) == fraction
    else:
        assert quantity == half_up(fraction, FRACTION_PLACES)
        assert FRACTION_PLACES == 12
