"""Deferred indexes: a big load drops the secondary indexes nothing reads while it books, and
builds them once at its end, in one sorted pass each, as SQLite's and PostgreSQL's own advice
for a bulk load goes.

Why: a million-trade load updates every index of ``postings``, ``entries`` and ``trades`` once
per row, and the (asset, GL account) index of the postings is updated at random places: every
batch rewrote most of its pages. On SQLite that index alone cost 17 of the load's 73 s and took
5 s to build afresh; the six indexes below cost 26 s and take 9 s to build.

Crash safety: the statements that build the indexes are kept in ``deferred_indexes`` in the same
transaction that drops them, and deleted in the one that builds them again. A load stopped in
between (killed, a full disk) leaves them listed; the next ``load`` or ``eod`` builds them before
anything else. Until then the book is whole and every answer the same, only slower.

Only plain, non-unique indexes are deferred: every UNIQUE key (idempotency, sequence, the
journal's keys) stays in force throughout, and so do the indexes the load itself reads (entry
keys, target and linked keys for cancels) and those named in query hints (the postings' date).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from zaplecze.store.db import is_postgres, read_connection, with_retries
from zaplecze.store.repo import mark

# Plain indexes a load does not read.
DEFERRABLE = ("ix_postings_asset", "ix_entries_pending", "ix_entries_ref", "ix_trades_account",
              "ix_trades_isin", "ix_trades_date")
# Memory PostgreSQL may use to sort one index it builds (its default is 64 MB)
BUILD_MEMORY = "256MB"
# Helper threads SQLite may sort with while it builds an index (the load's second process has
# ended by then)
BUILD_THREADS = 2


def defer(engine: Engine) -> list[str]:
    """Drop the deferrable indexes the book has, keeping how to build each again; returns
    their names."""
    def work(connection: Connection) -> list[str]:
        found = definitions(connection)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        m = mark(connection)
        for name, definition in found.items():
            connection.exec_driver_sql(
                f"INSERT INTO deferred_indexes (name, definition, deferred_at) "
                f"VALUES ({m}, {m}, {m})", (name, definition, now))
            connection.exec_driver_sql(f"DROP INDEX {name}")  # one of DEFERRABLE
        return list(found)
    return with_retries(engine, work)


def build(engine: Engine) -> list[str]:
    """Build every index a load deferred (its own, or one a stopped load left); returns their
    names. One transaction: the indexes and their removal from the list go in together. With
    none listed (the usual case) it only reads, and takes no write lock."""
    with read_connection(engine) as connection:
        if not deferred(connection):
            return []

    def work(connection: Connection) -> list[str]:
        pending = connection.exec_driver_sql(
            "SELECT name, definition FROM deferred_indexes ORDER BY name").all()
        if not pending:
            return []
        present = definitions(connection)
        if is_postgres(engine):
            connection.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
        else:
            connection.exec_driver_sql(f"PRAGMA threads = {BUILD_THREADS}")
        for name, definition in pending:
            if str(name) not in present:
                connection.exec_driver_sql(str(definition))  # as read from the book itself
        connection.exec_driver_sql("DELETE FROM deferred_indexes")
        return [str(row[0]) for row in pending]
    return with_retries(engine, work)


def deferred(connection: Connection) -> list[str]:
    """The indexes listed as deferred: a load is running, or one stopped before its end."""
    return [str(row[0]) for row in connection.exec_driver_sql(
        "SELECT name FROM deferred_indexes ORDER BY name")]


def definitions(connection: Connection) -> dict[str, str]:
    """name -> CREATE INDEX statement, for the deferrable indexes the book has."""
    names = list(DEFERRABLE)
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexname = ANY(%s)", (names,)).all()
    else:
        marks = ", ".join("?" * len(names))
        rows = connection.exec_driver_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ({marks})",
            tuple(names)).all()
    found = {str(row[0]): str(row[1]) for row in rows}
    return {name: found[name] for name in DEFERRABLE if name in found}
