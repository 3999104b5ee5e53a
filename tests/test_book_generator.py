"""The synthetic book generator: deterministic, valid by construction, and telling its story."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from stdnum import isin as isin_code

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.services.book_generator import BookShape, book_period, generate_book

SMALL = BookShape(seed=11, accounts=12, instruments=6, trades=300, cancels=4)
CENT = Decimal("0.01")

# The book-folder contract's columns, copied from the spec (not from the module under test).
CONTRACT_HEADERS = {
    "instruments.csv": "isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale",
    "accounts.csv": "account,name,kind,base_currency,tax_residence,lot_method",
    "fees.csv": "mic,currency,rate_bps,minimum",
    "withholding.csv": "issuer_country,tax_residence,rate",
    "prices.csv": "date,isin,close,currency",
    "fx.csv": "date,base,quote,rate",
    "cash.csv": "movement_id,account,date,currency,amount,kind,description",
    "trades.csv": "trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
                  "counterparty,commission,settlement_date",
    "corporate_actions.csv": "event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,"
                             "ratio_new,amount,currency,new_isin,cost_fraction,fraction_price",
}


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


@pytest.fixture(scope="module")
def story_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("story")
    generate_book(BookShape(), folder)
    return folder


@pytest.fixture(scope="module")
def small_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    generate_book(SMALL, folder)
    return folder


@pytest.fixture(scope="module")
def wide_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Beyond the real listings: synthetic ISINs, month-end prices, no story."""
    folder = tmp_path_factory.mktemp("wide")
    generate_book(BookShape(seed=3, accounts=60, instruments=2_400, trades=2_000, months=4,
                            cancels=10, include_story=False), folder)
    return folder


ALL_BOOKS = ["story_book", "small_book", "wide_book"]


def test_same_seed_same_bytes_and_another_seed_another_book(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_book(SMALL, first)
    generate_book(SMALL, again)
    generate_book(BookShape(seed=12, accounts=12, instruments=6, trades=300, cancels=4), other)
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(CONTRACT_HEADERS)
    for name in names:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert (first / "trades.csv").read_bytes() != (other / "trades.csv").read_bytes()


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_headers_utf8_and_line_endings(book: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    for name, header in CONTRACT_HEADERS.items():
        data = (folder / name).read_bytes()
        assert b"\r" not in data
        assert data.decode("utf-8").split("\n", 1)[0] == header, name
        assert data.endswith(b"\n")


def test_returned_counts_match_the_files(tmp_path: Path) -> None:
    counts = generate_book(SMALL, tmp_path)
    assert counts == {name: len(rows(tmp_path, name)) for name in CONTRACT_HEADERS}
    assert counts["trades.csv"] >= SMALL.trades + SMALL.cancels


def test_polish_and_german_names_survive_as_utf8(story_book: Path) -> None:
    text = (story_book / "accounts.csv").read_text(encoding="utf-8")
    assert any(letter in text for letter in "łśźżąęóńŁ")
    assert any(letter in text for letter in "äöüÄÖÜ")


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_every_isin_is_valid_and_known(book: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    instruments = rows(folder, "instruments.csv")
    known = {row["isin"] for row in instruments}
    assert len(known) == len(instruments)
    assert all(isin_code.is_valid(code) for code in known)
    assert {row["isin"] for row in rows(folder, "trades.csv") if row["action"] == "NEW"} <= known
    assert {row["isin"] for row in rows(folder, "prices.csv")} <= known


def test_half_polish_half_american_with_real_listings_first(wide_book: Path,
                                                            story_book: Path) -> None:
    instruments = rows(wide_book, "instruments.csv")
    markets = defaultdict(int)
    for row in instruments:
        markets[row["mic"], row["currency"]] += 1
    assert markets["XWAR", "PLN"] == 1_200
    assert markets["XNYS", "USD"] + markets["XNAS", "USD"] == 1_200
    assert sum(row["isin"].startswith(("PLZB", "USZB")) for row in instruments) > 2_300
    small = {row["isin"]: row for row in rows(story_book, "instruments.csv")}
    assert {"PLPKO0000016", "US67066G1040", "US1912161007"} <= set(small)
    assert not any(code.startswith(("PLZB", "USZB")) for code in small)
    allegro = next(row for row in instruments if row["isin"] == "LU2237380790")
    assert (allegro["mic"], allegro["currency"], allegro["issuer_country"]) == ("XWAR", "PLN",
                                                                               "LU")


def test_accounts_residences_houses_and_lot_methods(wide_book: Path) -> None:
    accounts = rows(wide_book, "accounts.csv")
    assert len(accounts) == 60
    kinds = defaultdict(set)
    for row in accounts:
        kinds[row["kind"]].add((row["tax_residence"], row["base_currency"]))
    assert kinds["CLIENT"] == {("PL", "PLN"), ("US", "USD"), ("DE", "EUR")}
    assert 1 <= sum(row["kind"] == "HOUSE" for row in accounts) <= 2
    assert {row["lot_method"] for row in accounts} <= {"FIFO", "LIFO", "HIFO", "AVERAGE"}
    assert sum(row["lot_method"] == "FIFO" for row in accounts) > len(accounts) // 2


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_trades_are_on_sessions_in_order_with_unique_ids(book: str,
                                                         request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    calendar = SettlementCalendar()
    mic = {row["isin"]: row["mic"] for row in rows(folder, "instruments.csv")}
    trades = rows(folder, "trades.csv")
    new = [row for row in trades if row["action"] == "NEW"]
    assert len({row["trade_id"] for row in new}) == len(new)
    dates = [row["trade_date"] for row in trades]
    assert dates == sorted(dates)
    for row in new:
        assert calendar.is_trading_session(day(row["trade_date"]), mic[row["isin"]]), row
        assert row["venue"] == mic[row["isin"]]
        assert int(row["quantity"]) > 0 and Decimal(row["price"]) > 0
        assert Decimal(row["price"]) == Decimal(row["price"]).quantize(CENT)
    assert any(row["commission"] for row in new) and any(not row["commission"] for row in new)


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_no_sell_exceeds_the_trade_basis_position(book: str,
                                                  request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    trades = rows(folder, "trades.csv")
    cancelled = {row["trade_id"] for row in trades if row["action"] == "CANCEL"}
    splits = sorted((row["ex_date"], row["isin"], int(row["ratio_new"]) // int(row["ratio_old"]))
                    for row in rows(folder, "corporate_actions.csv") if row["kind"] == "SPLIT")
    held: dict[tuple[str, str], int] = defaultdict(int)
    sells = 0
    for row in trades:
        while splits and splits[0][0] <= row["trade_date"]:
            _ex, code, ratio = splits.pop(0)
            for key in held:
                if key[1] == code:
                    held[key] *= ratio
        if row["action"] != "NEW" or row["trade_id"] in cancelled:
            continue
        key = (row["account"], row["isin"])
        if row["side"] == "BUY":
            held[key] += int(row["quantity"])
        else:
            sells += 1
            assert int(row["quantity"]) <= held[key], row
            held[key] -= int(row["quantity"])
    assert sells > 0


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_cancels_name_unsettled_buys_on_their_own_day(book: str,
                                                      request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    trades = rows(folder, "trades.csv")
    new = {row["trade_id"]: row for row in trades if row["action"] == "NEW"}
    cancels = [row for row in trades if row["action"] == "CANCEL"]
    assert len(cancels) == {"story_book": 3, "small_book": 4, "wide_book": 10}[book]
    for cancel in cancels:
        original = new[cancel["trade_id"]]
        assert original["side"] == "BUY"
        assert (cancel["account"], cancel["trade_date"]) == (original["account"],
                                                             original["trade_date"])


def fee_schedule(folder: Path) -> dict[str, tuple[Decimal, Decimal]]:
    return {row["mic"]: (Decimal(row["rate_bps"]), Decimal(row["minimum"]))
            for row in rows(folder, "fees.csv")}


def cost_or_proceeds(trade: dict[str, str], fees: dict[str, tuple[Decimal, Decimal]]) -> Decimal:
    """The trade's signed cash effect, per the contract's commission rule."""
    gross = (Decimal(trade["quantity"]) * Decimal(trade["price"])).quantize(CENT, ROUND_HALF_UP)
    if trade["commission"]:
        commission = Decimal(trade["commission"])
    else:
        rate, minimum = fees[trade["venue"]]
        commission = max(minimum, (gross * rate / 10_000).quantize(CENT, ROUND_HALF_UP))
    return -(gross + commission) if trade["side"] == "BUY" else gross - commission


@pytest.mark.parametrize("book", ALL_BOOKS)
def test_first_day_deposits_cover_every_buy(book: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(book)
    fees = fee_schedule(folder)
    first, _last = book_period(BookShape())
    deposits: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in rows(folder, "cash.csv"):
        assert day(row["date"]).weekday() < 5
        if row["kind"] == "DEPOSIT":
            assert day(row["date"]) == first  # every book here starts on BookShape's default
            deposits[row["account"], row["currency"]] += Decimal(row["amount"])
    bought: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for trade in rows(folder, "trades.csv"):
        if trade["action"] == "NEW" and trade["side"] == "BUY":
            bought[trade["account"], trade["currency"]] -= cost_or_proceeds(trade, fees)
    for key, cost in bought.items():
        assert deposits[key] > cost, key
    accounts = {row["account"]: row["base_currency"] for row in rows(folder, "accounts.csv")}
    assert all((account, base) in deposits for account, base in accounts.items())
    assert any(row["kind"] == "FEE" for row in rows(folder, "cash.csv"))


def test_prices_daily_for_small_books_month_end_for_wide_ones(small_book: Path,
                                                             wide_book: Path) -> None:
    calendar = SettlementCalendar()
    instruments = {row["isin"]: row for row in rows(small_book, "instruments.csv")}
    small_prices = rows(small_book, "prices.csv")
    per_isin = defaultdict(list)
    for row in small_prices:
        assert Decimal(row["close"]) > 0
        assert row["currency"] == instruments[row["isin"]]["currency"]
        per_isin[row["isin"]].append(day(row["date"]))
    first, last = book_period(SMALL)
    for code, dates in per_isin.items():
        mic = instruments[code]["mic"]
        sessions = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
        assert dates == [d for d in sessions if calendar.is_trading_session(d, mic)]
    wide = defaultdict(list)
    for row in rows(wide_book, "prices.csv"):
        wide[row["isin"], row["date"][:7]].append(row["date"])
    assert all(len(dates) == 1 for dates in wide.values())
    assert len(wide) == 2_400 * 4


def test_fx_rates_are_a_few_month_end_quotes(small_book: Path) -> None:
    fx = rows(small_book, "fx.csv")
    assert {(row["base"], row["quote"]) for row in fx} == {("USD", "PLN"), ("EUR", "PLN")}
    assert 4 <= len(fx) <= 20
    assert all(Decimal(row["rate"]) > 0 and day(row["date"]).weekday() < 5 for row in fx)


def test_no_story_means_no_corporate_actions_or_withdrawals(wide_book: Path) -> None:
    assert rows(wide_book, "corporate_actions.csv") == []
    assert not any(row["kind"] == "WITHDRAWAL" for row in rows(wide_book, "cash.csv"))


def test_story_split_and_dividends_on_real_dates(story_book: Path) -> None:
    calendar = SettlementCalendar()
    events = {(row["kind"], row["isin"]): row for row in rows(story_book,
                                                              "corporate_actions.csv")}
    split = events["SPLIT", "US67066G1040"]
    assert (split["ex_date"], split["record_date"], split["pay_date"]) == (
        "2024-06-10", "2024-06-06", "2024-06-07")
    assert (split["ratio_old"], split["ratio_new"]) == ("1", "10")
    ko = events["CASH_DIVIDEND", "US1912161007"]
    assert (ko["ex_date"], ko["pay_date"], ko["amount"], ko["currency"]) == (
        "2024-06-14", "2024-07-01", "0.485", "USD")
    pko = events["CASH_DIVIDEND", "PLPKO0000016"]
    assert pko["currency"] == "PLN" and Decimal(pko["amount"]) > 0
    mics = {row["isin"]: row["mic"] for row in rows(story_book, "instruments.csv")}
    for event in events.values():
        assert calendar.is_trading_session(day(event["ex_date"]), mics[event["isin"]])
        assert all(day(event[key]).weekday() < 5 for key in ("record_date", "pay_date"))
        assert day(event["pay_date"]) <= book_period(BookShape())[1]


def entitled(folder: Path, code: str, ex_date: str) -> dict[str, int]:
    """Trade-basis holdings of ``code`` from trades dated before ``ex_date`` (no cancels)."""
    trades = rows(folder, "trades.csv")
    cancelled = {row["trade_id"] for row in trades if row["action"] == "CANCEL"}
    held: dict[str, int] = defaultdict(int)
    for row in trades:
        if (row["action"] == "NEW" and row["trade_id"] not in cancelled and row["isin"] == code
                and row["trade_date"] < ex_date):
            held[row["account"]] += int(row["quantity"]) * (1 if row["side"] == "BUY" else -1)
    return {account: quantity for account, quantity in held.items() if quantity}


def test_story_dividends_reach_all_three_residences(story_book: Path) -> None:
    residence = {row["account"]: row["tax_residence"] for row in rows(story_book,
                                                                      "accounts.csv")}
    events = {(row["kind"], row["isin"]): row for row in rows(story_book,
                                                              "corporate_actions.csv")}
    ko = events["CASH_DIVIDEND", "US1912161007"]
    holders = entitled(story_book, ko["isin"], ko["ex_date"])
    assert {"PL", "US", "DE"} <= {residence[account] for account in holders}
    pko = events["CASH_DIVIDEND", "PLPKO0000016"]
    assert entitled(story_book, pko["isin"], pko["ex_date"])
    nvda = events["SPLIT", "US67066G1040"]
    assert entitled(story_book, nvda["isin"], nvda["ex_date"])


def pln_cash(folder: Path, account: str, on: dt.date, *, settled: bool) -> Decimal:
    """The account's PLN at the end of ``on``, from the files, withdrawals left out."""
    calendar = SettlementCalendar()
    fees = fee_schedule(folder)
    instruments = {row["isin"]: row for row in rows(folder, "instruments.csv")}
    tax = {(row["issuer_country"], row["tax_residence"]): Decimal(row["rate"])
           for row in rows(folder, "withholding.csv")}
    accounts = {row["account"]: row for row in rows(folder, "accounts.csv")}
    balance = sum((Decimal(row["amount"]) for row in rows(folder, "cash.csv")
                   if row["account"] == account and row["currency"] == "PLN"
                   and row["kind"] != "WITHDRAWAL" and day(row["date"]) <= on), Decimal(0))
    trades = rows(folder, "trades.csv")
    cancelled = {row["trade_id"] for row in trades if row["action"] == "CANCEL"}
    for trade in trades:
        if (trade["action"] != "NEW" or trade["trade_id"] in cancelled
                or trade["account"] != account or trade["currency"] != "PLN"):
            continue
        booked = day(trade["trade_date"])
        if settled:
            booked = calendar.settlement_date(booked, trade["venue"], "PLN")
        if booked <= on:
            balance += cost_or_proceeds(trade, fees)
    for event in rows(folder, "corporate_actions.csv"):
        if event["kind"] != "CASH_DIVIDEND" or event["currency"] != "PLN":
            continue
        quantity = entitled(folder, event["isin"], event["ex_date"]).get(account, 0)
        if quantity and day(event["pay_date"]) <= on:
            issuer = instruments[event["isin"]]["issuer_country"] or event["isin"][:2]
            residence = accounts[account]["tax_residence"]
            rate = tax.get((issuer, residence), tax.get((issuer, "*"), Decimal(0)))
            gross = (quantity * Decimal(event["amount"])).quantize(CENT, ROUND_HALF_UP)
            balance += gross - (gross * rate).quantize(CENT, ROUND_HALF_UP)
    return balance


def test_story_withdrawal_refused_then_granted(story_book: Path) -> None:
    withdrawals = [row for row in rows(story_book, "cash.csv") if row["kind"] == "WITHDRAWAL"]
    assert len(withdrawals) == 2
    refused, granted = withdrawals
    assert refused["account"] == granted["account"]
    assert refused["currency"] == granted["currency"] == "PLN"
    request = -Decimal(refused["amount"])
    refused_on, granted_on = day(refused["date"]), day(granted["date"])
    account = refused["account"]
    assert pln_cash(story_book, account, refused_on, settled=True) < request
    assert request <= pln_cash(story_book, account, refused_on, settled=False)
    assert -Decimal(granted["amount"]) <= pln_cash(story_book, account, granted_on, settled=True)
    assert refused_on < granted_on <= book_period(BookShape())[1]


def test_progress_every_ten_thousand_trades(tmp_path: Path) -> None:
    calls: list[int] = []
    generate_book(BookShape(accounts=30, instruments=8, trades=25_000, include_story=False,
                            cancels=0), tmp_path, progress=calls.append)
    assert calls == [10_000, 20_000, 25_000]


def test_book_period_runs_through_the_last_month() -> None:
    assert book_period(BookShape()) == (dt.date(2024, 6, 3), dt.date(2024, 9, 30))
    saturday_start = BookShape(start=dt.date(2024, 6, 1), months=3)
    assert book_period(saturday_start) == (dt.date(2024, 6, 3), dt.date(2024, 8, 30))


@pytest.mark.parametrize("shape", [BookShape(accounts=3), BookShape(instruments=1),
                                   BookShape(trades=2, cancels=3),
                                   BookShape(months=1)])  # a month is too short for the story
def test_impossible_shapes_are_refused(shape: BookShape, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_book(shape, tmp_path)


def test_tiny_story_book_with_one_american_listing(tmp_path: Path) -> None:
    counts = generate_book(BookShape(accounts=4, instruments=2, trades=50, cancels=1), tmp_path)
    assert counts["corporate_actions.csv"] == 3
    assert counts["instruments.csv"] == 2
