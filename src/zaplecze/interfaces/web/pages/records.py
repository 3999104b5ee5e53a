"""The records: the report list with downloads, the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from zaplecze.interfaces.web.api.common import today
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.pages.base import (
    default_as_of,
    render,
    report_link,
    report_parameters,
)
from zaplecze.services import audit_trail, reporting
from zaplecze.store.db import read_connection

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 50

REPORT_LABELS = {
    "positions": "Positions per account and security",
    "cash": "Cash per account and currency",
    "realized": "Realised gains",
    "dividends": "Dividends",
    "trial-balance": "Trial balance",
    "rejected": "Rejected input rows",
    "stock-record": "Stock record",
    "valuation": "Valuation",
    "obligations": "Settlement obligations",
    "cash-ladder": "Cash ladder",
    "instructions": "Settlement instructions",
    "fails": "Failing settlements",
    "penalties": "CSDR penalties",
    "breaks": "Reconciliation breaks",
    "corporate-actions": "Corporate actions",
}
@router.get("/reports", name="page.reports")
def reports(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
            as_of: Annotated[dt.date | None, Query()] = None) -> Response:
    who = required(principal)
    book = book_of(request)
    with read_connection(book.engine) as connection:
        day = as_of or default_as_of(connection, today(request))
    listed = []
    for name in reporting.REPORTS:
        params = report_parameters(name, day, day.replace(day=1))
        links = [(fmt, report_link(name, fmt, params)) for fmt in ("csv", "json")]
        listed.append({"name": name, "label": REPORT_LABELS.get(name, name), "params": params,
                       "links": links, "columns": reporting.COLUMNS.get(name, ())})
    return render(request, "reports.html", who, as_of=day, reports=listed)


@router.get("/audit", name="page.audit")
def audit(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
          actor: Annotated[str, Query(max_length=64)] = "",
          action: Annotated[str, Query(max_length=64)] = "",
          object_type: Annotated[str, Query(max_length=64)] = "",
          offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0) -> Response:
    """The audit trail, newest first, a page at a time."""
    who = required(principal)
    book = book_of(request)
    with read_connection(book.engine) as connection:
        rows, total = audit_trail.page(connection, limit=AUDIT_PAGE, offset=offset,
                                       actor=actor or None, action=action or None,
                                       object_type=object_type or None)
    filters = {k: v for k, v in (("actor", actor), ("action", action),
                                 ("object_type", object_type)) if v}
    export = "/api/audit/export?format=csv"  # the whole trail, oldest first
    return render(request, "audit.html", who, rows=rows, total=total, offset=offset,
                  page_size=AUDIT_PAGE, filters=filters, export=export,
                  previous=_page_link(filters, max(offset - AUDIT_PAGE, 0)) if offset else "",
                  next_page=_page_link(filters, offset + AUDIT_PAGE)
                  if offset + AUDIT_PAGE < total else "")


def _page_link(filters: dict[str, str], offset: int) -> str:
    return "/audit?" + urlencode({**filters, "offset": str(offset)})
