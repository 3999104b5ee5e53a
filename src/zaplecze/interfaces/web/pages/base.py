"""What every page shares: the templates, the navigation, the language, rendering, and errors
shown as pages (a 401 becomes a redirect to the login page, a 403 a "not allowed" page).

Pages authorize exactly as the API does (``auth.authorize`` and ``policy.POLICY``); only the way
a refusal is shown differs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection

from zaplecze.interfaces.web import i18n
from zaplecze.interfaces.web.auth import (
    SESSION_COOKIE,
    Principal,
    authenticate_quietly,
    settings_of,
)

WEB = Path(__file__).resolve().parents[1]
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
VENDOR = STATIC / "vendor"
LANG_COOKIE_DAYS = 365


@dataclass(frozen=True)
class NavItem:
    name: str  # the route name
    path: str
    label: str  # English; translated when shown
    permission: str
    testid: str


NAV = (
    NavItem("page.dashboard", "/", "Dashboard", "trades:read", "nav-dashboard"),
    NavItem("page.trades", "/trades", "Trades", "trades:read", "nav-trades"),
    NavItem("page.accounts", "/accounts", "Accounts", "positions:read", "nav-accounts"),
    NavItem("page.inventory", "/inventory", "Inventory", "prices:read", "nav-inventory"),
    NavItem("page.exceptions", "/exceptions", "Exceptions", "exceptions:read", "nav-exceptions"),
    NavItem("page.corporate_actions", "/corporate-actions", "Corporate actions",
            "corporate_actions:read", "nav-corporate-actions"),
    NavItem("page.reports", "/reports", "Reports", "reports:read", "nav-reports"),
    NavItem("page.audit", "/audit", "Audit trail", "audit:read", "nav-audit"),
)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(("html",), default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson_attr"] = lambda value: json.dumps(value, separators=(",", ":"))
    return env


ENV = _environment()


def navigation(who: Principal | None) -> list[NavItem]:
    if who is None:
        return []
    return [item for item in NAV if who.may(item.permission)]


def first_page(who: Principal) -> str | None:
    """Where a user lands: the first page of the navigation their roles allow."""
    allowed = navigation(who)
    return allowed[0].path if allowed else None


def vendored(name: str) -> bool:
    return (VENDOR / name).is_file()


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request", "") == "true"


def with_query(request: Request, **changes: str | None) -> str:
    """This page's address with some query parameters changed (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(request: Request, template: str, who: Principal | None, *, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    language = i18n.language_of(request)
    fmt = i18n.Formats(language)
    values = {
        "request": request, "who": who, "nav": navigation(who), "fmt": fmt,
        "_": fmt.gettext, "ngettext": fmt.ngettext, "lang": language,
        "languages": [(code, with_query(request, lang=code)) for code in i18n.LANGUAGES],
        "csrf_token": who.csrf_token if who is not None else "",
        "csrf_headers": json.dumps({"X-CSRF-Token": who.csrf_token}) if who else "{}",
        "path": request.url.path, "has_htmx": vendored("htmx.min.js"),
        "has_grid": vendored("ag-grid-community.min.js"),
        "has_chart": vendored("chart.umd.min.js"),
    }
    values.update(context)
    html = ENV.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status, headers=headers)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: Response) -> None:
    chosen = i18n.requested(request)
    if chosen:
        response.set_cookie(i18n.COOKIE, chosen, max_age=LANG_COOKIE_DAYS * 86_400, path="/",
                            samesite="lax", secure=settings_of(request).secure_cookies)


def redirect(path: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(path, status_code=status)


def safe_next(value: str | None) -> str:
    """Only a path of this site (no scheme, no host, no //evil): else the dashboard."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) < 32 for c in value) or value.startswith(("/login", "/logout"))):
        return "/"
    return value


def login_redirect(request: Request) -> Response:
    """A page asked for without a live session: to the login page, coming back afterwards.
    A cookie that no longer opens a session means the session expired."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method not in ("GET", "HEAD"):  # back to the page the form was on, not the POST
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc == request.url.netloc
        target = safe_next(referer.path + (f"?{referer.query}" if referer.query else "")
                           if same_site else "/")
    expired = bool(request.cookies.get(SESSION_COOKIE))
    location = "/login?next=" + quote(target, safe="/")
    if expired:
        location += "&expired=1"
    if is_htmx(request):
        response: Response = Response(status_code=401, headers={"HX-Redirect": location})
    else:
        response = redirect(location)
    if expired:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


_TITLES = {400: "The request is not valid", 403: "Not allowed", 404: "Not found",
           405: "Not allowed here", 409: "Conflict", 429: "Too many requests",
           500: "Something went wrong"}


def error_page(request: Request, status: int, code: str, detail: str,
               errors: list[dict[str, str]] | None = None) -> HTMLResponse:
    """A refusal or error as a page (or, for htmx, as a message in the page's flash area)."""
    who = getattr(request.state, "principal", None)
    if who is None and status != 401:
        who = authenticate_quietly(request)  # for the page's frame: who is refused
    title = _TITLES.get(status, "Error")
    if is_htmx(request):
        return render(request, "_flash.html", who, status=status, kind="error", title=title,
                      detail=detail, code=code,
                      headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return render(request, "error.html", who, status=status, title=title, code=code,
                  detail=detail, errors=errors or [])


def default_as_of(connection: Connection, today: dt.date) -> dt.date:
    """The book's last business day with activity: the later of the last end of day run and
    the latest trade date (else today)."""
    found = [str(day) for day in (
        connection.exec_driver_sql("SELECT MAX(trade_date) FROM trades").scalar(),
        connection.exec_driver_sql("SELECT MAX(business_date) FROM eod_runs").scalar())
        if day]
    return dt.date.fromisoformat(max(found)[:10]) if found else today


# The options of /api/reports/{name} (as the CLI's) that each report asks for.
_AS_OF = ("positions", "cash", "trial-balance", "stock-record", "valuation", "fails", "breaks")
_PERIOD = ("realized", "dividends", "cash-ladder", "penalties")
_BASIS = ("positions", "cash")


def report_parameters(name: str, day: dt.date, start: dt.date) -> dict[str, str]:
    """A report's options for the day shown (a period report: from ``start`` to the day)."""
    params: dict[str, str] = {}
    if name in _AS_OF:
        params["as_of"] = day.isoformat()
    if name in _BASIS:
        params["basis"] = "trade"
    if name in _PERIOD:
        params["from"] = start.isoformat()
        params["to"] = day.isoformat()
    if name == "obligations":
        params["settlement_date"] = day.isoformat()
    return params


def report_link(name: str, fmt: str, params: dict[str, str]) -> str:
    """The download of a report through the API (the session cookie goes with it)."""
    return f"/api/reports/{name}?" + urlencode({"format": fmt, **params})
