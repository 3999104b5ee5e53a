"""The settlement desk's reports: obligations, the cash ladder, instructions, fails, penalties.

Rows are dicts of strings (exact decimals), like every report; ``services/reporting.py``
registers them beside the book's reports.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Connection

from zaplecze.kernel.money import at_scale, currency_scale, plain
from zaplecze.services import settlement
from zaplecze.settlement.obligations import Leg, leg_of, net_obligations
from zaplecze.settlement.obligations import cash_ladder as ladder
from zaplecze.store import repo

Row = dict[str, str]


def _legs(connection: Connection, start: dt.date, end: dt.date) -> list[Leg]:
    """The street-side legs of the trades (not cancelled) settling from ``start`` to ``end``."""
    refdata = repo.refdata(connection)
    m = repo.mark(connection)
    rows = connection.exec_driver_sql(
        f"SELECT t.* FROM trades t WHERE t.settlement_date >= {m} AND t.settlement_date <= {m} "
        f"AND NOT EXISTS (SELECT 1 FROM cancels c WHERE c.trade_id = t.trade_id) "
        f"ORDER BY t.sequence", (start.isoformat(), end.isoformat())).all()
    return [leg_of(trade, refdata.instruments[trade.isin].mic)
            for trade in map(repo.trade_of, rows)]


def obligations(connection: Connection, start: dt.date, end: dt.date) -> list[Row]:
    """Settlement obligations of the instrumented trades, gross or net per their SSIs; keys
    that net to nothing are shown with quantity 0 (they settle by netting)."""
    netting = net_obligations(
        [leg for leg in _legs(connection, start, end)],
        settlement.ssi_book(connection))
    rows = []
    for obligation in (*netting.obligations, *netting.netted_out):
        key = obligation.key
        direction = obligation.direction
        rows.append({
            "settlement_date": key.settlement_date.isoformat(), "counterparty": key.counterparty,
            "place_of_settlement": key.place_of_settlement, "isin": key.isin,
            "currency": key.currency,
            "direction": direction.name if direction else "NONE",
            "quantity": plain(abs(obligation.quantity)),
            "cash": at_scale(obligation.cash, currency_scale(key.currency)),
            "payment": "DVP" if obligation.payment.value == "APMT" else "FOP",
            "netting": "NET" if obligation.ssi.netting else "GROSS",
            "trades": str(len(obligation.trade_ids))})
    return sorted(rows, key=lambda r: (r["settlement_date"], r["counterparty"],
                                       r["place_of_settlement"], r["isin"], r["currency"]))


def cash_ladder(connection: Connection, start: dt.date, end: dt.date) -> list[Row]:
    """Cash expected in and out per settlement date and currency: instrumented trades as
    their (net) obligations, every other trade gross."""
    legs = _legs(connection, start, end)
    netting = net_obligations(legs, settlement.ssi_book(connection))
    totals = {slot: (row.cash_in, row.cash_out)
              for slot, row in ladder(netting.obligations).items()}
    placed = netting.trade_ids
    for leg in legs:
        if leg.trade_id in placed:
            continue
        slot = (leg.settlement_date, leg.currency)
        cash_in, cash_out = totals.get(slot, (Decimal(0), Decimal(0)))
        totals[slot] = ((cash_in + leg.cash, cash_out) if leg.cash > 0
                        else (cash_in, cash_out - leg.cash))
    rows = []
    for (day, currency), (cash_in, cash_out) in sorted(totals.items()):
        scale = currency_scale(currency)
        rows.append({"settlement_date": day.isoformat(), "currency": currency,
                     "cash_in": at_scale(cash_in, scale), "cash_out": at_scale(cash_out, scale),
                     "net": at_scale(cash_in - cash_out, scale)})
    return rows


def instructions(connection: Connection) -> list[Row]:
    """Every instruction sent, with its state (cancellation messages show their link)."""
    states = settlement.instructions(connection)
    rows = []
    for row in connection.exec_driver_sql(
            "SELECT * FROM settlement_instructions ORDER BY sequence"):
        item = states.get(row.reference)
        rows.append({
            "reference": row.reference, "function": row.function,
            "linked_reference": row.linked_reference, "counterparty": row.counterparty,
            "direction": row.direction, "payment": row.payment, "isin": row.isin,
            "quantity": row.quantity, "amount": row.amount, "currency": row.currency,
            "trade_date": row.trade_date, "settlement_date": row.settlement_date,
            "status": item.state.status.value if item else "SENT",
            "settled_quantity": plain(item.state.settled_quantity) if item else "",
            "reasons": ",".join(item.state.reasons) if item else "",
            "held": ("yes" if item.state.held else "no") if item else "",
            "trades": ",".join(sorted(item.legs)) if item else ""})
    return rows


def fails(connection: Connection, as_of: dt.date) -> list[Row]:
    """Instructions not settled by the end of their intended settlement date, as of
    ``as_of``: age in business days, who fails for lack of what, buy-in due, penalties."""
    refdata = repo.refdata(connection)
    calendar = repo.calendar(connection)
    m = repo.mark(connection)
    accrued: dict[str, Decimal] = {}
    for reference, amount, payer in connection.exec_driver_sql(
            f"SELECT reference, amount, payer FROM penalties WHERE business_date <= {m}",
            (as_of.isoformat(),)):
        signed = Decimal(amount) if payer == "THEM" else -Decimal(amount)
        accrued[str(reference)] = accrued.get(str(reference), Decimal(0)) + signed
    rows = []
    for fail in settlement.fails(connection, as_of, refdata, calendar):
        scale = currency_scale(fail.currency)
        rows.append({
            "reference": fail.reference, "counterparty": fail.counterparty, "isin": fail.isin,
            "direction": fail.direction.name,
            "intended_settlement_date": fail.intended_settlement_date.isoformat(),
            "instructed": plain(fail.instructed), "settled": plain(fail.settled),
            "failing": plain(fail.failing), "currency": fail.currency,
            "age_days": str(fail.age), "reason": fail.reason.value,
            "failing_party": fail.failing_party.value, "status": fail.status,
            "reasons": ",".join(fail.reasons), "buy_in_due": "yes" if fail.buy_in_due else "no",
            "penalties": at_scale(accrued.get(fail.reference, Decimal(0)), scale)})
    return rows


def penalties(connection: Connection, start: dt.date, end: dt.date) -> list[Row]:
    """CSDR penalties per month, counterparty and currency: charged to us (we failed), owed
    to us (they failed) and the net (+ owed to us), as the CSDs' monthly netting reports."""
    m = repo.mark(connection)
    totals: dict[tuple[str, str, str], list[Decimal]] = {}
    for day, counterparty, currency, amount, payer in connection.exec_driver_sql(
            f"SELECT business_date, counterparty, currency, amount, payer FROM penalties WHERE "
            f"business_date >= {m} AND business_date <= {m}",
            (start.isoformat(), end.isoformat())):
        slot = totals.setdefault((str(day)[:7], str(counterparty), str(currency)),
                                 [Decimal(0), Decimal(0), Decimal(0)])
        slot[0 if payer == "US" else 1] += Decimal(amount)
        slot[2] += 1
    rows = []
    for (month, counterparty, currency), (charged, owed, days) in sorted(totals.items()):
        scale = currency_scale(currency)
        rows.append({"month": month, "counterparty": counterparty, "currency": currency,
                     "charged_to_us": at_scale(charged, scale),
                     "owed_to_us": at_scale(owed, scale), "net": at_scale(owed - charged, scale),
                     "days": str(days)})
    return rows
