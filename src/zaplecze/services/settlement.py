"""The settlement desk: instruct, hear back, settle what was confirmed, chase what fails.

A trade whose street-side counterparty has a standing settlement instruction (``ssis.csv``)
is *instrumented*: it settles only when the depository confirms it — in full or in parts —
never from the calendar alone. Every other trade keeps settling on its settlement date at end
of day (the auto-settle path the golden scenario and the demo's plain book use).

    booked trade ─▶ obligation (gross, or net per SSI) ─▶ instruction (sese.023 / MT540–543)
    status advice (sese.024 / MT548) ─▶ matched, unmatched, pending with reasons, cancelled
    confirmation (sese.025 / MT544–547) ─▶ POST entries for the settled part of each trade
    past the intended settlement date, still to settle ─▶ a fail: aged, CSDR-penalised daily

Instructions and the messages received are records, never changed; an instruction's state is
the fold of its messages through ``settlement.lifecycle``. Net obligations that net to nothing
(or move only cash) need no securities instruction: their trades settle on the settlement
date by netting, like the auto-settled ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.money import currency_scale, units
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting, settle, settle_part
from zaplecze.refdata.model import RefData
from zaplecze.settlement import lifecycle, penalties
from zaplecze.settlement.lifecycle import InstructionState, InstructionStatus
from zaplecze.settlement.model import (
    Confirmation,
    Direction,
    Function,
    Instruction,
    Party,
    Payment,
    StatusAdvice,
    StatusKind,
)
from zaplecze.settlement.obligations import (
    Leg,
    Obligation,
    instruction_for,
    leg_of,
    make_reference,
    net_obligations,
)
from zaplecze.settlement.ssi import SSI, SSIBook
from zaplecze.store import repo, schema
from zaplecze.store.journal import JournalWriter
from zaplecze.trading.booking import trade_key
from zaplecze.trading.model import Trade

# Our own BIC as account owner on every instruction (configuration; a test BIC by default).
FIRM_BIC = os.environ.get("ZAPLECZE_FIRM_BIC", "ZAPLPLPWXXX")
# Markets whose CSDs apply EU CSDR settlement discipline (cash penalties, buy-ins).
CSDR_MARKETS = frozenset({"XWAR", "XETR", "XFRA", "XPAR", "XAMS", "XBRU", "XLIS", "XMIL",
                          "XDUB", "XMAD"})
# The central banks' overnight lending rates for lack-of-cash penalties, annual fractions,
# with the date each took effect: the NBP lombard rate (reference rate + 0.50) and the ECB
# marginal lending facility. Kept here until they come as reference data; operations must add
# each new decision (a day after the last one uses the last rate known).
OVERNIGHT_RATES: dict[str, tuple[tuple[dt.date, Decimal], ...]] = {
    "PLN": ((dt.date(2022, 9, 8), Decimal("0.0725")), (dt.date(2023, 9, 7), Decimal("0.0650")),
            (dt.date(2023, 10, 5), Decimal("0.0625")), (dt.date(2025, 5, 8), Decimal("0.0575")),
            (dt.date(2025, 7, 3), Decimal("0.0550")), (dt.date(2025, 9, 4), Decimal("0.0525")),
            (dt.date(2025, 10, 9), Decimal("0.0500"))),
    "EUR": ((dt.date(2023, 9, 20), Decimal("0.0475")), (dt.date(2024, 6, 12), Decimal("0.0450")),
            (dt.date(2024, 9, 18), Decimal("0.0390")), (dt.date(2024, 10, 23), Decimal("0.0365")),
            (dt.date(2024, 12, 18), Decimal("0.0340")), (dt.date(2025, 2, 5), Decimal("0.0315")),
            (dt.date(2025, 3, 12), Decimal("0.0290")), (dt.date(2025, 4, 23), Decimal("0.0265")),
            (dt.date(2025, 6, 11), Decimal("0.0240"))),
}
PENALTY_INCOME = "income:csdr_penalties"
# Pending reasons naming a lack (ISO 15022 / ISO 20022 codes): of securities — the delivering
# side's — or of cash — the paying side's. LACK/MONY are said of the instruction's owner's side
# by some CSDs and CLAC/CMON of the counterparty's; which side fails follows from who delivers
# or pays, so both spellings are read the same way.
LACK_OF_SECURITIES = frozenset({"LACK", "CLAC", "SBLO"})
LACK_OF_CASH = frozenset({"MONY", "CMON", "CASH", "CLAT"})


def penalty_account(place_of_settlement: str) -> str:
    """What we owe the CSD in penalties (positive) or it owes us (negative)."""
    return f"penalty:{place_of_settlement}"


# --- reading what is stored --------------------------------------------------------------------


def ssi_book(connection: Connection) -> SSIBook:
    rows = connection.execute(schema.ssis.select()).all()
    book, _ = SSIBook.build(SSI(
        counterparty=r.counterparty, market=r.market, currency=r.currency,
        place_of_settlement=r.place_of_settlement, counterparty_bic=r.counterparty_bic,
        counterparty_account=r.counterparty_account, safekeeping_account=r.safekeeping_account,
        payment=Payment(r.payment), netting=bool(r.netting)) for r in rows)
    return book


def is_instrumented(trade: Trade, refdata: RefData, ssis: SSIBook) -> bool:
    if not ssis:
        return False
    return ssis.find(trade.counterparty, refdata.instruments[trade.isin].mic,
                     trade.currency) is not None


@dataclass
class Instructed:
    """One stored instruction with its trades and its state (the fold of its messages)."""

    instruction: Instruction
    counterparty: str
    created_on: dt.date
    legs: dict[str, tuple[Decimal, Decimal]]  # trade id -> (signed quantity, signed cash)
    state: InstructionState
    seen: set[str] = field(default_factory=set)  # fingerprints of messages applied


def instruction_of(row: Any) -> Instruction:
    return Instruction(
        reference=row.reference, function=Function(row.function),
        direction=Direction(row.direction), payment=Payment(row.payment),
        trade_date=dt.date.fromisoformat(row.trade_date),
        settlement_date=dt.date.fromisoformat(row.settlement_date), isin=row.isin,
        quantity=Decimal(row.quantity), amount=Decimal(row.amount) if row.amount else None,
        currency=row.currency or None, account_owner=FIRM_BIC,
        safekeeping_account=row.safekeeping_account,
        place_of_settlement=row.place_of_settlement,
        counterparty=Party(row.counterparty_bic, row.counterparty_account),
        linked_reference=row.linked_reference or None,
        partial_allowed=bool(row.partial_allowed),
        creation=dt.datetime.fromisoformat(row.created_at))


def instructions(connection: Connection, references: Sequence[str] | None = None, *,
                 open_through: dt.date | None = None, as_of: dt.date | None = None,
                 ) -> dict[str, Instructed]:
    """Our new-message instructions (not the cancellation messages) with their states: all,
    the given ``references``, or (``open_through``) those due by that date with no final
    outcome yet. ``as_of``: the state at the end of that day (messages received by then)."""
    m = repo.mark(connection)
    where, params = "WHERE i.function = 'NEWM'", ()
    if references is not None:
        if not references:
            return {}
        where += f" AND i.reference IN ({', '.join([m] * len(references))})"
        params = tuple(references)
    if open_through is not None:
        where += (f" AND i.settlement_date <= {m} AND NOT EXISTS (SELECT 1 FROM "
                  f"instruction_outcomes o WHERE o.reference = i.reference AND "
                  f"o.business_date <= {m})")
        params += (open_through.isoformat(), (as_of or open_through).isoformat())
    if as_of is not None:
        where += f" AND i.created_on <= {m}"
        params += (as_of.isoformat(),)
    found: dict[str, Instructed] = {}
    for row in connection.exec_driver_sql(
            f"SELECT i.* FROM settlement_instructions i {where} ORDER BY i.sequence", params):
        instruction = instruction_of(row)
        found[row.reference] = Instructed(instruction, row.counterparty,
                                          dt.date.fromisoformat(row.created_on), {},
                                          lifecycle.mark_sent(lifecycle.new_state(instruction)))
    if not found:
        return found
    keys = list(found)
    received = f" AND received_on <= {m}" if as_of is not None else ""
    for start in range(0, len(keys), 900):
        chunk = keys[start:start + 900]
        marks = ", ".join([m] * len(chunk))
        for reference, trade_id, quantity, cash in connection.exec_driver_sql(
                f"SELECT reference, trade_id, quantity, cash FROM instruction_trades "
                f"WHERE reference IN ({marks})", tuple(chunk)):
            found[reference].legs[trade_id] = (Decimal(quantity), Decimal(cash))
        for row in connection.exec_driver_sql(
                f"SELECT * FROM settlement_messages WHERE reference IN ({marks}) "
                f"AND decision = 'APPLIED'{received} ORDER BY id",
                (*chunk, *((as_of.isoformat(),) if as_of is not None else ()))):
            item = found[row.reference]
            item.state = _replay(item.state, row)
    return found


def record_outcome(connection: Connection, before: InstructionState, after: InstructionState,
                   day: dt.date) -> None:
    """Index an instruction that has just reached a final state."""
    if after.status in lifecycle.FINAL and before.status not in lifecycle.FINAL:
        connection.execute(schema.instruction_outcomes.insert(), [{
            "reference": after.reference, "status": after.status.value,
            "business_date": day.isoformat()}])


def _replay(state: InstructionState, row: Any) -> InstructionState:
    if row.kind == "CONFIRMATION":
        after, _, _ = lifecycle.apply_confirmation(state, _confirmation_of_row(row, state))
        return after
    if row.kind == "CANCEL":
        after, _ = lifecycle.request_cancel(state)
        return after
    after, _ = lifecycle.apply_status(state, StatusAdvice(
        row.reference, StatusKind(row.status), tuple(filter(None, row.reasons.split(","))),
        row.message_reference))
    return after


def _confirmation_of_row(row: Any, state: InstructionState) -> Confirmation:
    return Confirmation(row.reference, state.direction, state.payment, state.isin,
                        Decimal(row.quantity), Decimal(row.amount) if row.amount else None,
                        None, dt.date.fromisoformat(row.settlement_date),
                        bool(row.partial), message_reference=row.message_reference)


# --- instructing -------------------------------------------------------------------------------


def _candidate_trades(connection: Connection, day: dt.date) -> list[Trade]:
    """Trades to instruct by ``day``: booked (trade date ≤ day), not cancelled, not settled,
    in no live instruction; looked for only where new ones can be — trade dates since the
    last end of day, trades booked since it, and trades of instructions cancelled or
    rejected (a net instruction's other trades are instructed again)."""
    m = repo.mark(connection)
    last = connection.exec_driver_sql(
        "SELECT business_date, head_sequence FROM eod_runs WHERE business_date < "
        f"{m} ORDER BY business_date DESC LIMIT 1", (day.isoformat(),)).first()
    since_day, since_sequence = (str(last[0]), int(last[1])) if last else ("0000-00-00", 0)
    # An instruction is dead once the depository cancelled or rejected it: only then are its
    # trades free (a cancellation requested may still be refused, and the instruction settle).
    dead = ("(SELECT o.reference FROM instruction_outcomes o WHERE o.status IN ('CANCELLED', "
            "'REJECTED'))")
    usable = (f"t.trade_date <= {m} AND NOT EXISTS (SELECT 1 FROM cancels c WHERE c.trade_id "
              f"= t.trade_id) AND NOT EXISTS (SELECT 1 FROM instruction_trades it WHERE "
              f"it.trade_id = t.trade_id AND it.reference NOT IN {dead}) AND NOT EXISTS "
              f"(SELECT 1 FROM entries s WHERE s.entry_key = 'post:trade:' || t.trade_id)")
    rows = connection.exec_driver_sql(
        f"SELECT t.* FROM trades t WHERE t.trade_date > {m} AND {usable} "
        f"UNION SELECT t.* FROM trades t JOIN entries e ON e.entry_key = 'trade:' || t.trade_id "
        f"WHERE e.sequence > {m} AND {usable} "
        f"UNION SELECT t.* FROM trades t JOIN instruction_trades d ON d.trade_id = t.trade_id "
        f"WHERE d.reference IN {dead} AND {usable}",
        (since_day, day.isoformat(), since_sequence, day.isoformat(),
         day.isoformat())).all()
    return sorted(map(repo.trade_of, rows), key=lambda trade: trade.sequence)


@dataclass
class InstructReport:
    created: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)  # cancellation messages sent
    settled_by_netting: int = 0
    problems: list[Problem] = field(default_factory=list)


def instruct(connection: Connection, writer: JournalWriter, day: dt.date, refdata: RefData,
             now: dt.datetime | None = None) -> InstructReport:
    """Instructions for every instrumented trade booked by ``day`` that has none yet, gross or
    net per its SSI; cancellation messages for live instructions whose trades were cancelled;
    trades netted to nothing settle on their settlement date. One call, one transaction."""
    report = InstructReport()
    ssis = ssi_book(connection)
    if not ssis:
        return report
    created_at = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    _cancel_for_cancelled_trades(connection, report, created_at, day)
    legs: list[Leg] = []
    trade_dates: dict[str, dt.date] = {}
    for trade in _candidate_trades(connection, day):
        if not is_instrumented(trade, refdata, ssis):
            continue
        legs.append(leg_of(trade, refdata.instruments[trade.isin].mic))
        trade_dates[trade.trade_id] = trade.trade_date
    if not legs:
        return report
    netting = net_obligations(legs, ssis)
    report.problems += netting.problems
    sequence = _next_sequence(connection)
    records, links = [], []
    by_leg = {leg.trade_id: leg for leg in legs}
    for obligation in netting.obligations:
        if obligation.direction is None:  # cash only: settles by netting
            report.settled_by_netting += _settle_by_netting(connection, writer, obligation)
            continue
        reference = make_reference(obligation.key.settlement_date, sequence)
        trade_date = max(trade_dates[t] for t in obligation.trade_ids)
        try:
            instruction = instruction_for(obligation, obligation.ssi, reference, FIRM_BIC,
                                          trade_date, created_at)
        except ValueError:  # securities and cash both move our way: the cash moves apart
            instruction = instruction_for(obligation, replace(obligation.ssi,
                                                              payment=Payment.FREE),
                                          reference, FIRM_BIC, trade_date, created_at)
        records.append(_instruction_record(instruction, obligation.key.counterparty, sequence,
                                           day))
        links += [{"reference": reference, "trade_id": trade_id,
                   "quantity": str(by_leg[trade_id].quantity),
                   "cash": str(by_leg[trade_id].cash)} for trade_id in obligation.trade_ids]
        report.created.append(reference)
        sequence += 1
    for obligation in netting.netted_out:
        report.settled_by_netting += _settle_by_netting(connection, writer, obligation)
    if records:
        connection.execute(schema.settlement_instructions.insert(), records)
        connection.execute(schema.instruction_trades.insert(), links)
    return report


def _next_sequence(connection: Connection) -> int:
    last = connection.exec_driver_sql(
        "SELECT MAX(sequence) FROM settlement_instructions").scalar()
    return int(last or 0) + 1


def _instruction_record(instruction: Instruction, counterparty: str, sequence: int,
                        day: dt.date) -> dict[str, Any]:
    assert instruction.creation is not None and instruction.trade_date is not None  # ours
    return {"reference": instruction.reference, "sequence": sequence,
            "function": instruction.function.value, "direction": instruction.direction.value,
            "payment": instruction.payment.value,
            "trade_date": instruction.trade_date.isoformat(),
            "settlement_date": instruction.settlement_date.isoformat(),
            "isin": instruction.isin, "quantity": str(instruction.quantity),
            "amount": "" if instruction.amount is None else str(instruction.amount),
            "currency": instruction.currency or "", "counterparty": counterparty,
            "place_of_settlement": instruction.place_of_settlement,
            "counterparty_bic": instruction.counterparty.bic,
            "counterparty_account": instruction.counterparty.account,
            "safekeeping_account": instruction.safekeeping_account,
            "linked_reference": instruction.linked_reference or "",
            "partial_allowed": int(instruction.partial_allowed), "created_on": day.isoformat(),
            "created_at": instruction.creation.isoformat()}


def _settle_by_netting(connection: Connection, writer: JournalWriter,
                       obligation: Obligation) -> int:
    """Trades whose net obligation moves no securities settle on their settlement date."""
    found = repo.entries_by_key(connection, [trade_key(t) for t in obligation.trade_ids])
    count = 0
    for entry in found.values():
        if entry.phase is Phase.PENDING and not repo.settlement_started(connection, entry.key):
            assert entry.settle_date is not None
            writer.append(settle(entry, entry.settle_date))
            count += 1
    return count


def _cancel_for_cancelled_trades(connection: Connection, report: InstructReport,
                                 created_at: dt.datetime, day: dt.date) -> None:
    """A cancellation message for every live instruction one of whose trades was cancelled."""
    references = sorted({str(row[0]) for row in connection.exec_driver_sql(
        "SELECT it.reference FROM cancels c JOIN instruction_trades it ON it.trade_id = "
        "c.trade_id WHERE NOT EXISTS (SELECT 1 FROM instruction_outcomes o WHERE o.reference "
        "= it.reference) AND NOT EXISTS (SELECT 1 FROM settlement_messages g WHERE "
        "g.reference = it.reference AND g.kind = 'CANCEL')")})
    for reference, item in instructions(connection, references).items():
        if item.state.status in lifecycle.FINAL or \
                item.state.status is InstructionStatus.CANCEL_REQUESTED:
            continue
        _, problems = lifecycle.request_cancel(item.state)
        if problems:
            report.problems += problems
            continue
        send_cancellation(connection, item, created_at, day)
        report.cancelled.append(reference)


def send_cancellation(connection: Connection, item: Instructed, created_at: dt.datetime,
                      day: dt.date) -> str:
    """Our cancellation of ``item``: a CANC message linked to it, and its state moves to
    CANCEL_REQUESTED (a message of ours in the inbox, so the fold sees it)."""
    sequence = _next_sequence(connection)
    reference = make_reference(item.instruction.settlement_date, sequence)
    cancellation = lifecycle.cancellation_of(item.instruction, reference, created_at)
    connection.execute(schema.settlement_instructions.insert(), [
        _instruction_record(cancellation, item.counterparty, sequence, day)])
    _record_message(connection, item.instruction.reference, "CANCEL", "", (), "", "",
                    day, False, f"cancellation {reference}", "APPLIED", day,
                    f"cancel:{item.instruction.reference}")
    return reference


def _record_message(connection: Connection, reference: str, kind: str, status: str,
                    reasons: Iterable[str], quantity: str, amount: str,
                    settlement_date: dt.date, partial: bool, source: str, decision: str,
                    received_on: dt.date, fingerprint_text: str,
                    message_reference: str = "") -> None:
    connection.execute(schema.settlement_messages.insert(), [{
        "reference": reference, "message_reference": message_reference, "kind": kind,
        "status": status, "reasons": ",".join(reasons), "quantity": quantity, "amount": amount,
        "settlement_date": settlement_date.isoformat(), "partial": int(partial),
        "source": source, "decision": decision, "received_on": received_on.isoformat(),
        "fingerprint": hashlib.sha256(fingerprint_text.encode()).hexdigest()}])


# --- hearing back --------------------------------------------------------------------------------


@dataclass
class ReceiveReport:
    applied: int = 0
    unchanged: int = 0  # the same message received before
    settled_entries: int = 0
    problems: list[Problem] = field(default_factory=list)


def _fingerprint(message: StatusAdvice | Confirmation) -> str:
    if isinstance(message, Confirmation):
        return (f"CONFIRMATION|{message.reference}|{message.message_reference}|"
                f"{message.quantity}|{message.amount}|{message.settlement_date}")
    return (f"STATUS|{message.reference}|{message.message_reference}|{message.kind.value}|"
            f"{','.join(message.reasons)}")


def receive(connection: Connection, writer: JournalWriter,
            messages: Sequence[StatusAdvice | Confirmation], received_on: dt.date,
            refdata: RefData, report: ReceiveReport) -> None:
    """Apply status advices and confirmations, each once: a refused one is kept with its rule
    (for operators, in ``report rejected`` too) and changes nothing else."""
    known = instructions(connection, sorted({message.reference for message in messages}))
    seen = {str(row[0]) for row in connection.exec_driver_sql(
        "SELECT fingerprint FROM settlement_messages")}
    seen_confirmations = {str(row[0]) for row in connection.exec_driver_sql(
        "SELECT message_reference FROM settlement_messages WHERE kind = 'CONFIRMATION' AND "
        "decision = 'APPLIED' AND message_reference <> ''")}
    for message in messages:
        text = _fingerprint(message)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            report.unchanged += 1
            continue
        seen.add(digest)
        item = known.get(message.reference)
        problems: list[Problem]
        if item is None:
            problems = [Problem(Rule.STATUS_MATCHES_NO_INSTRUCTION,
                                f"no instruction of ours has the reference "
                                f"{message.reference!r}", message.source)]
        elif isinstance(message, Confirmation):
            after, settled_now, problems = lifecycle.apply_confirmation(
                item.state, message, seen_confirmations)
            if not problems:
                scale = refdata.instruments[item.state.isin].quantity_scale
                report.settled_entries += _post_settlement(connection, writer, item,
                                                           settled_now.quantity, message, scale)
                record_outcome(connection, item.state, after, message.settlement_date)
                item.state = after
                if message.message_reference:
                    seen_confirmations.add(message.message_reference)
        else:
            after, problems = lifecycle.apply_status(item.state, message)
            record_outcome(connection, item.state, after, received_on)
            item.state = after
        decision = problems[0].rule.value if problems else "APPLIED"
        if isinstance(message, Confirmation):
            _record_message(connection, message.reference, "CONFIRMATION", "SETTLED", (),
                            str(message.quantity),
                            "" if message.amount is None else str(message.amount),
                            message.settlement_date, message.partial, message.source,
                            decision, received_on, text, message.message_reference)
        else:
            _record_message(connection, message.reference, "STATUS", message.kind.value,
                            message.reasons, "", "", received_on, False, message.source,
                            decision, received_on, text, message.message_reference)
        if problems:
            located = [Problem(p.rule, f"{message.message_reference or message.reference}: "
                               f"{p.detail}", p.source or message.source, p.line)
                       for p in problems]
            report.problems += located
            keep_problems(connection, located, message.reference)
        else:
            report.applied += 1


def keep_problems(connection: Connection, problems: Sequence[Problem],
                  source_key: str = "") -> None:
    """Refused or unreadable messages, kept for operators beside rejected input rows."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    records = {}
    for problem in problems:
        where = re.fullmatch(r"(.+):(\d+)", problem.source or "")
        if where and problem.line is None:  # a reader's "file:line" source, kept apart
            problem = problem.located(where[1], int(where[2]))
        digest = hashlib.sha256(f"{problem.source}|{problem.line}|{problem.rule.value}|"
                                f"{problem.detail}".encode()).hexdigest()
        detail = f"read, with a warning: {problem.detail}" if problem.is_warning \
            else problem.detail
        records[digest] = {"file": (problem.source or "settlement")[:64], "line": problem.line,
                           "reason": problem.rule.value, "detail": detail,
                           "source_key": source_key[:160], "fingerprint": digest,
                           "recorded_at": now}
    m = repo.mark(connection)
    for digest, record in records.items():
        if connection.exec_driver_sql(f"SELECT 1 FROM rejections WHERE fingerprint = {m}",
                                      (digest,)).first() is None:
            repo.insert_rows(connection, "rejections", [record])


def _post_settlement(connection: Connection, writer: JournalWriter, item: Instructed,
                     quantity: Decimal, confirmation: Confirmation, scale: int) -> int:
    """POST entries for what ``confirmation`` settled, spread over the instruction's trades in
    proportion to their legs (a gross instruction has one trade: exactly the quantity)."""
    state = item.state
    before, after = state.settled_quantity, state.settled_quantity + quantity
    total = state.instructed_quantity
    keys = [trade_key(t) for t in sorted(item.legs)]
    entries = repo.entries_by_key(connection, [*keys, *(f"post:{key}" for key in keys)])
    count = 0
    for key in keys:
        entry = entries.get(key)
        if entry is None or entry.phase is not Phase.PENDING or f"post:{key}" in entries:
            continue  # voided, or settled in full already
        trade_id = entry.ref
        leg_quantity = abs(item.legs[trade_id][0])
        whole = units(leg_quantity, scale)
        done_before = _cumulative(whole, before, total)
        done_after = whole if after == total else _cumulative(whole, after, total)
        if done_after <= done_before:
            continue
        part = 1 + _parts_booked(connection, entry.key)
        writer.append(settle_part(entry, confirmation.settlement_date, done_before,
                                  done_after - done_before, whole, part))
        count += 1
    return count


def _cumulative(whole: int, settled: Decimal, total: Decimal) -> int:
    """Units of a trade of ``whole`` units settled once ``settled`` of ``total`` did."""
    share = Decimal(whole) * settled / total
    return int(share.to_integral_value(rounding="ROUND_HALF_UP"))


def _parts_booked(connection: Connection, key: str) -> int:
    m = repo.mark(connection)
    return int(connection.exec_driver_sql(
        f"SELECT COUNT(*) FROM entries WHERE target_key = {m} AND phase = 'POST'",
        (key,)).scalar() or 0)


# --- fails and penalties -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailRow:
    reference: str
    counterparty: str
    isin: str
    direction: Direction
    intended_settlement_date: dt.date
    instructed: Decimal
    settled: Decimal
    failing: Decimal
    currency: str
    status: str
    reasons: tuple[str, ...]
    age: int  # failing business days
    reason: penalties.FailReason
    failing_party: penalties.FailingParty
    buy_in_due: bool
    place_of_settlement: str


def fail_reason(item: Instructed) -> tuple[penalties.FailReason, penalties.FailingParty]:
    """Who fails for lack of what: a lack of cash is the paying side's (us when we receive
    against payment), any other fail — with a lack-of-securities reason or none — the
    delivering side's (us when we deliver)."""
    reasons = set(item.state.reasons)
    we_deliver = item.state.direction is Direction.DELIVER
    if reasons & LACK_OF_CASH and not reasons & LACK_OF_SECURITIES \
            and item.state.payment is Payment.AGAINST:
        party = penalties.FailingParty.THEM if we_deliver else penalties.FailingParty.US
        return penalties.FailReason.LACK_OF_CASH, party
    party = penalties.FailingParty.US if we_deliver else penalties.FailingParty.THEM
    return penalties.FailReason.LACK_OF_SECURITIES, party


def penalty_class_of(kind: str) -> penalties.PenaltyClass:
    """Shares are taken as liquid (MiFIR liquidity is not in the reference data yet); ETFs
    and everything else are 'all other financial instruments'."""
    return (penalties.PenaltyClass.LIQUID_SHARE if kind == "EQUITY"
            else penalties.PenaltyClass.OTHER)


def instruction_price(item: Instructed) -> Decimal | None:
    """The instruction's own price (settlement amount / quantity): the reference price of a
    penalty when the security has no close on or before the failing day."""
    amount = item.instruction.amount
    return amount / item.instruction.quantity if amount else None


def fails(connection: Connection, as_of: dt.date, refdata: RefData,
          calendar: SettlementCalendar, items: dict[str, Instructed] | None = None,
          ) -> list[FailRow]:
    """Instructions past their intended settlement date at the end of ``as_of`` (the ISD
    itself counts: a trade not settled by the end of its ISD has failed) and not settled."""
    rows = []
    if items is None:
        items = instructions(connection, open_through=as_of, as_of=as_of)
    for item in items.values():
        state = item.state
        if state.status in lifecycle.FINAL or state.settlement_date > as_of:
            continue
        instrument = refdata.instruments[state.isin]
        currency = item.instruction.currency or instrument.currency
        reason, party = fail_reason(item)
        days = penalties.failing_days(state.settlement_date, as_of + dt.timedelta(days=1),
                                      calendar, instrument.mic, currency)
        buy_in = instrument.mic in CSDR_MARKETS and penalties.buy_in_due(
            state.settlement_date, as_of, calendar, instrument.mic, currency,
            penalty_class_of(instrument.kind))
        rows.append(FailRow(state.reference, item.counterparty, state.isin, state.direction,
                            state.settlement_date, state.instructed_quantity,
                            state.settled_quantity, state.remaining_quantity, currency,
                            state.status.value, state.reasons, len(days), reason, party,
                            buy_in, item.instruction.place_of_settlement))
    return sorted(rows, key=lambda r: (r.intended_settlement_date, r.reference))


def overnight_rate(currency: str, day: dt.date) -> Decimal | None:
    rate = None
    for since, value in OVERNIGHT_RATES.get(currency, ()):
        if since <= day:
            rate = value
    return rate


def accrue_penalties(connection: Connection, writer: JournalWriter, day: dt.date,
                     refdata: RefData, calendar: SettlementCalendar,
                     closes: dict[str, Decimal]) -> tuple[list[penalties.Penalty], int]:
    """One day's CSDR cash penalties for every fail at a CSDR place of settlement: the
    reference value at the day's close (the latest close on or before it), booked as an
    entry between the penalty income and what we owe / are owed by the CSD. Returns them
    with the number of fails that day (every market)."""
    accrued = []
    records = []
    done = {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT reference FROM penalties WHERE business_date = {repo.mark(connection)}",
        (day.isoformat(),))}
    items = instructions(connection, open_through=day, as_of=day)
    failing = fails(connection, day, refdata, calendar, items)
    for row in failing:
        instrument = refdata.instruments[row.isin]
        if row.reference in done or instrument.mic not in CSDR_MARKETS:
            continue
        if not calendar.is_settlement_day(day, instrument.mic, row.currency):
            continue
        price = closes.get(row.isin) or instruction_price(items[row.reference])
        if price is None:
            continue  # neither a close nor a price of its own: the fails report shows it
        fail = penalties.Fail(row.reference, row.counterparty, row.isin,
                              row.intended_settlement_date, row.failing, row.currency,
                              row.reason, row.failing_party)
        rate = overnight_rate(row.currency, day)
        if row.reason is penalties.FailReason.LACK_OF_CASH and rate is None:
            continue
        penalty = penalties.accrue(fail, day, price, penalty_class_of(instrument.kind),
                                   overnight_rate=rate)
        if penalty.amount == 0:
            continue
        accrued.append(penalty)
        key = f"penalty:{row.reference}:{day.isoformat()}"
        amount = units(penalty.signed, currency_scale(row.currency))
        writer.append(Entry(key=key, kind=EntryKind.PENALTY, phase=Phase.POSTED,
                            business_date=day, ref=row.reference, account="",
                            postings=(Posting(PENALTY_INCOME, row.currency, amount),
                                      Posting(penalty_account(row.place_of_settlement),
                                              row.currency, -amount)),
                            memo=f"CSDR penalty {row.reason.value} {row.failing} {row.isin}"))
        records.append({"reference": row.reference, "business_date": day.isoformat(),
                        "counterparty": row.counterparty, "isin": row.isin,
                        "currency": row.currency, "failing_quantity": str(row.failing),
                        "reference_price": str(price),
                        "penalty_class": penalty_class_of(instrument.kind).value
                        if row.reason is penalties.FailReason.LACK_OF_SECURITIES
                        else "LACK_OF_CASH",
                        "rate": str(penalty.daily_rate), "amount": str(penalty.amount),
                        "payer": row.failing_party.value, "entry_key": key})
    if records:
        connection.execute(schema.penalties.insert(), records)
    return accrued, len(failing)


def instrumented_keys(connection: Connection, keys: Iterable[str], refdata: RefData) -> set[str]:
    """Of the given trade entry keys, those whose trades settle by confirmation."""
    ssis = ssi_book(connection)
    if not ssis:
        return set()
    wanted = [key.split(":", 1)[1] for key in keys]
    found = set()
    for start in range(0, len(wanted), 900):
        chunk = wanted[start:start + 900]
        marks = ", ".join([repo.mark(connection)] * len(chunk))
        for row in connection.exec_driver_sql(
                f"SELECT * FROM trades WHERE trade_id IN ({marks})", tuple(chunk)):
            if is_instrumented(repo.trade_of(row), refdata, ssis):
                found.add(trade_key(row.trade_id))
    return found

