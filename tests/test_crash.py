"""kill -9 during `load` and `eod`, then run again: nothing lost, nothing twice, no half-applied
batch, and the same book as an uninterrupted run (RELIABILITY.md, the crash row of the battery).

A book of 30,000 trades is generated once per session. For each database an uninterrupted
`load` into a fresh book is the reference. A *chain* is a fresh book in which `load` is started as
an operator starts it (a subprocess), SIGKILLed after a random delay, started again and killed
again — KILLS_PER_CHAIN times — and then run to completion. After every kill the book must hold
together on its own (whole batches only, every record with its entries and every entry with its
postings, the materialised balances equal to the fold of the journal); after completion it must
equal the reference: every trade booked once, the same journal head hash, the same positions
and cash, and `audit verify` clean. The end-of-day test does the same with `eod` on a copy of
the loaded reference book and compares with an uninterrupted `eod` on another copy.

Fast tier: per database, one chain of 3 kills of `load`, and one kill of `eod` through the
book's first two weeks.
Deep tier (ZAPLECZE_DEEP=1): per database, 10 chains of 3 kills of `load` (30 kill points) and
5 runs of 2 kills of `eod` through the book's last day.
Delays come from ZAPLECZE_CRASH_SEED (random unless set); every failure message names it.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from conftest import CLI, PG_ADMIN_URL, ROOT, database_name, pg_admin, run_cli
from zaplecze.kernel.calendar import weekdays
from zaplecze.services.audit import verify
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.reporting import build
from zaplecze.store import bulk_indexes, repo
from zaplecze.store.db import open_engine

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
SEED = int(os.environ.get("ZAPLECZE_CRASH_SEED") or random.SystemRandom().randrange(1_000_000))
# Batches of 5,000 rows (smaller than the default) so that the 30,000-trade book is six of
# them, each a place for a kill to land between.
BATCH_ROWS = 5_000
LOAD_OPTIONS = ("--batch-rows", str(BATCH_ROWS))
SHAPE = BookShape(seed=20240603, accounts=200, instruments=40, trades=30_000, months=2,
                  include_story=False)
LOAD_CHAINS = 10 if DEEP else 1
KILLS_PER_CHAIN = 3
EOD_RUNS = 5 if DEEP else 1
EOD_KILLS_PER_RUN = 2 if DEEP else 1
EOD_ATTEMPTS = 4  # runs that end before their kill are tried again, aiming earlier
FIRST_DAY, LAST_DAY = book_period(SHAPE)
# The fast tier's end of day covers two weeks (10 business days); the deep tier the whole book.
EOD_THROUGH = LAST_DAY if DEEP else FIRST_DAY + dt.timedelta(days=11)
STARTUP_SECONDS = 0.6  # a `zaplecze` process before it starts to work
RESCAN_SHARE = 0.15  # re-reading booked rows, as a share of booking them
# The reference-data files of the generated book, in load order, with their tables.
FILE_TABLES = (("instruments.csv", "instruments"), ("accounts.csv", "accounts"),
               ("fees.csv", "fee_rules"), ("withholding.csv", "withholding_rates"),
               ("prices.csv", "prices"), ("fx.csv", "fx_rates"), ("cash.csv", "cash_movements"))


# --- the book under test -----------------------------------------------------------------------


@dataclass
class BigBook:
    folder: Path
    rows: dict[str, int]  # data rows per file
    trade_rows: list[tuple[str, str]]  # (trade_id, action) of every trades.csv row, in order

    @property
    def new_ids(self) -> set[str]:
        return {trade_id for trade_id, action in self.trade_rows if action != "CANCEL"}

    def batches(self) -> list[tuple[set[str], set[str]]]:
        """(NEW trade ids, CANCELled trade ids) booked once the first k batches are in."""
        result = []
        for end in range(0, len(self.trade_rows) + BATCH_ROWS, BATCH_ROWS):
            rows = self.trade_rows[:end]
            result.append(({trade_id for trade_id, action in rows if action != "CANCEL"},
                           {trade_id for trade_id, action in rows if action == "CANCEL"}))
            if end >= len(self.trade_rows):
                break
        return result


@pytest.fixture(scope="session")
def big_book(tmp_path_factory: pytest.TempPathFactory) -> BigBook:
    """The 30,000-trade book, generated once per session."""
    folder = tmp_path_factory.mktemp("crash-book")
    rows = generate_book(SHAPE, folder)
    with (folder / "trades.csv").open(encoding="utf-8", newline="") as stream:
        trade_rows = [(row["trade_id"], row["action"] or "NEW") for row in csv.DictReader(stream)]
    assert len(trade_rows) == rows["trades.csv"] > 5 * BATCH_ROWS
    assert rows["corporate_actions.csv"] == 0  # everything the load books is checked below
    return BigBook(folder, rows, trade_rows)


# --- books: fresh, copied, checked ---------------------------------------------------------------


def kind_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


_admin = pg_admin
_database = database_name


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def wait_until_alone(url: str, timeout: float = 60) -> None:
    """PostgreSQL: wait until no session is connected to the book (a killed client's server
    process ends when it notices the broken connection)."""
    if kind_of(url) != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while _admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", _database(url))[0][0]:
        assert time.monotonic() < deadline, f"sessions still connected to {_database(url)}"
        time.sleep(0.05)


def clone_into(source: str, target: str) -> None:
    """Make ``target`` (a fresh book URL of the same database) a copy of ``source``."""
    wait_until_alone(source)
    if kind_of(source) == "sqlite":
        with sqlite3.connect(_sqlite_path(source)) as origin, \
                sqlite3.connect(_sqlite_path(target)) as copy:
            origin.backup(copy)
        origin.close()
        copy.close()
        return
    wait_until_alone(target)
    _admin(f"DROP DATABASE IF EXISTS {_database(target)}")
    _admin(f"CREATE DATABASE {_database(target)} TEMPLATE {_database(source)}")


class Books:
    """The books this module makes besides book_url's, dropped at the end of the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.databases: list[str] = []

    def fresh(self, kind: str) -> str:
        name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
        if kind == "sqlite":
            return f"sqlite:///{self.folder / name}.db"
        _admin(f"CREATE DATABASE {name}")
        self.databases.append(name)
        return _pg_url(name)

    def copy(self, source: str) -> str:
        target = self.fresh(kind_of(source))
        clone_into(source, target)
        return target

    def close(self) -> None:
        for name in self.databases:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def engine_of(url: str) -> Iterator[Engine]:
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def snapshot(url: str) -> Iterator[Connection]:
    """One consistent read of the whole book."""
    with engine_of(url) as engine, engine.connect() as connection:
        if kind_of(url) == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


# Queries that return no row in a book that holds together, killed or not.
MUST_BE_EMPTY = {
    "an entry key booked twice":
        "SELECT entry_key FROM entries GROUP BY entry_key HAVING COUNT(*) > 1",
    "a trade without its TRADE entry":
        "SELECT t.trade_id FROM trades t WHERE NOT EXISTS (SELECT 1 FROM entries e "
        "WHERE e.entry_key = 'trade:' || t.trade_id AND e.kind = 'TRADE')",
    "a TRADE entry without its trade":
        "SELECT e.entry_key FROM entries e WHERE e.kind = 'TRADE' AND NOT EXISTS "
        "(SELECT 1 FROM trades t WHERE t.trade_id = substr(e.entry_key, 7))",
    "a cancel without its VOID entry":
        "SELECT c.trade_id FROM cancels c WHERE NOT EXISTS (SELECT 1 FROM entries e "
        "WHERE e.entry_key = 'void:trade:' || c.trade_id AND e.phase = 'VOID')",
    "a VOID entry without its cancel":
        "SELECT e.entry_key FROM entries e WHERE e.phase = 'VOID' AND NOT EXISTS "
        "(SELECT 1 FROM cancels c WHERE c.trade_id = substr(e.entry_key, 12))",
    "a booked cash movement without its entry":
        "SELECT m.movement_id FROM cash_movements m WHERE m.decision = 'BOOKED' AND NOT EXISTS "
        "(SELECT 1 FROM entries e WHERE e.entry_key = 'cash:' || m.movement_id)",
    "a CASH entry without its booked movement":
        "SELECT e.entry_key FROM entries e WHERE e.kind = 'CASH' AND NOT EXISTS "
        "(SELECT 1 FROM cash_movements m WHERE m.decision = 'BOOKED' "
        "AND m.movement_id = substr(e.entry_key, 6))",
    "an entry without postings":
        "SELECT e.sequence FROM entries e WHERE NOT EXISTS "
        "(SELECT 1 FROM postings p WHERE p.entry_sequence = e.sequence)",
    "postings without their entry":
        "SELECT DISTINCT p.entry_sequence FROM postings p WHERE NOT EXISTS "
        "(SELECT 1 FROM entries e WHERE e.sequence = p.entry_sequence)",
    "an entry that does not balance":
        "SELECT entry_sequence, asset FROM postings GROUP BY entry_sequence, asset "
        "HAVING SUM(amount) <> 0",
    "an entry whose posting lines are not 1..n":
        "SELECT entry_sequence FROM postings GROUP BY entry_sequence "
        "HAVING MIN(line) <> 1 OR MAX(line) <> COUNT(*)",
    "a posting on another basis or date than its entry's phase and date":
        "SELECT p.entry_sequence FROM postings p JOIN entries e ON e.sequence = p.entry_sequence "
        "WHERE p.business_date <> e.business_date OR NOT ((e.phase = 'POSTED' AND p.basis = 'B') "
        "OR (e.phase IN ('PENDING', 'VOID') AND p.basis = 'T') "
        "OR (e.phase = 'POST' AND p.basis = 'S'))",
    "an entry that does not link to the one before it":
        "SELECT e.sequence FROM entries e JOIN entries b ON b.sequence = e.sequence - 1 "
        "WHERE e.prev_hash <> b.hash",
    "a rejected row (this book has none)":
        "SELECT file, line, reason FROM rejections",
}


@dataclass
class State:
    entries: int
    trades: int
    batches: int  # whole trades.csv batches in the book
    files: str  # how far the load got, file by file

    def __str__(self) -> str:
        return f"{self.files}, {self.batches} trade batches, {self.entries} entries"


def check_book(url: str, book: BigBook, *, complete: bool = False) -> tuple[State, list[str]]:
    """The invariants of a book at rest; with ``complete``, also that the whole folder is in."""
    problems: list[str] = []
    with snapshot(url) as connection:
        def rows(sql: str) -> list[Any]:
            return list(connection.execute(text(sql)).all())

        for name, sql in MUST_BE_EMPTY.items():
            found = rows(sql)
            if found:
                problems.append(f"{name}: {found[:3]} ({len(found)} in all)")
        for table in ("entries", "trades"):
            count, first, last = rows(
                f"SELECT COUNT(*), MIN(sequence), MAX(sequence) FROM {table}")[0]
            if count and (first, last) != (1, count):
                problems.append(f"{table}: sequences {first}..{last} for {count} rows (a gap)")
        stored = repo.stored_balances(connection)
        folded = repo.folded_balances(connection)
        if stored != folded:
            differing = sorted(set(stored.items()) ^ set(folded.items()))[:4]
            problems.append(f"stored balances differ from the fold of the journal: {differing}")
        # Whole batches, in load order: every reference file is all in or not at all, and
        # trades.csv is in by whole batches of BATCH_ROWS rows.
        progress = []
        for file_name, table in FILE_TABLES:
            count = rows(f"SELECT COUNT(*) FROM {table}")[0][0]
            progress.append((file_name, count, book.rows[file_name]))
        new_ids = {row[0] for row in rows("SELECT trade_id FROM trades")}
        cancel_ids = {row[0] for row in rows("SELECT trade_id FROM cancels")}
        prefixes = book.batches()
        whole = [k for k, prefix in enumerate(prefixes) if prefix == (new_ids, cancel_ids)]
        if not whole:
            problems.append(f"trades.csv is half-applied: {len(new_ids)} trades and "
                            f"{len(cancel_ids)} cancels are no whole number of batches")
        batches = whole[0] if whole else -1
        progress.append(("trades.csv batches", batches, len(prefixes) - 1))
        shape = "".join("i" if count == total else "o" if count == 0
                        else "p" if name.startswith("trades") and count > 0 else "h"
                        for name, count, total in progress)
        if not re.fullmatch(r"i*p?o*", shape):
            problems.append(f"files half-loaded or loaded out of order: {progress}")
        if complete and shape != "i" * len(progress):
            problems.append(f"the load is not complete: {progress}")
        if complete:
            trade_entries = rows("SELECT COUNT(*) FROM entries WHERE kind = 'TRADE'")[0][0]
            if not len(new_ids) == trade_entries == len(book.new_ids):
                problems.append(f"{len(book.new_ids)} NEW trades in the file, {len(new_ids)} "
                                f"booked, {trade_entries} TRADE entries")
        entries = rows("SELECT COUNT(*) FROM entries")[0][0]
    files = ", ".join(f"{name} {count}/{total}" for name, count, total in progress)
    return State(entries, len(new_ids), batches, files), problems


def check_end_of_day(url: str, days: list[dt.date]) -> tuple[int, list[str]]:
    """An end of day at rest: the days run are the first k business days, each whole."""
    problems = []
    with snapshot(url) as connection:
        run = [row[0] for row in connection.execute(
            text("SELECT business_date FROM eod_runs ORDER BY business_date"))]
        if run != [day.isoformat() for day in days[:len(run)]]:
            problems.append(f"the days run are not the first {len(run)} business days: {run}")
        last = run[-1] if run else "0000-00-00"
        for name, sql in {
            "a trade due by the last day run is not settled":
                "SELECT e.entry_key FROM entries e WHERE e.kind = 'TRADE' AND e.phase = 'PENDING' "
                "AND e.settle_date <= :last AND NOT EXISTS "
                "(SELECT 1 FROM entries x WHERE x.target_key = e.entry_key)",
            "a settlement after the last day run":
                "SELECT entry_key FROM entries WHERE phase = 'POST' AND business_date > :last",
            "a valuation of a day not run":
                "SELECT business_date FROM valuations WHERE business_date NOT IN "
                "(SELECT business_date FROM eod_runs)",
            "a day run without its valuations":
                "SELECT r.business_date FROM eod_runs r WHERE NOT EXISTS "
                "(SELECT 1 FROM valuations v WHERE v.business_date = r.business_date)",
        }.items():
            found = connection.execute(text(sql), {"last": last}).all()
            if found:
                problems.append(f"{name}: {found[:3]} ({len(found)} in all)")
    return len(run), problems


def eod_runs(url: str) -> list[tuple[Any, ...]]:
    with snapshot(url) as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT business_date, entries_booked, journal_head FROM eod_runs "
            "ORDER BY business_date"))]


def head_of(url: str) -> str:
    with snapshot(url) as connection:
        row = connection.execute(text(
            "SELECT sequence, hash FROM entries ORDER BY sequence DESC LIMIT 1")).first()
    return f"{row[0]}:{row[1]}" if row else "0:"


def reports(url: str, day: dt.date, names: tuple[str, ...]) -> dict[str, Any]:
    builders = {
        "positions trade": ("positions", {"as_of": day, "basis": "trade"}),
        "positions settlement": ("positions", {"as_of": day, "basis": "settlement"}),
        "cash trade": ("cash", {"as_of": day, "basis": "trade"}),
        "cash settlement": ("cash", {"as_of": day, "basis": "settlement"}),
        "trial-balance": ("trial-balance", {"as_of": day}),
        "stock-record": ("stock-record", {"as_of": day}),
        "valuation": ("valuation", {"as_of": day}),
    }
    with engine_of(url) as engine:
        return {name: build(engine, builders[name][0], **builders[name][1]) for name in names}


# --- running and killing -----------------------------------------------------------------------


@dataclass
class Kill:
    command: str
    target: float  # where in the whole run it was aimed (0..1)
    delay: float
    killed: bool = False  # False: the command ended on its own before the delay ran out
    state: str = ""

    def __str__(self) -> str:
        what = "killed" if self.killed else "ended before the kill"
        return (f"{self.command} aimed at {self.target:.0%}, {what} after {self.delay:.2f}s "
                f"-> {self.state}")


def run_and_kill(url: str, args: list[str], delay: float, log: Path) -> bool:
    """Start ``zaplecze --db URL ARGS``, SIGKILL it after ``delay`` seconds; True if it was
    killed, False if it had ended (successfully) by then."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with log.open("w+", encoding="utf-8") as output:
        process = subprocess.Popen([*CLI, "--db", url, *args], stdout=output,
                                   stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    if process.returncode == -signal.SIGKILL:
        return True
    assert process.returncode == 0, (f"zaplecze {' '.join(args)} failed on its own "
                                     f"(seed {SEED}):\n{log.read_text()}")
    return False


def kill_points(rng: random.Random, count: int) -> list[float]:
    """Where in the whole run (0: start, 1: end) each of a chain's kills should land; not in
    the last tenth, where a run on a faster moment could end before its kill."""
    return sorted(rng.uniform(0.0, 0.9) for _ in range(count))


def aim(rng: random.Random, command: str, target: float, done: float, seconds: float,
        rescan_share: float) -> Kill:
    """A kill of a re-run near ``target`` of the whole run when ``done`` of it is in already:
    its delay is the interpreter's start, the re-reading of what is booked, then the rest at the
    pace of the uninterrupted run (``seconds``)."""
    if target <= done:
        target = rng.uniform(done, max(done, 0.9))
    work = max(seconds - STARTUP_SECONDS, 0.5)
    return Kill(command, target,
                STARTUP_SECONDS + done * rescan_share * work + (target - done) * work)


@dataclass
class Reference:
    url: str
    seconds: float  # the uninterrupted command, start to end
    head: str
    reports: dict[str, Any] = field(default_factory=dict)
    eod_runs: list[tuple[Any, ...]] = field(default_factory=list)


class References:
    """Per database, once per session: the book loaded without interruption and, on a copy of
    it, the end of day run without interruption."""

    def __init__(self, books: Books, book: BigBook) -> None:
        self.books = books
        self.book = book
        self.loaded: dict[str, Reference] = {}
        self.ended: dict[str, Reference] = {}

    def load(self, kind: str) -> Reference:
        if kind not in self.loaded:
            url = self.books.fresh(kind)
            run_cli(url, "init", check=True)
            started = time.monotonic()
            done = run_cli(url, "load", *LOAD_OPTIONS, str(self.book.folder))
            seconds = time.monotonic() - started
            assert done.returncode == 0, f"the reference load failed:\n{done.stdout}{done.stderr}"
            _, problems = check_book(url, self.book, complete=True)
            assert not problems, f"the uninterrupted load does not hold together: {problems}"
            self.loaded[kind] = Reference(url, seconds, head_of(url), reports(
                url, LAST_DAY, ("positions trade", "cash trade")))
        return self.loaded[kind]

    def end_of_day(self, kind: str) -> Reference:
        if kind not in self.ended:
            url = self.books.copy(self.load(kind).url)
            started = time.monotonic()
            run_cli(url, "eod", "--through", EOD_THROUGH.isoformat(), check=True)
            seconds = time.monotonic() - started
            self.ended[kind] = Reference(url, seconds, head_of(url),
                                         reports(url, EOD_THROUGH, EOD_REPORTS), eod_runs(url))
        return self.ended[kind]


EOD_REPORTS = ("positions trade", "positions settlement", "cash settlement", "trial-balance",
               "valuation")


@pytest.fixture(scope="session")
def references(tmp_path_factory: pytest.TempPathFactory,
               big_book: BigBook) -> Iterator[References]:
    books = Books(tmp_path_factory.mktemp("crash-references"))
    try:
        yield References(books, big_book)
    finally:
        books.close()


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("deferred", [False, True], ids=["indexes-kept", "indexes-deferred"])
@pytest.mark.parametrize("chain", range(LOAD_CHAINS))
def test_kill_9_during_load_then_load_again(book_url: str, chain: int, deferred: bool,
                                            big_book: BigBook, references: References,
                                            tmp_path: Path) -> None:
    """Killed at random points and loaded again, the book is always whole; with the indexes
    deferred (dropped while the trades go in), a kill leaves them unbuilt, and the next load
    builds them."""
    kind = kind_of(book_url)
    reference = references.load(kind)
    options = (*LOAD_OPTIONS, "--defer-indexes" if deferred else "--no-defer-indexes")
    rng = random.Random(f"{SEED}/{kind}/load/{chain}/{deferred}")
    run_cli(book_url, "init", check=True)
    kills: list[Kill] = []
    left_unbuilt = 0  # kills that left the deferred indexes to build
    done = 0.0  # the share of the trades booked so far
    for number, target in enumerate(kill_points(rng, KILLS_PER_CHAIN)):
        kill = aim(rng, "load", target, done, reference.seconds, RESCAN_SHARE)
        kill.killed = run_and_kill(book_url, ["load", *options, str(big_book.folder)],
                                   kill.delay,
                                   tmp_path / f"load-{number}.log")
        wait_until_alone(book_url)
        state, problems = check_book(book_url, big_book)
        kill.state = str(state)
        with engine_of(book_url) as engine, engine.connect() as connection:
            left_unbuilt += bool(bulk_indexes.deferred(connection))
        kills.append(kill)
        done = state.trades / len(big_book.new_ids)
        assert not problems, f"seed {SEED}; {'; '.join(map(str, kills))}:\n" + "\n".join(problems)
    print(f"\n{kind} load chain {chain} (seed {SEED}, reference {reference.seconds:.1f}s):\n  "
          + "\n  ".join(map(str, kills)))
    assert any(kill.killed for kill in kills), f"no kill landed while loading: {kills}"
    assert left_unbuilt if deferred else not left_unbuilt, (left_unbuilt, kills)

    finished = run_cli(book_url, "load", *options, str(big_book.folder))
    context = f"seed {SEED}; {'; '.join(map(str, kills))}"
    assert finished.returncode == 0, f"{context}\n{finished.stdout}{finished.stderr}"
    assert "rejected" not in finished.stdout, finished.stdout
    state, problems = check_book(book_url, big_book, complete=True)
    assert not problems, f"{context}:\n" + "\n".join(problems)
    assert state.trades == len(big_book.new_ids) == len({t for t, _ in big_book.trade_rows})
    assert head_of(book_url) == reference.head, f"{context}: another journal than the reference"
    assert reports(book_url, LAST_DAY, ("positions trade", "cash trade")) == reference.reports, \
        context
    with engine_of(book_url) as engine:
        audit = verify(engine, expected_head=reference.head)
    assert audit.problems == [], f"{context}: {audit.problems}"
    assert audit.entries == state.entries
    with engine_of(book_url) as engine, engine.connect() as connection:
        assert bulk_indexes.deferred(connection) == [], context
        assert set(bulk_indexes.definitions(connection)) == set(bulk_indexes.DEFERRABLE), context


@pytest.mark.parametrize("run", range(EOD_RUNS))
def test_kill_9_during_eod_then_eod_again(book_url: str, run: int, references: References,
                                          big_book: BigBook, tmp_path: Path) -> None:
    kind = kind_of(book_url)
    uninterrupted = references.end_of_day(kind)
    clone_into(references.load(kind).url, book_url)
    days = weekdays(FIRST_DAY, EOD_THROUGH)
    rng = random.Random(f"{SEED}/{kind}/eod/{run}")
    kills: list[Kill] = []
    done_days = 0
    for number, target in enumerate(kill_points(rng, EOD_KILLS_PER_RUN)):
        kill = aim(rng, "eod", target, done_days / len(days), uninterrupted.seconds, 0.0)
        for attempt in range(EOD_ATTEMPTS):
            kill.killed = run_and_kill(book_url, ["eod", "--through", EOD_THROUGH.isoformat()],
                                       kill.delay, tmp_path / f"eod-{number}-{attempt}.log")
            if kill.killed or attempt == EOD_ATTEMPTS - 1:
                break
            # It ran faster than the reference and ended before the kill: start again from
            # the loaded book, aiming earlier (a whole run proves nothing about a crash).
            wait_until_alone(book_url)
            clone_into(references.load(kind).url, book_url)
            done_days = 0
            kill.delay = STARTUP_SECONDS + (kill.delay - STARTUP_SECONDS) / 2
        wait_until_alone(book_url)
        state, problems = check_book(book_url, big_book, complete=True)
        done_days, day_problems = check_end_of_day(book_url, days)
        kill.state = f"{done_days} of {len(days)} days run, {state.entries} entries"
        kills.append(kill)
        assert not problems + day_problems, (f"seed {SEED}; {'; '.join(map(str, kills))}:\n"
                                             + "\n".join(problems + day_problems))
    print(f"\n{kind} eod run {run} (seed {SEED}, uninterrupted {uninterrupted.seconds:.1f}s):\n  "
          + "\n  ".join(map(str, kills)))
    assert any(kill.killed for kill in kills), f"no kill landed during end of day: {kills}"

    run_cli(book_url, "eod", "--through", EOD_THROUGH.isoformat(), check=True)
    context = f"seed {SEED}; {'; '.join(map(str, kills))}"
    _, problems = check_book(book_url, big_book, complete=True)
    done_days, day_problems = check_end_of_day(book_url, days)
    assert not problems + day_problems, f"{context}:\n" + "\n".join(problems + day_problems)
    assert done_days == len(days)
    assert eod_runs(book_url) == uninterrupted.eod_runs, context
    assert head_of(book_url) == uninterrupted.head, f"{context}: another journal than without kill"
    assert reports(book_url, EOD_THROUGH, EOD_REPORTS) == uninterrupted.reports, context
    with engine_of(book_url) as engine:
        audit = verify(engine, expected_head=uninterrupted.head)
    assert audit.problems == [], f"{context}: {audit.problems}"
