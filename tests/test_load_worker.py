"""A large trades.csv or cash.csv is read and prepared by a second process while `load` writes
the batch before (services/load.py: prepared_batches). The book it makes must be the one the single
process makes, entry for entry and hash for hash, with the same rejections; a failure in the
worker stops the load with a clear error and no half-written batch."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from zaplecze.bootstrap import open_book
from zaplecze.kernel.problems import BookError
from zaplecze.services import audit, load
from zaplecze.services.book_generator import BookShape, generate_book
from zaplecze.services.load import Loader

SHAPE = BookShape(seed=11, accounts=30, instruments=10, trades=900, months=3, cancels=6,
                  include_story=True)
BATCH = 97  # rows per batch: many batches, cancels in other batches than their trades

# Bad rows after the generated ones: each breaks one rule, one is a reload of a good row.
BAD_ROWS = (
    "X1,AMEND,{account},{isin},BUY,10,5.00,{currency},{day},,,,\n",  # invalid action
    "X2,NEW,{account},XS0000000000,BUY,10,5.00,{currency},{day},,,,\n",  # unknown/invalid ISIN
    "X3,NEW,NOBODY,{isin},BUY,10,5.00,{currency},{day},,,,\n",  # unknown account
    "X4,NEW,{account},{isin},BUY,-3,5.00,{currency},{day},,,,\n",  # non-positive quantity
    "X5,CANCEL,{account},{isin},BUY,10,5.00,{currency},{day},,,,\n",  # cancel of no trade
    "X6,NEW,{account},{isin},BUY,10\n",  # too few fields
)


def _book(tmp_path: Path) -> tuple[Path, int]:
    """The generated book with BAD_ROWS, a changed copy of the first trade and a reload of it
    appended; and the line of the first bad row."""
    folder = tmp_path / "book"
    generate_book(SHAPE, folder)
    trades = folder / "trades.csv"
    lines = trades.read_text(encoding="utf-8").splitlines(keepends=True)
    first = lines[1].split(",")
    fields = {"account": first[2], "isin": first[3], "currency": first[7], "day": first[8]}
    # the first trade again, changed: same trade_id, other content
    changed = first.copy()
    changed[5] = str(Decimal(first[5]) + 1)
    extra = [row.format(**fields) for row in BAD_ROWS] + [",".join(changed), lines[1]]
    trades.write_text("".join(lines + extra), encoding="utf-8")
    cash = folder / "cash.csv"
    first_cash = cash.read_text(encoding="utf-8").splitlines()[1].split(",")
    with cash.open("a", encoding="utf-8") as stream:  # zero, unknown account, other content
        stream.write(f"Z1,{first_cash[1]},{first_cash[2]},{first_cash[3]},0.00,DEPOSIT,\n"
                     f"Z2,NOBODY,{first_cash[2]},{first_cash[3]},10.00,DEPOSIT,\n"
                     f"{first_cash[0]},{first_cash[1]},{first_cash[2]},{first_cash[3]},1.00,"
                     f"DEPOSIT,\n")
    return folder, len(lines) + 1


def _contents(url: str, folder: Path) -> dict[str, Any]:
    book = open_book(url, create=True)
    try:
        report = Loader(book.engine).load(folder)
        assert report.fatal is None
        # the chain recomputed from the stored rows: the prepared canonical text matched them
        assert audit.verify(book.engine).problems == []
        with book.engine.connect() as connection:
            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in connection.exec_driver_sql(sql)]
            return {
                "entries": rows("SELECT sequence, entry_key, phase, prev_hash, hash "
                                "FROM entries ORDER BY sequence"),
                "postings": rows("SELECT entry_sequence, line, gl_account, asset, amount, basis "
                                 "FROM postings ORDER BY entry_sequence, line"),
                "trades": rows("SELECT * FROM trades ORDER BY sequence"),
                "cash": rows("SELECT * FROM cash_movements ORDER BY movement_id"),
                "cancels": rows("SELECT trade_id, account, cancel_date FROM cancels "
                                "ORDER BY trade_id"),
                "balances": rows("SELECT gl_account, asset, basis, amount FROM balances "
                                 "ORDER BY gl_account, asset, basis"),
                "rejections": rows("SELECT file, line, reason, detail FROM rejections "
                                   "ORDER BY file, line"),
                "report": (report.booked, report.unchanged,
                           sorted((p.source, p.line, p.rule.value) for p in report.rejected)),
            }
    finally:
        book.engine.dispose()


def test_the_worker_makes_the_same_book_as_one_process(book_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder, first_bad = _book(tmp_path)
    monkeypatch.setattr(load, "ROWS_PER_BATCH", BATCH)
    alone = _contents(f"sqlite:///{tmp_path / 'alone.db'}", folder)

    used: list[Path] = []
    by_worker = load._prepared_by_worker

    def counted(path: Path, *args: Any) -> Any:
        used.append(path)
        return by_worker(path, *args)

    monkeypatch.setattr(load, "PREPARE_IN_WORKER_BYTES", 0)
    monkeypatch.setattr(load, "_prepared_by_worker", counted)
    together = _contents(book_url, folder)

    assert [path.name for path in used] == ["cash.csv", "trades.csv"]
    assert len(alone["trades"]) > 800 and len(alone["cancels"]) >= 3
    rejected = {line for name, line, _ in alone["report"][2] if name == "trades.csv"}
    assert set(range(first_bad, first_bad + len(BAD_ROWS) + 1)) <= rejected
    assert alone["report"][1]["trades.csv"] == 1  # the reload of the first trade
    assert sum(name == "cash.csv" for name, _, _ in alone["report"][2]) >= 3
    for name, value in alone.items():
        assert together[name] == value, name


def test_a_failing_worker_stops_the_load_with_a_clear_error(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            ) -> None:
    folder, _ = _book(tmp_path)
    monkeypatch.setattr(load, "ROWS_PER_BATCH", BATCH)
    monkeypatch.setattr(load, "PREPARE_IN_WORKER_BYTES", 0)
    prepare = load.prepare_row

    def failing(row: Any, *args: Any) -> Any:
        if row.line == 3 * BATCH + 5:
            raise RuntimeError("the disk went away")
        return prepare(row, *args)

    monkeypatch.setattr(load, "prepare_row", failing)  # inherited by the forked worker
    book = open_book(f"sqlite:///{tmp_path / 'book.db'}", create=True)
    try:
        with pytest.raises(BookError, match=r"preparing trades\.csv failed: RuntimeError: "
                                            r"the disk went away"):
            Loader(book.engine).load(folder)
        with book.engine.connect() as connection:
            trades = connection.exec_driver_sql("SELECT COUNT(*) FROM trades").scalar()
            entries = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM entries WHERE entry_key LIKE 'trade:%'").scalar()
        # whole batches only: the three before the failing one
        assert trades == entries
        assert 0 < trades <= 3 * BATCH
    finally:
        book.engine.dispose()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may wait for a PID 1 that never reaps)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_a_killed_load_leaves_no_worker_behind(tmp_path: Path) -> None:
    """SIGKILL of `load` while its worker prepares: the worker must end by itself (it holds
    copies of the load's descriptors: a PostgreSQL session would stay open while it lives)."""
    folder = tmp_path / "book"
    generate_book(BookShape(seed=5, accounts=200, instruments=40, trades=20_000, months=2,
                            cancels=0, include_story=False), folder)
    assert (folder / "trades.csv").stat().st_size >= load.PREPARE_IN_WORKER_BYTES
    url = f"sqlite:///{tmp_path / 'book.db'}"
    open_book(url, create=True).engine.dispose()
    process = subprocess.Popen([sys.executable, "-m", "zaplecze", "--db", url, "load",
                                str(folder)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while not workers and process.poll() is None and time.monotonic() < deadline:
        workers = _children(process.pid)
        time.sleep(0.01)
    assert workers, "the load never started its worker"
    assert all(_running(pid) for pid in workers)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, f"worker(s) {workers} outlived the killed load"
        time.sleep(0.05)


def test_a_failing_write_stops_the_worker_too(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The loading process fails on a batch (a full disk, say): the load stops with that error
    after the batches before it, and its worker is stopped and reaped, not left behind."""
    folder, _ = _book(tmp_path)
    monkeypatch.setattr(load, "ROWS_PER_BATCH", BATCH)
    monkeypatch.setattr(load, "PREPARE_IN_WORKER_BYTES", 0)
    run_prepared = load.TradeBatch.run_prepared
    calls: list[int] = []

    def failing(self: Any, rows: Any, unreadable: Any) -> Any:
        calls.append(len(rows))
        if len(calls) == 3:
            raise OSError("database or disk is full")
        return run_prepared(self, rows, unreadable)

    monkeypatch.setattr(load.TradeBatch, "run_prepared", failing)
    book = open_book(f"sqlite:///{tmp_path / 'book.db'}", create=True)
    try:
        with pytest.raises(OSError, match="disk is full"):
            Loader(book.engine).load(folder)
        assert multiprocessing.active_children() == []
        with book.engine.connect() as connection:
            trades = connection.exec_driver_sql("SELECT COUNT(*) FROM trades").scalar()
        assert 0 < trades <= 2 * BATCH
    finally:
        book.engine.dispose()


def test_batch_rows_sets_the_rows_of_each_transaction(tmp_path: Path) -> None:
    folder, _ = _book(tmp_path)
    url = f"sqlite:///{tmp_path / 'book.db'}"
    for bad in ("0", "100001", "many"):
        done = run_cli(url, "load", "--batch-rows", bad, str(folder))
        assert done.returncode == 2 and "--batch-rows" in done.stderr, (bad, done.stderr)
    book = open_book(url, create=True)
    try:
        seen: list[tuple[str, int]] = []
        Loader(book.engine, progress=lambda name, rows: seen.append((name, rows)),
               batch_rows=61).load(folder)
        trades = [rows for name, rows in seen if name == "trades.csv"]
        assert len(trades) > 10 and set(trades[:-1]) == {61} and 0 < trades[-1] <= 61
    finally:
        book.engine.dispose()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    run_cli(other, "init", check=True)
    done = run_cli(other, "load", "--batch-rows", "61", str(folder))
    assert done.returncode == 1  # the bad rows appended to the book are rejected
    assert _contents(url, folder)["entries"] == _contents(other, folder)["entries"]


def test_a_large_file_goes_in_larger_batches_unless_its_indexes_are_deferred(
        tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("x\n")
    with large.open("wb") as stream:  # sparse: the size is what counts
        stream.truncate(load.LARGE_FILE_BYTES)
    assert load._rows_per_batch(small, False) == load.ROWS_PER_BATCH == 10_000
    assert load._rows_per_batch(large, False) == load.ROWS_PER_LARGE_BATCH == 25_000
    assert load._rows_per_batch(large, True) == load.ROWS_PER_BATCH


def test_a_prepared_batch_crosses_the_pipe_unchanged() -> None:
    """What the worker sends (marshal of plain tuples) comes back as the same rows, cash rows
    and problems, warnings included."""
    from zaplecze.kernel.problems import Problem, Rule, warning
    from zaplecze.store.journal import FlatEntry

    entry = FlatEntry(("trade:T1", "TRADE", "PENDING", "2024-06-03", "2024-06-04", "T1", "C1", "",
                       "", "BUY 1 X @ 2"), "T", (("client:C1", "PLN", -2), ("bank:PLN", "PLN", 2)),
                      "tail")
    batch = [Problem(Rule.INVALID_ENUM_VALUE, "side 'X'", "trades.csv", 3),
             warning(Rule.INVALID_ENUM_VALUE, "assumed", "trades.csv", 4),
             load.PreparedRow(5, "NEW", "T1", "d1", ("T1",) * 14, entry),
             load.PreparedRow(6, "CANCEL", "T1", "d2", values={"trade_id": "T1"}),
             load.PreparedRow(7, "NEW", "T2", "d3", rule="unknown_account", detail="no C9"),
             load.PreparedCash(8, "M1", "d4", ("M1",) * 8, entry),
             load.PreparedCash(9, "M2", "d5", ("M2",) * 8, values={"movement_id": "M2"})]
    back = load._decoded(load._encoded(batch))
    assert back == batch
    assert [type(item) for item in back] == [type(item) for item in batch]
    assert isinstance(back[2].entry, FlatEntry) and back[1].is_warning
