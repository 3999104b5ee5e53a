"""Checkpoints: the balances and lots kept at end of day give the same figures as the journal.

Books are loaded in two parts: a first part without some trades (they come late) and without
some cancels, end of day through the middle of the period (checkpoints are kept on each week's
and month's last weekday), then the whole folder (the late trades and cancels now land before
and after checkpoints already kept), end of day to the end. For every weekday and both views,
every account's lots (each lot, its order, the fold's counter), the realised rows after a
checkpoint and every balance must be the same from a checkpoint as from the first trade.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from conftest import zaplecze_in_process
from test_properties import SETTINGS, product_book, random_books, write_book
from zaplecze.accounting.lots import LotBook
from zaplecze.kernel.calendar import weekdays
from zaplecze.refdata.model import LotMethod
from zaplecze.services import lot_books as service
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import repo
from zaplecze.store.db import open_engine, refresh_statistics


def _state(books: Mapping[str, LotBook]) -> dict[str, Any]:
    """Each account's open lots as the fold holds them, and its order counter."""
    return {account: (book.next_order,
                      {isin: [(lot.acquired, lot.order, lot.quantity, lot.cost) for lot in lots]
                       for isin, lots in sorted(book.lots.items()) if lots})
            for account, book in books.items() if any(book.lots.values())}


def _realized(books: Mapping[str, LotBook], since: dt.date) -> list[Any]:
    return sorted((r.account, r.trade_id, r.isin, r.close_date, r.quantity, r.proceeds, r.cost)
                  for book in books.values() for r in book.realized if r.close_date >= since)


def _first_part(folder: Path, target: Path, middle: dt.date, rng: random.Random) -> int:
    """``folder`` without a tenth of its trades up to ``middle`` and their cancels, and
    without any cancel dated after ``middle``; returns the trades held back."""
    shutil.copytree(folder, target)
    lines = (folder / "trades.csv").read_text().splitlines()
    kept, late = [lines[0]], set()
    for line in lines[1:]:
        cells = line.split(",")
        trade_id, action, day = cells[0], cells[1], dt.date.fromisoformat(cells[8])
        if action == "CANCEL":
            if trade_id not in late and day <= middle:
                kept.append(line)
            continue
        if day > middle:
            continue
        if rng.random() < 0.1:
            late.add(trade_id)
            continue
        kept.append(line)
    (target / "trades.csv").write_text("\n".join(kept) + "\n")
    return len(late)


def _load(engine: Any, folder: Path) -> None:
    report = Loader(engine).load(folder)
    assert report.fatal is None, report.fatal


def _compare(engine: Any, first: dt.date, last: dt.date) -> tuple[int, int]:
    """Every weekday's lots and balances from the checkpoints against the journal; returns
    (days a checkpoint served, accounts it had to send back to the first trade)."""
    served = stale = 0
    with engine.connect() as connection:
        dates = service.checkpoint_days(connection)[::-1]  # latest first
        for day in weekdays(first, last):
            checkpoint = repo.checkpoint_on_or_before(connection, day)
            if checkpoint is not None:
                served += 1
                stale += len(service._stale_accounts(connection, checkpoint, day))
            books = service.lot_books(connection, day)
            journal = service.lot_books(connection, day, checkpoints=False)
            assert _state(books) == _state(journal), day
            since = next((d for d in dates if d < day), None)
            if since is not None:
                later = since + dt.timedelta(days=1)
                assert _realized(service.lot_books(connection, day, later), later) == \
                    _realized(journal, later), day
            for basis in ("trade", "settlement"):
                for prefixes in ((), ("client", "house")):
                    assert repo.balances_as_of(connection, day, basis, prefixes) == \
                        repo.balances_as_of(connection, day, basis, prefixes,
                                            checkpoints=False), (day, basis, prefixes)
    return served, stale


def _generated(tmp_path: Path, **shape: Any) -> tuple[Path, dt.date, dt.date]:
    """A generated book folder (``BookShape`` of ``shape``) and its first and last days."""
    book = BookShape(**shape)
    folder = tmp_path / "book"
    generate_book(book, folder)
    first, last = book_period(book)
    return folder, first, last


def test_checkpoints_give_the_journals_figures(book_url: str, tmp_path: Path) -> None:
    folder, first, last = _generated(tmp_path, seed=11, accounts=14, instruments=6, trades=900,
                                     months=3, cancels=12, include_story=True)
    days = weekdays(first, last)
    middle = days[len(days) // 2]
    held_back = _first_part(folder, tmp_path / "part", middle, random.Random(11))
    assert held_back > 20
    with product_book(book_url) as engine:
        _load(engine, tmp_path / "part")
        run_eod(engine, middle)
        _load(engine, folder)  # the late trades and the cancels, before kept checkpoints
        run_eod(engine, last)
        with engine.connect() as connection:
            kept = service.checkpoint_days(connection)
        assert len(kept) >= 12, kept
        assert all(service.is_checkpoint_day(day) for day in kept)
        served, stale = _compare(engine, first, last)
        assert served >= len(days) - 5
        assert stale > 0, "the late trades should have sent some accounts back"


@SETTINGS
@given(spec=random_books())
def test_checkpoints_on_random_books(spec: Any, tmp_path: Path) -> None:
    """Our own random books (every corporate-action kind, every lot method, cancels of each
    kind), late trades and cancels included: the same figures from a checkpoint."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        work = Path(name)
        book = write_book(spec, work / "folder")
        days = weekdays(book.first, book.last)
        middle = days[len(days) // 2]
        _first_part(book.folder, work / "part", middle, random.Random(len(days)))
        with product_book(f"sqlite:///{work / 'book.db'}") as engine:
            _load(engine, work / "part")
            run_eod(engine, middle)
            _load(engine, book.folder)
            run_eod(engine, book.last)
            _compare(engine, book.first, book.last)


def test_a_checkpoint_that_does_not_fit_is_not_used(book_url: str, tmp_path: Path) -> None:
    """Reference data the fold reads, or corporate actions, other than the checkpoint's: the
    books come from the first trade."""
    folder, _, last = _generated(tmp_path, seed=5, accounts=8, instruments=5, trades=300,
                                 months=2, cancels=0, include_story=True)
    with product_book(book_url) as engine:
        _load(engine, folder)
        run_eod(engine, last)
        with engine.connect() as connection:
            checkpoint = repo.checkpoint_on_or_before(connection, last)
            assert checkpoint is not None
            refdata = repo.refdata(connection)
            actions = service.effective_actions(connection, last)
            assert service._from_checkpoint(connection, checkpoint, last, refdata,
                                            actions) is not None
            account = next(iter(refdata.accounts.values()))
            other = LotMethod.LIFO if account.lot_method is not LotMethod.LIFO else \
                LotMethod.HIFO
            changed = refdata.accounts | {
                account.account: dataclasses.replace(account, lot_method=other)}
            assert service._from_checkpoint(connection, checkpoint, last,
                                            dataclasses.replace(refdata, accounts=changed),
                                            actions) is None
            assert actions, "the story's split is in the lots"
            assert service._from_checkpoint(connection, checkpoint, last, refdata,
                                            actions[1:]) is None


def test_checkpoints_are_append_only(book_url: str, tmp_path: Path) -> None:
    folder, _, last = _generated(tmp_path, seed=2, accounts=6, instruments=4, trades=120,
                                 months=1, cancels=0, include_story=False)
    with product_book(book_url) as engine:
        _load(engine, folder)
        run_eod(engine, last)
        for statement in ("UPDATE checkpoint_lots SET cost = '0'",
                          "DELETE FROM checkpoint_balances",
                          "UPDATE checkpoints SET entry_sequence = 0",
                          "DELETE FROM checkpoint_accounts"):
            with pytest.raises(Exception, match="append-only"), \
                    engine.begin() as connection:
                connection.exec_driver_sql(statement)


def _lift_guard(connection: Any, table: str) -> None:
    """What someone with the database's keys could do: switch a table's guard off."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    else:
        connection.exec_driver_sql(f"DROP TRIGGER {table}_append_only_update")


def test_audit_compares_checkpoints_with_the_journal(book_url: str, tmp_path: Path) -> None:
    folder, first, last = _generated(tmp_path, seed=9, accounts=10, instruments=5, trades=500,
                                     months=2, cancels=6, include_story=True)
    middle = weekdays(first, last)[len(weekdays(first, last)) // 2]
    _first_part(folder, tmp_path / "part", middle, random.Random(9))
    zaplecze_in_process(book_url, "init", check=True)
    # The story's withdrawal is refused on purpose: exit 1, every other row booked.
    assert zaplecze_in_process(book_url, "load", str(tmp_path / "part")).returncode == 1
    zaplecze_in_process(book_url, "eod", "--through", middle.isoformat(), check=True)
    # The late trades and the cancels.
    assert zaplecze_in_process(book_url, "load", str(folder)).returncode == 1
    zaplecze_in_process(book_url, "eod", "--through", last.isoformat(), check=True)
    done = zaplecze_in_process(book_url, "audit", "checkpoints", "--all", check=True)
    agreed = done.stdout.splitlines()
    assert len(agreed) >= 8, done
    assert all(line.endswith("balances and lots agree with the journal") for line in agreed)

    # The first checkpoint's balances and the last one's lots, changed behind the guards.
    engine = open_engine(book_url)
    try:
        with engine.begin() as connection:
            early, late = connection.exec_driver_sql(
                "SELECT MIN(business_date), MAX(business_date) FROM checkpoints").one()
            account = connection.exec_driver_sql(
                f"SELECT MIN(account) FROM checkpoint_lots WHERE business_date = '{late}'"
            ).scalar()
            _lift_guard(connection, "checkpoint_lots")
            connection.exec_driver_sql(
                f"UPDATE checkpoint_lots SET cost = '1.00' WHERE business_date = '{late}' AND "
                f"account = '{account}'")
            _lift_guard(connection, "checkpoint_balances")
            connection.exec_driver_sql(
                f"UPDATE checkpoint_balances SET amount = amount + 1 WHERE business_date = "
                f"'{early}' AND basis = 'S' AND SUBSTR(gl_account, 1, 7) = 'client:'")
    finally:
        engine.dispose()
    done = zaplecze_in_process(book_url, "audit", "checkpoints", "--all")
    assert done.returncode == 1, done
    assert f"DIFFERS checkpoint {late}: the lots of {account} differ" in done.stderr, done
    assert f"DIFFERS checkpoint {early}: settlement balance of client:" in done.stderr, done
    assert len(done.stdout.splitlines()) == len(agreed) - 2, done
    latest = zaplecze_in_process(book_url, "audit", "checkpoints")
    assert latest.returncode == 1, latest
    assert latest.stderr.splitlines() == [
        f"DIFFERS checkpoint {late}: the lots of {account} differ from the fold of its trades"]


def test_a_big_load_leaves_the_planner_statistics_fresh(book_url: str, tmp_path: Path) -> None:
    """PostgreSQL: a load that grows the journal analyses what it grew, so end of day does not
    plan its look-ups for an empty journal (autovacuum may be off, or behind)."""
    folder, _, _ = _generated(tmp_path, seed=4, accounts=40, instruments=8, trades=10_500,
                              months=1, cancels=3, include_story=False)
    with product_book(book_url) as engine:
        _load(engine, folder)
        if engine.dialect.name != "postgresql":
            assert refresh_statistics(engine) == []  # SQLite's plans come from the schema
            return
        with engine.connect() as connection:
            analysed = {str(name): when for name, when in connection.exec_driver_sql(
                "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN "
                "('trades', 'entries', 'postings', 'balances')")}
        assert set(analysed) == {"trades", "entries", "postings", "balances"}
        assert all(when is not None for when in analysed.values()), analysed
