"""``zaplecze load-fix FILE --account-map MAP``: book a FIX 4.4 drop copy's fills through the
same capture path as trades.csv (same validation, same idempotency keys, same rejections)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine

from zaplecze.formats.book_csv import Row
from zaplecze.formats.fix_drop_copy import parse_account_map, read_drop_copy
from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.limits import ROWS_PER_BATCH
from zaplecze.kernel.problems import BookError, Problem
from zaplecze.services.load import Loader, LoadReport, TradeBatch, _record_rejections
from zaplecze.store.db import with_retries


def load_drop_copy(engine: Engine, calendar: SettlementCalendar, file: Path,
                   account_map: Path) -> LoadReport:
    try:
        mapping = parse_account_map(account_map.read_text(encoding="utf-8-sig"))
        data = file.read_bytes()
    except OSError as error:
        raise BookError(f"cannot read {error.filename}: {error.strerror}") from error
    rows, problems = read_drop_copy(data, file.name, mapping)
    loader = Loader(engine, calendar)
    loader.refdata = loader._snapshot()
    report = loader.report
    report.rejected += problems
    if problems:
        def note(connection: Connection, found: list[Problem] = problems) -> None:
            _record_rejections(connection, found, {})
        with_retries(engine, note)
    for start in range(0, len(rows), ROWS_PER_BATCH):
        batch = []
        for line, values in rows[start:start + ROWS_PER_BATCH]:
            instrument = loader.refdata.instruments.get(values.get("isin", ""))
            if not values.get("currency") and instrument is not None:
                values = {**values, "currency": instrument.currency}  # a fill without Currency(15)
            batch.append(Row(line, values))

        def work(connection: Connection, batch: list[Row] = batch,
                 ) -> tuple[list[Problem], int, int]:
            return TradeBatch(loader, connection, file.name, source="fix").run(batch, [])

        rejected, booked, unchanged = with_retries(engine, work)
        report.rejected += rejected
        report.count(report.booked, file.name, booked)
        report.count(report.unchanged, file.name, unchanged)
    return report
