"""Shared helpers for the workbench's tests: the demo book, logging in, a live server.

- The demo book (``zaplecze demo``: users for every role, desks WAW and INTL, breaks, announced
  and prepared corporate actions, failing settlements, a rejected row) is built once per
  database per test session (``sqlite_demo_template``, ``pg_demo_template``; ``demo_template``
  is parametrised over both), and each test or module gets a cheap copy of it (``demo_book``,
  ``demo_book_module``): the file copied on SQLite, ``CREATE DATABASE … TEMPLATE …`` on
  PostgreSQL.
- ``login(client, engine, username)`` logs a TestClient in with password and TOTP code (a code
  is accepted once per user per 90 s: ``fresh_code`` picks one that is not spent) and sets the
  ``X-CSRF-Token`` header for changes.
- ``live_server(app)`` runs the app under uvicorn on a free loopback port in a thread.

Use the fixtures from a test module with ``pytest_plugins = ("web_support",)``.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from conftest import REQUIRE_PG, _pg_url, pg_admin, postgres_unavailable

DEMO_SEED = 7
CSRF_HEADER = "X-CSRF-Token"
BASE_URL = "https://testserver"  # the session cookie is Secure: the TestClient must use https


def _staff() -> Any:
    from zaplecze.services import workbench_demo

    return workbench_demo


def demo_password() -> str:
    return str(_staff().DEMO_PASSWORD)


def role_users() -> dict[str, str]:
    """One demo user per role (the first of STAFF with it; ops1 for operations), plus the
    Warsaw desk's operations user under the pseudo-role ``desk:WAW``."""
    users: dict[str, str] = {}
    for member in _staff().STAFF:
        if member.desk:
            users.setdefault(f"desk:{member.desk}", member.username)
        else:
            users.setdefault(member.role, member.username)
    return users


def user_roles() -> dict[str, str]:
    """username -> role, for every demo user."""
    return {member.username: member.role for member in _staff().STAFF}


@dataclass(frozen=True)
class DemoIds:
    """Real objects of the demo book, to fill path parameters and to check desk scoping."""

    last_day: dt.date
    waw_accounts: frozenset[str]
    intl_accounts: frozenset[str]
    house_accounts: frozenset[str]
    waw_account: str
    intl_account: str
    house_account: str
    waw_trade: str
    intl_trade: str
    house_trade: str
    waw_pending_trade: str  # not settled nor due by last_day: may be cancelled
    intl_pending_trade: str
    isin: str
    break_id: str
    break_key: str
    fail_reference: str  # a settlement instruction failing at last_day
    fail_key: str
    rejected_key: str
    ca_key: str
    instruction: str  # any settlement instruction's reference
    open_event: str  # announced, to prepare
    prepared_event: str  # prepared by ops1, awaiting approval
    event_isin: str


@dataclass(frozen=True)
class DemoTemplate:
    kind: str  # sqlite | postgresql
    url: str
    database: str  # the file (SQLite) or the database name (PostgreSQL)
    folder: Path
    ids: DemoIds


def _read_ids(engine: Any) -> DemoIds:
    from zaplecze.services import exception_queue, trade_desk
    from zaplecze.store.db import read_connection

    with read_connection(engine) as connection:
        def column(sql: str, *params: Any) -> list[Any]:
            return [row[0] for row in connection.exec_driver_sql(sql, params or ())]

        last = dt.date.fromisoformat(column("SELECT MAX(business_date) FROM eod_runs")[0])
        desks: dict[str, set[str]] = {}
        for account, desk in connection.exec_driver_sql(
                "SELECT account, desk FROM account_desks"):
            desks.setdefault(desk, set()).add(account)
        house = column("SELECT account FROM accounts WHERE kind = 'HOUSE' ORDER BY account")
        rows = connection.exec_driver_sql(
            "SELECT trade_id, account, settlement_date FROM trades ORDER BY sequence").all()
        trades = [(trade_id, account) for trade_id, account, _ in rows]
        statuses = trade_desk.statuses(connection, [t for t, _ in trades])
        # not settled, and not due yet: a trade the desk may still cancel
        open_trades = {t for t, _, due in rows if due > last.isoformat()}
        items = exception_queue.items(connection, last)
        instruction = column("SELECT reference FROM settlement_instructions "
                             "ORDER BY sequence LIMIT 1")[0]

    def first(accounts: set[str], pending: bool = False) -> str:
        for trade_id, account in trades:
            if account in accounts and (not pending or (statuses[trade_id] == "pending"
                                                        and trade_id in open_trades)):
                return str(trade_id)
        raise AssertionError(f"the demo book has no {'pending ' if pending else ''}trade "
                             f"of {sorted(accounts)[:3]}…")

    waw, intl = desks["WAW"], desks["INTL"]
    by_kind: dict[str, str] = {}
    for item in items:
        by_kind.setdefault(item.kind, item.key)
    missing = {"fail", "break", "rejected", "ca"} - set(by_kind)
    assert not missing, f"the demo's exception queue lacks items of kind {missing}"
    waw_trade, intl_trade = first(waw), first(intl)
    account_of = dict(trades)
    return DemoIds(
        last_day=last, waw_accounts=frozenset(waw), intl_accounts=frozenset(intl),
        house_accounts=frozenset(house), waw_account=str(account_of[waw_trade]),
        intl_account=str(account_of[intl_trade]), house_account=house[0],
        waw_trade=waw_trade, intl_trade=intl_trade, house_trade=first(set(house)),
        waw_pending_trade=first(waw, pending=True), intl_pending_trade=first(intl, pending=True),
        isin=_staff().PKO,
        break_id=by_kind["break"].partition(":")[2], break_key=by_kind["break"],
        fail_reference=by_kind["fail"].partition(":")[2], fail_key=by_kind["fail"],
        rejected_key=by_kind["rejected"], ca_key=by_kind["ca"], instruction=str(instruction),
        open_event="PKO-DVCA-DEMO-1", prepared_event="PKO-DVCA-DEMO-2", event_isin=_staff().PKO)


def _run_demo(url: str | None, folder: Path) -> None:
    """``zaplecze demo`` into ``url``, quietly; every engine it opened is disposed."""
    from rich.console import Console

    from zaplecze import bootstrap
    from zaplecze.services import demo

    engines: list[Any] = []

    def open_book(*given: Any, **options: Any) -> Any:
        book = bootstrap.open_book(*given, **options)
        engines.append(book.engine)
        return book

    quiet = io.StringIO()
    with ExitStack() as stack:
        stack.enter_context(redirect_stdout(quiet))
        stack.enter_context(mock.patch.object(demo, "Console", lambda **_: Console(file=quiet)))
        demo.run_demo(url, folder, DEMO_SEED, Console(file=quiet), Console(file=quiet),
                      open_book)
    for engine in engines:
        engine.dispose()


def build_template(kind: str, workdir: Path) -> DemoTemplate:
    """The demo book on ``kind`` (sqlite or postgresql), with its ids read."""
    from zaplecze.bootstrap import open_book

    folder = workdir / f"demo-{kind}"
    if kind == "sqlite":
        database = str((folder / "book.db").resolve())
        url = f"sqlite:///{database}"
        _run_demo(None, folder)  # the demo's own file in the folder
    else:
        database = f"zaplecze_demo_tpl_{uuid.uuid4().hex[:10]}"
        pg_admin(f"CREATE DATABASE {database}")
        url = _pg_url(database)
        try:
            _run_demo(url, folder)
        except BaseException:
            pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            raise
    book = open_book(url)
    try:
        ids = _read_ids(book.engine)
    except BaseException:
        if kind != "sqlite":
            book.engine.dispose()
            pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        raise
    finally:
        book.engine.dispose()
    return DemoTemplate(kind, url, database, folder, ids)


def _require_pg() -> None:
    reason = postgres_unavailable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here (ZAPLECZE_REQUIRE_PG=1): {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_demo_template(tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    return build_template("sqlite", tmp_path_factory.mktemp("demo-template"))


@pytest.fixture(scope="session")
def pg_demo_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoTemplate]:
    _require_pg()
    template = build_template("postgresql", tmp_path_factory.mktemp("demo-template"))
    try:
        yield template
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {template.database} WITH (FORCE)")


@pytest.fixture(scope="session",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_template(request: pytest.FixtureRequest) -> DemoTemplate:
    """The demo book, built once per database per session (do not change it: copy it)."""
    name = "sqlite_demo_template" if request.param == "sqlite" else "pg_demo_template"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@contextmanager
def book_copy(template: DemoTemplate, workdir: Path) -> Iterator[Any]:
    """A ``Book`` on a fresh copy of the template, disposed (and dropped) afterwards."""
    from zaplecze.bootstrap import open_book

    name = ""
    if template.kind == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        target = workdir / f"book-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template.database, target)
        for suffix in ("-wal", "-shm"):
            extra = Path(template.database + suffix)
            if extra.exists():
                shutil.copyfile(extra, str(target) + suffix)
        url = f"sqlite:///{target}"
    else:
        name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE DATABASE {name} TEMPLATE {template.database}")
        url = _pg_url(name)
    book = open_book(url)
    try:
        yield book
    finally:
        book.engine.dispose()
        if name:
            pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def demo_book(demo_template: DemoTemplate, tmp_path: Path) -> Iterator[Any]:
    """A fresh copy of the demo book for one test (both databases)."""
    with book_copy(demo_template, tmp_path) as book:
        yield book


@pytest.fixture(scope="module")
def demo_book_module(demo_template: DemoTemplate,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One copy of the demo book shared by a module's tests (both databases)."""
    with book_copy(demo_template, tmp_path_factory.mktemp("demo-copy")) as book:
        yield book


@pytest.fixture
def sqlite_demo_book(sqlite_demo_template: DemoTemplate, tmp_path: Path) -> Iterator[Any]:
    with book_copy(sqlite_demo_template, tmp_path) as book:
        yield book


# --- clients and logging in ----------------------------------------------------------------

def web_app(book: Any, settings: Any = None) -> Any:
    from zaplecze.interfaces.web.app import create_app

    return create_app(book, settings)


def client_for(app: Any) -> Any:
    """A TestClient that answers a server error with a 500 response (to assert on), not an
    exception, and does not follow redirects (to see them)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=BASE_URL, raise_server_exceptions=False,
                      follow_redirects=False)


def fresh_code(engine: Any, username: str, now: dt.datetime | None = None) -> str:
    """A TOTP code the server will accept now: the current step's, unless a login within the
    last 90 s spent it (then the next step's, which is valid too)."""
    import pyotp

    from zaplecze.services import identity
    from zaplecze.store.db import read_connection

    moment = now or dt.datetime.now(dt.UTC)
    with read_connection(engine) as connection:
        user = identity.get_user(connection, username)
        m = "%s" if connection.dialect.name == "postgresql" else "?"
        last = connection.exec_driver_sql(
            f"SELECT MAX(at) FROM login_attempts WHERE username = {m} AND succeeded = 1",
            (username,)).scalar()
    assert user is not None, f"no user {username}"
    totp = pyotp.TOTP(user.totp_secret)
    spent = totp.at(dt.datetime.fromisoformat(last)) if last else ""
    for step in (0, 1, -1):
        code = totp.at(moment + dt.timedelta(seconds=30 * step))
        if code != spent:
            return str(code)
    raise AssertionError("no TOTP code is fresh")  # unreachable: three steps, one spent


def login(client: Any, engine: Any, username: str, password: str | None = None,
          now: dt.datetime | None = None) -> dict[str, Any]:
    """Log ``client`` in as ``username``; sets the CSRF header; the ``/api/session`` answer."""
    answer = client.post("/api/session", json={
        "username": username, "password": password or demo_password(),
        "code": fresh_code(engine, username, now)})
    assert answer.status_code == 200, f"login of {username}: {answer.status_code} {answer.text}"
    me: dict[str, Any] = answer.json()
    client.headers[CSRF_HEADER] = me["csrf_token"]
    return me


def logged_in(app: Any, engine: Any, username: str) -> Any:
    client = client_for(app)
    login(client, engine, username)
    return client


def api_token(engine: Any, username: str, scopes: tuple[str, ...] = (), days: int = 7) -> str:
    from zaplecze.services import identity
    from zaplecze.services.audit_trail import Actor

    return str(identity.issue_token(engine, Actor("test", "test"), username, list(scopes), days))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the route table -----------------------------------------------------------------------

def route_contexts(app: Any) -> list[Any]:
    """Every route of the app, included routers flattened (FastAPI 0.16x keeps them lazy in
    ``app.routes``); each has ``name``, ``path``, ``methods`` (and ``original_route``)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI: app.routes is flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def route_names(app: Any) -> dict[tuple[str, str], str]:
    """(method, path) -> route name."""
    return {(method, context.path): context.name for context in route_contexts(app)
            for method in (getattr(context, "methods", None) or ())}


# --- a live server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: Any, wait: float = 20) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + wait
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class FakeClock:
    """A clock for WebSettings(clock=…) that tests move."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def retry_until(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()
