"""Reports as of a date: read the journal and source records, fold, build rows. The settlement,
reconciliation and corporate-action desks are imported by their reports only: a positions
report need not load them (a third of a second)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.reports import builders
from zaplecze.services.lot_books import lot_books
from zaplecze.store import repo
from zaplecze.store.db import read_connection

REPORTS = ("positions", "cash", "realized", "dividends", "trial-balance", "rejected",
           "stock-record", "valuation", "obligations", "cash-ladder", "instructions", "fails",
           "penalties", "breaks", "corporate-actions")
COLUMNS = {
    "positions": ("account", "isin", "quantity", "cost_basis", "currency"),
    "cash": ("account", "currency", "balance"),
    "realized": ("account", "trade_id", "isin", "close_date", "quantity", "proceeds", "cost",
                 "gain", "currency"),
    "dividends": ("account", "event_id", "isin", "pay_date", "quantity", "gross", "withholding",
                  "net", "currency"),
    "trial-balance": ("gl_account", "currency", "debit", "credit"),
    "rejected": ("file", "line", "reason", "detail"),
    "stock-record": ("isin", "owned", "at_depository", "pending_from_street",
                     "failing_to_receive", "failing_to_deliver", "break"),
    "valuation": ("business_date", "account", "currency", "market_value", "positions",
                  "unpriced"),
    "obligations": ("settlement_date", "counterparty", "place_of_settlement", "isin",
                    "currency", "direction", "quantity", "cash", "payment", "netting", "trades"),
    "cash-ladder": ("settlement_date", "currency", "cash_in", "cash_out", "net"),
    "instructions": ("reference", "function", "linked_reference", "counterparty", "direction",
                     "payment", "isin", "quantity", "amount", "currency", "trade_date",
                     "settlement_date", "status", "settled_quantity", "reasons", "held",
                     "trades"),
    "fails": ("reference", "counterparty", "isin", "direction", "intended_settlement_date",
              "instructed", "settled", "failing", "currency", "age_days", "reason",
              "failing_party", "status", "reasons", "buy_in_due", "penalties"),
    "penalties": ("month", "counterparty", "currency", "charged_to_us", "owed_to_us", "net",
                  "days"),
    "breaks": ("break_id", "kind", "subject", "ours", "theirs", "difference", "asset",
               "first_seen", "last_seen", "age_days", "owner", "status", "resolution_reason",
               "comments"),
    "corporate-actions": ("event_id", "kind", "event_type", "isin", "ex_date", "pay_date",
                          "status", "prepared_by", "approved_by", "accounts_entitled",
                          "source"),
}


def build(engine: Engine, name: str, **options: Any) -> list[dict[str, str]]:
    with read_connection(engine) as connection:
        return BUILDERS[name](connection, **options)


def _positions(connection: Connection, as_of: dt.date, basis: str) -> list[dict[str, str]]:
    refdata = repo.refdata(connection)
    balances = repo.balances_as_of(connection, as_of, basis, ("client", "house"))
    books = lot_books(connection, as_of, refdata=refdata) if basis == "trade" else None
    return builders.positions(balances, refdata, books)


def _cash(connection: Connection, as_of: dt.date, basis: str) -> list[dict[str, str]]:
    return builders.cash(repo.cash_as_of(connection, as_of, basis, ("client", "house")))


def _realized(connection: Connection, start: dt.date, end: dt.date) -> list[dict[str, str]]:
    books = lot_books(connection, end, realized_since=start)
    return builders.realized([r for book in books.values() for r in book.realized], start, end)


def _dividends(connection: Connection, start: dt.date, end: dt.date) -> list[dict[str, str]]:
    """Dividends paid in the period, less those of events reversed by its end (a period that
    ended before the reversal is reported as it was)."""
    m = repo.mark(connection)
    rows = connection.exec_driver_sql(
        f"SELECT * FROM entitlements n WHERE n.kind = 'CASH_DIVIDEND' AND NOT EXISTS (SELECT 1 "
        f"FROM ca_reversals r WHERE r.event_id = n.event_id AND r.business_date <= {m})",
        (end.isoformat(),)).mappings().all()
    return builders.dividends([dict(row) for row in rows], start, end)


def _trial_balance(connection: Connection, as_of: dt.date) -> list[dict[str, str]]:
    return builders.trial_balance(repo.cash_as_of(connection, as_of, "trade"))


def _rejected(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.exec_driver_sql(
        "SELECT file, line, reason, detail FROM rejections ORDER BY file, line, id").all()
    return [{"file": f, "line": line, "reason": reason, "detail": detail}
            for f, line, reason, detail in rows]


def _stock_record(connection: Connection, as_of: dt.date) -> list[dict[str, str]]:
    refdata = repo.refdata(connection)
    return builders.stock_record(repo.balances_as_of(connection, as_of, "trade"),
                                 repo.balances_as_of(connection, as_of, "settlement"), refdata,
                                 repo.failing(connection, as_of))


def _valuation(connection: Connection, as_of: dt.date) -> list[dict[str, Any]]:
    m = repo.mark(connection)
    rows = connection.exec_driver_sql(
        f"SELECT business_date, account, currency, market_value, positions, unpriced FROM "
        f"valuations WHERE business_date = (SELECT MAX(business_date) FROM valuations WHERE "
        f"business_date <= {m}) ORDER BY account, currency", (as_of.isoformat(),)).mappings()
    return [dict(row) for row in rows]


def _obligations(connection: Connection, settlement_date: dt.date) -> list[dict[str, str]]:
    from zaplecze.services import settlement_reports

    return settlement_reports.obligations(connection, settlement_date, settlement_date)


def _cash_ladder(connection: Connection, start: dt.date, end: dt.date) -> list[dict[str, str]]:
    from zaplecze.services import settlement_reports

    return settlement_reports.cash_ladder(connection, start, end)


def _instructions(connection: Connection) -> list[dict[str, str]]:
    from zaplecze.services import settlement_reports

    return settlement_reports.instructions(connection)


def _fails(connection: Connection, as_of: dt.date) -> list[dict[str, str]]:
    from zaplecze.services import settlement_reports

    return settlement_reports.fails(connection, as_of)


def _penalties(connection: Connection, start: dt.date, end: dt.date) -> list[dict[str, str]]:
    from zaplecze.services import settlement_reports

    return settlement_reports.penalties(connection, start, end)


def _breaks(connection: Connection, as_of: dt.date) -> list[dict[str, Any]]:
    from zaplecze.services import reconciling

    return reconciling.break_rows(connection, as_of)


def _corporate_actions(connection: Connection) -> list[dict[str, Any]]:
    from zaplecze.services import ca_desk

    return ca_desk.report_rows(connection)


BUILDERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "positions": _positions, "cash": _cash, "realized": _realized, "dividends": _dividends,
    "trial-balance": _trial_balance, "rejected": _rejected, "stock-record": _stock_record,
    "valuation": _valuation, "obligations": _obligations, "cash-ladder": _cash_ladder,
    "instructions": _instructions, "fails": _fails, "penalties": _penalties,
    "breaks": _breaks, "corporate-actions": _corporate_actions,
}
