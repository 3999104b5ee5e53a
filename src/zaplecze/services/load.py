"""``zaplecze load DIR``: import a book folder, idempotently, one transaction per batch.

Every row is either booked, recognised as already booked (same key, same content: nothing to
do), or rejected with its file, line and rule — kept in ``rejections`` for an operator, never
silently dropped, never stopping the good rows. A batch of rows commits with its idempotency
keys, its entries and its rejections, or not at all: a crash mid-load resumes cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import marshal
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions.model import CA_COLUMNS
from zaplecze.corporate_actions.model import corporate_action as validate_corporate_action
from zaplecze.formats.book_csv import LOAD_ORDER, CsvReader, Row, open_book_file
from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.fields import Rejected
from zaplecze.kernel.limits import (
    ANALYZE_AFTER_ROWS,
    DEFER_INDEXES_MIN_ROWS,
    ESTIMATE_SAMPLE_BYTES,
    LARGE_FILE_BYTES,
    PREPARE_IN_WORKER_BYTES,
    ROWS_PER_BATCH,
    ROWS_PER_LARGE_BATCH,
)
from zaplecze.kernel.money import currency_scale, decimal_of, units
from zaplecze.kernel.problems import BookError, Problem, Rule, Severity
from zaplecze.ledger import accounts as gl
from zaplecze.ledger.model import Entry, void
from zaplecze.refdata import validate as refcheck
from zaplecze.refdata.model import RefData
from zaplecze.services.eod import projected_action_cash
from zaplecze.settlement.ssi import ssi_row
from zaplecze.store import bulk_indexes, repo
from zaplecze.store.db import read_connection, refresh_statistics, with_retries
from zaplecze.store.journal import FlatEntry, JournalWriter, flatten
from zaplecze.trading import capture
from zaplecze.trading.booking import book_cash, book_trade, trade_key
from zaplecze.trading.model import Cancel, CashKind, CashMovement, Trade

Progress = Callable[[str, int], None]
# A withdrawal another, concurrent load booked first: nothing to do, not a rejection.
_ALREADY_BOOKED = Problem(Rule.CONFLICTING_DUPLICATE_ID, "already booked")


@dataclass
class LoadReport:
    booked: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fatal: Problem | None = None

    def count(self, bucket: dict[str, int], file_name: str, n: int = 1) -> None:
        bucket[file_name] = bucket.get(file_name, 0) + n


def _batches(reader: Iterable[Row | Problem], size: int) -> Iterator[list[Row | Problem]]:
    batch: list[Row | Problem] = []
    for item in reader:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _estimated_rows(path: Path) -> int:
    """A file's rows, estimated from the length of its first lines."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        head = stream.read(ESTIMATE_SAMPLE_BYTES)
    lines = head.count(b"\n")
    if len(head) >= size or not lines:
        return lines
    return size * lines // len(head)


def _rows_per_batch(path: Path, deferring: bool) -> int:
    """The default batch: larger for a large file, unless its indexes are deferred
    (kernel/limits.py says why)."""
    return (ROWS_PER_LARGE_BATCH if path.stat().st_size >= LARGE_FILE_BYTES and not deferring
            else ROWS_PER_BATCH)


def _record_rejections(connection: Connection, problems: list[Problem],
                       fingerprints: dict[int, str]) -> None:
    if not problems:
        return
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    m = repo.mark(connection)
    sql = (f"INSERT INTO rejections (file, line, reason, detail, source_key, fingerprint, "
           f"recorded_at) VALUES ({', '.join([m] * 7)}) "
           f"ON CONFLICT (file, line, reason, fingerprint) DO NOTHING")
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, [(p.source, p.line, p.rule.value, p.detail, "",
                                  fingerprints.get(p.line or 0, ""), now) for p in problems])
    finally:
        cursor.close()


# The files whose rows make up ``RefData`` (instruments, accounts, commission, withholding).
REFDATA_FILES = frozenset(("instruments", "accounts", "fees", "withholding"))


class Loader:
    """Loads one folder into one book."""

    def __init__(self, engine: Engine, calendar: SettlementCalendar | None = None,
                 progress: Progress | None = None, batch_rows: int | None = None,
                 defer_indexes: bool | None = None) -> None:
        self.engine = engine
        self.calendar = calendar or SettlementCalendar()
        self.progress = progress
        self.batch_rows = batch_rows  # source rows a transaction; None: by the file's size
        self.defer_indexes = defer_indexes  # for trades.csv; None: by its size (_worth_deferring)
        self.report = LoadReport()
        self.refdata = RefData()
        self._refdata_stale = True  # read the reference data again before it is next used
        self.withdrawals: list[tuple[CashMovement, Row]] = []

    # -- the folder ---------------------------------------------------------------------------

    def load(self, folder: Path) -> LoadReport:
        bulk_indexes.build(self.engine)  # what a load stopped before its end left unbuilt
        with read_connection(self.engine) as connection:
            has_refdata = bool(connection.exec_driver_sql(
                "SELECT COUNT(*) FROM accounts").scalar())
        for stem in ("instruments", "accounts"):
            if not (folder / f"{stem}.csv").exists() and not has_refdata:
                self.report.fatal = Problem(Rule.MISSING_REQUIRED_FILE,
                                            f"{stem}.csv is required on the first load of a "
                                            f"book", f"{stem}.csv", None)
                self._keep(self.report.fatal)
                return self.report
        for stem in LOAD_ORDER:
            path = folder / f"{stem}.csv"
            if not path.exists():
                continue
            stream, reader = open_book_file(path)
            with stream:
                self.report.warnings += reader.warnings
                if reader.fatal is not None:
                    self.report.rejected.append(reader.fatal)
                    self._keep(reader.fatal)
                    continue
                deferring = stem == "trades" and self._worth_deferring(path)
                if deferring:
                    bulk_indexes.defer(self.engine)
                self._load_file(stem, reader, path, deferring)
                if deferring:
                    bulk_indexes.build(self.engine)
            if stem in REFDATA_FILES:
                self._refdata_stale = True
            if stem == "calendar_overrides":
                self.calendar = self._calendar()
        self._decide_withdrawals()
        if sum(self.report.booked.values()) >= ANALYZE_AFTER_ROWS:
            refresh_statistics(self.engine, grown=True)
        return self.report

    def _worth_deferring(self, path: Path) -> bool:
        """Whether to build the secondary indexes after the trades rather than with each one:
        for a big file, at least as big as what the book holds (store/bulk_indexes.py)."""
        if self.defer_indexes is not None:
            return self.defer_indexes
        rows = _estimated_rows(path)
        if rows < DEFER_INDEXES_MIN_ROWS:
            return False
        with read_connection(self.engine) as connection:
            return rows >= repo.next_trade_sequence(connection) - 1

    def _keep(self, problem: Problem) -> None:
        """A whole-file problem is kept for operators like any rejected row."""
        def work(connection: Connection) -> None:
            _record_rejections(connection, [problem], {})
        with_retries(self.engine, work)

    def _snapshot(self) -> RefData:
        with read_connection(self.engine) as connection:
            return repo.refdata(connection)

    def _calendar(self) -> SettlementCalendar:
        with read_connection(self.engine) as connection:
            return repo.calendar(connection)

    def _preparer(self, stem: str) -> Callable[[Row], Any] | None:
        """How a row of this file is prepared ahead of the book, if it is."""
        refdata, calendar = self.refdata, self.calendar
        if stem == "trades":
            return lambda row: prepare_row(row, refdata, calendar)
        if stem == "cash":
            return lambda row: prepare_cash(row, refdata)
        return None

    def _load_file(self, stem: str, reader: CsvReader, path: Path, deferring: bool = False,
                   ) -> None:
        handler = getattr(self, f"_batch_{stem}")
        if stem in ("prices", "cash", "trades", "corporate_actions") and self._refdata_stale:
            self.refdata = self._snapshot()
            self._refdata_stale = False
        prepare = self._preparer(stem)
        size = self.batch_rows or _rows_per_batch(path, deferring)
        batches: Iterable[list[Any]] = (
            _batches(reader, size) if prepare is None
            else prepared_batches(reader, path, prepare, size))
        for batch in batches:
            rows = [item for item in batch if not isinstance(item, Problem)]
            unreadable = [item for item in batch if isinstance(item, Problem)]

            def work(connection: Connection, rows: list[Any] = rows,
                     unreadable: list[Problem] = unreadable) -> tuple[list[Problem], int, int]:
                return handler(connection, reader.name, rows, unreadable)

            problems, booked, unchanged = with_retries(self.engine, work)
            self.report.rejected += problems
            self.report.count(self.report.booked, reader.name, booked)
            self.report.count(self.report.unchanged, reader.name, unchanged)
            if self.progress:
                self.progress(reader.name, len(batch))

    # -- reference data -----------------------------------------------------------------------

    def _reference_batch(self, connection: Connection, file_name: str, rows: list[Row],
                         unreadable: list[Problem], table: str, key_columns: tuple[str, ...],
                         to_record: Callable[[dict[str, str]], dict[str, Any]],
                         ) -> tuple[list[Problem], int, int]:
        problems = list(unreadable)
        fingerprints: dict[int, str] = {}
        records: dict[str, tuple[int, dict[str, Any]]] = {}
        for row in rows:
            try:
                record = to_record(row.values)
            except Rejected as rejected:
                problems.append(Problem(rejected.rule, rejected.detail, file_name, row.line))
                continue
            key = "|".join(str(record[column]) for column in key_columns)
            fingerprints[row.line] = record["content_hash"]
            earlier = records.get(key)
            if earlier is not None:
                if earlier[1]["content_hash"] != record["content_hash"]:
                    problems.append(Problem(Rule.CONFLICTING_DUPLICATE_ID,
                                            f"{key} appears on line {earlier[0]} with other "
                                            f"content", file_name, row.line))
                continue
            records[key] = (row.line, record)
        stored = _stored_reference_hashes(connection, table, key_columns)
        fresh = []
        unchanged = 0
        for key, (line, record) in records.items():
            if key in stored:
                if stored[key] != record["content_hash"]:
                    problems.append(Problem(Rule.CONFLICTING_DUPLICATE_ID,
                                            f"{key} was loaded before with other content",
                                            file_name, line))
                else:
                    unchanged += 1
                continue
            fresh.append(record)
        if fresh:
            connection.execute(getattr(repo.schema, table).insert(), fresh)
        _record_rejections(connection, problems, fingerprints)
        return problems, len(fresh), unchanged

    def _batch_instruments(self, connection: Connection, name: str, rows: list[Row],
                           unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            item = refcheck.instrument(values)
            return {"isin": item.isin, "symbol": item.symbol, "name": item.name,
                    "kind": item.kind, "currency": item.currency, "mic": item.mic,
                    "issuer_country": item.issuer_country, "quantity_scale": item.quantity_scale,
                    "content_hash": capture.content_hash(values, _INSTRUMENT_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "instruments",
                                     ("isin",), record)

    def _batch_accounts(self, connection: Connection, name: str, rows: list[Row],
                        unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            item = refcheck.account(values)
            return {"account": item.account, "name": item.name, "kind": item.kind.value,
                    "base_currency": item.base_currency, "tax_residence": item.tax_residence,
                    "lot_method": item.lot_method.value,
                    "content_hash": capture.content_hash(values, _ACCOUNT_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "accounts",
                                     ("account",), record)

    def _batch_fees(self, connection: Connection, name: str, rows: list[Row],
                    unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            item = refcheck.fee_rule(values)
            return {"mic": item.mic, "currency": item.currency, "rate_bps": str(item.rate_bps),
                    "minimum": str(item.minimum),
                    "content_hash": capture.content_hash(values, _FEE_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "fee_rules",
                                     ("mic", "currency"), record)

    def _batch_withholding(self, connection: Connection, name: str, rows: list[Row],
                           unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            item = refcheck.withholding_rate(values)
            return {"issuer_country": item.issuer_country, "tax_residence": item.tax_residence,
                    "rate": str(item.rate),
                    "content_hash": capture.content_hash(values, _WITHHOLDING_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "withholding_rates",
                                     ("issuer_country", "tax_residence"), record)

    def _batch_prices(self, connection: Connection, name: str, rows: list[Row],
                      unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        instruments = self.refdata.instruments

        def record(values: dict[str, str]) -> dict[str, Any]:
            day, isin, close, currency = refcheck.price(values, instruments)
            return {"business_date": day.isoformat(), "isin": isin, "close": str(close),
                    "currency": currency,
                    "content_hash": capture.content_hash(values, _PRICE_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "prices",
                                     ("business_date", "isin"), record)

    def _batch_fx(self, connection: Connection, name: str, rows: list[Row],
                  unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            day, base, quote, rate = refcheck.fx_rate(values)
            return {"business_date": day.isoformat(), "base": base, "quote": quote,
                    "rate": str(rate), "content_hash": capture.content_hash(values, _FX_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "fx_rates",
                                     ("business_date", "base", "quote"), record)

    def _batch_calendar_overrides(self, connection: Connection, name: str, rows: list[Row],
                                  unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            override = refcheck.calendar_override(values)
            return {"calendar": override.calendar, "business_date": override.day.isoformat(),
                    "closed": int(override.closed), "reason": override.reason,
                    "content_hash": capture.content_hash(values, _OVERRIDE_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "calendar_overrides",
                                     ("calendar", "business_date"), record)

    def _batch_ssis(self, connection: Connection, name: str, rows: list[Row],
                    unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        def record(values: dict[str, str]) -> dict[str, Any]:
            ssi = ssi_row(values)
            return {"counterparty": ssi.counterparty, "market": ssi.market,
                    "currency": ssi.currency, "place_of_settlement": ssi.place_of_settlement,
                    "counterparty_bic": ssi.counterparty_bic,
                    "counterparty_account": ssi.counterparty_account,
                    "safekeeping_account": ssi.safekeeping_account,
                    "payment": ssi.payment.value, "netting": int(ssi.netting),
                    "content_hash": capture.content_hash(values, _SSI_COLUMNS)}
        return self._reference_batch(connection, name, rows, unreadable, "ssis",
                                     ("counterparty", "market", "currency"), record)

    def _batch_corporate_actions(self, connection: Connection, name: str, rows: list[Row],
                                 unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        instruments = self.refdata.instruments
        next_sequence = int(connection.exec_driver_sql(
            "SELECT COALESCE(MAX(sequence), 0) FROM corporate_actions").scalar() or 0)
        counter = [next_sequence]

        def record(values: dict[str, str]) -> dict[str, Any]:
            digest = capture.content_hash(values, CA_COLUMNS)
            event = validate_corporate_action(values, instruments, digest)
            counter[0] += 1
            return repo.corporate_action_record(event, counter[0], digest)
        return self._reference_batch(connection, name, rows, unreadable, "corporate_actions",
                                     ("event_id",), record)

    # -- cash ---------------------------------------------------------------------------------

    def _batch_cash(self, connection: Connection, name: str, rows: list[PreparedCash],
                    unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        problems = list(unreadable)
        problems += [Problem(Rule(row.rule), row.detail, name, row.line)
                     for row in rows if row.rule]
        movements = [row for row in rows if not row.rule]
        fingerprints: dict[int, str] = {}
        stored = _stored_cash(connection, [row.movement_id for row in movements])
        seen: dict[str, tuple[int, str]] = {}
        writer = JournalWriter(connection)
        fresh: list[tuple[str, ...]] = []
        unchanged = 0
        for row in movements:
            fingerprints[row.line] = row.digest
            earlier = seen.get(row.movement_id) or stored.get(row.movement_id)
            if earlier is not None:
                if earlier[1] != row.digest:
                    problems.append(Problem(Rule.CONFLICTING_DUPLICATE_ID,
                                            f"movement_id {row.movement_id} was loaded "
                                            f"before with other content", name, row.line))
                elif earlier[0] == -1:
                    problems.append(Problem(Rule.INSUFFICIENT_SETTLED_CASH,
                                            f"movement_id {row.movement_id} was refused "
                                            f"when first loaded; the decision is final",
                                            name, row.line))
                else:
                    unchanged += 1
                continue
            seen[row.movement_id] = (row.line, row.digest)
            if row.entry is None:  # a withdrawal: decided once the load's files are in
                values = row.values or {}
                self.withdrawals.append((capture.cash_movement(values, self.refdata),
                                         Row(row.line, values)))
                continue
            writer.append_flat(row.entry)
            fresh.append((*row.record, "BOOKED"))
        if fresh:
            repo.write_rows(connection, "cash_movements", CASH_ROW_COLUMNS, fresh)
        writer.flush()
        _record_rejections(connection, problems, fingerprints)
        return problems, len(fresh), unchanged

    def _decide_withdrawals(self) -> None:
        """Withdrawals in value-date order (file order within a date), from everything known
        once this load's files are in; each decision is final."""
        ordered = sorted(self.withdrawals, key=lambda item: (item[0].value_date, item[1].line))
        for movement, row in ordered:
            def work(connection: Connection, movement: CashMovement = movement,
                     row: Row = row) -> Problem | None:
                return self._withdraw(connection, movement, row)

            problem = with_retries(self.engine, work)
            if problem is _ALREADY_BOOKED:
                self.report.count(self.report.unchanged, "cash.csv")
            elif problem is not None:
                self.report.rejected.append(problem)
            else:
                self.report.count(self.report.booked, "cash.csv")
        self.withdrawals = []

    def _withdraw(self, connection: Connection, movement: CashMovement,
                  row: Row) -> Problem | None:
        # Another load may have decided this very movement since this one read the file.
        decided = _stored_cash(connection, [movement.movement_id]).get(movement.movement_id)
        if decided is not None:
            if decided[1] != movement.content_hash:
                return Problem(Rule.CONFLICTING_DUPLICATE_ID,
                               f"movement_id {movement.movement_id} was loaded before with "
                               f"other content", "cash.csv", row.line)
            if decided[0] == 0:
                return _ALREADY_BOOKED
            return Problem(Rule.INSUFFICIENT_SETTLED_CASH,
                           f"movement_id {movement.movement_id} was refused when first "
                           f"loaded; the decision is final", "cash.csv", row.line)
        account = self.refdata.accounts[movement.account]
        owner = gl.owner(account.account, account.kind)
        scale = currency_scale(movement.currency)
        settled = repo.projected_settled_cash(connection, owner, movement.currency,
                                              movement.value_date)
        settled += projected_action_cash(connection, account.account, movement.currency,
                                         movement.value_date, self.refdata)
        wanted = -units(movement.amount, scale)
        if wanted > settled:
            problem = Problem(Rule.INSUFFICIENT_SETTLED_CASH,
                              f"withdrawal of {decimal_of(wanted, scale)} {movement.currency} "
                              f"exceeds the settled cash of {decimal_of(settled, scale)} "
                              f"{movement.currency} at the end of {movement.value_date}",
                              "cash.csv", row.line)
            connection.execute(repo.schema.cash_movements.insert(),
                               [_cash_record(movement, problem.rule.value)])
            _record_rejections(connection, [problem], {row.line: movement.content_hash})
            return problem
        writer = JournalWriter(connection)
        writer.append(book_cash(movement, self.refdata))
        connection.execute(repo.schema.cash_movements.insert(),
                           [_cash_record(movement, "BOOKED")])
        writer.flush()
        return None

    # -- trades -------------------------------------------------------------------------------

    def _batch_trades(self, connection: Connection, name: str, rows: list[PreparedRow],
                      unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        return TradeBatch(self, connection, name).run_prepared(rows, unreadable)


class TradeBatch:
    """One batch of trades.csv rows (or FIX fills): NEWs and CANCELs in file order."""

    def __init__(self, loader: Loader, connection: Connection, name: str,
                 source: str = "csv") -> None:
        self.loader = loader
        self.connection = connection
        self.name = name
        self.source = source
        self.problems: list[Problem] = []
        self.fingerprints: dict[int, str] = {}
        self.writer = JournalWriter(connection)
        self.in_batch: dict[str, tuple[PreparedRow, int]] = {}  # trade_id -> (row, sequence)
        self.cancelled_in_batch: dict[str, str] = {}
        self.trade_rows: list[tuple[object, ...]] = []
        self.cancel_records: list[dict[str, Any]] = []
        self.unchanged = 0

    def reject(self, rule: Rule, detail: str, line: int) -> None:
        self.problems.append(Problem(rule, detail, self.name, line))

    def run(self, rows: list[Row], unreadable: list[Problem]) -> tuple[list[Problem], int, int]:
        refdata, calendar = self.loader.refdata, self.loader.calendar
        return self.run_prepared([prepare_row(row, refdata, calendar) for row in rows],
                                 unreadable)

    def run_prepared(self, rows: list[PreparedRow], unreadable: list[Problem],
                     ) -> tuple[list[Problem], int, int]:
        self.problems += unreadable
        new_ids = [row.trade_id for row in rows if row.action == "NEW"]
        cancel_ids = [row.trade_id for row in rows if row.action == "CANCEL"]
        self.stored = repo.existing_hashes(self.connection, "trades", "trade_id", new_ids)
        self.stored_cancels = repo.existing_hashes(self.connection, "cancels", "trade_id",
                                                   cancel_ids)
        self.stored_trades = repo.trade_rows(self.connection, cancel_ids)
        self.sequence = repo.next_trade_sequence(self.connection)
        for row in rows:
            if row.action == "NEW":
                self.new(row)
            elif row.action == "CANCEL":
                try:
                    self.cancel(row)
                except Rejected as rejected:
                    self.reject(rejected.rule, rejected.detail, row.line)
            else:
                self.reject(Rule(row.rule), row.detail, row.line)
        if self.trade_rows:
            repo.write_rows(self.connection, "trades", TRADE_ROW_COLUMNS, self.trade_rows)
        if self.cancel_records:
            self.connection.execute(repo.schema.cancels.insert(), self.cancel_records)
        self.writer.flush()
        _record_rejections(self.connection, self.problems, self.fingerprints)
        return self.problems, len(self.trade_rows) + len(self.cancel_records), self.unchanged

    def new(self, row: PreparedRow) -> None:
        trade_id = row.trade_id
        self.fingerprints[row.line] = row.digest
        earlier = self.stored.get(trade_id)
        if earlier is None and trade_id in self.in_batch:
            earlier = self.in_batch[trade_id][0].digest
        if earlier is not None:
            if earlier != row.digest:
                self.reject(Rule.CONFLICTING_DUPLICATE_ID,
                            f"trade_id {trade_id} was loaded before with other content", row.line)
            else:
                self.unchanged += 1
            return
        if row.record is None or row.entry is None:
            self.reject(Rule(row.rule), row.detail, row.line)
            return
        self.writer.append_flat(row.entry)
        self.in_batch[trade_id] = (row, self.sequence)
        self.trade_rows.append((self.sequence, self.source, *row.record))
        self.sequence += 1

    def cancel(self, row: PreparedRow) -> None:
        digest = row.digest
        self.fingerprints[row.line] = digest
        trade_id = row.trade_id
        earlier = self.stored_cancels.get(trade_id) or self.cancelled_in_batch.get(trade_id)
        if earlier is not None:
            if earlier != digest:
                self.reject(Rule.CONFLICTING_DUPLICATE_ID,
                            f"a CANCEL of {trade_id} was loaded before with other content",
                            row.line)
            else:
                self.unchanged += 1
            return
        order = capture.cancel(row.values or {}, self.loader.refdata)
        trade = self._trade(trade_id)
        if trade is None:
            self.reject(Rule.UNKNOWN_TRADE, f"no trade {trade_id} to cancel", row.line)
            return
        problem = _cancel_problem(order, trade)
        if problem is not None:
            self.reject(problem[0], problem[1], row.line)
            return
        key = trade_key(trade_id)
        pending = self._pending(key)
        if pending is None:
            self.reject(Rule.TRADE_ALREADY_SETTLED,
                        f"trade {trade_id} has already settled (its settlement was booked)",
                        row.line)
            return
        self.writer.append(void(pending, order.cancel_date, f"CANCEL {trade_id}"))
        for linked in repo.open_pending(self.connection, linked_to=[key]).values():
            self.writer.append(void(linked, order.cancel_date, f"CANCEL {trade_id}"))
        self.cancelled_in_batch[trade_id] = digest
        self.cancel_records.append({"trade_id": trade_id, "account": order.account,
                                    "cancel_date": order.cancel_date.isoformat(),
                                    "content_hash": digest})

    def _trade(self, trade_id: str) -> Trade | None:
        if trade_id in self.in_batch:
            row, sequence = self.in_batch[trade_id]
            assert row.record is not None
            return repo.trade_of(SimpleNamespace(
                sequence=sequence, **dict(zip(TRADE_COLUMNS_PREPARED, row.record, strict=True))))
        stored = self.stored_trades.get(trade_id)
        return repo.trade_of(stored) if stored is not None else None

    def _pending(self, key: str) -> Entry | None:
        trade_id = key.split(":", 1)[1]
        if trade_id in self.in_batch:
            # booked earlier in this batch: its entry, as booking made it
            trade = self._trade(trade_id)
            assert trade is not None
            return book_trade(trade, self.loader.refdata)
        found = repo.entries_by_key(self.connection, [key, f"post:{key}", f"void:{key}"])
        if key not in found or f"post:{key}" in found or f"void:{key}" in found:
            return None
        if repo.settlement_started(self.connection, key):  # a partial settlement is booked
            return None
        return found[key]


# -- trades prepared ahead of the book ----------------------------------------------------------

class PreparedRow(NamedTuple):
    """A trades.csv row (or FIX fill) worked as far as it goes without the book: its action,
    id and fingerprint; for a valid NEW its trade row (short of its sequence and source) and its
    flattened entry, for an invalid one the rule it breaks; for a CANCEL its values, decided
    against the book. Plain values only, so batches cross a process boundary cheaply."""
    line: int
    action: str  # NEW, CANCEL, or "" when the action itself is invalid
    trade_id: str
    digest: str
    record: tuple[str, ...] | None = None  # TRADE_COLUMNS_PREPARED
    entry: FlatEntry | None = None
    rule: str = ""  # the Rule broken (its value), when rejected before the book is read
    detail: str = ""
    values: dict[str, str] | None = None  # CANCEL only


TRADE_COLUMNS_PREPARED = ("trade_id", "account", "isin", "side", "quantity", "price", "currency",
                          "trade_date", "settlement_date", "venue", "counterparty", "gross",
                          "commission", "content_hash")
TRADE_ROW_COLUMNS = ("sequence", "source", *TRADE_COLUMNS_PREPARED)


def prepare_row(row: Row, refdata: RefData, calendar: SettlementCalendar) -> PreparedRow:
    """Everything about one trades row that does not depend on what the book already holds:
    validation, settlement date, amounts, the pending entry. Pure."""
    values = row.values
    trade_id = values.get("trade_id", "")
    try:
        action = capture.action_of(values)
    except Rejected as rejected:
        return PreparedRow(row.line, "", trade_id, "", rule=rejected.rule.value,
                           detail=rejected.detail)
    digest = capture.content_hash(values, capture.TRADE_COLUMNS)
    if action == "CANCEL":
        return PreparedRow(row.line, action, trade_id, digest, values=values)
    try:
        trade = capture.trade(values, refdata, calendar, 0, digest)
        entry = book_trade(trade, refdata)
    except Rejected as rejected:
        return PreparedRow(row.line, action, trade_id, digest, rule=rejected.rule.value,
                           detail=rejected.detail)
    record = (trade.trade_id, trade.account, trade.isin, trade.side.value, str(trade.quantity),
              str(trade.price), trade.currency, trade.trade_date.isoformat(),
              trade.settlement_date.isoformat(), trade.venue, trade.counterparty,
              str(trade.gross), str(trade.commission), trade.content_hash)
    return PreparedRow(row.line, action, trade_id, digest, record, flatten(entry))


class PreparedCash(NamedTuple):
    """A cash.csv row worked as far as it goes without the book: for a valid movement its
    record (short of the decision) and, unless it is a withdrawal, its flattened entry; for an
    invalid one the rule it breaks. A withdrawal keeps its values: it is decided at the end."""
    line: int
    movement_id: str
    digest: str = ""
    record: tuple[str, ...] = ()  # CASH_COLUMNS_PREPARED
    entry: FlatEntry | None = None
    rule: str = ""
    detail: str = ""
    values: dict[str, str] | None = None  # a withdrawal only


CASH_COLUMNS_PREPARED = ("movement_id", "account", "value_date", "currency", "amount", "kind",
                         "description", "content_hash")
CASH_ROW_COLUMNS = (*CASH_COLUMNS_PREPARED, "decision")


def prepare_cash(row: Row, refdata: RefData) -> PreparedCash:
    """Everything about one cash row that does not depend on the book. Pure."""
    movement_id = row.values.get("movement_id", "")
    try:
        movement = capture.cash_movement(row.values, refdata)
    except Rejected as rejected:
        return PreparedCash(row.line, movement_id, rule=rejected.rule.value,
                            detail=rejected.detail)
    known = _cash_record(movement, "")
    record = tuple(known[column] for column in CASH_COLUMNS_PREPARED)
    if movement.kind is CashKind.WITHDRAWAL:
        return PreparedCash(row.line, movement_id, movement.content_hash, record,
                            values=row.values)
    return PreparedCash(row.line, movement_id, movement.content_hash, record,
                        flatten(book_cash(movement, refdata)))


_ENTRY_FIELD: dict[type, int] = {PreparedRow: PreparedRow._fields.index("entry"),
                                 PreparedCash: PreparedCash._fields.index("entry")}


def prepared_batches(reader: CsvReader, path: Path, prepare: Callable[[Row], Any], size: int,
                     ) -> Iterator[list[Any]]:
    """A file in batches of ``size`` rows, each row prepared (``prepare_row``,
    ``prepare_cash``). A large file is read and prepared by a second process while this one
    books the batch before: on two cores, the load's domain work and its database writes
    overlap. The batches are the same either way."""
    if (path.stat().st_size < PREPARE_IN_WORKER_BYTES
            or "fork" not in multiprocessing.get_all_start_methods()):
        for batch in _batches(reader, size):
            yield _prepared(batch, prepare)
        return
    yield from _prepared_by_worker(path, prepare, size)


def _prepared(batch: list[Row | Problem], prepare: Callable[[Row], Any]) -> list[Any]:
    """Each row prepared; a row that could not be read stays the Problem it is."""
    return [prepare(item) if isinstance(item, Row) else item for item in batch]


def _prepared_by_worker(path: Path, prepare: Callable[[Row], Any], size: int,
                        ) -> Iterator[list[Any]]:
    context = multiprocessing.get_context("fork")  # the worker inherits ``prepare`` as it is
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_prepare_file, args=(path, prepare, size, sender, receiver),
                             name="zaplecze-prepare", daemon=True)
    worker.start()
    sender.close()
    try:
        while True:
            try:
                message = _decoded(receiver.recv_bytes())
            except EOFError:
                raise BookError(f"preparing {path.name} stopped: its worker process "
                                f"ended with code {worker.exitcode}") from None
            if message is None:
                return
            if isinstance(message, str):
                raise BookError(f"preparing {path.name} failed: {message}")
            yield message
    finally:
        receiver.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _prepare_file(path: Path, prepare: Callable[[Row], Any], size: int,
                  sender: multiprocessing.connection.Connection,
                  receiver: multiprocessing.connection.Connection) -> None:
    """The worker: reads the file afresh (its header was checked by the parent), prepares
    each batch and sends it; None at the end, the error's text on a failure. Ctrl-C is the
    parent's to handle: it stops the worker when it stops reading.

    The parent's end of the pipe is closed here at once, so that a parent killed outright
    leaves the pipe with no reader and the worker's next send fails and ends it: the worker
    must not outlive the parent, since it holds copies of the parent's descriptors (a
    PostgreSQL server keeps a session open while any copy of its socket is)."""
    receiver.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stream, reader = open_book_file(path)
        with stream:
            for batch in _batches(reader, size):
                sender.send_bytes(_encoded(_prepared(batch, prepare)))
        sender.send_bytes(marshal.dumps(None))
    except BrokenPipeError:
        pass  # the parent has gone: nothing to tell
    except Exception as error:  # reported to the parent, which stops the load
        with contextlib.suppress(OSError):
            sender.send_bytes(marshal.dumps(f"{type(error).__name__}: {error}"))
    finally:
        sender.close()


# A prepared batch crosses from the worker as plain tuples in ``marshal``'s format: five times
# quicker to write than pickling the named tuples (which pickle goes through Python code for),
# and twice as quick to read; both ends are the same interpreter (a fork). Each item is tagged.
_ROW, _CASH, _PROBLEM = "R", "C", "P"


def _encoded(batch: list[Any]) -> bytes:
    items: list[tuple[Any, ...]] = []
    for item in batch:
        if isinstance(item, Problem):
            items.append((_PROBLEM, item.rule.value, item.detail, item.source, item.line,
                          item.severity.value))
            continue
        fields = list(item)
        entry = item.entry
        if entry is not None:
            fields[_ENTRY_FIELD[type(item)]] = tuple(entry)
        items.append((_ROW if isinstance(item, PreparedRow) else _CASH, *fields))
    return marshal.dumps(items)


def _decoded(data: bytes) -> list[Any] | str | None:
    """A batch back from ``_encoded``; the worker's error text; None at the end."""
    items = marshal.loads(data)
    if items is None or isinstance(items, str):
        return items  # type: ignore[no-any-return]
    batch: list[Any] = []
    for tag, *fields in items:
        if tag == _PROBLEM:
            batch.append(Problem(Rule(fields[0]), fields[1], fields[2], fields[3],
                                 Severity(fields[4])))
            continue
        kind = PreparedRow if tag == _ROW else PreparedCash
        place = _ENTRY_FIELD[kind]
        if fields[place] is not None:
            fields[place] = FlatEntry(*fields[place])
        batch.append(kind(*fields))
    return batch


def _cancel_problem(order: Cancel, trade: Trade) -> tuple[Rule, str] | None:
    if order.account != trade.account:
        return (Rule.CANCEL_ACCOUNT_MISMATCH,
                f"trade {trade.trade_id} belongs to {trade.account}, not {order.account}")
    if order.cancel_date < trade.trade_date:
        return (Rule.CANCEL_BEFORE_TRADE_DATE,
                f"cancel dated {order.cancel_date} is before the trade date {trade.trade_date}")
    if order.cancel_date >= trade.settlement_date:
        return (Rule.TRADE_ALREADY_SETTLED,
                f"trade {trade.trade_id} was due to settle on {trade.settlement_date}; a cancel "
                f"dated {order.cancel_date} comes too late (correct it by a new opposite trade)")
    return None


def _text(value: object) -> str:
    return "" if value is None or str(value) == "0" else str(value)


def _cash_record(movement: CashMovement, decision: str) -> dict[str, Any]:
    return {"movement_id": movement.movement_id, "account": movement.account,
            "value_date": movement.value_date.isoformat(), "currency": movement.currency,
            "amount": str(movement.amount), "kind": movement.kind.value,
            "description": movement.description, "decision": decision,
            "content_hash": movement.content_hash}


def _stored_cash(connection: Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
    """movement_id -> (0 booked / -1 refused, content_hash) for movements already stored."""
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        marks = ", ".join([repo.mark(connection)] * len(chunk))
        for movement_id, decision, digest in connection.exec_driver_sql(
                f"SELECT movement_id, decision, content_hash FROM cash_movements "
                f"WHERE movement_id IN ({marks})", tuple(chunk)):
            found[movement_id] = (0 if decision == "BOOKED" else -1, digest)
    return found


def _stored_reference_hashes(connection: Connection, table: str,
                             key_columns: tuple[str, ...]) -> dict[str, str]:
    columns = ", ".join(key_columns)
    return {"|".join(str(value) for value in row[:-1]): str(row[-1])
            for row in connection.exec_driver_sql(f"SELECT {columns}, content_hash FROM {table}")}


_INSTRUMENT_COLUMNS = ("isin", "symbol", "name", "kind", "currency", "mic", "issuer_country",
                       "quantity_scale")
_ACCOUNT_COLUMNS = ("account", "name", "kind", "base_currency", "tax_residence", "lot_method")
_FEE_COLUMNS = ("mic", "currency", "rate_bps", "minimum")
_WITHHOLDING_COLUMNS = ("issuer_country", "tax_residence", "rate")
_PRICE_COLUMNS = ("date", "isin", "close", "currency")
_FX_COLUMNS = ("date", "base", "quote", "rate")
_OVERRIDE_COLUMNS = ("calendar", "date", "closed", "reason")
_SSI_COLUMNS = ("counterparty", "market", "currency", "place_of_settlement", "counterparty_bic",
                "counterparty_account", "safekeeping_account", "payment", "netting")
