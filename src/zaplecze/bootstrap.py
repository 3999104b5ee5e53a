"""Wiring: configuration -> database -> calendar -> services. The one place that chooses."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.problems import BookError
from zaplecze.store import repo
from zaplecze.store.db import explain_connection_error, open_engine, resolve_url


@dataclass
class Book:
    url: str
    engine: Engine

    def calendar(self) -> SettlementCalendar:
        with self.engine.connect() as connection:
            return repo.calendar(connection)


# The cyclic garbage collector's first generation, in allocations. Batch work (a load, netting a
# million trades) allocates millions of small acyclic objects: at the default 700 the collector
# walks an ever larger heap again and again (netting 200,000 legs: 7.7 s with it, 2.7 s without).
# Our code makes few cycles, so collecting far less often costs little memory.
BATCH_GC_THRESHOLD = (200_000, 50, 1_000)


def tune_for_batch() -> None:
    """Process settings for the command line and the bench (not for a library user)."""
    gc.set_threshold(*BATCH_GC_THRESHOLD)


def open_book(url: str | None, *, create: bool = False, read_mostly: bool = False) -> Book:
    """Open (and with ``create`` initialise) the book; a clear ``BookError`` when it can't.
    ``read_mostly``: for a server of many small reads (see ``store.db.open_engine``)."""
    resolved = resolve_url(url)
    try:
        engine = open_engine(resolved, read_mostly=read_mostly)
        if create:
            from zaplecze.store import migrate  # Alembic is only needed to create or migrate

            migrate.upgrade(engine)
        elif not _initialised(engine):
            raise BookError(f"no book at {resolved.split('@')[-1]}: run `zaplecze init` first")
    except SQLAlchemyError as error:
        raise explain_connection_error(error, resolved) from error
    return Book(resolved, engine)


def _initialised(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return inspect(engine).has_table("alembic_version")
