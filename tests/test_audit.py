"""Tamper evidence: `audit verify` finds every change to the journal made past its guards
(RELIABILITY.md: flip a byte, delete, swap, insert, truncate — 100% detected, a truncation with
the exported head).

The golden book is loaded and run through its last day once per database; each case tampers
with a fresh copy of it as someone holding the database's own credentials could: on SQLite the
append-only triggers are dropped first, on PostgreSQL the superuser disables every trigger of
`entries` and `postings` (one case needs neither: it only INSERTs). An untouched copy verifies
clean, with and without its exported head. (A forged entry appended after the exported head and
chained properly looks like any later entry: the head vouches for what came before it.)
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from conftest import (
    PG_ADMIN_URL,
    REQUIRE_PG,
    database_name,
    pg_admin,
    postgres_unavailable,
    run_cli,
    shared_path,
)
from zaplecze.bootstrap import open_book
from zaplecze.ledger.chain import entry_hash
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.services.audit import AuditResult, verify
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import repo
from zaplecze.store.db import open_engine
from zaplecze.store.journal import ENTRY_COLUMNS, POSTING_COLUMNS

GOLDEN_END = dt.date(2024, 9, 30)
SQLITE_GUARDS = [f"{table}_append_only_{verb}" for table in ("entries", "postings")
                 for verb in ("update", "delete")]


# --- books -----------------------------------------------------------------------------------


_admin = pg_admin
_database = database_name


def _wait_until_alone(url: str) -> None:
    deadline = time.monotonic() + 30
    while _admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", _database(url))[0][0]:
        assert time.monotonic() < deadline, f"sessions still connected to {_database(url)}"
        time.sleep(0.05)


def clone_into(source: str, target: str) -> None:
    """Copy one SQLite book into another file."""
    origin = sqlite3.connect(source.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target.removeprefix("sqlite:///"))
    origin.backup(copy)
    origin.close()
    copy.close()


@dataclass
class Master:
    url: str
    head: str
    entries: int


class Masters:
    """Per database, once per module: the golden book loaded and run through 2024-09-30."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, Master] = {}

    def master(self, kind: str) -> Master:
        if kind not in self.made:
            if kind == "sqlite":
                url = f"sqlite:///{self.folder / 'golden-master.db'}"
            else:
                name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
                _admin(f"CREATE DATABASE {name}")
                url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
            book = open_book(url, create=True)
            try:
                report = Loader(book.engine, book.calendar()).load(
                    shared_path("scenarios", "basic"))
                assert len(report.rejected) == 2  # the golden book's two deliberate rejections
                run_eod(book.engine, GOLDEN_END)
                result = verify(book.engine)
            finally:
                book.engine.dispose()
            assert result.problems == [] and result.entries > 60
            self.made[kind] = Master(url, result.head, result.entries)
        return self.made[kind]

    def close(self) -> None:
        for master in self.made.values():
            if master.url.startswith("postgresql"):
                _admin(f"DROP DATABASE IF EXISTS {_database(master.url)} WITH (FORCE)")


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Masters]:
    made = Masters(tmp_path_factory.mktemp("audit"))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def book(request: pytest.FixtureRequest, masters: Masters, tmp_path: Path) -> Iterator[Master]:
    """A fresh copy of the golden master, on each database."""
    if request.param == "postgresql":
        reason = postgres_unavailable()
        if reason:
            if REQUIRE_PG:
                pytest.fail(f"PostgreSQL is required here (ZAPLECZE_REQUIRE_PG=1): {reason}")
            pytest.skip(reason)
    master = masters.master(request.param)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'book.db'}"
        clone_into(master.url, url)
        yield Master(url, master.head, master.entries)
        return
    name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
    _wait_until_alone(master.url)
    _admin(f"CREATE DATABASE {name} TEMPLATE {_database(master.url)}")
    try:
        yield Master(f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}", master.head, master.entries)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def audit(url: str, expected_head: str | None = None) -> AuditResult:
    engine = open_engine(url)
    try:
        return verify(engine, expected_head=expected_head)
    finally:
        engine.dispose()


# --- the forger --------------------------------------------------------------------------------


class Forger:
    """A raw connection to the book, the journal's guards out of the way."""

    def __init__(self, url: str, bypass: bool = True) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            self.connection: Any = psycopg.connect(url, autocommit=True)
            if bypass:
                for table in ("entries", "postings"):
                    self.run(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        else:
            self.connection = sqlite3.connect(url.removeprefix("sqlite:///"),
                                              isolation_level=None)
            if bypass:
                for trigger in SQLITE_GUARDS:
                    self.run(f"DROP TRIGGER {trigger}")
        self.bypass = bypass

    def run(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        cursor = self.connection.execute(sql.replace("?", "%s") if self.postgres else sql,
                                         params)
        return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        if self.postgres and self.bypass:
            for table in ("entries", "postings"):
                self.run(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
        self.connection.close()

    # What a forger reads and writes.

    def journal(self) -> list[list[tuple[Any, ...]]]:
        return [self.run(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries ORDER BY sequence"),
                self.run(f"SELECT {', '.join(POSTING_COLUMNS)} FROM postings "
                         f"ORDER BY entry_sequence, line")]

    def last(self) -> int:
        return int(self.run("SELECT MAX(sequence) FROM entries")[0][0])

    def entry(self, sequence: int) -> Entry:
        row = self.run(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries WHERE sequence = ?",
                       sequence)[0]
        postings = tuple(Posting(account, asset, int(amount)) for account, asset, amount in
                         self.run("SELECT gl_account, asset, amount FROM postings WHERE "
                                  "entry_sequence = ? ORDER BY line", sequence))
        return repo.entry_of(SimpleNamespace(**dict(zip(ENTRY_COLUMNS, row, strict=True))),
                             postings)

    def hash_of(self, sequence: int) -> str:
        return str(self.run("SELECT hash FROM entries WHERE sequence = ?", sequence)[0][0])

    def sequence_of(self, kind: str, skip: int = 0) -> int:
        """A journal entry of this kind from the middle of the journal."""
        rows = self.run("SELECT sequence FROM entries WHERE kind = ? ORDER BY sequence", kind)
        return int(rows[len(rows) // 2 + skip][0])

    def write(self, sequence: int, entry: Entry, previous: str) -> None:
        """Insert ``entry`` at ``sequence``, chained to ``previous`` as the writer would."""
        self.run(f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES "
                 f"({', '.join('?' * len(ENTRY_COLUMNS))})",
                 sequence, entry.key, entry.kind.value, entry.phase.value,
                 entry.business_date.isoformat(),
                 entry.settle_date.isoformat() if entry.settle_date else None, entry.ref,
                 entry.account, entry.target_key, entry.linked_key, entry.memo, previous,
                 entry_hash(previous, entry, sequence))
        for line, posting in enumerate(entry.postings, start=1):
            self.run(f"INSERT INTO postings ({', '.join(POSTING_COLUMNS)}) VALUES "
                     f"(?, ?, ?, ?, ?, ?, ?)", sequence, line, posting.gl_account,
                     posting.asset, posting.amount, entry.basis.value,
                     entry.business_date.isoformat())

    def shift(self, start: int) -> None:
        """Move every entry from ``start`` on one place up (negated first: no key clash)."""
        for table, column in (("postings", "entry_sequence"), ("entries", "sequence")):
            self.run(f"UPDATE {table} SET {column} = -{column} - 1 WHERE {column} >= ?", start)
            self.run(f"UPDATE {table} SET {column} = -{column} WHERE {column} < 0")

    def rechain(self, start: int) -> None:
        """Recompute every hash from ``start`` on: a forger who knows the algorithm."""
        previous = self.hash_of(start - 1)
        for sequence in range(start, self.last() + 1):
            digest = entry_hash(previous, self.entry(sequence), sequence)
            self.run("UPDATE entries SET prev_hash = ?, hash = ? WHERE sequence = ?",
                     previous, digest, sequence)
            previous = digest


FORGED = Entry(key="cash:M999", kind=EntryKind.CASH, phase=Phase.POSTED,
               business_date=dt.date(2024, 7, 1), ref="M999", account="C01",
               memo="DEPOSIT backdated", postings=(Posting("client:C01", "USD", 10_000_000),
                                                   Posting("bank:USD", "USD", -10_000_000)))


# --- the tampering -----------------------------------------------------------------------------


def change_posting_amount(f: Forger) -> None:
    f.run("UPDATE postings SET amount = amount + 1 WHERE entry_sequence = ? AND line = 1",
          f.sequence_of("TRADE"))


def change_two_postings_keeping_the_balance(f: Forger) -> None:
    sequence = f.sequence_of("CASH")  # client and bank leg in one currency
    f.run("UPDATE postings SET amount = amount + 100000 WHERE entry_sequence = ? AND line = 1",
          sequence)
    f.run("UPDATE postings SET amount = amount - 100000 WHERE entry_sequence = ? AND line = 2",
          sequence)


def move_a_posting_to_another_client(f: Forger) -> None:
    f.run("UPDATE postings SET gl_account = CASE gl_account WHEN 'client:C02' THEN 'client:C01' "
          "ELSE 'client:C02' END WHERE entry_sequence = ? AND line = 1", f.sequence_of("CASH"))


def move_a_posting_to_another_date(f: Forger) -> None:
    f.run("UPDATE postings SET business_date = '2024-09-30' WHERE entry_sequence = ?",
          f.sequence_of("CASH"))


def move_a_pending_trade_onto_the_settled_view(f: Forger) -> None:
    f.run("UPDATE postings SET basis = 'B' WHERE entry_sequence = ?", f.sequence_of("TRADE"))


def reorder_the_postings_of_an_entry(f: Forger) -> None:
    sequence = f.sequence_of("TRADE")
    f.run("UPDATE postings SET line = -1 WHERE entry_sequence = ? AND line = 1", sequence)
    f.run("UPDATE postings SET line = 1 WHERE entry_sequence = ? AND line = 2", sequence)
    f.run("UPDATE postings SET line = 2 WHERE entry_sequence = ? AND line = -1", sequence)


def delete_one_posting(f: Forger) -> None:
    f.run("DELETE FROM postings WHERE entry_sequence = ? AND line = 5", f.sequence_of("TRADE"))


def add_a_balanced_pair_of_postings_without_bypassing_anything(f: Forger) -> None:
    sequence = f.sequence_of("CASH")
    f.run("INSERT INTO postings (entry_sequence, line, gl_account, asset, amount, basis, "
          "business_date) SELECT entry_sequence, line + 10, gl_account, asset, amount, basis, "
          "business_date FROM postings WHERE entry_sequence = ?", sequence)


def change_an_entry_memo(f: Forger) -> None:
    f.run("UPDATE entries SET memo = memo || ' (corrected)' WHERE sequence = ?",
          f.sequence_of("TRADE"))


def change_an_entry_date(f: Forger) -> None:
    sequence = f.sequence_of("CASH")
    f.run("UPDATE entries SET business_date = '2024-06-04' WHERE sequence = ?", sequence)
    f.run("UPDATE postings SET business_date = '2024-06-04' WHERE entry_sequence = ?", sequence)


def flip_one_character_of_a_stored_hash(f: Forger) -> None:
    sequence = f.sequence_of("TRADE")
    digest = f.hash_of(sequence)
    flipped = ("1" if digest[10] == "0" else "0").join((digest[:10], digest[11:]))
    f.run("UPDATE entries SET hash = ? WHERE sequence = ?", flipped, sequence)


def delete_an_entry_and_its_postings(f: Forger) -> None:
    sequence = f.sequence_of("CASH")
    f.run("DELETE FROM postings WHERE entry_sequence = ?", sequence)
    f.run("DELETE FROM entries WHERE sequence = ?", sequence)


def delete_an_entry_and_close_the_gap(f: Forger) -> None:
    sequence = f.sequence_of("CASH")
    f.run("DELETE FROM postings WHERE entry_sequence = ?", sequence)
    f.run("DELETE FROM entries WHERE sequence = ?", sequence)
    for table, column in (("postings", "entry_sequence"), ("entries", "sequence")):
        f.run(f"UPDATE {table} SET {column} = -({column} - 1) WHERE {column} > ?", sequence)
        f.run(f"UPDATE {table} SET {column} = -{column} WHERE {column} < 0")


def insert_a_forged_entry_in_the_middle(f: Forger) -> None:
    sequence = f.sequence_of("CASH")
    f.shift(sequence)
    f.write(sequence, FORGED, f.hash_of(sequence - 1))


def insert_a_forged_entry_and_rechain_the_rest(f: Forger) -> None:
    """A consistent chain again: only the head exported before tells."""
    sequence = f.sequence_of("CASH")
    f.shift(sequence)
    f.write(sequence, FORGED, f.hash_of(sequence - 1))
    f.rechain(sequence + 1)


def swap_two_entries(f: Forger) -> None:
    first, second = f.sequence_of("TRADE"), f.sequence_of("TRADE", skip=3)
    for table, column in (("postings", "entry_sequence"), ("entries", "sequence")):
        f.run(f"UPDATE {table} SET {column} = -1 WHERE {column} = ?", first)
        f.run(f"UPDATE {table} SET {column} = ? WHERE {column} = ?", first, second)
        f.run(f"UPDATE {table} SET {column} = ? WHERE {column} = -1", second)


def truncate_the_tail(f: Forger) -> None:
    last = f.last()
    f.run("DELETE FROM postings WHERE entry_sequence > ?", last - 3)
    f.run("DELETE FROM entries WHERE sequence > ?", last - 3)


def orphan_postings(f: Forger) -> None:
    f.run("INSERT INTO postings (entry_sequence, line, gl_account, asset, amount, basis, "
          "business_date) VALUES (0, 1, 'client:C01', 'USD', 500, 'B', '2024-06-03'), "
          "(0, 2, 'bank:USD', 'USD', -500, 'B', '2024-06-03')")


@dataclass(frozen=True)
class Case:
    tamper: Callable[[Forger], None]
    needs_head: bool = False  # found only against the head exported before
    bypass: bool = True  # the forger lifts the guards first

    def __str__(self) -> str:
        return self.tamper.__name__


CASES = [
    Case(change_posting_amount), Case(change_two_postings_keeping_the_balance),
    Case(move_a_posting_to_another_client), Case(move_a_posting_to_another_date),
    Case(move_a_pending_trade_onto_the_settled_view), Case(reorder_the_postings_of_an_entry),
    Case(delete_one_posting),
    Case(add_a_balanced_pair_of_postings_without_bypassing_anything, bypass=False),
    Case(change_an_entry_memo), Case(change_an_entry_date),
    Case(flip_one_character_of_a_stored_hash), Case(delete_an_entry_and_its_postings),
    Case(delete_an_entry_and_close_the_gap), Case(insert_a_forged_entry_in_the_middle),
    Case(insert_a_forged_entry_and_rechain_the_rest, needs_head=True),
    Case(swap_two_entries),
    Case(truncate_the_tail, needs_head=True), Case(orphan_postings),
]


def tamper(url: str, case: Case) -> None:
    forger = Forger(url, bypass=case.bypass)
    try:
        before = forger.journal()
        case.tamper(forger)
        assert forger.journal() != before, f"{case} changed nothing: the test is wrong"
    finally:
        forger.close()


# --- the tests ---------------------------------------------------------------------------------


def test_an_untouched_book_verifies_clean(book: Master) -> None:
    result = audit(book.url)
    assert (result.problems, result.entries, result.head) == ([], book.entries, book.head)
    assert audit(book.url, expected_head=book.head).problems == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tampering_is_detected(book: Master, case: Case) -> None:
    tamper(book.url, case)
    if not case.needs_head:
        assert audit(book.url).problems, f"{case} went unnoticed by audit verify"
    anchored = audit(book.url, expected_head=book.head)
    assert anchored.problems, f"{case} went unnoticed even against the exported head"


def test_the_cli_reports_an_intact_journal_and_its_head(book: Master) -> None:
    done = run_cli(book.url, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"journal intact: {book.entries} entries; head {book.head}"
    assert run_cli(book.url, "audit", "verify", "--head", book.head).returncode == 0


def test_the_cli_exits_1_with_tampered_lines(book: Master) -> None:
    tamper(book.url, Case(change_an_entry_memo))
    done = run_cli(book.url, "audit", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("TAMPERED ") for line in lines), done.stderr
    assert any("was changed" in line for line in lines), lines
    assert "journal intact" not in done.stdout


def test_the_cli_finds_a_truncated_journal_against_the_exported_head(book: Master) -> None:
    tamper(book.url, Case(truncate_the_tail))
    done = run_cli(book.url, "audit", "verify", "--head", book.head)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("TAMPERED ") and "truncated" in done.stderr, done.stderr
