"""/api/breaks: reconciliation breaks (firm-level: roles alone decide), one break with its
comments and events, and the people's actions on it: assign, comment, investigate, resolve
(with a reason). Every action is audited; a resolved break stays resolved."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.common import (
    RESPONSES,
    IsoDate,
    Listing,
    Paging,
    page_of,
    paging_by,
    today,
)
from zaplecze.interfaces.web.auth import (
    Principal,
    authorize,
    book_of,
    required,
)
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import identity, reconciling
from zaplecze.services.reporting import COLUMNS
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api/breaks", tags=["breaks"], responses=RESPONSES)

BreakId = Annotated[str, Field(min_length=1, max_length=24, pattern=r"^[A-Za-z0-9-]+$")]
Text = Annotated[str, Field(max_length=4000, pattern=r"^[^\x00]*$")]
Owner = Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$",
                             description="'me', a user name, or '' for nobody")]


BreakStatus = Literal["OPEN", "INVESTIGATING", "RESOLVED"]
BreakKind = Literal["MISSING_AT_US", "MISSING_AT_THEM", "QUANTITY", "AMOUNT", "DATE"]


class BreakOut(BaseModel):
    """A row of ``report breaks``; figures are exact decimals as strings."""

    break_id: str
    kind: str
    subject: str
    ours: str
    theirs: str
    difference: str
    asset: str
    first_seen: str
    last_seen: str
    age_days: int
    owner: str
    status: str
    resolution_reason: str
    comments: int


class CommentOut(BaseModel):
    author: str
    at: str
    text: str


class EventOut(BaseModel):
    at: str
    who: str
    what: str
    before: str
    after: str


class BreakDetail(BreakOut):
    detail: str
    scope: str
    comment_list: list[CommentOut]
    events: list[EventOut]


class AssignIn(BaseModel):
    model_config = {"extra": "forbid"}

    owner: Owner


class CommentIn(BaseModel):
    model_config = {"extra": "forbid"}

    text: Annotated[Text, Field(min_length=1)]


class ResolveIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: Text


def _row(row: dict[str, str]) -> BreakOut:
    return BreakOut.model_validate({**row, "age_days": int(row["age_days"]),
                                    "comments": int(row["comments"])})


def owner_of(request: Request, who: Principal, owner: str) -> str:
    """'me' is the caller; any other name must be a user ('' gives it back to nobody)."""
    if owner == "me":
        return who.username
    if owner:
        with read_connection(book_of(request).engine) as connection:
            known = identity.get_user(connection, owner) is not None
        if not known:
            raise ApiProblem(400, "unknown_owner", f"no user {owner!r}",
                             [{"field": "owner", "message": f"no user {owner!r}"}])
    return owner


EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(2199, 12, 31)


BreaksPaging = Annotated[Paging, Depends(paging_by(COLUMNS["breaks"]))]


def as_of_or_today(request: Request, as_of: dt.date | None) -> dt.date:
    """The day asked for (today by default), within reason: ages are counted day by day."""
    if as_of is not None and not EARLIEST <= as_of <= LATEST:
        raise ApiProblem(400, "invalid_date", f"as_of must be between {EARLIEST} and {LATEST}",
                         [{"field": "as_of", "message": "out of range"}])
    return as_of or today(request)


@router.get("", name="api.breaks.list", response_model=Listing[BreakOut])
def list_breaks(request: Request, page: BreaksPaging,
                principal: Annotated[Principal | None, Depends(authorize)],
                status: Annotated[BreakStatus | None, Query()] = None,
                kind: Annotated[BreakKind | None, Query()] = None,
                owner: Annotated[str | None, Query(max_length=64)] = None,
                as_of: Annotated[IsoDate | None, Query()] = None) -> Listing[BreakOut]:
    """Breaks first seen by ``as_of`` (today by default), with their ages in business days:
    open ones first, oldest first, unless sorted otherwise. ``owner=me``: yours."""
    who = required(principal)
    wanted_owner = who.username if owner == "me" else owner
    day = as_of_or_today(request, as_of)
    with read_connection(book_of(request).engine) as connection:
        rows = reconciling.break_rows(connection, day)
    rows = [r for r in rows if (status is None or r["status"] == status)
            and (kind is None or r["kind"] == kind)
            and (wanted_owner is None or r["owner"] == wanted_owner)]
    if not page.sort:
        return Listing[BreakOut](items=[_row(r) for r in rows[page.offset:page.offset
                                                                 + page.limit]],
                                 total=len(rows), limit=page.limit, offset=page.offset)
    cut = page_of(rows, page, "first_seen", COLUMNS["breaks"])
    return Listing[BreakOut](items=[_row(r) for r in cut["items"]], total=cut["total"],
                             limit=page.limit, offset=page.offset)


def _detail(request: Request, break_id: str) -> BreakDetail:
    with read_connection(book_of(request).engine) as connection:
        found = reconciling.load_breaks(connection, [break_id]).get(break_id)
        if found is None:
            raise ApiProblem(404, "unknown_break", f"no break {break_id}")
        day = max(today(request), found.first_seen)
        (row,) = [r for r in reconciling.break_rows(connection, day)
                  if r["break_id"] == break_id]
    return BreakDetail(
        **_row(row).model_dump(), detail=found.detail, scope=found.scope,
        comment_list=[CommentOut(author=c.author, at=c.at.isoformat(), text=c.text)
                      for c in found.comments],
        events=[EventOut(at=e.at.isoformat(), who=e.who, what=e.what, before=e.before,
                         after=e.after) for e in found.history])


@router.get("/{break_id}", name="api.breaks.get", response_model=BreakDetail)
def get_break(break_id: BreakId, request: Request,
              principal: Annotated[Principal | None, Depends(authorize)]) -> BreakDetail:
    """The break, its comments and its events (append-only), its age as of today."""
    required(principal)
    return _detail(request, break_id)


def _act(request: Request, who: Principal, break_id: str, action: str,
         text: str = "") -> BreakDetail:
    reconciling.act_on_break(book_of(request).engine, break_id, action, who.username, text,
                             actor=who.actor)
    return _detail(request, break_id)


@router.post("/{break_id}/assign", name="api.breaks.assign", response_model=BreakDetail)
def assign(break_id: BreakId, body: AssignIn, request: Request,
           principal: Annotated[Principal | None, Depends(authorize)]) -> BreakDetail:
    """Give the break to someone: ``me``, a user name, or '' for nobody."""
    who = required(principal)
    return _act(request, who, break_id, "assign", owner_of(request, who, body.owner))


@router.post("/{break_id}/comment", name="api.breaks.comment", response_model=BreakDetail)
def comment(break_id: BreakId, body: CommentIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> BreakDetail:
    return _act(request, required(principal), break_id, "comment", body.text)


@router.post("/{break_id}/investigate", name="api.breaks.investigate",
             response_model=BreakDetail)
def investigate(break_id: BreakId, request: Request,
                principal: Annotated[Principal | None, Depends(authorize)]) -> BreakDetail:
    """OPEN → INVESTIGATING."""
    return _act(request, required(principal), break_id, "investigate")


@router.post("/{break_id}/resolve", name="api.breaks.resolve", response_model=BreakDetail)
def resolve(break_id: BreakId, body: ResolveIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> BreakDetail:
    """Resolved, with the reason why (required: 400 ``resolution_reason_required``)."""
    return _act(request, required(principal), break_id, "resolve", body.reason)
