"""The desk's pages: the dashboard, the trade blotter, accounts, the front office's inventory."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from zaplecze.interfaces.web.api.common import today
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.pages.base import (
    default_as_of,
    error_page,
    first_page,
    redirect,
    render,
    report_link,
    report_parameters,
)
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.kernel.money import at_scale, currency_scale, plain, round_down
from zaplecze.refdata.model import AccountKind
from zaplecze.reports import builders
from zaplecze.services import lot_books, reporting, trade_desk
from zaplecze.store import repo
from zaplecze.store.db import read_connection

router = APIRouter(include_in_schema=False)

LADDER_DAYS = 10
BREAK_BUCKETS = ((0, 1, "0–1"), (2, 5, "2–5"), (6, 10, "6–10"), (11, None, "11+"))
ROWS_SHOWN = 10
BLOTTER_PAGE = 50
AccountId = Annotated[str, Query(max_length=64)]
AsOf = Annotated[dt.date | None, Query()]


def _as_of(connection: Connection, request: Request, as_of: dt.date | None) -> dt.date:
    return as_of or default_as_of(connection, today(request))


def _sum_by(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row[key]] = totals.get(row[key], Decimal(0)) + Decimal(row[value])
    return dict(sorted(totals.items()))


def _bucket(age: int) -> str:
    for low, high, label in BREAK_BUCKETS:
        if age >= low and (high is None or age <= high):
            return label
    return BREAK_BUCKETS[-1][2]


# --- the dashboard -------------------------------------------------------------------------

@router.get("/", name="page.dashboard")
def dashboard(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
              as_of: AsOf = None) -> Response:
    """The day at a glance. Users who may not read trades (the front office) land on their
    own first page instead."""
    who = required(principal)
    if not who.may("trades:read"):
        landing = "/inventory" if who.may("prices:read") else first_page(who)
        if landing is None or landing == "/":
            return error_page(request, 403, "forbidden", "your roles do not allow any page")
        return redirect(landing)
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        day = _as_of(connection, request, as_of)
        booked, booked_total = trade_desk.list_trades(
            connection, accounts=scope, filters={"trade_date_from": day, "trade_date_to": day},
            sort="trade_date", limit=ROWS_SHOWN)
        settling, settling_total = trade_desk.list_trades(
            connection, accounts=scope,
            filters={"settlement_date_from": day, "settlement_date_to": day},
            sort="trade_date", limit=ROWS_SHOWN)
        figures: dict[str, Any] = {}
        if who.may("settlement:read"):
            figures["fails"] = reporting.BUILDERS["fails"](connection, as_of=day)
            month = reporting.BUILDERS["penalties"](connection, start=day.replace(day=1),
                                                    end=day)
            figures["penalties"] = _sum_by(month, "currency", "net")
        if who.may("breaks:read"):
            open_breaks = [row for row in reporting.BUILDERS["breaks"](connection, as_of=day)
                           if row["status"] != "RESOLVED"]
            buckets = {label: 0 for _, _, label in BREAK_BUCKETS}
            for row in open_breaks:
                buckets[_bucket(int(row["age_days"] or 0))] += 1
            figures["breaks"] = buckets
            figures["breaks_total"] = len(open_breaks)
        if who.may("cash:read"):
            figures["ladder"] = reporting.BUILDERS["cash-ladder"](
                connection, start=day, end=day + dt.timedelta(days=LADDER_DAYS))
    ladder = figures.get("ladder")
    chart = _ladder_chart(ladder, day) if ladder is not None else None
    return render(request, "dashboard.html", who, as_of=day, booked=booked,
                  booked_total=booked_total, settling=settling, settling_total=settling_total,
                  figures=figures, chart=chart)


def _ladder_chart(rows: list[dict[str, str]], start: dt.date) -> dict[str, Any]:
    """The cash ladder for Chart.js: one series of net amounts per currency over the days.
    The amounts stay decimal strings; the chart reads them only to draw."""
    days = [(start + dt.timedelta(days=n)).isoformat() for n in range(LADDER_DAYS + 1)]
    currencies = sorted({row["currency"] for row in rows})
    series = []
    for currency in currencies:
        by_day = {row["settlement_date"]: row["net"] for row in rows
                  if row["currency"] == currency}
        zero = at_scale(Decimal(0), currency_scale(currency))
        series.append({"label": currency, "data": [by_day.get(day, zero) for day in days]})
    return {"labels": days, "series": series}


# --- the blotter ---------------------------------------------------------------------------

@router.get("/trades", name="page.trades")
def trades(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
           account: AccountId = "", isin: Annotated[str, Query(max_length=12)] = "",
           side: Literal["", "BUY", "SELL"] = "",
           trade_date_from: AsOf = None, trade_date_to: AsOf = None,
           offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0) -> Response:
    """AG Grid reads /api/trades page by page; the first page is also rendered as a plain table
    (shown when the grid's script is not there)."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    filters = {"account": account, "isin": isin, "side": side,
               "trade_date_from": trade_date_from, "trade_date_to": trade_date_to}
    with read_connection(book.engine) as connection:
        rows, total = trade_desk.list_trades(connection, accounts=scope, filters=filters,
                                             sort="trade_date", limit=BLOTTER_PAGE,
                                             offset=offset)
    api_query = {key: (value.isoformat() if isinstance(value, dt.date) else value)
                 for key, value in filters.items() if value}
    return render(request, "trades.html", who, rows=rows, total=total, offset=offset,
                  page_size=BLOTTER_PAGE, filters=api_query)


# --- accounts ------------------------------------------------------------------------------

@router.get("/accounts", name="page.accounts")
def accounts(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
             ) -> Response:
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        known = repo.refdata(connection).accounts
    shown = [known[a] for a in sorted(known) if scope is None or a in scope]
    return render(request, "accounts.html", who, accounts=shown)


DOCUMENTS = (("positions", "Positions"), ("cash", "Cash"), ("realized", "Realised gains"),
             ("dividends", "Dividends"))


@router.get("/accounts/{account}", name="page.account")
def account(account: Annotated[str, Path(max_length=64)], request: Request,
            principal: Annotated[Principal | None, Depends(authorize)],
            as_of: AsOf = None) -> Response:
    """Positions, cash, lots, activity and documents of one account of the caller's desk."""
    who = required(principal)
    book = book_of(request)
    if not who.sees(book, account):
        raise ApiProblem(404, "unknown_account", f"no account {account}")
    with read_connection(book.engine) as connection:
        refdata = repo.refdata(connection)
        found = refdata.accounts.get(account)
        if found is None:
            raise ApiProblem(404, "unknown_account", f"no account {account}")
        day = _as_of(connection, request, as_of)
        balances = repo.balances_as_of(connection, day, "trade", ("client", "house"))
        books = lot_books.lot_books(connection, day)
        positions = [row for row in builders.positions(balances, refdata, books)
                     if row["account"] == account]
        cash = ([row for row in builders.cash(balances) if row["account"] == account]
                if who.may("cash:read") else None)
        lots = []
        lot_book = books.get(account)
        if lot_book is not None:
            for isin, open_lots in sorted(lot_book.lots.items()):
                instrument = refdata.instruments[isin]
                scale = currency_scale(instrument.currency)
                for lot in open_lots:
                    lots.append({"isin": isin, "acquired": lot.acquired.isoformat(),
                                 "quantity": plain(round_down(Fraction(lot.quantity),
                                                              instrument.quantity_scale)),
                                 "cost": at_scale(lot.cost, scale),
                                 "currency": instrument.currency})
        activity = None
        if who.may("trades:read"):
            activity, _ = trade_desk.list_trades(connection, accounts=None,
                                                 filters={"account": account},
                                                 sort="trade_date", limit=BLOTTER_PAGE)
    documents = [(label, report_link(name, fmt, {
        "account": account, **report_parameters(name, day, day.replace(month=1, day=1))}),
        fmt, name) for name, label in DOCUMENTS for fmt in ("csv", "json")]
    return render(request, "account.html", who, account=found, as_of=day, positions=positions,
                  cash=cash, lots=lots, activity=activity, documents=documents,
                  names={isin: i.name for isin, i in refdata.instruments.items()})


# --- inventory (the front office) ----------------------------------------------------------

@router.get("/inventory", name="page.inventory")
def inventory(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
              as_of: AsOf = None) -> Response:
    """Per security: the house's and the clients' positions (of the caller's desk), the last
    price and the market value."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        refdata = repo.refdata(connection)
        day = _as_of(connection, request, as_of)
        balances = repo.balances_as_of(connection, day, "trade", ("client", "house"))
        rows = builders.positions(balances, refdata, None)
        prices = _last_prices(connection, day)
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        if scope is not None and row["account"] not in scope:
            continue
        kind = refdata.accounts[row["account"]].kind
        side = "house" if kind == AccountKind.HOUSE else "client"
        held = totals.setdefault(row["isin"], {"house": Decimal(0), "client": Decimal(0)})
        held[side] += Decimal(row["quantity"])
    securities = []
    for isin, held in sorted(totals.items()):
        instrument = refdata.instruments[isin]
        price = prices.get(isin)
        total = held["house"] + held["client"]
        value = (at_scale(total * Decimal(price[1]), currency_scale(instrument.currency))
                 if price else "")
        securities.append({"isin": isin, "name": instrument.name, "symbol": instrument.symbol,
                           "house": held["house"], "client": held["client"], "total": total,
                           "price": price[1] if price else "",
                           "price_date": price[0] if price else "",
                           "currency": instrument.currency, "market_value": value})
    return render(request, "inventory.html", who, as_of=day, securities=securities)


def _last_prices(connection: Connection, day: dt.date) -> dict[str, tuple[str, str]]:
    """Each security's last close on or before ``day``: (date, price)."""
    m = repo.mark(connection)
    found = connection.exec_driver_sql(
        f"SELECT p.isin, p.business_date, p.close FROM prices p JOIN (SELECT isin, "
        f"MAX(business_date) AS last FROM prices WHERE business_date <= {m} GROUP BY isin) l "
        f"ON p.isin = l.isin AND p.business_date = l.last", (day.isoformat(),))
    return {str(isin): (str(date), str(close)) for isin, date, close in found}
