"""/api/audit: the audit trail of actions (newest first), its export and its verification."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from zaplecze.interfaces.web.api.common import RESPONSES, Listing, PagingDep
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import audit_trail
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api/audit", tags=["audit"], responses=RESPONSES)

Who = Annotated[Principal | None, Depends(authorize)]
EXPORT_CHUNK = 1_000


class AuditRecord(BaseModel):
    seq: int
    at: str
    actor: str
    address: str
    action: str
    object_type: str
    object_id: str
    before: Any
    after: Any
    hash: str


class TrailCheckOut(BaseModel):
    records: int
    intact: bool
    problems: list[str]


@router.get("", name="api.audit.list", response_model=Listing[AuditRecord])
def list_records(request: Request, page: PagingDep, principal: Who,
                 actor: Annotated[str | None, Query(max_length=64)] = None,
                 action: Annotated[str | None, Query(max_length=64)] = None,
                 object_type: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    """Who did what, when, from where, with the object before and after; newest first
    (``sort=seq`` with ``order`` to choose)."""
    required(principal)
    if page.sort and page.sort != "seq":
        raise ApiProblem(400, "invalid_sort", "sort by seq",
                         [{"field": "sort", "message": f"unknown column {page.sort!r}"}])
    with read_connection(book_of(request).engine) as connection:
        rows, total = audit_trail.page(
            connection, limit=page.limit, offset=page.offset, actor=actor, action=action,
            object_type=object_type, descending=page.order == "desc" or not page.sort)
    return Listing[AuditRecord](items=[AuditRecord(**row) for row in rows], total=total,
                                limit=page.limit, offset=page.offset)


def _chunks(request: Request) -> Iterator[list[dict[str, Any]]]:
    """The whole trail, oldest first, a chunk per read (the trail only grows at its end)."""
    engine = book_of(request).engine
    with read_connection(engine) as connection:
        _, total = audit_trail.page(connection, limit=1, offset=0)
    for offset in range(0, total, EXPORT_CHUNK):
        with read_connection(engine) as connection:
            rows, _ = audit_trail.page(connection, limit=min(EXPORT_CHUNK, total - offset),
                                       offset=offset, descending=False)
        yield rows


def _as_json(request: Request) -> Iterator[str]:
    yield "["
    first = True
    for rows in _chunks(request):
        for row in rows:
            yield ("" if first else ",") + json.dumps(row, ensure_ascii=False, sort_keys=True)
            first = False
    yield "]\n"


def _as_csv(request: Request) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(audit_trail.COLUMNS)
    for rows in _chunks(request):
        for row in rows:
            writer.writerow([json.dumps(row[name], ensure_ascii=False, sort_keys=True)
                             if name in ("before", "after") else row[name]
                             for name in audit_trail.COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@router.get("/export", name="api.audit.export", response_model=list[AuditRecord],
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "The whole trail, oldest first, as a download"}})
def export(request: Request, principal: Who,
           format: Literal["json", "csv"] = "json") -> StreamingResponse:
    """The whole trail, oldest first, streamed as a JSON array or CSV (before and after as
    JSON text)."""
    required(principal)
    media = "application/json" if format == "json" else "text/csv"
    body = _as_json(request) if format == "json" else _as_csv(request)
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="audit-trail.{format}"'})


@router.get("/verify", name="api.audit.verify", response_model=TrailCheckOut)
def verify(request: Request, principal: Who) -> TrailCheckOut:
    """Recompute the trail's hash chain: a changed, removed, inserted or reordered record
    shows as a problem."""
    required(principal)
    check = audit_trail.verify(book_of(request).engine)
    return TrailCheckOut(records=check.records, intact=not check.problems,
                         problems=check.problems)
