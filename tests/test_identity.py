"""Staff identity, sessions, tokens, the audit trail's chain and four-eyes (services/identity.py,
audit_trail.py, four_eyes.py), on SQLite and PostgreSQL; sessions also through the web app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher, extract_parameters, profiles
from sqlalchemy import exc

from zaplecze.bootstrap import open_book
from zaplecze.kernel.problems import BookError
from zaplecze.services import audit_trail, four_eyes, identity
from zaplecze.services.audit_trail import Actor
from zaplecze.store.db import read_connection

pytest.register_assert_rewrite("web_support")
from web_support import CSRF_HEADER, FakeClock, bearer, client_for  # noqa: E402

ADMIN = Actor("admin", "test")
PASSWORD = "correct horse battery"
T0 = dt.datetime(2024, 10, 1, 9, 0, 0, tzinfo=dt.UTC)


# Password hashing at full strength takes a good part of a second on a busy machine; the tests
# of throttling and sessions hash and verify dozens of times, so they use a cheap argon2id.
# The strength of real hashes is checked by the test named here.
REAL_HASHING = {"test_passwords_are_stored_as_argon2id"}


@pytest.fixture(autouse=True)
def cheap_argon2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.function.__name__ in REAL_HASHING:
        return
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(identity, "_hasher", cheap)
    monkeypatch.setattr(identity, "_DUMMY_HASH", cheap.hash("a password nobody has"))


@pytest.fixture
def book(book_url: str) -> Iterator[Any]:
    opened = open_book(book_url, create=True)
    try:
        yield opened
    finally:
        opened.engine.dispose()


def add(book: Any, username: str, roles: list[str], desk: str = "") -> identity.User:
    return identity.add_user(book.engine, ADMIN, username, PASSWORD, roles, desk=desk)


def code_at(user: identity.User, moment: dt.datetime, steps: int = 0) -> str:
    return pyotp.TOTP(user.totp_secret).at(moment + dt.timedelta(seconds=30 * steps))


def log_in(book: Any, user: identity.User, moment: dt.datetime, steps: int = 0,
           password: str = PASSWORD, address: str = "10.0.0.1") -> identity.Login:
    return identity.log_in(book.engine, user.username, password, code_at(user, moment, steps),
                           address, moment)


# --- passwords ------------------------------------------------------------------------------

def test_password_rules() -> None:
    assert identity.password_problems("Tr0ub4d&3x") == []
    assert any("at least 8" in p for p in identity.password_problems("k7#Qz"))
    assert any("breached" in p for p in identity.password_problems("password1"))
    assert any("breached" in p for p in identity.password_problems("iloveyou"))
    assert any("user name" in p for p in identity.password_problems("Quartz.Falcon",
                                                                     "quartz.falcon"))
    assert any("at most" in p for p in identity.password_problems("x" * 257))
    # no composition rules: a long passphrase of lowercase words is fine
    assert identity.password_problems("quartz falcon umbrella") == []


def test_weak_passwords_are_refused_at_add_user(book: Any) -> None:
    for password, words in (("short1!", "at least 8"), ("qwertyuiop", "breached"),
                            ("quartz.falcon", "user name")):
        with pytest.raises(BookError, match=f"weak_password: .*{words}"):
            identity.add_user(book.engine, ADMIN, "quartz.falcon", password, ["auditor"])
    with read_connection(book.engine) as connection:
        assert identity.get_user(connection, "quartz.falcon") is None
    with pytest.raises(BookError, match="unknown_role"):
        identity.add_user(book.engine, ADMIN, "quartz.falcon", PASSWORD, ["wizard"])
    with pytest.raises(BookError, match="invalid_username"):
        identity.add_user(book.engine, ADMIN, "bad name!", PASSWORD, ["auditor"])


def test_passwords_are_stored_as_argon2id(book: Any) -> None:
    add(book, "alice", ["operations"])
    with read_connection(book.engine) as connection:
        stored = connection.exec_driver_sql(
            "SELECT password_hash FROM users WHERE username = 'alice'").scalar()
    assert stored.startswith("$argon2id$")
    assert extract_parameters(stored) == profiles.RFC_9106_LOW_MEMORY
    assert PASSWORD not in stored
    assert identity.password_matches(stored, PASSWORD)
    assert not identity.password_matches(stored, PASSWORD + "x")
    assert not identity.password_matches("not a hash", PASSWORD)
    with pytest.raises(BookError, match="user_exists"):
        add(book, "alice", ["auditor"])


# --- TOTP -----------------------------------------------------------------------------------

def test_totp_one_step_of_drift_either_way_and_no_more(book: Any) -> None:
    alice = add(book, "alice", ["operations"])
    assert log_in(book, alice, T0, steps=-1).token
    assert log_in(book, alice, T0 + dt.timedelta(minutes=5), steps=1).token
    assert log_in(book, alice, T0 + dt.timedelta(minutes=10), steps=-3).refused == "invalid"
    assert log_in(book, alice, T0 + dt.timedelta(minutes=15), steps=3).refused == "invalid"
    assert log_in(book, alice, T0 + dt.timedelta(minutes=20), password="wrong " + PASSWORD
                  ).refused == "invalid"


def test_a_totp_code_is_accepted_once(book: Any) -> None:
    alice = add(book, "alice", ["operations"])
    first = log_in(book, alice, T0)
    assert first.token and first.user is not None and first.user.username == "alice"
    again = log_in(book, alice, T0 + dt.timedelta(seconds=5))  # the same step's code
    assert again.refused == "invalid" and not again.token
    # the next step's code is a different code: accepted
    assert log_in(book, alice, T0 + dt.timedelta(seconds=10), steps=1).token
    # long after, the code of a later step is fresh again
    assert log_in(book, alice, T0 + dt.timedelta(minutes=10)).token


# --- throttling -----------------------------------------------------------------------------

def test_login_is_throttled_after_five_failures(book: Any) -> None:
    alice = add(book, "alice", ["operations"])
    for second in range(identity.FAILURES_PER_USER):
        moment = T0 + dt.timedelta(seconds=second)
        assert log_in(book, alice, moment, password="nope nope").refused == "invalid"
    # the right password and code are no longer even checked
    assert log_in(book, alice, T0 + dt.timedelta(minutes=1)).refused == "throttled"
    # another user is not throttled by alice's failures
    bob = add(book, "bob", ["auditor"])
    assert log_in(book, bob, T0 + dt.timedelta(minutes=1), address="10.0.0.2").token
    # once the window has passed
    assert log_in(book, alice, T0 + dt.timedelta(minutes=16)).token


def test_login_is_throttled_per_address(book: Any) -> None:
    users = [add(book, f"user{n}", ["auditor"]) for n in range(2)]
    for n in range(identity.FAILURES_PER_ADDRESS):
        identity.log_in(book.engine, f"nobody{n}", "guess guess", "000000", "10.9.9.9",
                        T0 + dt.timedelta(seconds=n))
    later = T0 + dt.timedelta(minutes=1)
    assert log_in(book, users[0], later, address="10.9.9.9").refused == "throttled"
    assert log_in(book, users[1], later, address="10.9.9.10").token


def test_login_through_the_api_is_throttled_with_429(book: Any) -> None:
    from zaplecze.interfaces.web.app import create_app

    alice = add(book, "alice", ["operations"])
    client = client_for(create_app(book))
    for _ in range(identity.FAILURES_PER_USER):
        answer = client.post("/api/session", json={"username": "alice", "password": "nope nope",
                                                    "code": "123456"})
        assert answer.status_code == 401
        assert answer.json()["code"] == "invalid_credentials"
    answer = client.post("/api/session", json={
        "username": "alice", "password": PASSWORD,
        "code": code_at(alice, dt.datetime.now(dt.UTC))})
    assert answer.status_code == 429, answer.text
    assert answer.json()["code"] == "login_throttled"
    assert "zaplecze_session" not in client.cookies


# --- sessions -------------------------------------------------------------------------------

def test_session_idle_and_absolute_timeouts(book: Any) -> None:
    alice = add(book, "alice", ["operations"])
    idle, absolute = dt.timedelta(minutes=30), dt.timedelta(hours=12)
    token = log_in(book, alice, T0).token
    assert identity.session(book.engine, token, T0 + dt.timedelta(minutes=29), idle, absolute)
    # touched at +29 min: alive at +58 min, not at +90 min
    assert identity.session(book.engine, token, T0 + dt.timedelta(minutes=58), idle, absolute)
    assert identity.session(book.engine, token, T0 + dt.timedelta(minutes=90), idle,
                            absolute) is None
    # ended for good: an earlier moment does not revive it
    assert identity.session(book.engine, token, T0 + dt.timedelta(minutes=59), idle,
                            absolute) is None

    busy = log_in(book, alice, T0 + dt.timedelta(hours=1)).token
    moment = T0 + dt.timedelta(hours=1)
    while moment < T0 + dt.timedelta(hours=14):
        moment += dt.timedelta(minutes=20)
        alive = identity.session(book.engine, busy, moment, idle, absolute)
        if moment - (T0 + dt.timedelta(hours=1)) <= absolute:
            assert alive, f"the session died early, at {moment}"
        else:
            assert alive is None, f"the session outlived the absolute timeout: {moment}"
            break
    else:
        pytest.fail("the absolute timeout was never reached")
    with read_connection(book.engine) as connection:
        actions = [row[0] for row in connection.exec_driver_sql(
            "SELECT action FROM audit_trail ORDER BY seq")]
    assert actions.count("session.timeout") == 2


def test_session_timeout_through_the_web_app(book: Any) -> None:
    from zaplecze.interfaces.web.app import create_app
    from zaplecze.interfaces.web.settings import WebSettings

    alice = add(book, "alice", ["operations"])
    clock = FakeClock(dt.datetime.now(dt.UTC))
    app = create_app(book, WebSettings(idle_timeout=dt.timedelta(minutes=5), clock=clock))
    client = client_for(app)
    answer = client.post("/api/session", json={"username": "alice", "password": PASSWORD,
                                                "code": code_at(alice, clock.now)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["permissions"] == sorted(alice.permissions)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    clock.advance(minutes=4)
    assert client.get("/api/session").status_code == 200
    clock.advance(minutes=4)  # 4 min after the last use: still alive
    assert client.get("/api/session").status_code == 200
    clock.advance(minutes=6)
    answer = client.get("/api/session")
    assert answer.status_code == 401
    assert answer.json()["code"] == "not_logged_in"


def test_logout_ends_the_session_on_the_server(book: Any) -> None:
    from zaplecze.interfaces.web.app import create_app

    alice = add(book, "alice", ["operations"])
    client = client_for(create_app(book))
    answer = client.post("/api/session", json={
        "username": "alice", "password": PASSWORD,
        "code": code_at(alice, dt.datetime.now(dt.UTC))})
    assert answer.status_code == 200
    csrf = answer.json()["csrf_token"]
    token = client.cookies["zaplecze_session"]
    # a change without the CSRF header is refused, and does not log out
    assert client.delete("/api/session").status_code == 403
    assert client.get("/api/session").status_code == 200
    assert client.delete("/api/session", headers={CSRF_HEADER: csrf}).status_code == 204
    assert identity.session(book.engine, token) is None
    # the old cookie, replayed, is refused
    replay = client_for(create_app(book))
    replay.cookies.set("zaplecze_session", token)
    assert replay.get("/api/session").status_code == 401
    with read_connection(book.engine) as connection:
        ended = connection.exec_driver_sql("SELECT ended_at FROM web_sessions").scalar()
    assert ended


def test_an_unknown_cookie_is_not_logged_in(book: Any) -> None:
    from zaplecze.interfaces.web.app import create_app

    client = client_for(create_app(book))
    client.cookies.set("zaplecze_session", "made-up")
    assert client.get("/api/session").status_code == 401
    assert identity.session(book.engine, "") is None


# --- API tokens -----------------------------------------------------------------------------

def test_token_scopes_cannot_exceed_roles(book: Any) -> None:
    add(book, "front", ["front_office"])
    with pytest.raises(BookError, match="scope_beyond_roles: trades:read"):
        identity.issue_token(book.engine, ADMIN, "front", ["positions:read", "trades:read"])
    with pytest.raises(BookError, match="unknown_user"):
        identity.issue_token(book.engine, ADMIN, "nobody", [])
    for days in (0, identity.TOKEN_DAYS_MAX + 1):
        with pytest.raises(BookError, match="invalid_token_lifetime"):
            identity.issue_token(book.engine, ADMIN, "front", [], days)
    token = identity.issue_token(book.engine, ADMIN, "front", ["positions:read"])
    assert token.startswith("zpl_")
    found = identity.token_user(book.engine, token)
    assert found is not None
    user, scopes = found
    assert user.username == "front" and scopes == frozenset({"positions:read"})
    everything = identity.token_user(book.engine, identity.issue_token(
        book.engine, ADMIN, "front", []))
    assert everything is not None and everything[1] == identity.User(
        "front", "", ("front_office",), "", True, "").permissions
    with read_connection(book.engine) as connection:
        stored = [row[0] for row in connection.exec_driver_sql(
            "SELECT token_hash FROM api_tokens")]
    assert token not in stored  # only its hash is kept


def test_token_expires_and_follows_role_changes(book: Any) -> None:
    add(book, "ops", ["operations"])
    token = identity.issue_token(book.engine, ADMIN, "ops", ["trades:read", "positions:read"],
                                 days=7)
    now = dt.datetime.now(dt.UTC)
    assert identity.token_user(book.engine, token, now + dt.timedelta(days=6)) is not None
    assert identity.token_user(book.engine, token, now + dt.timedelta(days=7, minutes=1)) is None
    assert identity.token_user(book.engine, token + "x") is None
    # the user loses the operations role: the token loses what the roles no longer allow
    from zaplecze.store.db import with_retries

    with_retries(book.engine, lambda c: identity.set_roles(c, ADMIN, "ops", ["front_office"]))
    found = identity.token_user(book.engine, token)
    assert found is not None and found[1] == frozenset({"positions:read"})


def test_token_scopes_are_enforced_by_the_api(book: Any) -> None:
    from zaplecze.interfaces.web.app import create_app

    add(book, "ops", ["operations"])
    client = client_for(create_app(book))
    narrow = identity.issue_token(book.engine, ADMIN, "ops", ["positions:read"])
    wide = identity.issue_token(book.engine, ADMIN, "ops", [])
    answer = client.get("/api/trades", headers=bearer(narrow))
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert client.get("/api/trades", headers=bearer(wide)).status_code == 200
    answer = client.get("/api/trades", headers=bearer("zpl_0000_made-up"))
    assert answer.status_code == 401
    assert client.get("/api/trades").status_code == 401
    # a token cannot mint another token
    answer = client.post("/api/tokens", json={}, headers=bearer(wide))
    assert answer.status_code == 403


# --- the audit trail's chain ----------------------------------------------------------------

def _bypass_append_only(connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET session_replication_role = replica")
    else:
        for verb in ("update", "delete", "replace"):
            connection.exec_driver_sql(f"DROP TRIGGER audit_trail_append_only_{verb}")


def test_audit_trail_is_append_only(book: Any) -> None:
    add(book, "alice", ["operations"])
    for sql in ("UPDATE audit_trail SET actor = 'mallory'", "DELETE FROM audit_trail"):
        with pytest.raises(exc.DatabaseError), book.engine.begin() as connection:
            connection.exec_driver_sql(sql)
    assert audit_trail.verify(book.engine).problems == []


def test_audit_trail_chain_verifies_and_finds_a_changed_record(book: Any) -> None:
    for name in ("alice", "bob", "carol"):
        add(book, name, ["auditor"])
    check = audit_trail.verify(book.engine)
    assert check.records == 3 and check.problems == []
    with read_connection(book.engine) as connection:
        rows, total = audit_trail.page(connection, limit=10, offset=0, descending=False)
    assert total == 3 and [r["object_id"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[0]["actor"] == "admin" and rows[0]["action"] == "user.add"
    assert rows[1]["after"]["roles"] == ["auditor"]

    with book.engine.begin() as connection:
        _bypass_append_only(connection)
        connection.exec_driver_sql(
            "UPDATE audit_trail SET after = '{\"roles\":[\"administrator\"]}' WHERE seq = 2")
    problems = audit_trail.verify(book.engine).problems
    assert problems == ["audit trail record 2 does not match its hash"]


def test_audit_trail_chain_finds_a_deleted_record(book: Any) -> None:
    for name in ("alice", "bob", "carol"):
        add(book, name, ["auditor"])
    with book.engine.begin() as connection:
        _bypass_append_only(connection)
        connection.exec_driver_sql("DELETE FROM audit_trail WHERE seq = 2")
    problems = audit_trail.verify(book.engine).problems
    assert any("record 2 is missing" in p for p in problems)
    assert any("record 3 does not match" in p for p in problems)


# --- four-eyes ------------------------------------------------------------------------------

def test_four_eyes_maker_cannot_decide_and_the_hash_binds(book: Any) -> None:
    for name in ("maker", "checker"):
        add(book, name, ["administrator"])
    add(book, "bob", ["auditor"])
    maker, checker = Actor("maker", "10.0.0.1"), Actor("checker", "10.0.0.2")
    payload = {"username": "bob", "roles": ["compliance"]}
    made = four_eyes.request(book.engine, maker, "user.roles", "bob", payload)
    assert made.status == "pending" and made.payload_hash == four_eyes.payload_hash(payload)

    with pytest.raises(BookError, match="four_eyes_required"):
        four_eyes.decide(book.engine, maker, made.request_id, True, made.payload_hash)
    other = four_eyes.payload_hash({"username": "bob", "roles": ["administrator"]})
    with pytest.raises(BookError, match="payload_changed"):
        four_eyes.decide(book.engine, checker, made.request_id, True, other)
    with pytest.raises(BookError, match="unknown_request"):
        four_eyes.decide(book.engine, checker, "0000", True, made.payload_hash)
    with read_connection(book.engine) as connection:
        bob = identity.get_user(connection, "bob")
    assert bob is not None and bob.roles == ("auditor",)  # nothing applied yet

    done = four_eyes.decide(book.engine, checker, made.request_id, True, made.payload_hash)
    assert done.status == "approved" and done.checker == "checker"
    with read_connection(book.engine) as connection:
        bob = identity.get_user(connection, "bob")
        actions = [row[0] for row in connection.exec_driver_sql(
            "SELECT action FROM audit_trail ORDER BY seq")]
    assert bob is not None and bob.roles == ("compliance",)
    assert actions[-3:] == ["approval.request", "approval.approved", "user.roles"]
    with pytest.raises(BookError, match="request_already_decided"):
        four_eyes.decide(book.engine, checker, made.request_id, False, made.payload_hash)
    assert audit_trail.verify(book.engine).problems == []


def test_four_eyes_rejection_applies_nothing(book: Any) -> None:
    for name in ("maker", "checker"):
        add(book, name, ["administrator"])
    add(book, "bob", ["auditor"])
    made = four_eyes.request(book.engine, Actor("maker"), "user.roles", "bob",
                             {"username": "bob", "roles": ["operations"]})
    done = four_eyes.decide(book.engine, Actor("checker"), made.request_id, False,
                            made.payload_hash)
    assert done.status == "rejected"
    with read_connection(book.engine) as connection:
        bob = identity.get_user(connection, "bob")
    assert bob is not None and bob.roles == ("auditor",)
    with pytest.raises(BookError, match="unknown_role"):
        four_eyes.request(book.engine, Actor("maker"), "user.roles", "bob",
                          {"username": "bob", "roles": ["wizard"]})
    with pytest.raises(BookError, match="unknown_user"):
        four_eyes.request(book.engine, Actor("maker"), "user.roles", "zed",
                          {"username": "zed", "roles": ["auditor"]})
    with pytest.raises(BookError, match="unknown_action"):
        four_eyes.request(book.engine, Actor("maker"), "user.delete", "bob", {})


# --- desks ----------------------------------------------------------------------------------

def test_desk_accounts(book: Any, golden_folder: Any) -> None:
    from zaplecze.services.load import Loader

    Loader(book.engine, book.calendar()).load(golden_folder)
    with read_connection(book.engine) as connection:
        clients = [row[0] for row in connection.exec_driver_sql(
            "SELECT account FROM accounts WHERE kind = 'CLIENT' ORDER BY account")]
    assert len(clients) >= 2
    assert identity.assign_desk(book.engine, ADMIN, "WAW", clients[:1]) == 1
    with pytest.raises(BookError, match="unknown_account"):
        identity.assign_desk(book.engine, ADMIN, "WAW", ["NOPE"])
    with read_connection(book.engine) as connection:
        assert identity.desk_accounts(connection, "WAW") == frozenset(clients[:1])
        assert identity.desk_accounts(connection, "") is None
        assert identity.desk_accounts(connection, "INTL") == frozenset()
