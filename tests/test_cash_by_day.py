"""Cash by day: the journal writer's day sums, the migration that fills them for a book that
already has a journal, and the reports read from them — the same figures as the fold."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from conftest import zaplecze_in_process
from zaplecze.store import migrate, repo
from zaplecze.store.db import open_engine


def _days(url: str) -> list[tuple[str, str, str, str, int]]:
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            return [(str(a), str(b), str(c), str(d), int(e)) for a, b, c, d, e in
                    connection.exec_driver_sql(
                        "SELECT basis, business_date, gl_account, currency, amount FROM "
                        "cash_by_day WHERE amount <> 0 ORDER BY 1, 2, 3, 4")]
    finally:
        engine.dispose()


def test_the_migration_fills_the_days_the_writer_keeps(book_url: str,
                                                       golden_folder: Path) -> None:
    zaplecze_in_process(book_url, "init", check=True)
    zaplecze_in_process(book_url, "load", str(golden_folder))  # two rows are rejected: exit 1
    zaplecze_in_process(book_url, "eod", "--through", "2024-09-30", check=True)
    written = _days(book_url)
    assert len(written) > 50
    assert {row[0] for row in written} == {"T", "S"}

    engine = open_engine(book_url)
    try:
        with engine.begin() as connection:
            config = migrate._config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        assert migrate.current_revision(engine) == "0005"
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    assert _days(book_url) == written


def test_cash_as_of_equals_the_sum_of_postings(book_url: str, golden_folder: Path) -> None:
    zaplecze_in_process(book_url, "init", check=True)
    zaplecze_in_process(book_url, "load", str(golden_folder))  # two rows are rejected: exit 1
    zaplecze_in_process(book_url, "eod", "--through", "2024-09-30", check=True)
    engine = open_engine(book_url)
    try:
        with engine.connect() as connection:
            instruments = set(repo.refdata(connection).instruments)
            for day in (dt.date(2024, 6, 6), dt.date(2024, 7, 4), dt.date(2024, 9, 30)):
                for basis in ("trade", "settlement"):
                    for prefixes in ((), ("client", "house")):
                        summed = {key: amount for key, amount in repo.balances_as_of(
                            connection, day, basis, prefixes).items()
                            if key[1] not in instruments}
                        assert summed, (day, basis)
                        assert repo.cash_as_of(connection, day, basis, prefixes) == summed
    finally:
        engine.dispose()


def test_a_tampered_day_stops_end_of_day(tmp_path: Path, golden_folder: Path) -> None:
    url = f"sqlite:///{tmp_path / 'book.db'}"
    zaplecze_in_process(url, "init", check=True)
    zaplecze_in_process(url, "load", str(golden_folder))  # two rows are rejected: exit 1
    raw = create_engine(url)
    with raw.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE cash_by_day SET amount = amount + 1 WHERE (basis, business_date, "
            "gl_account, currency) = (SELECT basis, business_date, gl_account, currency FROM "
            "cash_by_day ORDER BY 1, 2, 3, 4 LIMIT 1)")
    raw.dispose()
    done = zaplecze_in_process(url, "eod", "--through", "2024-09-30")
    assert done.returncode != 0
    assert "cash by day differs from the journal's fold" in done.stdout + done.stderr
