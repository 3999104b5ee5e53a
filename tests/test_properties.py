"""Property tests over random books: the ledger's invariants hold whatever the book says.

Two sources of random books:
- ``generate_book`` (the product's seeded generator) with Hypothesis-drawn seeds and small shapes;
- ``random_books``, a strategy of our own that writes the CSV rows directly: every kind of
  corporate action (fractions, cash in lieu, transformations of pending trades), CANCELs (the same
  day, the next day, too late, from the wrong account, of unknown trades), explicit commissions
  and settlement dates (T+0 and late), fractional quantities, deposits, fees, interest,
  adjustments and withdrawals that pass or are refused, four currencies and five markets with
  their holidays, around the US (2024-05-28) and EU (2027-10-11) settlement-cycle switches.

Each book is initialised, loaded and run through end of day, then ``check_book`` asserts:
- every entry balances per asset, and its postings count on the basis of its phase;
- the stock record balances on both bases at several dates (Σ balances per asset = 0) and the
  stock-record report shows break "0" everywhere;
- positions and cash reports = our own fold of the postings table, by basis and date; the
  product's ``balances_as_of`` = the same fold, and its ``cash_as_of`` (cash by day) = the
  fold's currencies;
- stored balances (``repo.stored_balances``) = folded balances (``repo.folded_balances``) = our
  own fold of the whole journal;
- a CANCEL (VOID) nets its trade, with everything linked to it, to zero on trade basis from the
  cancel date, and nothing of it ever reaches the settlement basis;
- the trial balance balances per currency;
- lots: for every trade-basis position the lots' total quantity equals the quantity, their cost
  is the row's cost_basis, and cost is conserved (Σ cost bought = Σ cost realised + Σ cost open);
- no trade-basis position goes short (the books never sell more than they hold);
- replay is deterministic: loading the folder twice books nothing the second time, running end
  of day twice changes nothing, and a second fresh book gives identical reports and the same
  journal hash head (``audit.verify``), which must also verify clean.

Fast tier: ``ZAPLECZE_HYPOTHESIS_EXAMPLES`` examples per property (default 8; 200 with
``ZAPLECZE_DEEP=1``) on SQLite, plus fixed books on SQLite and PostgreSQL through ``book_url``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from reference_model import (
    is_session,
    is_settlement_day,
    minor_unit,
    money,
    plain,
    settlement_date,
)
from zaplecze.bootstrap import open_book
from zaplecze.services import audit, reporting
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.services.lot_books import lot_books
from zaplecze.store import repo

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = int(os.environ.get("ZAPLECZE_HYPOTHESIS_EXAMPLES", 200 if DEEP else 8))
# Each example builds two books (about a second each), so the fast tier does not shrink a
# failure (Hypothesis can spend minutes on it): it reports the example as found. The deep tier
# shrinks.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    phases=tuple(Phase) if DEEP else (Phase.explicit, Phase.reuse,
                                                      Phase.generate),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# -- our own random books ------------------------------------------------------------------------

# isin, symbol, kind, currency, mic, issuer_country, quantity_scale
UNIVERSE: tuple[tuple[str, str, str, str, str, str, int], ...] = (
    ("PLPKO0000016", "PKO", "EQUITY", "PLN", "XWAR", "", 0),
    ("PLOPTTC00011", "CDR", "EQUITY", "PLN", "XWAR", "", 0),
    ("LU2237380790", "ALE", "EQUITY", "PLN", "XWAR", "LU", 0),
    ("US67066G1040", "NVDA", "EQUITY", "USD", "XNAS", "US", 0),
    ("US1912161007", "KO", "EQUITY", "USD", "XNYS", "", 0),
    ("US0378331005", "AAPL", "EQUITY", "USD", "XNAS", "", 0),
    ("US78462F1030", "SPY", "ETF", "USD", "XNYS", "", 3),
    ("DE0007164600", "SAP", "EQUITY", "EUR", "XETR", "", 0),
    ("NL0010273215", "ASML", "EQUITY", "EUR", "XAMS", "", 2),
    ("GB00BH4HKS39", "VOD", "EQUITY", "GBP", "XLON", "", 0),
)
CURRENCIES = ("PLN", "USD", "EUR", "GBP")
FEES = (("XWAR", "PLN", "39", "5.00"), ("XNYS", "USD", "15", "5.00"),
        ("XNAS", "USD", "15", "5.00"), ("XETR", "EUR", "10", "3.90"))
WITHHOLDING = (("PL", "PL", "0.19"), ("PL", "*", "0.19"), ("US", "PL", "0.15"),
               ("US", "US", "0.00"), ("US", "*", "0.30"), ("DE", "*", "0.26375"),
               ("NL", "*", "0.15"))
STARTS = (dt.date(2024, 5, 20), dt.date(2024, 8, 5), dt.date(2024, 12, 16),
          dt.date(2025, 4, 14), dt.date(2027, 9, 27))
RATIOS = {"SPLIT": ((1, 2), (1, 10), (2, 3), (3, 2), (10, 1), (1, 3), (5, 1), (2, 1)),
          "STOCK_DIVIDEND": ((10, 1), (20, 1), (3, 1), (4, 1), (100, 5)),
          "SPINOFF": ((4, 1), (1, 1), (3, 1), (5, 2)),
          "MERGER": ((1, 2), (3, 2), (2, 1), (1, 1), (10, 3))}
CA_KINDS = ("SPLIT", "CASH_DIVIDEND", "STOCK_DIVIDEND", "SPINOFF", "MERGER", "CASH_MERGER")
HEADERS = {
    "instruments.csv": "isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale",
    "accounts.csv": "account,name,kind,base_currency,tax_residence,lot_method",
    "fees.csv": "mic,currency,rate_bps,minimum",
    "withholding.csv": "issuer_country,tax_residence,rate",
    "prices.csv": "date,isin,close,currency",
    "cash.csv": "movement_id,account,date,currency,amount,kind,description",
    "trades.csv": "trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
                  "counterparty,commission,settlement_date",
    "corporate_actions.csv": "event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,"
                             "ratio_new,amount,currency,new_isin,cost_fraction,fraction_price",
}


@dataclass(frozen=True)
class TradeOp:
    day: int
    account: int
    instrument: int  # index into the book's active instruments
    sell: bool
    size: int  # in units of the instrument's quantity scale
    price_cents: int
    commission: str  # "" (from fees.csv) or an explicit amount
    settle: int  # -1: explicit T+0 where possible; 0: blank (computed); n > 0: n days late
    cancel: str  # "", "same", "next", "late", "other"


@dataclass(frozen=True)
class CashOp:
    day: int
    account: int
    currency: str
    kind: str
    cents: int


@dataclass(frozen=True)
class EventOp:
    kind: str
    instrument: int  # index into the book's active instruments
    day: int
    pay_offset: int  # weekdays from the ex date (may be negative)
    ratio: tuple[int, int]
    amount_cents: int
    target: int  # picks the new security among the others of the same currency
    cost_fraction: str
    fraction_price: str


@dataclass(frozen=True)
class BookSpec:
    start: dt.date
    days: int
    accounts: tuple[tuple[str, str, str], ...]  # kind, tax residence, lot method
    active: tuple[int, ...]  # indexes into UNIVERSE that trade
    trades: tuple[TradeOp, ...]
    cash: tuple[CashOp, ...]
    events: tuple[EventOp, ...]
    unknown_cancels: tuple[int, ...] = ()  # days of CANCELs naming no trade


@st.composite
def random_books(draw: st.DrawFn, *, max_trades: int = 40, cancels: bool = True,
                 kinds: tuple[str, ...] = CA_KINDS) -> BookSpec:
    days = draw(st.integers(8, 25))
    n_accounts = draw(st.integers(3, 6))
    accounts = tuple(
        ("HOUSE" if index == n_accounts - 1 else "CLIENT",
         draw(st.sampled_from(("PL", "US", "DE"))),
         draw(st.sampled_from(("FIFO", "LIFO", "HIFO", "AVERAGE"))))
        for index in range(n_accounts))
    active = tuple(draw(st.lists(st.integers(0, len(UNIVERSE) - 1), min_size=2, max_size=5,
                                 unique=True)))
    cancel_modes = ("", "", "", "same", "next", "late", "other") if cancels else ("",)
    trade = st.builds(
        TradeOp, day=st.integers(0, days - 1), account=st.integers(0, n_accounts - 1),
        instrument=st.integers(0, len(active) - 1), sell=st.booleans(),
        size=st.integers(1, 300), price_cents=st.integers(1, 60_000),
        commission=st.sampled_from(("", "", "", "0", "0.00", "7.35", "19.99")),
        settle=st.sampled_from((0, 0, 0, 0, -1, 1, 3)), cancel=st.sampled_from(cancel_modes))
    cash = st.builds(
        CashOp, day=st.integers(0, days - 1), account=st.integers(0, n_accounts - 1),
        currency=st.sampled_from(CURRENCIES),
        kind=st.sampled_from(("WITHDRAWAL", "WITHDRAWAL", "FEE", "INTEREST", "ADJUSTMENT",
                              "DEPOSIT")),
        cents=st.one_of(st.integers(1, 2_000_000), st.integers(2_000_000, 20_000_000)))
    event = st.builds(
        EventOp, kind=st.sampled_from(kinds), instrument=st.integers(0, len(active) - 1),
        day=st.integers(1, days - 1), pay_offset=st.integers(-2, 8),
        ratio=st.sampled_from(sorted({r for pairs in RATIOS.values() for r in pairs})),
        amount_cents=st.integers(1, 5_000), target=st.integers(0, 9),
        cost_fraction=st.sampled_from(("0", "0.1", "0.25", "0.333", "0.5", "1")),
        fraction_price=st.sampled_from(("", "12.34", "0.01", "250")))
    return BookSpec(
        start=draw(st.sampled_from(STARTS)), days=days, accounts=accounts, active=active,
        trades=tuple(draw(st.lists(trade, min_size=1, max_size=max_trades))),
        cash=tuple(draw(st.lists(cash, max_size=10))),
        events=tuple(draw(st.lists(event, max_size=4))),
        unknown_cancels=tuple(draw(st.lists(st.integers(0, days - 1), max_size=1))
                              if cancels else ()))


def _weekdays_from(start: dt.date, count: int) -> list[dt.date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def _shift_weekdays(day: dt.date, count: int) -> dt.date:
    step = 1 if count >= 0 else -1
    for _ in range(abs(count)):
        day += dt.timedelta(days=step)
        while day.weekday() >= 5:
            day += dt.timedelta(days=step)
    return day


def _add_settlement_days(day: dt.date, count: int, mic: str, currency: str) -> dt.date:
    while count:
        day += dt.timedelta(days=1)
        if is_settlement_day(day, mic, currency):
            count -= 1
    return day


def _cents(value: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"


def _quantity(units: int, scale: int) -> str:
    return plain(Fraction(units, 10**scale))


@dataclass
class WrittenBook:
    folder: Path
    first: dt.date
    last: dt.date  # the last date anything happens (end of day runs through it)
    check_days: list[dt.date]


def write_book(spec: BookSpec, folder: Path) -> WrittenBook:
    """Write ``spec`` as a book folder. Sells never exceed what the account holds on trade
    basis, counted conservatively (cancelled buys never count; cancelled sells do)."""
    folder.mkdir(parents=True, exist_ok=True)
    days = _weekdays_from(spec.start, spec.days)
    names = [f"{'H' if kind == 'HOUSE' else 'C'}{index + 1}"
             for index, (kind, _residence, _method) in enumerate(spec.accounts)]
    active = [UNIVERSE[index] for index in spec.active]
    files: dict[str, list[tuple[str, ...]]] = {name: [] for name in HEADERS}
    files["instruments.csv"] = [(isin, symbol, f"{symbol} plc", kind, currency, mic, country,
                                 str(scale) if scale else "")
                                for isin, symbol, kind, currency, mic, country, scale in UNIVERSE]
    files["accounts.csv"] = [(name, f"Holder {name}", kind, "PLN", residence, method)
                             for name, (kind, residence, method) in zip(names, spec.accounts,
                                                                        strict=True)]
    files["fees.csv"] = list(FEES)
    files["withholding.csv"] = list(WITHHOLDING)
    dated: list[tuple[dt.date, int, int, tuple[str, ...]]] = []  # trades.csv, sorted later
    check_days = {days[0], days[len(days) // 2], days[-1]}
    last = days[-1]

    # corporate actions, in ex-date order (file order within a date)
    events: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for number, event in enumerate(sorted(spec.events, key=lambda e: e.day), start=1):
        isin, _symbol, _kind, currency, _mic, _country, _scale = active[event.instrument]
        kind = event.kind
        ratio = event.ratio if kind not in RATIOS or event.ratio in RATIOS[kind] else \
            RATIOS[kind][sum(event.ratio) % len(RATIOS[kind])]
        peers = [row[0] for row in UNIVERSE if row[3] == currency and row[0] != isin]
        if kind in ("SPINOFF", "MERGER") and not peers:
            kind = "SPLIT"
            ratio = RATIOS[kind][sum(ratio) % len(RATIOS[kind])]
        ex = days[event.day]
        pay = _shift_weekdays(ex, event.pay_offset)
        new_isin = peers[event.target % len(peers)] if kind in ("SPINOFF", "MERGER") else ""
        ratio_cells = (str(ratio[0]), str(ratio[1])) if kind in RATIOS else ("", "")
        amount = _cents(event.amount_cents) if kind in ("CASH_DIVIDEND", "CASH_MERGER") else ""
        row = (f"E{number:03d}", kind, isin, ex.isoformat(), ex.isoformat(), pay.isoformat(),
               *ratio_cells, amount, currency if amount else "", new_isin,
               event.cost_fraction if kind == "SPINOFF" else "",
               event.fraction_price if kind in RATIOS else "")
        events[event.day].append(row)
        files["corporate_actions.csv"].append(row)
        check_days |= {ex, _shift_weekdays(ex, -1), max(pay, ex)}
        last = max(last, pay)

    scales = {row[0]: row[6] for row in UNIVERSE}
    held: dict[tuple[str, str], int] = defaultdict(int)  # conservative trade-basis holdings

    def apply_event(row: tuple[str, ...]) -> None:
        _id, kind, isin, *_dates, old, new, _amount, _currency, new_isin, _cf, _fp = row
        for (account, code), units in list(held.items()):
            if code != isin or units <= 0:
                continue
            shares = Fraction(units, 10**scales[isin])
            if kind == "CASH_MERGER":
                held[account, isin] = 0
            elif kind in ("SPLIT", "STOCK_DIVIDEND"):
                ratio = Fraction(int(new), int(old))
                factor = ratio if kind == "SPLIT" else 1 + ratio
                held[account, isin] = int(shares * factor * 10**scales[isin])
            elif kind in ("SPINOFF", "MERGER"):
                before = Fraction(held[account, new_isin], 10**scales[new_isin])
                after = before + shares * Fraction(int(new), int(old))
                held[account, new_isin] = int(after * 10**scales[new_isin])
                if kind == "MERGER":
                    held[account, isin] = 0

    ops: dict[int, list[TradeOp]] = defaultdict(list)
    for op in spec.trades:
        ops[op.day].append(op)
    number = 0
    for index, day in enumerate(days):
        for row in events.get(index, ()):
            apply_event(row)
        for op in ops.get(index, ()):
            isin, _symbol, _kind, currency, mic, _country, scale = active[op.instrument]
            if not is_session(day, mic):
                continue
            account = names[op.account]
            have = held[account, isin]
            side = "SELL" if op.sell and have > 0 else "BUY"
            units = min(op.size, have) if side == "SELL" else op.size
            normal = settlement_date(day, mic, currency)
            if op.settle < 0 and is_settlement_day(day, mic, currency):
                settles, cell = day, day.isoformat()
            elif op.settle > 0:
                settles = _add_settlement_days(normal, op.settle, mic, currency)
                cell = settles.isoformat()
            else:
                settles, cell = normal, ""
            number += 1
            trade_id = f"T{number:04d}"
            dated.append((day, 0, number, (
                trade_id, "NEW", account, isin, side, _quantity(units, scale),
                _cents(op.price_cents), currency, day.isoformat(), "", "", op.commission,
                cell)))
            last = max(last, settles)
            cancelled = False
            if op.cancel:
                on = {"same": day, "next": _shift_weekdays(day, 1), "late": settles,
                      "other": day}[op.cancel]
                owner = names[(op.account + 1) % len(names)] if op.cancel == "other" \
                    else account
                dated.append((on, 1, number, (trade_id, "CANCEL", owner, "", "", "", "", "",
                                              on.isoformat(), "", "", "", "")))
                cancelled = op.cancel in ("same", "next") and on < settles
                last = max(last, on)
                if cancelled:
                    check_days |= {on, _shift_weekdays(on, -1)}
            if side == "SELL":
                held[account, isin] -= units
            elif not cancelled:
                held[account, isin] += units
    for day_index in spec.unknown_cancels:
        dated.append((days[day_index], 1, 10**6, ("T9999", "CANCEL", names[0], "", "", "", "",
                                                   "", days[day_index].isoformat(), "", "", "",
                                                   "")))
    files["trades.csv"] = [row for *_key, row in sorted(dated, key=lambda item: item[:3])]

    movements = [(days[0], 0, index, currency, 5_000_000, "DEPOSIT")
                 for index in range(len(names)) for currency in CURRENCIES]
    signs = {"WITHDRAWAL": -1, "FEE": -1, "INTEREST": 1, "DEPOSIT": 1}
    for order, op in enumerate(spec.cash, start=1):
        sign = signs.get(op.kind, 1 if op.cents % 2 else -1)
        movements.append((days[op.day], order, op.account, op.currency, sign * op.cents,
                          op.kind))
        check_days.add(days[op.day])
    movements.sort(key=lambda item: item[:2])
    files["cash.csv"] = [(f"M{number:04d}", names[account], day.isoformat(), currency,
                          _cents(cents), kind, "")
                         for number, (day, _order, account, currency, cents, kind)
                         in enumerate(movements, start=1)]
    for isin, _symbol, _kind, currency, mic, _country, _scale in active:
        for day in (days[0], days[-1]):
            if is_session(day, mic):
                files["prices.csv"].append((day.isoformat(), isin, "100.00", currency))
    for name, header in HEADERS.items():
        lines = [header] + [",".join(row) for row in files[name]]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return WrittenBook(folder, days[0], last, sorted(day for day in check_days if day <= last))


# -- the product, driven in process --------------------------------------------------------------

@contextmanager
def product_book(url: str) -> Iterator[Any]:
    book = open_book(url, create=True)
    try:
        yield book.engine
    finally:
        book.engine.dispose()


def load(engine: Any, folder: Path) -> Any:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT calendar, business_date, closed, reason FROM calendar_overrides").all()
    assert rows == [], "these books use no calendar overrides"
    report = Loader(engine).load(folder)
    assert report.fatal is None, report.fatal
    return report


def head(engine: Any) -> str:
    result = audit.verify(engine)
    assert result.problems == [], result.problems
    return result.head


# -- the invariants -------------------------------------------------------------------------------

VIEWS = {"trade": ("B", "T"), "settlement": ("B", "S")}
PHASE_BASIS = {"POSTED": "B", "PENDING": "T", "POST": "S", "VOID": "T"}


@dataclass
class Journal:
    """The postings table with its entries, read once, folded in Python."""

    postings: list[tuple[Any, ...]]  # sequence, gl, asset, amount, basis, date
    entries: dict[int, dict[str, Any]]
    instruments: dict[str, tuple[int, str]]  # isin -> (quantity scale, currency)

    @classmethod
    def read(cls, engine: Any) -> Journal:
        with engine.connect() as connection:
            postings = [tuple(row) for row in connection.exec_driver_sql(
                "SELECT entry_sequence, gl_account, asset, amount, basis, business_date "
                "FROM postings ORDER BY entry_sequence, line")]
            entries = {row["sequence"]: dict(row) for row in connection.exec_driver_sql(
                "SELECT * FROM entries ORDER BY sequence").mappings()}
            instruments = {isin: (int(scale), currency) for isin, scale, currency in
                           connection.exec_driver_sql(
                               "SELECT isin, quantity_scale, currency FROM instruments")}
        return cls(postings, entries, instruments)

    def fold(self, day: dt.date, basis: str) -> dict[tuple[str, str], int]:
        text, views = day.isoformat(), VIEWS[basis]
        result: dict[tuple[str, str], int] = defaultdict(int)
        for _sequence, account, asset, amount, view, date in self.postings:
            if view in views and date <= text:
                result[account, asset] += int(amount)
        return {key: value for key, value in result.items() if value}

    def fold_views(self) -> dict[tuple[str, str, str], int]:
        result: dict[tuple[str, str, str], int] = defaultdict(int)
        for _sequence, account, asset, amount, view, _date in self.postings:
            for name in (("T", "S") if view == "B" else (view,)):
                result[account, asset, name] += int(amount)
        return {key: value for key, value in result.items() if value}


def _owner_id(gl_account: str) -> str | None:
    prefix, _, rest = gl_account.partition(":")
    return rest if prefix in ("client", "house") else None


def check_entries(journal: Journal) -> None:
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for sequence, _account, asset, amount, view, date in journal.postings:
        sums[sequence, asset] += int(amount)
        entry = journal.entries[sequence]
        assert view == PHASE_BASIS[entry["phase"]], (entry, view)
        assert date == entry["business_date"], (entry, date)
    unbalanced = {key: value for key, value in sums.items() if value}
    assert unbalanced == {}, f"entries that do not balance per asset: {unbalanced}"
    keys = {entry["entry_key"] for entry in journal.entries.values()}
    for entry in journal.entries.values():
        if entry["phase"] in ("POST", "VOID"):
            assert entry["target_key"] in keys, entry
    targets = [entry["target_key"] for entry in journal.entries.values() if entry["target_key"]]
    assert len(targets) == len(set(targets)), "a pending entry was posted or voided twice"


def check_day(engine: Any, journal: Journal, day: dt.date) -> None:
    instruments = journal.instruments
    for basis in VIEWS:
        folded = journal.fold(day, basis)
        per_asset: dict[str, int] = defaultdict(int)
        for (_account, asset), amount in folded.items():
            per_asset[asset] += amount
        assert {a: v for a, v in per_asset.items() if v} == {}, \
            f"the stock record / cash book does not balance on {basis} basis at {day}"
        with engine.connect() as connection:
            assert repo.balances_as_of(connection, day, basis) == folded, (day, basis)
            assert repo.cash_as_of(connection, day, basis) == {
                key: amount for key, amount in folded.items() if key[1] not in instruments}, \
                f"cash by day differs from the fold on {basis} basis at {day}"
        expected_positions = sorted(
            (_owner_id(account), asset, plain(Fraction(amount, 10**instruments[asset][0])))
            for (account, asset), amount in folded.items()
            if _owner_id(account) is not None and asset in instruments)
        report = reporting.build(engine, "positions", as_of=day, basis=basis)
        assert [(r["account"], r["isin"], r["quantity"]) for r in report] == \
            expected_positions, f"positions on {basis} basis at {day} differ from the fold"
        assert all(r["currency"] == instruments[r["isin"]][1] for r in report)
        assert all(("cost_basis" in r) == (basis == "trade") for r in report)
        if basis == "trade":
            shorts = [r for r in report if Decimal(r["quantity"]) < 0]
            assert shorts == [], f"short positions on trade basis at {day}: {shorts}"
        expected_cash = sorted(
            (_owner_id(account), asset, money(Fraction(amount, 10**minor_unit(asset)), asset))
            for (account, asset), amount in folded.items()
            if _owner_id(account) is not None and asset not in instruments)
        cash = reporting.build(engine, "cash", as_of=day, basis=basis)
        assert [(r["account"], r["currency"], r["balance"]) for r in cash] == expected_cash, \
            f"cash on {basis} basis at {day} differs from the fold"
    for row in reporting.build(engine, "stock-record", as_of=day):
        assert row["break"] == "0", (day, row)
        assert Decimal(row["owned"]) == Decimal(row["at_depository"]) + Decimal(
            row["pending_from_street"]), (day, row)
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in reporting.build(engine, "trial-balance", as_of=day):
        totals[row["currency"]][0] += Decimal(row["debit"])
        totals[row["currency"]][1] += Decimal(row["credit"])
    assert {c: t for c, t in totals.items() if t[0] != t[1]} == {}, \
        f"the trial balance does not balance at {day}: {dict(totals)}"
    check_lots(engine, journal, day)


def check_lots(engine: Any, journal: Journal, day: dt.date) -> None:
    """Lots total = position; cost_basis = the lots' cost; cost bought = realised + open."""
    positions = reporting.build(engine, "positions", as_of=day, basis="trade")
    with engine.connect() as connection:
        books = lot_books(connection, day)
        bought_rows = connection.exec_driver_sql(
            "SELECT t.account, t.currency, t.gross, t.commission FROM trades t "
            "WHERE t.side = 'BUY' AND t.trade_date <= ? AND NOT EXISTS (SELECT 1 FROM cancels c "
            "WHERE c.trade_id = t.trade_id AND c.cancel_date <= ?)".replace(
                "?", repo.mark(connection)), (day.isoformat(), day.isoformat())).all()
    seen = set()
    for row in positions:
        book = books.get(row["account"])
        lots = book.quantity(row["isin"]) if book else Fraction(0)
        assert lots == Fraction(Decimal(row["quantity"])), \
            f"lots of {row['account']} {row['isin']} hold {lots}, the position is " \
            f"{row['quantity']} at {day}"
        cost = book.cost(row["isin"]) if book else Decimal(0)
        assert row["cost_basis"] == money(cost, row["currency"]), (day, row, cost)
        seen.add((row["account"], row["isin"]))
    for account, book in books.items():
        for isin, lots_list in book.lots.items():
            if sum(lot.quantity for lot in lots_list):
                assert (account, isin) in seen, f"lots of {account} {isin} but no position"
    bought: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for account, currency, gross, commission in bought_rows:
        bought[account, currency] += Decimal(gross) + Decimal(commission)
    used: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in reporting.build(engine, "realized", start=dt.date(2000, 1, 1), end=day):
        used[row["account"], row["currency"]] += Decimal(row["cost"])
    for row in positions:
        used[row["account"], row["currency"]] += Decimal(row["cost_basis"])
    assert {k: v for k, v in bought.items() if v} == {k: v for k, v in used.items() if v}, \
        f"cost is not conserved at {day}"


def check_cancels(engine: Any, journal: Journal, last: dt.date) -> None:
    """Every booked CANCEL nets its trade (and what is linked to it) to zero on trade basis
    from the cancel date; none of it ever counts on settlement basis."""
    with engine.connect() as connection:
        cancels = connection.exec_driver_sql(
            "SELECT trade_id, cancel_date FROM cancels").all()
    by_key = {entry["entry_key"]: entry for entry in journal.entries.values()}
    for trade_id, cancel_date in cancels:
        key = f"trade:{trade_id}"
        assert key in by_key and f"void:{key}" in by_key, trade_id
        assert by_key[f"void:{key}"]["business_date"] == cancel_date
        family = {key} | {k for k, e in by_key.items() if e["linked_key"] == key}
        family |= {k for k, e in by_key.items() if e["target_key"] in family}
        sequences = {by_key[k]["sequence"] for k in family}
        for day in {dt.date.fromisoformat(cancel_date), last}:
            net: dict[tuple[str, str], int] = defaultdict(int)
            for sequence, account, asset, amount, view, date in journal.postings:
                if sequence in sequences and view in ("B", "T") and date <= day.isoformat():
                    net[account, asset] += int(amount)
            assert {k: v for k, v in net.items() if v} == {}, \
                f"cancelled trade {trade_id} does not net to zero on trade basis at {day}: " \
                f"{dict(net)} (entries {sorted(family)})"
        settled = [p for p in journal.postings if p[0] in sequences and p[4] in ("B", "S")]
        assert settled == [], f"cancelled trade {trade_id} reached the settlement basis"


def check_book(engine: Any, days: list[dt.date], last: dt.date) -> None:
    journal = Journal.read(engine)
    assert journal.postings, "the book booked nothing"
    check_entries(journal)
    with engine.connect() as connection:
        stored = repo.stored_balances(connection)
        assert stored == repo.folded_balances(connection)
    assert stored == journal.fold_views()
    check_cancels(engine, journal, last)
    for day in days:
        check_day(engine, journal, day)


REPORT_CALLS = ("positions", "cash")


def report_snapshot(engine: Any, days: list[dt.date], first: dt.date,
                    last: dt.date) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for day in days:
        for basis in VIEWS:
            for name in REPORT_CALLS:
                snapshot[f"{name}-{basis}-{day}"] = reporting.build(engine, name, as_of=day,
                                                                    basis=basis)
        snapshot[f"trial-balance-{day}"] = reporting.build(engine, "trial-balance", as_of=day)
        snapshot[f"stock-record-{day}"] = reporting.build(engine, "stock-record", as_of=day)
    snapshot["realized"] = reporting.build(engine, "realized", start=first, end=last)
    snapshot["dividends"] = reporting.build(engine, "dividends", start=first, end=last)
    snapshot["rejected"] = reporting.build(engine, "rejected")
    snapshot["valuation"] = reporting.build(engine, "valuation", as_of=last)
    return snapshot


def _rejected_lines(report: Any) -> list[tuple[str, int | None, str]]:
    return sorted((p.source, p.line, p.rule.value) for p in report.rejected)


def run_and_check(url: str, replay_url: str, folder: Path, first: dt.date, last: dt.date,
                  days: list[dt.date]) -> None:
    """Book A: load twice, eod twice, check every invariant. Book B: load, eod, load again.
    Both must end with the same journal head and identical reports."""
    with product_book(url) as engine:
        first_load = load(engine, folder)
        loaded_head = head(engine)
        again = load(engine, folder)
        assert sum(again.booked.values()) == 0, f"a second load booked {again.booked}"
        assert _rejected_lines(again) == _rejected_lines(first_load)
        assert head(engine) == loaded_head, "a second load changed the journal"
        run_eod(engine, last)
        check_book(engine, days, last)
        eod_head = head(engine)
        rerun = run_eod(engine, last)
        assert rerun.days == [] and head(engine) == eod_head, "a second eod changed the journal"
        snapshot = report_snapshot(engine, days, first, last)
    with product_book(replay_url) as engine:
        load(engine, folder)
        run_eod(engine, last)
        assert head(engine) == eod_head, "the same folder gave another journal in a fresh book"
        late = load(engine, folder)
        assert sum(late.booked.values()) == 0, f"a load after eod booked {late.booked}"
        assert head(engine) == eod_head
        assert report_snapshot(engine, days, first, last) == snapshot


@contextmanager
def fresh_dir(base: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=base) as name:
        yield Path(name)


# -- the properties -------------------------------------------------------------------------------

SHAPES = st.builds(
    BookShape, seed=st.integers(0, 2**31 - 1), accounts=st.integers(4, 8),
    instruments=st.integers(2, 5), trades=st.integers(10, 80), months=st.integers(1, 3),
    cancels=st.integers(0, 3), include_story=st.booleans(),
    start=st.sampled_from((dt.date(2024, 6, 3), dt.date(2024, 5, 13), dt.date(2024, 11, 18),
                           dt.date(2025, 3, 31))))


def _generated(shape: BookShape, folder: Path) -> WrittenBook:
    while True:
        try:
            generate_book(shape, folder)
            break
        except ValueError:  # too short for the story: the generator says so, take a month more
            assert shape.include_story and shape.months < 6, shape
            shape = dataclasses.replace(shape, months=shape.months + 1)
    first, last = book_period(shape)
    span = (last - first).days
    days = sorted({first + dt.timedelta(days=span * k // 6) for k in range(7)})
    return WrittenBook(folder, first, last, days)


@SETTINGS
@given(shape=SHAPES)
def test_generated_books_keep_every_invariant(shape: BookShape, tmp_path: Path) -> None:
    with fresh_dir(tmp_path) as work:
        book = _generated(shape, work / "folder")
        run_and_check(f"sqlite:///{work / 'a.db'}", f"sqlite:///{work / 'b.db'}", book.folder,
                      book.first, book.last, book.check_days)


# Books this property found failing, kept as explicit examples:
CANCEL_ON_EX_DATE = BookSpec(
    start=dt.date(2024, 6, 3), days=8,
    accounts=(("CLIENT", "PL", "FIFO"), ("CLIENT", "PL", "FIFO"), ("HOUSE", "PL", "FIFO")),
    active=(0,),
    trades=(TradeOp(0, 0, 0, False, 100, 5_000, "0", 0, ""),
            TradeOp(5, 0, 0, False, 10, 5_000, "0", 0, "next")),
    cash=(), events=(EventOp("SPLIT", 0, 6, 0, (1, 10), 0, 0, "", ""),))
"""C1 buys 100 PKO on 2024-06-03 and 10 more on Mon 06-10 (T+2: settles Wed 06-12), cancelled
on Tue 06-11, the ex date of a 10-for-1 split. The book must read as if the 10 had never been
bought: 1000 PKO from 06-11. (The product once kept the split's transformation of the
cancelled trade pending for ever: 1090 PKO on trade basis while its lots said 1000, and the
cancel did not net to zero. Fixed in c1b3bb1; kept as a regression example.)"""

TWO_EVENTS_ONE_DAY = BookSpec(
    start=dt.date(2024, 6, 3), days=6,
    accounts=(("CLIENT", "PL", "FIFO"), ("CLIENT", "PL", "FIFO"), ("HOUSE", "PL", "FIFO")),
    active=(4,),
    trades=(TradeOp(0, 0, 0, False, 100, 6_000, "0", 0, ""),),
    cash=(), events=(EventOp("SPLIT", 0, 3, 0, (1, 2), 0, 0, "", ""),
                     EventOp("MERGER", 0, 3, 0, (1, 1), 0, 0, "", "")))
"""C1 holds 100 KO; on 2024-06-06 KO splits 2-for-1 and merges 1:1 into NVDA. The lots apply
the two events in turn (200 NVDA at cost 6,000.00, no KO); the ledger applies both to the
holding of the day before (100 KO at cost 0.00 and 100 NVDA)."""


@SETTINGS
@example(spec=CANCEL_ON_EX_DATE)
@example(spec=TWO_EVENTS_ONE_DAY)
@given(spec=random_books())
def test_random_books_keep_every_invariant(spec: BookSpec, tmp_path: Path) -> None:
    with fresh_dir(tmp_path) as work:
        book = write_book(spec, work / "folder")
        run_and_check(f"sqlite:///{work / 'a.db'}", f"sqlite:///{work / 'b.db'}", book.folder,
                      book.first, book.last, book.check_days)


# A fixed book touching every corporate-action kind, cancels of each sort, fractional
# quantities and withdrawals: the same invariants on SQLite and PostgreSQL, replayed on SQLite
# (so the journal head must also be the same across the two databases).
SHOWCASE = BookSpec(
    start=dt.date(2024, 5, 20), days=22,
    accounts=(("CLIENT", "PL", "FIFO"), ("CLIENT", "DE", "HIFO"), ("CLIENT", "US", "AVERAGE"),
              ("CLIENT", "PL", "LIFO"), ("HOUSE", "PL", "FIFO")),
    active=(0, 1, 3, 5, 6, 8),  # PKO, CDR, NVDA, AAPL, SPY (scale 3), ASML (scale 2)
    trades=tuple(
        TradeOp(day, account, instrument, sell, size, price, commission, settle, cancel)
        for day, account, instrument, sell, size, price, commission, settle, cancel in (
            (0, 0, 0, False, 100, 5_000, "", 0, ""), (0, 1, 0, False, 70, 5_010, "", 0, ""),
            (0, 2, 2, False, 33, 95_000, "", 0, ""), (0, 3, 2, False, 10, 94_000, "", 1, ""),
            (1, 0, 0, False, 50, 5_100, "", 0, "next"), (1, 1, 4, False, 12_345, 52_000, "", 0,
                                                          ""),
            (1, 2, 3, False, 40, 19_000, "0", 0, ""), (2, 0, 0, True, 30, 5_200, "", 0, ""),
            (2, 4, 1, False, 1_000, 12_000, "0.00", 0, ""), (2, 2, 5, False, 250, 80_000, "", 0,
                                                           ""),
            (3, 3, 2, True, 4, 96_000, "", -1, ""), (3, 1, 0, False, 15, 5_150, "", 0, "same"),
            (4, 2, 2, True, 13, 97_000, "7.35", 0, ""), (4, 4, 1, True, 400, 12_500, "", 0,
                                                         "late"),
            (5, 1, 4, True, 2_000, 53_000, "", 0, ""), (6, 0, 1, False, 77, 12_300, "", 3, ""),
            (7, 2, 3, True, 15, 19_500, "", 0, "other"), (9, 0, 0, True, 20, 5_300, "", 0, ""),
            (10, 3, 2, False, 9, 99_000, "", 0, ""), (11, 1, 4, False, 501, 54_000, "", 0, ""),
            (12, 2, 5, True, 101, 81_000, "", 0, ""), (13, 4, 1, True, 300, 12_800, "", 0, ""),
            (15, 0, 0, False, 25, 5_250, "19.99", 0, ""), (17, 3, 3, False, 5, 20_000, "", 0,
                                                            "same"),
            (18, 2, 2, True, 10, 101_000, "", 0, ""), (20, 1, 0, True, 40, 5_400, "", 0, ""))),
    cash=(CashOp(3, 0, "PLN", "WITHDRAWAL", 4_000_000), CashOp(4, 1, "PLN", "WITHDRAWAL",
                                                                90_000_000),
          CashOp(6, 2, "USD", "FEE", 1_200), CashOp(8, 4, "PLN", "INTEREST", 12_345),
          CashOp(9, 3, "EUR", "ADJUSTMENT", 777), CashOp(14, 2, "USD", "WITHDRAWAL", 10_000),
          CashOp(19, 0, "PLN", "WITHDRAWAL", 6_000_000)),
    events=(EventOp("SPLIT", 2, 5, 1, (1, 10), 0, 0, "", ""),
            EventOp("CASH_DIVIDEND", 0, 6, 5, (1, 1), 547, 0, "", ""),
            EventOp("STOCK_DIVIDEND", 4, 8, 0, (3, 1), 0, 0, "", "523.45"),
            EventOp("SPINOFF", 3, 11, 2, (3, 1), 0, 1, "0.25", "12.34"),
            EventOp("MERGER", 1, 14, 0, (3, 2), 0, 0, "", "121.50"),
            EventOp("SPLIT", 5, 16, -2, (3, 1), 0, 0, "", "250"),
            EventOp("CASH_MERGER", 3, 19, 3, (1, 1), 20_500, 0, "", "")),
    unknown_cancels=(7,))


def test_fixed_books_keep_every_invariant(book_url: str, tmp_path: Path) -> None:
    book = write_book(SHOWCASE, tmp_path / "showcase")
    run_and_check(book_url, f"sqlite:///{tmp_path / 'replay-showcase.db'}", book.folder,
                  book.first, book.last, book.check_days)


def test_seeded_generated_book_keeps_every_invariant(book_url: str, tmp_path: Path) -> None:
    shape = BookShape(seed=2024, accounts=7, instruments=5, trades=80, months=2, cancels=3,
                      include_story=True)
    book = _generated(shape, tmp_path / "generated")
    run_and_check(book_url, f"sqlite:///{tmp_path / 'replay-generated.db'}", book.folder,
                  book.first, book.last, book.check_days)


@pytest.mark.parametrize("seed", range(3))
def test_random_book_writer_is_valid_and_deterministic(seed: int, tmp_path: Path) -> None:
    """The strategy's books are worth testing with: the same spec gives the same bytes, and
    the only rows the product rejects are the ones written to be rejected."""
    import random

    rng = random.Random(seed)
    spec = BookSpec(
        start=STARTS[seed], days=15,
        accounts=(("CLIENT", "PL", "FIFO"), ("CLIENT", "US", "LIFO"), ("HOUSE", "PL", "FIFO")),
        active=(0, 3, 6),
        trades=tuple(TradeOp(rng.randrange(15), rng.randrange(3), rng.randrange(3),
                             rng.random() < 0.4, rng.randrange(1, 200), rng.randrange(100, 9999),
                             "", 0, "") for _ in range(30)),
        cash=(), events=())
    one, two = write_book(spec, tmp_path / "one"), write_book(spec, tmp_path / "two")
    for name in HEADERS:
        assert (one.folder / name).read_bytes() == (two.folder / name).read_bytes()
    with product_book(f"sqlite:///{tmp_path / 'v.db'}") as engine:
        report = load(engine, one.folder)
        assert report.rejected == []
        assert report.booked["trades.csv"] == len((one.folder / "trades.csv").read_text()
                                                  .splitlines()) - 1
