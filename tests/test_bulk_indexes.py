"""Deferred indexes (store/bulk_indexes.py): a load that defers them makes the same book, hash
for hash, and leaves every index built; a load stopped with them dropped leaves a book whose
answers are the same, and the next end of day (or load) builds them."""

from __future__ import annotations

from pathlib import Path

from conftest import zaplecze_in_process
from zaplecze.bootstrap import open_book
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.store import bulk_indexes
from zaplecze.store.journal import read_head

SHAPE = BookShape(seed=11, accounts=60, instruments=12, trades=2_000, months=1, cancels=20,
                  include_story=False)
ALL = set(bulk_indexes.DEFERRABLE)
REPORTS = (("positions", "--basis", "trade"), ("cash", "--basis", "settlement"),
           ("trial-balance",), ("stock-record",))


def _state(url: str) -> tuple[str, set[str], list[str]]:
    book = open_book(url)
    try:
        with book.engine.connect() as connection:
            head = read_head(connection)
            return (f"{head.sequence}:{head.hash}", set(bulk_indexes.definitions(connection)),
                    bulk_indexes.deferred(connection))
    finally:
        book.engine.dispose()


def _reports(url: str, day: str) -> list[str]:
    return [zaplecze_in_process(url, "report", *report, "--as-of", day, "--format", "csv",
                                check=True).stdout for report in REPORTS]


def test_a_deferred_load_makes_the_same_book_and_builds_every_index(
        book_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "book"
    generate_book(SHAPE, folder)
    kept = f"sqlite:///{tmp_path / 'kept.db'}"
    for url, option in ((book_url, "--defer-indexes"), (kept, "--no-defer-indexes")):
        zaplecze_in_process(url, "init", check=True)
        zaplecze_in_process(url, "load", "--batch-rows", "300", option, str(folder), check=True)
    deferred_head, indexes, listed = _state(book_url)
    assert deferred_head == _state(kept)[0]
    assert indexes == ALL and listed == []
    last = book_period(SHAPE)[1].isoformat()
    assert _reports(book_url, last) == _reports(kept, last)


def test_indexes_a_stopped_load_left_dropped_are_built_by_the_next_eod(
        book_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "book"
    generate_book(SHAPE, folder)
    zaplecze_in_process(book_url, "init", check=True)
    zaplecze_in_process(book_url, "load", str(folder), check=True)
    last = book_period(SHAPE)[1].isoformat()
    before = _reports(book_url, last)
    book = open_book(book_url)
    try:
        assert set(bulk_indexes.defer(book.engine)) == ALL  # as a load killed mid-way leaves it
    finally:
        book.engine.dispose()
    _, indexes, listed = _state(book_url)
    assert indexes == set() and set(listed) == ALL
    assert _reports(book_url, last) == before  # slower, never different
    zaplecze_in_process(book_url, "eod", "--through", last, check=True)
    _, indexes, listed = _state(book_url)
    assert indexes == ALL and listed == []
