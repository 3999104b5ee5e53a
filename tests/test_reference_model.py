"""The product against an independent reference model of the contract (reference_model.py).

- The model itself is validated on the golden scenario: it must reproduce every expected/*.json
  of shared/scenarios/basic and its rejected rows.
- Seeded random books (``generate_book``, with the story) go through the product (load + end of
  day) and through the model; positions and cash on both bases at about ten dates, realized and
  dividends over the whole period, and the rejected rows must agree exactly: 0 divergences.
  Fast tier: 3 seeds; ZAPLECZE_DEEP=1: 30 seeds.
- Books of our own strategy (test_properties.random_books), drawn by Hypothesis, and a few
  small hand-written books go through both as well.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from conftest import shared_path
from reference_model import ReferenceBook
from test_properties import SETTINGS, product_book, random_books, write_book
from zaplecze.services import reporting
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
SEEDS = range(30) if DEEP else range(3)
STARTS = (dt.date(2024, 6, 3), dt.date(2024, 5, 6), dt.date(2024, 10, 14), dt.date(2025, 3, 3),
          dt.date(2027, 8, 2))


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# -- the model on the golden scenario --------------------------------------------------------------

def test_model_reproduces_the_golden_scenario() -> None:
    scenario = shared_path("scenarios", "basic")
    model = ReferenceBook(scenario)
    checks = json.loads((scenario / "checks.json").read_text())
    assert len(checks) == 33
    for check in checks:
        name, options = check["args"][1], dict(zip(check["args"][2::2], check["args"][3::2],
                                                   strict=True))
        if name in ("positions", "cash"):
            got = getattr(model, name)(_day(options["--as-of"]), options["--basis"])
        elif name == "realized":
            got = model.realized(_day(options["--from"]), _day(options["--to"]))
        else:
            got = model.dividends(_day(options["--from"]), _day(options["--to"]),
                                  _day(check["through"]))
        expected = json.loads((scenario / "expected" / f"{check['id']}.json").read_text())
        assert got == expected, check["id"]
    rejected = json.loads((scenario / "expected" / "rejected.json").read_text())
    assert model.rejected == [(r["file"], r["line"], r["reason"]) for r in rejected]


# -- product against model -----------------------------------------------------------------------

def divergences(engine: Any, model: ReferenceBook, days: list[dt.date], first: dt.date,
                last: dt.date) -> list[str]:
    """Every report where the product and the model differ, with the differing rows."""
    found: list[str] = []

    def compare(label: str, product: list[dict[str, Any]], expected: list[dict[str, str]],
                ) -> None:
        if product != expected:
            mine = [json.dumps(row, sort_keys=True) for row in product]
            theirs = [json.dumps(row, sort_keys=True) for row in expected]
            found.append(f"{label}: product only {[r for r in mine if r not in theirs][:3]}, "
                         f"model only {[r for r in theirs if r not in mine][:3]}"
                         + ("" if set(mine) != set(theirs) else " (order differs)"))

    for day in days:
        for basis in ("trade", "settlement"):
            compare(f"positions {basis} {day}",
                    reporting.build(engine, "positions", as_of=day, basis=basis),
                    model.positions(day, basis))
            compare(f"cash {basis} {day}", reporting.build(engine, "cash", as_of=day,
                                                           basis=basis),
                    model.cash(day, basis))
    compare(f"realized {first}..{last}", reporting.build(engine, "realized", start=first,
                                                         end=last),
            model.realized(first, last))
    compare(f"dividends {first}..{last}", reporting.build(engine, "dividends", start=first,
                                                          end=last),
            model.dividends(first, last, last))
    rejected = [{"file": r["file"], "line": r["line"], "reason": r["reason"]}
                for r in reporting.build(engine, "rejected")]
    compare("rejected", sorted(rejected, key=lambda r: (r["file"], r["line"])),
            [{"file": f, "line": line, "reason": reason} for f, line, reason in model.rejected])
    return found


def run_both(url: str, folder: Path, days: list[dt.date], first: dt.date,
             last: dt.date) -> list[str]:
    with product_book(url) as engine:
        report = Loader(engine).load(folder)
        assert report.fatal is None, report.fatal
        run_eod(engine, last)
        return divergences(engine, ReferenceBook(folder), days, first, last)


def _dates(folder: Path, first: dt.date, last: dt.date, rng: random.Random) -> list[dt.date]:
    """About ten dates: around the corporate actions and withdrawals, a weekend, random days."""
    days = {first, last}
    text = (folder / "corporate_actions.csv").read_text().splitlines()[1:]
    for line in text:
        cells = line.split(",")
        ex, pay = _day(cells[3]), _day(cells[5])
        days |= {ex - dt.timedelta(days=1), ex, pay}
    for line in (folder / "cash.csv").read_text().splitlines()[1:]:
        if ",WITHDRAWAL," in line:
            days.add(_day(line.split(",")[2]))
    saturday = first + dt.timedelta(days=(5 - first.weekday()) % 7 + 7)
    days.add(saturday)
    while len(days) < 14:
        days.add(first + dt.timedelta(days=rng.randrange((last - first).days + 1)))
    return sorted(day for day in days if first <= day <= last)


@pytest.mark.parametrize("seed", SEEDS)
def test_product_agrees_with_the_model_on_generated_books(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    shape = BookShape(seed=seed, accounts=rng.randrange(6, 14), instruments=rng.randrange(4, 9),
                      trades=rng.randrange(120, 300), start=STARTS[seed % len(STARTS)],
                      months=4, cancels=rng.randrange(0, 6), include_story=True)
    folder = tmp_path / "book"
    generate_book(shape, folder)
    first, last = book_period(shape)
    days = _dates(folder, first, last, rng)
    assert run_both(f"sqlite:///{tmp_path / 'book.db'}", folder, days, first, last) == []


@SETTINGS
@given(spec=random_books())
def test_product_agrees_with_the_model_on_random_books(spec: Any, tmp_path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        work = Path(name)
        book = write_book(spec, work / "folder")
        assert run_both(f"sqlite:///{work / 'book.db'}", book.folder, book.check_days,
                        book.first, book.last) == []


# -- small books written by hand -----------------------------------------------------------------

INSTRUMENTS = ("isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale\n"
               "PLPKO0000016,PKO,PKO Bank Polski S.A.,EQUITY,PLN,XWAR,,\n")
ACCOUNTS = ("account,name,kind,base_currency,tax_residence,lot_method\n"
            "C1,Anna Kowalska,CLIENT,PLN,PL,FIFO\n")
TRADES = ("trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
          "counterparty,commission,settlement_date\n")
CASH = "movement_id,account,date,currency,amount,kind,description\n"
EVENTS = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,currency,"
          "new_isin,cost_fraction,fraction_price\n")


def _folder(base: Path, **files: str) -> Path:
    folder = base / "book"
    folder.mkdir(parents=True)
    (folder / "instruments.csv").write_text(INSTRUMENTS)
    (folder / "accounts.csv").write_text(ACCOUNTS)
    (folder / "withholding.csv").write_text("issuer_country,tax_residence,rate\nPL,*,0.19\n")
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def test_a_cancel_on_the_ex_date_undoes_the_transformation_too(book_url: str,
                                                               tmp_path: Path) -> None:
    """T2 (bought Mon 2024-06-10 on XWAR, settling T+2 on Wed 06-12) is pending across the
    10-for-1 split of Tue 06-11 and cancelled on 06-11. From 06-11 the book must read as if T2
    had never been booked: 100 × 10 = 1000 PKO, on both bases. (A regression test: the product
    once showed 1090 on trade basis.)"""
    folder = _folder(
        tmp_path,
        cash=CASH + "M1,C1,2024-06-03,PLN,100000.00,DEPOSIT,\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n"
                        "T2,NEW,C1,PLPKO0000016,BUY,10,50.00,PLN,2024-06-10,,,0,\n"
                        "T2,CANCEL,C1,,,,,,2024-06-11,,,,\n",
        corporate_actions=EVENTS + "S1,SPLIT,PLPKO0000016,2024-06-11,2024-06-11,2024-06-11,"
                                   "1,10,,,,,\n")
    days = [_day("2024-06-10"), _day("2024-06-11"), _day("2024-06-12"), _day("2024-06-14")]
    assert run_both(book_url, folder, days, _day("2024-06-03"), _day("2024-06-14")) == []


def test_a_withdrawal_counts_a_dividend_paid_before_its_value_date(book_url: str,
                                                                   tmp_path: Path) -> None:
    """Settled PLN at the end of 2024-06-20: 5,000.00 deposited − 5,000.00 for 100 PKO (settled
    06-05) + a 1,620.00 net dividend paid 06-18 (20.00 a share, 19% withheld) = 1,620.00. The
    dividend is in corporate_actions.csv of the same load, so it is "known once that load's
    files are in": the withdrawal of 1,000.00 on 06-20 must pass, leaving 620.00."""
    folder = _folder(
        tmp_path,
        cash=CASH + "M1,C1,2024-06-03,PLN,5000.00,DEPOSIT,\n"
                    "M2,C1,2024-06-20,PLN,-1000.00,WITHDRAWAL,needs the dividend\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n",
        corporate_actions=EVENTS + "D1,CASH_DIVIDEND,PLPKO0000016,2024-06-11,2024-06-11,"
                                   "2024-06-18,,,20.00,PLN,,,\n")
    days = [_day("2024-06-18"), _day("2024-06-20"), _day("2024-06-21")]
    assert run_both(book_url, folder, days, _day("2024-06-03"), _day("2024-06-21")) == []


def test_a_pending_buy_across_a_reverse_split_counts_as_its_whole_new_shares(
        book_url: str, tmp_path: Path) -> None:
    """C1 buys 126 PKO on Mon 2024-06-10 (settling Wed 06-12); PKO's 1-for-10 reverse split is
    ex Tue 06-11. The pending buy is transformed into 12 new shares (12.6, the 0.6 paid in cash
    at 500.00: 300.00): on 06-11 C1 holds 12 on trade basis and nothing on settlement basis
    (12 − 12), then 12 on both from 06-12."""
    folder = _folder(
        tmp_path,
        cash=CASH + "M1,C1,2024-06-03,PLN,100000.00,DEPOSIT,\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,126,50.00,PLN,2024-06-10,,,0,\n",
        corporate_actions=EVENTS + "S1,SPLIT,PLPKO0000016,2024-06-11,2024-06-11,2024-06-11,"
                                   "10,1,,,,,500.00\n")
    days = [_day("2024-06-10"), _day("2024-06-11"), _day("2024-06-12")]
    assert run_both(book_url, folder, days, _day("2024-06-10"), _day("2024-06-12")) == []


def test_a_third_of_a_share_in_lieu_is_written_at_twelve_places(book_url: str,
                                                                 tmp_path: Path) -> None:
    """C1 holds 100 PKO (5,000.00); PKO's 3-for-2 reverse split (2 new for 3 old) is ex
    2024-06-11: 100 × 2/3 = 66⅔, so 66 stay and ⅔ of a share is paid in lieu at 30.00 (20.00)
    at cost 5,000.00 × (2/3) / (200/3) = 50.00. The contract writes quantities exactly; ⅔ has
    no exact decimal, so both sides write it at 12 places, half-up: 0.666666666667."""
    folder = _folder(
        tmp_path,
        cash=CASH + "M1,C1,2024-06-03,PLN,100000.00,DEPOSIT,\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n",
        corporate_actions=EVENTS + "S1,SPLIT,PLPKO0000016,2024-06-11,2024-06-11,2024-06-11,"
                                   "3,2,,,,,30.00\n")
    model = ReferenceBook(folder)
    assert model.realized(_day("2024-06-11"), _day("2024-06-11")) == [
        {"account": "C1", "trade_id": "S1", "isin": "PLPKO0000016", "close_date": "2024-06-11",
         "quantity": "0.666666666667", "proceeds": "20.00", "cost": "50.00", "gain": "-30.00",
         "currency": "PLN"}]
    days = [_day("2024-06-10"), _day("2024-06-11"), _day("2024-06-12")]
    assert run_both(book_url, folder, days, _day("2024-06-03"), _day("2024-06-12")) == []


def test_a_flat_accounts_pending_sell_settles_in_the_split_shares(book_url: str,
                                                                  tmp_path: Path) -> None:
    """C1 buys 34 PKO on Mon 2024-06-10 settling that day and sells them the same day settling
    Fri 06-14; PKO splits 1-for-3 ex Tue 06-11. Flat on the eve, C1 is entitled to nothing, but
    the pending sell delivers 102 new shares: 102 settled on 06-11 (the 34 bought, split) and
    none from 06-14. (Found by the random books: the product once left the sell untransformed
    and showed 34.)"""
    folder = _folder(
        tmp_path,
        cash=CASH + "M1,C1,2024-06-03,PLN,100000.00,DEPOSIT,\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,34,50.00,PLN,2024-06-10,,,0,2024-06-10\n"
                        "T2,NEW,C1,PLPKO0000016,SELL,34,51.00,PLN,2024-06-10,,,0,2024-06-14\n",
        corporate_actions=EVENTS + "S1,SPLIT,PLPKO0000016,2024-06-11,2024-06-11,2024-06-11,"
                                   "1,3,,,,,\n")
    model = ReferenceBook(folder)
    assert model.positions(_day("2024-06-11"), "settlement") == [
        {"account": "C1", "isin": "PLPKO0000016", "quantity": "102", "currency": "PLN"}]
    assert model.positions(_day("2024-06-11"), "trade") == []
    days = [_day("2024-06-10"), _day("2024-06-11"), _day("2024-06-13"), _day("2024-06-14")]
    assert run_both(book_url, folder, days, _day("2024-06-03"), _day("2024-06-14")) == []


def test_two_events_on_one_security_on_one_ex_date_apply_in_turn(book_url: str,
                                                                 tmp_path: Path) -> None:
    """C1 holds 100 KO; on 2024-06-06 KO splits 2-for-1 (E1) and then merges 1:1 into NVDA
    (E2), in file order. The holding the merger replaces is the split one: 200 NVDA at the lots'
    cost of 6,000.00, and no KO left."""
    folder = _folder(
        tmp_path,
        trades=TRADES + "T1,NEW,C1,US1912161007,BUY,100,60.00,USD,2024-06-03,,,0,\n",
        corporate_actions=EVENTS + "E1,SPLIT,US1912161007,2024-06-06,2024-06-06,2024-06-06,"
                                   "1,2,,,,,\n"
                                   "E2,MERGER,US1912161007,2024-06-06,2024-06-06,2024-06-06,"
                                   "1,1,,,US67066G1040,,\n")
    (folder / "instruments.csv").write_text(
        INSTRUMENTS.splitlines()[0] + "\nUS1912161007,KO,Coca-Cola Co.,EQUITY,USD,XNYS,,\n"
        "US67066G1040,NVDA,NVIDIA Corp.,EQUITY,USD,XNAS,,\n")
    model = ReferenceBook(folder)
    assert model.positions(_day("2024-06-06"), "trade") == [
        {"account": "C1", "isin": "US67066G1040", "quantity": "200", "cost_basis": "6000.00",
         "currency": "USD"}]
    days = [_day("2024-06-05"), _day("2024-06-06"), _day("2024-06-07")]
    assert run_both(book_url, folder, days, _day("2024-06-03"), _day("2024-06-07")) == []


def test_a_dividend_row_shows_and_is_selected_by_the_events_pay_date(book_url: str,
                                                                     tmp_path: Path) -> None:
    """PKO's dividend D1 is ex 2024-06-12 and paid 2024-06-11 (a pay date before the ex date,
    as the golden NVIDIA split has). The row's pay_date is the event's, 2024-06-11, and a report
    from 06-11 to 06-11 selects it; the cash itself cannot arrive before the ex date (06-12)."""
    folder = _folder(
        tmp_path,
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n",
        corporate_actions=EVENTS + "D1,CASH_DIVIDEND,PLPKO0000016,2024-06-12,2024-06-12,"
                                   "2024-06-11,,,1.00,PLN,,,\n")
    model = ReferenceBook(folder)
    assert [r["pay_date"] for r in model.dividends(_day("2024-06-11"), _day("2024-06-11"),
                                                   _day("2024-06-14"))] == ["2024-06-11"]
    days = [_day("2024-06-11"), _day("2024-06-12")]
    assert run_both(book_url, folder, days, _day("2024-06-11"), _day("2024-06-14")) == []


def test_the_model_follows_the_hand_worked_examples(tmp_path: Path) -> None:
    """The model on the two small books above, against figures worked by hand."""
    one = ReferenceBook(_folder(
        tmp_path / "one",
        cash=CASH + "M1,C1,2024-06-03,PLN,100000.00,DEPOSIT,\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n"
                        "T2,NEW,C1,PLPKO0000016,BUY,10,50.00,PLN,2024-06-10,,,0,\n"
                        "T2,CANCEL,C1,,,,,,2024-06-11,,,,\n",
        corporate_actions=EVENTS + "S1,SPLIT,PLPKO0000016,2024-06-11,2024-06-11,2024-06-11,"
                                   "1,10,,,,,\n"))
    assert [r["quantity"] for r in one.positions(_day("2024-06-10"), "trade")] == ["110"]
    assert [r["quantity"] for r in one.positions(_day("2024-06-10"), "settlement")] == ["100"]
    for basis in ("trade", "settlement"):
        assert one.positions(_day("2024-06-11"), basis)[0]["quantity"] == "1000"
        assert one.cash(_day("2024-06-11"), basis)[0]["balance"] == "95000.00"
    two = ReferenceBook(_folder(
        tmp_path / "two",
        cash=CASH + "M1,C1,2024-06-03,PLN,5000.00,DEPOSIT,\n"
                    "M2,C1,2024-06-20,PLN,-1000.00,WITHDRAWAL,needs the dividend\n",
        trades=TRADES + "T1,NEW,C1,PLPKO0000016,BUY,100,50.00,PLN,2024-06-03,,,0,\n",
        corporate_actions=EVENTS + "D1,CASH_DIVIDEND,PLPKO0000016,2024-06-11,2024-06-11,"
                                   "2024-06-18,,,20.00,PLN,,,\n"))
    assert two.rejected == []
    assert two.dividends(_day("2024-06-01"), _day("2024-06-30"), _day("2024-06-30"))[0][
        "net"] == "1620.00"
    assert two.cash(_day("2024-06-20"), "settlement") == [
        {"account": "C1", "currency": "PLN", "balance": "620.00"}]
