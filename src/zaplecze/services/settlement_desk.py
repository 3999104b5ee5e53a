"""The settlement desk's commands: each one transaction over the book, files in and out.

    settle instruct --date D --out DIR   instructions generated (as end of day does) and
                                         written, one file per message (sese.023 or MT54x)
    settle receive FILE…                 status advices and confirmations applied, each once
    settle cancel | hold | release REF   our own actions on one instruction
    settle simulate --date D --out DIR   a stand-in depository for the demo and for tests: it
                                         answers our instructions with sese.024 / sese.025
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from zaplecze.formats import iso20022
from zaplecze.kernel.problems import BookError, Problem, Rule
from zaplecze.services import audit_trail, settlement
from zaplecze.services.audit_trail import Actor
from zaplecze.settlement import lifecycle, penalties
from zaplecze.settlement.lifecycle import InstructionState, InstructionStatus
from zaplecze.settlement.model import (
    Confirmation,
    Direction,
    Instruction,
    StatusAdvice,
    StatusKind,
)
from zaplecze.store import repo
from zaplecze.store.db import read_connection, with_retries
from zaplecze.store.journal import JournalWriter

FORMATS = ("sese023", "mt54x")
# The CSD's BIC on messages written by the stand-in depository (a test BIC).
SIMULATED_CSD_BIC = "ZCSDPLPWXXX"


@dataclass
class Written:
    report: settlement.InstructReport
    files: list[Path] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # schema complaints (must stay empty)


def instruct(engine: Engine, day: dt.date, out: Path, fmt: str,
             xsd: Path | None = None) -> Written:
    """Generate what is due (idempotent) and write every message created on ``day``; with
    ``xsd`` (the sese.023.001.11 schema) each XML is validated before it is written."""
    if fmt not in FORMATS:
        raise BookError(f"unknown instruction format {fmt!r}: one of {', '.join(FORMATS)}")

    def work(connection: Connection) -> settlement.InstructReport:
        writer = JournalWriter(connection)
        report = settlement.instruct(connection, writer, day, repo.refdata(connection))
        writer.flush()
        return report

    written = Written(with_retries(engine, work))
    with read_connection(engine) as connection:
        rows = connection.exec_driver_sql(
            f"SELECT * FROM settlement_instructions WHERE created_on = {repo.mark(connection)} "
            f"ORDER BY sequence", (day.isoformat(),)).all()
    files, invalid, problems = write_instructions(
        [settlement.instruction_of(row) for row in rows], out, fmt, xsd)
    written.files += files
    written.invalid += invalid
    written.report.problems += problems
    return written


# Writing many messages uses every core: building a message is CPU work (lxml), one per file.
PARALLEL_FROM = 20_000
CHUNK = 5_000


def write_instructions(instructions: Sequence[Instruction], out: Path, fmt: str,
                       xsd: Path | None = None, workers: int | None = None,
                       by_date: bool = False) -> tuple[list[Path], list[str], list[Problem]]:
    """One file per message in ``out`` (``REF.sese023.xml`` or ``REF.fin``), or with
    ``by_date`` in a folder per intended settlement date (a bulk of hundreds of thousands: one
    folder of them all slows every file system); with ``xsd`` each sese.023 is validated
    before it is written. Returns the files, the schema complaints (to be empty) and the
    instructions an MT cannot carry."""
    out.mkdir(parents=True, exist_ok=True)
    if len(instructions) < PARALLEL_FROM or workers == 1:
        return _write_chunk(list(instructions), str(out), fmt, str(xsd) if xsd else None,
                            by_date)
    files: list[Path] = []
    invalid: list[str] = []
    problems: list[Problem] = []
    chunks = [list(instructions[i:i + CHUNK]) for i in range(0, len(instructions), CHUNK)]
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        for done in pool.map(_write_chunk, chunks, repeat(str(out)), repeat(fmt),
                             repeat(str(xsd) if xsd else None), repeat(by_date)):
            files += done[0]
            invalid += done[1]
            problems += done[2]
    return files, invalid, problems


def _write_chunk(instructions: list[Instruction], out: str, fmt: str, xsd: str | None,
                 by_date: bool = False) -> tuple[list[Path], list[str], list[Problem]]:
    schema = iso20022.load_schema(xsd) if xsd else None
    files: list[Path] = []
    invalid: list[str] = []
    problems: list[Problem] = []
    folders: dict[dt.date, Path] = {}
    for instruction in instructions:
        folder = Path(out)
        if by_date:
            day = instruction.settlement_date
            if day not in folders:
                folders[day] = folder / day.isoformat()
                folders[day].mkdir(exist_ok=True)
            folder = folders[day]
        if fmt == "sese023":
            data = iso20022.write_sese023(instruction)
            if schema is not None:
                invalid += [f"{instruction.reference}: {error}"
                            for error in iso20022.validate(data, schema)]
            path = folder / f"{instruction.reference}.sese023.xml"
            path.write_bytes(data)
        else:
            from zaplecze.formats import swift_mt

            try:
                text = swift_mt.write_mt54x(instruction, settlement.FIRM_BIC,
                                            instruction.place_of_settlement)
            except swift_mt.MtWriteError as refused:
                problems += refused.problems
                continue
            path = folder / f"{instruction.reference}.fin"
            path.write_text(text, encoding="ascii")
        files.append(path)
    return files, invalid, problems


def read_messages(path: Path, xsd_dir: Path | None = None,
                  ) -> tuple[list[StatusAdvice | Confirmation], list[Problem]]:
    """Status advices and confirmations in one file, by what the file holds: ISO 20022
    sese.024 / sese.025 XML (validated against ``xsd_dir``'s official schemas when given), or
    SWIFT MT544–547 / MT548."""
    data = path.read_bytes()
    name = path.name
    messages: list[StatusAdvice | Confirmation] = []
    problems: list[Problem] = []

    def schema(message: str) -> Any:
        return iso20022.load_schema(xsd_dir / f"{message}.xsd") if xsd_dir else None

    if data.lstrip().startswith(b"<"):
        readers = [(iso20022.SESE025, iso20022.read_sese025),
                   (iso20022.SESE024, iso20022.read_sese024)]
        named = [(message, reader) for message, reader in readers if message.encode() in data]
        # A file naming neither is still read (as sese.024) so that a broken one is reported
        # as not well-formed and another message type as unsupported.
        for message, reader in named or readers[1:]:
            read, found = reader(data, name, schema(message))
            messages += read
            others = [other for other, _ in named if other != message]
            problems += [p for p in found if not (p.rule is Rule.UNSUPPORTED_MESSAGE_TYPE and
                                                  any(f"{o} is not" in p.detail for o in others))]
        if len(named) == 2:  # both readers saw every broken document: report each once
            problems = list(dict.fromkeys(problems))
        return messages, problems
    from zaplecze.formats import swift_mt

    read, problems = swift_mt.read_settlement_messages(data.decode("latin-1"), name)
    messages += read
    return messages, problems


def receive(engine: Engine, paths: list[Path], day: dt.date,
            xsd_dir: Path | None = None) -> settlement.ReceiveReport:
    """Apply every message of every file, one transaction per file; unreadable messages are
    reported and kept for operators, like refused ones."""
    report = settlement.ReceiveReport()
    for path in paths:
        messages, problems = read_messages(path, xsd_dir)
        def work(connection: Connection, messages: list[StatusAdvice | Confirmation] = messages,
                 problems: list[Problem] = problems) -> settlement.ReceiveReport:
            part = settlement.ReceiveReport()
            writer = JournalWriter(connection)
            settlement.receive(connection, writer, messages, day, repo.refdata(connection), part)
            writer.flush()
            if problems:
                settlement.keep_problems(connection, problems)
            part.problems = problems + part.problems
            return part

        part = with_retries(engine, work)
        report.applied += part.applied
        report.unchanged += part.unchanged
        report.settled_entries += part.settled_entries
        report.problems += part.problems
    return report


def act(engine: Engine, reference: str, action: str, day: dt.date,
        actor: Actor | None = None) -> str:
    """Our own action on one instruction: ``cancel`` (a CANC message is generated; only before
    settlement started), ``hold`` or ``release``. Returns what happened, in words. With an
    ``actor`` (the workbench), an audit-trail record is written in the same transaction."""
    def work(connection: Connection) -> str:
        found = settlement.instructions(connection, [reference]).get(reference)
        if found is None:
            raise BookError(f"{Rule.STATUS_MATCHES_NO_INSTRUCTION.value}: no instruction "
                            f"{reference}")
        done = _act(connection, found, action, day)
        if actor is not None:
            after = settlement.instructions(connection, [reference])[reference]
            audit_trail.record(connection, actor, f"instruction.{action}", "instruction",
                               reference, _audited(found.state), _audited(after.state))
        return done

    return with_retries(engine, work)


def _audited(state: InstructionState) -> dict[str, object]:
    return {"status": state.status.value, "held": state.held,
            "settled_quantity": str(state.settled_quantity)}


def _act(connection: Connection, found: settlement.Instructed, action: str,
         day: dt.date) -> str:
    reference = found.instruction.reference
    now = dt.datetime.now(dt.UTC)
    if action == "cancel":
        _, problems = lifecycle.request_cancel(found.state)
        if problems:
            raise BookError(str(problems[0]))
        sent = settlement.send_cancellation(connection, found, now, day)
        return f"cancellation {sent} of {reference} generated (status CANCEL_REQUESTED)"
    kind = StatusKind.HELD if action == "hold" else StatusKind.RELEASED
    if found.state.held == (kind is StatusKind.HELD):
        rule = Rule.INSTRUCTION_ALREADY_HELD if found.state.held else Rule.INSTRUCTION_NOT_HELD
        raise BookError(f"{rule.value}: instruction {reference} is "
                        f"{'already' if found.state.held else 'not'} held")
    # The message reference fits the 35 characters of settlement_messages (ISO 15022's 16x
    # would be shorter still, but this one is ours): the action and the moment to the µs.
    advice = StatusAdvice(reference, kind, (), f"{action}:{now:%Y%m%d%H%M%S%f}", "operator")
    settlement.receive(connection, JournalWriter(connection), [advice], day,
                       repo.refdata(connection), settlement.ReceiveReport())
    return f"{reference} {'held' if kind is StatusKind.HELD else 'released'}"


# --- a stand-in depository -----------------------------------------------------------------------


def simulate(engine: Engine, day: dt.date, out: Path, *, fail_every: int = 7,
             partial_every: int = 5) -> list[Path]:
    """Answer our instructions as a depository would on ``day``: a new instruction is
    acknowledged and matched; on its intended settlement date (or after) it settles — except
    every ``fail_every``-th (by sequence), which is pending for lack of securities until its
    third failing day, and every ``partial_every``-th, which settles half on its settlement
    date and the rest on the next settlement day. Cancellations requested are confirmed.
    Deterministic: the same book and day give the same files."""
    with read_connection(engine) as connection:
        items = settlement.instructions(connection)
        sequences = {str(r[0]): int(r[1]) for r in connection.exec_driver_sql(
            "SELECT reference, sequence FROM settlement_instructions")}
        refdata = repo.refdata(connection)
        calendar = repo.calendar(connection)
    out.mkdir(parents=True, exist_ok=True)
    header = iso20022.AppHeader(SIMULATED_CSD_BIC, settlement.FIRM_BIC,
                                dt.datetime.combine(day, dt.time(18), dt.UTC))
    files: list[Path] = []

    def emit(name: str, data: bytes) -> None:
        path = out / name
        path.write_bytes(data)
        files.append(path)

    for reference, item in items.items():
        state = item.state
        if state.status in lifecycle.FINAL or item.created_on > day:
            continue
        number = sequences[reference]
        stamp = f"{day:%y%m%d}"
        if state.status is InstructionStatus.CANCEL_REQUESTED:
            emit(f"{reference}-{stamp}-canc.xml", iso20022.write_sese024(StatusAdvice(
                reference, StatusKind.CANCELLED, (), f"S{stamp}C{number}"), header))
            continue
        if state.status in (InstructionStatus.SENT, InstructionStatus.NEW):
            emit(f"{reference}-{stamp}-mtch.xml", iso20022.write_sese024(StatusAdvice(
                reference, StatusKind.MATCHED, (), f"S{stamp}M{number}"), header))
        if state.settlement_date > day:
            continue
        instrument = refdata.instruments[state.isin]
        currency = item.instruction.currency or instrument.currency
        failed_days = len(penalties.failing_days(state.settlement_date, day, calendar,
                                                 instrument.mic, currency))
        if number % fail_every == 0 and failed_days < 3:
            reason = "LACK" if state.direction is Direction.DELIVER else "CLAC"
            emit(f"{reference}-{stamp}-pend.xml", iso20022.write_sese024(StatusAdvice(
                reference, StatusKind.PENDING, (reason,), f"S{stamp}P{number}"), header))
            continue
        quantity = state.remaining_quantity
        partial = (number % partial_every == 0 and state.settled_quantity == 0
                   and day == state.settlement_date and quantity > 1)
        if partial:
            quantity = (quantity / 2).to_integral_value(rounding="ROUND_FLOOR")
        amount = None
        if state.instructed_amount is not None:
            remaining = state.remaining_amount or Decimal(0)
            amount = remaining if quantity == state.remaining_quantity else \
                (state.instructed_amount * quantity / state.instructed_quantity).quantize(
                    Decimal(1).scaleb(-2))
        emit(f"{reference}-{stamp}-conf.xml", iso20022.write_sese025(Confirmation(
            reference, state.direction, state.payment, state.isin, quantity, amount,
            item.instruction.currency, day, partial,
            state.remaining_quantity - quantity if partial else None,
            f"S{stamp}S{number}"), header))
    return files
