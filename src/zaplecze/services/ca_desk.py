"""Corporate actions as an operation: announcements in, entitlements shown, four-eyes approval.

    ca announce FILE          MT564 notifications become events (unknown event types are kept
                              for an operator, events on unknown securities wait for them)
    ca compute EVENT --by A   the entitlements per account, as they stand, shown to A
    ca approve EVENT --by B   B (not A) approves exactly what A was shown; the event then joins
                              the book's corporate actions and end of day applies it on its ex
                              date, as it does the events of corporate_actions.csv (the file
                              is the broker's own approved instruction)
    ca reverse EVENT --reason R --by A
                              A requests the reversal of an applied event (announced or from
                              corporate_actions.csv) on the open day; B (not A) approves the
                              request with `zaplecze user approve REQUEST --hash H --by B`
                              (four_eyes: action ``corporate_action.reversal``), and in that
                              same transaction the reversal is booked: every entry of the event
                              undone by its opposite (``lifecycle.reversal_entries``), its
                              market claims cancelled, a ``ca_reversals`` record (and, for an
                              announced event, a ``reverse`` step of its log) and the audit
                              trail written

After a reversal the event is out of the books from the reversal's date: end of day does not
apply it again nor credit its cash, the lots and the dividends report leave it out as of that
date (earlier reports are reproduced as they were). It is not booked again either: a corrected
event is announced under a new reference.

Every announcement and every step is a row of ``ca_event_log`` (append-only); an event's state
is the replay of its rows through ``corporate_actions.lifecycle``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions import lifecycle
from zaplecze.corporate_actions.apply import Entitlement, apply
from zaplecze.corporate_actions.lifecycle import EventRecord
from zaplecze.corporate_actions.model import CorporateAction
from zaplecze.formats import mt564
from zaplecze.kernel.problems import BookError, Problem, Rule
from zaplecze.ledger.model import Entry
from zaplecze.services import ca_claims
from zaplecze.services.audit_trail import Actor, now
from zaplecze.services.audit_trail import record as audit
from zaplecze.services.ca_events import records, reversals
from zaplecze.services.eod import holdings
from zaplecze.services.settlement import keep_problems
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries
from zaplecze.store.journal import JournalWriter


@dataclass
class AnnounceReport:
    events: list[EventRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _log(connection: Connection, event_id: str, action: str, who: str, at: dt.datetime,
         payload: str, source: str = "") -> None:
    connection.execute(schema.ca_event_log.insert(), [{
        "event_id": event_id, "action": action, "who": who, "at": at.isoformat(),
        "payload": payload, "source": source}])


def announce(engine: Engine, path: Path, who: str) -> AnnounceReport:
    """Read a file of MT564s; each message is logged under its event (kept even when its type
    is not one we book), the same message twice changes nothing."""
    text = path.read_text(encoding="latin-1")
    announcements, problems = mt564.read_mt564(text, path.name)
    report = AnnounceReport(problems=list(problems))

    def work(connection: Connection) -> list[EventRecord]:
        state = records(connection)
        known_isins = set(repo.refdata(connection).instruments)
        touched = []
        at = _now()
        for announcement in announcements:
            before = state.get(announcement.event_reference)
            after, refused = lifecycle.receive(before, announcement, known_isins, who, at)
            report.problems += refused
            if before is not None and after is before:
                continue  # the same message again, or one the event refuses: nothing logged
            _log(connection, announcement.event_reference, "announce", who, at,
                 announcement.raw, path.name)
            state[announcement.event_reference] = after
            touched.append(announcement.event_reference)
        if report.problems:
            keep_problems(connection, report.problems, path.name)
        after_all = records(connection)
        return [after_all[event_id] for event_id in dict.fromkeys(touched)]

    report.events = with_retries(engine, work)
    return report


def entitlements(connection: Connection, record: EventRecord) -> list[Entitlement]:
    """What each account would get, computed from the holdings as they stand."""
    return entitled(connection, record.terms)


def entitled(connection: Connection, terms: CorporateAction | None) -> list[Entitlement]:
    """The entitlements of an event's terms over the holdings as they stand."""
    if terms is None:
        return []
    refdata = repo.refdata(connection)
    found = []
    for holding in holdings(connection, terms, refdata):
        _, entitlement = apply(terms, holding, refdata)
        if entitlement is not None:
            found.append(entitlement)
    return found


def _one(connection: Connection, event_id: str) -> EventRecord:
    record = records(connection).get(event_id)
    if record is None:
        raise BookError(f"unknown_event: no announced event {event_id}")
    reversal = reversals(connection).get(event_id)
    if reversal is not None:
        raise BookError(f"{Rule.EVENT_ALREADY_REVERSED}: {event_id} was reversed on "
                        f"{reversal.business_date} ({reversal.reason}); it is not booked "
                        "again: announce the corrected event under a new reference")
    return record


def _state(record: EventRecord) -> dict[str, str]:
    """An event's state for the audit trail."""
    return {"status": record.status.value, "prepared_by": record.prepared_by,
            "computed_payload_hash": record.computed_payload_hash,
            "approved_by": record.approved_by,
            "approved_payload_hash": record.approved_payload_hash}


def compute(engine: Engine, event_id: str, who: str, actor: Actor | None = None,
            ) -> tuple[EventRecord, list[Entitlement]]:
    """Compute the entitlements as they stand and show them to ``who`` (the maker). With an
    ``actor`` (the workbench) the step is also written to the audit trail."""
    def work(connection: Connection) -> tuple[EventRecord, list[Entitlement]]:
        record = _one(connection, event_id)
        shown = entitlements(connection, record)
        digest = lifecycle.payload_hash(shown)
        after, problems = lifecycle.compute(record, who, _now(), digest)
        if problems:
            raise BookError(str(problems[0]))
        _log(connection, event_id, "compute", who, _now(), digest)
        if actor is not None:
            audit(connection, actor, "ca.compute", "corporate_action", event_id,
                  _state(record), _state(after))
        return after, shown

    return with_retries(engine, work)


def approve(engine: Engine, event_id: str, who: str, expected_digest: str | None = None,
            actor: Actor | None = None) -> EventRecord:
    """Approve what was computed, if the entitlements are still exactly those shown; the
    event then joins the book's corporate actions for end of day to apply.

    ``expected_digest``: the payload hash the approver was shown (the workbench sends it);
    entitlements whose hash differs from it are refused (``payload_changed``)."""
    def work(connection: Connection) -> EventRecord:
        record = _one(connection, event_id)
        digest = lifecycle.payload_hash(entitlements(connection, record))
        after, problems = lifecycle.approve(record, who, _now(), digest)
        if problems:
            raise BookError(str(problems[0]))
        if expected_digest is not None and expected_digest != digest:
            raise BookError(f"payload_changed: the entitlements of {event_id} are not those "
                            f"you were shown (payload {digest}); read them again")
        if after is record:
            return after  # approved already, this very payload: nothing more to write
        _log(connection, event_id, "approve", who, _now(), digest)
        assert after.terms is not None
        sequence = int(connection.exec_driver_sql(
            "SELECT COALESCE(MAX(sequence), 0) FROM corporate_actions").scalar() or 0) + 1
        connection.execute(schema.corporate_actions.insert(), [
            repo.corporate_action_record(after.terms, sequence,
                                         lifecycle.terms_hash(after.terms))])
        if actor is not None:
            audit(connection, actor, "ca.approve", "corporate_action", event_id,
                  _state(record), _state(after))
        return after

    return with_retries(engine, work)


def report_rows(connection: Connection) -> list[dict[str, str]]:
    """``report corporate-actions``: every event, announced or from corporate_actions.csv,
    with its state and how many accounts are entitled."""
    found = records(connection)
    applied = {str(r[0]): int(r[1]) for r in connection.exec_driver_sql(
        "SELECT event_id, accounts_entitled FROM ca_applications")}
    reversed_ = reversals(connection)
    rows = []
    for event in repo.corporate_actions(connection):
        if event.event_id not in found:
            status = "REVERSED" if event.event_id in reversed_ else \
                "APPLIED" if event.event_id in applied else "APPROVED"
            rows.append(_row(event.event_id, event.kind.value, event.kind.value,
                             event.isin, status, "corporate_actions.csv", "", "",
                             applied.get(event.event_id), event.ex_date, event.pay_date))
    for event_id, record in found.items():
        terms = record.terms
        rows.append(_row(event_id, record.kind.value if record.kind else "",
                         record.event_type, record.isin or "", record.status.value,
                         ",".join(record.announcements), record.prepared_by,
                         record.approved_by, applied.get(event_id),
                         terms.ex_date if terms else None, terms.pay_date if terms else None))
    return sorted(rows, key=lambda r: (r["ex_date"], r["event_id"]))


def _row(event_id: str, kind: str, event_type: str, isin: str, status: str, source: str,
         prepared_by: str, approved_by: str, entitled: int | None, ex_date: dt.date | None,
         pay_date: dt.date | None) -> dict[str, str]:
    return {"event_id": event_id, "kind": kind, "event_type": event_type, "isin": isin,
            "ex_date": ex_date.isoformat() if ex_date else "",
            "pay_date": pay_date.isoformat() if pay_date else "", "status": status,
            "prepared_by": prepared_by, "approved_by": approved_by,
            "accounts_entitled": "" if entitled is None else str(entitled), "source": source}


def entitlement_rows(shown: Sequence[Entitlement]) -> list[dict[str, str]]:
    return [{"account": e.account, "isin": e.isin, "quantity": str(e.quantity),
             "new_quantity": str(e.new_quantity), "gross": str(e.gross),
             "withholding": str(e.withholding), "net": str(e.net), "currency": e.currency,
             "pay_date": e.pay_date.isoformat()} for e in shown]


def event_detail(connection: Connection, event_id: str,
                 ) -> tuple[dict[str, str], EventRecord | None, list[Entitlement]]:
    """One event's report row, its operational record (None for a corporate_actions.csv
    event) and its entitlements over the holdings as they stand."""
    row = next((r for r in report_rows(connection) if r["event_id"] == event_id), None)
    if row is None:
        raise BookError(f"unknown_event: no event {event_id}")
    record = records(connection).get(event_id)
    if record is not None:
        return row, record, entitlements(connection, record)
    terms = next((e for e in repo.corporate_actions(connection) if e.event_id == event_id),
                 None)
    return row, None, entitled(connection, terms)


# --- reversal (four eyes: services/four_eyes.py, action corporate_action.reversal) ------------

REVERSAL_ACTION = "corporate_action.reversal"
_EVENT_KEYS = ("ca:%", "ca-cash:%", "ca-claim:%", "ca-claim-paid:%")


@dataclass(frozen=True)
class ReversalPlan:
    event_id: str
    day: dt.date
    reason: str
    record: EventRecord | None  # the announced event's state; None for corporate_actions.csv
    entries: list[Entry]  # the reversal entries


def event_entries(connection: Connection, event_id: str) -> list[Entry]:
    """Every journal entry of an applied event, in journal order: its ex-date entries, the
    pending transformations with their POST and VOID parts, its pay-date cash, its market
    claims and their compensations."""
    m = repo.mark(connection)
    likes = " OR ".join(["entry_key LIKE " + m] * len(_EVENT_KEYS))
    keys = [str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT entry_key FROM entries WHERE ref = {m} AND ({likes} OR target_key LIKE {m}) "
        f"ORDER BY sequence", (event_id, *_EVENT_KEYS, "ca:%"))]
    found = repo.entries_by_key(connection, keys)
    return [found[key] for key in keys]


def reversal_plan(connection: Connection, payload: dict[str, Any]) -> ReversalPlan:
    """What a reversal request asks for, checked against the books as they stand: the event
    is applied and not reversed, the day is the open one (after every closed day and every
    entry of the event), a reason is given. A BookError names the rule broken."""
    event_id = str(payload.get("event_id", "")).strip()
    terms = next((e for e in repo.corporate_actions(connection) if e.event_id == event_id),
                 None)
    record = records(connection).get(event_id)
    if terms is None and record is None:
        raise BookError(f"{Rule.UNKNOWN_EVENT}: no event {event_id!r}")
    done = reversals(connection).get(event_id)
    if done is not None:
        raise BookError(f"{Rule.EVENT_ALREADY_REVERSED}: {event_id} was reversed on "
                        f"{done.business_date} by {done.approved_by} ({done.reason})")
    applied = connection.exec_driver_sql(
        f"SELECT applied_on FROM ca_applications WHERE event_id = {repo.mark(connection)}",
        (event_id,)).first()
    if applied is None:
        status = record.status.value if record is not None else "APPROVED"
        raise BookError(f"{Rule.EVENT_NOT_APPLIED}: {event_id} is {status}: only an applied "
                        "event is reversed (one not applied yet is withdrawn)")
    reason = str(payload.get("reason", "")).strip()
    if not reason:
        raise BookError(f"{Rule.MISSING_REQUIRED_VALUE}: a reversal needs a reason")
    try:
        day = dt.date.fromisoformat(str(payload.get("business_date", "")))
    except ValueError:
        raise BookError(f"{Rule.INVALID_DATE}: business_date must be YYYY-MM-DD") from None
    if record is not None:
        _, problems = lifecycle.reverse(record, "check", _now(), reason)
        if problems:
            raise BookError(str(problems[0]))
    ca_claims.check_open(connection, day, f"the reversal of {event_id}")
    open_day = ca_claims.open_day(connection)
    if day > open_day:
        raise BookError(f"{Rule.DATES_OUT_OF_ORDER}: the reversal of {event_id} is dated "
                        f"{day}, after the open day {open_day}: end of day would act on the "
                        f"event in between; date it {open_day}")
    entries = event_entries(connection, event_id)
    latest = max((entry.business_date for entry in entries), default=None)
    if latest is not None and day < latest:
        raise BookError(f"{Rule.DATES_OUT_OF_ORDER}: the reversal of {event_id} is dated "
                        f"{day}, before its entry of {latest}")
    return ReversalPlan(event_id, day, reason, record,
                        lifecycle.reversal_entries(entries, day, event_id, reason))


def validate_reversal(connection: Connection, payload: dict[str, Any]) -> None:
    reversal_plan(connection, payload)


def apply_reversal(connection: Connection, payload: dict[str, Any], actor: Actor) -> None:
    """The approved reversal, booked in the approval's transaction."""
    plan = reversal_plan(connection, payload)
    from zaplecze.services import four_eyes  # it registers this action: imported by then

    digest = four_eyes.payload_hash(payload)
    m = repo.mark(connection)
    request = connection.exec_driver_sql(
        f"SELECT request_id, maker FROM approval_requests WHERE action = {m} AND "
        f"payload_hash = {m} AND request_id IN (SELECT request_id FROM approval_decisions "
        f"WHERE decision = 'approved') ORDER BY made_at DESC LIMIT 1",
        (REVERSAL_ACTION, digest)).first()
    request_id, maker = (str(request[0]), str(request[1])) if request else ("", "")
    writer = JournalWriter(connection)
    writer.extend(plan.entries)
    writer.flush()
    at = now()
    connection.execute(schema.ca_reversals.insert(), [{
        "event_id": plan.event_id, "business_date": plan.day.isoformat(),
        "reason": plan.reason, "requested_by": maker, "approved_by": actor.username,
        "request_id": request_id, "entries": len(plan.entries), "recorded_at": at}])
    if plan.record is not None:
        _log(connection, plan.event_id, "reverse", actor.username, _now(), plan.reason,
             f"request {request_id}")
    cancelled = ca_claims.cancel_claims(connection, plan.event_id, plan.day, actor.username,
                                        plan.reason)
    audit(connection, actor, "ca.reverse", "corporate_action", plan.event_id,
          {"status": "APPLIED"},
          {"status": "REVERSED", "business_date": plan.day.isoformat(), "reason": plan.reason,
           "requested_by": maker, "request_id": request_id,
           "entries": [entry.key for entry in plan.entries], "claims_cancelled": cancelled})
