"""The corporate-action events in operation, as the replay of ``ca_event_log`` (announcements
received, operators' steps) through ``corporate_actions.lifecycle``. End of day reads it to
apply only what is approved, as approved; the desk (services/ca_desk.py) writes the log.

Reversals (``ca_reversals``, one per event, from corporate_actions.csv or announced) take an
applied event out of the books from their business date on: reports as of that date or later
leave it out (lots, dividends), end of day never applies it again nor credits its cash.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from zaplecze.corporate_actions import lifecycle
from zaplecze.corporate_actions.lifecycle import EventRecord, EventStatus
from zaplecze.formats import mt564
from zaplecze.store import repo


def records(connection: Connection) -> dict[str, EventRecord]:
    """Every announced event's state: the replay of the log."""
    known = set(repo.refdata(connection).instruments)
    applied = {str(r[0]) for r in connection.exec_driver_sql(
        "SELECT event_id FROM ca_applications")}
    found: dict[str, EventRecord] = {}
    for row in connection.exec_driver_sql("SELECT * FROM ca_event_log ORDER BY id"):
        at = dt.datetime.fromisoformat(row.at)
        record = found.get(row.event_id)
        if row.action == "announce":
            announcements, _ = mt564.read_mt564(row.payload, row.source)
            for announcement in announcements:
                record, _ = lifecycle.receive(record, announcement, known, row.who, at)
        elif record is not None and row.action == "compute":
            record, _ = lifecycle.compute(record, row.who, at, row.payload)
        elif record is not None and row.action == "approve":
            record, _ = lifecycle.approve(record, row.who, at, row.payload)
        elif record is not None and row.action == "reverse":
            if record.status is EventStatus.APPROVED and row.event_id in applied:
                record, _ = lifecycle.apply(record, "end of day", at,
                                            record.approved_payload_hash)
            record, _ = lifecycle.reverse(record, row.who, at, row.payload)
        if record is not None:
            if record.status is EventStatus.WAITING_FOR_REFERENCE_DATA:
                record, _ = lifecycle.reference_data_arrived(record, known, "system", at)
            found[row.event_id] = record
    for event_id, record in found.items():
        if event_id in applied and record.status is EventStatus.APPROVED:
            found[event_id], _ = lifecycle.apply(record, "end of day", record.history[-1].at,
                                                 record.approved_payload_hash)
    return found


def hold_reason(record: EventRecord, payload: str) -> str:
    """Why end of day must not apply an event of the operation now ('' when it may): it is
    not approved (or was withdrawn since), or the entitlements as they stand (``payload``) are
    not those approved."""
    if record.status is not EventStatus.APPROVED:
        return f"{record.event_id} is {record.status.value}, not APPROVED"
    if payload != record.approved_payload_hash:
        return (f"{record.event_id}: the entitlements changed since {record.approved_by} "
                f"approved them; compute and approve them again")
    return ""


@dataclass(frozen=True, slots=True)
class Reversal:
    event_id: str
    business_date: dt.date
    reason: str
    requested_by: str
    approved_by: str


def reversals(connection: Connection) -> dict[str, Reversal]:
    """Every reversed event's reversal, by event."""
    return {str(row[0]): Reversal(str(row[0]), dt.date.fromisoformat(row[1]), str(row[2]),
                                  str(row[3]), str(row[4]))
            for row in connection.exec_driver_sql(
                "SELECT event_id, business_date, reason, requested_by, approved_by "
                "FROM ca_reversals")}


def reversed_by(connection: Connection, as_of: dt.date) -> set[str]:
    """The events reversed on or before ``as_of``: out of the books as of that day."""
    m = repo.mark(connection)
    return {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT event_id FROM ca_reversals WHERE business_date <= {m}", (as_of.isoformat(),))}
