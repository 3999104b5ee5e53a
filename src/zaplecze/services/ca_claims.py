"""Market claims in operation: raised by end of day, booked on the pay date, compensated by an
operator; the pure rules are ``corporate_actions/claims.py``.

    end of day   for each applied cash dividend not reversed, from its ex date to its pay
                 date: the trades dated before the ex date with an instrumented counterparty
                 (settled by confirmation) that did not deliver in full by the end of the
                 record date raise a claim (once per event and trade), RECEIVABLE when we
                 bought, PAYABLE when we sold; on the pay date each claim is booked between
                 the bank and ``claim:<counterparty>``
    ca claims    every claim with its status (RAISED, OPEN, COMPENSATED, CANCELLED)
    ca compensate CLAIM --date D
                 the counterparty paid (or we paid it) on D, an open day: the opposite entry,
                 the claim account back to zero, the claim COMPENSATED (audited)
    reversal     reversing the event (services/ca_desk.py) reverses the claims' entries with
                 the event's others and CANCELS its claims

Compensation is by an operator, on the day the money moves (as a bank or CSD statement shows
it), not automatically: a claim is paid when the counterparty pays, which the book cannot
know by itself. ``claims`` (`zaplecze ca claims`) lists what is outstanding.

The claims (``market_claims``) and what became of them (``market_claim_events``) are records,
append-only; a claim's status is the fold of its events and of the journal (booked = its
pay-date entry is there). Every amount of a claim is in the journal under its keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.corporate_actions.claims import (
    ClaimableTrade,
    ClaimDirection,
    ClaimStatus,
    MarketClaim,
    booked_on,
    booking_key,
    claim_entry,
    compensation_entry,
    detect,
)
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.calendar import weekdays
from zaplecze.kernel.money import decimal_of
from zaplecze.kernel.problems import BookError, Rule
from zaplecze.refdata.model import RefData
from zaplecze.services import settlement
from zaplecze.services.audit_trail import Actor, now, record
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries
from zaplecze.store.journal import JournalWriter
from zaplecze.trading.booking import trade_key

COLUMNS = ("claim_id", "event_id", "trade_id", "account", "counterparty", "direction", "isin",
           "quantity", "rate", "gross", "currency", "record_date", "pay_date", "raised_on",
           "booked_on", "status", "closed_on")


@dataclass(frozen=True, slots=True)
class ClaimState:
    claim: MarketClaim
    status: ClaimStatus
    booked: bool
    closed_on: dt.date | None = None  # compensated or cancelled on


# --- end of day ---------------------------------------------------------------------------------


def _claimable(connection: Connection, event: CorporateAction, refdata: RefData,
               ) -> list[ClaimableTrade]:
    """The event security's trades dated before its ex date, with a counterparty that has
    standing settlement instructions, not cancelled and not settled in full by the end of its
    record date."""
    m = repo.mark(connection)
    record_day = event.record_date.isoformat()
    rows = connection.exec_driver_sql(
        f"SELECT t.* FROM trades t WHERE t.isin = {m} AND t.trade_date < {m} AND "
        f"t.counterparty IN (SELECT counterparty FROM ssis) AND NOT EXISTS (SELECT 1 FROM "
        f"cancels c WHERE c.trade_id = t.trade_id) AND NOT EXISTS (SELECT 1 FROM entries x "
        f"WHERE x.entry_key = 'post:trade:' || t.trade_id AND x.business_date <= {m}) "
        f"ORDER BY t.sequence",
        (event.isin, event.ex_date.isoformat(), record_day)).all()
    if not rows:
        return []
    ssis = settlement.ssi_book(connection)
    scale = refdata.instruments[event.isin].quantity_scale
    found = []
    for row in rows:
        trade = repo.trade_of(row)
        if not settlement.is_instrumented(trade, refdata, ssis):
            continue
        settled = connection.exec_driver_sql(
            f"SELECT COALESCE(SUM(p.amount), 0) FROM entries x JOIN postings p ON "
            f"p.entry_sequence = x.sequence WHERE x.target_key = {m} AND x.phase = 'POST' AND "
            f"x.business_date <= {m} AND p.asset = {m} AND (p.gl_account LIKE {m} OR "
            f"p.gl_account LIKE {m})",
            (trade_key(trade.trade_id), record_day, event.isin, "client:%", "house:%")).scalar()
        found.append(ClaimableTrade(
            trade.trade_id, trade.account, trade.counterparty, trade.side.value,
            trade.quantity, decimal_of(abs(int(settled or 0)), scale), trade.trade_date,
            trade.settlement_date))
    return found


def raise_claims(connection: Connection, day: dt.date, refdata: RefData,
                 applied_today: Collection[str] = ()) -> list[MarketClaim]:
    """Raise the claims known at the end of ``day`` of the cash dividends applied and not
    reversed, from their ex date to their pay date (and of those applied late, on the day
    they are applied); each (event, trade) once."""
    if connection.exec_driver_sql("SELECT 1 FROM ssis LIMIT 1").first() is None:
        return []  # no instrumented counterparty: every trade settles on its date
    applied = {str(row[0]) for row in connection.exec_driver_sql(
        "SELECT event_id FROM ca_applications")}
    out = _reversed_by(connection, day)
    events = [event for event in repo.corporate_actions(connection)
              if event.kind is CaKind.CASH_DIVIDEND and event.event_id in applied
              and event.event_id not in out
              and (event.ex_date <= day <= event.cash_date or event.event_id in applied_today)]
    if not events:
        return []
    raised: list[MarketClaim] = []
    known = {(str(r[0]), str(r[1])) for r in connection.exec_driver_sql(
        "SELECT event_id, trade_id FROM market_claims")}
    for event in events:
        for claim in detect(event, _claimable(connection, event, refdata), day):
            if (claim.event_id, claim.trade_id) not in known:
                raised.append(claim)
    if raised:
        connection.execute(schema.market_claims.insert(), [_record(c) for c in raised])
    return raised


def book_claims(connection: Connection, writer: JournalWriter, day: dt.date) -> int:
    """Book the claims whose pay date has come (not those cancelled, nor of an event reversed
    by then)."""
    m = repo.mark(connection)
    rows = connection.exec_driver_sql(
        f"SELECT c.* FROM market_claims c WHERE c.pay_date <= {m} AND NOT EXISTS (SELECT 1 "
        f"FROM entries e WHERE e.entry_key = 'ca-claim:' || c.event_id || ':' || c.trade_id) "
        f"AND NOT EXISTS (SELECT 1 FROM market_claim_events v WHERE v.claim_id = c.claim_id) "
        f"AND NOT EXISTS (SELECT 1 FROM ca_reversals r WHERE r.event_id = c.event_id AND "
        f"r.business_date <= {m}) ORDER BY c.pay_date, c.event_id, c.trade_id",
        (day.isoformat(), day.isoformat())).all()
    for row in rows:
        writer.append(claim_entry(claim_of(row)))
    return len(rows)


def _reversed_by(connection: Connection, day: dt.date) -> set[str]:
    m = repo.mark(connection)
    return {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT event_id FROM ca_reversals WHERE business_date <= {m}", (day.isoformat(),))}


def _record(claim: MarketClaim) -> dict[str, object]:
    return {"claim_id": claim.claim_id, "event_id": claim.event_id, "trade_id": claim.trade_id,
            "account": claim.account, "counterparty": claim.counterparty,
            "direction": claim.direction.value, "isin": claim.isin,
            "quantity": str(claim.quantity), "rate": str(claim.rate), "gross": str(claim.gross),
            "currency": claim.currency, "record_date": claim.record_date.isoformat(),
            "pay_date": claim.pay_date.isoformat(), "raised_on": claim.raised_on.isoformat(),
            "status": ClaimStatus.RAISED.value}


def claim_of(row: Any) -> MarketClaim:
    return MarketClaim(
        row.claim_id, row.event_id, row.trade_id, row.account, row.counterparty,
        ClaimDirection(row.direction), row.isin, Decimal(row.quantity), Decimal(row.rate),
        Decimal(row.gross), row.currency, dt.date.fromisoformat(row.record_date),
        dt.date.fromisoformat(row.pay_date), dt.date.fromisoformat(row.raised_on))


# --- reading ------------------------------------------------------------------------------------


def states(connection: Connection, event_id: str | None = None,
           claim_id: str | None = None) -> list[ClaimState]:
    """Claims with their status: the fold of their events and of the journal."""
    m = repo.mark(connection)
    where, params = "", ()
    if claim_id is not None:
        where, params = f" WHERE claim_id = {m}", (claim_id,)
    elif event_id is not None:
        where, params = f" WHERE event_id = {m}", (event_id,)
    claims = [claim_of(row) for row in connection.exec_driver_sql(
        f"SELECT * FROM market_claims{where} ORDER BY raised_on, event_id, trade_id",
        params).all()]
    if not claims:
        return []
    ids = [claim.claim_id for claim in claims]
    ended: dict[str, tuple[ClaimStatus, dt.date]] = {}
    booked: set[str] = set()
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        marks = ", ".join([m] * len(chunk))
        for claim_key, what, day in connection.exec_driver_sql(
                f"SELECT claim_id, what, business_date FROM market_claim_events WHERE claim_id "
                f"IN ({marks}) ORDER BY id", tuple(chunk)):
            ended[str(claim_key)] = (ClaimStatus(what), dt.date.fromisoformat(day))
    keys = {booking_key(claim): claim.claim_id for claim in claims}
    key_list = list(keys)
    for start in range(0, len(key_list), 900):
        chunk = key_list[start:start + 900]
        marks = ", ".join([m] * len(chunk))
        for (key,) in connection.exec_driver_sql(
                f"SELECT entry_key FROM entries WHERE entry_key IN ({marks})", tuple(chunk)):
            booked.add(keys[str(key)])
    found = []
    for claim in claims:
        is_booked = claim.claim_id in booked
        if claim.claim_id in ended:
            status, day = ended[claim.claim_id]
            found.append(ClaimState(claim, status, is_booked, day))
        else:
            found.append(ClaimState(claim, ClaimStatus.OPEN if is_booked
                                    else ClaimStatus.RAISED, is_booked))
    return found


def report_rows(connection: Connection) -> list[dict[str, str]]:
    """`zaplecze ca claims`: every claim, its figures and its status."""
    rows = []
    for state in states(connection):
        c = state.claim
        rows.append({
            "claim_id": c.claim_id, "event_id": c.event_id, "trade_id": c.trade_id,
            "account": c.account, "counterparty": c.counterparty,
            "direction": c.direction.value, "isin": c.isin, "quantity": _plain(c.quantity),
            "rate": _plain(c.rate), "gross": str(c.gross), "currency": c.currency,
            "record_date": c.record_date.isoformat(), "pay_date": c.pay_date.isoformat(),
            "raised_on": c.raised_on.isoformat(),
            "booked_on": booked_on(c).isoformat() if state.booked else "",
            "status": state.status.value,
            "closed_on": state.closed_on.isoformat() if state.closed_on else ""})
    return rows


def _plain(value: Decimal) -> str:
    return "0" if value == 0 else format(value.normalize(), "f")


# --- operators' steps ---------------------------------------------------------------------------


def open_day(connection: Connection) -> dt.date:
    """The first business day end of day has not closed: what a booking made now is dated."""
    last = repo.last_eod(connection)
    if last is None:
        return dt.date.today()
    return weekdays(last + dt.timedelta(days=1), last + dt.timedelta(days=7))[0]


def check_open(connection: Connection, day: dt.date, what: str) -> None:
    """A booking made now may not go into a day end of day has closed (its reports are
    final)."""
    last = repo.last_eod(connection)
    if last is not None and day <= last:
        raise BookError(f"{Rule.DAY_ALREADY_CLOSED}: {what} dated {day}: end of day has closed "
                        f"every day through {last}; date it {open_day(connection)} or later")


def compensate(engine: Engine, claim_id: str, day: dt.date | None, actor: Actor) -> ClaimState:
    """The claim paid on ``day`` (default: the open day): its opposite entry, COMPENSATED."""
    def work(connection: Connection) -> ClaimState:
        found = states(connection, claim_id=claim_id)
        if not found:
            raise BookError(f"{Rule.UNKNOWN_CLAIM}: no market claim {claim_id}")
        state = found[0]
        on = day or open_day(connection)
        if state.status is not ClaimStatus.OPEN:
            why = {ClaimStatus.RAISED: f"it is booked on its pay date {state.claim.pay_date} "
                                       "by end of day; compensate it after that",
                   ClaimStatus.COMPENSATED: f"compensated on {state.closed_on}",
                   ClaimStatus.CANCELLED: f"cancelled on {state.closed_on} (its event "
                                          "was reversed)"}[state.status]
            raise BookError(f"{Rule.CLAIM_NOT_OPEN}: {claim_id} is {state.status.value}: {why}")
        check_open(connection, on, f"the compensation of {claim_id}")
        entry = compensation_entry(state.claim, on)
        writer = JournalWriter(connection)
        writer.append(entry)
        writer.flush()
        connection.execute(schema.market_claim_events.insert(), [{
            "claim_id": claim_id, "what": ClaimStatus.COMPENSATED.value,
            "business_date": on.isoformat(), "entry_key": entry.key, "who": actor.username,
            "at": now(), "detail": entry.memo}])
        record(connection, actor, "ca.claim.compensate", "market_claim", claim_id,
               {"status": state.status.value},
               {"status": ClaimStatus.COMPENSATED.value, "business_date": on.isoformat(),
                "entry": entry.key, "gross": str(state.claim.gross),
                "currency": state.claim.currency})
        return states(connection, claim_id=claim_id)[0]

    return with_retries(engine, work)


def cancel_claims(connection: Connection, event_id: str, day: dt.date, who: str,
                  reason: str) -> list[str]:
    """The claims of a reversed event are CANCELLED on the reversal's date (their entries are
    reversed with the event's others); those cancelled already are left as they are."""
    cancelled = [state.claim.claim_id for state in states(connection, event_id=event_id)
                 if state.status is not ClaimStatus.CANCELLED]
    if cancelled:
        connection.execute(schema.market_claim_events.insert(), [{
            "claim_id": claim, "what": ClaimStatus.CANCELLED.value,
            "business_date": day.isoformat(), "entry_key": "", "who": who, "at": now(),
            "detail": f"event {event_id} reversed: {reason}"} for claim in cancelled])
    return cancelled
