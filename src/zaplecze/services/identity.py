"""Staff users, their passwords and second factors, web sessions, API tokens, desks.

- Passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile);
  NIST SP 800-63B rules: at least 8 characters (every staff user also has a second factor), up to
  256, any characters, no composition rules, refused when found in a list of breached passwords
  (the 30,000 most common of the zxcvbn corpus) or equal to the user name.
- Second factor: TOTP (RFC 6238, 30 s, six digits), one step of clock drift either way; a code
  is accepted once only.
- Sessions: a random 256-bit token in the cookie, its SHA-256 in the database; an idle and an
  absolute timeout; a new token at every login; logout ends it on the server.
- Login throttling: after 5 failures for a user name, or 20 from one address, in 15 minutes,
  further attempts are refused without checking the password.
- API tokens: ``zpl_<id>_<secret>``, scoped to a subset of the user's permissions, expiring.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine

from zaplecze.kernel.problems import BookError
from zaplecze.services import access
from zaplecze.services.audit_trail import Actor, record
from zaplecze.store import schema
from zaplecze.store.db import read_connection, with_retries

PASSWORD_MIN = 8
PASSWORD_MAX = 256
FAILURES_PER_USER = 5
FAILURES_PER_ADDRESS = 20
THROTTLE_WINDOW = dt.timedelta(minutes=15)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)
TOKEN_DAYS_MAX = 365
_LAST_SEEN_GRANULARITY = dt.timedelta(seconds=15)  # how often a session's use is written

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("a password nobody has")


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    roles: tuple[str, ...]
    desk: str  # "" = every desk
    active: bool
    totp_secret: str

    @property
    def permissions(self) -> frozenset[str]:
        return access.permissions_of(self.roles)


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@lru_cache(maxsize=1)
def _breached() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, username: str = "") -> list[str]:
    """What is wrong with a new password, in words for the person choosing it."""
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"at least {PASSWORD_MIN} characters, please")
    if len(password) > PASSWORD_MAX:
        problems.append(f"at most {PASSWORD_MAX} characters, please")
    if password.lower() in _breached():
        problems.append("this password is in a list of breached passwords; choose another")
    if username and password.lower() == username.lower():
        problems.append("the password must not be the user name")
    return problems


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def totp_code(secret: str, at: dt.datetime | None = None) -> str:
    """The current code (the demo prints it; tests log in with it)."""
    return pyotp.TOTP(secret).at(at or dt.datetime.now(dt.UTC))


def totp_uri(user: User, issuer: str = "Zaplecze") -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


def _row_user(row: object) -> User:
    values = row._mapping  # type: ignore[attr-defined]
    return User(values["username"], values["display_name"],
                tuple(r for r in values["roles"].split(",") if r), values["desk"],
                bool(values["active"]), values["totp_secret"])


def get_user(connection: Connection, username: str) -> User | None:
    row = connection.execute(schema.users.select().where(
        schema.users.c.username == username)).first()
    return _row_user(row) if row is not None else None


def list_users(connection: Connection) -> list[User]:
    return [_row_user(row) for row in connection.execute(
        schema.users.select().order_by(schema.users.c.username))]


def add_user(engine: Engine, actor: Actor, username: str, password: str, roles: list[str],
             desk: str = "", display_name: str = "", totp_secret: str | None = None) -> User:
    """Create a staff user with a new TOTP secret; a clear ``BookError`` for a bad request."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace(
            "-", "").replace("_", "").isalnum():
        raise BookError("invalid_username: letters, digits, '.', '-' and '_', up to 64")
    problems = password_problems(password, username)
    if problems:
        raise BookError("weak_password: " + "; ".join(problems))
    unknown = access.unknown_roles(roles)
    if unknown or not roles:
        raise BookError(f"unknown_role: {', '.join(unknown) or '(none given)'}; roles are "
                        f"{', '.join(access.ROLE_NAMES)}")
    user = User(username, display_name or username, tuple(roles), desk, True,
                totp_secret or pyotp.random_base32())

    def work(connection: Connection) -> User:
        if get_user(connection, username) is not None:
            raise BookError(f"user_exists: {username}")
        connection.execute(schema.users.insert(), [{
            "username": username, "display_name": user.display_name,
            "password_hash": hash_password(password), "totp_secret": user.totp_secret,
            "roles": ",".join(roles), "desk": desk, "active": 1,
            "created_at": _stamp(dt.datetime.now(dt.UTC))}])
        record(connection, actor, "user.add", "user", username, None,
               {"roles": list(roles), "desk": desk, "display_name": user.display_name})
        return user

    return with_retries(engine, work)


def set_roles(connection: Connection, actor: Actor, username: str, roles: list[str]) -> None:
    """Change a user's roles (called once four-eyes has approved it)."""
    before = get_user(connection, username)
    if before is None:
        raise BookError(f"unknown_user: {username}")
    connection.execute(schema.users.update().where(schema.users.c.username == username)
                       .values(roles=",".join(roles)))
    record(connection, actor, "user.roles", "user", username, {"roles": list(before.roles)},
           {"roles": list(roles)})


# --- logging in ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Login:
    """The outcome of a login: a session token, or why not (``throttled`` or ``invalid``)."""

    token: str = ""
    user: User | None = None
    refused: str = ""


def _throttled(connection: Connection, username: str, address: str,
               now: dt.datetime) -> bool:
    since = _stamp(now - THROTTLE_WINDOW)
    t = schema.login_attempts
    from sqlalchemy import func, select

    by_user = connection.execute(select(func.count()).where(
        t.c.username == username, t.c.succeeded == 0, t.c.at >= since)).scalar() or 0
    by_address = connection.execute(select(func.count()).where(
        t.c.address == address, t.c.succeeded == 0, t.c.at >= since)).scalar() or 0
    return by_user >= FAILURES_PER_USER or by_address >= FAILURES_PER_ADDRESS


def log_in(engine: Engine, username: str, password: str, code: str, address: str,
           now: dt.datetime | None = None) -> Login:
    """Check password and TOTP code together (one answer for either wrong, so nothing tells
    which was); on success a new session."""
    moment = now or dt.datetime.now(dt.UTC)
    with read_connection(engine) as connection:
        if _throttled(connection, username, address, moment):
            outcome = Login(refused="throttled")
            user = None
        else:
            row = connection.execute(schema.users.select().where(
                schema.users.c.username == username)).first()
            user = _row_user(row) if row is not None else None
            stored = row._mapping["password_hash"] if row is not None else _DUMMY_HASH
            ok = password_matches(stored, password)
            ok = ok and user is not None and user.active and _code_fresh(
                connection, user, code.strip(), moment)
            outcome = Login(user=user) if ok else Login(refused="invalid")

    def work(connection: Connection) -> Login:
        connection.execute(schema.login_attempts.insert(), [{
            "username": username[:64], "address": address[:64], "at": _stamp(moment),
            "succeeded": int(not outcome.refused)}])
        actor = Actor(username[:64], address)
        if outcome.refused:
            record(connection, actor, "login.refused", "user", username[:64], None,
                   {"reason": outcome.refused})
            return outcome
        token = secrets.token_urlsafe(32)
        connection.execute(schema.web_sessions.insert(), [{
            "session_hash": _digest(token), "username": username,
            "csrf_token": secrets.token_urlsafe(32), "created_at": _stamp(moment),
            "last_seen_at": _stamp(moment), "ended_at": "", "address": address[:64]}])
        record(connection, actor, "login", "session", _digest(token)[:12])
        return Login(token=token, user=user)

    return with_retries(engine, work)


def _code_fresh(connection: Connection, user: User, code: str, moment: dt.datetime) -> bool:
    """The TOTP code is right for now (± one step) and was not used for an earlier login."""
    totp = pyotp.TOTP(user.totp_secret)
    if not totp.verify(code, for_time=moment, valid_window=1):
        return False
    # A code is valid for up to 90 s; refuse it again after a successful login within that time.
    from sqlalchemy import func, select

    t = schema.login_attempts
    recent = connection.execute(select(func.count()).where(
        t.c.username == user.username, t.c.succeeded == 1,
        t.c.at >= _stamp(moment - dt.timedelta(seconds=90)))).scalar() or 0
    if not recent:
        return True
    last = connection.execute(select(func.max(t.c.at)).where(
        t.c.username == user.username, t.c.succeeded == 1)).scalar()
    # The code of the step of the last login is spent; a later step's code is fine.
    return bool(last) and totp.at(_utc(last)) != code


def session(engine: Engine, token: str, now: dt.datetime | None = None,
            idle: dt.timedelta = IDLE_TIMEOUT,
            absolute: dt.timedelta = ABSOLUTE_TIMEOUT) -> tuple[Session, User] | None:
    """The live session of a cookie's token, touched; None when unknown, ended or timed out."""
    if not token:
        return None
    moment = now or dt.datetime.now(dt.UTC)
    digest = _digest(token)
    with read_connection(engine) as connection:
        row = connection.execute(schema.web_sessions.select().where(
            schema.web_sessions.c.session_hash == digest)).first()
        if row is None:
            return None
        values = row._mapping
        user = get_user(connection, values["username"])
    found = Session(values["username"], values["csrf_token"], _utc(values["created_at"]),
                    _utc(values["last_seen_at"]))
    if values["ended_at"] or user is None or not user.active:
        return None
    if moment - found.last_seen_at > idle or moment - found.created_at > absolute:
        end_session(engine, token, "timeout", moment)
        return None
    if moment - found.last_seen_at > _LAST_SEEN_GRANULARITY:
        def touch(connection: Connection) -> None:
            connection.execute(schema.web_sessions.update().where(
                schema.web_sessions.c.session_hash == digest).values(
                last_seen_at=_stamp(moment)))
        with_retries(engine, touch)
    return found, user


def end_session(engine: Engine, token: str, why: str = "logout",
                now: dt.datetime | None = None, address: str = "") -> None:
    moment = now or dt.datetime.now(dt.UTC)
    digest = _digest(token)

    def work(connection: Connection) -> None:
        row = connection.execute(schema.web_sessions.select().where(
            schema.web_sessions.c.session_hash == digest,
            schema.web_sessions.c.ended_at == "")).first()
        if row is None:
            return
        connection.execute(schema.web_sessions.update().where(
            schema.web_sessions.c.session_hash == digest).values(ended_at=_stamp(moment)))
        record(connection, Actor(row._mapping["username"], address), f"session.{why}",
               "session", digest[:12])

    with_retries(engine, work)


# --- API tokens ----------------------------------------------------------------------------

def issue_token(engine: Engine, actor: Actor, username: str, scopes: list[str],
                days: int = 90) -> str:
    """A new API token for ``username``, limited to ``scopes`` (a subset of what the user's
    roles allow); shown once, stored as a hash."""
    if not 1 <= days <= TOKEN_DAYS_MAX:
        raise BookError(f"invalid_token_lifetime: 1 to {TOKEN_DAYS_MAX} days")

    def work(connection: Connection) -> str:
        user = get_user(connection, username)
        if user is None:
            raise BookError(f"unknown_user: {username}")
        wanted = set(scopes) if scopes else set(user.permissions)
        beyond = sorted(wanted - user.permissions)
        if beyond:
            raise BookError(f"scope_beyond_roles: {', '.join(beyond)}")
        token_id = secrets.token_hex(8)
        token = f"zpl_{token_id}_{secrets.token_urlsafe(32)}"
        now = dt.datetime.now(dt.UTC)
        connection.execute(schema.api_tokens.insert(), [{
            "token_id": token_id, "token_hash": _digest(token), "username": username,
            "scopes": ",".join(sorted(wanted)), "created_at": _stamp(now),
            "expires_at": _stamp(now + dt.timedelta(days=days)), "revoked_at": ""}])
        record(connection, actor, "token.issue", "api_token", token_id, None,
               {"username": username, "scopes": sorted(wanted), "days": days})
        return token

    return with_retries(engine, work)


def token_user(engine: Engine, token: str,
               now: dt.datetime | None = None) -> tuple[User, frozenset[str]] | None:
    """The user behind a live API token and the permissions it carries."""
    moment = now or dt.datetime.now(dt.UTC)
    with read_connection(engine) as connection:
        row = connection.execute(schema.api_tokens.select().where(
            schema.api_tokens.c.token_hash == _digest(token))).first()
        if row is None:
            return None
        values = row._mapping
        user = get_user(connection, values["username"])
    if (user is None or not user.active or values["revoked_at"]
            or _utc(values["expires_at"]) <= moment):
        return None
    scopes = frozenset(s for s in values["scopes"].split(",") if s)
    return user, scopes & user.permissions


# --- desks ---------------------------------------------------------------------------------

def assign_desk(engine: Engine, actor: Actor, desk: str, accounts: list[str]) -> int:
    def work(connection: Connection) -> int:
        known = {row[0] for row in connection.exec_driver_sql("SELECT account FROM accounts")}
        unknown = [a for a in accounts if a not in known]
        if unknown:
            raise BookError(f"unknown_account: {', '.join(unknown[:5])}")
        current = dict(connection.exec_driver_sql(
            "SELECT account, desk FROM account_desks").all())
        for account in accounts:
            if account in current:
                connection.execute(schema.account_desks.update().where(
                    schema.account_desks.c.account == account).values(desk=desk))
            else:
                connection.execute(schema.account_desks.insert(), [
                    {"account": account, "desk": desk}])
            record(connection, actor, "desk.assign", "account", account,
                   {"desk": current.get(account, "")}, {"desk": desk})
        return len(accounts)

    return with_retries(engine, work)


def desk_accounts(connection: Connection, desk: str) -> frozenset[str] | None:
    """The accounts a desk sees; None for a firm-wide user (desk "")."""
    if not desk:
        return None
    m = "%s" if connection.dialect.name == "postgresql" else "?"
    return frozenset(row[0] for row in connection.exec_driver_sql(
        f"SELECT account FROM account_desks WHERE desk = {m}", (desk,)))
