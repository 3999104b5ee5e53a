"""Settlement figures for `make bench`: netting and instructing every trade of a loaded book,
and writing their ISO 20022 sese.023 messages.

Runs in-process against the SQLite book the main bench loaded: it reads the booked trades,
places them with standing settlement instructions (Warsaw trades net at KDPW, every other trade
gross at DTC), nets them into obligations and makes an instruction of each (the product's own
code: zaplecze.settlement.obligations), then writes each instruction's sese.023 file
(zaplecze.services.settlement_desk.write_instructions: both cores once there are many). With
the official schema beside the clone, a sample of the files is validated too (not timed).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from zaplecze.bootstrap import tune_for_batch
from zaplecze.formats import iso20022
from zaplecze.services.settlement_desk import write_instructions
from zaplecze.settlement.model import Instruction, Payment
from zaplecze.settlement.obligations import (
    Leg,
    instruction_for,
    leg_of,
    make_reference,
    net_obligations,
)
from zaplecze.settlement.ssi import SSI, SSIBook
from zaplecze.store import repo

SSIS = (SSI("KDPWCCP", "XWAR", "PLN", "KDPWPLPWXXX", "KDPWPLPWXXX", "KDPWCCP-0001",
            "ZAPL-KDPW-01", Payment.AGAINST, True),
        SSI("STREET", "*", "*", "DTCYUS33XXX", "GSCOUS33XXX", "DTC-0005", "ZAPL-DTC-01",
            Payment.AGAINST, False))
XSD = Path(__file__).resolve().parents[2] / "shared" / "standards" / "iso20022" / "xsd" / \
    "sese.023.001.11.xsd"
VALIDATED_SAMPLE = 1_000


@dataclass
class SettlementFigures:
    trades: int
    read_seconds: float
    netting_seconds: float
    obligations: int
    instruct_seconds: float
    instructions: int
    written: int
    write_seconds: float
    validated: int
    invalid: int


def run(db_path: Path, out: Path, write_max: int | None = None) -> SettlementFigures:
    tune_for_batch()  # as the command line does
    started = time.perf_counter()
    legs = _legs(db_path)
    read = time.perf_counter() - started
    book, _ = SSIBook.build(SSIS)

    started = time.perf_counter()
    netting = net_obligations(legs, book)
    netted = time.perf_counter() - started

    started = time.perf_counter()
    trade_dates = {leg.trade_id: leg.settlement_date for leg in legs}
    created = dt.datetime(2024, 9, 30, 18, tzinfo=dt.UTC)
    made: list[Instruction] = []
    for sequence, obligation in enumerate(netting.obligations, start=1):
        if obligation.direction is None:
            continue
        ssi = obligation.ssi
        try:
            made.append(instruction_for(obligation, ssi, make_reference(
                obligation.key.settlement_date, sequence), "ZAPLPLPWXXX",
                min(trade_dates[t] for t in obligation.trade_ids), created))
        except ValueError:  # securities and cash both our way: instructed free of payment
            free = SSI(ssi.counterparty, ssi.market, ssi.currency, ssi.place_of_settlement,
                       ssi.counterparty_bic, ssi.counterparty_account,
                       ssi.safekeeping_account, Payment.FREE, ssi.netting)
            made.append(instruction_for(obligation, free, make_reference(
                obligation.key.settlement_date, sequence), "ZAPLPLPWXXX",
                min(trade_dates[t] for t in obligation.trade_ids), created))
    instructed = time.perf_counter() - started

    to_write = made if write_max is None else made[:write_max]
    started = time.perf_counter()
    files, _, _ = write_instructions(to_write, out, "sese023", by_date=True)
    wrote = time.perf_counter() - started

    validated = invalid = 0
    if XSD.exists():
        schema = iso20022.load_schema(XSD)
        step = max(1, len(to_write) // VALIDATED_SAMPLE)
        for instruction in to_write[::step]:
            data = (out / instruction.settlement_date.isoformat()
                    / f"{instruction.reference}.sese023.xml").read_bytes()
            validated += 1
            invalid += bool(iso20022.validate(data, schema))
    return SettlementFigures(len(legs), read, netted, len(netting.obligations), instructed,
                             len(made), len(files), wrote, validated, invalid)


def _legs(db_path: Path) -> list[Leg]:
    """Every booked, not cancelled trade of the book as its street-side leg."""
    connection = sqlite3.connect(db_path)
    connection.row_factory = sqlite3.Row
    try:
        mics = dict(connection.execute("SELECT isin, mic FROM instruments").fetchall())
        rows = connection.execute(
            "SELECT t.* FROM trades t WHERE NOT EXISTS (SELECT 1 FROM cancels c WHERE "
            "c.trade_id = t.trade_id) ORDER BY t.sequence")
        return [leg_of(repo.trade_of(SimpleNamespace(**dict(row))), mics[row["isin"]])
                for row in rows]
    finally:
        connection.close()
