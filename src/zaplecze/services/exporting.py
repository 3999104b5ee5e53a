"""``zaplecze export --format ledger|beancount``: the general ledger as text for auditors.

The export holds the trade-basis journal — every entry but the POST entries that only move a
pending entry onto the settlement basis — so its balances equal ``report trial-balance`` (and,
for securities, the stock record's ownership). Entries still pending carry the '!' flag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import TextIO

from sqlalchemy import Connection, Engine

from zaplecze.formats.ledger_text import TextPosting, TextTransaction, write_beancount, write_ledger
from zaplecze.kernel.money import currency_scale, is_currency
from zaplecze.store import repo
from zaplecze.store.db import read_connection


def export_journal(engine: Engine, fmt: str, stream: TextIO) -> int:
    with read_connection(engine) as connection:
        transactions = _transactions(connection)
        if fmt == "beancount":
            return write_beancount(transactions, stream, title="Zaplecze general ledger")
        return write_ledger(transactions, stream, title="Zaplecze general ledger")


def _transactions(connection: Connection) -> Iterator[TextTransaction]:
    refdata = repo.refdata(connection)
    scales: dict[str, int] = {isin: i.quantity_scale for isin, i in refdata.instruments.items()}
    posted = {str(row[0]) for row in connection.exec_driver_sql(
        "SELECT target_key FROM entries WHERE phase IN ('POST', 'VOID')")}
    rows = connection.exec_driver_sql(
        "SELECT e.sequence, e.entry_key, e.kind, e.phase, e.business_date, e.ref, e.memo, "
        "p.gl_account, p.asset, p.amount FROM entries e JOIN postings p "
        "ON p.entry_sequence = e.sequence WHERE e.phase <> 'POST' ORDER BY e.sequence, p.line")
    current: list[tuple[object, ...]] = []
    for row in rows:
        if current and current[0][0] != row[0]:
            yield _transaction(current, scales, posted)
            current = []
        current.append(tuple(row))
    if current:
        yield _transaction(current, scales, posted)


def _scale(asset: str, scales: dict[str, int]) -> int:
    if asset in scales:
        return scales[asset]
    return currency_scale(asset) if is_currency(asset) else 0


def _transaction(rows: list[tuple[object, ...]], scales: dict[str, int],
                 settled: set[str]) -> TextTransaction:
    sequence, key, kind, phase, day, ref, memo = rows[0][:7]
    postings = tuple(
        TextPosting(str(account), str(asset),
                    Decimal(int(str(amount))).scaleb(-_scale(str(asset), scales)),
                    _scale(str(asset), scales))
        for *_, account, asset, amount in rows)
    narration = f"{kind} {ref} {memo}".strip()
    return TextTransaction(int(str(sequence)), dt.date.fromisoformat(str(day)), narration,
                           postings, pending=phase == "PENDING" and str(key) not in settled)
