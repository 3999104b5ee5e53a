"""Lots and realised gains (accounting/lots.py), written as a bookkeeper's worked examples.

Each example is a small table of trades in and the open lots and realised rows out. A trade
line reads: id, side, quantity, price, commission, trade date. A BUY's lot costs
quantity x price + commission; a SELL's proceeds are quantity x price - commission.
Lots are shown oldest first as (acquired, quantity, cost).

The contract (book-folder.md, "Lots and realised gains"):
- FIFO oldest first, LIFO newest first, HIFO highest cost per share first (ties: oldest
  first; cost per share exact, unrounded), AVERAGE one pooled lot per security.
- Closing part of a lot takes lot cost x closed / lot quantity, rounded half-up; the lot keeps
  the rest, so a lot's cost is always used up exactly.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zaplecze.accounting.lots import LotBook, fractional_part, replay
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.money import plain, round_half_up
from zaplecze.refdata.model import Instrument, LotMethod
from zaplecze.trading.model import Side, Trade

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = 1500 if DEEP else 150

NVDA = Instrument("US67066G1040", "NVDA", "NVIDIA Corp.", "EQUITY", "USD", "XNAS", "US", 0)
# An ETF traded in fractional shares (4 decimals) to exercise quantity scales.
IWDA = Instrument("IE00B4L5Y983", "IWDA", "iShares Core MSCI World", "ETF", "USD", "XLON", "IE",
                  4)
INSTRUMENTS = {i.isin: i for i in (NVDA, IWDA)}
_sequence = itertools.count(1)


def trades(table: str, isin: str = NVDA.isin, account: str = "C1") -> list[Trade]:
    """Trades from lines `id side quantity price commission date`."""
    result = []
    for line in table.strip().splitlines():
        trade_id, side, quantity, price, commission, day = line.split()
        q, p = Decimal(quantity), Decimal(price)
        result.append(Trade(trade_id, account, isin, Side(side), q, p, "USD",
                            dt.date.fromisoformat(day), dt.date.fromisoformat(day), "", "STREET",
                            round_half_up(q * p, 2), Decimal(commission), "",
                            next(_sequence)))
    return result


def run(method: str, table: str, actions: Iterable[CorporateAction] = (),
        isin: str = NVDA.isin) -> LotBook:
    return replay("C1", LotMethod(method), INSTRUMENTS, trades(table, isin), list(actions))


def open_lots(book: LotBook, isin: str = NVDA.isin) -> list[tuple[str, str, str]]:
    lots = sorted(book.lots.get(isin, []), key=lambda lot: (lot.acquired, lot.order))
    return [(lot.acquired.isoformat(), _quantity(lot.quantity), str(lot.cost)) for lot in lots]


def realised(book: LotBook) -> list[tuple[str, str, str, str, str]]:
    return [(r.trade_id, plain(r.quantity), str(r.proceeds), str(r.cost), str(r.gain))
            for r in book.realized]


def _quantity(value: Fraction) -> str:
    return plain(Decimal(value.numerator) / Decimal(value.denominator))


# -- the four methods on one book ------------------------------------------------------------

THREE_BUYS_ONE_SELL = """
T1 BUY  10 100.00 0.00 2025-01-06
T2 BUY  10 120.00 0.00 2025-01-07
T3 BUY  10 110.00 0.00 2025-01-08
T4 SELL 15 130.00 0.00 2025-01-09
"""
# T4's proceeds: 15 x 130.00 = 1,950.00 whatever the method.


def test_fifo_sells_the_oldest_lot_first() -> None:
    book = run("FIFO", THREE_BUYS_ONE_SELL)
    # all of T1 (1,000.00) + 5 of T2's 10 (1,200.00 x 5/10 = 600.00) = 1,600.00
    assert realised(book) == [("T4", "15", "1950.00", "1600.00", "350.00")]
    assert open_lots(book) == [("2025-01-07", "5", "600.00"), ("2025-01-08", "10", "1100.00")]


def test_lifo_sells_the_newest_lot_first() -> None:
    book = run("LIFO", THREE_BUYS_ONE_SELL)
    # all of T3 (1,100.00) + 5 of T2's 10 (600.00) = 1,700.00
    assert realised(book) == [("T4", "15", "1950.00", "1700.00", "250.00")]
    assert open_lots(book) == [("2025-01-06", "10", "1000.00"), ("2025-01-07", "5", "600.00")]


def test_hifo_sells_the_dearest_lot_first() -> None:
    book = run("HIFO", THREE_BUYS_ONE_SELL)
    # T2 at 120.00 a share (1,200.00), then 5 of T3 at 110.00 (550.00) = 1,750.00
    assert realised(book) == [("T4", "15", "1950.00", "1750.00", "200.00")]
    assert open_lots(book) == [("2025-01-06", "10", "1000.00"), ("2025-01-08", "5", "550.00")]


def test_average_sells_from_one_pool_at_the_average_cost() -> None:
    book = run("AVERAGE", THREE_BUYS_ONE_SELL)
    # pool: 30 shares for 3,300.00 (110.00 a share); 15 of them cost 1,650.00
    assert realised(book) == [("T4", "15", "1950.00", "1650.00", "300.00")]
    assert open_lots(book) == [("2025-01-06", "15", "1650.00")]
    assert len(book.lots[NVDA.isin]) == 1


def test_commissions_add_to_cost_and_reduce_proceeds() -> None:
    book = run("FIFO", """
        T1 BUY  10 100.00 5.00 2025-01-06
        T2 SELL 10 110.00 5.50 2025-01-07
    """)
    # cost 1,000.00 + 5.00; proceeds 1,100.00 - 5.50
    assert realised(book) == [("T2", "10", "1094.50", "1005.00", "89.50")]
    assert open_lots(book) == []


# -- HIFO details ----------------------------------------------------------------------------

def test_hifo_ties_go_oldest_first() -> None:
    book = run("HIFO", """
        T1 BUY  2 25.00 0.00 2025-01-06
        T2 BUY  4 25.00 0.00 2025-01-07
        T3 BUY  1 30.00 0.00 2025-01-08
        T4 BUY  2 25.00 0.00 2025-01-08
        T5 SELL 4 31.00 0.00 2025-01-09
    """)
    # T3 is dearest (30.00); T1, T2 and T4 tie at 25.00 a share: T1 (the oldest) goes next,
    # then 1 of T2. Cost 30.00 + 50.00 + 25.00 = 105.00; proceeds 124.00.
    assert realised(book) == [("T5", "4", "124.00", "105.00", "19.00")]
    assert open_lots(book) == [("2025-01-07", "3", "75.00"), ("2025-01-08", "2", "50.00")]


def test_hifo_ties_on_the_same_day_go_in_booking_order() -> None:
    book = run("HIFO", """
        T1 BUY  3 10.00 0.00 2025-01-06
        T2 BUY  3 10.00 0.00 2025-01-06
        T3 SELL 4 11.00 0.00 2025-01-07
    """)
    # all of T1 (30.00) then 1 of T2 (10.00)
    assert realised(book) == [("T3", "4", "44.00", "40.00", "4.00")]
    assert open_lots(book) == [("2025-01-06", "2", "20.00")]
    assert book.lots[NVDA.isin][0].order == 2  # the survivor is T2's lot


def test_hifo_compares_exact_cost_per_share_not_rounded() -> None:
    book = run("HIFO", """
        T1 BUY  1 33.33 0.00 2025-01-06
        T2 BUY  3 33.33 0.01 2025-01-07
        T3 SELL 1 40.00 0.00 2025-01-08
    """)
    # T1 costs 33.33 a share; T2 costs 100.00 / 3 = 33.3333... a share. Rounded to the cent
    # they tie (and the tie would take T1, the older); exactly, T2 is dearer and goes first.
    # 1 of T2: 100.00 x 1/3 = 33.333... -> 33.33; T2 keeps 66.67 for its 2 shares.
    assert realised(book) == [("T3", "1", "40.00", "33.33", "6.67")]
    assert open_lots(book) == [("2025-01-06", "1", "33.33"), ("2025-01-07", "2", "66.67")]


# -- partial lots ----------------------------------------------------------------------------

def test_a_lot_sold_in_thirds_uses_its_cost_up_exactly() -> None:
    book = run("FIFO", """
        T1 BUY  3 33.33 0.01 2025-01-06
        T2 SELL 1 40.00 0.00 2025-01-07
        T3 SELL 1 40.00 0.00 2025-01-08
        T4 SELL 1 40.00 0.00 2025-01-09
    """)
    # lot 3 shares, 100.00
    # T2: 100.00 x 1/3 = 33.333... -> 33.33, the lot keeps 66.67 for 2
    # T3:  66.67 x 1/2 = 33.335    -> 33.34 (half-up), the lot keeps 33.33 for 1
    # T4: the last share takes what is left, 33.33. Total 33.33 + 33.34 + 33.33 = 100.00.
    assert realised(book) == [("T2", "1", "40.00", "33.33", "6.67"),
                              ("T3", "1", "40.00", "33.34", "6.66"),
                              ("T4", "1", "40.00", "33.33", "6.67")]
    assert open_lots(book) == []


def test_partial_cost_rounds_half_up_not_to_even() -> None:
    book = run("FIFO", """
        T1 BUY  2 45.345 0.00 2025-01-06
        T2 SELL 1 50.00 0.00 2025-01-07
    """)
    # gross 2 x 45.345 = 90.69; half of it 45.345 -> 45.35 (to even would be 45.34)
    assert realised(book) == [("T2", "1", "50.00", "45.35", "4.65")]
    assert open_lots(book) == [("2025-01-06", "1", "45.34")]


def test_average_pool_keeps_the_remainder_exactly() -> None:
    book = run("AVERAGE", """
        T1 BUY  10 10.00 0.00 2025-01-06
        T2 BUY  20 11.00 0.00 2025-01-07
        T3 SELL  7 12.00 0.00 2025-01-08
        T4 BUY   2 12.00 0.00 2025-01-09
        T5 SELL 25 12.50 0.00 2025-01-10
    """)
    # pool 30 for 320.00; T3: 320.00 x 7/30 = 74.666... -> 74.67, pool 23 for 245.33
    # T4 adds 2 for 24.00: pool 25 for 269.33; T5 sells all 25: cost 269.33
    assert realised(book) == [("T3", "7", "84.00", "74.67", "9.33"),
                              ("T5", "25", "312.50", "269.33", "43.17")]
    assert open_lots(book) == []


def test_fractional_shares_at_the_instruments_quantity_scale() -> None:
    book = run("FIFO", """
        T1 BUY  1.5    80.00 0.00 2025-01-06
        T2 SELL 0.3333 90.00 0.00 2025-01-07
    """, isin=IWDA.isin)
    # lot 1.5 for 120.00; 0.3333 of it: 120.00 x 0.3333/1.5 = 26.664 -> 26.66
    # proceeds 0.3333 x 90.00 = 29.997 -> 30.00
    assert realised(book) == [("T2", "0.3333", "30.00", "26.66", "3.34")]
    assert open_lots(book, IWDA.isin) == [("2025-01-06", "1.1667", "93.34")]


def test_a_buy_after_everything_was_sold_opens_a_fresh_lot() -> None:
    for method in LotMethod:
        book = run(method.value, """
            T1 BUY  5 10.00 0.00 2025-01-06
            T2 SELL 5 11.00 0.00 2025-01-07
            T3 BUY  2 12.00 0.00 2025-01-08
        """)
        assert open_lots(book) == [("2025-01-08", "2", "24.00")], method


# -- the golden scenario, figure 1 -----------------------------------------------------------

NVDA_SPLIT_2024 = CorporateAction("CA-NVDA-2024-SPLIT", CaKind.SPLIT, NVDA.isin,
                                  dt.date(2024, 6, 10), dt.date(2024, 6, 6), dt.date(2024, 6, 7),
                                  ratio_old=Decimal(1), ratio_new=Decimal(10))


def test_golden_figure_1_c01_nvidia() -> None:
    """C01's NVIDIA in the golden scenario (commissions 15 bp, minimum 5.00)."""
    book = run("FIFO", """
        T001 BUY   20 1150.00 34.50 2024-06-03
        T002 BUY   10 1208.50 18.13 2024-06-07
        T004 SELL 250  130.98 49.12 2024-06-17
        T028 BUY   30  100.45  5.00 2024-08-05
        T029 SELL  60  102.83  9.25 2024-09-06
    """, [NVDA_SPLIT_2024])
    # T001: 23,000.00 + 34.50 = 23,034.50;  T002: 12,085.00 + 18.13 (18.1275) = 12,103.13
    # the 10:1 split of 06-10: lots of 200 and 100 shares, cost unchanged
    # T004 (FIFO): all of T001's lot 23,034.50 + 50 of T002's 100: 12,103.13 x 50/100
    #   = 6,051.565 -> 6,051.57; cost 29,086.07; proceeds 32,745.00 - 49.12 = 32,695.88
    # T028: 3,013.50 + 5.00 (minimum; 4.52 computed) = 3,018.50
    # T029: T002's last 50 (6,051.56) + 10 of T028's 30: 3,018.50 x 10/30 = 1,006.166...
    #   -> 1,006.17; cost 7,057.73; proceeds 6,169.80 - 9.25 (9.2547) = 6,160.55
    assert realised(book) == [("T004", "250", "32695.88", "29086.07", "3609.81"),
                              ("T029", "60", "6160.55", "7057.73", "-897.18")]
    # T028 keeps 20 shares for 3,018.50 - 1,006.17 = 2,012.33
    assert open_lots(book) == [("2024-08-05", "20", "2012.33")]


def test_trades_on_the_ex_date_come_after_the_split() -> None:
    book = run("FIFO", """
        T1 BUY   2 1000.00 0.00 2024-06-07
        T2 BUY  10  100.00 0.00 2024-06-10
    """, [NVDA_SPLIT_2024])
    # T1 is split (2 -> 20); T2, traded on the ex date, is not
    assert open_lots(book) == [("2024-06-07", "20", "2000.00"), ("2024-06-10", "10", "1000.00")]


def test_fractional_part() -> None:
    assert fractional_part(Fraction(27, 2), 0) == Fraction(1, 2)
    assert fractional_part(Fraction(10, 3), 0) == Fraction(1, 3)
    assert fractional_part(Fraction(5), 0) == 0
    assert fractional_part(Fraction(123456, 10000), 2) == Fraction(56, 10000)


# -- properties ------------------------------------------------------------------------------

@st.composite
def trade_lists(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, int, int]]]:
    """Random buys and sells (never more than held), then a sell of everything left.

    Each step: (side, quantity in 1/100 shares, price in cents, commission in cents)."""
    steps: list[tuple[str, int, int, int]] = []
    held = 0
    for _ in range(draw(st.integers(1, 12))):
        if held and draw(st.booleans()):
            quantity = draw(st.integers(1, held))
            held -= quantity
            side = "SELL"
        else:
            quantity = draw(st.integers(1, 10**6))
            held += quantity
            side = "BUY"
        steps.append((side, quantity, draw(st.integers(1, 10**6)), draw(st.integers(0, 2000))))
    if held:
        steps.append(("SELL", held, draw(st.integers(1, 10**6)), 0))
    method = draw(st.sampled_from([m.value for m in LotMethod]))
    return method, steps


def _table(steps: list[tuple[str, int, int, int]]) -> str:
    start = dt.date(2025, 1, 6)
    lines = []
    for index, (side, quantity, price, commission) in enumerate(steps):
        day = start + dt.timedelta(days=index // 3)  # some lots share an acquisition date
        lines.append(f"T{index} {side} {Decimal(quantity).scaleb(-2)} "
                     f"{Decimal(price).scaleb(-2)} {Decimal(commission).scaleb(-2)} {day}")
    return "\n".join(lines)


@settings(max_examples=EXAMPLES, deadline=None)
@given(trade_lists())
def test_selling_everything_takes_exactly_the_cost_bought(
        case: tuple[str, list[tuple[str, int, int, int]]]) -> None:
    """Whatever the method, the costs taken by all sells add up to the costs of all buys, and
    while shares are held the open lots hold the rest of the cost and all of the shares."""
    method, steps = case
    table = _table(steps)
    book = run(method, table, isin=IWDA.isin)
    bought = sum((t.gross + t.commission for t in trades(table) if t.side is Side.BUY),
                 Decimal(0))
    taken = sum((r.cost for r in book.realized), Decimal(0))
    assert taken == bought
    assert book.lots.get(IWDA.isin, []) == []
    # Replay prefix by prefix: open lots + cost taken so far = cost bought so far.
    lines = table.splitlines()
    for end in range(1, len(lines)):
        prefix = "\n".join(lines[:end])
        partial = run(method, prefix, isin=IWDA.isin)
        bought = sum((t.gross + t.commission for t in trades(prefix) if t.side is Side.BUY),
                     Decimal(0))
        held = sum((t.quantity if t.side is Side.BUY else -t.quantity for t in trades(prefix)),
                   Decimal(0))
        assert partial.cost(IWDA.isin) + sum((r.cost for r in partial.realized),
                                             Decimal(0)) == bought
        assert partial.quantity(IWDA.isin) == Fraction(held)
        for lot in partial.lots.get(IWDA.isin, []):
            assert lot.quantity > 0 and lot.cost >= 0
        if method == "AVERAGE":
            assert len(partial.lots.get(IWDA.isin, [])) <= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 10**9), st.data())
def test_a_partial_close_takes_the_proportional_cost_rounded_half_up(
        lot_quantity: int, lot_cost_cents: int, data: st.DataObject) -> None:
    """One lot; closing q of its Q shares takes round_half_up(cost x q / Q) exactly."""
    closed = data.draw(st.integers(1, lot_quantity))
    book = LotBook("C1", LotMethod.FIFO, INSTRUMENTS)
    cost = Decimal(lot_cost_cents).scaleb(-2)
    book.buy(NVDA.isin, dt.date(2025, 1, 6), Fraction(lot_quantity), cost)
    taken, cost_taken = book.take(NVDA.isin, Fraction(closed))
    assert taken == closed
    assert cost_taken == round_half_up(Fraction(cost) * closed / lot_quantity, 2)
    assert book.cost(NVDA.isin) == cost - cost_taken


@pytest.mark.parametrize("method", [m.value for m in LotMethod])
def test_sell_order_never_changes_the_lots_it_does_not_touch(method: str) -> None:
    book = run(method, """
        T1 BUY  10 100.00 0.00 2025-01-06
        T2 BUY  10 120.00 0.00 2025-01-07
        T3 SELL  1 130.00 0.00 2025-01-08
    """)
    assert book.quantity(NVDA.isin) == 19
    assert book.cost(NVDA.isin) + book.realized[0].cost == Decimal("2200.00")
