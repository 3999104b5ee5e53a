"""/api/session: log in (password and TOTP code), who am I, log out; /api/tokens for machine
clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from zaplecze.interfaces.web.api.common import RESPONSES
from zaplecze.interfaces.web.auth import (
    SESSION_COOKIE,
    Principal,
    address_of,
    authorize,
    book_of,
    required,
    settings_of,
)
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.services import identity

router = APIRouter(prefix="/api", tags=["session"], responses=RESPONSES)


class LoginIn(BaseModel):
    model_config = {"extra": "forbid"}

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=identity.PASSWORD_MAX)]
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class Me(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    desk: str
    permissions: list[str]
    csrf_token: str


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = settings_of(request)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=settings.secure_cookies,
                        samesite="strict", path="/",
                        max_age=int(settings.absolute_timeout.total_seconds()))


def log_in(request: Request, username: str, password: str, code: str) -> identity.Login:
    return identity.log_in(book_of(request).engine, username, password, code,
                           address_of(request), settings_of(request).clock())


def _me(principal: Principal) -> Me:
    user = principal.user
    return Me(username=user.username, display_name=user.display_name, roles=list(user.roles),
              desk=user.desk, permissions=sorted(principal.permissions),
              csrf_token=principal.csrf_token)


@router.post("/session", name="api.session.login", response_model=Me)
def login(body: LoginIn, request: Request, response: Response,
          _: Annotated[Principal | None, Depends(authorize)]) -> Me:
    """Log in; the session cookie is set (HttpOnly, Secure, SameSite=Strict). Send the
    returned ``csrf_token`` as ``X-CSRF-Token`` with every change made with the cookie."""
    outcome = log_in(request, body.username, body.password, body.code)
    if outcome.refused == "throttled":
        raise ApiProblem(429, "login_throttled", "too many failed attempts; wait 15 minutes")
    if outcome.refused or outcome.user is None:
        raise ApiProblem(401, "invalid_credentials",
                         "the user name, password or code is not right")
    set_session_cookie(request, response, outcome.token)
    live = identity.session(book_of(request).engine, outcome.token, settings_of(request).clock())
    assert live is not None
    return _me(Principal(outcome.user, outcome.user.permissions, "session",
                         address_of(request), live[0].csrf_token))


@router.get("/session", name="api.session.me", response_model=Me)
def me(principal: Annotated[Principal | None, Depends(authorize)]) -> Me:
    return _me(required(principal))


@router.delete("/session", name="api.session.logout", status_code=204,
               response_class=Response)
def logout(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
           ) -> Response:
    """End the session on the server and clear the cookie."""
    who = required(principal)
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        identity.end_session(book_of(request).engine, token, "logout", address=who.address)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


class TokenIn(BaseModel):
    model_config = {"extra": "forbid"}

    scopes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=64)] = []
    days: Annotated[int, Field(ge=1, le=identity.TOKEN_DAYS_MAX)] = 90


class TokenOut(BaseModel):
    token: str


@router.post("/tokens", name="api.tokens.issue", response_model=TokenOut, status_code=201)
def issue_token(body: TokenIn, request: Request,
                principal: Annotated[Principal | None, Depends(authorize)]) -> TokenOut:
    """An API token for yourself, limited to some of your permissions (all by default);
    shown once. Only from a logged-in session, not from another token."""
    who = required(principal)
    if who.via != "session":
        raise ApiProblem(403, "forbidden", "tokens are issued from a logged-in session")
    token = identity.issue_token(book_of(request).engine, who.actor, who.username,
                                 body.scopes, body.days)
    return TokenOut(token=token)
