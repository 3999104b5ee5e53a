"""The journal is append-only in the database itself, not only by convention (RELIABILITY.md rules
1 and 2; docs/design.md invariants 1 and 3).

On both databases, through raw SQL (sqlite3 / psycopg, and the product's own SQLAlchemy engine),
every UPDATE and DELETE of `entries` and `postings` — several rows, every column — is refused by
the guards, and the book is left exactly as it was. Each statement is first run once with the
guards lifted inside a transaction that is rolled back, so a refusal counts only when the guard,
and nothing else, refused a statement the database would otherwise have executed.
An unbalanced entry is refused too: on PostgreSQL by the balance trigger, whatever the INSERT or
COPY; through the journal writer on both databases (its check in Python, and the database's check
of what it writes: SQLite's verification query, PostgreSQL's trigger).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from conftest import PG_ADMIN_URL, shared_path
from zaplecze.bootstrap import open_book
from zaplecze.kernel.problems import InvariantBroken
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.services.audit import verify
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import schema
from zaplecze.store.db import open_engine, write_transaction
from zaplecze.store.journal import ENTRY_COLUMNS, POSTING_COLUMNS, JournalWriter, read_head

SQLITE_GUARDS = [f"{table}_append_only_{verb}" for table in ("entries", "postings")
                 for verb in ("update", "delete", "replace")]
# A value of the right type, different from any stored one, for every column.
NEW_VALUES: dict[str, Any] = {
    "sequence": 1_000_000, "entry_key": "tampered", "kind": "CASH", "phase": "POSTED",
    "business_date": "2099-01-01", "settle_date": "2099-01-02", "ref": "tampered",
    "account": "tampered", "target_key": "tampered", "linked_key": "tampered",
    "memo": "tampered", "prev_hash": "0" * 64, "hash": "f" * 64,
    "entry_sequence": 1_000_000, "line": 99, "gl_account": "client:tampered", "asset": "XAU",
    "amount": 123_456_789, "basis": "X",
}


class Raw:
    """A plain DB-API connection to the book: sqlite3 or psycopg, `?` placeholders."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            self.connection: Any = psycopg.connect(url)
        else:
            self.connection = sqlite3.connect(url.removeprefix("sqlite:///"),
                                              isolation_level=None)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(self._sql(sql), params)
        found = list(cursor.fetchall())
        if self.postgres:
            self.connection.rollback()
        return found

    def attempt(self, sql: str, *params: object, lift_guards: bool = False) -> str | None:
        """Run one statement in a transaction that is always rolled back: None if the database
        executed it, else its refusal."""
        if not self.postgres:
            self.connection.execute("BEGIN")
        try:
            if lift_guards:
                self._lift_guards()
            self.connection.execute(self._sql(sql), params)
            return None
        except (sqlite3.Error, psycopg.Error) as error:
            return str(error).strip().splitlines()[0]
        finally:
            self.connection.rollback() if self.postgres else self.connection.execute("ROLLBACK")

    def _lift_guards(self) -> None:
        if self.postgres:
            for table in ("entries", "postings"):
                self.connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for trigger in SQLITE_GUARDS:
                self.connection.execute(f"DROP TRIGGER {trigger}")

    def close(self) -> None:
        self.connection.close()


class Journals:
    """Per database, once per module: the golden book loaded and run through June (trades,
    settlements, corporate actions). Tests that change nothing share it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, str] = {}

    def get(self, url: str) -> str:
        kind = "postgresql" if url.startswith("postgresql") else "sqlite"
        if kind not in self.made:
            if kind == "sqlite":
                self.made[kind] = f"sqlite:///{self.folder / 'journal.db'}"
            else:
                name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
                _admin(f"CREATE DATABASE {name}")
                self.made[kind] = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
            book = open_book(self.made[kind], create=True)
            Loader(book.engine, book.calendar()).load(shared_path("scenarios", "basic"))
            run_eod(book.engine, dt.date(2024, 6, 28))
            book.engine.dispose()
        return self.made[kind]

    def close(self) -> None:
        for url in self.made.values():
            if url.startswith("postgresql"):
                _admin(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)")


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journals]:
    made = Journals(tmp_path_factory.mktemp("append-only"))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def journal(book_url: str, journals: Journals) -> str:
    """The shared golden journal of book_url's database (book_url itself stays empty)."""
    return journals.get(book_url)


@pytest.fixture
def raw(journal: str) -> Iterator[Raw]:
    connection = Raw(journal)
    yield connection
    connection.close()


@pytest.fixture
def pg_raw(fresh_pg_url: str, journals: Journals) -> Iterator[Raw]:
    connection = Raw(journals.get(fresh_pg_url))
    yield connection
    connection.close()


def dump(raw: Raw) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    return (raw.rows(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries ORDER BY sequence"),
            raw.rows(f"SELECT {', '.join(POSTING_COLUMNS)} FROM postings "
                     f"ORDER BY entry_sequence, line"))


def sample_sequences(raw: Raw) -> list[int]:
    """The first, a middle and the last entry of the journal."""
    sequences = [row[0] for row in raw.rows("SELECT sequence FROM entries ORDER BY sequence")]
    assert len(sequences) > 50
    return [sequences[0], sequences[len(sequences) // 2], sequences[-1]]


def changes(raw: Raw) -> list[tuple[str, tuple[object, ...]]]:
    """Every UPDATE and DELETE this test tries: (SQL, parameters)."""
    statements: list[tuple[str, tuple[object, ...]]] = []
    for sequence in sample_sequences(raw):
        for column in ENTRY_COLUMNS:
            statements.append((f"UPDATE entries SET {column} = ? WHERE sequence = ?",
                               (NEW_VALUES[column], sequence)))
        for column in POSTING_COLUMNS:
            statements.append((f"UPDATE postings SET {column} = ? WHERE entry_sequence = ? "
                               f"AND line = 1", (NEW_VALUES[column], sequence)))
        statements.append(("DELETE FROM postings WHERE entry_sequence = ? AND line = 1",
                           (sequence,)))
        statements.append(("DELETE FROM postings WHERE entry_sequence = ?", (sequence,)))
        statements.append(("DELETE FROM entries WHERE sequence = ?", (sequence,)))
    statements += [
        ("UPDATE entries SET memo = memo", ()),  # changes nothing, still refused
        ("UPDATE postings SET amount = amount + 0", ()),
        ("UPDATE postings SET amount = -amount WHERE entry_sequence IN "
         "(SELECT sequence FROM entries WHERE kind = 'TRADE')", ()),  # stays balanced
        ("DELETE FROM postings", ()),
        ("DELETE FROM entries", ()),
        ("DELETE FROM entries WHERE sequence > (SELECT MAX(sequence) - 3 FROM entries)", ()),
    ]
    if raw.postgres:
        statements += [("TRUNCATE postings", ()), ("TRUNCATE entries", ()),
                       ("TRUNCATE entries, postings", ())]
    return statements


def test_every_update_and_delete_of_the_journal_is_refused(raw: Raw, journal: str) -> None:
    before = dump(raw)
    statements = changes(raw)
    accepted, refused_otherwise = [], []
    for sql, params in statements:
        # The statement is valid: with the guards lifted the database executes it.
        assert raw.attempt(sql, *params, lift_guards=True) is None, sql
        refusal = raw.attempt(sql, *params)
        if refusal is None:
            accepted.append(f"{sql} {params}")
        elif "append-only" not in refusal:
            refused_otherwise.append(f"{sql} {params}: {refusal}")
    assert len(statements) >= 70
    assert accepted == [], f"{len(accepted)} of {len(statements)} changes were accepted"
    assert refused_otherwise == [], "refused, but not by the append-only guard"
    assert dump(raw) == before
    engine = open_engine(journal)
    try:
        assert verify(engine).problems == []
    finally:
        engine.dispose()


def test_the_product_engine_cannot_change_the_journal_either(journal: str) -> None:
    engine = open_engine(journal)
    try:
        head = _head(journal)
        for statement in (update(schema.entries).values(memo="tampered"),
                          update(schema.entries).where(schema.entries.c.sequence == 1)
                          .values(hash="0" * 64),
                          update(schema.postings).values(amount=schema.postings.c.amount * 2),
                          delete(schema.postings).where(schema.postings.c.entry_sequence == 2),
                          delete(schema.entries)):
            with pytest.raises(DBAPIError, match="append-only"), \
                    write_transaction(engine) as connection:
                connection.execute(statement)
        assert _head(journal) == head
        assert verify(engine).problems == []
    finally:
        engine.dispose()


def test_replace_and_upsert_cannot_rewrite_an_entry(raw: Raw, journal: str) -> None:
    """INSERT OR REPLACE / REPLACE INTO (SQLite) and INSERT ... ON CONFLICT DO UPDATE (both)
    would rewrite a stored row under its key: an UPDATE by another name."""
    before = dump(raw)
    sequence = sample_sequences(raw)[1]
    entry = raw.rows(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE sequence = ?",
                     sequence)[0]
    forged_entry = tuple("tampered" if column == "memo" else value
                         for column, value in zip(ENTRY_COLUMNS, entry, strict=True))
    posting = raw.rows(f"SELECT {', '.join(POSTING_COLUMNS)} FROM postings "
                       f"WHERE entry_sequence = ? AND line = 1", sequence)[0]
    forged_posting = tuple(value + 100 if column == "amount" else value
                           for column, value in zip(POSTING_COLUMNS, posting, strict=True))
    entry_marks = ", ".join("?" * len(ENTRY_COLUMNS))
    posting_marks = ", ".join("?" * len(POSTING_COLUMNS))
    entries = f"entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({entry_marks})"
    postings = f"postings ({', '.join(POSTING_COLUMNS)}) VALUES ({posting_marks})"
    statements = [
        (f"INSERT INTO {entries} ON CONFLICT (sequence) DO UPDATE SET memo = excluded.memo",
         forged_entry),
        (f"INSERT INTO {postings} ON CONFLICT (entry_sequence, line) DO UPDATE "
         f"SET amount = excluded.amount", forged_posting),
    ]
    if not raw.postgres:
        statements += [(f"INSERT OR REPLACE INTO {entries}", forged_entry),
                       (f"REPLACE INTO {entries}", forged_entry),
                       (f"INSERT OR REPLACE INTO {postings}", forged_posting),
                       (f"REPLACE INTO {postings}", forged_posting)]
    accepted = []
    for sql, params in statements:
        assert raw.attempt(sql, *params, lift_guards=True) is None, sql
        if raw.attempt(sql, *params) is None:
            accepted.append(sql.split(" (")[0] + " ...")
    assert accepted == [], (f"{len(accepted)} of {len(statements)} statements rewrote a "
                            f"journal row past the append-only guards: {accepted}")
    assert dump(raw) == before


# --- unbalanced entries --------------------------------------------------------------------------


def _head(url: str) -> str:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            head = read_head(connection)
        return f"{head.sequence}:{head.hash}"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_refuses_an_unbalanced_postings_insert(pg_raw: Raw) -> None:
    """(SQLite has no balance trigger: the journal writer's check in the same transaction
    stands there, test_the_journal_writer_refuses_an_unbalanced_entry.)"""
    raw = pg_raw
    before = dump(raw)
    sequence = before[0][-1][0] + 1
    new_entry = ("INSERT INTO entries (sequence, entry_key, kind, phase, business_date, ref, "
                 "account, target_key, linked_key, memo, prev_hash, hash) VALUES "
                 f"({sequence}, 'forged', 'CASH', 'POSTED', '2024-06-28', '', 'C01', '', '', '', "
                 f"'{'0' * 64}', '{'f' * 64}');")
    day = "'2024-06-28'"

    def postings(*lines: tuple[str, str, int]) -> str:
        values = ", ".join(f"({sequence}, {n}, '{account}', '{asset}', {amount}, 'B', {day})"
                           for n, (account, asset, amount) in enumerate(lines, start=1))
        return f"INSERT INTO postings ({', '.join(POSTING_COLUMNS)}) VALUES {values}"

    unbalanced = {
        "off by one": postings(("client:C01", "USD", 100), ("bank:USD", "USD", -99)),
        "one leg": postings(("client:C01", "USD", 100)),
        "zero in sum, not per asset": postings(("client:C01", "USD", 100),
                                               ("bank:PLN", "PLN", -100)),
    }
    for name, sql in unbalanced.items():
        refusal = raw.attempt(new_entry + sql)
        assert refusal is not None and "does not balance" in refusal, name
    one_leg_each = new_entry + postings(("client:C01", "USD", 100)) + "; " + postings(
        ("bank:USD", "USD", -100)).replace(f"({sequence}, 1,", f"({sequence}, 2,")
    assert "does not balance" in (raw.attempt(one_leg_each) or ""), "a balanced pair of inserts"
    # The control: the same insert, balanced, is accepted (and rolled back).
    assert raw.attempt(new_entry + postings(("client:C01", "USD", 100),
                                            ("bank:USD", "USD", -100))) is None
    # COPY, the journal writer's own path, fires the trigger too.
    connection = raw.connection
    try:
        connection.execute(new_entry)
        with pytest.raises(psycopg.errors.CheckViolation, match="does not balance"), \
                connection.cursor() as cursor, \
                cursor.copy(f"COPY postings ({', '.join(POSTING_COLUMNS)}) FROM STDIN") as copy:
            copy.write_row((sequence, 1, "client:C01", "USD", 100, "B", "2024-06-28"))
            copy.write_row((sequence, 2, "bank:USD", "USD", -1, "B", "2024-06-28"))
    finally:
        connection.rollback()
    assert dump(raw) == before


UNBALANCED = Entry(key="test:unbalanced", kind=EntryKind.CASH, phase=Phase.POSTED,
                   business_date=dt.date(2024, 6, 28), account="C01",
                   postings=(Posting("client:C01", "USD", 100), Posting("bank:USD", "USD", -99)))
BALANCED = Entry(key="test:balanced", kind=EntryKind.CASH, phase=Phase.POSTED,
                 business_date=dt.date(2024, 6, 28), account="C01",
                 postings=(Posting("client:C01", "USD", 100), Posting("bank:USD", "USD", -100)))


def test_the_journal_writer_refuses_an_unbalanced_entry(journal: str, book_url: str) -> None:
    """On a copy of the journal: the control at the end writes an entry."""
    copy_journal(journal, book_url)
    raw = Raw(book_url)
    before = dump(raw)
    engine = open_engine(book_url)
    try:
        # In Python, before anything is written.
        with pytest.raises(InvariantBroken, match="does not balance"), \
                write_transaction(engine) as connection:
            JournalWriter(connection).append(UNBALANCED)
        # In the database, in the same transaction: a writer whose queued postings were
        # corrupted after its own check (a bug between append and flush) is stopped there.
        refusals: tuple[type[Exception], ...] = (
            (InvariantBroken, psycopg.errors.CheckViolation) if raw.postgres
            else (InvariantBroken,))
        with pytest.raises(refusals, match="does not balance"), \
                write_transaction(engine) as connection:
            writer = JournalWriter(connection)
            writer.append(BALANCED)
            queued = list(writer._postings[-1])
            queued[POSTING_COLUMNS.index("amount")] += 1
            writer._postings[-1] = tuple(queued)
            writer.flush()
        # The control: the balanced entry alone is written.
        with write_transaction(engine) as connection:
            writer = JournalWriter(connection)
            writer.append(BALANCED)
            assert writer.flush() == 1
        entries, postings = dump(raw)
        assert (entries[:-1], postings[:-2]) == before
        assert entries[-1][1] == "test:balanced"
        assert verify(engine).problems == []
    finally:
        engine.dispose()
        raw.close()


def copy_journal(source: str, target: str) -> None:
    """Make the fresh book ``target`` a copy of ``source``."""
    if source.startswith("sqlite"):
        origin = sqlite3.connect(source.removeprefix("sqlite:///"))
        copy = sqlite3.connect(target.removeprefix("sqlite:///"))
        origin.backup(copy)
        origin.close()
        copy.close()
        return
    name, origin_name = target.rpartition("/")[2], source.rpartition("/")[2]
    deadline = time.monotonic() + 30
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                            (origin_name,)).fetchone()[0]:  # a closed session on its way out
            assert time.monotonic() < deadline, f"sessions still connected to {origin_name}"
            time.sleep(0.05)
        admin.execute(f"DROP DATABASE {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {origin_name}")


def _insert_guards(raw: Raw) -> list[tuple[str, str]]:
    return raw.rows("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
                    "('entries_append_only_replace', 'postings_append_only_replace') "
                    "ORDER BY name")


def test_the_writer_lifts_sqlites_insert_guards_only_inside_its_own_transaction(
        journals: Journals, tmp_path: Path) -> None:
    """The journal writer inserts with SQLite's INSERT OR REPLACE triggers dropped, inside its
    write transaction, and creates them again from their stored text before it commits. Whether
    the flush succeeds or fails, the guards afterwards are exactly those before; while the
    writer's transaction is open, no other connection can write at all. (SQLite only:
    PostgreSQL's guards are statement triggers, never lifted.)"""
    book_url = f"sqlite:///{tmp_path / 'copy.db'}"
    copy_journal(journals.get(book_url), book_url)
    raw = Raw(book_url)
    engine = open_engine(book_url)
    try:
        guards = _insert_guards(raw)
        assert [name for name, _ in guards] == ["entries_append_only_replace",
                                                "postings_append_only_replace"]
        taken = raw.rows("SELECT entry_key FROM entries ORDER BY sequence LIMIT 1")[0][0]
        duplicate = Entry(key=taken, kind=EntryKind.CASH, phase=Phase.POSTED,
                          business_date=dt.date(2024, 6, 28), account="C01",
                          postings=BALANCED.postings)
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), \
                write_transaction(engine) as connection:
            writer = JournalWriter(connection)
            writer.append(duplicate)
            writer.flush()
        assert _insert_guards(raw) == guards
        before = dump(raw)
        with write_transaction(engine) as connection:
            writer = JournalWriter(connection)
            writer.append(BALANCED)
            assert writer.flush() == 1
            other = sqlite3.connect(book_url.removeprefix("sqlite:///"), timeout=0,
                                    isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
        assert _insert_guards(raw) == guards
        entries, _ = dump(raw)
        assert entries[:-1] == before[0]
        forged = tuple("tampered" if column == "memo" else value
                       for column, value in zip(ENTRY_COLUMNS, entries[-1], strict=True))
        refusal = raw.attempt(f"INSERT OR REPLACE INTO entries ({', '.join(ENTRY_COLUMNS)}) "
                              f"VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})", *forged)
        assert refusal is not None and "append-only" in refusal
    finally:
        engine.dispose()
        raw.close()
