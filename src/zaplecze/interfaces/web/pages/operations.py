"""Operations' pages: corporate actions (prepare, approve with four eyes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response

from zaplecze.corporate_actions import lifecycle
from zaplecze.corporate_actions.lifecycle import EventStatus
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.pages.base import redirect, render
from zaplecze.interfaces.web.problems import from_book_error
from zaplecze.kernel.problems import BookError
from zaplecze.services import ca_desk
from zaplecze.store.db import read_connection

router = APIRouter(include_in_schema=False)

EventId = Annotated[str, Path(min_length=1, max_length=64)]
PREPARABLE = (EventStatus.ANNOUNCED, EventStatus.ENTITLEMENTS_COMPUTED)


@router.get("/corporate-actions", name="page.corporate_actions")
def corporate_actions(request: Request,
                      principal: Annotated[Principal | None, Depends(authorize)]) -> Response:
    """Every event, announced or from corporate_actions.csv, with its state."""
    who = required(principal)
    book = book_of(request)
    with read_connection(book.engine) as connection:
        rows = ca_desk.report_rows(connection)
    return render(request, "corporate_actions.html", who, events=rows)


def _detail(request: Request, who: Principal, event_id: str, *, status: int = 200,
            refusal: str = "", refusal_code: str = "", notice: str = "") -> Response:
    book = book_of(request)
    scope = who.accounts(book)  # before the read connection (SQLite: one at a time)
    with read_connection(book.engine) as connection:
        row, record, shown = ca_desk.event_detail(connection, event_id)
    digest = lifecycle.payload_hash(shown) if record is not None else ""
    visible = [row for row in ca_desk.entitlement_rows(shown)
               if scope is None or row["account"] in scope]
    state = record.status if record is not None else None
    return render(
        request, "corporate_action.html", who, status=status, event_id=event_id,
        record=record, row=row, entitlements=visible, hidden=len(shown) - len(
            visible), digest=digest,
        may_prepare=record is not None and who.may("corporate_actions:prepare")
        and state in PREPARABLE,
        may_approve=record is not None and who.may("corporate_actions:approve")
        and state is EventStatus.ENTITLEMENTS_COMPUTED,
        changed=bool(record is not None and record.computed_payload_hash
                     and state is EventStatus.ENTITLEMENTS_COMPUTED
                     and record.computed_payload_hash != digest),
        refusal=refusal, refusal_code=refusal_code, notice=notice)


@router.get("/corporate-actions/{event_id}", name="page.corporate_action")
def corporate_action(event_id: EventId, request: Request,
                     principal: Annotated[Principal | None, Depends(authorize)],
                     done: str = "") -> Response:
    notice = {"prepared": "Entitlements computed; another person must approve them.",
              "approved": "Approved; end of day applies the event on its ex date."}.get(done, "")
    return _detail(request, required(principal), event_id, notice=notice)


def _refused(request: Request, who: Principal, event_id: str, error: BookError) -> Response:
    problem = from_book_error(error)
    message = ("Another person must approve: whoever computed the entitlements cannot approve "
               "them too." if problem.code == "four_eyes_required" else "")
    return _detail(request, who, event_id, status=problem.status,
                   refusal=message or problem.detail, refusal_code=problem.code)


@router.post("/corporate-actions/{event_id}/prepare", name="page.corporate_action.prepare")
def prepare(event_id: EventId, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> Response:
    """Compute the entitlements as they stand, shown to (and bound to) this user."""
    who = required(principal)
    try:
        ca_desk.compute(book_of(request).engine, event_id, who.username, actor=who.actor)
    except BookError as error:
        return _refused(request, who, event_id, error)
    return redirect(f"/corporate-actions/{event_id}?done=prepared")


@router.post("/corporate-actions/{event_id}/approve", name="page.corporate_action.approve")
def approve(event_id: EventId, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)],
            payload: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Approve exactly the entitlements shown (their payload hash comes with the form);
    refused (403) to whoever computed them."""
    who = required(principal)
    try:
        ca_desk.approve(book_of(request).engine, event_id, who.username,
                        expected_digest=payload, actor=who.actor)
    except BookError as error:
        return _refused(request, who, event_id, error)
    return redirect(f"/corporate-actions/{event_id}?done=approved")
