"""What the desk holds, as the workbench asks for it: positions and cash as of a date for one
account, a desk's accounts or the whole firm; lots; an account's journal activity; prices;
accounts and instruments; the front office's inventory.

One account's figures must come back in a few milliseconds on a book of a million trades, so
nothing here folds the whole journal for one account: an account's balances are summed from its
own postings only (found through the (asset, GL account) index, the assets being those the
materialised ``balances`` table lists for the account), and its lots are replayed from its own
trades. The whole firm's balances are the materialised balances less what was posted after the
date. Every figure equals the fold ``repo.balances_as_of`` gives (the tests compare them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import iso4217
from sqlalchemy import Connection

from zaplecze.accounting.lots import LotBook, replay
from zaplecze.kernel.money import (
    at_scale,
    currency_scale,
    decimal_of,
    is_currency,
    plain,
    round_down,
    round_half_up,
)
from zaplecze.ledger import accounts as gl
from zaplecze.refdata.model import Instrument, LotMethod, RefData
from zaplecze.reports import builders
from zaplecze.services import lot_books as lot_books_service
from zaplecze.store import repo

Balances = dict[tuple[str, str], int]
Row = dict[str, Any]

OWNER_PREFIXES = ("client", "house")
# Beyond this many accounts a desk's figures are the firm's, filtered: one pass over the journal
# is then cheaper than an index probe per account.
ACCOUNTS_PROBED_MAX = 100
CHUNK = 500  # values per IN (...) list: well under either database's limit
# Up to this many postings dated after the date asked for, an account's balances are its
# materialised ones less its later postings; beyond, its postings are summed up to the date.
LATER_POSTINGS_MAX = 20_000


def _marks(connection: Connection, count: int) -> str:
    return ", ".join([repo.mark(connection)] * count)


def _chunks(values: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _owner_accounts(accounts: Iterable[str]) -> list[str]:
    return sorted(f"{prefix}:{account}" for account in accounts for prefix in OWNER_PREFIXES)


# --- balances ------------------------------------------------------------------------------

def balances(connection: Connection, as_of: dt.date, basis: str,
             accounts: Collection[str] | None = None) -> Balances:
    """Σ postings per (owner GL account, asset) of clients and the house as of the end of
    ``as_of``: of ``accounts`` only, or of every account (None).

    When few postings are dated after ``as_of`` (the usual question: today, yesterday), the
    materialised balances less those later postings; otherwise the postings up to ``as_of``
    summed: for a few accounts through the (asset, GL account) index, over every asset there
    is (the materialised table does not list an asset that came and went within one batch)."""
    probe = accounts is not None and len(accounts) <= ACCOUNTS_PROBED_MAX
    owners = _owner_accounts(accounts) if probe and accounts is not None else None
    if owners == []:
        return {}
    if _later_postings(connection, as_of) <= LATER_POSTINGS_MAX:
        found = _stored_less_later(connection, as_of, basis, owners)
    elif owners is not None:
        return _summed(connection, as_of, basis, owners)
    else:
        found = repo.balances_as_of(connection, as_of, basis, OWNER_PREFIXES)
    if accounts is None or owners is not None:
        return found
    wanted = set(_owner_accounts(accounts))
    return {key: amount for key, amount in found.items() if key[0] in wanted}


def _later_postings(connection: Connection, as_of: dt.date) -> int:
    m = repo.mark(connection)
    return int(connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM postings WHERE business_date > {m} "
        f"LIMIT {LATER_POSTINGS_MAX + 1}) later", (as_of.isoformat(),)).scalar() or 0)


def _owners_clause(connection: Connection, owners: Sequence[str] | None,
                   ) -> tuple[str, tuple[str, ...]]:
    """``owners`` named, or (None) every client and house GL account."""
    m = repo.mark(connection)
    if owners is None:
        return (" OR ".join(f"gl_account LIKE {m}" for _ in OWNER_PREFIXES),
                tuple(f"{prefix}:%" for prefix in OWNER_PREFIXES))
    return f"gl_account IN ({_marks(connection, len(owners))})", tuple(owners)


def _stored_less_later(connection: Connection, as_of: dt.date, basis: str,
                       owners: Sequence[str] | None) -> Balances:
    m = repo.mark(connection)
    which, named = _owners_clause(connection, owners)
    result: Balances = {}
    for account, asset, amount in connection.exec_driver_sql(
            f"SELECT gl_account, asset, amount FROM balances WHERE ({which}) AND basis = {m}",
            (*named, "T" if basis == "trade" else "S")):
        result[(str(account), str(asset))] = int(amount)
    # SQLite left to itself walks the (asset, GL account) index for the grouping: the date
    # index finds the few later postings at once.
    hint = " INDEXED BY ix_postings_date" if connection.dialect.name == "sqlite" else ""
    for account, asset, amount in connection.exec_driver_sql(
            f"SELECT gl_account, asset, SUM(amount) FROM postings{hint} WHERE business_date > "
            f"{m} AND ({which}) AND basis IN ({m}, {m}) GROUP BY gl_account, asset",
            (as_of.isoformat(), *named, *repo.basis_values(basis))):
        key = (str(account), str(asset))
        result[key] = result.get(key, 0) - int(amount)
    return {key: amount for key, amount in result.items() if amount}


def _summed(connection: Connection, as_of: dt.date, basis: str,
            owners: Sequence[str]) -> Balances:
    m = repo.mark(connection)
    values = repo.basis_values(basis)
    result: Balances = {}
    for chunk in _chunks(asset_universe(connection)):
        for account, asset, amount in connection.exec_driver_sql(
                f"SELECT gl_account, asset, SUM(amount) FROM postings WHERE asset IN "
                f"({_marks(connection, len(chunk))}) AND gl_account IN "
                f"({_marks(connection, len(owners))}) AND basis IN ({m}, {m}) AND "
                f"business_date <= {m} GROUP BY gl_account, asset",
                (*chunk, *owners, *values, as_of.isoformat())):
            if int(amount):
                result[(str(account), str(asset))] = int(amount)
    return result


def asset_universe(connection: Connection) -> list[str]:
    """Every asset a posting can name: the instruments and the ISO 4217 currencies."""
    isins = [str(row[0]) for row in connection.exec_driver_sql("SELECT isin FROM instruments")]
    return sorted({*isins, *(currency.code for currency in iso4217.Currency)})


# --- reference data ------------------------------------------------------------------------

INSTRUMENT_COLUMNS = ("isin", "symbol", "name", "kind", "currency", "mic", "issuer_country",
                      "quantity_scale")
ACCOUNT_COLUMNS = ("account", "name", "kind", "base_currency", "tax_residence", "lot_method",
                   "desk")


def instruments_of(connection: Connection, isins: Iterable[str]) -> dict[str, Instrument]:
    """The named instruments (unknown names and currencies are left out)."""
    wanted = sorted({isin for isin in isins if not is_currency(isin)})
    found: dict[str, Instrument] = {}
    for chunk in _chunks(wanted):
        for row in connection.exec_driver_sql(
                f"SELECT {', '.join(INSTRUMENT_COLUMNS)} FROM instruments WHERE isin IN "
                f"({_marks(connection, len(chunk))})", tuple(chunk)):
            found[row[0]] = Instrument(*row)
    return found


def instrument_rows(connection: Connection, isin: str | None = None) -> list[Row]:
    m = repo.mark(connection)
    where, params = (f" WHERE isin = {m}", (isin,)) if isin else ("", ())
    return [dict(row) for row in connection.exec_driver_sql(
        f"SELECT {', '.join(INSTRUMENT_COLUMNS)} FROM instruments{where} ORDER BY isin",
        params).mappings()]


def account_rows(connection: Connection, accounts: Collection[str] | None = None,
                 account: str | None = None) -> list[Row]:
    """Accounts with their desks ("" for none): all, those of ``accounts``, or one."""
    m = repo.mark(connection)
    where: str = ""
    params: tuple[str, ...] = ()
    if account:
        where, params = f" WHERE a.account = {m}", (account,)
    elif accounts is not None and len(accounts) <= ACCOUNTS_PROBED_MAX:
        if not accounts:
            return []
        params = tuple(sorted(accounts))
        where = f" WHERE a.account IN ({_marks(connection, len(params))})"
    rows = [dict(row) for row in connection.exec_driver_sql(
        "SELECT a.account, a.name, a.kind, a.base_currency, a.tax_residence, a.lot_method, "
        "COALESCE(d.desk, '') AS desk FROM accounts a LEFT JOIN account_desks d "
        f"ON d.account = a.account{where} ORDER BY a.account", params).mappings()]
    if accounts is not None:
        rows = [row for row in rows if row["account"] in accounts]
    return rows


# --- positions, cash, lots -----------------------------------------------------------------

def lot_books(connection: Connection, as_of: dt.date,
              accounts: Collection[str] | None = None) -> dict[str, LotBook]:
    """``lot_books.lot_books`` for some accounts only: their own trades, replayed."""
    if accounts is None or len(accounts) > ACCOUNTS_PROBED_MAX:
        books = lot_books_service.lot_books(connection, as_of)
        return books if accounts is None else {a: b for a, b in books.items() if a in accounts}
    wanted = sorted(accounts)
    if not wanted:
        return {}
    by_account = lot_books_service.trades_as_of(
        connection, as_of,
        f"t.account IN ({_marks(connection, len(wanted))}) AND "
        f"t.trade_date <= {repo.mark(connection)}", (*wanted, as_of.isoformat()))
    if not by_account:
        return {}
    actions = lot_books_service.effective_actions(connection, as_of)
    isins = {t.isin for trades in by_account.values() for t in trades}
    isins |= {e.isin for e in actions} | {e.new_isin for e in actions if e.new_isin}
    instruments = instruments_of(connection, isins)
    methods = {row["account"]: LotMethod(row["lot_method"])
               for row in account_rows(connection, by_account)}
    return {account: replay(account, methods[account], instruments, trades, actions)
            for account, trades in by_account.items()}


def positions(connection: Connection, as_of: dt.date, basis: str,
              accounts: Collection[str] | None = None) -> list[Row]:
    """The positions report's rows (cost basis on the trade basis) for ``accounts`` (None:
    every account)."""
    held = balances(connection, as_of, basis, accounts)
    books = lot_books(connection, as_of, accounts) if basis == "trade" and held else None
    refdata = RefData(instruments=instruments_of(connection, {a for _, a in held}))
    return builders.positions(held, refdata, books)


def cash(connection: Connection, as_of: dt.date, basis: str,
         accounts: Collection[str] | None = None) -> list[Row]:
    return builders.cash(balances(connection, as_of, basis, accounts))


def lots(connection: Connection, account: str, as_of: dt.date) -> list[Row]:
    """One account's open lots as of ``as_of``, in sell order's raw form (by ISIN, then
    acquisition)."""
    book = lot_books(connection, as_of, [account]).get(account)
    if book is None:
        return []
    rows = []
    for isin, open_lots in sorted(book.lots.items()):
        instrument = book.instruments[isin]
        scale = currency_scale(instrument.currency)
        for lot in sorted(open_lots, key=lambda lot: (lot.acquired, lot.order)):
            if lot.quantity == 0:
                continue
            rows.append({"account": account, "isin": isin, "acquired": lot.acquired.isoformat(),
                         "quantity": plain(round_down(Fraction(lot.quantity),
                                                      instrument.quantity_scale)),
                         "cost": at_scale(lot.cost, scale), "currency": instrument.currency})
    return rows


# --- prices and inventory ------------------------------------------------------------------

PRICE_SORTABLE = ("business_date", "isin")


def prices(connection: Connection, *, isin: str | None, start: dt.date | None,
           end: dt.date | None, sort: str, descending: bool, limit: int,
           offset: int) -> tuple[list[Row], int]:
    """Closing prices, filtered and paged in the database (a book has many)."""
    assert sort in PRICE_SORTABLE
    m = repo.mark(connection)
    where: list[str] = []
    params: list[str] = []
    for clause, value in ((f"isin = {m}", isin),
                          (f"business_date >= {m}", start.isoformat() if start else None),
                          (f"business_date <= {m}", end.isoformat() if end else None)):
        if value:
            where.append(clause)
            params.append(value)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    total = connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM prices{condition}", tuple(params)).scalar() or 0
    direction = "DESC" if descending else "ASC"
    other = "isin" if sort == "business_date" else "business_date"
    rows = connection.exec_driver_sql(
        f"SELECT business_date, isin, close, currency FROM prices{condition} ORDER BY "
        f"{sort} {direction}, {other} {direction} LIMIT {int(limit)} OFFSET {int(offset)}",
        tuple(params)).mappings().all()
    return [dict(row) for row in rows], int(total)


def last_prices(connection: Connection, as_of: dt.date,
                isin: str | None = None) -> dict[str, Row]:
    """Each security's last close on or before ``as_of``."""
    m = repo.mark(connection)
    only, params = (f" AND isin = {m}", (isin,)) if isin else ("", ())
    found = connection.exec_driver_sql(
        f"SELECT p.business_date, p.isin, p.close, p.currency FROM prices p JOIN (SELECT isin, "
        f"MAX(business_date) AS last FROM prices WHERE business_date <= {m}{only} GROUP BY "
        f"isin) l ON p.isin = l.isin AND p.business_date = l.last",
        (as_of.isoformat(), *params)).mappings()
    return {str(row["isin"]): dict(row) for row in found}


def inventory(connection: Connection, as_of: dt.date,
              accounts: Collection[str] | None = None) -> list[Row]:
    """Per security: the house's and the clients' positions (trade basis) of ``accounts``,
    the last close on or before ``as_of`` and the market values at it."""
    held: dict[str, dict[str, int]] = {}
    if accounts is None:
        sides = _firm_sides(connection, as_of)
    else:
        sides = [(asset, account.partition(":")[0], amount) for (account, asset), amount
                 in balances(connection, as_of, "trade", accounts).items()]
    for asset, side, amount in sides:
        slot = held.setdefault(asset, {"house": 0, "client": 0})
        slot[side] += amount
    instruments = instruments_of(connection, held)
    closes = last_prices(connection, as_of)
    rows = []
    for isin in sorted(instruments):
        instrument = instruments[isin]
        house = decimal_of(held[isin]["house"], instrument.quantity_scale)
        client = decimal_of(held[isin]["client"], instrument.quantity_scale)
        if house == 0 and client == 0:
            continue
        price = closes.get(isin)
        rows.append({"isin": isin, "symbol": instrument.symbol, "name": instrument.name,
                     "currency": instrument.currency, "house_quantity": plain(house),
                     "client_quantity": plain(client), "quantity": plain(house + client),
                     "price": price["close"] if price else None,
                     "price_date": price["business_date"] if price else None,
                     **_values(price, instrument.currency, house, client)})
    return rows


def _firm_sides(connection: Connection, as_of: dt.date) -> list[tuple[str, str, int]]:
    """Σ per asset of the house's and of the clients' trade-basis balances, summed in the
    database (a book has a great many client balances)."""
    m = repo.mark(connection)
    side = f"CASE WHEN gl_account LIKE {m} THEN 'house' ELSE 'client' END"
    owners = f"(gl_account LIKE {m} OR gl_account LIKE {m})"
    patterns = ("house:%", "client:%", "house:%")
    day = as_of.isoformat()
    if _later_postings(connection, as_of) > LATER_POSTINGS_MAX:
        return [(str(asset), str(kind), int(amount)) for asset, kind, amount in
                connection.exec_driver_sql(
                    f"SELECT asset, {side} AS side, SUM(amount) FROM postings WHERE {owners} "
                    f"AND basis IN ('B', 'T') AND business_date <= {m} GROUP BY asset, side",
                    (*patterns, day))]
    totals: dict[tuple[str, str], int] = {}
    for asset, kind, amount in connection.exec_driver_sql(
            f"SELECT asset, {side} AS side, SUM(amount) FROM balances WHERE {owners} AND "
            f"basis = 'T' GROUP BY asset, side", patterns):
        totals[(str(asset), str(kind))] = int(amount)
    hint = " INDEXED BY ix_postings_date" if connection.dialect.name == "sqlite" else ""
    for asset, kind, amount in connection.exec_driver_sql(
            f"SELECT asset, {side} AS side, SUM(amount) FROM postings{hint} WHERE "
            f"business_date > {m} AND {owners} AND basis IN ('B', 'T') GROUP BY asset, side",
            (patterns[0], day, *patterns[1:])):
        totals[(str(asset), str(kind))] = totals.get((str(asset), str(kind)), 0) - int(amount)
    return [(asset, kind, amount) for (asset, kind), amount in totals.items()]


def _values(price: Row | None, currency: str, house: Decimal,
            client: Decimal) -> dict[str, str | None]:
    if price is None:
        return {"house_market_value": None, "client_market_value": None, "market_value": None}
    close, scale = Decimal(price["close"]), currency_scale(currency)

    def value(quantity: Decimal) -> str:
        return at_scale(round_half_up(quantity * close, scale), scale)

    return {"house_market_value": value(house), "client_market_value": value(client),
            "market_value": value(house + client)}


# --- activity ------------------------------------------------------------------------------

ACTIVITY_SORTABLE = ("sequence", "business_date", "kind", "phase", "entry_key")
ENTRY_COLUMNS = ("sequence", "entry_key", "kind", "phase", "business_date", "settle_date", "ref",
                 "account", "memo")


def activity(connection: Connection, account: str, *, start: dt.date | None,
             end: dt.date | None, kind: str | None, sort: str, descending: bool, limit: int,
             offset: int) -> tuple[list[Row], int]:
    """The journal entries that move the account's cash or securities, with their postings
    (another owner's postings, as in a corporate action, are left out)."""
    assert sort in ACTIVITY_SORTABLE
    owners = _owner_accounts([account])
    sequences = _entry_sequences(connection, owners, start, end)
    headers = _entries(connection, sequences)
    if kind:
        headers = [row for row in headers if row["kind"] == kind]
    headers.sort(key=lambda row: (row[sort] or "", row["sequence"]), reverse=descending)
    page = headers[offset:offset + limit]
    postings = _postings(connection, [row["sequence"] for row in page], owners)
    for row in page:
        row["settle_date"] = row["settle_date"] or None
        row["postings"] = postings.get(row["sequence"], [])
    return page, len(headers)


def _entry_sequences(connection: Connection, owners: list[str], start: dt.date | None,
                     end: dt.date | None) -> list[int]:
    assets = asset_universe(connection)
    m = repo.mark(connection)
    dates, params = "", []
    if start:
        dates += f" AND business_date >= {m}"
        params.append(start.isoformat())
    if end:
        dates += f" AND business_date <= {m}"
        params.append(end.isoformat())
    found: set[int] = set()
    for chunk in _chunks(assets):
        found |= {int(row[0]) for row in connection.exec_driver_sql(
            f"SELECT DISTINCT entry_sequence FROM postings WHERE asset IN "
            f"({_marks(connection, len(chunk))}) AND gl_account IN "
            f"({_marks(connection, len(owners))}){dates}", (*chunk, *owners, *params))}
    return sorted(found)


def _entries(connection: Connection, sequences: Sequence[int]) -> list[Row]:
    rows: list[Row] = []
    for start in range(0, len(sequences), CHUNK):
        chunk = sequences[start:start + CHUNK]
        rows += [dict(row) for row in connection.exec_driver_sql(
            f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE sequence IN "
            f"({_marks(connection, len(chunk))})", tuple(chunk)).mappings()]
    return rows


def _postings(connection: Connection, sequences: Sequence[int],
              owners: Sequence[str]) -> dict[int, list[Row]]:
    if not sequences:
        return {}
    raw = connection.exec_driver_sql(
        f"SELECT entry_sequence, line, gl_account, asset, amount, basis FROM postings WHERE "
        f"entry_sequence IN ({_marks(connection, len(sequences))}) ORDER BY entry_sequence, "
        f"line", tuple(sequences)).all()
    scales = {isin: i.quantity_scale for isin, i in
              instruments_of(connection, {str(row[3]) for row in raw}).items()}
    found: dict[int, list[Row]] = {}
    for sequence, line, account, asset, amount, basis in raw:
        if gl.account_id_of(account) is not None and account not in owners:
            continue  # another client's or the house's side of the same event
        scale = currency_scale(asset) if is_currency(asset) else scales.get(asset, 0)
        found.setdefault(int(sequence), []).append({
            "line": int(line), "gl_account": account, "asset": asset,
            "amount": plain(decimal_of(int(amount), scale)) if not is_currency(asset)
            else at_scale(decimal_of(int(amount), scale), scale), "basis": basis})
    return found
