"""Queries: reference-data snapshots, source records, balances as folds of the journal.

Every balance is the same query shape — a sum of postings by account and asset, filtered by
basis and date — so reports, checks and the stock record all reproduce from the journal.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.calendar import CalendarOverride, SettlementCalendar
from zaplecze.kernel.limits import CHECKPOINT_REACH_DAYS
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.refdata.model import (
    Account,
    AccountKind,
    FeeRule,
    Instrument,
    LotMethod,
    RefData,
    WithholdingRate,
)
from zaplecze.store import schema
from zaplecze.trading.model import Side, Trade

TRADE_BASIS = ("B", "T")
SETTLEMENT_BASIS = ("B", "S")


def basis_values(basis: str) -> tuple[str, str]:
    return TRADE_BASIS if basis == "trade" else SETTLEMENT_BASIS


def mark(connection: Connection) -> str:
    return "%s" if connection.dialect.name == "postgresql" else "?"


def refdata(connection: Connection) -> RefData:
    instruments = {row.isin: Instrument(row.isin, row.symbol, row.name, row.kind, row.currency,
                                        row.mic, row.issuer_country, row.quantity_scale)
                   for row in connection.execute(select(schema.instruments))}
    accounts = {row.account: Account(row.account, row.name, AccountKind(row.kind),
                                     row.base_currency, row.tax_residence,
                                     LotMethod(row.lot_method))
                for row in connection.execute(select(schema.accounts))}
    fees = {(row.mic, row.currency): FeeRule(row.mic, row.currency, Decimal(row.rate_bps),
                                             Decimal(row.minimum))
            for row in connection.execute(select(schema.fee_rules))}
    withholding = {(row.issuer_country, row.tax_residence): WithholdingRate(
        row.issuer_country, row.tax_residence, Decimal(row.rate))
        for row in connection.execute(select(schema.withholding_rates))}
    return RefData(instruments, accounts, fees, withholding)


def existing_hashes(connection: Connection, table: str, key_column: str,
                    keys: Sequence[str]) -> dict[str, str]:
    """content_hash of the records among ``keys`` already stored. PostgreSQL takes the keys as
    one array; SQLite in chunks under its limit on bound parameters."""
    found: dict[str, str] = {}
    if connection.dialect.name == "postgresql":
        if keys:
            for key, digest in connection.exec_driver_sql(
                    f"SELECT {key_column}, content_hash FROM {table} "
                    f"WHERE {key_column} = ANY(%s::text[])", (list(keys),)):
                found[str(key)] = str(digest)
        return found
    for start in range(0, len(keys), 900):
        chunk = list(keys[start:start + 900])
        marks = ", ".join([mark(connection)] * len(chunk))
        for key, digest in connection.exec_driver_sql(
                f"SELECT {key_column}, content_hash FROM {table} WHERE {key_column} IN ({marks})",
                tuple(chunk)):
            found[str(key)] = str(digest)
    return found


def trade_rows(connection: Connection, trade_ids: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    table = schema.trades
    for start in range(0, len(trade_ids), 900):
        chunk = list(trade_ids[start:start + 900])
        for row in connection.execute(select(table).where(table.c.trade_id.in_(chunk))):
            found[row.trade_id] = row
    return found


def trade_of(row: Any) -> Trade:
    return Trade(trade_id=row.trade_id, account=row.account, isin=row.isin, side=Side(row.side),
                 quantity=Decimal(row.quantity), price=Decimal(row.price),
                 currency=row.currency, trade_date=dt.date.fromisoformat(row.trade_date),
                 settlement_date=dt.date.fromisoformat(row.settlement_date), venue=row.venue,
                 counterparty=row.counterparty, gross=Decimal(row.gross),
                 commission=Decimal(row.commission), content_hash=row.content_hash,
                 sequence=row.sequence)


def next_trade_sequence(connection: Connection) -> int:
    value = connection.exec_driver_sql("SELECT MAX(sequence) FROM trades").scalar()
    return int(value or 0) + 1


def entries_by_key(connection: Connection, keys: Iterable[str]) -> dict[str, Entry]:
    """Entries with their postings, by key (for voids and posts of pending entries)."""
    wanted = list(keys)
    result: dict[str, Entry] = {}
    for start in range(0, len(wanted), 900):
        chunk = wanted[start:start + 900]
        rows = connection.execute(select(schema.entries).where(
            schema.entries.c.entry_key.in_(chunk))).all()
        _attach_postings(connection, rows, result)
    return result


def _attach_postings(connection: Connection, rows: Sequence[Any],
                     result: dict[str, Entry]) -> None:
    if not rows:
        return
    by_sequence = {row.sequence: row for row in rows}
    postings: dict[int, list[Posting]] = {sequence: [] for sequence in by_sequence}
    sequences = list(by_sequence)
    for start in range(0, len(sequences), 900):
        chunk = sequences[start:start + 900]
        query = (select(schema.postings).where(schema.postings.c.entry_sequence.in_(chunk))
                 .order_by(schema.postings.c.entry_sequence, schema.postings.c.line))
        for posting in connection.execute(query):
            postings[posting.entry_sequence].append(
                Posting(posting.gl_account, posting.asset, posting.amount))
    for sequence, row in by_sequence.items():
        result[row.entry_key] = entry_of(row, tuple(postings[sequence]))


def entry_of(row: Any, postings: tuple[Posting, ...]) -> Entry:
    return Entry(key=row.entry_key, kind=EntryKind(row.kind), phase=Phase(row.phase),
                 business_date=dt.date.fromisoformat(row.business_date), postings=postings,
                 ref=row.ref, account=row.account,
                 settle_date=dt.date.fromisoformat(row.settle_date) if row.settle_date else None,
                 target_key=row.target_key, linked_key=row.linked_key, memo=row.memo)


def open_pending(connection: Connection, *, linked_to: Sequence[str]) -> dict[str, Entry]:
    """PENDING entries linked to the given entries with neither a POST nor a VOID yet."""
    # Through the linked-key index, not every pending entry of the book per chunk.
    query = (f"SELECT e.* FROM entries e WHERE {_unindexed(connection, 'e.phase')} = 'PENDING' "
             "AND NOT EXISTS "
             "(SELECT 1 FROM entries x WHERE x.target_key = e.entry_key)")
    result: dict[str, Entry] = {}
    for start in range(0, len(linked_to), 900):
        chunk = list(linked_to[start:start + 900])
        marks = ", ".join([mark(connection)] * len(chunk))
        rows = connection.exec_driver_sql(
            query + f" AND e.linked_key IN ({marks}) ORDER BY e.sequence", tuple(chunk)).all()
        _attach_postings(connection, rows, result)
    return result


def _unindexed(connection: Connection, column: str) -> str:
    """A column SQLite must not pick an index for. Left to itself, SQLite answers "pending and
    <a key>" through the (phase, settlement date) index, which holds every trade of the book
    (a trade's entry stays PENDING; its settlement is an entry of its own): a walk through the
    whole journal per call. The unary plus changes no value and takes the column out of the
    index choice; PostgreSQL's planner has statistics to choose by."""
    return f"+{column}" if connection.dialect.name == "sqlite" else column


def calendar(connection: Connection) -> SettlementCalendar:
    """The settlement calendar with the book's ad-hoc overrides."""
    rows = connection.exec_driver_sql("SELECT calendar, business_date, closed, reason "
                                      "FROM calendar_overrides").all()
    return SettlementCalendar(CalendarOverride(str(r[0]), dt.date.fromisoformat(r[1]),
                                               bool(r[2]), str(r[3])) for r in rows)


def failing(connection: Connection, as_of: dt.date) -> dict[str, tuple[int, int]]:
    """Per security, what is still to be received and delivered (units, both ≥ 0) by trades
    whose settlement date has come by the end of ``as_of`` and that have not settled in full
    by then (less their settled parts): the stock record's fail locations."""
    m = mark(connection)
    day = as_of.isoformat()
    open_legs: dict[str, tuple[str, int]] = {}
    for key, asset, amount in connection.exec_driver_sql(
            f"SELECT e.entry_key, p.asset, SUM(p.amount) FROM entries e JOIN postings p ON "
            f"p.entry_sequence = e.sequence WHERE e.kind = 'TRADE' AND e.phase = 'PENDING' AND "
            f"e.settle_date <= {m} AND e.business_date <= {m} AND p.gl_account LIKE {m} "
            f"AND NOT EXISTS (SELECT 1 FROM entries f WHERE f.target_key = "
            f"e.entry_key AND f.business_date <= {m} AND (f.phase = 'VOID' OR f.entry_key = "
            f"'post:' || e.entry_key)) GROUP BY e.entry_key, p.asset",
            (day, day, "depository:%", day)):
        open_legs[str(key)] = (str(asset), -int(amount))
    keys = list(open_legs)
    for start in range(0, len(keys), 900):
        chunk = keys[start:start + 900]
        for key, amount in connection.exec_driver_sql(
                f"SELECT x.target_key, SUM(p.amount) FROM entries x JOIN postings p ON "
                f"p.entry_sequence = x.sequence WHERE x.phase = 'POST' AND x.business_date <= "
                f"{m} AND p.gl_account LIKE {m} AND x.target_key IN "
                f"({', '.join([m] * len(chunk))}) GROUP BY x.target_key",
                (day, "depository:%", *chunk)):
            asset, remaining = open_legs[str(key)]
            open_legs[str(key)] = (asset, remaining + int(amount))
    result: dict[str, tuple[int, int]] = {}
    for asset, remaining in open_legs.values():
        receive, deliver = result.get(asset, (0, 0))
        result[asset] = ((receive + remaining, deliver) if remaining > 0
                         else (receive, deliver - remaining))
    return result


def settlement_started(connection: Connection, key: str) -> bool:
    """Whether any settlement (a whole or a partial POST) of the pending entry is booked."""
    m = mark(connection)
    return connection.exec_driver_sql(
        f"SELECT 1 FROM entries WHERE target_key = {m} AND phase = 'POST' LIMIT 1",
        (key,)).first() is not None


def due_trades(connection: Connection, day: dt.date) -> dict[str, Entry]:
    """Pending trades due to settle by the end of ``day``: those whose settlement date has come
    since the last end of day run, and any booked since that run with an earlier date (a late
    trade). Nothing older can still be pending: the runs before settled it."""
    m = mark(connection)
    last = connection.exec_driver_sql(
        "SELECT business_date, head_sequence FROM eod_runs ORDER BY business_date DESC "
        "LIMIT 1").first()
    since_day, since_sequence = (str(last[0]), int(last[1])) if last else ("0000-00-00", 0)
    unsettled = ("{phase} = 'PENDING' AND e.kind = 'TRADE' AND NOT EXISTS "
                 "(SELECT 1 FROM entries x WHERE x.target_key = e.entry_key)")
    # The late trades are found from the sequence numbers booked since the last run.
    late = unsettled.format(phase=_unindexed(connection, "e.phase"))
    rows = connection.exec_driver_sql(
        f"SELECT e.* FROM entries e WHERE {unsettled.format(phase='e.phase')} "
        f"AND e.settle_date > {m} AND e.settle_date <= {m} UNION SELECT e.* FROM entries e "
        f"WHERE {late} AND e.sequence > {m} AND e.settle_date <= {m} "
        f"ORDER BY settle_date, sequence",
        (since_day, day.isoformat(), since_sequence, day.isoformat())).all()
    result: dict[str, Entry] = {}
    _attach_postings(connection, rows, result)
    return result


def projected_settled_cash(connection: Connection, gl_account: str, currency: str,
                           day: dt.date) -> int:
    """Settled cash at the end of ``day`` as it will stand once everything known settles on
    its settlement date: final postings, plus pending trades due by then (not voided)."""
    m = mark(connection)
    final = connection.exec_driver_sql(
        f"SELECT COALESCE(SUM(amount), 0) FROM postings WHERE gl_account = {m} AND asset = {m} "
        f"AND basis = 'B' AND business_date <= {m}",
        (gl_account, currency, day.isoformat())).scalar()
    due = connection.exec_driver_sql(
        f"SELECT COALESCE(SUM(p.amount), 0) FROM postings p JOIN entries e "
        f"ON e.sequence = p.entry_sequence WHERE p.gl_account = {m} AND p.asset = {m} "
        f"AND e.phase = 'PENDING' AND e.settle_date <= {m} AND NOT EXISTS "
        f"(SELECT 1 FROM entries v WHERE v.target_key = e.entry_key AND v.phase = 'VOID')",
        (gl_account, currency, day.isoformat())).scalar()
    return int(final or 0) + int(due or 0)


def _whole_scan(connection: Connection) -> str:
    """For a sum over most of the journal, SQLite is told to read the table straight through.
    Left to itself it walks the (asset, GL account) index for the grouping and fetches each
    posting's row from there: on the million-trade book (9.9 million postings) a balance as of a
    past date took 10.3 s that way and 1.7 s straight through, the whole fold 22.1 s and 9.5 s.
    PostgreSQL's planner scans and hashes anyway."""
    return " NOT INDEXED" if connection.dialect.name == "sqlite" else ""


class Checkpoint(NamedTuple):
    """A checkpoint's header (schema.checkpoints): the day it closed and what it knew."""
    business_date: dt.date
    entry_sequence: int
    trade_sequence: int
    actions: str
    refdata: str


def checkpoint_on_or_before(connection: Connection, day: dt.date) -> Checkpoint | None:
    m = mark(connection)
    row = connection.exec_driver_sql(
        f"SELECT business_date, entry_sequence, trade_sequence, actions, refdata FROM "
        f"checkpoints WHERE business_date <= {m} ORDER BY business_date DESC LIMIT 1",
        (day.isoformat(),)).first()
    if row is None:
        return None
    return Checkpoint(dt.date.fromisoformat(str(row[0])), int(row[1]), int(row[2]), str(row[3]),
                      str(row[4]))


def balances_as_of(connection: Connection, day: dt.date, basis: str,
                   prefixes: Sequence[str] = (), *,
                   checkpoints: bool = True) -> dict[tuple[str, str], int]:
    """Σ postings per (GL account, asset) on a basis as of the end of ``day``: from the
    latest checkpoint within CHECKPOINT_REACH_DAYS before it when there is one (and
    ``checkpoints``), else summed over the journal."""
    checkpoint = checkpoint_on_or_before(connection, day) if checkpoints else None
    if checkpoint is not None and (day - checkpoint.business_date).days <= CHECKPOINT_REACH_DAYS:
        return _balances_from_checkpoint(connection, checkpoint, day, basis, prefixes)
    m = mark(connection)
    values = basis_values(basis)
    query = (f"SELECT gl_account, asset, SUM(amount) FROM postings{_whole_scan(connection)} "
             f"WHERE basis IN ({m}, {m}) AND business_date <= {m}")
    params: list[object] = [values[0], values[1], day.isoformat()]
    return _sums(connection, query + " {prefixes} GROUP BY gl_account, asset", params, prefixes)


def _balances_from_checkpoint(connection: Connection, checkpoint: Checkpoint, day: dt.date,
                              basis: str, prefixes: Sequence[str],
                              ) -> dict[tuple[str, str], int]:
    """The checkpoint's balances, plus the postings dated up to its day but booked after it
    (above its journal head: late_entries lists them), plus the postings dated after its day up
    to ``day``: each posting counted once, as the sum over the journal counts it."""
    m = mark(connection)
    values = basis_values(basis)
    since = checkpoint.business_date.isoformat()
    sqlite = connection.dialect.name == "sqlite"
    # SQLite is steered to the key for the late postings and to the date index for the later
    # ones; left to itself it walks the (asset, GL account) index for the grouping, every
    # posting there is (8.6 s on the million-trade book instead of milliseconds).
    by_key = " INDEXED BY sqlite_autoindex_postings_1" if sqlite else ""
    by_date = " INDEXED BY ix_postings_date" if sqlite else ""
    parts: list[tuple[str, list[object]]] = [
        (f"SELECT gl_account, asset, amount FROM checkpoint_balances WHERE business_date = {m} "
         f"AND basis = {m} {{prefixes}}", [since, "T" if basis == "trade" else "S"]),
        (f"SELECT gl_account, asset, SUM(amount) FROM late_entries l CROSS JOIN postings AS "
         f"p{by_key} WHERE l.entry_sequence > {m} AND l.business_date <= {m} AND "
         f"p.entry_sequence = l.entry_sequence AND basis IN ({m}, {m}) {{prefixes}} "
         f"GROUP BY gl_account, asset",
         [checkpoint.entry_sequence, since, *values]),
        (f"SELECT gl_account, asset, SUM(amount) FROM postings{by_date} WHERE business_date > "
         f"{m} AND business_date <= {m} AND basis IN ({m}, {m}) {{prefixes}} "
         f"GROUP BY gl_account, asset", [since, day.isoformat(), *values]),
    ]
    result: dict[tuple[str, str], int] = {}
    for query, params in parts:
        for account, asset, amount in _narrowed(connection, query, params, prefixes):
            key = (str(account), str(asset))
            result[key] = result.get(key, 0) + int(amount)
    return {key: amount for key, amount in result.items() if amount}


def cash_as_of(connection: Connection, day: dt.date, basis: str,
               prefixes: Sequence[str] = ()) -> dict[tuple[str, str], int]:
    """Σ cash postings per (GL account, currency) on a basis as of the end of ``day``, summed
    over the days of ``cash_by_day``: the same figures as ``balances_as_of`` gives for the
    currencies, from a few rows a day per account instead of every posting."""
    m = mark(connection)
    query = (f"SELECT gl_account, currency, SUM(amount) FROM cash_by_day "
             f"WHERE basis = {m} AND business_date <= {m}")
    params: list[object] = ["T" if basis == "trade" else "S", day.isoformat()]
    return _sums(connection, query + " {prefixes} GROUP BY gl_account, currency", params,
                 prefixes)


def _sums(connection: Connection, query: str, params: list[object],
          prefixes: Sequence[str]) -> dict[tuple[str, str], int]:
    """Run a (GL account, asset, sum) query, its ``{prefixes}`` narrowed to the GL accounts
    under the given prefixes (all when none); the non-zero sums."""
    return {(str(account), str(asset)): int(total)
            for account, asset, total in _narrowed(connection, query, params, prefixes)
            if int(total) != 0}


def _narrowed(connection: Connection, query: str, params: list[object],
              prefixes: Sequence[str]) -> Iterable[Any]:
    """The rows of ``query`` with its ``{prefixes}`` narrowed to the GL accounts under the
    given prefixes (all when none)."""
    m = mark(connection)
    narrowed = ("AND (" + " OR ".join(f"gl_account LIKE {m}" for _ in prefixes) + ")"
                if prefixes else "")
    return connection.exec_driver_sql(query.format(prefixes=narrowed),
                                      (*params, *(f"{prefix}:%" for prefix in prefixes)))


def folded_cash_days(connection: Connection) -> dict[tuple[str, str, str], int]:
    """``cash_by_day`` summed over all days per (account, currency, view): what the stored
    cash balances must equal."""
    return {(str(account), str(currency), str(view)): int(total)
            for account, currency, view, total in connection.exec_driver_sql(
                "SELECT gl_account, currency, basis, SUM(amount) FROM cash_by_day "
                "GROUP BY gl_account, currency, basis") if int(total)}


def stored_balances(connection: Connection) -> dict[tuple[str, str, str], int]:
    return {(row.gl_account, row.asset, row.basis): int(row.amount)
            for row in connection.execute(select(schema.balances)) if row.amount}


def folded_balances(connection: Connection) -> dict[tuple[str, str, str], int]:
    """The whole journal folded per (account, asset, view): what ``balances`` must equal."""
    result: dict[tuple[str, str, str], int] = {}
    for account, asset, basis, total in connection.exec_driver_sql(
            f"SELECT gl_account, asset, basis, SUM(amount) FROM postings{_whole_scan(connection)} "
            "GROUP BY gl_account, asset, basis"):
        views = ("T", "S") if basis == "B" else (basis,)
        for view in views:
            key = (str(account), str(asset), view)
            result[key] = result.get(key, 0) + int(total)
    return {key: value for key, value in result.items() if value}


def corporate_actions(connection: Connection) -> list[CorporateAction]:
    table = schema.corporate_actions
    return [corporate_action_of(row) for row in
            connection.execute(select(table).order_by(table.c.ex_date, table.c.sequence))]


def corporate_action_of(row: Any) -> CorporateAction:
    def dec(text: str) -> Decimal:
        return Decimal(text) if text else Decimal(0)

    return CorporateAction(
        event_id=row.event_id, kind=CaKind(row.kind), isin=row.isin,
        ex_date=dt.date.fromisoformat(row.ex_date),
        record_date=dt.date.fromisoformat(row.record_date),
        pay_date=dt.date.fromisoformat(row.pay_date), ratio_old=dec(row.ratio_old),
        ratio_new=dec(row.ratio_new), amount=dec(row.amount), currency=row.currency,
        new_isin=row.new_isin, cost_fraction=dec(row.cost_fraction),
        fraction_price=dec(row.fraction_price), content_hash=row.content_hash)


def corporate_action_record(event: CorporateAction, sequence: int,
                            content_hash: str) -> dict[str, Any]:
    """The row of ``corporate_actions`` for an event (from the file or approved in operation)."""
    def text(value: Decimal) -> str:
        return "" if str(value) == "0" else str(value)

    return {"event_id": event.event_id, "sequence": sequence, "kind": event.kind.value,
            "isin": event.isin, "ex_date": event.ex_date.isoformat(),
            "record_date": event.record_date.isoformat(), "pay_date": event.pay_date.isoformat(),
            "ratio_old": text(event.ratio_old), "ratio_new": text(event.ratio_new),
            "amount": text(event.amount), "currency": event.currency,
            "new_isin": event.new_isin, "cost_fraction": text(event.cost_fraction),
            "fraction_price": text(event.fraction_price), "content_hash": content_hash}


def earliest_date(connection: Connection) -> dt.date | None:
    values = [connection.exec_driver_sql(sql).scalar() for sql in (
        "SELECT MIN(trade_date) FROM trades", "SELECT MIN(value_date) FROM cash_movements",
        "SELECT MIN(ex_date) FROM corporate_actions", "SELECT MIN(business_date) FROM entries")]
    dates = [dt.date.fromisoformat(value) for value in values if value]
    return min(dates) if dates else None


def last_eod(connection: Connection) -> dt.date | None:
    value = connection.exec_driver_sql("SELECT MAX(business_date) FROM eod_runs").scalar()
    return dt.date.fromisoformat(value) if value else None


def insert_rows(connection: Connection, table: str, records: Sequence[dict[str, Any]]) -> None:
    """A plain batched insert of records (dicts with the same keys). ``table`` is one of ours,
    never input."""
    if records:
        columns = list(records[0])
        write_rows(connection, table, columns,
                   [tuple(record[c] for c in columns) for record in records])


def write_rows(connection: Connection, table: str, columns: Sequence[str],
               rows: Sequence[tuple[object, ...]]) -> None:
    """The bulk path through the driver, no per-row statement compilation: COPY on
    PostgreSQL, multi-row INSERTs on SQLite (``insert_many``)."""
    if not rows:
        return
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        from psycopg.copy import QueuedLibpqWriter  # PostgreSQL only

        raw = connection.connection.driver_connection
        assert raw is not None
        # Rows are formatted here while a thread of the driver's sends them: the server
        # inserts one part while this process formats the next.
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN",
                                                  writer=QueuedLibpqWriter(cursor)) as copy:
            for row in rows:
                copy.write_row(row)
        return
    insert_many(connection, f"INSERT INTO {table} ({names}) VALUES", rows)


# Bound values in one multi-row INSERT on SQLite: about 8,000 was the fastest of 500-30,000 on
# a 100,000-trade book's rows (SQLite's own limit is 32,766 since 3.32; a lower one is obeyed).
SQLITE_VALUES_PER_STATEMENT = 8_000


def insert_many(connection: Connection, head: str, rows: Sequence[tuple[object, ...]],
                tail: str = "") -> None:
    """``head`` (``INSERT INTO t (a, b) VALUES``) run for ``rows`` on SQLite as a few
    multi-row statements of as many rows as ``SQLITE_VALUES_PER_STATEMENT`` values allow, then
    ``tail`` (an ON CONFLICT clause, say). One statement per row (executemany) spent as much
    again in SQLite's per-statement work: the 1,050,000 rows of a 100,000-trade load went in in
    4.7 s that way and in 2.6 s this way."""
    if not rows:
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    width = len(rows[0])
    per = max(1, min(SQLITE_VALUES_PER_STATEMENT,
                     raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) // width)
    group = "(" + ", ".join(["?"] * width) + ")"
    cursor = raw.cursor()
    try:
        full = f"{head} {', '.join([group] * per)} {tail}"
        whole = len(rows) - len(rows) % per
        flat = chain.from_iterable
        for start in range(0, whole, per):
            cursor.execute(full, list(flat(rows[start:start + per])))
        if whole < len(rows):
            rest = rows[whole:]
            cursor.execute(f"{head} {', '.join([group] * len(rest))} {tail}",
                           list(flat(rest)))
    finally:
        cursor.close()
