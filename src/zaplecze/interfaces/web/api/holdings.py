"""/api/positions, /api/cash, /api/prices, /api/accounts, /api/instruments, /api/inventory:
what the firm and its clients hold, as of a date, kept to the caller's desk."""

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
    own_account,
    page_of,
)
from zaplecze.interfaces.web.auth import Principal, authorize, book_of, required
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import holdings
from zaplecze.store.db import read_connection

router = APIRouter(prefix="/api", tags=["holdings"], responses=RESPONSES)



Who = Annotated[Principal | None, Depends(authorize)]
AccountId = Annotated[str, Path(min_length=1, max_length=64)]
AccountFilter = Annotated[str | None, Query(max_length=64)]
IsinFilter = Annotated[str | None, Query(max_length=12)]
CurrencyFilter = Annotated[str | None, Query(max_length=3)]
AsOf = Annotated[IsoDate | None, Query(description="the end of this day; default today")]
Basis = Literal["trade", "settlement"]


class PositionOut(BaseModel):
    account: str
    isin: str
    quantity: str
    cost_basis: str | None = None  # trade basis only
    currency: str


class CashOut(BaseModel):
    account: str
    currency: str
    balance: str


class PriceOut(BaseModel):
    business_date: str
    isin: str
    close: str
    currency: str


class AccountOut(BaseModel):
    account: str
    name: str
    kind: str
    base_currency: str
    tax_residence: str
    lot_method: str
    desk: str


class InstrumentOut(BaseModel):
    isin: str
    symbol: str
    name: str
    kind: str
    currency: str
    mic: str
    issuer_country: str
    quantity_scale: int


class LotOut(BaseModel):
    account: str
    isin: str
    acquired: str
    quantity: str
    cost: str
    currency: str


class PostingOut(BaseModel):
    line: int
    gl_account: str
    asset: str
    amount: str
    basis: str


class EntryOut(BaseModel):
    sequence: int
    entry_key: str
    kind: str
    phase: str
    business_date: str
    settle_date: str | None
    ref: str
    account: str
    memo: str
    postings: list[PostingOut]


class InventoryOut(BaseModel):
    isin: str
    symbol: str
    name: str
    currency: str
    house_quantity: str
    client_quantity: str
    quantity: str
    price: str | None
    price_date: str | None
    house_market_value: str | None
    client_market_value: str | None
    market_value: str | None


def _scope(request: Request, who: Principal, account: str | None) -> frozenset[str] | None:
    """The accounts asked about: one (404 when the desk does not see it), or the desk's."""
    if account:
        own_account(request, who, account)
        return frozenset({account})
    return who.accounts(book_of(request))


def _listing(model: type[BaseModel], rows: list[dict[str, Any]], page: Paging,
             default_sort: str) -> Any:
    columns = tuple(model.model_fields)
    found = page_of(rows, page, default_sort, columns)
    return Listing[model](items=[model(**row) for row in found["items"]],  # type: ignore[valid-type]
                          total=found["total"], limit=page.limit, offset=page.offset)


@router.get("/positions", name="api.positions.list", response_model=Listing[PositionOut])
def positions(request: Request, page: PagingDep, principal: Who, as_of: AsOf = None,
              basis: Basis = "trade", account: AccountFilter = None,
              isin: IsinFilter = None) -> Any:
    """Holdings per account and security as of the end of ``as_of`` (default today); on the
    trade basis with each position's cost basis."""
    who = required(principal)
    scope = _scope(request, who, account)
    with read_connection(book_of(request).engine) as connection:
        rows = holdings.positions(connection, or_today(request, as_of), basis, scope)
    return _listing(PositionOut, filtered(rows, isin=isin), page, "account")


@router.get("/cash", name="api.cash.list", response_model=Listing[CashOut])
def cash(request: Request, page: PagingDep, principal: Who, as_of: AsOf = None,
         basis: Basis = "trade", account: AccountFilter = None,
         currency: CurrencyFilter = None) -> Any:
    """Cash balances per account and currency as of the end of ``as_of`` (default today)."""
    who = required(principal)
    scope = _scope(request, who, account)
    with read_connection(book_of(request).engine) as connection:
        rows = holdings.cash(connection, or_today(request, as_of), basis, scope)
    return _listing(CashOut, filtered(rows, currency=currency), page, "account")


@router.get("/prices", name="api.prices.list", response_model=Listing[PriceOut])
def prices(request: Request, page: PagingDep, principal: Who, isin: IsinFilter = None,
           date_from: Annotated[IsoDate | None, Query()] = None,
           date_to: Annotated[IsoDate | None, Query()] = None,
           latest: bool = False, as_of: AsOf = None) -> Any:
    """Closing prices; with ``latest=true`` each security's last close on or before
    ``as_of`` (default today)."""
    required(principal)
    if date_from and date_to and date_from > date_to:
        raise ApiProblem(400, "invalid_period", "date_from is after date_to",
                         [{"field": "date_from", "message": "after date_to"}])
    book = book_of(request)
    if latest:
        with read_connection(book.engine) as connection:
            rows = list(holdings.last_prices(connection, or_today(request, as_of), isin).values())
        return _listing(PriceOut, rows, page, "isin")
    sort = page.sort or "business_date"
    if sort not in holdings.PRICE_SORTABLE:
        raise ApiProblem(400, "invalid_sort",
                         f"sort by one of: {', '.join(holdings.PRICE_SORTABLE)}",
                         [{"field": "sort", "message": f"unknown column {sort!r}"}])
    with read_connection(book.engine) as connection:
        rows, total = holdings.prices(connection, isin=isin, start=date_from, end=date_to,
                                      sort=sort, descending=page.order == "desc",
                                      limit=page.limit, offset=page.offset)
    return Listing[PriceOut](items=[PriceOut(**row) for row in rows], total=total,
                             limit=page.limit, offset=page.offset)


@router.get("/accounts", name="api.accounts.list", response_model=Listing[AccountOut])
def accounts(request: Request, page: PagingDep, principal: Who,
             kind: Literal["CLIENT", "HOUSE"] | None = None,
             desk: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    """The accounts of the caller's desk (every account for a firm-wide user)."""
    who = required(principal)
    book = book_of(request)
    scope = who.accounts(book)
    with read_connection(book.engine) as connection:
        rows = holdings.account_rows(connection, scope)
    return _listing(AccountOut, filtered(rows, kind=kind, desk=desk), page, "account")


def _account(request: Request, who: Principal, account: str) -> dict[str, Any]:
    own_account(request, who, account)
    with read_connection(book_of(request).engine) as connection:
        found = holdings.account_rows(connection, account=account)
    if not found:
        raise ApiProblem(404, "unknown_account", f"no account {account}")
    return found[0]


@router.get("/accounts/{account}", name="api.accounts.get", response_model=AccountOut)
def get_account(account: AccountId, request: Request, principal: Who) -> AccountOut:
    return AccountOut(**_account(request, required(principal), account))


@router.get("/accounts/{account}/lots", name="api.accounts.lots",
            response_model=Listing[LotOut])
def account_lots(account: AccountId, request: Request, page: PagingDep, principal: Who,
                 as_of: AsOf = None, isin: IsinFilter = None) -> Any:
    """The account's open lots as of the end of ``as_of`` (default today)."""
    _account(request, required(principal), account)
    with read_connection(book_of(request).engine) as connection:
        rows = holdings.lots(connection, account, or_today(request, as_of))
    return _listing(LotOut, filtered(rows, isin=isin), page, "isin")


@router.get("/accounts/{account}/activity", name="api.accounts.activity",
            response_model=Listing[EntryOut])
def account_activity(account: AccountId, request: Request, page: PagingDep, principal: Who,
                     date_from: Annotated[IsoDate | None, Query(alias="from")] = None,
                     date_to: Annotated[IsoDate | None, Query(alias="to")] = None,
                     kind: Annotated[str | None, Query(max_length=24)] = None) -> Any:
    """The journal entries that moved the account's cash or securities, with their postings;
    newest first unless sorted otherwise."""
    _account(request, required(principal), account)
    if page.sort and page.sort not in holdings.ACTIVITY_SORTABLE:
        raise ApiProblem(400, "invalid_sort",
                         f"sort by one of: {', '.join(holdings.ACTIVITY_SORTABLE)}",
                         [{"field": "sort", "message": f"unknown column {page.sort!r}"}])
    if date_from and date_to and date_from > date_to:
        raise ApiProblem(400, "invalid_period", "from is after to",
                         [{"field": "from", "message": "after to"}])
    with read_connection(book_of(request).engine) as connection:
        rows, total = holdings.activity(
            connection, account, start=date_from, end=date_to, kind=kind,
            sort=page.sort or "sequence", descending=page.order == "desc" or not page.sort,
            limit=page.limit, offset=page.offset)
    return Listing[EntryOut](items=[EntryOut(**row) for row in rows], total=total,
                             limit=page.limit, offset=page.offset)


@router.get("/instruments", name="api.instruments.list",
            response_model=Listing[InstrumentOut])
def instruments(request: Request, page: PagingDep, principal: Who,
                kind: Annotated[str | None, Query(max_length=16)] = None,
                currency: CurrencyFilter = None,
                mic: Annotated[str | None, Query(max_length=4)] = None) -> Any:
    required(principal)
    with read_connection(book_of(request).engine) as connection:
        rows = holdings.instrument_rows(connection)
    return _listing(InstrumentOut, filtered(rows, kind=kind, currency=currency, mic=mic), page,
                    "isin")


@router.get("/instruments/{isin}", name="api.instruments.get", response_model=InstrumentOut)
def get_instrument(isin: Annotated[str, Path(min_length=1, max_length=12)], request: Request,
                   principal: Who) -> InstrumentOut:
    required(principal)
    with read_connection(book_of(request).engine) as connection:
        found = holdings.instrument_rows(connection, isin)
    if not found:
        raise ApiProblem(404, "unknown_instrument", f"no instrument {isin}")
    return InstrumentOut(**found[0])


@router.get("/inventory", name="api.inventory.list", response_model=Listing[InventoryOut])
def inventory(request: Request, page: PagingDep, principal: Who, as_of: AsOf = None,
              isin: IsinFilter = None, currency: CurrencyFilter = None) -> Any:
    """The front office's view, per security: the house's and the clients' positions (trade
    basis; of the caller's desk), the last close on or before ``as_of`` and market values."""
    who = required(principal)
    scope = who.accounts(book_of(request))
    with read_connection(book_of(request).engine) as connection:
        rows = holdings.inventory(connection, or_today(request, as_of), scope)
    return _listing(InventoryOut, filtered(rows, isin=isin, currency=currency), page, "isin")
