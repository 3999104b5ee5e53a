#!/usr/bin/env python3
"""Zaplecze's benchmark: how fast the product books, closes days and reports a big book.

    .venv/bin/python bench/run.py [--trades N] [--accounts N] [--instruments N] [--quick]
                                  [--skip-postgres] [--pg-url URL] [--out FILE] [--keep]

It drives the product only through its command line (the book-folder contract: init, load,
eod, report, export), each command a child process, and prints figures; it never asserts on
time. A step that fails prints its error and the bench goes on to the next figure.

Figures:
 1. generating the synthetic book (zaplecze.services.book_generator);
 2. `load` throughput (trades/s) and the load's peak memory, on SQLite and PostgreSQL;
 3. beside it, the raw bulk-insert rate of the same database engine in the same run (plain
    batched inserts of posting-shaped rows: SQLite multi-row INSERTs in one transaction with WAL
    and synchronous=FULL; PostgreSQL COPY) and the ratio load trades/s ÷ (raw rows/s ÷ postings per
    trade): the share of the engine's bare insert speed that booking keeps;
 4. `eod --through LAST` in total and per business day;
 5. the core reports as of a date in the middle of the book, each in its own process;
 6. on a book of at most 100,000 trades: `ledger -f EXPORT bal --flat --no-total` against our own
    init + load + report trial-balance;
 7. settlement, in a child process on the SQLite book (bench/settlement_bench.py): netting
    every trade into obligations and making their instructions (seconds), and writing their
    ISO 20022 sese.023 files (messages/s), a sample validated against the official schema;
 8. the REST API over loopback on the SQLite book (bench/api_bench.py): `zaplecze serve
    --workers 2`, an open loop of 200 requests/s for 30 s after a warm-up (one account's
    positions as of a date, one account's blotter page), p50/p90/p99 latency from each
    request's scheduled start; then a closed loop of 8 clients for the sustainable throughput.
Peak memory is the child's own maximum resident set size, read with os.wait4 per child.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # run from a checkout without an installed package
    sys.path.insert(0, str(REPO / "src"))

import zaplecze  # noqa: E402
from zaplecze.kernel.calendar import weekdays  # noqa: E402
from zaplecze.services.book_generator import BookShape, book_period, generate_book  # noqa: E402
from zaplecze.store.repo import SQLITE_VALUES_PER_STATEMENT  # noqa: E402

POSTINGS_PER_TRADE_ESTIMATE = 5
LEDGER_BOOK_TRADES_MAX = 100_000
QUICK_TRADES = 20_000
BENCH_DATABASE = "zaplecze_bench"
RAW_DATABASE = "zaplecze_bench_raw"
RAW_COLUMNS = ("entry_id", "line", "gl_account", "asset", "amount", "basis", "business_date")
RAW_TABLE_SQL = ("CREATE TABLE raw_postings (entry_id BIGINT NOT NULL, line INT NOT NULL, "
                 "gl_account TEXT NOT NULL, asset TEXT NOT NULL, amount BIGINT NOT NULL, "
                 "basis TEXT NOT NULL, business_date TEXT NOT NULL, "
                 "PRIMARY KEY (entry_id, line))")


# -- figures ------------------------------------------------------------------------------

@dataclass
class Figure:
    number: int
    name: str
    backend: str
    value: float | None
    unit: str
    peak_mib: float | None = None
    note: str = ""
    error: str = ""


@dataclass
class Figures:
    rows: list[Figure] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, number: int, name: str, backend: str, value: float | None, unit: str,
            peak_mib: float | None = None, note: str = "") -> Figure:
        figure = Figure(number, name, backend, value, unit, peak_mib, note)
        self.rows.append(figure)
        shown = "-" if value is None else _number(value)
        memory = f", peak {peak_mib:.0f} MiB" if peak_mib is not None else ""
        self.say(f"  {name} [{backend}]: {shown} {unit}{memory}" + (f"  ({note})" if note else ""))
        return figure

    def fail(self, number: int, name: str, backend: str, error: str) -> None:
        self.rows.append(Figure(number, name, backend, None, "", error=error))
        self.say(f"  {name} [{backend}]: FAILED: {error}")

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:8.1f}s] {text}", flush=True)

    @contextlib.contextmanager
    def step(self, number: int, name: str, backend: str) -> Iterator[None]:
        """Run one measurement; a failure is recorded and printed, and the bench goes on."""
        self.say(f"{name} [{backend}] ...")
        try:
            yield
        except Exception as error:  # the bench reports every failure and goes on
            self.fail(number, name, backend, f"{type(error).__name__}: {_short(str(error))}")


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.3f}"


def _short(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " …"


# -- running a child and measuring it -----------------------------------------------------

@dataclass
class Run:
    argv: list[str]
    returncode: int
    seconds: float
    peak_mib: float | None
    stdout: str
    stderr: str
    timed_out: bool = False


class CommandFailed(RuntimeError):
    pass


# Where wait4 exists, each command is started by a small Python process of its own that times
# it and reads its rusage: on Linux a process's peak-memory count starts at its parent's size
# when it was forked, and this bench holds a few hundred MiB by its end (started straight from
# here, the export and `ledger` of figure 6 both read this process's 154-1,414 MiB).
MEASURER = """import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL)
_pid, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
with open(sys.argv[1], "w") as report:
    report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {seconds!r}")
"""


def run_measured(argv: Sequence[str], timeout_s: float) -> Run:
    """Run ``argv`` as a child; its wall time and its own peak RSS (os.wait4's rusage). The
    disk is synced first, so a figure does not carry the write-back of the step before (the
    SQLite half leaves gigabytes of dirty pages; the PostgreSQL load, which syncs at each
    commit, took 69-70 s right after them and 61-62 s on a quiet disk)."""
    if hasattr(os, "sync"):
        os.sync()
    measured = hasattr(os, "wait4")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "rusage"
        command = ([sys.executable, "-c", MEASURER, str(report), *argv] if measured
                   else list(argv))
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # the measurer and the command

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            child.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        peak: float | None = None
        returncode = child.returncode
        if measured and report.exists():
            code, maxrss, inner = report.read_text().split()
            returncode, seconds = int(code), float(inner)
            peak = int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024)
        out.seek(0)
        err.seek(0)
        return Run(list(argv), returncode, seconds, peak,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                   expired.is_set())


@dataclass
class Product:
    """The product's command line, one database."""

    cli: list[str]
    url: str
    timeout_s: float

    def run(self, *args: str, ok: Sequence[int] = (0,)) -> Run:
        run = run_measured([*self.cli, "--db", self.url, *args], self.timeout_s)
        if run.timed_out:
            raise CommandFailed(f"`{' '.join(args)}` timed out after {self.timeout_s:.0f} s")
        if run.returncode not in ok:
            raise CommandFailed(f"`{' '.join(args)}` exited {run.returncode}: "
                                f"{_short(run.stderr or run.stdout)}")
        return run


def find_cli(given: str | None) -> list[str]:
    if given:
        return given.split()
    local = REPO / ".venv" / "bin" / "zaplecze"
    if local.exists():
        return [str(local)]
    on_path = shutil.which("zaplecze")
    return [on_path] if on_path else [sys.executable, "-m", "zaplecze"]


# -- raw insert rates ---------------------------------------------------------------------

def posting_rows(count: int, first_day: dt.date) -> Iterator[tuple[Any, ...]]:
    """``count`` posting-shaped rows, five lines an entry, cheap to make."""
    accounts = [f"client:C{n:05d}" for n in range(1_000)] + ["bank:USD", "bank:PLN",
                                                               "depository:XWAR", "house:fees"]
    assets = ["USD", "PLN", "EUR"] + [f"US{n:09d}{n % 10}" for n in range(200)]
    dates = [(first_day + dt.timedelta(days=n)).isoformat() for n in range(128)]
    bases = ("trade", "settlement")
    for number in range(count):
        entry, line = divmod(number, POSTINGS_PER_TRADE_ESTIMATE)
        yield (entry + 1, line + 1, accounts[number % len(accounts)],
               assets[entry % len(assets)], (number * 7919) % 1_000_000 - 500_000,
               bases[entry & 1], dates[entry % len(dates)])


def sqlite_raw_insert_seconds(path: Path, count: int, first_day: dt.date) -> float:
    """``count`` rows in one transaction, WAL and synchronous=FULL, by multi-row INSERTs of
    SQLITE_VALUES_PER_STATEMENT values: the quickest plain way in, and the product's own."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(RAW_TABLE_SQL)
        head = f"INSERT INTO raw_postings ({', '.join(RAW_COLUMNS)}) VALUES "
        group = f"({', '.join('?' * len(RAW_COLUMNS))})"
        per = SQLITE_VALUES_PER_STATEMENT // len(RAW_COLUMNS)
        rows = posting_rows(count, first_day)
        start = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        while chunk := list(itertools.islice(rows, per)):
            connection.execute(head + ", ".join([group] * len(chunk)),
                               list(itertools.chain.from_iterable(chunk)))
        connection.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        connection.close()


def postgres_raw_copy_seconds(url: str, count: int, first_day: dt.date) -> float:
    """COPY of ``count`` rows through psycopg 3's cursor.copy(), one transaction."""
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute(RAW_TABLE_SQL)
        connection.commit()
        start = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(
                f"COPY raw_postings ({', '.join(RAW_COLUMNS)}) FROM STDIN") as copy:
            for row in posting_rows(count, first_day):
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - start


# -- databases ----------------------------------------------------------------------------

def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


def recreate_postgres_database(admin_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            connection.execute(f'CREATE DATABASE "{name}"')


def postgres_version(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, connect_timeout=10) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def count_postings(url: str) -> int | None:
    """Rows of the product's ``postings`` table, where it has one (else None: estimate)."""
    if url.startswith("sqlite:///"):
        book = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            found = book.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                 "AND name = 'postings'").fetchone()
            return int(book.execute("SELECT count(*) FROM postings").fetchone()[0]) \
                if found else None
        finally:
            book.close()
    import psycopg

    with psycopg.connect(url) as server:
        found = server.execute("SELECT to_regclass('postings')").fetchone()
        if not found or found[0] is None:
            return None
        counted = server.execute("SELECT count(*) FROM postings").fetchone()
        return int(counted[0]) if counted else None


@dataclass
class Backend:
    name: str
    url: str
    raw_insert: Callable[[int, dt.date], float]
    raw_method: str
    cleanup: Callable[[], None] = lambda: None


def sqlite_backend(folder: Path) -> Backend:
    return Backend("SQLite", f"sqlite:///{folder / 'book.db'}",
                   lambda count, first: sqlite_raw_insert_seconds(folder / "raw.db", count,
                                                                  first),
                   "multi-row INSERTs, 1 transaction, WAL, synchronous=FULL")


def postgres_backend(admin_url: str) -> Backend:
    recreate_postgres_database(admin_url, BENCH_DATABASE)

    def raw(count: int, first: dt.date) -> float:
        recreate_postgres_database(admin_url, RAW_DATABASE)
        try:
            return postgres_raw_copy_seconds(with_database(admin_url, RAW_DATABASE), count,
                                             first)
        finally:
            recreate_postgres_database(admin_url, RAW_DATABASE, drop_only=True)

    def cleanup() -> None:
        recreate_postgres_database(admin_url, BENCH_DATABASE, drop_only=True)

    return Backend("PostgreSQL", with_database(admin_url, BENCH_DATABASE), raw,
                   "COPY via psycopg cursor.copy(), 1 transaction", cleanup)


# -- the figures --------------------------------------------------------------------------

def generate(figures: Figures, shape: BookShape, folder: Path, label: str) -> dict[str, int]:
    total = shape.trades
    last_shown = [0.0]

    def progress(drawn: int) -> None:
        now = time.perf_counter()
        if now - last_shown[0] >= 5 or drawn == total:
            last_shown[0] = now
            figures.say(f"  generating: {drawn:,}/{total:,} trades")

    start = time.perf_counter()
    counts = generate_book(shape, folder, progress)
    seconds = time.perf_counter() - start
    size_mb = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
    figures.add(1, f"generate {label}", "-", seconds, "s",
                note=f"{counts['trades.csv']:,} trade rows, {shape.accounts:,} accounts, "
                     f"{shape.instruments:,} instruments, {size_mb:.0f} MB, "
                     f"{counts['trades.csv'] / seconds:,.0f} trades/s")
    return counts


def bench_backend(figures: Figures, backend: Backend, cli: list[str], book: Path,
                  shape: BookShape, trade_rows: int, timeout_s: float) -> None:
    product = Product(cli, backend.url, timeout_s)
    first, last = book_period(shape)
    days = weekdays(first, last)
    name = backend.name
    loaded: dict[str, float] = {}
    with figures.step(2, "init", name):
        run = product.run("init")
        figures.add(2, "init", name, run.seconds, "s", run.peak_mib)
    with figures.step(2, "load", name):
        run, rejected = load(product, book)
        note = f"{trade_rows:,} trade rows in {run.seconds:,.1f} s"
        if run.returncode == 1:
            note += f"; exit 1, about {rejected} rejected rows"
        loaded["trades_per_s"] = trade_rows / run.seconds
        figures.add(2, "load throughput", name, loaded["trades_per_s"], "trades/s", run.peak_mib,
                    note)
    with figures.step(3, "raw insert", name):
        counted = count_postings(backend.url)
        rows = counted or POSTINGS_PER_TRADE_ESTIMATE * trade_rows
        per_trade = rows / trade_rows if counted else POSTINGS_PER_TRADE_ESTIMATE
        seconds = backend.raw_insert(rows, first)
        rate = rows / seconds
        source = "postings counted" if counted else "estimated 5 per trade"
        figures.add(3, "raw insert", name, rate, "rows/s",
                    note=f"{rows:,} rows ({source}) in {seconds:,.1f} s: {backend.raw_method}")
        if "trades_per_s" in loaded:
            figures.add(3, "load ÷ raw", name, loaded["trades_per_s"] / (rate / per_trade), "x",
                        note=f"trades/s ÷ (raw rows/s ÷ {per_trade:.2f} postings per trade)")
    with figures.step(4, "eod", name):
        run = product.run("eod", "--through", last.isoformat())
        figures.add(4, "eod total", name, run.seconds, "s", run.peak_mib,
                    f"{len(days)} business days through {last}")
        figures.add(4, "eod per business day", name, run.seconds / len(days), "s/day")
    middle = days[len(days) // 2].isoformat()
    for label, args in (("positions --basis trade", ("positions", "--basis", "trade")),
                        ("cash --basis settlement", ("cash", "--basis", "settlement")),
                        ("trial-balance", ("trial-balance",))):
        with figures.step(5, f"report {label}", name):
            run = product.run("report", args[0], "--as-of", middle, *args[1:], "--format",
                              "json")
            figures.add(5, f"report {label}", name, run.seconds, "s", run.peak_mib,
                        f"as of {middle}, {_json_rows(run.stdout)} rows")


# Figure 7 runs in a child of its own: in this process it would leave the bench at about 1.4 GiB
# resident, and on Linux a child forked afterwards starts its peak-memory count at its parent's
# (the export and `ledger` of figure 6 read 1,414 MiB each).
SETTLEMENT_CHILD = ("import dataclasses, json, sys; sys.path.insert(0, sys.argv[1]); "
                    "import settlement_bench; from pathlib import Path; "
                    "print(json.dumps(dataclasses.asdict(settlement_bench.run("
                    "Path(sys.argv[2]), Path(sys.argv[3])))))")


def bench_settlement(figures: Figures, db_path: Path, outbox: Path) -> None:
    from settlement_bench import SettlementFigures

    with figures.step(7, "settlement", "SQLite"):
        done = subprocess.run([sys.executable, "-c", SETTLEMENT_CHILD, str(Path(__file__).parent),
                               str(db_path), str(outbox)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise CommandFailed(f"the settlement bench exited {done.returncode}: "
                                f"{_short(done.stderr)}")
        measured = SettlementFigures(**json.loads(done.stdout.splitlines()[-1]))
        figures.add(7, "netting", "-", measured.netting_seconds, "s",
                    note=f"{measured.trades:,} trades -> {measured.obligations:,} obligations "
                    f"(KDPW net, DTC gross); reading the trades took "
                    f"{measured.read_seconds:.1f} s more")
        figures.add(7, "instructions", "-", measured.instruct_seconds, "s",
                    note=f"{measured.instructions:,} instructions made from the obligations")
        figures.add(7, "sese.023 generation", "-", measured.written / measured.write_seconds,
                    "messages/s", note=f"{measured.written:,} files in "
                    f"{measured.write_seconds:.1f} s; {measured.validated} validated against the "
                    f"XSD, {measured.invalid} invalid")


def bench_api(figures: Figures, db_path: Path) -> None:
    import api_bench

    with figures.step(8, "REST API", "SQLite"):
        for measured in api_bench.run(f"sqlite:///{db_path}"):
            unit = "ms p99"
            other = {k: v for k, v in measured.statuses.items() if k != 200}
            figures.add(8, measured.label, "SQLite", measured.quantile(0.99), unit,
                        note=f"{len(measured.latencies_ms):,} requests, {measured.rate:,.0f}/s; "
                        f"p50 {measured.quantile(0.5):.1f} ms, p90 {measured.quantile(0.9):.1f} "
                        f"ms" + (f"; non-200 {other}" if other else ""))


def load(product: Product, book: Path) -> tuple[Run, int]:
    """`load`, which exits 1 when it rejected rows: then it must name them (file:line)."""
    run = product.run("load", str(book), ok=(0, 1))
    rejected = sum(1 for line in (run.stdout + run.stderr).splitlines() if ".csv:" in line)
    if run.returncode == 1 and not rejected:
        raise CommandFailed(f"`load` exited 1 without naming a rejected row: "
                            f"{_short(run.stderr or run.stdout)}")
    return run, rejected


def _json_rows(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return "unparsable"
    return f"{len(data):,}" if isinstance(data, list) else "?"


def bench_ledger(figures: Figures, cli: list[str], book: Path, shape: BookShape,
                 trade_rows: int, work: Path, timeout_s: float) -> None:
    """Figure 6: Ledger's balance report of our export against our own path to a balance."""
    last = book_period(shape)[1].isoformat()
    product = Product(cli, f"sqlite:///{work / 'ledger-book.db'}", timeout_s)
    export = work / "book.ledger"
    ours: dict[str, float] = {}
    with figures.step(6, "ours: init + load + trial-balance", "SQLite"):
        ours["init"] = product.run("init").seconds
        ours["load"] = load(product, book)[0].seconds
        sqlite_snapshot(work / "ledger-book.db", work / "loaded.db")  # for the storage floor
        ours["eod"] = product.run("eod", "--through", last).seconds
        run = product.run("report", "trial-balance", "--as-of", last, "--format", "json")
        ours["report"] = run.seconds
        ours["total"] = ours["init"] + ours["load"] + ours["report"]
        figures.add(6, "ours: init + load + trial-balance", "SQLite", ours["total"], "s",
                    note=f"{trade_rows:,} trade rows; init {ours['init']:.1f} + load "
                         f"{ours['load']:.1f} + report {ours['report']:.2f} s; the eod it needs "
                         f"first: {ours['eod']:.1f} s")
    with figures.step(6, "export --format ledger", "SQLite"):
        run = product.run("export", "--format", "ledger", "--out", str(export))
        figures.add(6, "export --format ledger", "SQLite", run.seconds, "s", run.peak_mib,
                    f"{export.stat().st_size / 1e6:.1f} MB")
    ledger = shutil.which("ledger")
    if ledger is None:
        figures.add(6, "ledger bal --flat --no-total", "ledger", None, "",
                    note="skipped: `ledger` is not on PATH (Debian package `ledger`)")
        return
    ledger_seconds: float | None = None
    with figures.step(6, "ledger bal --flat --no-total", "ledger"):
        if not export.exists():
            raise CommandFailed("no export to read")
        run = run_measured([ledger, "-f", str(export), "bal", "--flat", "--no-total"],
                           timeout_s)
        if run.returncode != 0:
            raise CommandFailed(f"ledger exited {run.returncode}: {_short(run.stderr)}")
        figures.add(6, "ledger bal --flat --no-total", "ledger", run.seconds, "s", run.peak_mib,
                    f"{len(run.stdout.splitlines()):,} balance lines")
        ledger_seconds = run.seconds
        if "total" in ours:
            figures.add(6, "ours ÷ ledger", "-", ours["total"] / run.seconds, "x",
                        note=f"with the eod: {(ours['total'] + ours['eod']) / run.seconds:,.1f} x")
    if "total" in ours and ledger_seconds is not None:
        bench_storage_floor(figures, work, ours, ledger_seconds, timeout_s)


def sqlite_snapshot(source: Path, target: Path) -> None:
    """A copy of an SQLite book as it stands, its WAL included (the backup API); not timed."""
    with contextlib.closing(sqlite3.connect(source)) as origin, \
            contextlib.closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)


def bench_storage_floor(figures: Figures, work: Path, ours: dict[str, float],
                        ledger_seconds: float, timeout_s: float) -> None:
    """Figure 6, last: the rows our load wrote (the book as the load left it, before the eod),
    written again into a fresh book with nothing read, checked, booked or chained
    (bench/storage_floor.py): the least the load could take if all its Python were free, and
    init + that + the report against `ledger`."""
    with figures.step(6, "storage floor", "SQLite"):
        run = run_measured([sys.executable, str(Path(__file__).parent / "storage_floor.py"),
                            str(work / "loaded.db"), str(work / "floor.db")], timeout_s)
        if run.returncode != 0:
            raise CommandFailed(f"the storage floor exited {run.returncode}: "
                                f"{_short(run.stderr)}")
        measured = json.loads(run.stdout.splitlines()[-1])
        least = ours["init"] + measured["seconds"] + ours["report"]
        figures.add(6, "storage floor: the load's rows written alone", "SQLite",
                    measured["seconds"], "s", run.peak_mib,
                    note=f"{measured['rows']:,} rows, {measured['transactions']} transactions, "
                         f"indexes built at the end; init + floor + report = {least:.1f} s = "
                         f"{least / ledger_seconds:.2f} x ledger")


# -- environment and output ---------------------------------------------------------------

def environment(cli: list[str], pg_version: str, load_at_start: str) -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            return (done.stdout or done.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unavailable"

    ledger = shutil.which("ledger")
    return {
        "cores": str(os.cpu_count()),
        "load average (1, 5, 15 min)": f"at start {load_at_start}; at end {load_average()}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
        "ledger": first_line([ledger, "--version"]) if ledger else "not on PATH",
        "zaplecze": f"{zaplecze.__version__} ({' '.join(cli)})",
    }


def load_average() -> str:
    """Other work on the machine slows every figure: the bench shows how busy it was."""
    if not hasattr(os, "getloadavg"):
        return "?"
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_table(figures: Figures, env: dict[str, str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text without rich
        for key, value in env.items():
            print(f"{key}: {value}")
        for row in figures.rows:
            print(f"{row.number} {row.name} [{row.backend}] {row.value} {row.unit} "
                  f"{row.error or row.note}")
        return
    console = Console(width=max(shutil.get_terminal_size().columns, 160))
    environment_table = Table(title="Environment", show_header=False)
    for key, value in env.items():
        environment_table.add_row(key, value)
    console.print(environment_table)
    table = Table(title="Zaplecze benchmark")
    for column, justify in (("#", "right"), ("figure", "left"), ("backend", "left"),
                            ("value", "right"), ("unit", "left"), ("peak MiB", "right"),
                            ("note", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in figures.rows:
        value = "FAILED" if row.error else "-" if row.value is None else _number(row.value)
        table.add_row(str(row.number), row.name, row.backend, value, row.unit,
                      "" if row.peak_mib is None else f"{row.peak_mib:,.0f}",
                      row.error or row.note)
    console.print(table)


# -- main ---------------------------------------------------------------------------------

def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--instruments", type=int, default=2_000)
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK_TRADES:,} trades, 1,000 accounts, "
                             "200 instruments")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/",
                        help=f"server to bench on; database {BENCH_DATABASE} is dropped and "
                             "created afresh")
    parser.add_argument("--cli", help="the product's command (default: .venv/bin/zaplecze)")
    parser.add_argument("--timeout", type=float, default=4 * 3600,
                        help="seconds allowed to one command")
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and databases")
    args = parser.parse_args(argv)
    if args.quick:
        args.trades = QUICK_TRADES
        args.accounts = min(args.accounts, 1_000)
        args.instruments = min(args.instruments, 200)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    figures = Figures()
    cli = find_cli(args.cli)
    shape = BookShape(seed=args.seed, accounts=args.accounts, instruments=args.instruments,
                      trades=args.trades, months=args.months, cancels=args.trades // 1_000,
                      include_story=False)
    pg_version = "skipped"
    load_at_start = load_average()
    work = Path(tempfile.mkdtemp(prefix="zaplecze-bench-"))
    backends: list[Backend] = []
    figures.say(f"work folder {work}; product {' '.join(cli)}")
    try:
        book = work / "book"
        trade_rows = 0
        with figures.step(1, "generate book", "-"):
            trade_rows = generate(figures, shape, book, "book")["trades.csv"]
        (work / "sqlite").mkdir()
        backends.append(sqlite_backend(work / "sqlite"))
        if not args.skip_postgres:
            with figures.step(2, "connect", "PostgreSQL"):
                pg_version = postgres_version(args.pg_url)
                backends.append(postgres_backend(args.pg_url))
        if trade_rows:
            for backend in backends:
                bench_backend(figures, backend, cli, book, shape, trade_rows, args.timeout)
            bench_settlement(figures, work / "sqlite" / "book.db", work / "outbox")
            bench_api(figures, work / "sqlite" / "book.db")
        ledger_shape, ledger_book, ledger_rows = shape, book, trade_rows
        if shape.trades > LEDGER_BOOK_TRADES_MAX:
            ledger_shape = BookShape(seed=args.seed, accounts=args.accounts,
                                     instruments=args.instruments,
                                     trades=LEDGER_BOOK_TRADES_MAX, months=args.months,
                                     cancels=LEDGER_BOOK_TRADES_MAX // 1_000,
                                     include_story=False)
            ledger_book = work / "ledger-book"
            with figures.step(1, "generate ledger book", "-"):
                ledger_rows = generate(figures, ledger_shape, ledger_book,
                                       "100k book")["trades.csv"]
        (work / "ledger").mkdir()
        if ledger_book.exists():
            bench_ledger(figures, cli, ledger_book, ledger_shape, ledger_rows, work / "ledger",
                         args.timeout)
    finally:
        if not args.keep:
            for backend in backends:
                if backend.name == "PostgreSQL":
                    with figures.step(0, "drop database", backend.name):
                        backend.cleanup()
            shutil.rmtree(work, ignore_errors=True)
        else:
            figures.say(f"kept {work}")
    env = environment(cli, pg_version, load_at_start)
    print_table(figures, env)
    if args.out:
        payload = {"environment": env, "shape": {key: str(value) for key, value in
                                                 asdict(shape).items()},
                   "figures": [asdict(row) for row in figures.rows]}
        args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
