"""The authorization matrix, generated from the route table: every API route and page has a
policy entry; every role (one demo user each, plus the Warsaw desk's operations user and nobody)
gets what the policy says on every route; a desk sees its own accounts and trades and nothing
of another desk's (404, as if it did not exist); nothing answers 500. Runs on a copy of the
demo book, on SQLite and PostgreSQL. A new route extends it without a change here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from zaplecze.interfaces.web import auth
from zaplecze.interfaces.web.app import create_app
from zaplecze.interfaces.web.policy import AUTHENTICATED, POLICY, PUBLIC
from zaplecze.services import access

pytest.register_assert_rewrite("web_support")
from web_support import (  # noqa: E402
    DemoIds,
    client_for,
    logged_in,
    role_users,
    route_contexts,
    user_roles,
    web_app,
)

pytest_plugins = ("web_support",)

ANONYMOUS = "(nobody)"
DOCS = {"openapi", "swagger_ui_html", "swagger_ui_redirect"}  # FastAPI's own, public by design
LOGOUTS = {"api.session.logout", "page.logout"}  # these end the session they are sent with
REDIRECTS = {301, 302, 303, 307, 308}
PERIOD = {"as_of": "2024-09-30", "from": "2024-06-01", "to": "2024-09-30",
          "settlement_date": "2024-09-30", "limit": "1000"}


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    route: Any

    @property
    def is_api(self) -> bool:
        return self.path == "/api" or self.path.startswith("/api/")

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _original(context: Any) -> Any:
    return getattr(context, "original_route", context)


def endpoints(app: Any) -> list[Endpoint]:
    """Every (method, route) of the API and the pages; FastAPI's docs and mounts left out."""
    found = []
    for context in route_contexts(app):
        name, path = context.name, context.path
        if name in DOCS or not isinstance(_original(context), APIRoute):
            continue
        for method in sorted(set(context.methods or ()) - {"HEAD", "OPTIONS"}):
            found.append(Endpoint(name, method, path, _original(context)))
    return found


APP = create_app(None)  # type: ignore[arg-type]  # only its route table is read here
ENDPOINTS = endpoints(APP)
ROLE_USERS = role_users()  # role (or desk:WAW) -> username
IDENTITIES = [ANONYMOUS, *ROLE_USERS.values()]
ROLES_OF = user_roles()


def fill(endpoint: Endpoint, ids: DemoIds, desk: str = "waw", **given: str) -> str:
    """The endpoint's path with real ids of the demo book (else a made-up value)."""
    values = {
        "account": ids.waw_account if desk == "waw" else ids.intl_account,
        "trade_id": ids.waw_trade if desk == "waw" else ids.intl_trade,
        "isin": ids.isin, "name": "positions", "reference": ids.fail_reference,
        "event_id": ids.open_event, "break_id": ids.break_id, "key": ids.fail_key,
        "item_key": ids.fail_key, "username": "ops2", "request_id": "0000000000000000",
        **given,
    }
    path = endpoint.path
    for param in endpoint.params:
        path = re.sub(r"{" + param + r"(?::\w+)?}", values.get(param, "made-up-1"), path)
    return path


def allowed(permission: str, username: str) -> bool:
    if permission == PUBLIC:
        return True
    if username == ANONYMOUS:
        return False
    if permission == AUTHENTICATED:
        return True
    granted = access.permissions_of([ROLES_OF[username]])
    return any(one in granted for one in permission.split("|"))  # "a|b": any of them


def send(client: Any, endpoint: Endpoint, path: str) -> Any:
    if endpoint.method == "GET":
        return client.get(path)
    return client.request(endpoint.method, path, json={})


def _code(response: Any) -> str:
    if "json" in response.headers.get("content-type", ""):
        try:
            return str(response.json().get("code", ""))
        except ValueError:
            return ""
    found = re.search(r'data-code="([a-z_]+)"', response.text)
    return found.group(1) if found else ""


def _to_login(response: Any) -> bool:
    return (response.status_code in REDIRECTS
            and response.headers.get("location", "").startswith("/login"))


def verdict(endpoint: Endpoint, username: str, response: Any) -> str | None:
    """What is wrong with the answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}: {response.text[:300]}"
    permission = POLICY[endpoint.name]
    if allowed(permission, username):
        refused = status == 401 or (status == 403 and (
            _code(response) == "forbidden" if not endpoint.is_api  # not e.g. the login form's
            else _code(response) != "four_eyes_required"))        # own CSRF refusal
        if refused:
            return f"allowed ({permission}) but {status} {_code(response)}"
        if not endpoint.is_api and _to_login(response) and endpoint.name not in LOGOUTS:
            return f"allowed ({permission}) but sent to {response.headers['location']}"
        return None
    if username == ANONYMOUS:
        if endpoint.is_api:
            ok = status == 401 and _code(response) == "not_logged_in"
            return None if ok else f"not logged in: expected 401, got {status} {_code(response)}"
        return None if _to_login(response) else (
            f"not logged in: expected a redirect to /login, got {status} "
            f"{response.headers.get('location', '')}")
    if status != 403 or _code(response) != "forbidden":
        return f"not allowed ({permission}): expected 403 forbidden, got {status} {_code(response)}"
    if not endpoint.is_api and "text/html" not in response.headers.get("content-type", ""):
        return "not allowed: a page's 403 must be a page"
    return None


# --- (a) the table is complete --------------------------------------------------------------

def test_every_route_has_a_policy_entry() -> None:
    missing = [f"{context.path} ({context.name})" for context in route_contexts(APP)
               if context.name not in DOCS and context.name not in POLICY]
    assert not missing, f"routes without an entry in policy.POLICY: {missing}"
    assert len(ENDPOINTS) > 20 and any(not e.is_api for e in ENDPOINTS)


def test_every_policy_entry_names_a_route() -> None:
    names = {context.name for context in route_contexts(APP)}
    stale = sorted(set(POLICY) - names)
    assert not stale, f"policy entries without a route: {stale}"


def test_every_permission_in_the_policy_exists() -> None:
    unknown = {name: perm for name, perm in POLICY.items()
               if perm not in (PUBLIC, AUTHENTICATED)
               and not set(perm.split("|")) <= access.PERMISSIONS}
    assert not unknown, f"permissions no role can ever have: {unknown}"


def _dependencies(dependant: Any) -> list[Any]:
    found = [dependant.call]
    for sub in dependant.dependencies:
        found += _dependencies(sub)
    return found


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_route_is_authorized(endpoint: Endpoint) -> None:
    """The policy is only checked by the ``authorize`` dependency: a route without it is open."""
    assert auth.authorize in _dependencies(endpoint.route.dependant), (
        f"{endpoint} ({endpoint.name}) does not depend on auth.authorize")


# --- (b) every role on every route ----------------------------------------------------------

@pytest.fixture(scope="module")
def matrix(demo_book_module: Any, demo_template: Any) -> dict[str, Any]:
    """The app on a module-wide copy of the demo book, a client logged in per demo user."""
    app = web_app(demo_book_module)
    clients = {username: logged_in(app, demo_book_module.engine, username)
               for username in ROLE_USERS.values()}
    clients[ANONYMOUS] = client_for(app)
    return {"app": app, "book": demo_book_module, "clients": clients,
            "ids": demo_template.ids}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_each_role_gets_what_the_policy_says(endpoint: Endpoint, matrix: dict[str, Any]) -> None:
    path = fill(endpoint, matrix["ids"])
    wrong = []
    for username in IDENTITIES:
        client = matrix["clients"][username]
        if endpoint.name in LOGOUTS and username != ANONYMOUS:
            client = logged_in(matrix["app"], matrix["book"].engine, username)
        response = send(client, endpoint, path)
        problem = verdict(endpoint, username, response)
        if (not problem and endpoint.name in LOGOUTS and username != ANONYMOUS
                and client.get("/api/session").status_code != 401):
            problem = "logged out, yet the session still works"
        if problem:
            wrong.append(f"{username} ({ROLES_OF.get(username, '-')}): {problem}")
    assert not wrong, f"{endpoint.method} {path} [{endpoint.name}]:\n" + "\n".join(wrong)


# --- (c) desks --------------------------------------------------------------------------------

DESK_OBJECTS = {"account", "trade_id"}  # keyed by an account: desk data
DESK_ROUTES = [e for e in ENDPOINTS if e.method == "GET" and DESK_OBJECTS & set(e.params)]
FIRM_ROUTES = [e for e in ENDPOINTS if e.method == "GET" and e.params
               and not DESK_OBJECTS & set(e.params)]


def _desk_user() -> str:
    return ROLE_USERS["desk:WAW"]


LIST_ROUTES = [e for e in ENDPOINTS if e.method == "GET" and e.is_api and not e.params
               and e.name != "api.session.me" and allowed(POLICY.get(e.name, ""), _desk_user())]


@pytest.mark.parametrize("endpoint", DESK_ROUTES, ids=str)
def test_a_desk_sees_its_own_objects_only(endpoint: Endpoint, matrix: dict[str, Any]) -> None:
    ids: DemoIds = matrix["ids"]
    desk = matrix["clients"][_desk_user()]
    firm = matrix["clients"][ROLE_USERS["operations"]]
    own = desk.get(fill(endpoint, ids, "waw"), params=PERIOD)
    assert own.status_code == 200, f"{endpoint} own desk: {own.status_code} {own.text[:300]}"
    other_path = fill(endpoint, ids, "intl")
    other = desk.get(other_path, params=PERIOD)
    assert other.status_code == 404, (
        f"{other_path}: another desk's object must be 404, got {other.status_code} "
        f"{other.text[:300]}")
    if endpoint.is_api:
        assert other.json()["code"].startswith("unknown_"), other.json()
    # the same object exists: a firm-wide user sees it
    assert firm.get(other_path, params=PERIOD).status_code == 200
    house = fill(endpoint, ids, account=ids.house_account, trade_id=ids.house_trade)
    answer = desk.get(house, params=PERIOD)
    assert answer.status_code == 404, f"{house}: a house object for a desk user: " \
                                      f"{answer.status_code}"


@pytest.mark.parametrize("endpoint", FIRM_ROUTES, ids=str)
def test_firm_level_objects_are_seen_by_a_desk_user_with_the_role(
        endpoint: Endpoint, matrix: dict[str, Any]) -> None:
    """Settlement instructions, breaks, events, queue items, reports: roles alone decide."""
    username = _desk_user()
    if not allowed(POLICY[endpoint.name], username):
        pytest.skip(f"{username} may not use {endpoint.name}")
    unknown = set(endpoint.params) - {"reference", "event_id", "break_id", "key",
                                              "item_key", "isin", "name", "username"}
    if unknown:
        pytest.skip(f"no real id for {unknown}")
    path = fill(endpoint, matrix["ids"])
    answer = matrix["clients"][username].get(path, params=PERIOD)
    assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"


def _accounts_in(payload: Any) -> set[str]:
    """Every value of an ``account`` field anywhere in a JSON answer."""
    found: set[str] = set()
    if isinstance(payload, dict):
        for key, value in payload.items():
            if key == "account" and isinstance(value, str) and value:
                found.add(value)
            else:
                found |= _accounts_in(value)
    elif isinstance(payload, list):
        for value in payload:
            found |= _accounts_in(value)
    return found


@pytest.mark.parametrize("endpoint", LIST_ROUTES, ids=str)
def test_lists_keep_to_the_desk(endpoint: Endpoint, matrix: dict[str, Any]) -> None:
    username = _desk_user()
    answer = matrix["clients"][username].get(endpoint.path, params=PERIOD)
    assert answer.status_code < 500, answer.text[:300]
    if answer.status_code != 200 or "json" not in answer.headers.get("content-type", ""):
        return
    ids: DemoIds = matrix["ids"]
    seen = _accounts_in(answer.json())
    beyond = seen - ids.waw_accounts
    assert not beyond, f"{endpoint.path} shows {username} other desks' accounts: {sorted(beyond)}"


def test_the_desk_filter_is_real(matrix: dict[str, Any]) -> None:
    """The firm-wide user sees other desks' and house accounts where the desk user does not."""
    ids: DemoIds = matrix["ids"]
    firm = matrix["clients"][ROLE_USERS["operations"]]
    desk = matrix["clients"][_desk_user()]
    for path in ("/api/trades", "/api/positions", "/api/cash", "/api/reports/positions",
                 "/api/reports/cash", "/api/reports/realized", "/api/reports/dividends"):
        everything = firm.get(path, params=PERIOD)
        assert everything.status_code == 200, f"{path}: {everything.text[:300]}"
        firm_accounts = _accounts_in(everything.json())
        assert firm_accounts & ids.intl_accounts, f"{path}: the firm sees no INTL account"
        mine = desk.get(path, params=PERIOD)
        assert mine.status_code == 200, f"{path}: {mine.text[:300]}"
        desk_accounts = _accounts_in(mine.json())
        assert desk_accounts, f"{path}: the WAW desk sees nothing at all"
        assert desk_accounts <= ids.waw_accounts, (path, sorted(desk_accounts - ids.waw_accounts))


@pytest.mark.parametrize("name", ["positions", "cash", "realized", "dividends", "rejected",
                                  "valuation", "stock-record", "trial-balance", "obligations",
                                  "instructions", "fails", "penalties", "breaks",
                                  "corporate-actions", "cash-ladder"])
def test_reports_keep_to_the_desk(name: str, matrix: dict[str, Any]) -> None:
    ids: DemoIds = matrix["ids"]
    desk = matrix["clients"][_desk_user()]
    answer = desk.get(f"/api/reports/{name}", params=PERIOD)
    assert answer.status_code == 200, f"{name}: {answer.status_code} {answer.text[:300]}"
    beyond = _accounts_in(answer.json()) - ids.waw_accounts
    assert not beyond, f"report {name} shows the WAW desk {sorted(beyond)}"
    csv = desk.get(f"/api/reports/{name}", params={**PERIOD, "format": "csv"})
    assert csv.status_code == 200
    if "account" not in answer.json()["columns"]:
        return  # firm-level (the trial balance, the stock record, settlement): roles decide
    named = set(re.findall(r"\b[CH]\d{2,4}\b", csv.text)) & (ids.intl_accounts
                                                              | ids.house_accounts)
    assert not named, f"report {name} as CSV shows the WAW desk {sorted(named)}"
    other = desk.get(f"/api/reports/{name}", params={**PERIOD, "account": ids.intl_account})
    assert other.status_code in (404, 200), other.text[:300]
    if other.status_code == 200:
        assert not _accounts_in(other.json()) - ids.waw_accounts


def test_accounts_page_keeps_to_the_desk(matrix: dict[str, Any]) -> None:
    ids: DemoIds = matrix["ids"]
    page = matrix["clients"][_desk_user()].get("/accounts")
    assert page.status_code == 200
    shown = set(re.findall(r"\b[CH]\d{2,4}\b", page.text))
    assert shown, "the accounts page lists no account"
    assert shown <= ids.waw_accounts, sorted(shown - ids.waw_accounts)


def test_a_desk_cannot_book_or_cancel_for_another_desk(matrix: dict[str, Any]) -> None:
    ids: DemoIds = matrix["ids"]
    desk = matrix["clients"][_desk_user()]
    book = matrix["book"]
    trade = {"trade_id": "DESK-X-1", "account": ids.intl_account, "isin": ids.isin,
             "side": "BUY", "quantity": "1", "price": "50", "currency": "PLN",
             "trade_date": "2024-10-01"}
    answer = desk.post("/api/trades", json=trade)
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_account", answer.text
    answer = desk.post("/api/trades", json={**trade, "account": ids.house_account})
    assert answer.status_code == 404, answer.text
    with book.engine.connect() as connection:
        assert not connection.exec_driver_sql(
            "SELECT COUNT(*) FROM trades WHERE trade_id = 'DESK-X-1'").scalar()
    cancel = {"cancel_date": ids.last_day.isoformat()}
    answer = desk.post(f"/api/trades/{ids.intl_pending_trade}/cancel", json=cancel)
    assert answer.status_code == 404 and answer.json()["code"] == "unknown_trade", answer.text
    own = desk.post("/api/trades", json={**trade, "account": ids.waw_account})
    assert own.status_code == 201, own.text
    own_cancel = desk.post(f"/api/trades/{ids.waw_pending_trade}/cancel", json=cancel)
    assert own_cancel.status_code == 201, own_cancel.text
