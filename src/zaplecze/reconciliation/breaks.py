"""Breaks as first-class records: what a statement and our books disagree on, who looks at it,
why it was closed, and every step on the way, as a pure state machine.

::

    (found) ──▶ OPEN ──start_investigating──▶ INVESTIGATING ──resolve(reason)──▶ RESOLVED
                  │                                                             ▲    │
                  └──────────────resolve(reason) / agreed by a statement────────┘    │
    RESOLVED ──a later statement disagrees again──▶ OPEN (reopened) ◀─────────────────┘

- A break is keyed by ``break_key`` over its *subject* (the safekeeping account × ISIN of a
  position, our movement or the bank's entry of a cash item), never over its numbers: the same
  discrepancy seen on a later statement is the same break, whatever its kind or amounts now.
- ``reconcile_breaks`` folds one statement's findings into the breaks known so far: a new
  subject opens a break; one found again has ``last_seen`` moved on (and its numbers updated,
  recorded when they change); an open break whose *scope* the statement covers but which it
  no longer shows is resolved with the reason ``agreed by statement <id> of <date>``; a
  resolved break found on a statement dated after it was last seen is reopened.
- Statements may come late or twice: a statement dated before a break's ``last_seen`` neither
  resolves nor reopens it, and moves no date back.
- Refusals are problems, the break unchanged: resolving without a reason
  (RESOLUTION_REASON_REQUIRED); resolving, assigning or investigating a resolved break
  (BREAK_ALREADY_RESOLVED); an empty comment (MISSING_REQUIRED_VALUE); a break id not known
  (UNKNOWN_BREAK, from ``lookup``). Comments on a resolved break are accepted.
- Every transition appends an ``Event`` (when, who, what, before, after) to ``history``
  (``auto-resolved`` for a resolution by a statement, ``who`` being the caller's, 'system');
  ``last_seen`` alone is a watermark, not an event. Assigning the same owner again, or
  investigating a break already under investigation, changes nothing and records nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from zaplecze.kernel.calendar import KNOWN_MICS, SettlementCalendar
from zaplecze.kernel.problems import Problem, Rule


class BreakKind(StrEnum):
    MISSING_AT_US = "MISSING_AT_US"  # the statement shows it, our books do not
    MISSING_AT_THEM = "MISSING_AT_THEM"  # our books show it, the statement does not
    QUANTITY = "QUANTITY"  # a position both sides hold, in different quantities
    AMOUNT = "AMOUNT"  # a cash item both sides have (same reference), amounts differ
    DATE = "DATE"  # same reference and amount, value dates too far apart


class BreakStatus(StrEnum):
    OPEN = "OPEN"
    INVESTIGATING = "INVESTIGATING"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True)
class Comment:
    author: str
    at: dt.datetime
    text: str


@dataclass(frozen=True, slots=True)
class Event:
    """One step in a break's life: ``what`` happened, the value ``before`` and ``after``."""

    at: dt.datetime
    who: str
    what: str  # opened, updated, assigned, commented, investigating, resolved,
    # auto-resolved, reopened; a status change has the status before and after (a resolution
    # 'RESOLVED: <reason>'), an assignment the owners, a comment its text, an update the figures
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One disagreement found on one statement (``reconciliation.matching`` makes them).

    ``scope`` is what a statement covers (``positions <safekeeping account>``, ``cash
    <account>``): a statement covering a scope that no longer shows a break agrees with us.
    ``difference`` is ours − theirs.
    """

    key: str  # break_key(...) of the subject
    kind: BreakKind
    subject: str
    scope: str
    ours: Decimal
    theirs: Decimal
    difference: Decimal
    currency_or_isin: str
    detail: str = ""  # which of our movements, which statement line: for people


@dataclass(frozen=True, slots=True)
class Break:
    break_id: str  # break_key(...) of the subject: stable across statements
    kind: BreakKind
    subject: str  # e.g. 'positions ACCT-1 PLPKO0000016', 'cash PL61… ref X'
    ours: Decimal
    theirs: Decimal
    difference: Decimal  # ours − theirs
    currency_or_isin: str
    first_seen: dt.date  # statement date
    last_seen: dt.date  # statement date
    owner: str = ""
    status: BreakStatus = BreakStatus.OPEN
    resolution_reason: str = ""
    comments: tuple[Comment, ...] = ()
    history: tuple[Event, ...] = ()
    scope: str = ""  # see Discrepancy.scope
    detail: str = ""

    @property
    def is_open(self) -> bool:
        return self.status is not BreakStatus.RESOLVED

    @property
    def resolved_on(self) -> dt.date | None:
        """The day of the latest resolution, while resolved."""
        if self.is_open:
            return None
        for event in reversed(self.history):
            if event.what in ("resolved", "auto-resolved"):
                return event.at.date()
        return None


def break_key(*parts: object) -> str:
    """A stable id for a subject: ``BRK-`` and 16 hex digits of SHA-256 over the parts
    (``str`` of each, stripped, joined by the unit separator). Same parts, same id, in every
    run and on every machine; e.g. ``break_key('positions', account, isin)``."""
    text = "\x1f".join(str(part).strip() for part in parts)
    return "BRK-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16].upper()


def _event(b: Break, at: dt.datetime, who: str, what: str, before: str, after: str) -> Break:
    return replace(b, history=(*b.history, Event(at, who, what, before, after)))


def _figures(kind: BreakKind, ours: Decimal, theirs: Decimal, difference: Decimal) -> str:
    return f"{kind.value} ours={ours} theirs={theirs} difference={difference}"


def open_break(found: Discrepancy, statement_date: dt.date, who: str,
               at: dt.datetime) -> Break:
    """A new break from a discrepancy first seen on the statement of ``statement_date``."""
    b = Break(break_id=found.key, kind=found.kind, subject=found.subject, ours=found.ours,
              theirs=found.theirs, difference=found.difference,
              currency_or_isin=found.currency_or_isin, first_seen=statement_date,
              last_seen=statement_date, scope=found.scope, detail=found.detail)
    return _event(b, at, who, "opened", "",
                  _figures(found.kind, found.ours, found.theirs, found.difference))


def _already_resolved(b: Break, action: str) -> Problem:
    return Problem(Rule.BREAK_ALREADY_RESOLVED,
                   f"break {b.break_id} ({b.subject}) is resolved ({b.resolution_reason}): "
                   f"cannot {action}")


def lookup(breaks: Mapping[str, Break], break_id: str) -> tuple[Break | None, list[Problem]]:
    """The break of ``break_id``, or UNKNOWN_BREAK."""
    found = breaks.get(break_id)
    if found is None:
        return None, [Problem(Rule.UNKNOWN_BREAK, f"no break {break_id!r}")]
    return found, []


def assign(b: Break, owner: str, who: str, at: dt.datetime) -> tuple[Break, list[Problem]]:
    """Give the break to ``owner`` ('' takes it back from whoever had it)."""
    if not b.is_open:
        return b, [_already_resolved(b, f"assign it to {owner!r}")]
    if owner == b.owner:
        return b, []
    return _event(replace(b, owner=owner), at, who, "assigned", b.owner, owner), []


def comment(b: Break, who: str, at: dt.datetime, text: str) -> tuple[Break, list[Problem]]:
    """Add a comment (also to a resolved break: people explain after the fact)."""
    if not text.strip():
        return b, [Problem(Rule.MISSING_REQUIRED_VALUE,
                           f"a comment on break {b.break_id} needs a text")]
    after = replace(b, comments=(*b.comments, Comment(who, at, text)))
    return _event(after, at, who, "commented", "", text), []


def start_investigating(b: Break, who: str, at: dt.datetime) -> tuple[Break, list[Problem]]:
    """OPEN → INVESTIGATING (a break already under investigation stays so)."""
    if not b.is_open:
        return b, [_already_resolved(b, "start investigating it")]
    if b.status is BreakStatus.INVESTIGATING:
        return b, []
    after = replace(b, status=BreakStatus.INVESTIGATING)
    return _event(after, at, who, "investigating", b.status.value, after.status.value), []


def resolve(b: Break, who: str, at: dt.datetime, reason: str) -> tuple[Break, list[Problem]]:
    """OPEN or INVESTIGATING → RESOLVED, with the reason why (required)."""
    if not b.is_open:
        return b, [_already_resolved(b, "resolve it again")]
    if not reason.strip():
        return b, [Problem(Rule.RESOLUTION_REASON_REQUIRED,
                           f"resolving break {b.break_id} ({b.subject}) needs a reason")]
    after = replace(b, status=BreakStatus.RESOLVED, resolution_reason=reason.strip())
    return _event(after, at, who, "resolved", b.status.value, _resolved(after)), []


def _resolved(b: Break) -> str:
    return f"{BreakStatus.RESOLVED.value}: {b.resolution_reason}"


class Reconciled(NamedTuple):
    """What one statement did to the breaks, each keyed by break id in id order."""

    updated: dict[str, Break]  # existing breaks found again (incl. reopened ones)
    new: dict[str, Break]
    auto_resolved: dict[str, Break]  # open breaks the statement now agrees with


def reconcile_breaks(existing: Mapping[str, Break], found: Iterable[Discrepancy],
                     statement_date: dt.date, who: str = "system", *,
                     covered: Iterable[str] | None = None, statement_id: str = "",
                     at: dt.datetime | None = None) -> Reconciled:
    """Fold one statement's ``found`` discrepancies into the ``existing`` breaks.

    ``covered`` are the scopes the statement speaks for (``matching.position_scopes`` /
    ``cash_scopes``); by default only the scopes of ``found``, so a statement that agrees on
    everything must name its scopes to resolve anything. ``at`` stamps the events (default:
    midnight of ``statement_date``; pass the time of the run so that events stay in order
    with people's). Breaks neither found nor covered are left out of the result. ``found``
    must hold each key once (matching guarantees it).
    """
    when = at if at is not None else dt.datetime.combine(statement_date, dt.time())
    findings = sorted(found, key=lambda d: d.key)
    by_key: dict[str, Discrepancy] = {}
    for d in findings:
        assert d.key not in by_key, f"discrepancy {d.key} ({d.subject}) found twice"
        by_key[d.key] = d
    scopes = frozenset(covered) if covered is not None else frozenset(
        d.scope for d in findings)
    updated: dict[str, Break] = {}
    new: dict[str, Break] = {}
    auto_resolved: dict[str, Break] = {}
    for key, d in by_key.items():
        before = existing.get(key)
        if before is None:
            new[key] = open_break(d, statement_date, who, when)
            continue
        after = _seen_again(before, d, statement_date, who, when)
        if after != before:
            updated[key] = after
    reason = f"agreed by statement {statement_id} of {statement_date.isoformat()}" \
        if statement_id else f"agreed by statement of {statement_date.isoformat()}"
    for key in sorted(existing):
        b = existing[key]
        if key in by_key or not b.is_open or b.scope not in scopes:
            continue
        if statement_date < b.last_seen:  # an older statement, arrived late
            continue
        resolved = replace(b, status=BreakStatus.RESOLVED, resolution_reason=reason)
        auto_resolved[key] = _event(resolved, when, who, "auto-resolved", b.status.value,
                                    _resolved(resolved))
    return Reconciled(updated, new, auto_resolved)


def _seen_again(b: Break, d: Discrepancy, statement_date: dt.date, who: str,
                at: dt.datetime) -> Break:
    if statement_date < b.last_seen:  # an older statement, arrived late: it changes nothing
        return b
    if not b.is_open and statement_date == b.last_seen:  # the statement it was resolved on
        return b
    after = b
    if not b.is_open:
        after = _event(replace(after, status=BreakStatus.OPEN, resolution_reason=""), at, who,
                       "reopened", _resolved(b), BreakStatus.OPEN.value)
    old = _figures(b.kind, b.ours, b.theirs, b.difference)
    now = _figures(d.kind, d.ours, d.theirs, d.difference)
    after = replace(after, kind=d.kind, ours=d.ours, theirs=d.theirs, difference=d.difference,
                    subject=d.subject, detail=d.detail, scope=d.scope,
                    last_seen=statement_date)
    if old != now:
        after = _event(after, at, who, "updated", old, now)
    return after


def age_in_business_days(b: Break, today: dt.date, calendar: SettlementCalendar | None = None,
                         currency_or_market: str | None = None) -> int:
    """Business days after ``first_seen`` up to and including ``today`` (or the day it was
    resolved, if earlier): a break first seen today is 0 days old.

    A business day is a payment day of ``currency_or_market`` (an ISO 4217 code) or a trading
    session of it (a MIC the calendar knows) in ``calendar``; ``currency_or_market`` defaults
    to the break's own currency (a cash break). Without a calendar (or a code), weekdays.
    """
    end = today
    resolved_on = b.resolved_on
    if resolved_on is not None and resolved_on < end:
        end = resolved_on
    code = currency_or_market
    if code is None and len(b.currency_or_isin) == 3:
        code = b.currency_or_isin
    count = 0
    day = b.first_seen
    while day < end:
        day += dt.timedelta(days=1)
        if calendar is None or code is None:
            business = day.weekday() < 5
        elif code in KNOWN_MICS:
            business = calendar.is_trading_session(day, code)
        else:
            business = calendar.is_payment_day(day, code)
        if business:
            count += 1
    return count
