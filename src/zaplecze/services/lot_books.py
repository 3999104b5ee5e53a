"""Every account's lots as of a date: folded from the first trade, or on from a checkpoint.

End of day keeps a checkpoint at the close of each week's and each month's last weekday: the
balances on both views and every account's open lots (``write``). ``lot_books`` then starts
from the latest checkpoint on or before the date asked and folds only the events after it. What
a checkpoint could not have known sends the affected part back to the first trade:

- an account with a trade dated on or before the checkpoint but booked after it (a late trade:
  its sequence is above the checkpoint's high-water mark), or whose trades to that date were
  since cancelled differently (a cancel dated after the checkpoint, or booked after it);
- every account, when the corporate actions to the checkpoint date differ (one booked late or
  reversed since) or the reference data the fold reads (lot methods, currencies, quantity
  scales) has changed.

Figures from a checkpoint are the same as from the first trade, by construction and by test
(tests/test_checkpoints.py, and the reference model over random books).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import Connection

from zaplecze.accounting.lots import Exact, Lot, LotBook, LotTrade, exact, replay
from zaplecze.corporate_actions.model import CorporateAction
from zaplecze.kernel.calendar import weekdays
from zaplecze.refdata.model import RefData
from zaplecze.services import ca_events
from zaplecze.store import repo
from zaplecze.trading.model import Side

LOT_TRADE_COLUMNS = ("t.trade_id, t.account, t.isin, t.side, t.quantity, t.currency, "
                     "t.trade_date, t.gross, t.commission, t.sequence")

# Past this many accounts to fold from the first trade, folding every account that way is as
# quick as reading those accounts' trades by name (and they fit one IN (...) list).
STALE_ACCOUNTS_MAX = 500


def lot_trades(rows: Iterable[Sequence[Any]]) -> dict[str, list[LotTrade]]:
    """Stored trades (LOT_TRADE_COLUMNS of ``trades t``) by account, as the lot fold reads
    them."""
    sides = {"BUY": Side.BUY, "SELL": Side.SELL}
    dates: dict[str, dt.date] = {}
    by_account: dict[str, list[LotTrade]] = {}
    for (trade_id, account, isin, side, quantity, currency, trade_date, gross, commission,
         sequence) in rows:
        day = dates.get(trade_date)
        if day is None:
            day = dates[trade_date] = dt.date.fromisoformat(trade_date)
        by_account.setdefault(account, []).append(LotTrade(
            trade_id, isin, sides[side], Decimal(quantity), currency, day, Decimal(gross),
            Decimal(commission), sequence))
    return by_account


def trades_as_of(connection: Connection, as_of: dt.date, where: str,
                 params: Sequence[object]) -> dict[str, list[LotTrade]]:
    """The trades that ``where`` (over ``trades t``, with ``params``) selects, less those
    cancelled by the end of ``as_of``, by account, as the lot fold reads them. Read through
    the driver's cursor; the fold orders each account's trades itself."""
    m = repo.mark(connection)
    return lot_trades(_fetch(
        connection,
        f"SELECT {LOT_TRADE_COLUMNS} FROM trades t WHERE {where} AND NOT EXISTS "
        f"(SELECT 1 FROM cancels c WHERE c.trade_id = t.trade_id AND c.cancel_date <= {m})",
        (*params, as_of.isoformat())))


def is_checkpoint_day(day: dt.date) -> bool:
    """The last weekday of its week or of its month (end of day runs on weekdays)."""
    following = weekdays(day + dt.timedelta(days=1), day + dt.timedelta(days=7))[0]
    return following.isocalendar()[:2] != day.isocalendar()[:2] or following.month != day.month


def refdata_digest(refdata: RefData) -> str:
    """What the lot fold reads from the reference data, hashed: each account's lot method,
    each instrument's currency and quantity scale."""
    digest = hashlib.sha256()
    for account in sorted(refdata.accounts.values(), key=lambda a: a.account):
        digest.update(f"A|{account.account}|{account.lot_method.value}\n".encode())
    for instrument in sorted(refdata.instruments.values(), key=lambda i: i.isin):
        digest.update(f"I|{instrument.isin}|{instrument.currency}|"
                      f"{instrument.quantity_scale}\n".encode())
    return digest.hexdigest()


def effective_actions(connection: Connection, as_of: dt.date) -> list[CorporateAction]:
    """The corporate actions in the lots as of ``as_of``: ex date up to it, not reversed by
    then (a reversed event is as if it never happened)."""
    out = ca_events.reversed_by(connection, as_of)
    return [event for event in repo.corporate_actions(connection)
            if event.ex_date <= as_of and event.event_id not in out]


def lot_books(connection: Connection, as_of: dt.date, realized_since: dt.date | None = None,
              *, checkpoints: bool = True, refdata: RefData | None = None,
              ) -> dict[str, LotBook]:
    """Every account's lots as of the end of ``as_of``: trades dated up to it, less those
    cancelled by then; corporate actions with ex dates up to it. Realised rows are complete
    from ``realized_since`` on (None: no realised rows are wanted); a checkpoint before that
    date is used (unless not ``checkpoints``), one on or after it is not. ``refdata``: the
    book's, when the caller has read it already."""
    if refdata is None:
        refdata = repo.refdata(connection)
    actions = effective_actions(connection, as_of)
    checkpoint = repo.checkpoint_on_or_before(connection, as_of) if checkpoints else None
    if checkpoint is not None and (realized_since is None
                                   or checkpoint.business_date < realized_since):
        books = _from_checkpoint(connection, checkpoint, as_of, refdata, actions)
        if books is not None:
            return books
    return _from_first_trade(connection, as_of, refdata, actions)


def _from_first_trade(connection: Connection, as_of: dt.date, refdata: RefData,
                      actions: list[CorporateAction]) -> dict[str, LotBook]:
    # A sequential scan.
    by_account = trades_as_of(connection, as_of, f"t.trade_date <= {repo.mark(connection)}",
                              (as_of.isoformat(),))
    return {account_id: replay(account_id, refdata.accounts[account_id].lot_method,
                               refdata.instruments, trades, actions)
            for account_id, trades in by_account.items()}


def _fetch(connection: Connection, query: str, params: Sequence[object]) -> list[Any]:
    """Many rows through the driver's cursor (no per-row result objects)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(query, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _from_checkpoint(connection: Connection, checkpoint: repo.Checkpoint, as_of: dt.date,
                     refdata: RefData, actions: list[CorporateAction],
                     ) -> dict[str, LotBook] | None:
    """The books folded on from ``checkpoint``, or None when it does not fit at all."""
    since = checkpoint.business_date
    if not _fits(checkpoint, refdata, [event for event in actions if event.ex_date <= since]):
        return None
    stale = _stale_accounts(connection, checkpoint, as_of)
    if len(stale) > STALE_ACCOUNTS_MAX:
        return None
    books = _resumed(connection, since, refdata, stale)
    later = [event for event in actions if event.ex_date > since]
    m = repo.mark(connection)
    after = trades_as_of(connection, as_of, f"t.trade_date > {m} AND t.trade_date <= {m}",
                         (since.isoformat(), as_of.isoformat()))
    result: dict[str, LotBook] = {}
    for account_id in books.keys() | after.keys():
        if account_id in stale:
            continue
        account = refdata.accounts[account_id]
        result[account_id] = replay(account_id, account.lot_method, refdata.instruments,
                                    after.get(account_id, ()), later, books.get(account_id))
    if stale:
        for account_id, trades in trades_as_of(
                connection, as_of,
                f"t.account IN ({', '.join([m] * len(stale))}) AND t.trade_date <= {m}",
                (*sorted(stale), as_of.isoformat())).items():
            result[account_id] = replay(account_id, refdata.accounts[account_id].lot_method,
                                        refdata.instruments, trades, actions)
    return result


def _fits(checkpoint: repo.Checkpoint, refdata: RefData,
          actions: Iterable[CorporateAction]) -> bool:
    """Whether the checkpoint folded these corporate actions (those to its date) with this
    reference data."""
    return (checkpoint.refdata == refdata_digest(refdata)
            and checkpoint.actions == _action_ids(actions))


def _action_ids(actions: Iterable[CorporateAction]) -> str:
    return ",".join(sorted(event.event_id for event in actions))


def _stale_accounts(connection: Connection, checkpoint: repo.Checkpoint,
                    as_of: dt.date) -> set[str]:
    """Accounts whose trades up to the checkpoint date are not the ones it folded: a trade
    booked after it, or a different set cancelled as of ``as_of``."""
    m = repo.mark(connection)
    since = checkpoint.business_date.isoformat()
    # SQLite is steered to the sequence's unique index (the trades booked since): left to
    # itself it takes the date index, every trade up to the checkpoint.
    by_sequence = (" INDEXED BY sqlite_autoindex_trades_2"
                   if connection.dialect.name == "sqlite" else "")
    stale = {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT DISTINCT account FROM trades{by_sequence} WHERE sequence > {m} AND "
        f"trade_date <= {m}", (checkpoint.trade_sequence, since))}
    cancelled = _cancelled(connection, checkpoint.business_date, as_of)
    then = {str(account): int(count) for account, count in connection.exec_driver_sql(
        f"SELECT account, cancelled FROM checkpoint_accounts WHERE business_date = {m} AND "
        f"cancelled > 0", (since,))}
    stale |= {account for account in cancelled.keys() | then.keys()
              if cancelled.get(account, 0) != then.get(account, 0)}
    return stale


def _cancelled(connection: Connection, through: dt.date, as_of: dt.date) -> dict[str, int]:
    """Per account, its trades dated up to ``through`` that are cancelled as of ``as_of``."""
    m = repo.mark(connection)
    # CROSS JOIN keeps SQLite on the few cancels, each trade found by its key (an inner join
    # walked every trade by account for the grouping).
    return {str(account): int(count) for account, count in connection.exec_driver_sql(
        f"SELECT t.account, COUNT(*) FROM cancels c CROSS JOIN trades t WHERE "
        f"t.trade_id = c.trade_id AND t.trade_date <= {m} AND c.cancel_date <= {m} "
        f"GROUP BY t.account", (through.isoformat(), as_of.isoformat()))}


def _resumed(connection: Connection, since: dt.date, refdata: RefData,
             stale: set[str]) -> dict[str, LotBook]:
    """The checkpoint's books, but for the stale accounts."""
    m = repo.mark(connection)
    day = since.isoformat()
    lots: dict[str, list[Lot]] = {}
    acquired_dates: dict[str, dt.date] = {}
    quantities: dict[str, Exact] = {}
    for account, isin, acquired, order, quantity, cost in _fetch(
            connection,
            f"SELECT account, isin, acquired, lot_order, quantity, cost FROM checkpoint_lots "
            f"WHERE business_date = {m} ORDER BY account, isin, position", (day,)):
        acquired_day = acquired_dates.get(acquired)
        if acquired_day is None:
            acquired_day = acquired_dates[acquired] = dt.date.fromisoformat(acquired)
        amount = quantities.get(quantity)
        if amount is None:
            amount = quantities[quantity] = exact(Fraction(quantity))
        lots.setdefault(account, []).append(Lot(isin, acquired_day, order, amount,
                                                Decimal(cost)))
    books = {}
    for account_id, next_order in _fetch(
            connection, f"SELECT account, next_order FROM checkpoint_accounts WHERE "
                        f"business_date = {m}", (day,)):
        if account_id in stale:
            continue
        account = refdata.accounts[account_id]
        books[account_id] = LotBook.resumed(account_id, account.lot_method, refdata.instruments,
                                            lots.get(account_id, ()), next_order)
    return books


# --- writing -----------------------------------------------------------------------------------

class Written(NamedTuple):
    """Rows a checkpoint kept."""
    balances: int
    accounts: int
    lots: int


def write(connection: Connection, day: dt.date, head_sequence: int) -> Written:
    """Keep the checkpoint of ``day`` (at its end of day, once the day's entries are booked;
    ``head_sequence`` is the journal's head then). The reference data is read afresh: a load
    between two days of one end-of-day run may have added accounts."""
    refdata = repo.refdata(connection)
    books = lot_books(connection, day, refdata=refdata)
    actions = effective_actions(connection, day)
    text = day.isoformat()
    trade_sequence = int(connection.exec_driver_sql(
        "SELECT COALESCE(MAX(sequence), 0) FROM trades").scalar() or 0)
    cancelled = _cancelled(connection, day, day)
    balance_rows = [(text, view, account, asset, amount)
                    for view, basis in (("T", "trade"), ("S", "settlement"))
                    for (account, asset), amount in sorted(
                        repo.balances_as_of(connection, day, basis).items())]
    account_rows = [(text, account_id, book.next_order, cancelled.get(account_id, 0))
                    for account_id, book in sorted(books.items())]
    # An account whose trades to the date were all cancelled has no book but its count.
    account_rows += [(text, account_id, 0, count) for account_id, count in
                     sorted(cancelled.items()) if account_id not in books]
    lot_rows = [(text, account_id, isin, position, lot.acquired.isoformat(), lot.order,
                 str(lot.quantity), str(lot.cost))
                for account_id, book in sorted(books.items())
                for isin, held in sorted(book.lots.items())
                for position, lot in enumerate(held)]
    repo.write_rows(connection, "checkpoints",
                    ("business_date", "entry_sequence", "trade_sequence", "actions", "refdata",
                     "written_at"),
                    [(text, head_sequence, trade_sequence, _action_ids(actions),
                      refdata_digest(refdata),
                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))])
    repo.write_rows(connection, "checkpoint_balances",
                    ("business_date", "basis", "gl_account", "asset", "amount"), balance_rows)
    repo.write_rows(connection, "checkpoint_accounts",
                    ("business_date", "account", "next_order", "cancelled"), account_rows)
    repo.write_rows(connection, "checkpoint_lots",
                    ("business_date", "account", "isin", "position", "acquired", "lot_order",
                     "quantity", "cost"), lot_rows)
    return Written(len(balance_rows), len(account_rows), len(lot_rows))


# --- auditing ----------------------------------------------------------------------------------

def checkpoint_days(connection: Connection) -> list[dt.date]:
    """The days with a checkpoint, oldest first."""
    return [dt.date.fromisoformat(str(row[0])) for row in connection.exec_driver_sql(
        "SELECT business_date FROM checkpoints ORDER BY business_date")]


def verify(connection: Connection, day: dt.date) -> list[str]:
    """The checkpoint of ``day`` against the journal: its balances against the postings it had
    seen (up to its journal head), its lots against a fold from the first trade of every
    account nothing has touched since. Returns the differences found, at most 20."""
    checkpoint = repo.checkpoint_on_or_before(connection, day)
    if checkpoint is None or checkpoint.business_date != day:
        return [f"no checkpoint on {day}"]
    problems: list[str] = []
    m = repo.mark(connection)
    text = day.isoformat()
    for view, basis in (("T", "trade"), ("S", "settlement")):
        kept = {(str(a), str(s)): int(n) for a, s, n in connection.exec_driver_sql(
            f"SELECT gl_account, asset, amount FROM checkpoint_balances WHERE "
            f"business_date = {m} AND basis = {m}", (text, view))}
        summed = {(str(a), str(s)): int(n) for a, s, n in connection.exec_driver_sql(
            f"SELECT gl_account, asset, SUM(amount) FROM postings WHERE entry_sequence <= {m} "
            f"AND business_date <= {m} AND basis IN ({m}, {m}) GROUP BY gl_account, asset",
            (checkpoint.entry_sequence, text, *repo.basis_values(basis))) if int(n)}
        problems += [f"checkpoint {day}: {basis} balance of {key[0]} in {key[1]} is "
                     f"{kept.get(key, 0)}, the journal says {summed.get(key, 0)}"
                     for key in sorted(kept.keys() | summed.keys())
                     if kept.get(key, 0) != summed.get(key, 0)]
    refdata = repo.refdata(connection)
    if not _fits(checkpoint, refdata, effective_actions(connection, day)):
        return [*problems, f"checkpoint {day}: lots not compared (the reference data or the "
                           f"corporate actions have changed since; reports do not use it)"][:20]
    stale = _stale_accounts(connection, checkpoint, day)
    kept_books = _resumed(connection, day, refdata, stale)
    journal = lot_books(connection, day, checkpoints=False, refdata=refdata)
    for account_id in sorted((kept_books.keys() | journal.keys()) - stale):
        ours = _open_lots(kept_books.get(account_id))
        theirs = _open_lots(journal.get(account_id))
        if ours != theirs:
            problems.append(f"checkpoint {day}: the lots of {account_id} differ from the fold "
                            f"of its trades")
    return problems[:20]


def _open_lots(book: LotBook | None) -> dict[str, list[tuple[dt.date, int, Exact, Decimal]]]:
    if book is None:
        return {}
    return {isin: [(lot.acquired, lot.order, lot.quantity, lot.cost) for lot in lots]
            for isin, lots in book.lots.items() if lots}
