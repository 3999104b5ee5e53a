"""/api/settlement: obligations, instructions (and our own cancel, hold and release of one),
fails and CSDR penalties. Firm-level data: the caller's roles decide, not the desk."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from zaplecze.interfaces.web.api.common import (
    RESPONSES,
    IsoDate,
    Listing,
    Paging,
    PagingDep,
    filtered,
    or_today,
    page_of,
)
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import settlement_desk, settlement_reports
from zaplecze.store import repo
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api/settlement", tags=["settlement"], responses=RESPONSES)

Who = Annotated[Principal | None, Depends(authorize)]
Reference = Annotated[str, Path(min_length=1, max_length=16)]
Text = Annotated[str | None, Query(max_length=64)]
Day = Annotated[IsoDate | None, Query(description="default today")]


class ObligationOut(BaseModel):
    settlement_date: str
    counterparty: str
    place_of_settlement: str
    isin: str
    currency: str
    direction: str
    quantity: str
    cash: str
    payment: str
    netting: str
    trades: str


class InstructionOut(BaseModel):
    reference: str
    function: str
    linked_reference: str
    counterparty: str
    direction: str
    payment: str
    isin: str
    quantity: str
    amount: str
    currency: str
    trade_date: str
    settlement_date: str
    status: str
    settled_quantity: str
    reasons: str
    held: str
    trades: str


class MessageOut(BaseModel):
    message_reference: str
    kind: str
    status: str
    reasons: str
    quantity: str
    amount: str
    settlement_date: str
    partial: bool
    decision: str
    received_on: str


class InstructionDetail(InstructionOut):
    messages: list[MessageOut]


class FailOut(BaseModel):
    reference: str
    counterparty: str
    isin: str
    direction: str
    intended_settlement_date: str
    instructed: str
    settled: str
    failing: str
    currency: str
    age_days: str
    reason: str
    failing_party: str
    status: str
    reasons: str
    buy_in_due: str
    penalties: str


class PenaltyOut(BaseModel):
    month: str
    counterparty: str
    currency: str
    charged_to_us: str
    owed_to_us: str
    net: str
    days: str


class ActionOut(BaseModel):
    reference: str
    action: str
    outcome: str
    instruction: InstructionOut


def _listing(model: type[BaseModel], rows: list[dict[str, Any]], page: Paging,
             default_sort: str) -> Any:
    found = page_of(rows, page, default_sort, tuple(model.model_fields))
    return Listing[model](items=[model(**row) for row in found["items"]],  # type: ignore[valid-type]
                          total=found["total"], limit=page.limit, offset=page.offset)


@router.get("/obligations", name="api.settlement.obligations",
            response_model=Listing[ObligationOut])
def obligations(request: Request, page: PagingDep, principal: Who,
                settlement_date: Day = None, counterparty: Text = None,
                isin: Annotated[str | None, Query(max_length=12)] = None) -> Any:
    """What settles on ``settlement_date`` (default today): per counterparty, security and
    direction, gross or netted."""
    required(principal)
    day = or_today(request, settlement_date)
    with read_connection(book_of(request).engine) as connection:
        rows = settlement_reports.obligations(connection, day, day)
    return _listing(ObligationOut, filtered(rows, counterparty=counterparty, isin=isin), page,
                    "counterparty")


def _instructions(request: Request) -> list[dict[str, Any]]:
    with read_connection(book_of(request).engine) as connection:
        return settlement_reports.instructions(connection)


@router.get("/instructions", name="api.settlement.instructions",
            response_model=Listing[InstructionOut])
def instructions(request: Request, page: PagingDep, principal: Who,
                 status: Annotated[str | None, Query(max_length=24)] = None,
                 counterparty: Text = None,
                 isin: Annotated[str | None, Query(max_length=12)] = None,
                 settlement_date: Annotated[IsoDate | None, Query()] = None) -> Any:
    """Every instruction sent (cancellation messages too), with its state."""
    required(principal)
    rows = filtered(_instructions(request), status=status, counterparty=counterparty,
                    isin=isin,
                    settlement_date=settlement_date.isoformat() if settlement_date else None)
    return _listing(InstructionOut, rows, page, "reference")


def _instruction(request: Request, reference: str) -> dict[str, Any]:
    found = [row for row in _instructions(request) if row["reference"] == reference]
    if not found:
        raise ApiProblem(404, "unknown_instruction", f"no instruction {reference}")
    return found[0]


@router.get("/instructions/{reference}", name="api.settlement.instruction",
            response_model=InstructionDetail)
def instruction(reference: Reference, request: Request, principal: Who) -> InstructionDetail:
    """One instruction, its state and the messages received about it (oldest first)."""
    required(principal)
    row = _instruction(request, reference)
    with read_connection(book_of(request).engine) as connection:
        m = repo.mark(connection)
        messages = [dict(found) for found in connection.exec_driver_sql(
            f"SELECT message_reference, kind, status, reasons, quantity, amount, "
            f"settlement_date, partial, decision, received_on FROM settlement_messages WHERE "
            f"reference = {m} ORDER BY id", (reference,)).mappings()]
    return InstructionDetail(**row, messages=[MessageOut(**message) for message in messages])


@router.get("/fails", name="api.settlement.fails", response_model=Listing[FailOut])
def fails(request: Request, page: PagingDep, principal: Who, as_of: Day = None,
          counterparty: Text = None, isin: Annotated[str | None, Query(max_length=12)] = None,
          buy_in_due: Literal["yes", "no"] | None = None) -> Any:
    """Instructions past their intended settlement date and not settled, as of ``as_of``
    (default today): age, reason, who fails, buy-in, penalties accrued."""
    required(principal)
    with read_connection(book_of(request).engine) as connection:
        rows = settlement_reports.fails(connection, or_today(request, as_of))
    return _listing(FailOut, filtered(rows, counterparty=counterparty, isin=isin,
                                      buy_in_due=buy_in_due), page, "reference")


@router.get("/penalties", name="api.settlement.penalties", response_model=Listing[PenaltyOut])
def penalties(request: Request, page: PagingDep, principal: Who,
              date_from: Annotated[IsoDate | None, Query(alias="from")] = None,
              date_to: Annotated[IsoDate | None, Query(alias="to")] = None,
              counterparty: Text = None) -> Any:
    """CSDR cash penalties per month, counterparty and currency, from ``from`` (default the
    first day of ``to``'s month) to ``to`` (default today)."""
    required(principal)
    end = or_today(request, date_to)
    start = date_from or end.replace(day=1)
    if start > end:
        raise ApiProblem(400, "invalid_period", "from is after to",
                         [{"field": "from", "message": "after to"}])
    with read_connection(book_of(request).engine) as connection:
        rows = settlement_reports.penalties(connection, start, end)
    return _listing(PenaltyOut, filtered(rows, counterparty=counterparty), page, "month")


def _act(request: Request, principal: Principal | None, reference: str,
         action: str) -> ActionOut:
    who = required(principal)
    row = _instruction(request, reference)
    if row["function"] != "NEWM":
        raise ApiProblem(409, "instruction_not_actionable",
                         f"{reference} is a cancellation message, not an instruction")
    outcome = settlement_desk.act(book_of(request).engine, reference, action,
                                  or_today(request, None), who.actor)
    return ActionOut(reference=reference, action=action, outcome=outcome,
                     instruction=InstructionOut(**_instruction(request, reference)))


@router.post("/instructions/{reference}/cancel", name="api.settlement.cancel",
             response_model=ActionOut)
def cancel(reference: Reference, request: Request, principal: Who) -> ActionOut:
    """Ask the CSD to cancel the instruction (a CANC message is generated); only before
    settlement started, else 409."""
    return _act(request, principal, reference, "cancel")


@router.post("/instructions/{reference}/hold", name="api.settlement.hold",
             response_model=ActionOut)
def hold(reference: Reference, request: Request, principal: Who) -> ActionOut:
    """Put the instruction on hold: it does not settle until released."""
    return _act(request, principal, reference, "hold")


@router.post("/instructions/{reference}/release", name="api.settlement.release",
             response_model=ActionOut)
def release(reference: Reference, request: Request, principal: Who) -> ActionOut:
    """Release a held instruction."""
    return _act(request, principal, reference, "release")
