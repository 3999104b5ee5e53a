"""/exceptions: one queue of failed settlements, reconciliation breaks, rejected input rows and
corporate actions awaiting approval; assign to me, comment, resolve with a reason (htmx posts
that re-render the row; without htmx, plain forms and a redirect back)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from zaplecze.interfaces.web.api.common import today
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.pages.base import default_as_of, is_htmx, redirect, render
from zaplecze.services import exception_queue
from zaplecze.store.db import read_connection

router = APIRouter(include_in_schema=False)

Key = Annotated[str, Form(min_length=3, max_length=200)]
Text = Annotated[str, Form(max_length=exception_queue.TEXT_MAX)]
AsOfField = Annotated[dt.date | None, Form()]
LABELS = {"fail": "Failed settlement", "break": "Reconciliation break",
          "rejected": "Rejected input row", "ca": "Corporate action to approve"}


@router.get("/exceptions", name="page.exceptions")
def exceptions(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
               as_of: Annotated[dt.date | None, Query()] = None,
               kind: Literal["", "fail", "break", "rejected", "ca"] = "",
               status: Literal["", "open", "investigating", "resolved", "all"] = "",
               mine: Annotated[str, Query(max_length=1)] = "") -> Response:
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        day = as_of or default_as_of(connection, today(request))
        found = exception_queue.items(connection, day, kind=kind or None,
                                      status=status or None,
                                      owner=who.username if mine else None, scope=scope)
    return render(request, "exceptions.html", who, as_of=day, items=found, kind=kind,
                  status_filter=status, mine=mine, labels=LABELS,
                  may_act=who.may("exceptions:write"))


def _after(request: Request, who: Principal, key: str, as_of: dt.date | None) -> Response:
    """The row again, as it is now (htmx), or back to the queue (a plain form)."""
    if not is_htmx(request):
        return redirect("/exceptions" + (f"?as_of={as_of.isoformat()}" if as_of else ""))
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        day = as_of or default_as_of(connection, today(request))
        found = exception_queue.item(connection, key, day, scope=scope)
    return render(request, "_exception_row.html", who, item=found, as_of=day, labels=LABELS,
                  may_act=who.may("exceptions:write"))


@router.post("/exceptions/assign", name="page.exceptions.assign")
def assign(request: Request, key: Key, principal: Annotated[Principal | None, Depends(authorize)],
           as_of: AsOfField = None) -> Response:
    """Assign the item to the user asking."""
    who = required(principal)
    book = book_of(request)
    exception_queue.assign(book.engine, who.actor, key, who.username,
                           scope=who.accounts(book))
    return _after(request, who, key, as_of)


@router.post("/exceptions/comment", name="page.exceptions.comment")
def comment(request: Request, key: Key, text: Text,
            principal: Annotated[Principal | None, Depends(authorize)],
            as_of: AsOfField = None) -> Response:
    who = required(principal)
    book = book_of(request)
    exception_queue.comment(book.engine, who.actor, key, text, scope=who.accounts(book))
    return _after(request, who, key, as_of)


@router.post("/exceptions/resolve", name="page.exceptions.resolve")
def resolve(request: Request, key: Key, reason: Text,
            principal: Annotated[Principal | None, Depends(authorize)],
            as_of: AsOfField = None) -> Response:
    """Resolved, with the reason why (required)."""
    who = required(principal)
    book = book_of(request)
    exception_queue.resolve(book.engine, who.actor, key, reason, scope=who.accounts(book))
    return _after(request, who, key, as_of)
