"""The exception queue: one list of everything an operator must deal with.

    fail:<reference>    a settlement instruction not settled by the end of its intended
                        settlement date (``report fails``), as of a date
    break:<break_id>    a reconciliation break that is not resolved (``report breaks``)
    rejected:<id>       an input row or message refused (``report rejected``)
    ca:<event_id>       a corporate-action event whose entitlements are computed and await
                        another person's approval

Each item has an owner, a status (open, investigating, resolved) and comments. A break keeps
its own life (``reconciling.act_on_break``): the break record stays the one truth and the queue
only shows it. The other kinds have no life of their own: ``work_items`` holds their owner and
status, ``work_item_comments`` their comments. A resolved item stays resolved; resolving needs
a reason. Every change is written to the audit trail in the same transaction.

Rejected rows naming an account (its id as a word of the detail) are desk data: a desk-scoped
caller sees only those naming no other desk's account. The rest is firm-level.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions.lifecycle import EventStatus
from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.problems import BookError
from zaplecze.services import reconciling, settlement_reports
from zaplecze.services.audit_trail import Actor, now, record
from zaplecze.services.ca_events import records
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries

KINDS = ("fail", "break", "rejected", "ca")
STATUSES = ("open", "investigating", "resolved")
OWNER_MAX = 64
TEXT_MAX = 4_000
_BREAK_STATUS = {"OPEN": "open", "INVESTIGATING": "investigating", "RESOLVED": "resolved"}
_WORD = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Note:
    author: str
    at: str
    text: str


@dataclass(frozen=True)
class Item:
    key: str
    kind: str
    title: str
    detail: str
    since: dt.date
    age_days: int
    owner: str
    status: str
    comments: int
    links: dict[str, str] = field(default_factory=dict)
    accounts: tuple[str, ...] = ()  # the accounts it names (rejected rows only)
    notes: tuple[Note, ...] = ()
    resolution_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "title": self.title, "detail": self.detail,
                "since": self.since.isoformat(), "age_days": self.age_days,
                "owner": self.owner, "status": self.status, "comments": self.comments,
                "links": dict(self.links), "resolution_reason": self.resolution_reason}


def _split(key: str) -> tuple[str, str]:
    kind, _, ident = key.partition(":")
    if kind not in KINDS or not ident:
        raise BookError(f"unknown_item: no item {key!r}")
    return kind, ident


def business_days(calendar: SettlementCalendar, since: dt.date, as_of: dt.date,
                  mic: str = "") -> int:
    """Business days after ``since`` up to and including ``as_of``: trading sessions of
    ``mic`` in the book's calendar, or weekdays without a market (0 for a later ``since``)."""
    count, day = 0, since
    while day < as_of:
        day += dt.timedelta(days=1)
        if (calendar.is_trading_session(day, mic) if mic else day.weekday() < 5):
            count += 1
    return count


# --- reading -------------------------------------------------------------------------------


def _work_items(connection: Connection) -> dict[str, dict[str, str]]:
    return {str(row.item_key): {"owner": row.owner, "status": row.status,
                                "resolution_reason": row.resolution_reason}
            for row in connection.execute(schema.work_items.select())}


def _notes(connection: Connection, key: str | None = None) -> dict[str, list[Note]]:
    query = schema.work_item_comments.select().order_by(schema.work_item_comments.c.id)
    if key is not None:
        query = query.where(schema.work_item_comments.c.item_key == key)
    found: dict[str, list[Note]] = {}
    for row in connection.execute(query):
        found.setdefault(str(row.item_key), []).append(Note(row.author, row.at, row.text))
    return found


def _with_work(item: Item, work: dict[str, dict[str, str]],
               notes: dict[str, list[Note]]) -> Item:
    state = work.get(item.key, {"owner": "", "status": "open", "resolution_reason": ""})
    mine = tuple(notes.get(item.key, ()))
    return Item(item.key, item.kind, item.title, item.detail, item.since, item.age_days,
                state["owner"], state["status"], len(mine), item.links, item.accounts, mine,
                state["resolution_reason"])


def _fails(connection: Connection, as_of: dt.date) -> list[Item]:
    found = []
    for row in settlement_reports.fails(connection, as_of):
        found.append(Item(
            key=f"fail:{row['reference']}", kind="fail",
            title=f"{row['direction'].lower()} of {row['failing']} {row['isin']} with "
                  f"{row['counterparty']} failing",
            detail=f"{row['reason']} ({row['failing_party']} failing), instruction "
                   f"{row['status']}, intended settlement {row['intended_settlement_date']}, "
                   f"penalties {row['penalties']} {row['currency']}"
                   + (", buy-in due" if row["buy_in_due"] == "yes" else ""),
            since=dt.date.fromisoformat(row["intended_settlement_date"]),
            age_days=int(row["age_days"]), owner="", status="open", comments=0,
            links={"reference": row["reference"], "isin": row["isin"],
                   "counterparty": row["counterparty"]}))
    return found


def _breaks(connection: Connection, as_of: dt.date, ids: Iterable[str] | None = None,
            with_notes: bool = False) -> list[Item]:
    rows = reconciling.break_rows(connection, as_of)
    wanted = set(ids) if ids is not None else None
    loaded = reconciling.load_breaks(connection, wanted) if with_notes else {}
    found = []
    for row in rows:
        if wanted is not None and row["break_id"] not in wanted:
            continue
        notes = tuple(Note(c.author, c.at.isoformat(), c.text)
                      for c in loaded[row["break_id"]].comments) if with_notes else ()
        found.append(Item(
            key=f"break:{row['break_id']}", kind="break",
            title=f"{row['kind']} {row['subject']}",
            detail=f"ours {row['ours']}, theirs {row['theirs']}, difference "
                   f"{row['difference']} {row['asset']}",
            since=dt.date.fromisoformat(row["first_seen"]), age_days=int(row["age_days"]),
            owner=row["owner"], status=_BREAK_STATUS[row["status"]],
            comments=int(row["comments"]), links={"break_id": row["break_id"]}, notes=notes,
            resolution_reason=row["resolution_reason"]))
    return found


def _rejected(connection: Connection, as_of: dt.date, calendar: SettlementCalendar,
              ident: str | None = None) -> list[Item]:
    known = {str(row[0]) for row in connection.exec_driver_sql("SELECT account FROM accounts")}
    query = schema.rejections.select().order_by(schema.rejections.c.id)
    if ident is not None:
        if not (ident.isascii() and ident.isdigit()) or len(ident) > 18:
            return []
        query = query.where(schema.rejections.c.id == int(ident))
    found = []
    for row in connection.execute(query):
        since = dt.date.fromisoformat(str(row.recorded_at)[:10])
        where = f"{row.file}:{row.line}" if row.line is not None else str(row.file)
        named = tuple(sorted({word for word in _WORD.findall(str(row.detail)) if word in known}))
        found.append(Item(
            key=f"rejected:{row.id}", kind="rejected", title=f"{where} rejected: {row.reason}",
            detail=str(row.detail), since=since,
            age_days=business_days(calendar, since, as_of), owner="", status="open",
            comments=0, links={"file": str(row.file), "line": "" if row.line is None
                               else str(row.line), "reason": str(row.reason)},
            accounts=named))
    return found


def _events(connection: Connection, as_of: dt.date, calendar: SettlementCalendar,
            ident: str | None = None) -> list[Item]:
    instruments = repo.refdata(connection).instruments
    found = []
    for event_id, event in records(connection).items():
        if ident is not None and event_id != ident:
            continue
        if event.status is not EventStatus.ENTITLEMENTS_COMPUTED:
            continue
        since = event.history[-1].at.date() if event.history else as_of
        instrument = instruments.get(event.isin)
        terms = event.terms
        found.append(Item(
            key=f"ca:{event_id}", kind="ca",
            title=f"{event.event_type} {event.isin or '-'} awaiting approval",
            detail=f"entitlements computed by {event.prepared_by} (payload "
                   f"{event.computed_payload_hash[:12]}…)"
                   + (f", ex date {terms.ex_date}, pay date {terms.pay_date}" if terms else ""),
            since=since,
            age_days=business_days(calendar, since, as_of,
                                   instrument.mic if instrument is not None else ""),
            owner="", status="open", comments=0,
            links={"event_id": event_id, "isin": event.isin}))
    return found


def _visible(item: Item, scope: frozenset[str] | None) -> bool:
    return scope is None or all(account in scope for account in item.accounts)


def items(connection: Connection, as_of: dt.date, kind: str | None = None,
          status: str | None = None, owner: str | None = None,
          scope: frozenset[str] | None = None) -> list[Item]:
    """The queue as of ``as_of``, oldest first. ``status`` None: what is not resolved (open
    and investigating); "all": everything. ``scope``: the caller's desk accounts (None: all)."""
    calendar = repo.calendar(connection)
    found: list[Item] = []
    if kind in (None, "fail"):
        found += _fails(connection, as_of)
    if kind in (None, "rejected"):
        found += _rejected(connection, as_of, calendar)
    if kind in (None, "ca"):
        found += _events(connection, as_of, calendar)
    work, notes = _work_items(connection), _notes(connection)
    found = [_with_work(item, work, notes) for item in found]
    if kind in (None, "break"):
        found += _breaks(connection, as_of)
    chosen = []
    for item in found:
        if status is None and item.status == "resolved":
            continue
        if status not in (None, "all") and item.status != status:
            continue
        if owner is not None and item.owner != owner:
            continue
        if _visible(item, scope):
            chosen.append(item)
    return sorted(chosen, key=lambda i: (i.since, i.key))


def item(connection: Connection, key: str, as_of: dt.date,
         scope: frozenset[str] | None = None) -> Item:
    """One item with its comments; ``unknown_item`` when there is none (or another desk's)."""
    kind, ident = _split(key)
    calendar = repo.calendar(connection)
    if kind == "break":
        found = _breaks(connection, as_of, [ident], with_notes=True)
    else:
        if kind == "fail":
            found = [i for i in _fails(connection, as_of) if i.key == key]
        elif kind == "rejected":
            found = _rejected(connection, as_of, calendar, ident)
        else:
            found = _events(connection, as_of, calendar, ident)
        found = [_with_work(i, _work_items(connection), _notes(connection, key))
                 for i in found]
    if not found or not _visible(found[0], scope):
        raise BookError(f"unknown_item: no item {key!r}")
    return found[0]


# --- acting --------------------------------------------------------------------------------


def _exists(connection: Connection, kind: str, ident: str) -> bool:
    m = repo.mark(connection)
    if kind == "fail":
        return connection.exec_driver_sql(
            f"SELECT 1 FROM settlement_instructions WHERE reference = {m}",
            (ident,)).first() is not None
    if kind == "rejected":
        if not (ident.isascii() and ident.isdigit()) or len(ident) > 18:
            return False
        return connection.exec_driver_sql(
            f"SELECT 1 FROM rejections WHERE id = {m}", (int(ident),)).first() is not None
    return ident in records(connection)


def _state(connection: Connection, key: str, scope: frozenset[str] | None
           ) -> dict[str, str] | None:
    kind, ident = _split(key)
    if not _exists(connection, kind, ident):
        raise BookError(f"unknown_item: no item {key!r}")
    if kind == "rejected" and scope is not None:
        calendar = repo.calendar(connection)
        if not all(_visible(i, scope) for i in _rejected(connection, dt.date.today(),
                                                           calendar, ident)):
            raise BookError(f"unknown_item: no item {key!r}")
    return _work_items(connection).get(key)


def _write(connection: Connection, key: str, before: dict[str, str] | None,
           after: dict[str, str]) -> None:
    values = {**after, "updated_at": now()}
    if before is None:
        connection.execute(schema.work_items.insert(), [{"item_key": key, **values}])
    else:
        connection.execute(schema.work_items.update().where(
            schema.work_items.c.item_key == key).values(**values))


_FRESH = {"owner": "", "status": "open", "resolution_reason": ""}


def _act(engine: Engine, actor: Actor, key: str, action: str, text: str,
         scope: frozenset[str] | None) -> None:
    kind, ident = _split(key)
    if kind == "break":
        reconciling.act_on_break(engine, ident, action, actor.username, text, actor=actor)
        return

    def work(connection: Connection) -> None:
        before = _state(connection, key, scope)
        state = dict(before or _FRESH)
        if action == "comment":
            if not text.strip():
                raise BookError(f"missing_required_value: a comment on {key} needs a text")
            count = len(_notes(connection, key).get(key, ()))
            connection.execute(schema.work_item_comments.insert(), [{
                "item_key": key, "author": actor.username, "at": now(), "text": text}])
            record(connection, actor, "exception.comment", "work_item", key,
                   {"comments": count}, {"comments": count + 1, "text": text})
            return
        if state["status"] == "resolved":
            raise BookError(f"item_already_resolved: {key} is resolved "
                            f"({state['resolution_reason']}): cannot {action} it")
        after = dict(state)
        if action == "assign":
            after["owner"] = text
        else:
            if not text.strip():
                raise BookError(f"resolution_reason_required: resolving {key} needs a reason")
            after["status"], after["resolution_reason"] = "resolved", text.strip()
        if after == state and before is not None:
            return
        _write(connection, key, before, after)
        record(connection, actor, f"exception.{action}", "work_item", key, state, after)

    with_retries(engine, work)


def assign(engine: Engine, actor: Actor, key: str, owner: str,
           scope: frozenset[str] | None = None) -> None:
    """Give the item to ``owner`` ('' takes it back)."""
    if len(owner) > OWNER_MAX:
        raise BookError(f"invalid_owner: at most {OWNER_MAX} characters")
    _act(engine, actor, key, "assign", owner, scope)


def comment(engine: Engine, actor: Actor, key: str, text: str,
            scope: frozenset[str] | None = None) -> None:
    _act(engine, actor, key, "comment", text, scope)


def resolve(engine: Engine, actor: Actor, key: str, reason: str,
            scope: frozenset[str] | None = None) -> None:
    """Resolved, with the reason why (required); it stays resolved."""
    _act(engine, actor, key, "resolve", reason, scope)
