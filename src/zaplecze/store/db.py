"""Opening the book: engines for SQLite (embedded default) and PostgreSQL, write transactions
that serialise ledger writers, and bounded retries of serialization failures.

SQLite: WAL, synchronous=FULL, foreign_keys=ON, every transaction BEGIN IMMEDIATE.
PostgreSQL: SERIALIZABLE write transactions holding one advisory lock for the journal (so the
hash chain and the sequence are taken in order), retried a bounded number of times.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from zaplecze.kernel.limits import SERIALIZABLE_RETRIES_MAX, SQLITE_CACHE_KIB
from zaplecze.kernel.problems import BookError

DEFAULT_URL = "sqlite:///zaplecze.db"
JOURNAL_LOCK_ID = 0x5A41504C  # "ZAPL": the advisory lock every PostgreSQL ledger writer takes
T = TypeVar("T")


def resolve_url(url: str | None) -> str:
    return url or os.environ.get("ZAPLECZE_DB") or DEFAULT_URL


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


# A server answering many small reads (the workbench) maps the SQLite file into memory: a page
# is then read without a system call (measured: one worker's throughput on a 1,000,000-trade
# book rose from 160 to 216 requests/s). Batch commands do not: mapped pages count in their
# resident memory, which the load's peak-memory figure reports.
SQLITE_MMAP_BYTES = 64 * 2**30  # at most; SQLite maps no more than the file's size


def open_engine(url: str | None = None, *, read_mostly: bool = False) -> Engine:
    """An engine for the book at ``url`` (or ZAPLECZE_DB, or ./zaplecze.db); ``read_mostly``
    for a server of many small reads (SQLite: memory-mapped I/O)."""
    target = _driver_url(resolve_url(url))
    if target.startswith("sqlite"):
        engine = create_engine(target, connect_args={"timeout": 60})
        _sqlite_pragmas(engine, SQLITE_MMAP_BYTES if read_mostly else 0)
        return engine
    return create_engine(target, pool_pre_ping=True)


def _sqlite_pragmas(engine: Engine, mmap_bytes: int) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        # 128 MiB of page cache (the default is 2 MiB): a book of millions of postings keeps
        # its index pages in memory instead of re-reading them for every batch.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        if mmap_bytes:
            cursor.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # type: ignore[no-untyped-def]
        # Writers take the write lock at BEGIN (no lock upgrade deadlocks); readers begin a
        # deferred transaction: in WAL mode, a snapshot that neither blocks nor waits for one.
        if connection.get_execution_options().get("zaplecze_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_retryable(error: Exception) -> bool:
    """A serialization failure or a deadlock, raised through SQLAlchemy or straight from the
    driver (the bulk paths use the driver's cursor)."""
    code = getattr(error, "sqlstate", None) or getattr(getattr(error, "orig", None), "sqlstate",
                                                       None)
    return code in ("40001", "40P01")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for one business event or batch; the journal lock held throughout."""
    if is_postgres(engine):
        with engine.connect() as connection:
            # Take the journal lock first, in a transaction of its own, so the SERIALIZABLE
            # transaction below takes its snapshot only once the lock is held (a snapshot taken
            # while waiting would be stale and fail to serialize).
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({JOURNAL_LOCK_ID})")
            connection.commit()
            try:
                connection.execution_options(isolation_level="SERIALIZABLE")
                with connection.begin():
                    yield connection
            finally:
                connection.rollback()
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({JOURNAL_LOCK_ID})")
                connection.commit()
        return
    with engine.connect() as connection, connection.begin():
        yield connection


def with_retries(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a write transaction, retrying serialization failures a bounded number of
    times. ``work`` must be idempotent on retry (it re-reads what it decides on)."""
    attempt = 0
    while True:
        try:
            with write_transaction(engine) as connection:
                return work(connection)
        except Exception as error:
            if not _is_retryable(error) or attempt >= SERIALIZABLE_RETRIES_MAX:
                raise
            attempt += 1
            time.sleep(0.05 * attempt)


# The tables a load or an end of day grows by the hundred thousand.
GROWING_TABLES = ("trades", "cancels", "cash_movements", "entries", "postings", "balances",
                  "cash_by_day", "late_entries", "valuations", "checkpoint_balances",
                  "checkpoint_accounts", "checkpoint_lots")


def refresh_statistics(engine: Engine, *, grown: bool = False) -> list[str]:
    """PostgreSQL: ANALYZE the growing tables — all of them when the caller has just ``grown``
    them (a bulk load: the server's change counters lag the last commits), else those stale by
    autovacuum's own rule (changed rows above 50 + 10 % of the table) — whether or not
    autovacuum is on or has caught up; returns the tables analysed. A bulk load left without
    statistics had the planner believe the journal empty: end of day's pending-entry look-up
    then took minutes a day instead of milliseconds. SQLite keeps no statistics here: its plans
    are fixed by the schema (and, where it matters, named indexes)."""
    if not is_postgres(engine):
        return []
    rule = "" if grown else "AND n_mod_since_analyze > 50 + 0.1 * GREATEST(n_live_tup, 1) "
    with engine.connect() as connection:
        stale = [str(row[0]) for row in connection.exec_driver_sql(
            f"SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) {rule}"
            f"ORDER BY relname", (list(GROWING_TABLES),))]
        for table in stale:
            connection.exec_driver_sql(f"ANALYZE {table}")  # one of GROWING_TABLES
        connection.commit()
    return stale


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A consistent read: one transaction (a snapshot on PostgreSQL, and on SQLite in WAL mode)."""
    with engine.connect() as connection:
        connection.execution_options(zaplecze_read_only=True)
        with connection.begin():
            yield connection


def explain_connection_error(error: Exception, url: str) -> BookError:
    """A clear message for an unreachable database or a full disk."""
    text = str(getattr(error, "orig", error)).strip().splitlines()[0] if str(error) else ""
    if isinstance(error, OperationalError) and "disk" in text.lower():
        return BookError(f"the disk holding the book is full ({text}); nothing was written")
    safe_url = url.split("@")[-1] if "@" in url else url
    return BookError(f"cannot use the book at {safe_url}: {text}")
