"""/login and /logout: the session cookie of ``api/session.py``, from a form."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from zaplecze.interfaces.web.api.session import log_in, set_session_cookie
from zaplecze.interfaces.web.auth import (
    SESSION_COOKIE,
    Principal,
    authorize,
    book_of,
    required,
    settings_of,
)
from zaplecze.interfaces.web.pages.base import redirect, render, safe_next
from zaplecze.services import identity

router = APIRouter(include_in_schema=False)

CODE = re.compile(r"^[0-9]{6}$")
# Login CSRF (a forged login into the attacker's account): before any session exists, the form
# carries a random token that must equal the one in this short-lived cookie (double submit).
LOGIN_CSRF_COOKIE = "zaplecze_login_csrf"


def _form(request: Request, *, status: int = 200, username: str = "", next_path: str = "/",
          errors: dict[str, str] | None = None, error: str = "", notice: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status=status, username=username,
                      next_path=next_path, errors=errors or {}, error=error, notice=notice,
                      login_csrf=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=settings_of(request).secure_cookies, max_age=3_600)
    return response


@router.get("/login", name="page.login")
def login_page(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
               next: str = "/", expired: str = "") -> Response:
    if principal is not None and principal.via == "session" and not expired:
        return redirect(safe_next(next))
    notice = "Your session expired; please log in again." if expired else ""
    return _form(request, next_path=safe_next(next), notice=notice)


@router.post("/login", name="page.login.submit")
def login_submit(request: Request, _: Annotated[Principal | None, Depends(authorize)],
                 username: Annotated[str, Form(max_length=64)] = "",
                 password: Annotated[str, Form(max_length=identity.PASSWORD_MAX)] = "",
                 code: Annotated[str, Form(max_length=16)] = "",
                 next: Annotated[str, Form(max_length=2048)] = "/",
                 login_csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    """Password and TOTP code together; the same answer whichever of them is wrong."""
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, login_csrf):
        return _form(request, status=403, username=username, next_path=target,
                     error="The login form had expired or did not come from this site; "
                           "please try again.")
    errors = {}
    if not username.strip():
        errors["username"] = "Enter your user name."
    if not password:
        errors["password"] = "Enter your password."
    if not CODE.match(code.strip()):
        errors["code"] = "Enter the six-digit code from your authenticator app."
    if errors:
        return _form(request, status=400, username=username, next_path=target, errors=errors)
    outcome = log_in(request, username.strip(), password, code.strip())
    if outcome.refused == "throttled":
        return _form(request, status=429, username=username, next_path=target,
                     error="Too many failed attempts; wait 15 minutes and try again.")
    if outcome.refused or outcome.user is None:
        return _form(request, status=401, username=username, next_path=target,
                     error="The user name, password or code is not right.")
    response = redirect(target)
    set_session_cookie(request, response, outcome.token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", name="page.logout")
def logout(request: Request, principal: Annotated[Principal | None, Depends(authorize)],
           csrf_token: Annotated[str, Form(max_length=128)] = "") -> Response:
    """End the session on the server and forget the cookie (CSRF checked by ``authorize``)."""
    who = required(principal)
    token = request.cookies.get(SESSION_COOKIE, "")
    if token and who.via == "session":
        identity.end_session(book_of(request).engine, token, "logout",
                             settings_of(request).clock(), address=who.address)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
