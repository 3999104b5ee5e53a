"""What every list shares: paging (limit, offset), sorting (sort, order), the list's shape,
and the checks that keep a desk to its own accounts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, BeforeValidator

from zaplecze.interfaces.web.auth import Principal, book_of
from zaplecze.interfaces.web.problems import COMMON_RESPONSES, ApiProblem

T = TypeVar("T")

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: object) -> object:
    """A day as YYYY-MM-DD only: pydantic alone would also take seconds since 1970."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_day)]

def today(request: Request) -> dt.date:
    """The business day by the app's clock (tests move it)."""
    return request.app.state.settings.clock().date()  # type: ignore[no-any-return]


def or_today(request: Request, day: dt.date | None) -> dt.date:
    return day or today(request)


LIMIT_DEFAULT = 50
LIMIT_MAX = 1_000


class Paging(BaseModel):
    limit: int
    offset: int
    sort: str
    order: Literal["asc", "desc"]


def paging(limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
           offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
           sort: Annotated[str, Query(max_length=64)] = "",
           order: Literal["asc", "desc"] = "asc") -> Paging:
    return Paging(limit=limit, offset=offset, sort=sort, order=order)


PagingDep = Annotated[Paging, Depends(paging)]


def paging_by(columns: tuple[str, ...]) -> Callable[..., Paging]:
    """Paging like ``PagingDep``'s, whose ``sort`` is one of ``columns``: an enum in the
    OpenAPI schema, so a client sees the choices and an unknown column is a bad request."""
    sort_type = Literal[columns]  # type: ignore[valid-type]

    def paging(limit: Annotated[int, Query(ge=1, le=LIMIT_MAX)] = LIMIT_DEFAULT,
               offset: Annotated[int, Query(ge=0, le=100_000_000)] = 0,
               sort: str | None = None,
               order: Literal["asc", "desc"] = "asc") -> Paging:
        return Paging(limit=limit, offset=offset, sort=sort or "", order=order)

    # The enum of this list's columns (a real object: these annotations are strings).
    paging.__annotations__["sort"] = Annotated[sort_type | None, Query()]
    return paging


class Listing(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(rows: Sequence[dict[str, Any]], page: Paging, default_sort: str,
            columns: Sequence[str]) -> dict[str, Any]:
    """Sort and cut an in-memory list (reports are built whole; most are small)."""
    sort = page.sort or default_sort
    if sort not in columns:
        raise ApiProblem(400, "invalid_sort", f"sort by one of: {', '.join(columns)}",
                         [{"field": "sort", "message": f"unknown column {sort!r}"}])
    ordered = sorted(rows, key=_sort_key(sort), reverse=page.order == "desc")
    return {"items": ordered[page.offset:page.offset + page.limit], "total": len(rows),
            "limit": page.limit, "offset": page.offset}


def _sort_key(column: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    from decimal import Decimal, InvalidOperation

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(column)
        if value is None or value == "":
            return (0, "")
        try:
            return (1, Decimal(str(value)))
        except (InvalidOperation, ValueError):
            return (2, str(value))
    return key


def filtered(rows: list[dict[str, Any]], **wanted: str | None) -> list[dict[str, Any]]:
    conditions = {k: v for k, v in wanted.items() if v}
    return [row for row in rows if all(str(row.get(k, "")) == v for k, v in conditions.items())]


def own_account(request: Request, principal: Principal, account: str) -> None:
    """404 for an account outside the caller's desk: not even its existence shows."""
    if not principal.sees(book_of(request), account):
        raise ApiProblem(404, "unknown_account", f"no account {account}")


def desk_rows(request: Request, principal: Principal, rows: list[dict[str, Any]],
              column: str = "account") -> list[dict[str, Any]]:
    scope = principal.accounts(book_of(request))
    if scope is None:
        return rows
    return [row for row in rows if row.get(column) in scope]


RESPONSES = COMMON_RESPONSES
