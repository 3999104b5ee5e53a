"""Wiring: configuration -> database -> calendar -> services. The one place that chooses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from zaplecze.kernel.calendar import CalendarOverride, SettlementCalendar
from zaplecze.kernel.problems import BookError
from zaplecze.store.db import explain_connection_error, open_engine, resolve_url


@dataclass
class Book:
    url: str
    engine: Engine

    def calendar(self) -> SettlementCalendar:
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT calendar, business_date, closed, reason FROM calendar_overrides").all()
        return SettlementCalendar(CalendarOverride(row[0], dt.date.fromisoformat(row[1]),
                                                   bool(row[2]), row[3]) for row in rows)


def open_book(url: str | None, *, create: bool = False) -> Book:
    """Open (and with ``create`` initialise) the book; a clear ``BookError`` when it can't."""
    resolved = resolve_url(url)
    try:
        engine = open_engine(resolved)
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
