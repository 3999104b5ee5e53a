"""The journal's look-ups by key go through the key's index on SQLite, whatever the book's size:
a plan that walks every pending entry instead costs nothing on a small book and a full scan of
the journal per call on a big one (a CANCEL row, an end-of-day chunk of due trades)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import event

from zaplecze.bootstrap import open_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import repo


def _plans(url: str, call: Any) -> list[str]:
    """Every statement ``call`` runs on a connection, with SQLite's plan for each."""
    book = open_book(url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    try:
        with book.engine.connect() as connection:
            event.listen(connection, "before_cursor_execute", capture)
            call(connection)
            event.remove(connection, "before_cursor_execute", capture)
            return [" / ".join(str(row[3]) for row in connection.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + statement, parameters))
                    for statement, parameters in seen]
    finally:
        book.engine.dispose()


def _closed_june(tmp_path: Path, golden_folder: Path) -> str:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    book = open_book(url, create=True)
    Loader(book.engine, book.calendar()).load(golden_folder)
    run_eod(book.engine, dt.date(2024, 6, 28))
    book.engine.dispose()
    return url


def test_pending_entries_linked_to_trades_are_found_by_the_linked_key(
        tmp_path: Path, golden_folder: Path) -> None:
    url = _closed_june(tmp_path, golden_folder)
    plans = _plans(url, lambda connection: repo.open_pending(
        connection, linked_to=["trade:T0001", "trade:T0002"]))
    lookup = plans[0]
    assert "ix_entries_linked (linked_key=?)" in lookup, lookup
    assert "ix_entries_pending" not in lookup, lookup


def test_trades_booked_since_the_last_end_of_day_are_found_by_their_sequence(
        tmp_path: Path, golden_folder: Path) -> None:
    """End of day's second question, "booked since the last run and already due", starts from
    the sequence numbers since that run, not from every trade due by then."""
    url = _closed_june(tmp_path, golden_folder)
    plans = _plans(url, lambda connection: repo.due_trades(connection, dt.date(2024, 7, 1)))
    due = next(plan for plan in plans if "UNION" in plan)
    assert "(sequence>?)" in due, due
    assert "ix_entries_pending (phase=? AND settle_date<?)" not in due, due
    assert "ix_entries_pending (phase=? AND settle_date>? AND settle_date<?)" in due, due


def test_a_balance_from_a_checkpoint_reads_only_the_postings_since(
        tmp_path: Path, golden_folder: Path) -> None:
    """A balance as of a date after a checkpoint reads the checkpoint by its key, the postings
    booked late through late_entries and the journal's key, and those dated after it by the
    date index: never every posting through the (asset, GL account) index."""
    url = _closed_june(tmp_path, golden_folder)
    plans = _plans(url, lambda connection: repo.balances_as_of(
        connection, dt.date(2024, 6, 26), "trade", ("client", "house")))
    checkpoint, kept, late, later = plans
    assert "sqlite_autoindex_checkpoints_1 (business_date<?)" in checkpoint, checkpoint
    assert "checkpoint_balances USING PRIMARY KEY (business_date=? AND basis=?)" in kept, kept
    assert "SEARCH l USING INDEX sqlite_autoindex_late_entries_1 (entry_sequence>?)" in late, late
    assert "SEARCH p USING INDEX sqlite_autoindex_postings_1 (entry_sequence=?)" in late, late
    assert "ix_postings_date (business_date>? AND business_date<?)" in later, later
    assert not any("ix_postings_asset" in plan for plan in plans), plans


def test_lots_from_a_checkpoint_read_only_what_came_since(
        tmp_path: Path, golden_folder: Path) -> None:
    """Which accounts a checkpoint cannot serve: the trades booked since, by their sequence,
    and the cancels, each trade by its key — never every trade up to the checkpoint."""
    from zaplecze.services import lot_books

    url = _closed_june(tmp_path, golden_folder)
    plans = _plans(url, lambda connection: lot_books.lot_books(connection, dt.date(2024, 6, 26)))
    booked_since = next(plan for plan in plans if "DISTINCT" in plan)
    assert "sqlite_autoindex_trades_2 (sequence>?)" in booked_since, booked_since
    cancelled = next(plan for plan in plans if plan.startswith("SCAN c /"))
    assert "SEARCH t USING INDEX sqlite_autoindex_trades_1 (trade_id=?)" in cancelled, cancelled
