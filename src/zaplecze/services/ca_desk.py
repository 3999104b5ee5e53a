"""Corporate actions as an operation: announcements in, entitlements shown, four-eyes approval.

    ca announce FILE          MT564 notifications become events (unknown event types are kept
                              for an operator, events on unknown securities wait for them)
    ca compute EVENT --by A   the entitlements per account, as they stand, shown to A
    ca approve EVENT --by B   B (not A) approves exactly what A was shown; the event then joins
                              the book's corporate actions and end of day applies it on its ex
                              date, as it does the events of corporate_actions.csv (the file
                              is the broker's own approved instruction)

Every announcement and every step is a row of ``ca_event_log`` (append-only); an event's state
is the replay of its rows through ``corporate_actions.lifecycle``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions import lifecycle
from zaplecze.corporate_actions.apply import Entitlement, apply
from zaplecze.corporate_actions.lifecycle import EventRecord
from zaplecze.corporate_actions.model import CorporateAction
from zaplecze.formats import mt564
from zaplecze.kernel.problems import BookError, Problem
from zaplecze.services.audit_trail import Actor
from zaplecze.services.audit_trail import record as audit
from zaplecze.services.ca_events import records
from zaplecze.services.eod import holdings
from zaplecze.services.settlement import keep_problems
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries


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
    rows = []
    for event in repo.corporate_actions(connection):
        if event.event_id not in found:
            rows.append(_row(event.event_id, event.kind.value, event.kind.value,
                             event.isin, "APPLIED" if event.event_id in applied
                             else "APPROVED", "corporate_actions.csv", "", "",
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
