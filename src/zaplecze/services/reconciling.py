"""Reconciliation: prove every day that the books agree with the custodians, CSDs and banks.

    recon positions FILE   semt.002 / MT535 / positions CSV against our settled positions at
                           the depository the safekeeping account belongs to
    recon cash FILE        camt.053 / MT940 against our settled cash movements on the bank
                           account of the statement's currency; the statement's own arithmetic
                           is checked too (opening + entries = closing)
    recon break …          assign, comment, investigate, resolve (with a reason) — audited

Each statement is read once (by its fingerprint); what disagrees becomes a break, the same
discrepancy on a later statement is the same break, and a break a later statement agrees with
is resolved automatically. Breaks' events and comments are append-only records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.formats import statements as statement_files
from zaplecze.kernel.money import currency_scale, decimal_of, is_currency
from zaplecze.kernel.problems import BookError, Problem, Rule
from zaplecze.ledger import accounts as gl
from zaplecze.reconciliation import breaks as br
from zaplecze.reconciliation import matching
from zaplecze.reconciliation.model import CashEntry, CashStatement, HoldingsStatement
from zaplecze.services.audit_trail import Actor, record
from zaplecze.services.settlement import keep_problems
from zaplecze.store import repo, schema
from zaplecze.store.db import with_retries

# The CSD behind a place-of-settlement BIC (its first eight characters), as our depository
# GL accounts name them (ledger.accounts.CSD_OF_MIC).
CSD_OF_BIC = {"KDPWPLPW": "KDPW", "DTCYUS33": "DTC", "DAKVDEFF": "CBF", "CRSTGB22": "CREST",
              "SICVFRPP": "ESES", "NECIBEBB": "ESES", "NECINL2A": "ESES",
              "IBLSPTPL": "INTERBOLSA", "MOTIITMM": "MONTETITOLI", "MGTCBEBE": "EUROCLEAR",
              "INSECHZZ": "SIS", "IBRCESMM": "IBERCLEAR"}
CASH_DATE_WINDOW = 2  # business days a value date may differ by
BREAK_ACTIONS = ("assign", "comment", "investigate", "resolve")


@dataclass
class ReconReport:
    statements: int = 0
    unchanged: int = 0  # statements received before
    matched: int = 0
    new: list[br.Break] = field(default_factory=list)
    updated: list[br.Break] = field(default_factory=list)
    auto_resolved: list[br.Break] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


# --- breaks in the database ----------------------------------------------------------------------


def load_breaks(connection: Connection, ids: Iterable[str] | None = None) -> dict[str, br.Break]:
    m = repo.mark(connection)
    wanted = list(ids) if ids is not None else None
    where = f" WHERE break_id IN ({', '.join([m] * len(wanted))})" if wanted else ""
    if wanted is not None and not wanted:
        return {}
    params = tuple(wanted or ())
    rows = connection.exec_driver_sql(f"SELECT * FROM breaks{where} ORDER BY break_id",
                                      params).all()
    events: dict[str, list[br.Event]] = {}
    for row in connection.exec_driver_sql(f"SELECT * FROM break_events{where} ORDER BY id",
                                          params):
        events.setdefault(row.break_id, []).append(br.Event(
            dt.datetime.fromisoformat(row.at), row.who, row.what, row.before, row.after))
    comments: dict[str, list[br.Comment]] = {}
    for row in connection.exec_driver_sql(f"SELECT * FROM break_comments{where} ORDER BY id",
                                          params):
        comments.setdefault(row.break_id, []).append(br.Comment(
            row.author, dt.datetime.fromisoformat(row.at), row.text))
    return {row.break_id: br.Break(
        break_id=row.break_id, kind=br.BreakKind(row.kind), subject=row.subject,
        ours=Decimal(row.ours), theirs=Decimal(row.theirs), difference=Decimal(row.difference),
        currency_or_isin=row.asset, first_seen=dt.date.fromisoformat(row.first_seen),
        last_seen=dt.date.fromisoformat(row.last_seen), owner=row.owner,
        status=br.BreakStatus(row.status), resolution_reason=row.resolution_reason,
        comments=tuple(comments.get(row.break_id, ())),
        history=tuple(events.get(row.break_id, ())), scope=row.scope, detail=row.detail)
        for row in rows}


def save_breaks(connection: Connection, changed: Iterable[br.Break],
                before: Mapping[str, br.Break]) -> None:
    """Upsert each break's state; append the events and comments it gained."""
    for b in changed:
        old = before.get(b.break_id)
        record = {"break_id": b.break_id, "kind": b.kind.value, "subject": b.subject,
                  "scope": b.scope, "detail": b.detail, "ours": str(b.ours),
                  "theirs": str(b.theirs), "difference": str(b.difference),
                  "asset": b.currency_or_isin, "first_seen": b.first_seen.isoformat(),
                  "last_seen": b.last_seen.isoformat(), "owner": b.owner,
                  "status": b.status.value, "resolution_reason": b.resolution_reason}
        if old is None:
            connection.execute(schema.breaks.insert(), [record])
        else:
            connection.execute(schema.breaks.update().where(
                schema.breaks.c.break_id == b.break_id).values(**record))
        new_events = b.history[len(old.history) if old else 0:]
        if new_events:
            connection.execute(schema.break_events.insert(), [
                {"break_id": b.break_id, "at": e.at.isoformat(), "who": e.who, "what": e.what,
                 "before": e.before, "after": e.after} for e in new_events])
        new_comments = b.comments[len(old.comments) if old else 0:]
        if new_comments:
            connection.execute(schema.break_comments.insert(), [
                {"break_id": b.break_id, "author": c.author, "at": c.at.isoformat(),
                 "text": c.text} for c in new_comments])


# --- statements in -------------------------------------------------------------------------------


def reconcile_file(engine: Engine, path: Path, who: str, today: dt.date,
                   want: str | None = None, xsd_dir: Path | None = None,
                   depository: str | None = None) -> ReconReport:
    """Read a statement file and reconcile every statement in it, one transaction each.
    ``want``: 'positions' or 'cash' to refuse the other kind (the command names it)."""
    report = ReconReport()
    found, problems = statement_files.read_statement_file(path, xsd_dir)
    report.problems += problems
    for statement in found:
        kind = "positions" if isinstance(statement, HoldingsStatement) else "cash"
        if want is not None and kind != want:
            report.problems.append(Problem(
                Rule.UNSUPPORTED_MESSAGE_TYPE, f"a {kind} statement given to `recon {want}`",
                path.name))
            continue

        def work(connection: Connection, statement: Any = statement) -> ReconReport:
            if isinstance(statement, HoldingsStatement):
                return _positions(connection, statement, who, today, depository)
            return _cash(connection, statement, who, today)

        part = with_retries(engine, work)
        report.statements += part.statements
        report.unchanged += part.unchanged
        report.matched += part.matched
        report.new += part.new
        report.updated += part.updated
        report.auto_resolved += part.auto_resolved
        report.problems += part.problems
    if report.problems:
        def keep(connection: Connection) -> None:
            keep_problems(connection, report.problems, path.name)
        with_retries(engine, keep)
    return report


def _received(connection: Connection, kind: str, statement: Any, fingerprint: str,
              account: str, summary: dict[str, Any], today: dt.date) -> bool:
    """Record the statement; False when it was received before (nothing to do)."""
    if connection.exec_driver_sql(
            f"SELECT 1 FROM recon_statements WHERE fingerprint = {repo.mark(connection)}",
            (fingerprint,)).first():
        return False
    date = (statement.statement_date if isinstance(statement, HoldingsStatement)
            else statement.closing_date)
    connection.execute(schema.recon_statements.insert(), [{
        "kind": kind, "source": statement.source, "statement_id": statement.statement_id,
        "statement_date": date.isoformat(), "account": account,
        "summary": json.dumps(summary, sort_keys=True), "received_on": today.isoformat(),
        "fingerprint": fingerprint}])
    return True


def _fold(connection: Connection, report: ReconReport, found: list[br.Discrepancy],
          covered: frozenset[str], statement_date: dt.date, statement_id: str, who: str) -> None:
    existing = {key: b for key, b in load_breaks(connection).items()
                if b.scope in covered or key in {d.key for d in found}}
    # Stamped with the statement's date: a break ages until the statement that agreed.
    result = br.reconcile_breaks(existing, found, statement_date, who, covered=covered,
                                 statement_id=statement_id)
    save_breaks(connection, [*result.updated.values(), *result.new.values(),
                             *result.auto_resolved.values()], existing)
    report.new += result.new.values()
    report.updated += result.updated.values()
    report.auto_resolved += result.auto_resolved.values()


def _depositories(connection: Connection) -> dict[str, str]:
    """Our safekeeping accounts -> the depository GL account they are at (from the SSIs)."""
    mapping = {}
    for account, bic in connection.exec_driver_sql(
            "SELECT DISTINCT safekeeping_account, place_of_settlement FROM ssis"):
        csd = CSD_OF_BIC.get(str(bic)[:8])
        if csd:
            mapping[str(account)] = f"depository:{csd}"
    return mapping


def _positions(connection: Connection, statement: HoldingsStatement, who: str, today: dt.date,
               depository: str | None) -> ReconReport:
    report = ReconReport()
    text = "|".join(f"{line.safekeeping_account},{line.isin},{line.quantity}"
                    for line in statement.lines)
    fingerprint = hashlib.sha256(f"POSITIONS|{statement.statement_id}|{statement.statement_date}"
                                 f"|{text}".encode()).hexdigest()
    accounts = sorted({line.safekeeping_account for line in statement.lines})
    places = _depositories(connection)
    refdata = repo.refdata(connection)
    balances = repo.balances_as_of(connection, statement.statement_date, "settlement",
                                   ("depository",))
    ours = []
    for account in accounts:
        place = f"depository:{depository}" if depository else places.get(account)
        if place is None:
            report.problems.append(Problem(
                Rule.UNKNOWN_SAFEKEEPING_ACCOUNT,
                f"safekeeping account {account!r} is at no depository we know: give it in "
                f"ssis.csv or run with --depository", statement.source))
            continue
        for (gl_account, isin), amount in balances.items():
            if gl_account == place and isin in refdata.instruments and amount:
                scale = refdata.instruments[isin].quantity_scale
                ours.append(matching.OurPosition(account, isin, -decimal_of(amount, scale)))
    if report.problems:
        return report
    if not _received(connection, "POSITIONS", statement, fingerprint, ",".join(accounts),
                     {"lines": len(statement.lines)}, today):
        report.unchanged += 1
        return report
    report.statements += 1
    found = matching.compare_positions(ours, statement)
    report.matched += len(statement.lines) - sum(
        1 for b in found if b.kind is not br.BreakKind.MISSING_AT_THEM)
    _fold(connection, report, matching.position_discrepancies(found),
          matching.position_scopes(statement), statement.statement_date,
          statement.statement_id, who)
    return report


def _cash(connection: Connection, statement: CashStatement, who: str,
          today: dt.date) -> ReconReport:
    report = ReconReport()  # its arithmetic was checked as it was read (read_statement_file)
    entries = "|".join(f"{e.amount},{e.value_date},{e.reference},{e.bank_reference}"
                       for e in statement.entries)
    fingerprint = hashlib.sha256(
        f"CASH|{statement.account}|{statement.statement_id}|{statement.closing_date}|"
        f"{statement.closing_balance}|{entries}".encode()).hexdigest()
    currency = statement.currency
    if not is_currency(currency):
        report.problems.append(Problem(Rule.INVALID_CURRENCY,
                                       f"statement {statement.statement_id} has no currency",
                                       statement.source))
        return report
    calendar = repo.calendar(connection)
    earlier = _open_entries(connection, statement.account)
    m = repo.mark(connection)
    start = statement.opening_date - dt.timedelta(days=7)
    ours = [matching.OurMovement(str(key), -decimal_of(int(amount), currency_scale(currency)),
                                 currency, dt.date.fromisoformat(day), dt.date.fromisoformat(day),
                                 str(ref))
            for key, ref, day, amount in connection.exec_driver_sql(
                f"SELECT e.entry_key, e.ref, p.business_date, p.amount FROM postings p JOIN "
                f"entries e ON e.sequence = p.entry_sequence WHERE p.gl_account = {m} AND "
                f"p.asset = {m} AND p.basis IN ('B', 'S') AND p.business_date > {m} AND "
                f"p.business_date <= {m} ORDER BY p.business_date, e.sequence",
                (gl.bank(currency), currency, start.isoformat(),
                 (statement.closing_date + dt.timedelta(days=7)).isoformat()))]
    matched_before = _matched_before(connection, statement.account)
    ours = [movement for movement in ours if movement.key not in matched_before]
    result = matching.match_cash(ours, statement, Decimal(0), CASH_DATE_WINDOW, calendar,
                                 currency, earlier=earlier)
    summary = {"unmatched": [_entry_json(e) for e in statement.entries],
               "matched_ours": sorted({m.key for match in result.matches for m in match.ours})}
    if not _received(connection, "CASH", statement, fingerprint, statement.account, summary,
                     today):
        report.unchanged += 1
        return report
    report.statements += 1
    report.matched += len(result.matches)
    _fold(connection, report, matching.cash_discrepancies(result),
          matching.cash_scopes(statement), statement.closing_date, statement.statement_id, who)
    return report


def _entry_json(entry: CashEntry) -> dict[str, str]:
    return {"amount": str(entry.amount), "currency": entry.currency,
            "booking_date": entry.booking_date.isoformat(),
            "value_date": entry.value_date.isoformat(), "reference": entry.reference,
            "bank_reference": entry.bank_reference, "description": entry.description,
            "reversal": "1" if entry.reversal else ""}


def _matched_before(connection: Connection, account: str) -> set[str]:
    """Our movements an earlier statement of the account matched: not expected again."""
    found: set[str] = set()
    for (summary,) in connection.exec_driver_sql(
            f"SELECT summary FROM recon_statements WHERE kind = 'CASH' AND account = "
            f"{repo.mark(connection)}", (account,)):
        found.update(json.loads(summary).get("matched_ours", []))
    return found


def _open_entries(connection: Connection, account: str) -> list[CashEntry]:
    """Entries of earlier statements of the account that still stand as open breaks (a bank
    lists an entry once: a later statement must not be taken to agree just by leaving it out)."""
    open_subjects = {str(row[0]) for row in connection.exec_driver_sql(
        f"SELECT subject FROM breaks WHERE status <> 'RESOLVED' AND kind = 'MISSING_AT_US' AND "
        f"scope = {repo.mark(connection)}", (f"cash {account}",))}
    if not open_subjects:
        return []
    found = []
    for (summary,) in connection.exec_driver_sql(
            f"SELECT summary FROM recon_statements WHERE kind = 'CASH' AND account = "
            f"{repo.mark(connection)} ORDER BY id", (account,)):
        for item in json.loads(summary).get("unmatched", []):
            entry = CashEntry(Decimal(item["amount"]), item["currency"],
                              dt.date.fromisoformat(item["booking_date"]),
                              dt.date.fromisoformat(item["value_date"]), item["reference"],
                              item["bank_reference"], item["description"],
                              bool(item["reversal"]))
            mark = f" entry {entry.value_date.isoformat()} {entry.amount:+}"
            if any(mark in subject for subject in open_subjects):
                found.append(entry)
    return found


# --- people acting on breaks ---------------------------------------------------------------------


def break_state(b: br.Break) -> dict[str, Any]:
    """What an action on a break changes, for the audit trail."""
    return {"owner": b.owner, "status": b.status.value,
            "resolution_reason": b.resolution_reason, "comments": len(b.comments)}


def act_on_break(engine: Engine, break_id: str, action: str, who: str,
                 text: str = "", actor: Actor | None = None) -> br.Break:
    """assign (text = the new owner), comment, investigate, resolve (text = the reason).
    With an ``actor`` (the workbench), the change is written to the audit trail too, in the
    same transaction."""
    if action not in BREAK_ACTIONS:
        raise BookError(f"unknown_action: {action}; one of {', '.join(BREAK_ACTIONS)}")

    def work(connection: Connection) -> br.Break:
        before = load_breaks(connection, [break_id])
        found, problems = br.lookup(before, break_id)
        if found is None:
            raise BookError(str(problems[0]) if problems else f"no break {break_id}")
        at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        if action == "assign":
            after, problems = br.assign(found, text, who, at)
        elif action == "comment":
            after, problems = br.comment(found, who, at, text)
        elif action == "investigate":
            after, problems = br.start_investigating(found, who, at)
        else:
            after, problems = br.resolve(found, who, at, text)
        if problems:
            raise BookError(str(problems[0]))
        save_breaks(connection, [after], before)
        if actor is not None and after != found:
            detail = {"text": text} if action == "comment" else {}
            record(connection, actor, f"break.{action}", "break", break_id,
                   break_state(found), {**break_state(after), **detail})
        return after

    return with_retries(engine, work)


def break_rows(connection: Connection, as_of: dt.date) -> list[dict[str, str]]:
    """``report breaks``: every break first seen by ``as_of``, with its age in business days
    (open ones first, oldest first)."""
    found = load_breaks(connection)
    calendar = repo.calendar(connection)
    instruments = repo.refdata(connection).instruments
    rows = []
    for b in found.values():
        if b.first_seen > as_of:
            continue
        instrument = instruments.get(b.currency_or_isin)  # a position break: its market's days
        market = instrument.mic if instrument is not None else None
        rows.append({"break_id": b.break_id, "kind": b.kind.value, "subject": b.subject,
                     "ours": str(b.ours), "theirs": str(b.theirs),
                     "difference": str(b.difference), "asset": b.currency_or_isin,
                     "first_seen": b.first_seen.isoformat(), "last_seen": b.last_seen.isoformat(),
                     "age_days": str(br.age_in_business_days(b, as_of, calendar, market)),
                     "owner": b.owner, "status": b.status.value,
                     "resolution_reason": b.resolution_reason,
                     "comments": str(len(b.comments))})
    return sorted(rows, key=lambda r: (r["status"] == "RESOLVED", r["first_seen"], r["subject"]))
