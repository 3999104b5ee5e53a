"""An independent, deliberately simple reference model of the book-folder contract.

Written from ``shared/spec/book-folder.md`` alone: it imports nothing from ``zaplecze``. It reads
the CSV files with the ``csv`` module, computes in ``Decimal`` and ``Fraction``, derives
settlement dates from the ``holidays`` package by the contract's rules, and answers the core
reports (positions, cash, realized, dividends) plus the list of rejected rows.

It is slow on purpose: every report replays the whole book from its first day up to the date
asked, from the source rows. No journal, no materialised balances, no pending entries: a
trade counts on trade basis from its trade date and on settlement basis from its settlement
date; a CANCEL removes its trade from every replay as of the cancel date or later ("as if the
trade had never been booked").

Corporate actions supported: every kind of the contract (SPLIT, CASH_DIVIDEND, STOCK_DIVIDEND,
SPINOFF, MERGER, CASH_MERGER) with fractions paid as cash in lieu. Interpretations where the
contract is silent (each marked ``Interpretation`` below):
- corporate-action cash is credited on ``max(pay_date, ex_date)`` (no cash before the event);
- a pending trade's transformed quantity is truncated toward zero at the resulting security's
  quantity scale;
- a SELL larger than the position takes the lots it finds and no more (no short lot);
- a quantity that is not a terminating decimal (a fraction in lieu) is written at 12 places.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction
from functools import cache
from pathlib import Path

import holidays

LOAD_ORDER = ("instruments", "accounts", "fees", "withholding", "prices", "fx", "cash",
              "trades", "corporate_actions")
US_MICS = frozenset({"XNYS", "XNAS", "ARCX", "BATS", "XASE", "IEXG"})
MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "JOD": 3}
CA_KINDS = ("SPLIT", "CASH_DIVIDEND", "STOCK_DIVIDEND", "SPINOFF", "MERGER", "CASH_MERGER")
CASH_KINDS = ("DEPOSIT", "WITHDRAWAL", "FEE", "INTEREST", "ADJUSTMENT")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


# -- numbers -----------------------------------------------------------------------------------

def minor_unit(currency: str) -> int:
    return MINOR_UNITS.get(currency, 2)


def half_up(value: Fraction | Decimal, places: int) -> Decimal:
    """Round half away from zero to ``places`` decimals, exactly."""
    exact = Fraction(value) * 10**places
    whole, rest = divmod(abs(exact.numerator), exact.denominator)
    if 2 * rest >= exact.denominator:
        whole += 1
    return Decimal(whole if exact >= 0 else -whole).scaleb(-places)


def floor_at(value: Fraction, places: int) -> Fraction:
    unit = Fraction(1, 10**places)
    return (value // unit) * unit


def truncate_at(value: Fraction, places: int) -> Fraction:
    return floor_at(value, places) if value >= 0 else -floor_at(-value, places)


def to_decimal(value: Fraction) -> Decimal:
    with localcontext() as context:
        context.prec = 80
        return Decimal(value.numerator) / Decimal(value.denominator)


def money(value: Decimal | Fraction, currency: str) -> str:
    places = minor_unit(currency)
    return format(half_up(value, places), "f")


FRACTION_PLACES = 12


def plain(value: Fraction | Decimal) -> str:
    """A quantity written exactly, without trailing zeros. Interpretation: a quantity that is
    not a terminating decimal (a third of a share paid in lieu after a 2-for-3 ratio) is
    written rounded half-up at 12 decimal places."""
    exact = Fraction(value)
    number = to_decimal(exact) if terminates(exact) else half_up(exact, FRACTION_PLACES)
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def terminates(value: Fraction) -> bool:
    """Whether ``value`` is a terminating decimal (its denominator is 2^a 5^b)."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def number(text: str) -> Decimal | None:
    text = text.strip()
    return Decimal(text) if _NUMBER.match(text) else None


def isin_ok(code: str) -> bool:
    if not _ISIN.match(code):
        return False
    digits = "".join(str(int(char, 36)) for char in code)
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value // 10 + value % 10
    return total % 10 == 0


# -- the calendar --------------------------------------------------------------------------------

@cache
def _market_holidays(mic: str, year: int) -> frozenset[dt.date]:
    code = mic
    if code not in holidays.list_supported_financial():
        code = "XNYS" if mic in US_MICS else mic
    return frozenset(holidays.financial_holidays(code, years=year))


@cache
def _payment_holidays(currency: str, year: int) -> frozenset[dt.date]:
    if currency == "USD":
        return frozenset(holidays.financial_holidays("XFED", years=year))
    if currency == "EUR":
        return frozenset(holidays.financial_holidays("XECB", years=year))
    if currency == "PLN":
        return frozenset(holidays.country_holidays("PL", years=year))
    if currency == "GBP":
        return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))
    return frozenset()


def is_session(day: dt.date, mic: str) -> bool:
    return day.weekday() < 5 and day not in _market_holidays(mic, day.year)


def is_settlement_day(day: dt.date, mic: str, currency: str) -> bool:
    return is_session(day, mic) and day not in _payment_holidays(currency, day.year)


def cycle(trade_date: dt.date, mic: str) -> int:
    if mic in US_MICS:
        return 2 if trade_date < dt.date(2024, 5, 28) else 1
    return 2 if trade_date < dt.date(2027, 10, 11) else 1


def settlement_date(trade_date: dt.date, mic: str, currency: str) -> dt.date:
    day, left = trade_date, cycle(trade_date, mic)
    while left:
        day += dt.timedelta(days=1)
        if is_settlement_day(day, mic, currency):
            left -= 1
    return day


# -- source records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instrument:
    isin: str
    currency: str
    mic: str
    issuer_country: str
    scale: int


@dataclass(frozen=True)
class Account:
    account: str
    kind: str
    tax_residence: str
    lot_method: str


@dataclass
class Trade:
    trade_id: str
    line: int
    order: int
    account: str
    isin: str
    side: str
    quantity: Fraction
    currency: str
    trade_date: dt.date
    settlement_date: dt.date
    gross: Decimal
    commission: Decimal
    cancel_date: dt.date | None = None

    @property
    def signed(self) -> Fraction:
        return self.quantity if self.side == "BUY" else -self.quantity

    @property
    def cash(self) -> Decimal:
        """The account's cash effect: a BUY pays gross + commission, a SELL gets gross − it."""
        if self.side == "BUY":
            return -(self.gross + self.commission)
        return self.gross - self.commission


@dataclass(frozen=True)
class Movement:
    movement_id: str
    line: int
    account: str
    date: dt.date
    currency: str
    amount: Decimal
    kind: str


@dataclass(frozen=True)
class Event:
    event_id: str
    line: int
    kind: str
    isin: str
    ex_date: dt.date
    pay_date: dt.date
    ratio: Fraction = Fraction(0)
    amount: Decimal = Decimal(0)
    currency: str = ""
    new_isin: str = ""
    cost_fraction: Decimal = Decimal(0)
    fraction_price: Decimal = Decimal(0)

    @property
    def cash_date(self) -> dt.date:
        return max(self.pay_date, self.ex_date)  # Interpretation: no cash before the event

    @property
    def resulting(self) -> str:
        return self.new_isin if self.kind in ("SPINOFF", "MERGER") else self.isin


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(physical line, values) of every data row; a BOM, CRLF, quotes and blank lines pass."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        rows = []
        for values in reader:
            if not any(cell.strip() for cell in values):
                continue
            rows.append((reader.line_num, {name: (values[i].strip() if i < len(values) else "")
                                           for i, name in enumerate(header)}))
    return rows


def _date(values: dict[str, str], column: str) -> dt.date:
    try:
        return dt.date.fromisoformat(values.get(column, ""))
    except ValueError:
        raise Rejected("invalid_date") from None


def _decimal(values: dict[str, str], column: str, default: Decimal | None = None) -> Decimal:
    text = values.get(column, "")
    if not text and default is not None:
        return default
    value = number(text)
    if value is None:
        raise Rejected("invalid_number")
    return value


def _weekday(day: dt.date) -> dt.date:
    if day.weekday() >= 5:
        raise Rejected("not_a_business_day")
    return day


def _fits(value: Decimal | Fraction, places: int) -> bool:
    return Fraction(value) * 10**places == int(Fraction(value) * 10**places)


# -- lots ----------------------------------------------------------------------------------------

@dataclass
class Lot:
    acquired: dt.date
    order: int
    quantity: Fraction
    cost: Decimal


def sell_order(lots: list[Lot], method: str) -> list[Lot]:
    by_age = sorted(lots, key=lambda lot: (lot.acquired, lot.order))
    if method == "LIFO":
        return by_age[::-1]
    if method == "HIFO":
        return sorted(by_age, key=lambda lot: -(Fraction(lot.cost) / lot.quantity))
    return by_age


def take(lots: list[Lot], quantity: Fraction, method: str, currency: str) -> Decimal:
    """Close ``quantity`` from the lots in sell order; the cost taken (partial: half-up)."""
    left, taken_cost = quantity, Decimal(0)
    for lot in sell_order(lots, method):
        if left <= 0:
            break
        part = min(lot.quantity, left)
        cost = lot.cost if part == lot.quantity else half_up(
            Fraction(lot.cost) * part / lot.quantity, minor_unit(currency))
        lot.quantity -= part
        lot.cost -= cost
        taken_cost += cost
        left -= part
    lots[:] = [lot for lot in lots if lot.quantity != 0]
    return taken_cost


# -- one replay ----------------------------------------------------------------------------------

@dataclass
class State:
    """The book as it stood at the end of one day, rebuilt from the source rows."""

    position: dict[tuple[str, str], Fraction] = field(default_factory=lambda: defaultdict(
        Fraction))
    lots: dict[tuple[str, str], list[Lot]] = field(default_factory=lambda: defaultdict(list))
    realized: list[dict[str, str]] = field(default_factory=list)
    dividends: list[dict[str, str]] = field(default_factory=list)
    ca_cash: list[tuple[dt.date, str, str, Decimal]] = field(default_factory=list)
    # per pending trade: its quantities as transformed by the events since its trade date
    transformed: dict[str, dict[str, Fraction]] = field(default_factory=dict)
    order: int = 0


class ReferenceBook:
    """A book folder, loaded once; reports replay it from the start as of any date."""

    def __init__(self, folder: Path) -> None:
        self.instruments: dict[str, Instrument] = {}
        self.accounts: dict[str, Account] = {}
        self.fees: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self.withholding: dict[tuple[str, str], Decimal] = {}
        self.movements: list[Movement] = []
        self.withdrawals: list[Movement] = []
        self.trades: dict[str, Trade] = {}
        self.events: list[Event] = []
        self.rejected: list[tuple[str, int, str]] = []
        self._cache: dict[dt.date, State] = {}
        for stem in LOAD_ORDER:
            path = folder / f"{stem}.csv"
            if path.exists():
                getattr(self, f"_read_{stem}")(path)
        self._decide_withdrawals()
        self.rejected.sort()

    # -- loading -------------------------------------------------------------------------------

    def _each(self, path: Path, read: object) -> None:
        seen: dict[str, dict[str, str]] = {}
        for line, values in read_rows(path):
            try:
                read(line, values, seen)  # type: ignore[operator]
            except Rejected as rejected:
                self.rejected.append((path.name, line, rejected.reason))

    @staticmethod
    def _once(seen: dict[str, dict[str, str]], key: str, values: dict[str, str]) -> bool:
        """True for a key's first row; False for an identical repeat; rejects a conflict."""
        if key in seen:
            if seen[key] != values:
                raise Rejected("conflicting_duplicate_id")
            return False
        seen[key] = values
        return True

    def _read_instruments(self, path: Path) -> None:
        def read(line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
            isin = values.get("isin", "")
            if not isin_ok(isin):
                raise Rejected("invalid_isin")
            if not self._once(seen, isin, values):
                return
            scale = values.get("quantity_scale") or "0"
            self.instruments[isin] = Instrument(isin, values["currency"], values["mic"],
                                                values.get("issuer_country") or isin[:2],
                                                int(scale))
        self._each(path, read)

    def _read_accounts(self, path: Path) -> None:
        def read(line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
            if not self._once(seen, values["account"], values):
                return
            self.accounts[values["account"]] = Account(values["account"], values["kind"],
                                                       values["tax_residence"],
                                                       values.get("lot_method") or "FIFO")
        self._each(path, read)

    def _read_fees(self, path: Path) -> None:
        for _line, values in read_rows(path):
            self.fees[values["mic"], values["currency"]] = (Decimal(values["rate_bps"]),
                                                            Decimal(values["minimum"]))

    def _read_withholding(self, path: Path) -> None:
        for _line, values in read_rows(path):
            self.withholding[values["issuer_country"], values["tax_residence"]] = Decimal(
                values["rate"])

    def _read_prices(self, path: Path) -> None:
        """Prices value positions; none of the core reports reads them."""

    def _read_fx(self, path: Path) -> None:
        """Rates convert currencies; none of the core reports reads them."""

    def _read_cash(self, path: Path) -> None:
        def read(line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
            movement_id = values.get("movement_id", "")
            if not movement_id:
                raise Rejected("missing_required_value")
            if values.get("account") not in self.accounts:
                raise Rejected("unknown_account")
            day = _weekday(_date(values, "date"))
            amount = _decimal(values, "amount")
            kind = values.get("kind", "")
            if kind not in CASH_KINDS:
                raise Rejected("invalid_enum_value")
            if not _fits(amount, minor_unit(values["currency"])):
                raise Rejected("amount_exceeds_scale")
            if amount == 0:
                raise Rejected("zero_amount")
            if (kind == "DEPOSIT" and amount < 0) or (kind == "WITHDRAWAL" and amount > 0):
                raise Rejected("amount_sign_contradicts_kind")
            if not self._once(seen, movement_id, values):
                return
            movement = Movement(movement_id, line, values["account"], day, values["currency"],
                                amount, kind)
            (self.withdrawals if kind == "WITHDRAWAL" else self.movements).append(movement)
        self._each(path, read)

    def _read_trades(self, path: Path) -> None:
        cancels: dict[str, dict[str, str]] = {}

        def read(line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
            action = values.get("action") or "NEW"
            if action == "CANCEL":
                self._cancel(values, cancels)
            elif action == "NEW":
                self._new(line, values, seen)
            else:
                raise Rejected("invalid_enum_value")
        self._each(path, read)

    def _new(self, line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
        trade_id = values.get("trade_id", "")
        if trade_id in seen:
            self._once(seen, trade_id, values)
            return
        isin = values.get("isin", "")
        if not isin_ok(isin):
            raise Rejected("invalid_isin")
        instrument = self.instruments.get(isin)
        if instrument is None:
            raise Rejected("unknown_instrument")
        account = values.get("account", "")
        if account not in self.accounts:
            raise Rejected("unknown_account")
        side = values.get("side", "")
        if side not in ("BUY", "SELL"):
            raise Rejected("invalid_enum_value")
        quantity = _decimal(values, "quantity")
        if quantity <= 0:
            raise Rejected("non_positive_quantity")
        if not _fits(quantity, instrument.scale):
            raise Rejected("quantity_exceeds_scale")
        price = _decimal(values, "price")
        if price <= 0:
            raise Rejected("non_positive_price")
        if values.get("currency") != instrument.currency:
            raise Rejected("currency_mismatch")
        trade_date = _date(values, "trade_date")
        if not is_session(trade_date, instrument.mic):
            raise Rejected("not_a_business_day")
        currency = instrument.currency
        if values.get("settlement_date"):
            settles = _date(values, "settlement_date")
            if settles < trade_date:
                raise Rejected("settlement_date_before_trade_date")
            if not is_settlement_day(settles, instrument.mic, currency):
                raise Rejected("not_a_business_day")
        else:
            settles = settlement_date(trade_date, instrument.mic, currency)
        places = minor_unit(currency)
        gross = half_up(quantity * price, places)
        if values.get("commission"):
            commission = half_up(_decimal(values, "commission"), places)
        else:
            rate, minimum = self.fees.get((instrument.mic, currency), (Decimal(0), Decimal(0)))
            commission = max(minimum, half_up(gross * rate / 10000, places)) \
                if (instrument.mic, currency) in self.fees else Decimal(0)
        seen[trade_id] = values
        self.trades[trade_id] = Trade(trade_id, line, len(self.trades), account, isin, side,
                                      Fraction(quantity), currency, trade_date, settles, gross,
                                      commission)

    def _cancel(self, values: dict[str, str], cancels: dict[str, dict[str, str]]) -> None:
        trade_id = values.get("trade_id", "")
        if values.get("account") not in self.accounts:
            raise Rejected("unknown_account")
        day = _weekday(_date(values, "trade_date"))
        if trade_id in cancels:
            self._once(cancels, trade_id, values)
            return
        trade = self.trades.get(trade_id)
        if trade is None:
            raise Rejected("unknown_trade")
        if trade.account != values["account"]:
            raise Rejected("cancel_account_mismatch")
        if day < trade.trade_date:
            raise Rejected("cancel_before_trade_date")
        if day >= trade.settlement_date:
            raise Rejected("trade_already_settled")
        cancels[trade_id] = values
        trade.cancel_date = day

    def _read_corporate_actions(self, path: Path) -> None:
        def read(line: int, values: dict[str, str], seen: dict[str, dict[str, str]]) -> None:
            kind = values.get("kind", "")
            if kind not in CA_KINDS:
                raise Rejected("invalid_enum_value")
            isin = values.get("isin", "")
            if not isin_ok(isin):
                raise Rejected("invalid_isin")
            if isin not in self.instruments:
                raise Rejected("unknown_instrument")
            ex_date = _weekday(_date(values, "ex_date"))
            pay_date = _weekday(_date(values, "pay_date"))
            extra: dict[str, object] = {}
            if kind in ("SPLIT", "STOCK_DIVIDEND", "SPINOFF", "MERGER"):
                old, new = _decimal(values, "ratio_old"), _decimal(values, "ratio_new")
                if old <= 0 or new <= 0:
                    raise Rejected("invalid_ratio")
                extra["ratio"] = Fraction(new) / Fraction(old)
                extra["fraction_price"] = _decimal(values, "fraction_price", Decimal(0))
            if kind in ("CASH_DIVIDEND", "CASH_MERGER"):
                extra["amount"] = _decimal(values, "amount")
                extra["currency"] = values.get("currency", "")
            if kind in ("SPINOFF", "MERGER"):
                if values.get("new_isin") not in self.instruments:
                    raise Rejected("unknown_instrument")
                extra["new_isin"] = values["new_isin"]
            if kind == "SPINOFF":
                extra["cost_fraction"] = _decimal(values, "cost_fraction")
            if not self._once(seen, values["event_id"], values):
                return
            self.events.append(Event(values["event_id"], line, kind, isin, ex_date, pay_date,
                                     **extra))  # type: ignore[arg-type]
        self._each(path, read)

    # -- withdrawals ----------------------------------------------------------------------------

    def _decide_withdrawals(self) -> None:
        """In value-date order (file order within a date), each against the settled cash at the
        end of its value date after everything else of that date and the withdrawals granted
        before it; refused ones book nothing."""
        requests = sorted(self.withdrawals, key=lambda m: (m.date, m.line))
        self.withdrawals = []
        for request in requests:
            self._cache.clear()
            settled = self.cash_balances(request.date, "settlement").get(
                (request.account, request.currency), Decimal(0))
            if -request.amount > settled:
                self.rejected.append(("cash.csv", request.line, "insufficient_settled_cash"))
            else:
                self.withdrawals.append(request)
        self._cache.clear()

    # -- the replay -----------------------------------------------------------------------------

    def _live(self, as_of: dt.date) -> list[Trade]:
        """Trades dated up to ``as_of`` and not cancelled by then, in file order."""
        return [trade for trade in self.trades.values() if trade.trade_date <= as_of
                and (trade.cancel_date is None or trade.cancel_date > as_of)]

    def state(self, as_of: dt.date) -> State:
        if as_of not in self._cache:
            self._cache[as_of] = self._replay(as_of)
        return self._cache[as_of]

    def _replay(self, as_of: dt.date) -> State:
        state = State()
        timeline: list[tuple[tuple[dt.date, int, int], Trade | Event]] = []
        for trade in self._live(as_of):
            timeline.append(((trade.trade_date, 1, trade.order), trade))
        for index, event in enumerate(self.events):
            if event.ex_date <= as_of:
                timeline.append(((event.ex_date, 0, index), event))
        timeline.sort(key=lambda item: item[0])
        for _key, item in timeline:
            if isinstance(item, Trade):
                self._trade(state, item)
            else:
                self._event(state, item, as_of)
        return state

    def _trade(self, state: State, trade: Trade) -> None:
        key = (trade.account, trade.isin)
        state.position[key] += trade.signed
        state.transformed[trade.trade_id] = {trade.isin: trade.signed}
        method = self.accounts[trade.account].lot_method
        lots = state.lots[key]
        if trade.side == "BUY":
            cost = trade.gross + trade.commission
            if method == "AVERAGE" and lots:
                lots[0].quantity += trade.quantity
                lots[0].cost += cost
            else:
                state.order += 1
                lots.append(Lot(trade.trade_date, state.order, trade.quantity, cost))
            return
        cost = take(lots, trade.quantity, method, trade.currency)
        proceeds = trade.gross - trade.commission
        state.realized.append(self._realized_row(trade.account, trade.trade_id, trade.isin,
                                                 trade.trade_date, trade.quantity, proceeds,
                                                 cost, trade.currency))

    @staticmethod
    def _realized_row(account: str, trade_id: str, isin: str, day: dt.date, quantity: Fraction,
                      proceeds: Decimal, cost: Decimal, currency: str) -> dict[str, str]:
        return {"account": account, "trade_id": trade_id, "isin": isin,
                "close_date": day.isoformat(), "quantity": plain(quantity),
                "proceeds": money(proceeds, currency), "cost": money(cost, currency),
                "gain": money(proceeds - cost, currency), "currency": currency}

    def _event(self, state: State, event: Event, as_of: dt.date) -> None:
        entitled = {account: quantity for (account, isin), quantity in state.position.items()
                    if isin == event.isin and quantity > 0}
        self._transform_pending(state, event)
        for account in sorted(entitled):
            quantity = entitled[account]
            if event.kind == "CASH_DIVIDEND":
                self._dividend(state, event, account, quantity)
            elif event.kind == "CASH_MERGER":
                self._cash_merger(state, event, account, quantity)
            else:
                self._ratio_event(state, event, account, quantity)

    def _transform_pending(self, state: State, event: Event) -> None:
        """Trades pending across the ex date count, until they settle, as their transformed
        quantities (settlement basis = trade basis less these)."""
        if event.kind == "CASH_DIVIDEND":
            return
        eve = event.ex_date - dt.timedelta(days=1)
        for trade_id, moves in state.transformed.items():
            trade = self.trades[trade_id]
            if trade.settlement_date <= eve or event.isin not in moves:
                continue
            held = moves[event.isin]
            result = self.instruments[event.resulting].scale
            if event.kind == "SPLIT":
                moves[event.isin] = truncate_at(held * event.ratio, result)
            elif event.kind == "STOCK_DIVIDEND":
                moves[event.isin] = held + truncate_at(held * event.ratio, result)
            elif event.kind == "SPINOFF":
                moves[event.new_isin] = moves.get(event.new_isin, Fraction(0)) + truncate_at(
                    held * event.ratio, result)
            elif event.kind == "MERGER":
                moves[event.new_isin] = moves.get(event.new_isin, Fraction(0)) + truncate_at(
                    held * event.ratio, result)
                moves[event.isin] = Fraction(0)
            elif event.kind == "CASH_MERGER":
                moves[event.isin] = Fraction(0)

    def _dividend(self, state: State, event: Event, account: str, quantity: Fraction) -> None:
        instrument = self.instruments[event.isin]
        places = minor_unit(event.currency)
        gross = half_up(quantity * Fraction(event.amount), places)
        residence = self.accounts[account].tax_residence
        rate = self.withholding.get((instrument.issuer_country, residence),
                                    self.withholding.get((instrument.issuer_country, "*"),
                                                         Decimal(0)))
        withheld = half_up(gross * rate, places)
        state.dividends.append({
            "account": account, "event_id": event.event_id, "isin": event.isin,
            "pay_date": event.pay_date.isoformat(), "quantity": plain(quantity),
            "gross": money(gross, event.currency), "withholding": money(withheld, event.currency),
            "net": money(gross - withheld, event.currency), "currency": event.currency})
        state.ca_cash.append((event.cash_date, account, event.currency, gross - withheld))

    def _cash_merger(self, state: State, event: Event, account: str, quantity: Fraction) -> None:
        key = (account, event.isin)
        cost = sum((lot.cost for lot in state.lots.pop(key, [])), Decimal(0))
        proceeds = half_up(quantity * Fraction(event.amount), minor_unit(event.currency))
        state.position[key] = Fraction(0)
        state.realized.append(self._realized_row(account, event.event_id, event.isin,
                                                 event.ex_date, quantity, proceeds, cost,
                                                 event.currency))
        state.ca_cash.append((event.cash_date, account, event.currency, proceeds))

    def _ratio_event(self, state: State, event: Event, account: str, quantity: Fraction) -> None:
        method = self.accounts[account].lot_method
        old_key, new_key = (account, event.isin), (account, event.resulting)
        old_lots = state.lots.get(old_key, [])
        if event.kind == "SPLIT":
            state.position[old_key] = quantity * event.ratio
            for lot in old_lots:
                lot.quantity *= event.ratio
        elif event.kind == "STOCK_DIVIDEND":
            state.position[old_key] = quantity * (1 + event.ratio)
            for lot in old_lots:
                lot.quantity *= 1 + event.ratio
        elif event.kind == "SPINOFF":
            currency = self.instruments[event.isin].currency
            state.position[new_key] += quantity * event.ratio
            for lot in old_lots:
                moved = half_up(lot.cost * event.cost_fraction, minor_unit(currency))
                lot.cost -= moved
                self._add_lot(state, new_key, method,
                              Lot(lot.acquired, lot.order, lot.quantity * event.ratio, moved))
        elif event.kind == "MERGER":
            state.position[old_key] = Fraction(0)
            state.position[new_key] += quantity * event.ratio
            for lot in state.lots.pop(old_key, []):
                self._add_lot(state, new_key, method,
                              Lot(lot.acquired, lot.order, lot.quantity * event.ratio, lot.cost))
        self._cash_in_lieu(state, event, account, method)

    @staticmethod
    def _add_lot(state: State, key: tuple[str, str], method: str, lot: Lot) -> None:
        lots = state.lots[key]
        if method == "AVERAGE" and lots:
            lots[0].quantity += lot.quantity
            lots[0].cost += lot.cost
        else:
            lots.append(lot)

    def _cash_in_lieu(self, state: State, event: Event, account: str, method: str) -> None:
        """The fraction of the account's whole holding of the resulting security below its
        quantity scale is sold, from its lots in sell order, at ``fraction_price``."""
        instrument = self.instruments[event.resulting]
        key = (account, event.resulting)
        total = state.position[key]
        fraction = total - floor_at(total, instrument.scale)
        if fraction == 0:
            return
        state.position[key] = total - fraction
        cost = take(state.lots[key], fraction, method, instrument.currency)
        proceeds = half_up(fraction * Fraction(event.fraction_price),
                           minor_unit(instrument.currency))
        state.realized.append(self._realized_row(account, event.event_id, event.resulting,
                                                 event.ex_date, fraction, proceeds, cost,
                                                 instrument.currency))
        state.ca_cash.append((event.cash_date, account, instrument.currency, proceeds))

    # -- reports --------------------------------------------------------------------------------

    def _pending(self, as_of: dt.date) -> list[Trade]:
        return [trade for trade in self._live(as_of) if trade.settlement_date > as_of]

    def positions(self, as_of: dt.date, basis: str) -> list[dict[str, str]]:
        state = self.state(as_of)
        quantities: dict[tuple[str, str], Fraction] = defaultdict(Fraction, state.position)
        if basis == "settlement":
            for trade in self._pending(as_of):
                for isin, moved in state.transformed[trade.trade_id].items():
                    quantities[trade.account, isin] -= moved
        rows = []
        for (account, isin), quantity in sorted(quantities.items()):
            if quantity == 0:
                continue
            instrument = self.instruments[isin]
            row = {"account": account, "isin": isin, "quantity": plain(quantity)}
            if basis == "trade":
                cost = sum((lot.cost for lot in state.lots.get((account, isin), [])),
                           Decimal(0))
                row["cost_basis"] = money(cost, instrument.currency)
            row["currency"] = instrument.currency
            rows.append(row)
        return rows

    def cash_balances(self, as_of: dt.date, basis: str) -> dict[tuple[str, str], Decimal]:
        balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for movement in self.movements + self.withdrawals:
            if movement.date <= as_of:
                balances[movement.account, movement.currency] += movement.amount
        if basis == "trade":
            for trade in self._live(as_of):
                balances[trade.account, trade.currency] += trade.cash
        else:
            for trade in self.trades.values():
                if trade.cancel_date is None and trade.settlement_date <= as_of:
                    balances[trade.account, trade.currency] += trade.cash
        for day, account, currency, amount in self.state(as_of).ca_cash:
            if day <= as_of:
                balances[account, currency] += amount
        return balances

    def cash(self, as_of: dt.date, basis: str) -> list[dict[str, str]]:
        return [{"account": account, "currency": currency, "balance": money(amount, currency)}
                for (account, currency), amount in sorted(self.cash_balances(as_of,
                                                                             basis).items())
                if amount != 0]

    def realized(self, start: dt.date, end: dt.date) -> list[dict[str, str]]:
        rows = [row for row in self.state(end).realized
                if start.isoformat() <= row["close_date"] <= end.isoformat()]
        return sorted(rows, key=lambda r: (r["account"], r["close_date"], r["trade_id"]))

    def dividends(self, start: dt.date, end: dt.date, through: dt.date) -> list[dict[str, str]]:
        """Dividend rows paid in [start, end], of the events applied by ``through``."""
        rows = [row for row in self.state(max(end, through)).dividends
                if start.isoformat() <= row["pay_date"] <= end.isoformat()]
        return sorted(rows, key=lambda r: (r["account"], r["pay_date"], r["event_id"]))

    def first_date(self) -> dt.date:
        days = [t.trade_date for t in self.trades.values()]
        days += [m.date for m in self.movements + self.withdrawals]
        days += [e.ex_date for e in self.events]
        return min(days)
