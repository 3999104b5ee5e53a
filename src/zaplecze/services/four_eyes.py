"""Four-eyes: a sensitive change is requested by one person and decided by another.

The request carries the exact payload; the approval names the payload's hash, so what is
approved is exactly what was shown (a payload changed in between is refused, not applied).
The maker can never decide their own request. Requests and decisions are append-only; a
request is applied in the same transaction as its approval.

Actions with an applier here: ``user.roles`` (change a user's roles), ``ledger.adjustment`` (a
manual journal entry, balanced per asset), ``ledger.reversal`` (undo a posted adjustment or
penalty by its opposite) and ``corporate_action.reversal`` (undo an applied corporate action:
``ca_desk.apply_reversal``). Corporate-action approval has its own life (``ca_desk``) but
follows the same two rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.kernel.money import currency_scale
from zaplecze.kernel.problems import BookError, Rule
from zaplecze.ledger import accounts
from zaplecze.ledger.model import (
    REVERSIBLE,
    Entry,
    EntryKind,
    Phase,
    Posting,
    reversal,
    unbalanced_assets,
)
from zaplecze.services import access, ca_desk, identity
from zaplecze.services.audit_trail import Actor, now, record
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries
from zaplecze.store.journal import JournalWriter


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(payload).encode()).hexdigest()


@dataclass(frozen=True)
class Request:
    request_id: str
    action: str
    subject: str
    payload: dict[str, Any]
    payload_hash: str
    maker: str
    made_at: str
    decision: str = ""  # "", approved, rejected
    checker: str = ""
    decided_at: str = ""

    @property
    def status(self) -> str:
        return self.decision or "pending"


def _validate_roles(connection: Connection, payload: dict[str, Any]) -> None:
    roles = payload.get("roles")
    if not isinstance(roles, list) or not roles or access.unknown_roles(roles):
        raise BookError(f"unknown_role: roles are {', '.join(access.ROLE_NAMES)}")
    if identity.get_user(connection, str(payload.get("username", ""))) is None:
        raise BookError(f"unknown_user: {payload.get('username')}")


def _apply_roles(connection: Connection, payload: dict[str, Any], actor: Actor) -> None:
    identity.set_roles(connection, actor, payload["username"], list(payload["roles"]))


def _adjustment_entry(connection: Connection, payload: dict[str, Any]) -> Entry:
    """The manual entry a payload describes; a BookError naming what is wrong."""
    try:
        day = dt.date.fromisoformat(str(payload.get("business_date", "")))
    except ValueError:
        raise BookError("invalid_date: business_date must be YYYY-MM-DD") from None
    memo = str(payload.get("memo", "")).strip()
    if not memo:
        raise BookError("memo_required: say why the adjustment is made")
    lines = payload.get("postings")
    if not isinstance(lines, list) or len(lines) < 2:
        raise BookError("invalid_postings: at least two postings")
    instruments = repo.refdata(connection).instruments
    postings = []
    for number, line in enumerate(lines, start=1):
        gl_account, asset = str(line.get("gl_account", "")), str(line.get("asset", ""))
        if not (accounts.is_owner(gl_account) or accounts.is_location(gl_account)) or (
                ":" not in gl_account or not gl_account.split(":", 1)[1]):
            prefixes = ", ".join(sorted(accounts.OWNER_PREFIXES | accounts.LOCATION_PREFIXES))
            raise BookError(f"unknown_gl_account: posting {number}: {gl_account!r} is not "
                            f"prefix:name with a prefix of {prefixes}")
        if asset in instruments:
            scale = instruments[asset].quantity_scale
        else:
            try:
                scale = currency_scale(asset)
            except (KeyError, ValueError):
                raise BookError(f"unknown_asset: posting {number}: {asset!r} is neither an "
                                "instrument's ISIN nor an ISO 4217 currency") from None
        try:
            amount = Decimal(str(line.get("amount", "")))
        except InvalidOperation:
            raise BookError(f"invalid_amount: posting {number}: not a number") from None
        units = amount.scaleb(scale)
        if not amount.is_finite() or units != units.to_integral_value() or amount == 0:
            raise BookError(f"invalid_amount: posting {number}: {amount} is zero or has more "
                            f"than {scale} decimal places for {asset}")
        postings.append(Posting(gl_account, asset, int(units)))
    account = str(payload.get("account", ""))
    entry = Entry(key=f"adjustment:{payload_hash(payload)[:24]}", kind=EntryKind.ADJUSTMENT,
                  phase=Phase.POSTED, business_date=day, postings=tuple(postings),
                  ref=str(payload.get("reference", "")), account=account, memo=memo)
    broken = unbalanced_assets(entry)
    if broken:
        raise BookError("unbalanced_entry: the postings do not sum to zero for "
                        + ", ".join(sorted(broken)))
    return entry


def _validate_adjustment(connection: Connection, payload: dict[str, Any]) -> None:
    _adjustment_entry(connection, payload)


def _apply_adjustment(connection: Connection, payload: dict[str, Any], actor: Actor) -> None:
    entry = _adjustment_entry(connection, payload)
    if repo.entries_by_key(connection, [entry.key]):
        raise BookError(f"adjustment_already_booked: {entry.key}")
    writer = JournalWriter(connection)
    writer.append(entry)
    writer.flush()
    record(connection, actor, "ledger.adjustment", "entry", entry.key, None,
           {"postings": payload["postings"], "business_date": payload["business_date"],
            "memo": entry.memo})


def _reversal_entry(connection: Connection, payload: dict[str, Any]) -> Entry:
    key = str(payload.get("entry_key", ""))
    found = repo.entries_by_key(connection, [key, f"reverse:{key}"])
    if key not in found:
        raise BookError(f"unknown_entry: {key}")
    if f"reverse:{key}" in found:
        raise BookError(f"entry_already_reversed: {key}")
    target = found[key]
    if target.phase is not Phase.POSTED or target.kind not in REVERSIBLE:
        raise BookError(f"entry_not_reversible: {key} is a {target.kind.value} entry; "
                        "trades are cancelled and corporate actions reversed by their own events")
    try:
        day = dt.date.fromisoformat(str(payload.get("business_date", "")))
    except ValueError:
        raise BookError("invalid_date: business_date must be YYYY-MM-DD") from None
    reason = str(payload.get("reason", "")).strip()
    if not reason:
        raise BookError("resolution_reason_required: say why the entry is reversed")
    return reversal(target, day, reason)


def _validate_reversal(connection: Connection, payload: dict[str, Any]) -> None:
    _reversal_entry(connection, payload)


def _apply_reversal(connection: Connection, payload: dict[str, Any], actor: Actor) -> None:
    entry = _reversal_entry(connection, payload)
    writer = JournalWriter(connection)
    writer.append(entry)
    writer.flush()
    record(connection, actor, "ledger.reversal", "entry", entry.target_key, None,
           {"reversed_by": entry.key, "reason": entry.memo})


# action -> (check the payload when requested, apply it when approved)
ACTIONS: dict[str, tuple[Callable[[Connection, dict[str, Any]], None],
                         Callable[[Connection, dict[str, Any], Actor], None]]] = {
    "user.roles": (_validate_roles, _apply_roles),
    "ledger.adjustment": (_validate_adjustment, _apply_adjustment),
    "ledger.reversal": (_validate_reversal, _apply_reversal),
    # {"event_id", "business_date", "reason"}: an applied corporate action undone (ca_desk)
    ca_desk.REVERSAL_ACTION: (ca_desk.validate_reversal, ca_desk.apply_reversal),
}


def request(engine: Engine, actor: Actor, action: str, subject: str,
            payload: dict[str, Any]) -> Request:
    if action not in ACTIONS:
        raise BookError(f"unknown_action: {action}")
    validate, _ = ACTIONS[action]

    def work(connection: Connection) -> Request:
        validate(connection, payload)
        made = Request(secrets.token_hex(8), action, subject, payload, payload_hash(payload),
                       actor.username, now())
        connection.execute(schema.approval_requests.insert(), [{
            "request_id": made.request_id, "action": action, "subject": subject,
            "payload": canonical(payload), "payload_hash": made.payload_hash,
            "maker": actor.username, "made_at": made.made_at}])
        record(connection, actor, "approval.request", action, made.request_id, None,
               {"subject": subject, "payload": payload, "payload_hash": made.payload_hash})
        return made

    return with_retries(engine, work)


def requests(connection: Connection, request_id: str | None = None) -> list[Request]:
    m = "%s" if connection.dialect.name == "postgresql" else "?"
    where, params = ("WHERE r.request_id = " + m, (request_id,)) if request_id else ("", ())
    rows = connection.exec_driver_sql(
        "SELECT r.request_id, r.action, r.subject, r.payload, r.payload_hash, r.maker, "
        "r.made_at, d.decision, d.checker, d.decided_at FROM approval_requests r "
        "LEFT JOIN approval_decisions d ON d.request_id = r.request_id "
        f"{where} ORDER BY r.made_at", params).all()
    return [Request(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7] or "",
                    r[8] or "", r[9] or "") for r in rows]


def decide(engine: Engine, actor: Actor, request_id: str, approve: bool,
           expected_hash: str) -> Request:
    """Approve (and apply) or reject a pending request; never the maker's own, and only for
    the payload hash the checker saw."""
    def work(connection: Connection) -> Request:
        found = requests(connection, request_id)
        if not found:
            raise BookError(f"unknown_request: {request_id}")
        pending = found[0]
        if pending.decision:
            raise BookError(f"request_already_decided: {request_id} was {pending.decision}")
        if pending.maker == actor.username:
            raise BookError(f"{Rule.FOUR_EYES_REQUIRED}: {actor.username} made this request; "
                            "another person must decide it")
        if expected_hash != pending.payload_hash:
            raise BookError("payload_changed: the request is not the one you were shown")
        decision = "approved" if approve else "rejected"
        connection.execute(schema.approval_decisions.insert(), [{
            "request_id": request_id, "decision": decision, "checker": actor.username,
            "decided_at": now(), "payload_hash": pending.payload_hash}])
        record(connection, actor, f"approval.{decision}", pending.action, request_id,
               {"status": "pending"}, {"status": decision})
        if approve:
            ACTIONS[pending.action][1](connection, pending.payload, actor)
        return requests(connection, request_id)[0]

    return with_retries(engine, work)
