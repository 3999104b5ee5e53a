"""/api/reports: the CLI's reports, with the same options, as JSON (paged and sortable) or as a
CSV download. Rows keyed by an account are kept to the caller's desk."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from zaplecze.formats.render import render
from zaplecze.interfaces.web.api.common import RESPONSES, IsoDate, Listing, PagingDep, page_of
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import holdings, reporting
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api", tags=["reports"], responses=RESPONSES)

# Each report's options, as the CLI names them (``--as-of`` is ``as_of`` here).
OPTIONS: dict[str, tuple[str, ...]] = {
    "positions": ("as_of", "basis"), "cash": ("as_of", "basis"), "realized": ("from", "to"),
    "dividends": ("from", "to"), "trial-balance": ("as_of",), "rejected": (),
    "stock-record": ("as_of",), "valuation": ("as_of",), "obligations": ("settlement_date",),
    "cash-ladder": ("from", "to"), "instructions": (), "fails": ("as_of",),
    "penalties": ("from", "to"), "breaks": ("as_of",), "corporate-actions": (),
}
assert set(OPTIONS) == set(reporting.REPORTS)


class ReportInfo(BaseModel):
    name: str
    options: list[str]
    columns: list[str]


class ReportOut(BaseModel):
    name: str
    columns: list[str]
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "The report (``format=csv``: every row, as a download)"}}


@router.get("/reports", name="api.reports.list", response_model=Listing[ReportInfo])
def list_reports(page: PagingDep,
                 principal: Annotated[Principal | None, Depends(authorize)]) -> Any:
    """The reports there are, the options each needs and the columns it has."""
    required(principal)
    rows = [{"name": name, "options": list(OPTIONS[name]),
             "columns": list(reporting.COLUMNS[name])} for name in reporting.REPORTS]
    found = page_of(rows, page, "name", ("name",))
    return Listing[ReportInfo](items=[ReportInfo(**row) for row in found["items"]],
                               total=found["total"], limit=page.limit, offset=page.offset)


def _missing(field: str, name: str) -> ApiProblem:
    return ApiProblem(400, "missing_option", f"the {name} report needs {field}",
                      [{"field": field, "message": f"required for the {name} report"}])


def _options(name: str, as_of: dt.date | None, basis: str, start: dt.date | None,
             end: dt.date | None, settlement_date: dt.date | None) -> dict[str, Any]:
    given = {"as_of": as_of, "from": start, "to": end,
             "settlement_date": settlement_date or (as_of if name == "obligations" else None)}
    for option in OPTIONS[name]:
        if option != "basis" and given[option] is None:
            raise _missing(option, name)
    if start and end and start > end:
        raise ApiProblem(400, "invalid_period", "from is after to",
                         [{"field": "from", "message": "after to"}])
    names = {"as_of": "as_of", "basis": "basis", "from": "start", "to": "end",
             "settlement_date": "settlement_date"}
    values = {**given, "basis": basis}
    return {names[option]: values[option] for option in OPTIONS[name]}


def _rows(request: Request, who: Principal, name: str, options: dict[str, Any],
          account: str | None) -> list[dict[str, Any]]:
    book = book_of(request)
    scope = who.accounts(book)
    if account and scope is not None and account not in scope:
        raise ApiProblem(404, "unknown_account", f"no account {account}")
    if name in ("positions", "cash"):
        wanted = frozenset({account}) if account else scope
        with read_connection(book.engine) as connection:
            builder = holdings.positions if name == "positions" else holdings.cash
            return builder(connection, options["as_of"], options["basis"], wanted)
    if name == "rejected" and scope is not None:
        return []  # a rejected row does not say whose it was: a desk sees none
    rows = reporting.build(book.engine, name, **options)
    if "account" in reporting.COLUMNS[name]:
        if scope is not None:
            rows = [row for row in rows if row.get("account") in scope]
        if account:
            rows = [row for row in rows if row.get("account") == account]
    return rows


@router.get("/reports/{name}", name="api.reports.get", response_model=ReportOut,
            responses=CSV_RESPONSE)
def get_report(name: Annotated[str, Path(max_length=32)], request: Request, page: PagingDep,
               principal: Annotated[Principal | None, Depends(authorize)],
               as_of: Annotated[IsoDate | None, Query()] = None,
               basis: Literal["trade", "settlement"] = "trade",
               date_from: Annotated[IsoDate | None, Query(alias="from")] = None,
               date_to: Annotated[IsoDate | None, Query(alias="to")] = None,
               settlement_date: Annotated[IsoDate | None, Query()] = None,
               account: Annotated[str | None, Query(max_length=64)] = None,
               format: Literal["json", "csv"] = "json") -> Any:
    """A report with the CLI's options (``as_of``, ``basis``, ``from``, ``to``,
    ``settlement_date``; see /api/reports for which one needs which). ``format=csv`` gives
    every row as a download; JSON is paged, in the report's own order unless sorted."""
    who = required(principal)
    if name not in OPTIONS:
        raise ApiProblem(404, "unknown_report", f"no report {name!r}; one of "
                         f"{', '.join(reporting.REPORTS)}")
    options = _options(name, as_of, basis, date_from, date_to, settlement_date)
    columns = [c for c in reporting.COLUMNS[name]
               if not (c == "cost_basis" and basis == "settlement")]
    rows = _rows(request, who, name, options, account)
    if page.sort:
        rows = page_of(rows, page.model_copy(update={"offset": 0, "limit": len(rows) or 1}),
                       columns[0], columns)["items"]
    elif page.order == "desc":
        rows = list(reversed(rows))
    if format == "csv":
        day = options.get("as_of") or options.get("settlement_date") or options.get("end")
        filename = f"{name}-{day.isoformat()}.csv" if day else f"{name}.csv"
        return Response(render(rows, "csv", columns=columns) + "\n", media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return ReportOut(name=name, columns=columns, items=rows[page.offset:page.offset + page.limit],
                     total=len(rows), limit=page.limit, offset=page.offset)
