"""/api/trades: capture (with an Idempotency-Key), list, read one, cancel."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.common import (
    RESPONSES,
    IsoDate,
    Listing,
    PagingDep,
    own_account,
)
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import trade_desk
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api/trades", tags=["trades"], responses=RESPONSES)

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]
Isin = Annotated[str, Field(pattern=r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[Decimal, Field(gt=0, max_digits=28, allow_inf_nan=False)]


class TradeIn(BaseModel):
    """A NEW trade as in trades.csv; decimals may be sent as strings (exact) or numbers."""

    model_config = {"extra": "forbid"}

    trade_id: Id
    account: Id
    isin: Isin
    side: Literal["BUY", "SELL"]
    quantity: Amount
    price: Amount
    currency: Currency
    trade_date: IsoDate
    settlement_date: IsoDate | None = None
    venue: Annotated[str, Field(max_length=16, pattern=r"^[A-Z0-9]*$")] = ""
    counterparty: Annotated[str, Field(max_length=64)] = ""
    commission: Annotated[Decimal | None, Field(ge=0, max_digits=28, allow_inf_nan=False)] = None


class TradeOut(BaseModel):
    trade_id: str
    account: str
    isin: str
    side: str
    quantity: str
    price: str
    currency: str
    trade_date: str
    settlement_date: str
    venue: str
    counterparty: str
    gross: str
    commission: str
    source: str
    status: Literal["pending", "partially_settled", "settled", "cancelled"]


class CancelIn(BaseModel):
    model_config = {"extra": "forbid"}

    cancel_date: IsoDate


def _csv_values(trade: TradeIn) -> dict[str, str]:
    values = {}
    for name, value in trade.model_dump().items():
        if value is None:
            values[name] = ""
        elif isinstance(value, Decimal):
            values[name] = format(value, "f")
        elif isinstance(value, dt.date):
            values[name] = value.isoformat()
        else:
            values[name] = str(value)
    return values


def _answer(answer: trade_desk.Answer, response: Response) -> TradeOut:
    if answer.status >= 400:
        raise ApiProblem(answer.status, answer.body["code"], answer.body["detail"])
    response.status_code = answer.status
    return TradeOut(**answer.body)


IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", max_length=128)]


@router.post("", name="api.trades.capture", status_code=201, response_model=TradeOut,
             responses={200: {"model": TradeOut, "description": "Already booked (the same "
                              "trade id and content, or the same Idempotency-Key and body)"}})
def capture(trade: TradeIn, request: Request, response: Response,
            principal: Annotated[Principal | None, Depends(authorize)],
            idempotency_key: IdempotencyKey = "") -> TradeOut:
    """Book a trade through the same validation as trades.csv. Retry safely with an
    ``Idempotency-Key``: the same key and body get the original answer; another body, 409."""
    who = required(principal)
    own_account(request, who, trade.account)
    answer = trade_desk.capture(book_of(request).engine, who.actor, _csv_values(trade),
                                idempotency_key)
    return _answer(answer, response)


class TradeFilters(BaseModel):
    account: str | None = None
    isin: str | None = None
    side: Literal["BUY", "SELL"] | None = None
    currency: str | None = None
    counterparty: str | None = None
    trade_date_from: IsoDate | None = None
    trade_date_to: IsoDate | None = None
    settlement_date_from: IsoDate | None = None
    settlement_date_to: IsoDate | None = None


@router.get("", name="api.trades.list", response_model=Listing[TradeOut])
def list_trades(request: Request, page: PagingDep,
                principal: Annotated[Principal | None, Depends(authorize)],
                filters: Annotated[TradeFilters, Query()]) -> Listing[TradeOut]:
    """The blotter: trades of the caller's desk, newest first unless sorted otherwise."""
    who = required(principal)
    if page.sort and page.sort not in trade_desk.SORTABLE:
        raise ApiProblem(400, "invalid_sort", f"sort by one of: "
                         f"{', '.join(trade_desk.SORTABLE)}",
                         [{"field": "sort", "message": f"unknown column {page.sort!r}"}])
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        rows, total = trade_desk.list_trades(
            connection, accounts=scope, filters=filters.model_dump(),
            sort=page.sort or "trade_date",
            descending=page.order == "desc" or not page.sort, limit=page.limit,
            offset=page.offset)
    return Listing[TradeOut](items=[TradeOut(**row) for row in rows], total=total,
                             limit=page.limit, offset=page.offset)


def _visible_trade(request: Request, who: Principal, trade_id: str) -> dict[str, object]:
    book = book_of(request)
    with read_connection(book.engine) as connection:
        trade = trade_desk.get_trade(connection, trade_id)
    if trade is None or not who.sees(book, str(trade["account"])):
        raise ApiProblem(404, "unknown_trade", f"no trade {trade_id}")
    return trade


@router.get("/{trade_id}", name="api.trades.get", response_model=TradeOut)
def get_trade(trade_id: Annotated[str, Field(max_length=64)], request: Request,
              principal: Annotated[Principal | None, Depends(authorize)]) -> TradeOut:
    return TradeOut(**_visible_trade(request, required(principal), trade_id))  # type: ignore[arg-type]


@router.post("/{trade_id}/cancel", name="api.trades.cancel", response_model=TradeOut,
             status_code=201,
             responses={200: {"model": TradeOut, "description": "Already cancelled"}})
def cancel_trade(trade_id: Annotated[str, Field(max_length=64)], body: CancelIn,
                 request: Request, response: Response,
                 principal: Annotated[Principal | None, Depends(authorize)],
                 idempotency_key: IdempotencyKey = "") -> TradeOut:
    """Cancel a trade that has not settled: reversing entries dated ``cancel_date``."""
    who = required(principal)
    trade = _visible_trade(request, who, trade_id)
    answer = trade_desk.cancel(book_of(request).engine, who.actor, trade_id,
                               str(trade["account"]), body.cancel_date, idempotency_key)
    return _answer(answer, response)
