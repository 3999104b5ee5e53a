"""The storage floor of a load: the rows a load wrote, written again into a fresh book with no
reading, validating, booking or chaining at all — what the load would cost if all of that were
free.

    .venv/bin/python bench/storage_floor.py LOADED.db FRESH.db [--batch-entries N]

The journal's rows (entries, postings, trades, cash movements, balances, cash by day) are read
from LOADED.db into memory first; then, timed, they go into FRESH.db (a new book, `init`ed
here) the way the load writes them: the deferrable indexes dropped first and built at the end
(store/bulk_indexes.py), one transaction per batch of entries with SQLite's INSERT OR REPLACE
guards lifted as the journal writer lifts them, the product's multi-row INSERTs, WAL and
synchronous=FULL. Prints one line of JSON: seconds, rows and transactions.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from zaplecze.bootstrap import open_book
from zaplecze.kernel.limits import ROWS_PER_BATCH
from zaplecze.store import bulk_indexes, repo
from zaplecze.store.db import write_transaction
from zaplecze.store.journal import _insert_guards_lifted

# (table, the column that orders its rows). Balances and cash by day are totals, split over the
# batches like the rest: the load adds to them batch by batch; here each row goes in once.
TABLES = (("entries", "sequence"), ("postings", "entry_sequence, line"),
          ("trades", "sequence"), ("cash_movements", "movement_id"),
          ("balances", "gl_account, asset, basis"),
          ("cash_by_day", "basis, business_date, gl_account, currency"))


def read_rows(path: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    connection = sqlite3.connect(path)
    try:
        found: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table, order in TABLES:
            cursor = connection.execute(f"SELECT * FROM {table} ORDER BY {order}")
            found[table] = ([column[0] for column in cursor.description], cursor.fetchall())
        return found
    finally:
        connection.close()


def write_again(url: str, tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
                batches: int) -> float:
    book = open_book(url, create=True)
    engine = book.engine
    try:
        start = time.perf_counter()
        bulk_indexes.defer(engine)
        for number in range(batches):
            with write_transaction(engine) as connection, _insert_guards_lifted(connection):
                for table, (columns, rows) in tables.items():
                    part = rows[number * len(rows) // batches:(number + 1) * len(rows) // batches]
                    repo.write_rows(connection, table, columns, part)
        bulk_indexes.build(engine)
        return time.perf_counter() - start
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("loaded", type=Path)
    parser.add_argument("fresh", type=Path)
    parser.add_argument("--batch-entries", type=int, default=ROWS_PER_BATCH,
                        help="entries a transaction (default: the load's rows a batch)")
    args = parser.parse_args()
    tables = read_rows(args.loaded)
    entries = len(tables["entries"][1])
    batches = max(1, -(-entries // args.batch_entries))
    seconds = write_again(f"sqlite:///{args.fresh}", tables, batches)
    print(json.dumps({"seconds": seconds, "transactions": batches,
                      "rows": sum(len(rows) for _columns, rows in tables.values())}))


if __name__ == "__main__":
    main()
