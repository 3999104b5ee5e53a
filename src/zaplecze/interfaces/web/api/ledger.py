"""/api/adjustments and /api/reversals: manual journal entries and their reversals, each a
four-eyes request that another person decides at /api/approvals/{id}/approve."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.common import RESPONSES, IsoDate, own_account
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.services import four_eyes

router = APIRouter(prefix="/api", tags=["ledger"], responses=RESPONSES)

Text = Annotated[str, Field(max_length=500)]


class PostingIn(BaseModel):
    model_config = {"extra": "forbid"}

    gl_account: Annotated[str, Field(min_length=3, max_length=160)]
    asset: Annotated[str, Field(min_length=3, max_length=12, pattern=r"^[A-Z0-9]+$")]
    amount: Annotated[Decimal, Field(max_digits=28, allow_inf_nan=False)]


class AdjustmentIn(BaseModel):
    """A manual entry: postings balanced per asset, amounts in the asset's units (currency or
    quantity), exact at its scale."""

    model_config = {"extra": "forbid"}

    business_date: IsoDate
    memo: Annotated[str, Field(min_length=1, max_length=500)]
    account: Annotated[str, Field(max_length=64)] = ""
    reference: Annotated[str, Field(max_length=64)] = ""
    postings: Annotated[list[PostingIn], Field(min_length=2, max_length=50)]


class ReversalIn(BaseModel):
    model_config = {"extra": "forbid"}

    entry_key: Annotated[str, Field(min_length=1, max_length=160)]
    business_date: IsoDate
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class RequestOut(BaseModel):
    request_id: str
    action: str
    subject: str
    payload_hash: str
    maker: str
    made_at: str
    status: str


def _out(made: four_eyes.Request) -> RequestOut:
    return RequestOut(request_id=made.request_id, action=made.action, subject=made.subject,
                      payload_hash=made.payload_hash, maker=made.maker, made_at=made.made_at,
                      status=made.status)


@router.post("/adjustments", name="api.ledger.adjustment", response_model=RequestOut,
             status_code=202)
def request_adjustment(body: AdjustmentIn, request: Request,
                       principal: Annotated[Principal | None, Depends(authorize)],
                       ) -> RequestOut:
    """Request a manual entry; nothing is booked until another person approves it."""
    who = required(principal)
    if body.account:
        own_account(request, who, body.account)
    payload = {"business_date": body.business_date.isoformat(), "memo": body.memo,
               "account": body.account, "reference": body.reference,
               "postings": [{"gl_account": p.gl_account, "asset": p.asset,
                             "amount": format(p.amount, "f")} for p in body.postings]}
    made = four_eyes.request(book_of(request).engine, who.actor, "ledger.adjustment",
                             body.memo[:80], payload)
    return _out(made)


@router.post("/reversals", name="api.ledger.reversal", response_model=RequestOut,
             status_code=202)
def request_reversal(body: ReversalIn, request: Request,
                     principal: Annotated[Principal | None, Depends(authorize)]) -> RequestOut:
    """Request the reversal of a posted adjustment or penalty entry."""
    who = required(principal)
    payload = {"entry_key": body.entry_key, "business_date": body.business_date.isoformat(),
               "reason": body.reason}
    made = four_eyes.request(book_of(request).engine, who.actor, "ledger.reversal",
                             body.entry_key, payload)
    return _out(made)
