"""A seeded synthetic book folder: the demo's story and the benchmark's million trades.

``generate_book(shape, folder)`` writes the CSV files of the book-folder contract
(``shared/spec/book-folder.md``) for a shape of book: so many accounts, instruments and trades
over so many calendar months. The same shape always gives the same bytes: every choice is drawn
from one ``random.Random(seed)`` in a fixed order, prices and amounts are integers in minor units,
and nothing reads the clock.

The book is valid by construction, so that a benchmark measures booking, not rejecting:
- trade dates are trading sessions of the instrument's market, in file order;
- a SELL never exceeds what the account holds on trade basis (positions are tracked as trades are
  drawn, so there are no short sales);
- every account's first-day deposit in each currency exceeds the cost of all its buys;
- a CANCEL is booked on its trade's own date, so the trade has never settled; the cancelled buy
  never counts towards a position, so no later sell depends on it.

With ``include_story`` the book also tells the demo's story: NVIDIA's 10-for-1 split, a US dividend
held by Polish, US and German residents (withheld 15%, 0% and 30%), a PLN dividend on PKO (19%), and
a withdrawal refused because the sale that funds it has not settled yet, then granted after it has.
The story's three accounts trade only in the story, so its figures can be followed by hand.

It scales by streaming: trades and prices go to their files as they are drawn, and the generator
keeps only one position integer per account and instrument it has touched.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stdnum import isin as isin_code

from zaplecze.kernel.calendar import SettlementCalendar, weekdays

__all__ = ["COLUMNS", "BookShape", "book_period", "generate_book"]

# The contract's columns, file by file, in the contract's load order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "instruments.csv": ("isin", "symbol", "name", "kind", "currency", "mic", "issuer_country",
                        "quantity_scale"),
    "accounts.csv": ("account", "name", "kind", "base_currency", "tax_residence", "lot_method"),
    "fees.csv": ("mic", "currency", "rate_bps", "minimum"),
    "withholding.csv": ("issuer_country", "tax_residence", "rate"),
    "prices.csv": ("date", "isin", "close", "currency"),
    "fx.csv": ("date", "base", "quote", "rate"),
    "cash.csv": ("movement_id", "account", "date", "currency", "amount", "kind", "description"),
    "trades.csv": ("trade_id", "action", "account", "isin", "side", "quantity", "price", "currency",
                   "trade_date", "venue", "counterparty", "commission", "settlement_date"),
    "corporate_actions.csv": ("event_id", "kind", "isin", "ex_date", "record_date", "pay_date",
                              "ratio_old", "ratio_new", "amount", "currency", "new_isin",
                              "cost_fraction", "fraction_price"),
}

PROGRESS_EVERY_TRADES = 10_000
DAILY_PRICE_ROWS_MAX = 200_000  # above this, prices.csv holds month-end closes only
SELL_PROBABILITY = 0.45  # of a drawn trade, when the account holds the instrument
EXPLICIT_COMMISSION_PROBABILITY = 0.03  # client trades that carry their own commission
HOUSE_TRADE_PROBABILITY = 0.03

# The commission schedule and the withholding table of the golden example book.
FEES = (("XWAR", "PLN", 39, 500), ("XNYS", "USD", 15, 500), ("XNAS", "USD", 15, 500))
WITHHOLDING = (("PL", "PL", "0.19"), ("PL", "*", "0.19"), ("US", "PL", "0.15"),
               ("US", "US", "0.00"), ("US", "*", "0.30"))
CURRENCIES = ("PLN", "USD", "EUR")  # index order of the per-account cash sums
COUNTERPARTIES = {"XWAR": "KDPWCCP"}  # default: STREET

# Well-known listings with prices near their level in June 2024 (in minor units; illustrative).
# The first of each list carries the story: PKO's dividend, NVIDIA's split, Coca-Cola's dividend.
REAL_PL: tuple[tuple[str, str, str, int], ...] = (
    ("PLPKO0000016", "PKO", "PKO Bank Polski S.A.", 5812),
    ("PLOPTTC00011", "CDR", "CD Projekt S.A.", 12134),
    ("PLPZU0000011", "PZU", "PZU S.A.", 4890),
    ("PLPKN0000018", "PKN", "Orlen S.A.", 6650),
    ("PLKGHM000017", "KGH", "KGHM Polska Miedź S.A.", 15880),
    ("PLLPP0000011", "LPP", "LPP S.A.", 1598000),
    ("LU2237380790", "ALE", "Allegro.eu S.A.", 3460),
    ("PLPEKAO00016", "PEO", "Bank Pekao S.A.", 16450),
    ("PLDINPL00011", "DNP", "Dino Polska S.A.", 37240),
    ("PLBZ00000044", "SPL", "Santander Bank Polska S.A.", 54400),
    ("PLPGER000010", "PGE", "PGE S.A.", 705),
    ("PLALIOR00045", "ALR", "Alior Bank S.A.", 10120),
    ("PLTLKPL00017", "OPL", "Orange Polska S.A.", 830),
    ("PLKRK0000010", "KRU", "Kruk S.A.", 46300),
    ("PLBUDMX00013", "BDX", "Budimex S.A.", 65800),
    ("PLCFRPT00013", "CPS", "Cyfrowy Polsat S.A.", 1155),
)
REAL_US: tuple[tuple[str, str, str, str, int], ...] = (
    ("US67066G1040", "NVDA", "NVIDIA Corp.", "XNAS", 115000),
    ("US1912161007", "KO", "Coca-Cola Co.", "XNYS", 6245),
    ("US0378331005", "AAPL", "Apple Inc.", "XNAS", 19400),
    ("US5949181045", "MSFT", "Microsoft Corp.", "XNAS", 41300),
    ("US46625H1005", "JPM", "JPMorgan Chase & Co.", "XNYS", 19735),
    ("US0231351067", "AMZN", "Amazon.com Inc.", "XNAS", 17800),
    ("US02079K3059", "GOOGL", "Alphabet Inc. Class A", "XNAS", 17400),
    ("US30303M1027", "META", "Meta Platforms Inc.", "XNAS", 47700),
    ("US88160R1014", "TSLA", "Tesla Inc.", "XNAS", 17800),
    ("US92826C8394", "V", "Visa Inc. Class A", "XNYS", 27500),
    ("US4781601046", "JNJ", "Johnson & Johnson", "XNYS", 14700),
    ("US9311421039", "WMT", "Walmart Inc.", "XNYS", 6700),
    ("US7427181091", "PG", "Procter & Gamble Co.", "XNYS", 16500),
    ("US30231G1022", "XOM", "Exxon Mobil Corp.", "XNYS", 11500),
    ("US4581401001", "INTC", "Intel Corp.", "XNAS", 3100),
    ("US0846707026", "BRK.B", "Berkshire Hathaway Inc. Class B", "XNYS", 41000),
)

PL_FIRST = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Małgorzata", "Krzysztof", "Agnieszka",
            "Paweł", "Magdalena", "Michał", "Joanna", "Łukasz", "Ewa", "Grzegorz", "Zofia", "Jakub")
PL_LAST = ("Nowak", "Wójcik", "Kowalczyk", "Woźniak", "Mazur", "Krawczyk", "Zając", "Król",
           "Wróbel", "Dudek", "Pawlak", "Sikora", "Baran", "Szewczyk", "Kaczmarek", "Michalak")
US_FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
            "David", "Elizabeth", "William", "Susan")
US_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
           "Rodriguez", "Martinez", "Wilson", "Anderson")
DE_FIRST = ("Jonas", "Lena", "Lukas", "Hannah", "Felix", "Sophie", "Jürgen", "Käthe")
DE_LAST = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Schäfer", "Köhler")
RESIDENCES = {"PL": ("PLN", PL_FIRST, PL_LAST), "US": ("USD", US_FIRST, US_LAST),
              "DE": ("EUR", DE_FIRST, DE_LAST)}


@dataclass(frozen=True)
class BookShape:
    seed: int = 7
    accounts: int = 40
    instruments: int = 12
    trades: int = 600
    start: dt.date = dt.date(2024, 6, 3)
    months: int = 4
    cancels: int = 3  # CANCEL rows of unsettled buys, each booked on its trade's own date
    include_story: bool = True  # the demo's story (split, dividends, refused withdrawal)


@dataclass(frozen=True, slots=True)
class _Instrument:
    isin: str
    symbol: str
    name: str
    kind: str
    currency: str
    mic: str
    issuer_country: str  # written only where it differs from the ISIN's prefix
    price: int  # the first day's price in minor units


@dataclass(frozen=True, slots=True)
class _Account:
    account: str
    name: str
    kind: str
    base_currency: str
    tax_residence: str
    lot_method: str


@dataclass(slots=True)
class _Story:
    """The story's dates and trades, planned before any trade is drawn."""

    accounts: tuple[int, int, int]  # the PL, US and DE residents' account indexes
    split: tuple[int, dt.date, dt.date, dt.date]  # instrument, ex, record, pay
    us_dividend: tuple[int, dt.date, dt.date, dt.date, str]  # ... and the amount per share
    pl_dividend: tuple[int, dt.date, dt.date, dt.date, str]
    sale: tuple[dt.date, dt.date]  # the big PLN sale's trade date and settlement date
    withdrawals: tuple[dt.date, dt.date]  # refused, then granted
    trades: dict[dt.date, list[tuple[int, int, str, int]]] = field(default_factory=dict)
    sale_proceeds: int = 0  # filled in when the sale is drawn


def book_period(shape: BookShape) -> tuple[dt.date, dt.date]:
    """The first and last weekday of the book: from ``start`` through the end of its last month."""
    first = shape.start
    while first.weekday() >= 5:
        first += dt.timedelta(days=1)
    month_index = shape.start.year * 12 + shape.start.month - 1 + shape.months
    last = dt.date(month_index // 12, month_index % 12 + 1, 1) - dt.timedelta(days=1)
    while last.weekday() >= 5:
        last -= dt.timedelta(days=1)
    return first, last


def generate_book(shape: BookShape, folder: Path,
                  progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the book's CSV files into ``folder``; returns the data rows written per file."""
    _check_shape(shape)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(shape.seed)
    calendar = SettlementCalendar()
    first, last = book_period(shape)
    instruments = _instruments(shape, rng)
    accounts = _accounts(shape, rng)
    story = _plan_story(shape, instruments, calendar, first, last) if shape.include_story else None
    rows = {
        "instruments.csv": _write(folder, "instruments.csv", (
            (i.isin, i.symbol, i.name, i.kind, i.currency, i.mic, i.issuer_country, "")
            for i in instruments)),
        "accounts.csv": _write(folder, "accounts.csv", (
            (a.account, a.name, a.kind, a.base_currency, a.tax_residence, a.lot_method)
            for a in accounts)),
        "fees.csv": _write(folder, "fees.csv", (
            (mic, currency, str(bps), _money(minimum)) for mic, currency, bps, minimum in FEES)),
        "withholding.csv": _write(folder, "withholding.csv", WITHHOLDING),
    }
    book = _Simulation(shape, rng, calendar, instruments, accounts, story, first, last)
    rows.update(book.run(folder, progress))
    rows["fx.csv"] = _write(folder, "fx.csv", _fx_rows(rng, first, last))
    rows["cash.csv"] = _write(folder, "cash.csv", book.cash_rows())
    rows["corporate_actions.csv"] = _write(folder, "corporate_actions.csv",
                                           _corporate_action_rows(story, instruments))
    return rows


def _check_shape(shape: BookShape) -> None:
    if shape.accounts < 4 or shape.instruments < 2 or shape.months < 1:
        raise ValueError("a book needs at least 4 accounts, 2 instruments and 1 month")
    if shape.trades < 0 or not 0 <= shape.cancels <= shape.trades:
        raise ValueError("trades must be >= 0 and cancels between 0 and trades")


def _write(folder: Path, name: str, rows: Iterable[Sequence[str]]) -> int:
    with (folder / name).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS[name])
        count = 0
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _instruments(shape: BookShape, rng: random.Random) -> list[_Instrument]:
    """Half on XWAR in PLN, half in the US in USD: the real listings first, then synthetic ones."""
    us_count = shape.instruments // 2
    polish = [_Instrument(isin, symbol, name, "EQUITY", "PLN", "XWAR",
                          "LU" if isin.startswith("LU") else "", price)
              for isin, symbol, name, price in REAL_PL]
    american = [_Instrument(isin, symbol, name, "EQUITY", "USD", mic, "", price)
                for isin, symbol, name, mic, price in REAL_US]
    for number in range(1, shape.instruments - us_count - len(polish) + 1):
        polish.append(_Instrument(_synthetic_isin("PL", number), f"ZPL{number:04d}",
                                  f"Syntetyk {number:04d} S.A.", _kind(number), "PLN", "XWAR",
                                  "", rng.randrange(500, 50_000)))
    for number in range(1, us_count - len(american) + 1):
        american.append(_Instrument(_synthetic_isin("US", number), f"ZUS{number:04d}",
                                    f"Synthetic {number:04d} Inc.", _kind(number), "USD",
                                    "XNYS" if number % 2 else "XNAS", "",
                                    rng.randrange(1_000, 50_000)))
    return polish[:shape.instruments - us_count] + american[:us_count]


def _synthetic_isin(country: str, number: int) -> str:
    body = f"{country}ZB{number:07d}"  # "ZB" marks a synthetic listing
    return body + isin_code.calc_check_digit(body)


def _kind(number: int) -> str:
    return "ETF" if number % 10 == 0 else "EQUITY"


def _accounts(shape: BookShape, rng: random.Random) -> list[_Account]:
    """Clients resident mostly in Poland, some in the US, a few in Germany; one or two houses."""
    houses = 1 if shape.accounts < 20 else 2
    clients = shape.accounts - houses
    width = max(4, len(str(clients)))
    accounts = []
    for number in range(1, clients + 1):
        if number <= 3:  # one of each residence first: the story's accounts
            residence = ("PL", "US", "DE")[number - 1]
        else:
            draw = rng.random()
            residence = "PL" if draw < 0.6 else "US" if draw < 0.9 else "DE"
        currency, first_names, last_names = RESIDENCES[residence]
        name = f"{rng.choice(first_names)} {rng.choice(last_names)}"
        draw = rng.random()
        method = ("FIFO" if draw < 0.7 or number <= 3 else "LIFO" if draw < 0.8
                  else "HIFO" if draw < 0.9 else "AVERAGE")
        accounts.append(_Account(f"C{number:0{width}d}", name, "CLIENT", currency, residence,
                                 method))
    for number in range(1, houses + 1):
        accounts.append(_Account(f"H{number:02d}", f"House proprietary book {number}", "HOUSE",
                                 "PLN", "PL", "FIFO"))
    return accounts


def _next_session(calendar: SettlementCalendar, day: dt.date, mic: str) -> dt.date:
    while not calendar.is_trading_session(day, mic):
        day += dt.timedelta(days=1)
    return day


def _next_weekday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _previous_weekday(day: dt.date) -> dt.date:
    day -= dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _plan_story(shape: BookShape, instruments: list[_Instrument], calendar: SettlementCalendar,
                first: dt.date, last: dt.date) -> _Story:
    """The story's dates. From a 3 June 2024 start they are NVIDIA's and Coca-Cola's real ones."""
    pko = 0
    nvda = shape.instruments - shape.instruments // 2  # the first US instrument
    ko = nvda + 1 if nvda + 1 < len(instruments) else nvda
    mic_nvda, mic_ko = instruments[nvda].mic, instruments[ko].mic
    split_ex = _next_session(calendar, first + dt.timedelta(days=7), mic_nvda)
    split_pay = _previous_weekday(split_ex)
    dividend_ex = _next_session(calendar, first + dt.timedelta(days=11), mic_ko)
    dividend_pay = _next_session(calendar, dividend_ex + dt.timedelta(days=17), mic_ko)
    span = (last - first).days
    pln_ex = _next_session(calendar, first + dt.timedelta(days=span * 45 // 100), "XWAR")
    pln_pay = _next_weekday(pln_ex + dt.timedelta(days=13))
    sale = _next_session(calendar, max(pln_pay + dt.timedelta(days=1),
                                       first + dt.timedelta(days=span * 70 // 100)), "XWAR")
    settles = calendar.settlement_date(sale, "XWAR", "PLN")
    refused = _next_weekday(sale) if _next_weekday(sale) < settles else sale
    story = _Story(accounts=(0, 1, 2), split=(nvda, split_ex, _previous_weekday(split_pay),
                                              split_pay),
                   us_dividend=(ko, dividend_ex, dividend_ex, dividend_pay, "0.485"),
                   pl_dividend=(pko, pln_ex, _next_weekday(pln_ex), pln_pay, "5.47"),
                   sale=(sale, settles), withdrawals=(refused, _next_weekday(settles)))
    if story.withdrawals[1] > last:
        raise ValueError(f"{shape.months} month(s) from {shape.start} is too short for the story")
    polish, american, german = story.accounts
    day_one = _next_session(calendar, first, mic_nvda)
    day_two = _next_session(calendar, day_one + dt.timedelta(days=1), mic_ko)
    for day, account, instrument, side, quantity in (
            (_next_session(calendar, first, "XWAR"), polish, pko, "BUY", 1000),
            (day_one, polish, nvda, "BUY", 20), (day_one, american, nvda, "BUY", 15),
            (day_one, german, nvda, "BUY", 10), (day_two, polish, ko, "BUY", 100),
            (day_two, american, ko, "BUY", 200), (day_two, german, ko, "BUY", 300),
            (_next_session(calendar, split_ex + dt.timedelta(days=7), mic_nvda), american, nvda,
             "SELL", 50),
            (sale, polish, pko, "SELL", 1000)):
        story.trades.setdefault(day, []).append((account, instrument, side, quantity))
    return story


class _Simulation:
    """Draws the trades day by day, streaming trades.csv and prices.csv, tracking positions."""

    def __init__(self, shape: BookShape, rng: random.Random, calendar: SettlementCalendar,
                 instruments: list[_Instrument], accounts: list[_Account], story: _Story | None,
                 first: dt.date, last: dt.date) -> None:
        self.shape, self.rng, self.calendar, self.story = shape, rng, calendar, story
        self.instruments, self.accounts = instruments, accounts
        self.first, self.last = first, last
        self.days = weekdays(first, last)
        self.prices = [instrument.price for instrument in instruments]
        self.currency = [CURRENCIES.index(instrument.currency) for instrument in instruments]
        schedule = {mic: (bps, minimum) for mic, _currency, bps, minimum in FEES}
        self.fee = [schedule.get(instrument.mic, (0, 0)) for instrument in instruments]
        self.counterparty = [COUNTERPARTIES.get(instrument.mic, "STREET")
                             for instrument in instruments]
        # What the hot loop needs of each instrument and account, unpacked once.
        self.static = [(i.isin, i.currency, i.mic, party, bps, minimum, slot) for i, party,
                       (bps, minimum), slot in zip(instruments, self.counterparty, self.fee,
                                                   self.currency, strict=True)]
        self.account_ids = [account.account for account in accounts]
        self.is_house = [account.kind == "HOUSE" for account in accounts]
        self.positions: dict[int, int] = {}  # account index * instruments + instrument index
        self.bought = [0] * (len(accounts) * len(CURRENCIES))  # cost of buys, minor units
        self.next_id = 1
        self.drawn = 0
        self.portfolios = [self._portfolio(account.kind == "HOUSE") for account in accounts]
        story_accounts = set(story.accounts) if story else set()
        self.clients = [index for index, account in enumerate(accounts)
                        if account.kind == "CLIENT" and index not in story_accounts]
        self.houses = [index for index, account in enumerate(accounts) if account.kind == "HOUSE"]

    def _portfolio(self, house: bool) -> list[int]:
        """The instruments an account trades: a few of each market, the first ones favoured."""
        polish = self.shape.instruments - self.shape.instruments // 2
        chosen: list[int] = []
        for offset, size in ((0, polish), (polish, self.shape.instruments - polish)):
            wanted = 1 + int(self.rng.random() * min(10 if house else 4, size))
            while sum(1 for i in chosen if offset <= i < offset + size) < wanted:
                pick = offset + int(size * self.rng.random() ** 2)
                if pick not in chosen:
                    chosen.append(pick)
        return chosen

    # -- the day loop ---------------------------------------------------------------------

    def run(self, folder: Path, progress: Callable[[int], None] | None) -> dict[str, int]:
        mics = sorted({instrument.mic for instrument in self.instruments})
        sessions = {mic: [day for day in self.days if self.calendar.is_trading_session(day, mic)]
                    for mic in mics}
        daily = len(self.instruments) * len(self.days) <= DAILY_PRICE_ROWS_MAX
        month_ends = {(mic, days_of_month[-1]) for mic in mics
                      for days_of_month in _by_month(sessions[mic])}
        open_days = {mic: set(days) for mic, days in sessions.items()}
        active = [day for day in self.days if any(day in days for days in open_days.values())]
        counts = _apportion(self.shape.trades, [600 + int(800 * self.rng.random())
                                                for _ in active])
        cancels = set(self.rng.sample(range(self.shape.trades), self.shape.cancels))
        trade_rows = price_rows = 0
        with _Writer(folder, "trades.csv") as trades, _Writer(folder, "prices.csv") as px:
            for day, count in zip(active, counts, strict=True):
                open_mics = {mic for mic in mics if day in open_days[mic]}
                is_open = [instrument.mic in open_mics for instrument in self.instruments]
                day_text = day.isoformat()
                if self.story and day == self.story.split[1]:
                    self._split(self.story.split[0], 10)
                self._step_prices(is_open)
                trade_rows += self._story_trades(trades, day, day_text)
                trade_rows += self._random_trades(trades, day_text, count, is_open, cancels,
                                                  progress)
                for index, instrument in enumerate(self.instruments):
                    if is_open[index] and (daily or (instrument.mic, day) in month_ends):
                        px.row((day_text, instrument.isin, _money(self.prices[index]),
                                            instrument.currency))
                        price_rows += 1
        if progress is not None and self.drawn % PROGRESS_EVERY_TRADES:
            progress(self.drawn)
        return {"prices.csv": price_rows, "trades.csv": trade_rows}

    def _split(self, instrument: int, ratio: int) -> None:
        count = len(self.instruments)
        for key in self.positions:
            if key % count == instrument:
                self.positions[key] *= ratio
        self.prices[instrument] = max(1, (self.prices[instrument] + ratio // 2) // ratio)

    def _step_prices(self, is_open: list[bool]) -> None:
        """A random walk of at most 2% a session, in whole minor units, never below 0.01."""
        rnd, prices = self.rng.random, self.prices
        for index, price in enumerate(prices):
            if is_open[index]:
                prices[index] = max(1, price * (10_000 + int((rnd() - 0.5) * 400)) // 10_000)

    def _story_trades(self, writer: _Writer, day: dt.date, day_text: str) -> int:
        if self.story is None:
            return 0
        planned = self.story.trades.get(day, [])
        for account, instrument, side, quantity in planned:
            net = self._book(writer, account, instrument, side, quantity,
                             self.prices[instrument], day_text, None, counted=True)
            if side == "SELL" and account == self.story.accounts[0]:
                self.story.sale_proceeds = net
        return len(planned)

    def _random_trades(self, writer: _Writer, day_text: str, count: int, is_open: list[bool],
                       cancels: set[int], progress: Callable[[int], None] | None) -> int:
        """Draw one day's executions; booked inline, as ``_book`` does, for this is the hot loop."""
        rnd, positions, prices, bought = self.rng.random, self.positions, self.prices, self.bought
        width, slots, static = len(self.instruments), len(CURRENCIES), self.static
        account_ids, is_house, portfolios = self.account_ids, self.is_house, self.portfolios
        clients, houses = self.clients, self.houses
        trade_number, drawn = self.next_id, self.drawn
        rows: list[tuple[str, ...]] = []
        cancelled: list[tuple[str, ...]] = []
        for _ in range(count):
            if clients and rnd() >= HOUSE_TRADE_PROBABILITY:
                account = clients[int(rnd() * len(clients))]
            else:
                account = houses[int(rnd() * len(houses))]
            portfolio = portfolios[account]
            instrument = portfolio[int(rnd() * len(portfolio))]
            if not is_open[instrument]:
                account, instrument = self._pick(is_open)
            isin, currency, mic, counterparty, bps, minimum, slot = static[instrument]
            key = account * width + instrument
            held = positions.get(key, 0)
            cancel = drawn in cancels
            price = prices[instrument]
            price = max(1, price + int((rnd() - 0.5) * price * 0.01))
            house = is_house[account]
            if held > 0 and not cancel and rnd() < SELL_PROBABILITY:
                side = "SELL"
                quantity = held if rnd() < 0.3 else 1 + int(rnd() * held)
                positions[key] = held - quantity
            else:
                side = "BUY"
                notional = (50_000 + int(rnd() ** 2 * 2_950_000)) * (10 if house else 1)
                quantity = (notional * (4 if slot == 0 else 1)) // price or 1
                if not cancel:  # a cancelled buy never counts: no later sell may rely on it
                    positions[key] = held + quantity
            gross = quantity * price
            if house:
                fee, commission = 0, "0.00"
            elif rnd() < EXPLICIT_COMMISSION_PROBABILITY:
                fee = 1_000 if gross >= 100_000 else 0
                commission = _money(fee)
            else:
                fee, commission = max(minimum, (2 * gross * bps + 10_000) // 20_000), ""
            if side == "BUY":
                bought[account * slots + slot] += gross + fee
            trade_id = f"T{trade_number:07d}"
            rows.append((trade_id, "NEW", account_ids[account], isin, side, str(quantity),
                         f"{price // 100}.{price % 100:02d}", currency, day_text, mic,
                         counterparty, commission, ""))
            if cancel:
                cancelled.append((trade_id, "CANCEL", account_ids[account], "", "", "", "", "",
                                  day_text, "", "", "", ""))
            trade_number += 1
            drawn += 1
            if progress is not None and drawn % PROGRESS_EVERY_TRADES == 0:
                progress(drawn)
        rows.extend(cancelled)  # each cancel is booked at the end of its trade's own day
        writer.rows(rows)
        self.next_id, self.drawn = trade_number, drawn
        return len(rows)

    def _pick(self, is_open: list[bool]) -> tuple[int, int]:
        """An account (now and then a house) and one of its instruments whose market is open."""
        rnd, clients, houses = self.rng.random, self.clients, self.houses
        while True:
            if not clients or rnd() < HOUSE_TRADE_PROBABILITY:
                account = houses[int(rnd() * len(houses))]
            else:
                account = clients[int(rnd() * len(clients))]
            portfolio = self.portfolios[account]
            instrument = portfolio[int(rnd() * len(portfolio))]
            if is_open[instrument]:
                return account, instrument
            tradable = [index for index in portfolio if is_open[index]]
            if tradable:
                return account, tradable[int(rnd() * len(tradable))]

    def _book(self, writer: _Writer, account: int, instrument: int, side: str, quantity: int,
              price: int, day_text: str, commission: int | None, *, counted: bool) -> int:
        """Write one execution and follow it in positions and costs; returns the net amount."""
        gross = quantity * price
        if commission is None:
            bps, minimum = self.fee[instrument]
            fee = max(minimum, (2 * gross * bps + 10_000) // 20_000) if bps else 0
        else:
            fee = commission
        key = account * len(self.instruments) + instrument
        if side == "BUY":
            self.bought[account * len(CURRENCIES) + self.currency[instrument]] += gross + fee
            if counted:
                self.positions[key] = self.positions.get(key, 0) + quantity
        else:
            self.positions[key] -= quantity
        target = self.instruments[instrument]
        writer.row((f"T{self.next_id:07d}", "NEW", self.accounts[account].account,
                         target.isin, side, str(quantity), _money(price), target.currency,
                         day_text, target.mic, self.counterparty[instrument],
                         "" if commission is None else _money(commission), ""))
        self.next_id += 1
        return gross - fee if side == "SELL" else gross + fee

    # -- cash -----------------------------------------------------------------------------

    def cash_rows(self) -> list[tuple[str, ...]]:
        """Deposits that cover every buy, custody fees, house interest and the story's requests."""
        rows: list[tuple[dt.date, int, int, str, int, str, str]] = []
        deposits: dict[tuple[int, str], int] = {}
        for index, account in enumerate(self.accounts):
            house = account.kind == "HOUSE"
            cushion = 10_000_000 if house else 1_000_000
            for slot, currency in enumerate(CURRENCIES):
                bought = self.bought[index * len(CURRENCIES) + slot]
                if bought or currency == account.base_currency:
                    amount = -(-(bought * 105 // 100 + cushion) // 100_000) * 100_000
                    deposits[index, currency] = amount
                    rows.append((self.first, 0, index, currency, amount, "DEPOSIT",
                                 "house capital" if house else "initial deposit"))
        story_accounts = set(self.story.accounts) if self.story else set()
        month_ends = [days[-1] for days in _by_month(self.days)]
        for index, account in enumerate(self.accounts):
            charged = account.kind == "CLIENT" and index not in story_accounts
            if charged and self.rng.random() < 0.125:
                fee = -1_200 if account.base_currency == "PLN" else -300
                for day in month_ends:
                    rows.append((day, 1, index, account.base_currency, fee, "FEE",
                                 f"custody fee {day:%Y-%m}"))
            if account.kind == "HOUSE":
                rows.append((self.last, 2, index, "PLN", self.rng.randrange(10_000, 500_000),
                             "INTEREST", "interest on the house PLN account"))
        if self.story:
            rows.extend(self._withdrawals(deposits))
        rows.sort(key=lambda row: (row[0], row[1], row[2], CURRENCIES.index(row[3])))
        return [(f"M{number:07d}", self.accounts[index].account, day.isoformat(), currency,
                 _money(amount), kind, description)
                for number, (day, _order, index, currency, amount, kind, description)
                in enumerate(rows, start=1)]

    def _withdrawals(self, deposits: dict[tuple[int, str], int]
                     ) -> list[tuple[dt.date, int, int, str, int, str, str]]:
        """A request above the settled PLN (the sale has not settled), then the same one after.

        The account's PLN moves only in the story: its deposit, the PKO buy (settled long before),
        the PKO dividend (paid before the sale) and the sale itself.
        """
        assert self.story is not None
        account = self.story.accounts[0]
        _instrument, _ex, _record, _pay, amount = self.story.pl_dividend
        gross = 1_000 * int(amount.replace(".", ""))
        net = gross - (gross * 19 + 50) // 100
        settled = deposits[account, "PLN"] - self.bought[account * len(CURRENCIES)] + net
        proceeds = self.story.sale_proceeds
        request = -(-(settled + proceeds // 2) // 10_000) * 10_000
        assert settled < request <= settled + proceeds, "the story's withdrawal lost its point"
        (sale, settles), (refused, granted) = self.story.sale, self.story.withdrawals
        return [(refused, 3, account, "PLN", -request, "WITHDRAWAL",
                 f"refused: the sale of {sale} settles only on {settles}"),
                (granted, 3, account, "PLN", -request, "WITHDRAWAL",
                 "the same request again after the sale settled")]


class _Writer:
    """An open CSV file with its header written."""

    def __init__(self, folder: Path, name: str) -> None:
        self.handle = (folder / name).open("w", encoding="utf-8", newline="")
        writer = csv.writer(self.handle, lineterminator="\n")
        self.row, self.rows = writer.writerow, writer.writerows
        self.row(COLUMNS[name])

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.handle.close()


def _by_month(days: list[dt.date]) -> list[list[dt.date]]:
    months: dict[tuple[int, int], list[dt.date]] = {}
    for day in days:
        months.setdefault((day.year, day.month), []).append(day)
    return list(months.values())


def _apportion(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, exactly (cumulative floors)."""
    whole = sum(weights) or 1
    counts, running, given = [], 0, 0
    for weight in weights:
        running += weight
        share = running * total // whole
        counts.append(share - given)
        given = share
    return counts


def _fx_rows(rng: random.Random, first: dt.date, last: dt.date) -> list[tuple[str, ...]]:
    """USD/PLN and EUR/PLN on the first day and at each month's last weekday (4 decimals)."""
    rates = {"USD": 39_800, "EUR": 43_100}
    days = [first] + [days[-1] for days in _by_month(weekdays(first, last)) if days[-1] != first]
    rows: list[tuple[str, ...]] = []
    for day in days:
        for base in ("USD", "EUR"):
            rates[base] = rates[base] * (10_000 + int((rng.random() - 0.5) * 200)) // 10_000
            rows.append((day.isoformat(), base, "PLN",
                         f"{rates[base] // 10_000}.{rates[base] % 10_000:04d}"))
    return rows


def _corporate_action_rows(story: _Story | None,
                           instruments: list[_Instrument]) -> list[tuple[str, ...]]:
    if story is None:
        return []
    split, ex, record, pay = story.split
    symbol = instruments[split].symbol
    rows = [(f"CA-{symbol}-{ex:%Y}-SPLIT", "SPLIT", instruments[split].isin, ex.isoformat(),
             record.isoformat(), pay.isoformat(), "1", "10", "", "", "", "", "")]
    for instrument, ex, record, pay, amount in (story.us_dividend, story.pl_dividend):
        target = instruments[instrument]
        rows.append((f"CA-{target.symbol}-{ex:%Y%m%d}-DIV", "CASH_DIVIDEND", target.isin,
                     ex.isoformat(), record.isoformat(), pay.isoformat(), "", "", amount,
                     target.currency, "", "", ""))
    return sorted(rows, key=lambda row: (row[3], row[0]))
