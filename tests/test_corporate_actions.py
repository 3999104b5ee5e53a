"""Corporate actions end to end: a hand-made book folder is loaded, end of day is run, and the
contract's reports are compared with figures worked by hand in the comments.

Each scenario is a small book with real ISINs (check digits verified with stdnum.isin) and
illustrative prices. Settlement: US T+2 before 2024-05-28 and T+1 from it; XWAR and XETR T+2.
The last part holds properties checked with Hypothesis on the lots alone (accounting/lots.py),
cross-checked against the ledger side (corporate_actions/apply.py).
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Callable, Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from stdnum import isin as stdnum_isin

from zaplecze.accounting.lots import LotBook, fractional_part
from zaplecze.bootstrap import open_book
from zaplecze.corporate_actions.apply import Holding, apply
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.money import round_half_up
from zaplecze.refdata.model import Account, AccountKind, Instrument, LotMethod, RefData
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.services.lot_books import lot_books
from zaplecze.services.reporting import build
from zaplecze.store.db import read_connection

D = dt.date.fromisoformat
DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = 1000 if DEEP else 100

# symbol -> ISIN; every one a real security with a valid check digit
ISIN = {
    "GE": "US3696043013",  # GE Aerospace
    "GEV": "US36828A1016",  # GE Vernova, spun off from GE on 2024-04-02 (1 for 4)
    "AAPL": "US0378331005",  # Apple: 4-for-1 split, ex date 2020-08-31
    "ALR": "PLALIOR00045",  # Alior Bank (the reverse split below is invented)
    "PEO": "PLPEKAO00016",  # Bank Pekao (the stock dividend below is invented)
    "PXD": "US7237871071",  # Pioneer Natural Resources, merged into Exxon Mobil 2024-05-03
    "XOM": "US30231G1022",  # Exxon Mobil
    "ATVI": "US00507V1098",  # Activision Blizzard, bought by Microsoft for 95.00 in cash
    "KO": "US1912161007",  # Coca-Cola
    "SAP": "DE0007164600",  # SAP
}
SYMBOL = {isin: symbol for symbol, isin in ISIN.items()}

INSTRUMENTS_CSV = """\
isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale
US3696043013,GE,GE Aerospace,EQUITY,USD,XNYS,,
US36828A1016,GEV,GE Vernova,EQUITY,USD,XNYS,,
US0378331005,AAPL,Apple Inc.,EQUITY,USD,XNAS,,
PLALIOR00045,ALR,Alior Bank S.A.,EQUITY,PLN,XWAR,,
PLPEKAO00016,PEO,Bank Pekao S.A.,EQUITY,PLN,XWAR,,
US7237871071,PXD,Pioneer Natural Resources,EQUITY,USD,XNYS,,
US30231G1022,XOM,Exxon Mobil Corp.,EQUITY,USD,XNYS,,
US00507V1098,ATVI,Activision Blizzard,EQUITY,USD,XNAS,,
US1912161007,KO,Coca-Cola Co.,EQUITY,USD,XNYS,,
DE0007164600,SAP,SAP SE,EQUITY,EUR,XETR,,
"""
TRADES_HEADER = ("trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
                 "counterparty,commission,settlement_date\n")
CA_HEADER = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,"
             "currency,new_isin,cost_fraction,fraction_price\n")
ACCOUNTS_HEADER = "account,name,kind,base_currency,tax_residence,lot_method\n"
CASH_HEADER = "movement_id,account,date,currency,amount,kind,description\n"


def test_the_isins_used_here_are_valid() -> None:
    for symbol, code in ISIN.items():
        assert stdnum_isin.is_valid(code), symbol
        assert code in INSTRUMENTS_CSV


# -- the harness -----------------------------------------------------------------------------

def _csv(header: str, body: str) -> str:
    """A CSV file from a header and rows written with symbols instead of ISINs."""
    text = textwrap.dedent(body).strip()
    for symbol, code in sorted(ISIN.items(), key=lambda item: -len(item[0])):
        text = text.replace(f",{symbol},", f",{code},")
    return header + text + "\n"


class Book:
    """A book built from a folder, run through end of day, read through the reports."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def positions(self, day: str, basis: str = "trade") -> dict[tuple[str, str], tuple[str, ...]]:
        """(account, symbol) -> (quantity, cost_basis) on trade basis, (quantity,) on
        settlement basis."""
        rows = build(self.engine, "positions", as_of=D(day), basis=basis)
        result = {}
        for row in rows:
            values = (row["quantity"], row["cost_basis"]) if basis == "trade" else (
                row["quantity"],)
            assert ("cost_basis" in row) == (basis == "trade")
            result[(row["account"], SYMBOL[row["isin"]])] = values
        return result

    def cash(self, day: str, basis: str = "trade") -> dict[tuple[str, str], str]:
        rows = build(self.engine, "cash", as_of=D(day), basis=basis)
        return {(row["account"], row["currency"]): row["balance"] for row in rows}

    def realized(self, start: str, end: str) -> list[tuple[str, ...]]:
        rows = build(self.engine, "realized", start=D(start), end=D(end))
        return [(r["account"], r["trade_id"], SYMBOL[r["isin"]], r["close_date"], r["quantity"],
                 r["proceeds"], r["cost"], r["gain"], r["currency"]) for r in rows]

    def dividends(self, start: str, end: str) -> list[tuple[str, ...]]:
        rows = build(self.engine, "dividends", start=D(start), end=D(end))
        return [(r["account"], r["event_id"], SYMBOL[r["isin"]], r["pay_date"], r["quantity"],
                 r["gross"], r["withholding"], r["net"], r["currency"]) for r in rows]

    def lots(self, day: str, account: str, symbol: str) -> list[tuple[str, Fraction, str]]:
        with read_connection(self.engine) as connection:
            book = lot_books(connection, D(day))[account]
        lots = sorted(book.lots.get(ISIN[symbol], []), key=lambda lot: (lot.acquired, lot.order))
        return [(lot.acquired.isoformat(), lot.quantity, str(lot.cost)) for lot in lots]

    def stock_record_breaks(self, day: str) -> list[dict[str, str]]:
        rows = build(self.engine, "stock-record", as_of=D(day))
        return [row for row in rows if Decimal(row["break"]) != 0]


MakeBook = Callable[..., Book]  # make_book(files, through=DATE, url=None) -> Book


@pytest.fixture
def make_book(tmp_path: Path) -> Iterator[MakeBook]:
    engines: list[Engine] = []

    def make(files: dict[str, str], through: str, url: str | None = None) -> Book:
        folder = tmp_path / f"folder{len(engines)}"
        folder.mkdir()
        (folder / "instruments.csv").write_text(INSTRUMENTS_CSV)
        for name, text in files.items():
            (folder / name).write_text(text)
        opened = open_book(url or f"sqlite:///{folder / 'book.db'}", create=True)
        engines.append(opened.engine)
        report = Loader(opened.engine, opened.calendar()).load(folder)
        assert report.fatal is None, report.fatal
        assert not report.rejected, report.rejected
        run_eod(opened.engine, D(through))
        return Book(opened.engine)

    yield make
    for engine in engines:
        engine.dispose()


# -- SPLIT -----------------------------------------------------------------------------------

def test_a_forward_split_multiplies_the_holding_and_keeps_the_cost(make_book: MakeBook) -> None:
    """Apple's 4-for-1 split, ex date Mon 2020-08-31 (US T+2 then). A1 bought 10 on 08-24
    (settled 08-26) and 5 on Fri 08-28, which settles on Tue 09-01: pending across the ex date,
    so on settlement basis it counts as 20 only when it settles."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "A1,Ann,CLIENT,USD,US,FIFO\n",
        "cash.csv": CASH_HEADER + "M1,A1,2020-08-24,USD,20000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,A1,AAPL,BUY,10,400.00,USD,2020-08-24,,,1.00,
            T2,NEW,A1,AAPL,BUY,5,480.00,USD,2020-08-28,,,0,
            T3,NEW,A1,AAPL,SELL,30,125.00,USD,2020-09-02,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            SPLIT-AAPL,SPLIT,AAPL,2020-08-31,2020-08-24,2020-08-28,1,4,,,,,
        """),
    }, through="2020-09-04")
    # before: T1 4,000.00 + 1.00 = 4,001.00; T2 2,400.00: 15 shares for 6,401.00
    assert book.positions("2020-08-28") == {("A1", "AAPL"): ("15", "6401.00")}
    assert book.positions("2020-08-28", "settlement") == {("A1", "AAPL"): ("10",)}
    # ex date: 15 x 4 = 60, cost unchanged; settled 10 x 4 = 40, T2 still pending (5 -> 20)
    assert book.positions("2020-08-31") == {("A1", "AAPL"): ("60", "6401.00")}
    assert book.positions("2020-08-31", "settlement") == {("A1", "AAPL"): ("40",)}
    assert book.positions("2020-09-01", "settlement") == {("A1", "AAPL"): ("60",)}
    # T3 sells 30 (FIFO): 30 of the first lot's 40 (4,001.00 x 30/40 = 3,000.75)
    # proceeds 30 x 125.00 = 3,750.00; gain 749.25
    # left: 10 of lot 1 (4,001.00 - 3,000.75 = 1,000.25) + lot 2 (20, 2,400.00) = 3,400.25
    assert book.realized("2020-08-01", "2020-09-30") == [
        ("A1", "T3", "AAPL", "2020-09-02", "30", "3750.00", "3000.75", "749.25", "USD")]
    assert book.positions("2020-09-02") == {("A1", "AAPL"): ("30", "3400.25")}
    assert book.lots("2020-09-02", "A1", "AAPL") == [("2020-08-24", 10, "1000.25"),
                                                     ("2020-08-28", 20, "2400.00")]
    # cash: 20,000.00 - 4,001.00 - 2,400.00 + 3,750.00 = 17,349.00
    assert book.cash("2020-09-02") == {("A1", "USD"): "17349.00"}
    assert book.stock_record_breaks("2020-09-04") == []


def test_a_reverse_split_pays_the_fraction_in_cash(make_book: MakeBook) -> None:
    """An invented 1-for-3 reverse split of Alior (XWAR, T+2), ex Mon 2025-03-10, paid 03-12,
    fraction price 45.00 a new share."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "A2,Bea,CLIENT,PLN,PL,FIFO\n"
                                          "A3,Cyd,CLIENT,PLN,PL,FIFO\n",
        "cash.csv": CASH_HEADER + "M2,A2,2025-03-03,PLN,1000.00,DEPOSIT,\n"
                                  "M3,A3,2025-03-03,PLN,1000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T11,NEW,A2,ALR,BUY,6,10.05,PLN,2025-03-03,,,1.01,
            T12,NEW,A2,ALR,BUY,4,10.50,PLN,2025-03-05,,,0,
            T13,NEW,A3,ALR,BUY,9,10.00,PLN,2025-03-03,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            RSPLIT-ALR,SPLIT,ALR,2025-03-10,2025-03-11,2025-03-12,3,1,,,,,45.00
        """),
    }, through="2025-03-14")
    # A2: lots 6 (60.30 + 1.01 = 61.31) and 4 (42.00): 10 shares -> 10/3 = 3 1/3
    #   lots become 2 and 4/3; the 1/3 fraction leaves the oldest lot first (FIFO):
    #   cost 61.31 x (1/3) / 2 = 10.218... -> 10.22; the lot keeps 5/3 share for 51.09
    #   cash in lieu 1/3 x 45.00 = 15.00 on the pay date; gain 4.78
    # A3: 9 -> 3 exactly: no fraction, no cash, no realised row
    assert book.positions("2025-03-07") == {("A2", "ALR"): ("10", "103.31"),
                                            ("A3", "ALR"): ("9", "90.00")}
    expected = {("A2", "ALR"): ("3", "93.09"), ("A3", "ALR"): ("3", "90.00")}
    assert book.positions("2025-03-10") == expected
    assert book.positions("2025-03-10", "settlement") == {key: (value[0],)
                                                          for key, value in expected.items()}
    assert book.lots("2025-03-10", "A2", "ALR") == [("2025-03-03", Fraction(5, 3), "51.09"),
                                                    ("2025-03-05", Fraction(4, 3), "42.00")]
    [row] = book.realized("2025-03-01", "2025-03-31")
    account, trade_id, symbol, close_date, quantity, proceeds, cost, gain, currency = row
    assert (account, trade_id, symbol, close_date) == ("A2", "RSPLIT-ALR", "ALR", "2025-03-10")
    assert (proceeds, cost, gain, currency) == ("15.00", "10.22", "4.78", "PLN")
    # 1/3 of a share has no exact decimal: it is written at 12 places, half-up (FRACTION_PLACES)
    assert quantity == "0.333333333333"
    # cash in lieu arrives on 03-12 on both bases: 1,000.00 - 61.31 - 42.00 = 896.69 + 15.00
    for basis in ("trade", "settlement"):
        assert book.cash("2025-03-11", basis)[("A2", "PLN")] == "896.69"
        assert book.cash("2025-03-12", basis)[("A2", "PLN")] == "911.69"
        assert book.cash("2025-03-12", basis)[("A3", "PLN")] == "910.00"
    assert book.stock_record_breaks("2025-03-14") == []


# -- STOCK_DIVIDEND --------------------------------------------------------------------------

def test_a_stock_dividend_with_a_fraction_measured_on_the_whole_holding(
        make_book: MakeBook) -> None:
    """An invented Pekao stock dividend: 1 new share per 10 held, ex Mon 2025-04-07, paid
    04-09, fraction price 150.00 (XWAR, T+2)."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "A1,Ann,CLIENT,PLN,PL,FIFO\nA2,Bob,CLIENT,PLN,PL,\n",
        "cash.csv": CASH_HEADER + "M1,A1,2025-04-01,PLN,10000.00,DEPOSIT,\n"
                                  "M2,A2,2025-04-01,PLN,10000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,A1,PEO,BUY,15,140.00,PLN,2025-04-01,,,5.00,
            T2,NEW,A1,PEO,BUY,10,145.00,PLN,2025-04-03,,,5.00,
            T3,NEW,A1,PEO,BUY,7,150.00,PLN,2025-04-07,,,0,
            T4,NEW,A2,PEO,BUY,15,140.00,PLN,2025-04-01,,,0,
            T5,NEW,A2,PEO,BUY,15,140.00,PLN,2025-04-02,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            SD-PEO,STOCK_DIVIDEND,PEO,2025-04-07,2025-04-08,2025-04-09,10,1,,,,,150.00
        """),
    }, through="2025-04-11")
    # A1 is entitled on 25 (T1 + T2; T3 is traded on the ex date): 25 + 2.5 = 27.5
    #   lots: 15 -> 16.5 (2,100.00 + 5.00 = 2,105.00), 10 -> 11 (1,450.00 + 5.00 = 1,455.00)
    #   fraction 0.5 from the oldest lot: 2,105.00 x 0.5 / 16.5 = 63.787... -> 63.79
    #   lot 1 keeps 16 shares for 2,041.21; cash in lieu 0.5 x 150.00 = 75.00; gain 11.21
    #   with T3 (7 for 1,050.00): 34 shares, 2,041.21 + 1,455.00 + 1,050.00 = 4,546.21
    # A2 holds 15 + 15 = 30 -> 33: each lot is 16.5, but the fraction is measured on the
    #   whole holding (33, a whole number): no cash in lieu, the lots keep 4,200.00
    assert book.positions("2025-04-07") == {("A1", "PEO"): ("34", "4546.21"),
                                            ("A2", "PEO"): ("33", "4200.00")}
    assert book.lots("2025-04-07", "A1", "PEO") == [("2025-04-01", 16, "2041.21"),
                                                    ("2025-04-03", 11, "1455.00"),
                                                    ("2025-04-07", 7, "1050.00")]
    assert book.lots("2025-04-07", "A2", "PEO") == [
        ("2025-04-01", Fraction(33, 2), "2100.00"), ("2025-04-02", Fraction(33, 2), "2100.00")]
    # settlement basis on the ex date: T2 settles that day (with its transformation), T3 on
    # 04-09: 27 for A1; A2's T5 (04-02) settled on 04-04: 33
    assert book.positions("2025-04-07", "settlement") == {("A1", "PEO"): ("27",),
                                                          ("A2", "PEO"): ("33",)}
    assert book.positions("2025-04-09", "settlement") == {("A1", "PEO"): ("34",),
                                                          ("A2", "PEO"): ("33",)}
    assert book.realized("2025-04-01", "2025-04-30") == [
        ("A1", "SD-PEO", "PEO", "2025-04-07", "0.5", "75.00", "63.79", "11.21", "PLN")]
    # A1's cash: 10,000.00 - 2,105.00 - 1,455.00 - 1,050.00 = 5,390.00; + 75.00 on 04-09
    assert book.cash("2025-04-08")[("A1", "PLN")] == "5390.00"
    assert book.cash("2025-04-09")[("A1", "PLN")] == "5465.00"
    assert book.cash("2025-04-09", "settlement")[("A1", "PLN")] == "5465.00"
    assert book.cash("2025-04-09")[("A2", "PLN")] == "5800.00"
    assert book.stock_record_breaks("2025-04-11") == []


# -- SPINOFF ---------------------------------------------------------------------------------

SPINOFF_FOLDER = {
    "accounts.csv": ACCOUNTS_HEADER + "A1,Ann,CLIENT,USD,US,FIFO\n",
    "cash.csv": CASH_HEADER + "M1,A1,2024-03-04,USD,10000.00,DEPOSIT,\n",
    "trades.csv": _csv(TRADES_HEADER, """
        T1,NEW,A1,GE,BUY,4,150.00,USD,2024-03-04,,,1.00,
        T2,NEW,A1,GE,BUY,2,151.15,USD,2024-03-11,,,0,
        T3,NEW,A1,GEV,BUY,1,140.00,USD,2024-03-27,,,0,
    """),
    "corporate_actions.csv": _csv(CA_HEADER, """
        SPIN-GEV,SPINOFF,GE,2024-04-02,2024-03-19,2024-04-04,4,1,,,GEV,0.15,140.01
    """),
}


def test_a_spinoff_moves_cost_and_pays_the_fraction_of_the_whole_new_holding(
        book_url: str, make_book: MakeBook) -> None:
    """GE Vernova spun off from GE: 1 GEV per 4 GE, ex 2024-04-02 (illustrative cost fraction
    0.15 and fraction price 140.01). A1 already holds 1 GEV when the spin-off comes."""
    book = make_book(SPINOFF_FOLDER, through="2024-04-05", url=book_url)
    # GE lots: T1 4 for 600.00 + 1.00 = 601.00 (03-04); T2 2 for 302.30 (03-11)
    # cost moved to GEV, each lot rounded half-up:
    #   601.00 x 0.15 = 90.15;  302.30 x 0.15 = 45.345 -> 45.35 (half-up, not to even)
    #   GE keeps 601.00 - 90.15 = 510.85 and 302.30 - 45.35 = 256.95: 767.80 in all
    # new GEV lots, acquired when their GE lots were: 4/4 = 1 (03-04, 90.15) and
    #   2/4 = 0.5 (03-11, 45.35); with T3's 1 (03-27, 140.00) A1 holds 2.5 GEV
    # the fraction 0.5 is on the whole GEV holding and leaves the oldest GEV lot (03-04):
    #   cost 90.15 x 0.5 / 1 = 45.075 -> 45.08, the lot keeps 0.5 for 45.07
    #   proceeds 0.5 x 140.01 = 70.005 -> 70.01 (GEV's currency, USD); gain 24.93
    # GEV: 2 shares, 45.07 + 45.35 + 140.00 = 230.42
    expected = {("A1", "GE"): ("6", "767.80"), ("A1", "GEV"): ("2", "230.42")}
    assert book.positions("2024-04-01") == {("A1", "GE"): ("6", "903.30"),
                                            ("A1", "GEV"): ("1", "140.00")}
    assert book.positions("2024-04-02") == expected
    assert book.positions("2024-04-02", "settlement") == {key: (value[0],)
                                                          for key, value in expected.items()}
    assert book.lots("2024-04-02", "A1", "GE") == [("2024-03-04", 4, "510.85"),
                                                   ("2024-03-11", 2, "256.95")]
    assert book.lots("2024-04-02", "A1", "GEV") == [("2024-03-04", Fraction(1, 2), "45.07"),
                                                    ("2024-03-11", Fraction(1, 2), "45.35"),
                                                    ("2024-03-27", 1, "140.00")]
    assert book.realized("2024-04-01", "2024-04-30") == [
        ("A1", "SPIN-GEV", "GEV", "2024-04-02", "0.5", "70.01", "45.08", "24.93", "USD")]
    # cash: 10,000.00 - 601.00 - 302.30 - 140.00 = 8,956.70; + 70.01 on 04-04 = 9,026.71
    for basis in ("trade", "settlement"):
        assert book.cash("2024-04-03", basis) == {("A1", "USD"): "8956.70"}
        assert book.cash("2024-04-04", basis) == {("A1", "USD"): "9026.71"}
    assert book.stock_record_breaks("2024-04-05") == []


# -- the transformation rule -----------------------------------------------------------------

TRANSFORMATION_FOLDER = {
    "accounts.csv": ACCOUNTS_HEADER + "B1,Buyer,CLIENT,USD,US,FIFO\n"
                                      "S1,Seller,CLIENT,USD,US,FIFO\n",
    "cash.csv": CASH_HEADER + "M1,B1,2024-03-25,USD,10000.00,DEPOSIT,\n"
                              "M2,S1,2024-03-25,USD,10000.00,DEPOSIT,\n",
    "trades.csv": _csv(TRADES_HEADER, """
        T1,NEW,S1,GE,BUY,8,150.00,USD,2024-03-25,,,0,
        T2,NEW,B1,GE,BUY,4,160.00,USD,2024-04-01,,,0,
        T3,NEW,S1,GE,SELL,4,160.00,USD,2024-04-01,,,0,
    """),
    "corporate_actions.csv": _csv(CA_HEADER, """
        SPIN-GEV,SPINOFF,GE,2024-04-02,2024-03-19,2024-04-02,4,1,,,GEV,0.15,
    """),
}


def test_a_pending_trade_across_a_spinoff_settles_in_its_transformed_quantities(
        book_url: str, make_book: MakeBook) -> None:
    """The contract's example: B1 buys 4 GE on Mon 04-01 (T+2: settles Wed 04-03), across the
    ex date Tue 04-02. S1, holding 8 settled GE, sells 4 the same day."""
    book = make_book(TRANSFORMATION_FOLDER, through="2024-04-05", url=book_url)
    # trade basis: entitlement is what was traded before the ex date
    #   B1: 4 GE -> 1 GEV; cost 640.00 x 0.15 = 96.00 moves, GE keeps 544.00
    #   S1: 8 - 4 = 4 GE -> 1 GEV; T3 took T1's 4 for 600.00 (FIFO), so the lot left
    #       is 4 for 600.00: 90.00 moves, GE keeps 510.00
    trade_basis = {("B1", "GE"): ("4", "544.00"), ("B1", "GEV"): ("1", "96.00"),
                   ("S1", "GE"): ("4", "510.00"), ("S1", "GEV"): ("1", "90.00")}
    assert book.positions("2024-04-01") == {("B1", "GE"): ("4", "640.00"),
                                            ("S1", "GE"): ("4", "600.00")}
    assert book.positions("2024-04-02") == trade_basis
    assert book.positions("2024-04-03") == trade_basis
    # settlement basis = trade basis less every pending trade's transformed quantities:
    #   B1's pending buy counts as 4 GE + 1 GEV pending: nothing settled until 04-03
    #   S1's pending sale of 4 GE will deliver 4 GE + 1 GEV; until it settles S1's settled
    #   holding is 8 GE and 2 GEV (its own 1 and the 1 its sale will deliver)
    assert book.positions("2024-04-01", "settlement") == {("S1", "GE"): ("8",)}
    assert book.positions("2024-04-02", "settlement") == {("S1", "GE"): ("8",),
                                                          ("S1", "GEV"): ("2",)}
    assert book.positions("2024-04-03", "settlement") == {
        key: (value[0],) for key, value in trade_basis.items()}
    # cash: B1 pays 640.00 (trade basis 04-01, settlement 04-03); S1 paid 1,200.00 for T1
    #   (settled 03-27) and receives 640.00 for T3
    assert book.cash("2024-04-02") == {("B1", "USD"): "9360.00", ("S1", "USD"): "9440.00"}
    assert book.cash("2024-04-02", "settlement") == {("B1", "USD"): "10000.00",
                                                     ("S1", "USD"): "8800.00"}
    assert book.cash("2024-04-03", "settlement") == {("B1", "USD"): "9360.00",
                                                     ("S1", "USD"): "9440.00"}
    # T3's gain is on the pre-spin-off cost: 640.00 - 600.00
    assert book.realized("2024-03-01", "2024-04-30") == [
        ("S1", "T3", "GE", "2024-04-01", "4", "640.00", "600.00", "40.00", "USD")]
    for day in ("2024-04-01", "2024-04-02", "2024-04-03"):
        assert book.stock_record_breaks(day) == []


def test_a_pending_trade_cancelled_on_the_ex_date_leaves_nothing_behind(
        make_book: MakeBook) -> None:
    """C1 buys 4 GE on 04-01 and the buy is cancelled on 04-02, the ex date, before it settles
    (the cancel is in the folder, so it is loaded before end of day runs). From 04-02 the book
    must look as if the buy had never been booked: no GE and no GEV for C1 on either basis."""
    folder = dict(TRANSFORMATION_FOLDER)
    folder["accounts.csv"] += "C1,Canceller,CLIENT,USD,US,FIFO\n"
    folder["cash.csv"] += "M3,C1,2024-03-25,USD,10000.00,DEPOSIT,\n"
    folder["trades.csv"] += _csv("", """
        T4,NEW,C1,GE,BUY,4,160.00,USD,2024-04-01,,,0,
        T4,CANCEL,C1,,,,,,2024-04-02,,,,
    """)
    book = make_book(folder, through="2024-04-05")
    assert book.positions("2024-04-01")[("C1", "GE")] == ("4", "640.00")
    for day in ("2024-04-02", "2024-04-03", "2024-04-05"):
        for basis in ("trade", "settlement"):
            held = {key: value for key, value in book.positions(day, basis).items()
                    if key[0] == "C1"}
            assert held == {}, (day, basis)
        assert book.cash(day)[("C1", "USD")] == "10000.00"
    assert book.stock_record_breaks("2024-04-05") == []


# -- MERGER ----------------------------------------------------------------------------------

def test_a_merger_carries_the_lots_to_the_new_security(make_book: MakeBook) -> None:
    """Pioneer into Exxon Mobil: 2.3234 XOM per PXD, ex Fri 2024-05-03 (illustrative fraction
    price 110.00, cash paid 05-07)."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "A1,Ann,CLIENT,USD,US,FIFO\n",
        "cash.csv": CASH_HEADER + "M1,A1,2024-04-22,USD,5000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,A1,PXD,BUY,6,250.00,USD,2024-04-22,,,0,
            T2,NEW,A1,PXD,BUY,4,260.00,USD,2024-04-24,,,0,
            T3,NEW,A1,XOM,SELL,14,115.00,USD,2024-05-06,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            MERGE-PXD,MERGER,PXD,2024-05-03,2024-05-02,2024-05-07,1,2.3234,,,XOM,,110.00
        """),
    }, through="2024-05-10")
    # lots, cost and dates unchanged: 6 x 2.3234 = 13.9404 (04-22, 1,500.00) and
    #   4 x 2.3234 = 9.2936 (04-24, 1,040.00): 23.234 XOM
    # fraction 0.234 from the oldest lot: 1,500.00 x 0.234 / 13.9404 = 25.178... -> 25.18
    #   lot 1 keeps 13.7064 for 1,474.82; cash in lieu 0.234 x 110.00 = 25.74; gain 0.56
    # XOM: 23 shares, 1,474.82 + 1,040.00 = 2,514.82; no PXD left on either basis
    expected = {("A1", "XOM"): ("23", "2514.82")}
    assert book.positions("2024-05-02") == {("A1", "PXD"): ("10", "2540.00")}
    assert book.positions("2024-05-03") == expected
    assert book.positions("2024-05-03", "settlement") == {("A1", "XOM"): ("23",)}
    assert book.lots("2024-05-03", "A1", "XOM") == [
        ("2024-04-22", Fraction("13.7064"), "1474.82"), ("2024-04-24", Fraction("9.2936"),
                                                         "1040.00")]
    assert book.lots("2024-05-03", "A1", "PXD") == []
    # T3 sells 14 XOM (FIFO, by the carried acquisition dates): all of lot 1 (13.7064,
    #   1,474.82) and 0.2936 of lot 2: 1,040.00 x 0.2936 / 9.2936 = 32.855... -> 32.86
    #   cost 1,507.68; proceeds 14 x 115.00 = 1,610.00; gain 102.32
    assert book.realized("2024-05-01", "2024-05-31") == [
        ("A1", "MERGE-PXD", "XOM", "2024-05-03", "0.234", "25.74", "25.18", "0.56", "USD"),
        ("A1", "T3", "XOM", "2024-05-06", "14", "1610.00", "1507.68", "102.32", "USD")]
    assert book.positions("2024-05-06") == {("A1", "XOM"): ("9", "1007.14")}
    # cash: 5,000.00 - 1,500.00 - 1,040.00 = 2,460.00; + 25.74 on 05-07; + 1,610.00 for T3
    assert book.cash("2024-05-06") == {("A1", "USD"): "4070.00"}
    assert book.cash("2024-05-07") == {("A1", "USD"): "4095.74"}
    # T3 (before 2024-05-28: T+2) settles on 05-08
    assert book.cash("2024-05-07", "settlement") == {("A1", "USD"): "2485.74"}
    assert book.cash("2024-05-08", "settlement") == {("A1", "USD"): "4095.74"}
    assert book.stock_record_breaks("2024-05-10") == []


# -- CASH_MERGER -----------------------------------------------------------------------------

def test_a_cash_merger_disposes_of_every_lot_on_the_ex_date(make_book: MakeBook) -> None:
    """Microsoft buys Activision for 95.00 a share in cash: ex Fri 2023-10-13, paid 10-17
    (US T+2 then). A2's buy of Thu 10-12 settles on Mon 10-16, after the ex date."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "A1,Ann,CLIENT,USD,US,FIFO\n"
                                          "A2,Bob,CLIENT,USD,US,LIFO\n",
        "cash.csv": CASH_HEADER + "M1,A1,2023-09-05,USD,5000.00,DEPOSIT,\n"
                                  "M2,A2,2023-09-05,USD,1000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,A1,ATVI,BUY,10,80.00,USD,2023-09-05,,,1.00,
            T2,NEW,A1,ATVI,BUY,5,90.00,USD,2023-10-02,,,0,
            T3,NEW,A2,ATVI,BUY,3,94.50,USD,2023-10-12,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            CASH-ATVI,CASH_MERGER,ATVI,2023-10-13,2023-10-12,2023-10-17,,,95.00,USD,,,
        """),
    }, through="2023-10-20")
    # A1: 15 shares cost 801.00 + 450.00 = 1,251.00; proceeds 15 x 95.00 = 1,425.00
    # A2: 3 shares (pending) cost 283.50; proceeds 3 x 95.00 = 285.00
    # one row per account, trade_id = the event, close_date = the ex date
    assert book.realized("2023-10-01", "2023-10-31") == [
        ("A1", "CASH-ATVI", "ATVI", "2023-10-13", "15", "1425.00", "1251.00", "174.00", "USD"),
        ("A2", "CASH-ATVI", "ATVI", "2023-10-13", "3", "285.00", "283.50", "1.50", "USD")]
    assert book.positions("2023-10-12") == {("A1", "ATVI"): ("15", "1251.00"),
                                            ("A2", "ATVI"): ("3", "283.50")}
    assert book.positions("2023-10-12", "settlement") == {("A1", "ATVI"): ("15",)}
    # from the ex date nothing is held on either basis: A2's pending buy of 3 counts as
    # 3 - 3 = 0 once transformed, before and after it settles
    for day in ("2023-10-13", "2023-10-16", "2023-10-20"):
        assert book.positions(day) == {}
        assert book.positions(day, "settlement") == {}
    # the takeover cash arrives on the pay date, on both bases
    #   A1: 5,000.00 - 1,251.00 = 3,749.00 -> 5,174.00
    #   A2: 1,000.00 - 283.50 = 716.50 (settled 10-16) -> 1,001.50
    assert book.cash("2023-10-16") == {("A1", "USD"): "3749.00", ("A2", "USD"): "716.50"}
    assert book.cash("2023-10-13", "settlement") == {("A1", "USD"): "3749.00",
                                                     ("A2", "USD"): "1000.00"}
    for basis in ("trade", "settlement"):
        assert book.cash("2023-10-17", basis) == {("A1", "USD"): "5174.00",
                                                  ("A2", "USD"): "1001.50"}
    assert book.stock_record_breaks("2023-10-20") == []


# -- CASH_DIVIDEND ---------------------------------------------------------------------------

def test_cash_dividends_are_withheld_by_tax_residence(make_book: MakeBook) -> None:
    """Coca-Cola pays 0.485 (ex Fri 2025-06-13, paid 07-01); SAP pays EUR 2.35 (ex 2025-05-14,
    paid 05-16). withholding.csv has US rows only: PL 15%, US 0%, everybody else 30%."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + textwrap.dedent("""\
            C1,Polish client,CLIENT,PLN,PL,FIFO
            C2,German client,CLIENT,EUR,DE,FIFO
            C3,US client,CLIENT,USD,US,FIFO
            C4,Polish SAP holder,CLIENT,PLN,PL,FIFO
            C5,Sold before ex,CLIENT,PLN,PL,FIFO
            H1,House book,HOUSE,PLN,PL,FIFO
        """),
        "withholding.csv": "issuer_country,tax_residence,rate\n"
                           "US,PL,0.15\nUS,US,0.00\nUS,*,0.30\n",
        "cash.csv": CASH_HEADER + textwrap.dedent("""\
            M1,C1,2025-05-02,USD,10000.00,DEPOSIT,
            M2,C2,2025-05-02,USD,10000.00,DEPOSIT,
            M3,C3,2025-05-02,USD,20000.00,DEPOSIT,
            M4,C4,2025-05-02,EUR,5000.00,DEPOSIT,
            M5,C5,2025-05-02,USD,5000.00,DEPOSIT,
            M6,H1,2025-05-02,USD,200000.00,DEPOSIT,
        """),
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,C1,KO,BUY,33,70.00,USD,2025-06-12,,,0,
            T2,NEW,C2,KO,BUY,101,70.00,USD,2025-06-02,,,0,
            T3,NEW,C3,KO,BUY,200,70.00,USD,2025-06-02,,,0,
            T4,NEW,H1,KO,BUY,1000,70.00,USD,2025-06-02,,,0,
            T5,NEW,H1,KO,BUY,500,71.00,USD,2025-06-13,,,0,
            T6,NEW,C5,KO,BUY,50,69.00,USD,2025-06-02,,,0,
            T7,NEW,C5,KO,SELL,50,70.00,USD,2025-06-12,,,0,
            T8,NEW,C4,SAP,BUY,7,250.00,EUR,2025-05-05,,,0,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            DIV-KO,CASH_DIVIDEND,KO,2025-06-13,2025-06-13,2025-07-01,,,0.485,USD,,,
            DIV-SAP,CASH_DIVIDEND,SAP,2025-05-14,2025-05-15,2025-05-16,,,2.35,EUR,,,
        """),
    }, through="2025-07-02")
    # entitlement: trades dated before the ex date, settled or not
    # C1 33 (bought the day before, settling on the ex date): 33 x 0.485 = 16.005 -> 16.01;
    #    PL resident: 15% = 2.4015 -> 2.40; net 13.61
    # C2 101: 48.985 -> 48.99; DE has no row of its own, the `*` row: 30% = 14.697 -> 14.70;
    #    net 34.29
    # C3 200: 97.00; US row 0%: nothing withheld
    # C4 7 SAP: 7 x 2.35 = 16.45 EUR; no DE issuer row at all: rate 0
    # C5 sold its 50 on 06-12 (pending on the ex date): entitled to 0, no row
    # H1 the house, PL: 1,000 (the 500 bought on the ex date carry no right): 485.00,
    #    15% = 72.75, net 412.25 - withheld like any other account
    assert book.dividends("2025-05-01", "2025-07-31") == [
        ("C1", "DIV-KO", "KO", "2025-07-01", "33", "16.01", "2.40", "13.61", "USD"),
        ("C2", "DIV-KO", "KO", "2025-07-01", "101", "48.99", "14.70", "34.29", "USD"),
        ("C3", "DIV-KO", "KO", "2025-07-01", "200", "97.00", "0.00", "97.00", "USD"),
        ("C4", "DIV-SAP", "SAP", "2025-05-16", "7", "16.45", "0.00", "16.45", "EUR"),
        ("H1", "DIV-KO", "KO", "2025-07-01", "1000", "485.00", "72.75", "412.25", "USD"),
    ]
    # selected by pay date
    assert [row[:2] for row in book.dividends("2025-05-16", "2025-06-30")] == [
        ("C4", "DIV-SAP")]
    assert book.dividends("2025-06-13", "2025-06-30") == []
    # the net arrives on the pay date on both bases; C1: 10,000.00 - 2,310.00 = 7,690.00
    for basis in ("trade", "settlement"):
        assert book.cash("2025-06-30", basis)[("C1", "USD")] == "7690.00"
        assert book.cash("2025-07-01", basis)[("C1", "USD")] == "7703.61"
        # H1: 200,000.00 - 70,000.00 - 35,500.00 = 94,500.00 + 412.25
        assert book.cash("2025-07-01", basis)[("H1", "USD")] == "94912.25"
        # C4: 5,000.00 - 1,750.00 = 3,250.00 + 16.45 on 05-16
        assert book.cash("2025-05-15", basis)[("C4", "EUR")] == "3250.00"
        assert book.cash("2025-05-16", basis)[("C4", "EUR")] == "3266.45"
    # a dividend changes no position and no lot
    assert book.positions("2025-07-01")[("H1", "KO")] == ("1500", "105500.00")
    # the tax withheld is owed to the tax office: 2.40 + 14.70 + 72.75 = 89.85
    tb = build(book.engine, "trial-balance", as_of=D("2025-07-01"))
    [withheld] = [row for row in tb if row["gl_account"] == "tax:withholding"]
    assert (withheld["currency"], withheld["credit"]) == ("USD", "89.85")


def test_a_buy_cancelled_on_the_ex_date_earns_no_dividend(make_book: MakeBook) -> None:
    """C6 buys 10 KO the day before the ex date with an explicit settlement date after it
    (Mon 06-16), and the buy is cancelled on the ex date, before it settles. From 06-13 the
    book must look as if it had never been booked: no dividend on 07-01, no cash."""
    book = make_book({
        "accounts.csv": ACCOUNTS_HEADER + "C6,Cancelled buyer,CLIENT,USD,US,FIFO\n",
        "cash.csv": CASH_HEADER + "M1,C6,2025-06-02,USD,10000.00,DEPOSIT,\n",
        "trades.csv": _csv(TRADES_HEADER, """
            T1,NEW,C6,KO,BUY,10,70.00,USD,2025-06-12,,,0,2025-06-16
            T1,CANCEL,C6,,,,,,2025-06-13,,,,
        """),
        "corporate_actions.csv": _csv(CA_HEADER, """
            DIV-KO,CASH_DIVIDEND,KO,2025-06-13,2025-06-13,2025-07-01,,,0.485,USD,,,
        """),
    }, through="2025-07-02")
    assert book.positions("2025-06-12") == {("C6", "KO"): ("10", "700.00")}
    assert book.positions("2025-06-13") == {}
    assert book.dividends("2025-06-01", "2025-07-31") == []
    for basis in ("trade", "settlement"):
        assert book.cash("2025-07-01", basis) == {("C6", "USD"): "10000.00"}


def test_a_spinoff_onto_its_own_security_is_rejected(tmp_path: Path) -> None:
    """new_isin must name another security: a SPINOFF or MERGER of GE into GE makes no sense
    (and used to send the lots into an endless loop). The row is rejected, not booked."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "instruments.csv").write_text(INSTRUMENTS_CSV)
    (folder / "accounts.csv").write_text(ACCOUNTS_HEADER + "A1,Ann,CLIENT,USD,US,FIFO\n")
    (folder / "corporate_actions.csv").write_text(_csv(CA_HEADER, """
        BAD-SPIN,SPINOFF,GE,2024-04-02,2024-03-19,2024-04-02,4,1,,,GE,0.15,
        BAD-MERGE,MERGER,GE,2024-04-02,2024-03-19,2024-04-02,1,2,,,GE,,
        GOOD-SPIN,SPINOFF,GE,2024-04-02,2024-03-19,2024-04-02,4,1,,,GEV,0.15,
    """))
    opened = open_book(f"sqlite:///{tmp_path / 'book.db'}", create=True)
    try:
        report = Loader(opened.engine, opened.calendar()).load(folder)
        assert [(p.source, p.line, p.rule.value) for p in report.rejected] == [
            ("corporate_actions.csv", 2, "new_isin_required"),
            ("corporate_actions.csv", 3, "new_isin_required")]
        assert report.booked.get("corporate_actions.csv") == 1
    finally:
        opened.engine.dispose()


# -- the lots alone: worked examples the end-to-end books do not reach ----------------------

GE = Instrument(ISIN["GE"], "GE", "GE Aerospace", "EQUITY", "USD", "XNYS", "US", 0)
GEV = Instrument(ISIN["GEV"], "GEV", "GE Vernova", "EQUITY", "USD", "XNYS", "US", 0)
PXD = Instrument(ISIN["PXD"], "PXD", "Pioneer", "EQUITY", "USD", "XNYS", "US", 0)
XOM = Instrument(ISIN["XOM"], "XOM", "Exxon Mobil", "EQUITY", "USD", "XNYS", "US", 0)
# a fund in fractional units (4 decimals), to exercise quantity scales
FUND = Instrument("IE00B4L5Y983", "IWDA", "iShares Core MSCI World", "ETF", "USD", "XLON", "IE",
                  4)
INSTRUMENTS = {i.isin: i for i in (GE, GEV, PXD, XOM, FUND)}
DAY = dt.date(2024, 4, 2)


def _event(kind: CaKind, isin: str, old: int, new: int | str, *, new_isin: str = "",
           cost_fraction: str = "0", fraction_price: str = "0") -> CorporateAction:
    return CorporateAction(f"E-{kind.value}", kind, isin, DAY, DAY, DAY,
                           ratio_old=Decimal(old), ratio_new=Decimal(new), new_isin=new_isin,
                           cost_fraction=Decimal(cost_fraction),
                           fraction_price=Decimal(fraction_price))


def test_average_keeps_one_pool_when_a_spinoff_adds_to_a_held_security() -> None:
    """AVERAGE: one pooled lot per security. An account holding 2 GEV (300.00) receives 2 more
    from 8 GE (1,000.00) with cost fraction 0.2: 200.00 moves. The pool: 4 GEV for 500.00, so
    selling 1 takes 125.00 - not 100.00 (the spun-off shares) nor 150.00 (the bought ones)."""
    book = LotBook("A1", LotMethod.AVERAGE, INSTRUMENTS)
    book.buy(GE.isin, dt.date(2024, 3, 4), Fraction(8), Decimal("1000.00"))
    book.buy(GEV.isin, dt.date(2024, 3, 27), Fraction(2), Decimal("300.00"))
    book.corporate_action(_event(CaKind.SPINOFF, GE.isin, 4, 1, new_isin=GEV.isin,
                                 cost_fraction="0.2"))
    assert len(book.lots[GEV.isin]) == 1
    assert (book.quantity(GEV.isin), book.cost(GEV.isin)) == (4, Decimal("500.00"))
    assert book.take(GEV.isin, Fraction(1)) == (1, Decimal("125.00"))


def test_average_keeps_one_pool_when_a_merger_adds_to_a_held_security() -> None:
    """2 XOM held for 230.00; 1 PXD (250.00) becomes 2 XOM: the pool is 4 XOM for 480.00."""
    book = LotBook("A1", LotMethod.AVERAGE, INSTRUMENTS)
    book.buy(XOM.isin, dt.date(2024, 4, 1), Fraction(2), Decimal("230.00"))
    book.buy(PXD.isin, dt.date(2024, 4, 22), Fraction(1), Decimal("250.00"))
    book.corporate_action(_event(CaKind.MERGER, PXD.isin, 1, 2, new_isin=XOM.isin))
    assert PXD.isin not in book.lots
    assert len(book.lots[XOM.isin]) == 1
    assert book.take(XOM.isin, Fraction(1)) == (1, Decimal("120.00"))


def test_hifo_takes_the_cash_in_lieu_fraction_from_the_dearest_lot() -> None:
    """Fractions leave the lots in the order a SELL would take them: under HIFO the dearest.
    10 GE in lots of 6 (600.00, 100.00 a share) and 4 (480.00, 120.00 a share); 3-for-2 split:
    15 shares, no fraction. Then 1-for-4: 15/4 = 3.75 -> fraction 0.75 from the 120.00 lot:
    lot 2 is 4 x 3/2 / 4 = 1.5 shares; 0.75 of it takes 480.00 x 0.75 / 1.5 = 240.00."""
    book = LotBook("A1", LotMethod.HIFO, INSTRUMENTS)
    book.buy(GE.isin, dt.date(2024, 3, 4), Fraction(6), Decimal("600.00"))
    book.buy(GE.isin, dt.date(2024, 3, 5), Fraction(4), Decimal("480.00"))
    book.corporate_action(_event(CaKind.SPLIT, GE.isin, 2, 3, fraction_price="1"))
    assert book.realized == []
    book.corporate_action(_event(CaKind.SPLIT, GE.isin, 4, 1, fraction_price="400.00"))
    [in_lieu] = book.realized
    assert (in_lieu.quantity, in_lieu.proceeds, in_lieu.cost) == (Decimal("0.75"),
                                                                  Decimal("300.00"),
                                                                  Decimal("240.00"))
    assert book.quantity(GE.isin) == 3 and book.cost(GE.isin) == Decimal("840.00")


# -- properties ------------------------------------------------------------------------------

@st.composite
def holdings(draw: st.DrawFn, instrument: Instrument) -> list[tuple[int, int]]:
    """1-5 lots as (quantity in units of the instrument's scale, cost in cents)."""
    return draw(st.lists(st.tuples(st.integers(1, 10**5), st.integers(0, 10**8)),
                         min_size=1, max_size=5))


def _book(method: LotMethod, instrument: Instrument, lots: list[tuple[int, int]],
          extra: list[tuple[int, int]] = (), extra_instrument: Instrument | None = None,
          ) -> LotBook:
    book = LotBook("A1", method, INSTRUMENTS)
    for index, (quantity, cents) in enumerate(lots):
        book.buy(instrument.isin, dt.date(2024, 3, 1) + dt.timedelta(days=index),
                 Fraction(quantity, 10**instrument.quantity_scale), Decimal(cents).scaleb(-2))
    for index, (quantity, cents) in enumerate(extra):
        assert extra_instrument is not None
        book.buy(extra_instrument.isin, dt.date(2024, 3, 2) + dt.timedelta(days=index),
                 Fraction(quantity, 10**extra_instrument.quantity_scale),
                 Decimal(cents).scaleb(-2))
    return book


def _in_lieu_cost(book: LotBook) -> Decimal:
    return sum((r.cost for r in book.realized), Decimal(0))


def _ledger_position(event: CorporateAction, instrument: Instrument, held: Fraction,
                     resulting_held: Fraction) -> tuple[dict[str, Fraction], Decimal]:
    """The resulting holdings by the ledger side (apply.py), in shares, and the cash (in lieu)
    it pays the account."""
    new_instrument = INSTRUMENTS[event.resulting_isin]
    refdata = RefData(instruments=INSTRUMENTS, accounts={"A1": Account(
        "A1", "Ann", AccountKind.CLIENT, "USD", "US", LotMethod.FIFO)})
    units = int(held * 10**instrument.quantity_scale)
    resulting_units = int(resulting_held * 10**new_instrument.quantity_scale)
    entries, entitlement = apply(event, Holding("A1", units, resulting_units), refdata)
    assert entitlement is not None
    position = {event.isin: held}
    if event.resulting_isin != event.isin:
        position[event.resulting_isin] = resulting_held
    for entry in entries:
        for posting in entry.postings:
            if posting.gl_account == "client:A1":
                scale = INSTRUMENTS[posting.asset].quantity_scale
                position[posting.asset] = position.get(posting.asset, Fraction(0)) + Fraction(
                    posting.amount, 10**scale)
    return position, entitlement.gross


ratios = st.tuples(st.integers(1, 12), st.integers(1, 12))
methods = st.sampled_from(list(LotMethod))
instruments = st.sampled_from([GE, FUND])
prices = st.integers(0, 10**6).map(lambda cents: str(Decimal(cents).scaleb(-2)))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data(), methods, instruments, ratios, prices,
       st.sampled_from([CaKind.SPLIT, CaKind.STOCK_DIVIDEND]))
def test_split_and_stock_dividend_conserve_cost_and_agree_with_the_ledger(
        data: st.DataObject, method: LotMethod, instrument: Instrument, ratio: tuple[int, int],
        fraction_price: str, kind: CaKind) -> None:
    lots = data.draw(holdings(instrument))
    book = _book(method, instrument, lots)
    before_cost = book.cost(instrument.isin)
    before = book.quantity(instrument.isin)
    event = _event(kind, instrument.isin, *ratio, fraction_price=fraction_price)
    book.corporate_action(event)
    # cost conserved: what the lots keep + what cash in lieu took = what they had
    assert book.cost(instrument.isin) + _in_lieu_cost(book) == before_cost
    # quantity: the whole holding adjusted exactly, less its fraction below the scale
    factor = event.ratio if kind is CaKind.SPLIT else 1 + event.ratio
    exact = before * factor
    assert book.quantity(instrument.isin) == exact - fractional_part(exact,
                                                                     instrument.quantity_scale)
    # totals over lots = the ledger's position; the ledger pays the cash the lots realise
    ledger, cash = _ledger_position(event, instrument, before, Fraction(0))
    assert ledger[instrument.isin] == book.quantity(instrument.isin)
    assert cash == sum((r.proceeds for r in book.realized), Decimal(0))
    if method is LotMethod.AVERAGE:
        assert len(book.lots.get(instrument.isin, [])) <= 1


# (old security, new security): whole shares and fractional fund units both ways
PAIRS = st.sampled_from([(GE, GEV), (FUND, GEV), (GE, FUND)])
MERGER_PAIRS = st.sampled_from([(PXD, XOM), (FUND, XOM), (PXD, FUND)])


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data(), methods, PAIRS, ratios, prices, st.integers(0, 10**4))
def test_a_spinoff_splits_cost_exactly_and_agrees_with_the_ledger(
        data: st.DataObject, method: LotMethod, pair: tuple[Instrument, Instrument],
        ratio: tuple[int, int], fraction_price: str, basis_points: int) -> None:
    old, new = pair
    lots = data.draw(holdings(old))
    already = data.draw(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10**6)),
                                 max_size=2))
    book = _book(method, old, lots, already, new)
    before_old_lots = [(lot.acquired, lot.cost) for lot in book.lots[old.isin]]
    before_cost = book.cost(old.isin) + book.cost(new.isin)
    before_old, before_new = book.quantity(old.isin), book.quantity(new.isin)
    cost_fraction = str(Decimal(basis_points).scaleb(-4))
    event = _event(CaKind.SPINOFF, old.isin, *ratio, new_isin=new.isin,
                   cost_fraction=cost_fraction, fraction_price=fraction_price)
    book.corporate_action(event)
    # old + new (+ the cost of any fraction paid in cash) = before, to the cent
    assert book.cost(old.isin) + book.cost(new.isin) + _in_lieu_cost(book) == before_cost
    # each old lot gave up its own cost x fraction, rounded half-up, and kept its date
    for (acquired, cost), lot in zip(before_old_lots, book.lots[old.isin], strict=True):
        assert lot.acquired == acquired
        assert lot.cost == cost - round_half_up(cost * Decimal(cost_fraction), 2)
    assert book.quantity(old.isin) == before_old
    # new: what was held plus the ratio of old, less the fraction of the whole new holding
    exact = before_new + before_old * event.ratio
    assert book.quantity(new.isin) == exact - fractional_part(exact, new.quantity_scale)
    assert all(r.isin == new.isin and r.quantity < Decimal(1).scaleb(-new.quantity_scale)
               for r in book.realized)
    ledger, cash = _ledger_position(event, old, before_old, before_new)
    assert ledger == {old.isin: book.quantity(old.isin), new.isin: book.quantity(new.isin)}
    assert cash == sum((r.proceeds for r in book.realized), Decimal(0))
    if method is LotMethod.AVERAGE:
        assert all(len(lots) <= 1 for lots in book.lots.values())


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data(), methods, MERGER_PAIRS, st.integers(1, 12), st.integers(1, 50_000), prices)
def test_a_merger_carries_cost_and_agrees_with_the_ledger(
        data: st.DataObject, method: LotMethod, pair: tuple[Instrument, Instrument],
        ratio_old: int, ratio_new_ten_thousandths: int, fraction_price: str) -> None:
    old, new = pair
    lots = data.draw(holdings(old))
    already = data.draw(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10**6)),
                                 max_size=2))
    book = _book(method, old, lots, already, new)
    before_cost = book.cost(old.isin) + book.cost(new.isin)
    before_old, before_new = book.quantity(old.isin), book.quantity(new.isin)
    dates = {lot.acquired for lots in book.lots.values() for lot in lots}
    event = _event(CaKind.MERGER, old.isin, ratio_old,
                   str(Decimal(ratio_new_ten_thousandths).scaleb(-4)), new_isin=new.isin,
                   fraction_price=fraction_price)
    book.corporate_action(event)
    # every lot's cost is carried: what the new lots hold + the cost of any fraction = before
    assert book.cost(new.isin) + _in_lieu_cost(book) == before_cost
    assert old.isin not in book.lots
    exact = before_new + before_old * event.ratio
    assert book.quantity(new.isin) == exact - fractional_part(exact, new.quantity_scale)
    if method is not LotMethod.AVERAGE:  # lots keep their dates (a pool keeps its first)
        assert {lot.acquired for lot in book.lots.get(new.isin, [])} <= dates
    ledger, cash = _ledger_position(event, old, before_old, before_new)
    assert ledger[new.isin] == book.quantity(new.isin)
    assert ledger[old.isin] == 0
    assert cash == sum((r.proceeds for r in book.realized), Decimal(0))
    if method is LotMethod.AVERAGE:
        assert len(book.lots.get(new.isin, [])) <= 1


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.data(), methods, st.integers(1, 10**6))
def test_a_cash_merger_realises_every_lot_at_once(data: st.DataObject, method: LotMethod,
                                                  amount_cents: int) -> None:
    lots = data.draw(holdings(FUND))
    book = _book(method, FUND, lots)
    cost, quantity = book.cost(FUND.isin), book.quantity(FUND.isin)
    amount = Decimal(amount_cents).scaleb(-2)
    event = CorporateAction("CM", CaKind.CASH_MERGER, FUND.isin, DAY, DAY, DAY, amount=amount,
                            currency="USD")
    book.corporate_action(event)
    [row] = book.realized
    assert FUND.isin not in book.lots
    assert (row.trade_id, row.close_date, row.cost) == ("CM", DAY, cost)
    assert Fraction(row.quantity) == quantity
    assert row.proceeds == round_half_up(Fraction(amount) * quantity, 2)
