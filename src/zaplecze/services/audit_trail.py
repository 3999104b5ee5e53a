"""The audit trail of actions: who did what, when, from where, with the object before and after.

Append-only and hash-chained like the journal: each record's hash covers its content and the
previous record's hash, so ``verify`` finds a changed, deleted, inserted or reordered record.
Every workbench and API action that changes something writes one record in the same
transaction as the change itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.ledger.chain import GENESIS
from zaplecze.store import schema
from zaplecze.store.db import read_connection

COLUMNS = ("seq", "at", "actor", "address", "action", "object_type", "object_id", "before",
           "after", "hash")


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where (the client's address, or ``cli``)."""

    username: str
    address: str = ""


def _json(value: Any) -> str:
    if value is None:
        return "{}"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str,
                      separators=(",", ":"))


def record_hash(previous: str, row: Mapping[str, Any]) -> str:
    text = "\x1f".join(str(row[name]) for name in COLUMNS[:-1])
    return hashlib.sha256(previous.encode() + text.encode()).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def record(connection: Connection, actor: Actor, action: str, object_type: str,
           object_id: str, before: Any = None, after: Any = None) -> int:
    """Append one record in the caller's transaction (which holds the journal lock)."""
    head = connection.exec_driver_sql(
        "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1").first()
    seq, previous = (head[0] + 1, head[1]) if head else (1, GENESIS)
    row: dict[str, Any] = {
        "seq": seq, "at": now(), "actor": actor.username, "address": actor.address,
        "action": action, "object_type": object_type, "object_id": object_id,
        "before": _json(before), "after": _json(after)}
    row["hash"] = record_hash(previous, row)
    connection.execute(schema.audit_trail.insert(), [row])
    return seq


@dataclass
class TrailCheck:
    records: int
    problems: list[str]


def verify(engine: Engine) -> TrailCheck:
    problems: list[str] = []
    previous = GENESIS
    count = 0
    with read_connection(engine) as connection:
        rows = connection.exec_driver_sql(
            f"SELECT {', '.join(COLUMNS)} FROM audit_trail ORDER BY seq").mappings()
        for expected, row in enumerate(rows, start=1):
            count += 1
            if row["seq"] != expected:
                problems.append(f"audit trail record {expected} is missing (found {row['seq']})")
            digest = record_hash(previous, row)
            if digest != row["hash"]:
                problems.append(f"audit trail record {row['seq']} does not match its hash")
            previous = row["hash"]
    return TrailCheck(count, problems)


def page(connection: Connection, *, limit: int, offset: int, actor: str | None = None,
         action: str | None = None, object_type: str | None = None,
         descending: bool = True) -> tuple[list[dict[str, Any]], int]:
    """One page of the trail, newest first by default, with the total matching."""
    where, params = [], []
    m = "%s" if connection.dialect.name == "postgresql" else "?"
    for column, value in (("actor", actor), ("action", action), ("object_type", object_type)):
        if value:
            where.append(f"{column} = {m}")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM audit_trail{clause}", tuple(params)).scalar() or 0
    order = "DESC" if descending else "ASC"
    rows = connection.exec_driver_sql(
        f"SELECT {', '.join(COLUMNS)} FROM audit_trail{clause} ORDER BY seq {order} "
        f"LIMIT {int(limit)} OFFSET {int(offset)}", tuple(params)).mappings().all()
    out = []
    for row in rows:
        item = dict(row)
        item["before"] = json.loads(item["before"])
        item["after"] = json.loads(item["after"])
        out.append(item)
    return out, int(total)
