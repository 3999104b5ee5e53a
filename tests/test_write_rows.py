"""The bulk write path (store/repo.py): ``write_rows`` puts every row in exactly once, on
SQLite as multi-row INSERTs (``insert_many``) and on PostgreSQL by COPY, whatever the number of
rows against the rows per statement; ``insert_many``'s tail adds to existing rows (the balance
upsert)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from zaplecze.store import repo
from zaplecze.store.db import open_engine

COLUMNS = ("n", "label", "amount")


def _rows(count: int) -> list[tuple[object, ...]]:
    # Text with quotes, a tab, a backslash and non-ASCII, amounts beyond 32 bits and negative.
    return [(i, f"row {i} 'ż'\t\\", (-1) ** i * (2**62 - i)) for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 10, 31])
def test_every_row_goes_in_once_whatever_the_count(
        book_url: str, count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nine values a statement: three rows of three columns, so the counts above cover an empty
    # batch, a part statement alone, whole statements alone, and whole ones with a remainder.
    monkeypatch.setattr(repo, "SQLITE_VALUES_PER_STATEMENT", 9)
    engine = open_engine(book_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE scratch (n BIGINT PRIMARY KEY, label TEXT, amount BIGINT)")
            repo.write_rows(connection, "scratch", COLUMNS, _rows(count))
            stored = [tuple(row) for row in connection.exec_driver_sql(
                "SELECT n, label, amount FROM scratch ORDER BY n")]
        assert stored == _rows(count)
    finally:
        engine.dispose()


def test_a_row_wider_than_a_statement_allows_goes_in_one_a_statement(
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo, "SQLITE_VALUES_PER_STATEMENT", 2)
    engine = create_engine(f"sqlite:///{tmp_path}/wide.db")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE scratch (n BIGINT PRIMARY KEY, label TEXT, amount BIGINT)")
        repo.insert_many(connection, "INSERT INTO scratch (n, label, amount) VALUES", _rows(5))
        stored = [tuple(row) for row in connection.exec_driver_sql(
            "SELECT n, label, amount FROM scratch ORDER BY n")]
    engine.dispose()
    assert stored == _rows(5)


def test_the_tail_adds_to_rows_already_there(tmp_path: object,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo, "SQLITE_VALUES_PER_STATEMENT", 4)
    engine = create_engine(f"sqlite:///{tmp_path}/upsert.db")
    upsert = "ON CONFLICT (k) DO UPDATE SET amount = totals.amount + excluded.amount"
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE totals (k TEXT PRIMARY KEY, amount BIGINT)")
        head = "INSERT INTO totals (k, amount) VALUES"
        repo.insert_many(connection, head, [(f"k{i}", i) for i in range(5)], upsert)
        repo.insert_many(connection, head, [(f"k{i}", 100) for i in range(3, 8)], upsert)
        stored = dict(connection.exec_driver_sql("SELECT k, amount FROM totals").all())
    engine.dispose()
    assert stored == {"k0": 0, "k1": 1, "k2": 2, "k3": 103, "k4": 104,
                      "k5": 100, "k6": 100, "k7": 100}
