"""/api/corporate-actions: the events (announced or from corporate_actions.csv), one event with
its entitlements per account (the caller's desk only), and the four-eyes steps: one person
prepares (computes the entitlements and is shown their payload hash), another approves exactly
that payload."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from zaplecze.corporate_actions import lifecycle
from zaplecze.corporate_actions.apply import Entitlement
from zaplecze.corporate_actions.lifecycle import EventRecord
from zaplecze.interfaces.web.api.common import RESPONSES, Listing, Paging, page_of, paging_by
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.services import ca_desk
from zaplecze.services.reporting import COLUMNS
from zaplecze.store.db import read_connection

EventsPaging = Annotated[Paging, Depends(paging_by(COLUMNS["corporate-actions"]))]
router = APIRouter(prefix="/api/corporate-actions", tags=["corporate_actions"],
                   responses=RESPONSES)

EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Status = Literal["WAITING_FOR_REFERENCE_DATA", "ANNOUNCED", "ENTITLEMENTS_COMPUTED",
                 "APPROVED", "APPLIED", "REVERSED", "WITHDRAWN"]


class EventOut(BaseModel):
    """A row of ``report corporate-actions``."""

    event_id: str
    kind: str
    event_type: str
    isin: str
    ex_date: str
    pay_date: str
    status: str
    prepared_by: str
    approved_by: str
    accounts_entitled: str
    source: str


class EntitlementOut(BaseModel):
    account: str
    isin: str
    quantity: str
    new_quantity: str
    gross: str
    withholding: str
    net: str
    currency: str
    pay_date: str


class StepOut(BaseModel):
    at: str
    who: str
    what: str
    before: str
    after: str
    detail: str


class EventDetail(EventOut):
    computed_payload_hash: str = Field(
        description="the hash of the entitlements the preparer was shown ('' until prepared)")
    approved_payload_hash: str
    payload_hash: str = Field(description="the hash of the entitlements as they stand now")
    entitlements: list[EntitlementOut] = Field(
        description="per account, the caller's desk only (the hashes cover every account)")
    history: list[StepOut]


class ApproveIn(BaseModel):
    model_config = {"extra": "forbid"}

    payload_hash: Hash


def _detail(row: dict[str, str], record: EventRecord | None, shown: list[Entitlement],
            scope: frozenset[str] | None) -> EventDetail:
    visible = [e for e in shown if scope is None or e.account in scope]
    history = [StepOut(at=step.at.isoformat(), who=step.who, what=step.what,
                       before=step.before.value if step.before else "", after=step.after.value,
                       detail=step.detail) for step in (record.history if record else ())]
    return EventDetail(
        **row,
        computed_payload_hash=record.computed_payload_hash if record else "",
        approved_payload_hash=record.approved_payload_hash if record else "",
        payload_hash=lifecycle.payload_hash(shown) if record else "",
        entitlements=[EntitlementOut(**e) for e in ca_desk.entitlement_rows(visible)],
        history=history)


def _read(request: Request, who: Principal, event_id: str) -> EventDetail:
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        row, record, shown = ca_desk.event_detail(connection, event_id)
    return _detail(row, record, shown, scope)


@router.get("", name="api.corporate_actions.list", response_model=Listing[EventOut])
def list_events(request: Request, page: EventsPaging,
                principal: Annotated[Principal | None, Depends(authorize)],
                status: Annotated[Status | None, Query()] = None,
                isin: Annotated[str | None, Query(max_length=12)] = None) -> Listing[EventOut]:
    """Every event, announced or from corporate_actions.csv, by ex date unless sorted."""
    required(principal)
    book = book_of(request)
    with read_connection(book.engine) as connection:
        rows = ca_desk.report_rows(connection)
    rows = [r for r in rows if (status is None or r["status"] == status)
            and (isin is None or r["isin"] == isin)]
    return Listing[EventOut](**page_of(rows, page, "ex_date", COLUMNS["corporate-actions"]))


@router.get("/{event_id}", name="api.corporate_actions.get", response_model=EventDetail)
def get_event(event_id: EventId, request: Request,
              principal: Annotated[Principal | None, Depends(authorize)]) -> EventDetail:
    """The event, its steps, and its entitlements per account as they stand."""
    return _read(request, required(principal), event_id)


@router.post("/{event_id}/prepare", name="api.corporate_actions.prepare",
             response_model=EventDetail)
def prepare(event_id: EventId, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> EventDetail:
    """Compute the entitlements as they stand: you are their preparer, and someone else
    approves them by the ``computed_payload_hash`` returned."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    ca_desk.compute(book.engine, event_id, who.username, actor=who.actor)
    with read_connection(book.engine) as connection:
        row, record, shown = ca_desk.event_detail(connection, event_id)
    return _detail(row, record, shown, scope)


@router.post("/{event_id}/approve", name="api.corporate_actions.approve",
             response_model=EventDetail)
def approve(event_id: EventId, body: ApproveIn, request: Request,
            principal: Annotated[Principal | None, Depends(authorize)]) -> EventDetail:
    """Approve exactly the entitlements whose hash you were shown. The preparer cannot
    (403 ``four_eyes_required``); entitlements that changed are refused (409
    ``payload_changed``). End of day then applies the event on its ex date."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    ca_desk.approve(book.engine, event_id, who.username, expected_digest=body.payload_hash,
                    actor=who.actor)
    with read_connection(book.engine) as connection:
        row, record, shown = ca_desk.event_detail(connection, event_id)
    return _detail(row, record, shown, scope)
