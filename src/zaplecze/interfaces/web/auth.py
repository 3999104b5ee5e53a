"""Who is asking, and may they: the session cookie or an API token, CSRF on changes, the
route's permission from ``policy.POLICY``, and the desk's accounts.

``authorize`` is a dependency of every API route and page: it finds the route's policy entry
(a route without one is refused, and the authorization-matrix test fails), authenticates, checks
the permission, and returns the ``Principal``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from zaplecze.bootstrap import Book
from zaplecze.interfaces.web.policy import AUTHENTICATED, POLICY, PUBLIC
from zaplecze.interfaces.web.problems import ApiProblem
from zaplecze.interfaces.web.settings import WebSettings
from zaplecze.services import identity
from zaplecze.services.audit_trail import Actor
from zaplecze.store.db import read_connection

SESSION_COOKIE = "zaplecze_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Principal:
    user: identity.User
    permissions: frozenset[str]
    via: str  # session, token
    address: str
    csrf_token: str = ""
    _accounts: Any = field(default=False, repr=False)  # False = not read yet

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def actor(self) -> Actor:
        return Actor(self.user.username, self.address)

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def accounts(self, book: Book) -> frozenset[str] | None:
        """The accounts this user's desk sees; None = every account (a firm-wide user)."""
        if self._accounts is False:
            with read_connection(book.engine) as connection:
                self._accounts = identity.desk_accounts(connection, self.user.desk)
        return self._accounts  # type: ignore[no-any-return]

    def sees(self, book: Book, account: str) -> bool:
        scope = self.accounts(book)
        return scope is None or account in scope


class NotLoggedIn(ApiProblem):
    def __init__(self, detail: str = "log in first") -> None:
        super().__init__(401, "not_logged_in", detail)


class Forbidden(ApiProblem):
    def __init__(self, detail: str) -> None:
        super().__init__(403, "forbidden", detail)


def address_of(request: Request) -> str:
    return request.client.host if request.client else ""


def book_of(request: Request) -> Book:
    return request.app.state.book  # type: ignore[no-any-return]


def settings_of(request: Request) -> WebSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", "") or ""


def authenticate(request: Request) -> Principal | None:
    book, settings = book_of(request), settings_of(request)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        found = identity.token_user(book.engine, header[7:].strip(), settings.clock())
        if found is None:
            raise NotLoggedIn("the API token is unknown, revoked or expired")
        user, scopes = found
        return Principal(user, scopes, "token", address_of(request))
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    live = identity.session(book.engine, token, settings.clock(), settings.idle_timeout,
                            settings.absolute_timeout)
    if live is None:
        return None
    session, user = live
    return Principal(user, user.permissions, "session", address_of(request), session.csrf_token)


async def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps it for the endpoint's own Form fields
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if not sent or not hmac.compare_digest(sent, principal.csrf_token):
        raise Forbidden("the form is stale or did not come from this site (CSRF check); "
                        "reload the page and try again")


async def authorize(request: Request) -> Principal | None:
    name = _route_name(request)
    permission = POLICY.get(name)
    if permission is None:
        raise Forbidden(f"no access policy is defined for {name!r}")
    if permission == PUBLIC:
        return authenticate_quietly(request)
    principal = authenticate(request)
    if principal is None:
        raise NotLoggedIn()
    if permission != AUTHENTICATED and not any(
            principal.may(one) for one in permission.split("|")):
        raise Forbidden(f"your roles do not allow {permission.replace('|', ' or ')}")
    await _check_csrf(request, principal)
    request.state.principal = principal
    return principal


def authenticate_quietly(request: Request) -> Principal | None:
    try:
        return authenticate(request)
    except NotLoggedIn:
        return None


def required(principal: Principal | None) -> Principal:
    if principal is None:  # only public routes can give None, and they do not call this
        raise NotLoggedIn()
    return principal
