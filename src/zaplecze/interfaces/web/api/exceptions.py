"""/api/exceptions: the exception queue (services/exception_queue.py) — failed settlements,
reconciliation breaks, rejected input rows and corporate-action events awaiting approval, in
one list with owners, statuses, comments and ages; assign, comment and resolve (with a reason)
each item. Rejected rows naming another desk's account are not shown to a desk."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.breaks import as_of_or_today, owner_of
from zaplecze.interfaces.web.api.common import (
    RESPONSES,
    IsoDate,
    Listing,
    Paging,
    page_of,
    paging_by,
    today,
)
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.services import exception_queue
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api/exceptions", tags=["exceptions"], responses=RESPONSES)

Key = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$",
                           description="fail:<reference>, break:<break_id>, rejected:<id> or "
                           "ca:<event_id>")]
Kind = Literal["fail", "break", "rejected", "ca"]
Status = Literal["open", "investigating", "resolved", "all"]
SORTABLE = ("key", "kind", "title", "since", "age_days", "owner", "status", "comments")
ItemsPaging = Annotated[Paging, Depends(paging_by(SORTABLE))]


class ItemOut(BaseModel):
    key: str
    kind: Kind
    title: str
    detail: str
    since: dt.date
    age_days: int = Field(description="business days since, in the book's calendar")
    owner: str
    status: Literal["open", "investigating", "resolved"]
    comments: int
    resolution_reason: str
    links: dict[str, str] = Field(description="ids to follow: the event, break, reference…")


class NoteOut(BaseModel):
    author: str
    at: str
    text: str


class ItemDetail(ItemOut):
    comment_list: list[NoteOut]


class AssignIn(BaseModel):
    model_config = {"extra": "forbid"}

    owner: Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$",
                                description="'me', a user name, or '' for nobody")]


class CommentIn(BaseModel):
    model_config = {"extra": "forbid"}

    text: Annotated[str, Field(min_length=1, max_length=exception_queue.TEXT_MAX,
                               pattern=r"^[^\x00]*$")]


class ResolveIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: Annotated[str, Field(max_length=exception_queue.TEXT_MAX, pattern=r"^[^\x00]*$")]


def _out(item: exception_queue.Item) -> ItemOut:
    return ItemOut(**item.as_dict())


def _detail(item: exception_queue.Item) -> ItemDetail:
    return ItemDetail(**item.as_dict(), comment_list=[
        NoteOut(author=n.author, at=n.at, text=n.text) for n in item.notes])


@router.get("", name="api.exceptions.list", response_model=Listing[ItemOut])
def list_items(request: Request, page: ItemsPaging,
               principal: Annotated[Principal | None, Depends(authorize)],
               kind: Annotated[Kind | None, Query()] = None,
               status: Annotated[Status | None, Query(
                   description="open, investigating, resolved or all; by default what is "
                   "not resolved")] = None,
               owner: Annotated[str | None, Query(max_length=64,
                                                  description="'me' for yours")] = None,
               as_of: Annotated[IsoDate | None, Query()] = None) -> Listing[ItemOut]:
    """The queue as of ``as_of`` (today by default), oldest first unless sorted otherwise."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    day = as_of_or_today(request, as_of)
    with read_connection(book.engine) as connection:
        found = exception_queue.items(connection, day, kind, status,
                                      who.username if owner == "me" else owner, scope)
    rows = [item.as_dict() for item in found]
    cut = page_of(rows, page, "since", SORTABLE)
    return Listing[ItemOut](items=[ItemOut(**row) for row in cut["items"]],
                            total=cut["total"], limit=page.limit, offset=page.offset)


def _read(request: Request, who: Principal, key: str,
          as_of: dt.date | None = None) -> ItemDetail:
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        found = exception_queue.item(connection, key, as_of or today(request), scope)
    return _detail(found)


@router.get("/{key}", name="api.exceptions.get", response_model=ItemDetail)
def get_item(key: Key, request: Request,
             principal: Annotated[Principal | None, Depends(authorize)],
             as_of: Annotated[IsoDate | None, Query()] = None) -> ItemDetail:
    """One item with its comments."""
    return _read(request, required(principal), key, as_of_or_today(request, as_of))


@router.post("/{key}/assign", name="api.exceptions.assign", response_model=ItemDetail)
def assign(key: Key, body: AssignIn, request: Request,
           principal: Annotated[Principal | None, Depends(authorize)]) -> ItemDetail:
    """Give the item to ``me``, a user name, or '' for nobody."""
    who = required(principal)
    owner = owner_of(request, who, body.owner)
    scope = who.accounts(book_of(request))
    _read(request, who, key)  # 404 for what the caller does not see
    exception_queue.assign(book_of(request).engine, who.actor, key, owner, scope)
    return _read(request, who, key)


@router.post("/{key}/comment", name="api.exceptions.comment", response_model=ItemDetail)
def comment(key: Key, body: CommentIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> ItemDetail:
    who = required(principal)
    scope = who.accounts(book_of(request))
    _read(request, who, key)
    exception_queue.comment(book_of(request).engine, who.actor, key, body.text, scope)
    return _read(request, who, key)


@router.post("/{key}/resolve", name="api.exceptions.resolve", response_model=ItemDetail)
def resolve(key: Key, body: ResolveIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> ItemDetail:
    """Resolved, with the reason why (required: 400 ``resolution_reason_required``); a
    resolved item stays resolved."""
    who = required(principal)
    scope = who.accounts(book_of(request))
    _read(request, who, key)
    exception_queue.resolve(book_of(request).engine, who.actor, key, body.reason, scope)
    return _read(request, who, key)
