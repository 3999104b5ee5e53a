"""The journal writer: appends entries in order, chains their hashes, keeps the materialised
balances and cash by day, and checks every entry balances — in Python before writing, and by the
database in the same transaction (PostgreSQL: a statement trigger; SQLite: a verification query)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection

from zaplecze.kernel.money import is_currency
from zaplecze.kernel.problems import InvariantBroken
from zaplecze.ledger.chain import GENESIS, canonical_text, chained_hash, entry_columns
from zaplecze.ledger.model import BASIS_OF_PHASE, Basis, Entry, unbalanced
from zaplecze.store.repo import insert_many, write_rows

ENTRY_COLUMNS = ("sequence", "entry_key", "kind", "phase", "business_date", "settle_date", "ref",
                 "account", "target_key", "linked_key", "memo", "prev_hash", "hash")
POSTING_COLUMNS = ("entry_sequence", "line", "gl_account", "asset", "amount", "basis",
                   "business_date")


class FlatEntry(NamedTuple):
    """An entry as the journal stores it, short of its place in the chain (sequence, previous
    hash): plain strings and integers, so a batch of them crosses a process boundary cheaply
    (the load prepares trades and cash in a second process while this one writes)."""
    columns: tuple[str, str, str, str, str | None, str, str, str, str, str]  # key … memo
    basis: str
    postings: tuple[tuple[str, str, int], ...]  # (gl_account, asset, amount)
    tail: str  # chain.canonical_tail


def flatten(entry: Entry) -> FlatEntry:
    columns = entry_columns(entry)
    postings = tuple([(p.gl_account, p.asset, p.amount) for p in entry.postings])
    return FlatEntry((*columns[:4], columns[4] or None, *columns[5:]),  # type: ignore[arg-type]
                     _BASIS_TEXT[entry.phase], postings, canonical_text(columns, postings))


@dataclass(frozen=True, slots=True)
class Head:
    sequence: int
    hash: str


def read_head(connection: Connection) -> Head:
    row = connection.exec_driver_sql(
        "SELECT sequence, hash FROM entries ORDER BY sequence DESC LIMIT 1").first()
    return Head(int(row[0]), str(row[1])) if row else Head(0, GENESIS)


class JournalWriter:
    """Collects entries for one transaction and writes them in one go on ``flush``."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.head = read_head(connection)
        self._entries: list[tuple[object, ...]] = []
        self._postings: list[tuple[object, ...]] = []
        self._deltas: dict[tuple[str, ...], int] = {}  # (GL account, asset, basis)
        self._cash_days: dict[tuple[str, ...], int] = {}  # (basis, day, account, currency)
        self._earliest = ""  # the earliest business date queued ("" none)
        self.written = 0

    def append(self, entry: Entry) -> int:
        """Queue one entry; returns its sequence number."""
        return self.append_flat(flatten(entry))

    def append_flat(self, entry: FlatEntry) -> int:
        """Queue one flattened entry; returns its sequence number. Its amounts are added up
        per (GL account, asset, basis) here and spread over the views a basis moves on
        ``flush`` (one addition per posting here, not one per view)."""
        broken = unbalanced((asset, amount) for _account, asset, amount in entry.postings)
        if broken:
            raise InvariantBroken(f"entry {entry.columns[0]} does not balance: {broken}")
        head = self.head
        sequence = head.sequence + 1
        digest = chained_hash(head.hash, sequence, entry.tail)
        self._entries.append((sequence, *entry.columns, head.hash, digest))
        basis = entry.basis
        day = entry.columns[3]
        if not self._earliest or day < self._earliest:
            self._earliest = day
        deltas, cash_days, postings = self._deltas, self._cash_days, self._postings
        for line, (gl_account, asset, amount) in enumerate(entry.postings, start=1):
            postings.append((sequence, line, gl_account, asset, amount, basis, day))
            key = (gl_account, asset, basis)
            deltas[key] = deltas.get(key, 0) + amount
            if _is_cash(asset):
                day_key = (basis, day, gl_account, asset)
                cash_days[day_key] = cash_days.get(day_key, 0) + amount
        self.head = Head(sequence, digest)
        return sequence

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            self.append(entry)

    def flush(self) -> int:
        """Write what is queued; raise ``InvariantBroken`` if the database finds an imbalance."""
        if not self._entries:
            return 0
        first = self._entries[0][0]
        last = self._entries[-1][0]
        if self.connection.dialect.name == "postgresql":
            write_rows(self.connection, "entries", ENTRY_COLUMNS, self._entries)
            write_rows(self.connection, "postings", POSTING_COLUMNS, self._postings)
        else:
            with _insert_guards_lifted(self.connection):
                write_rows(self.connection, "entries", ENTRY_COLUMNS, self._entries)
                write_rows(self.connection, "postings", POSTING_COLUMNS, self._postings)
            self._verify_balanced(first, last)
        self._record_late()
        self._upsert_balances()
        self._upsert_cash_days()
        count = len(self._entries)
        self.written += count
        self._entries, self._postings, self._deltas, self._cash_days = [], [], {}, {}
        self._earliest = ""
        return count

    def _record_late(self) -> None:
        """Note the entries dated on or before the latest checkpoint (late_entries): a balance
        from a checkpoint adds their postings. Writers are serialised, so every entry booked
        after a checkpoint sees it here."""
        found = self.connection.exec_driver_sql(
            "SELECT MAX(business_date) FROM checkpoints").scalar()
        latest = str(found) if found is not None else ""
        if not latest or self._earliest > latest:
            return
        write_rows(self.connection, "late_entries", ("entry_sequence", "business_date"),
                   [(row[0], row[4]) for row in self._entries if str(row[4]) <= latest])

    def _verify_balanced(self, first: object, last: object) -> None:
        bad = self.connection.exec_driver_sql(
            "SELECT entry_sequence, asset, SUM(amount) FROM postings "
            "WHERE entry_sequence BETWEEN ? AND ? GROUP BY entry_sequence, asset "
            "HAVING SUM(amount) <> 0 LIMIT 1", (first, last)).first()
        if bad:
            raise InvariantBroken(f"entry {bad[0]} does not balance in {bad[1]}: {bad[2]}")

    def _upsert_balances(self) -> None:
        self._add_amounts("balances", ("gl_account", "asset", "basis"),
                          _per_view(self._deltas, 2))

    def _upsert_cash_days(self) -> None:
        self._add_amounts("cash_by_day", ("basis", "business_date", "gl_account", "currency"),
                          _per_view(self._cash_days, 0))

    def _add_amounts(self, table: str, keys: Sequence[str], rows: list[tuple[object, ...]],
                     ) -> None:
        """Add each row's amount to the stored row of its key, creating it when new, in key
        order. PostgreSQL: the batch is copied into a temporary table of the same shape
        (emptied once added; a rollback empties it too) and added by one INSERT … SELECT …
        ON CONFLICT (an array per column through unnest took a third longer, most of it
        formatting the arrays); SQLite: multi-row INSERTs … ON CONFLICT."""
        if not rows:
            return
        rows.sort()
        names = ", ".join(keys)
        columns = f"{names}, amount"
        upsert = f"ON CONFLICT ({names}) DO UPDATE SET amount = {table}.amount + excluded.amount"
        if self.connection.dialect.name == "postgresql":
            staging = f"{table}_added"
            self.connection.exec_driver_sql(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table})")
            write_rows(self.connection, staging, (*keys, "amount"), rows)
            self.connection.exec_driver_sql(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
                f"ORDER BY {names} {upsert}")
            self.connection.exec_driver_sql(f"TRUNCATE {staging}")
            return
        insert_many(self.connection, f"INSERT INTO {table} ({columns}) VALUES", rows, upsert)


# SQLite's guards against INSERT OR REPLACE: row triggers on every insert into the journal.
INSERT_GUARDS = ("entries_append_only_replace", "postings_append_only_replace")


@contextlib.contextmanager
def _insert_guards_lifted(connection: Connection) -> Iterator[None]:
    """The writer's own plain INSERTs go in without SQLite's row triggers against INSERT OR
    REPLACE, which cost more than the inserts themselves (on 150,000 entries with 550,000
    postings: 21 s with them, 7 s without). The triggers are dropped and created again, from
    their stored text, inside the writer's transaction: it holds the write lock (BEGIN
    IMMEDIATE), so no other connection can insert while they are away; readers never see them
    gone, and a crash rolls the drop back. The UNIQUE keys still refuse a duplicate here."""
    guards = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?) ORDER BY name",
        INSERT_GUARDS).scalars().all()
    for name in INSERT_GUARDS:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    try:
        yield
    except BaseException:
        # Back even when a caller would catch the error and commit the rest; if the
        # transaction cannot take them any more it is rolled back, and the drop with it.
        with contextlib.suppress(Exception):
            _create(connection, guards)
        raise
    _create(connection, guards)


def _create(connection: Connection, statements: Sequence[str]) -> None:
    for sql in statements:
        connection.exec_driver_sql(sql)


_CASH_ASSETS: dict[str, bool] = {}


def _is_cash(asset: str) -> bool:
    """A currency (three letters, ISO 4217) rather than an instrument (a twelve-character ISIN)."""
    known = _CASH_ASSETS.get(asset)
    if known is None:
        known = _CASH_ASSETS[asset] = is_currency(asset)
    return known


def _per_view(amounts: dict[tuple[str, ...], int], place: int) -> list[tuple[object, ...]]:
    """Amounts keyed with an entry's basis at ``place``, added up per balance view instead
    (``_VIEWS``): the rows to add, zeros left out."""
    by_view: dict[tuple[str, ...], int] = {}
    for key, amount in amounts.items():
        for view in _VIEWS[key[place]]:
            viewed = (*key[:place], view, *key[place + 1:])
            by_view[viewed] = by_view.get(viewed, 0) + amount
    return [(*key, amount) for key, amount in by_view.items() if amount]


# The basis of an entry of each phase, as stored.
_BASIS_TEXT = {phase: basis.value for phase, basis in BASIS_OF_PHASE.items()}

# The balance views an entry of each basis moves: trade (T), settlement (S) or both.
_VIEWS: dict[str, tuple[str, ...]] = {Basis.BOTH.value: ("T", "S"), Basis.TRADE.value: ("T",),
                                      Basis.SETTLEMENT.value: ("S",)}
