"""Trades through the API and the workbench: capture one (the same path as trades.csv and FIX
fills: same validation, same idempotency by trade id, same rejections), cancel one, list them.

An ``Idempotency-Key`` makes a capture safe to retry: the first answer is kept with a hash of
the request; the same key with the same body gets that answer again, with another body a
conflict. Everything a capture does — the trade, its journal entry, the key, the audit record —
is one transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.formats.book_csv import Row
from zaplecze.kernel.problems import Problem
from zaplecze.services.audit_trail import Actor, now, record
from zaplecze.services.load import Loader, TradeBatch
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries

SOURCE = "api"
TRADE_FIELDS = ("trade_id", "account", "isin", "side", "quantity", "price", "currency",
                "trade_date", "settlement_date", "venue", "counterparty", "gross", "commission",
                "source")
SORTABLE = ("trade_date", "trade_id", "account", "isin", "settlement_date", "sequence")


@dataclass(frozen=True)
class Answer:
    """What the API answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def _marker(connection: Connection) -> str:
    return "%s" if connection.dialect.name == "postgresql" else "?"


def statuses(connection: Connection, trade_ids: list[str]) -> dict[str, str]:
    """pending, partially_settled, settled or cancelled, from the journal's keys."""
    if not trade_ids:
        return {}
    m = _marker(connection)
    keys: list[str] = []
    for trade_id in trade_ids:
        keys += [f"post:trade:{trade_id}", f"void:trade:{trade_id}"]
    found = {row[0] for row in connection.exec_driver_sql(
        f"SELECT entry_key FROM entries WHERE entry_key IN ({', '.join([m] * len(keys))})",
        tuple(keys))}
    partial = {row[0] for row in connection.exec_driver_sql(
        f"SELECT target_key FROM entries WHERE kind = 'SETTLEMENT' AND target_key IN "
        f"({', '.join([m] * len(trade_ids))})", tuple(f"trade:{t}" for t in trade_ids))}
    out = {}
    for trade_id in trade_ids:
        if f"void:trade:{trade_id}" in found:
            out[trade_id] = "cancelled"
        elif f"post:trade:{trade_id}" in found:
            out[trade_id] = "settled"
        elif f"trade:{trade_id}" in partial:
            out[trade_id] = "partially_settled"
        else:
            out[trade_id] = "pending"
    return out


def _rows(connection: Connection, where: str, params: tuple[Any, ...], order: str = "",
          limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
    page = f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
    rows = [dict(row) for row in connection.exec_driver_sql(
        f"SELECT {', '.join(TRADE_FIELDS)} FROM trades{where}{order}{page}", params).mappings()]
    found = statuses(connection, [row["trade_id"] for row in rows])
    for row in rows:
        row["status"] = found[row["trade_id"]]
    return rows


def get_trade(connection: Connection, trade_id: str) -> dict[str, Any] | None:
    rows = _rows(connection, f" WHERE trade_id = {_marker(connection)}", (trade_id,))
    return rows[0] if rows else None


def list_trades(connection: Connection, *, accounts: frozenset[str] | None,
                filters: Mapping[str, Any], sort: str = "trade_date", descending: bool = True,
                limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """A page of trades the caller's desk sees, filtered, with the total matching."""
    m = _marker(connection)
    where: list[str] = []
    params: list[Any] = []
    if accounts is not None:
        if not accounts:
            return [], 0
        where.append(f"account IN ({', '.join([m] * len(accounts))})")
        params += sorted(accounts)
    for column in ("account", "isin", "side", "currency", "counterparty", "venue"):
        value = filters.get(column)
        if value:
            where.append(f"{column} = {m}")
            params.append(value)
    for column, bound, op in (("trade_date", "trade_date_from", ">="),
                              ("trade_date", "trade_date_to", "<="),
                              ("settlement_date", "settlement_date_from", ">="),
                              ("settlement_date", "settlement_date_to", "<=")):
        value = filters.get(bound)
        if value:
            where.append(f"{column} {op} {m}")
            params.append(value.isoformat() if isinstance(value, dt.date) else value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = connection.exec_driver_sql(f"SELECT COUNT(*) FROM trades{clause}",
                                       tuple(params)).scalar() or 0
    column = sort if sort in SORTABLE else "trade_date"
    direction = "DESC" if descending else "ASC"
    order = f" ORDER BY {column} {direction}, sequence {direction}"
    return _rows(connection, clause, tuple(params), order, limit, offset), int(total)


def _request_hash(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def _problem_answer(problem: Problem) -> Answer:
    status = 409 if problem.rule.value in ("conflicting_duplicate_id",
                                           "trade_already_settled") else 400
    if problem.rule.value == "unknown_trade":
        status = 404
    return Answer(status, {"code": problem.rule.value, "detail": problem.detail})


def _book(connection: Connection, engine: Engine, actor: Actor, values: dict[str, str],
          action: str) -> Answer:
    loader = Loader(engine, repo.calendar(connection))
    loader.refdata = repo.refdata(connection)
    batch = TradeBatch(loader, connection, SOURCE, source=SOURCE)
    problems, booked, _ = batch.run([Row(1, values)], [])
    if problems:
        return _problem_answer(problems[0])
    trade = get_trade(connection, values["trade_id"])
    assert trade is not None
    if booked:
        record(connection, actor, f"trade.{action}", "trade", values["trade_id"],
               None, trade)
    return Answer(201 if booked else 200, trade)


def capture(engine: Engine, actor: Actor, values: dict[str, str],
            idempotency_key: str = "") -> Answer:
    """Book one trade (``values`` as a trades.csv row, action NEW)."""
    return _idempotent(engine, actor, {**values, "action": "NEW"}, idempotency_key, "capture")


def cancel(engine: Engine, actor: Actor, trade_id: str, account: str, cancel_date: dt.date,
           idempotency_key: str = "") -> Answer:
    values = {"trade_id": trade_id, "action": "CANCEL", "account": account,
              "trade_date": cancel_date.isoformat()}
    return _idempotent(engine, actor, values, idempotency_key, "cancel")


def _idempotent(engine: Engine, actor: Actor, values: dict[str, str], key: str,
                action: str) -> Answer:
    digest = _request_hash({"path": action, **values})
    stored_key = f"{actor.username}\x1f{key}" if key else ""

    def work(connection: Connection) -> Answer:
        if stored_key:
            row = connection.exec_driver_sql(
                f"SELECT request_hash, status, body FROM idempotency_keys WHERE key = "
                f"{_marker(connection)}", (stored_key,)).first()
            if row is not None:
                if row[0] != digest:
                    return Answer(409, {"code": "idempotency_key_reused",
                                        "detail": "this Idempotency-Key was used with another "
                                                  "request"})
                # The same request again: the first answer, as "already done" (200, not 201).
                status = int(row[1])
                return Answer(200 if status == 201 else status, json.loads(row[2]))
        answer = _book(connection, engine, actor, values, action)
        if stored_key and answer.status < 500:
            connection.execute(schema.idempotency_keys.insert(), [{
                "key": stored_key, "request_hash": digest, "status": answer.status,
                "body": json.dumps(answer.body, default=str), "at": now()}])
        return answer

    return with_retries(engine, work)
