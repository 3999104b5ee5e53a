"""The contract's reports as pure functions of folded balances, lots and entitlements.

Rows are plain dicts of strings (exact decimals), sorted by their key columns; zero rows are
omitted where the contract says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from zaplecze.accounting.lots import LotBook, Realized
from zaplecze.kernel.money import at_scale, currency_scale, decimal_of, is_currency, plain
from zaplecze.ledger import accounts as gl
from zaplecze.refdata.model import RefData

Row = dict[str, str]
Balances = Mapping[tuple[str, str], int]


def positions(balances: Balances, refdata: RefData, lot_books: Mapping[str, LotBook] | None,
              ) -> list[Row]:
    """Holdings per (account, isin); with lot books (trade basis) each row has its cost basis."""
    rows: list[Row] = []
    for (account, asset), amount in balances.items():
        account_id = gl.account_id_of(account)
        instrument = refdata.instruments.get(asset)
        if account_id is None or instrument is None or amount == 0:
            continue
        row = {"account": account_id, "isin": asset,
               "quantity": plain(decimal_of(amount, instrument.quantity_scale))}
        if lot_books is not None:
            book = lot_books.get(account_id)
            cost = book.cost(asset) if book else Decimal(0)
            row["cost_basis"] = at_scale(cost, currency_scale(instrument.currency))
        row["currency"] = instrument.currency
        rows.append(row)
    return sorted(rows, key=lambda r: (r["account"], r["isin"]))


def cash(balances: Balances) -> list[Row]:
    rows = []
    for (account, asset), amount in balances.items():
        account_id = gl.account_id_of(account)
        if account_id is None or not is_currency(asset) or amount == 0:
            continue
        rows.append({"account": account_id, "currency": asset,
                     "balance": at_scale(decimal_of(amount, currency_scale(asset)),
                                         currency_scale(asset))})
    return sorted(rows, key=lambda r: (r["account"], r["currency"]))


def realized(rows: Iterable[Realized], start: dt.date, end: dt.date) -> list[Row]:
    selected = [r for r in rows if start <= r.close_date <= end]
    selected.sort(key=lambda r: (r.account, r.close_date, r.trade_id))
    result = []
    for r in selected:
        scale = currency_scale(r.currency)
        result.append({"account": r.account, "trade_id": r.trade_id, "isin": r.isin,
                       "close_date": r.close_date.isoformat(), "quantity": plain(r.quantity),
                       "proceeds": at_scale(r.proceeds, scale), "cost": at_scale(r.cost, scale),
                       "gain": at_scale(r.gain, scale), "currency": r.currency})
    return result


def dividends(entitlements: Sequence[Mapping[str, str]], start: dt.date,
              end: dt.date) -> list[Row]:
    rows = []
    for n in entitlements:
        pay_date = dt.date.fromisoformat(n["pay_date"])
        if not start <= pay_date <= end or Decimal(n["quantity"]) <= 0:
            continue
        scale = currency_scale(n["currency"])
        rows.append({"account": n["account"], "event_id": n["event_id"], "isin": n["isin"],
                     "pay_date": n["pay_date"], "quantity": plain(Decimal(n["quantity"])),
                     "gross": at_scale(Decimal(n["gross"]), scale),
                     "withholding": at_scale(Decimal(n["withholding"]), scale),
                     "net": at_scale(Decimal(n["net"]), scale), "currency": n["currency"]})
    return sorted(rows, key=lambda r: (r["account"], r["pay_date"], r["event_id"]))


def trial_balance(balances: Balances) -> list[Row]:
    """Every GL account's cash balance: negative reads as a debit, positive as a credit."""
    rows = []
    for (account, asset), amount in balances.items():
        if not is_currency(asset) or amount == 0:
            continue
        scale = currency_scale(asset)
        value = decimal_of(abs(amount), scale)
        zero = at_scale(Decimal(0), scale)
        rows.append({"gl_account": account, "currency": asset,
                     "debit": at_scale(value, scale) if amount < 0 else zero,
                     "credit": at_scale(value, scale) if amount > 0 else zero})
    return sorted(rows, key=lambda r: (r["gl_account"], r["currency"]))


def stock_record(trade: Balances, settled: Balances, refdata: RefData,
                 failing: Mapping[str, tuple[int, int]] | None = None) -> list[Row]:
    """Per security: what owners own (trade basis) against where it is — settled at the
    depository, and pending receipts/deliveries from the street, of which ``failing_to_receive``
    and ``failing_to_deliver`` are past their settlement date. ``break`` must be zero."""
    failing = failing or {}
    owned: dict[str, int] = {}
    held: dict[str, int] = {}
    located_trade: dict[str, int] = {}
    for (account, asset), amount in trade.items():
        if asset not in refdata.instruments:
            continue
        if gl.is_owner(account):
            owned[asset] = owned.get(asset, 0) + amount
        else:
            located_trade[asset] = located_trade.get(asset, 0) - amount
    for (account, asset), amount in settled.items():
        if asset in refdata.instruments and gl.is_location(account):
            held[asset] = held.get(asset, 0) - amount
    rows = []
    for isin in sorted(set(owned) | set(held) | set(located_trade)):
        scale = refdata.instruments[isin].quantity_scale
        pending = located_trade.get(isin, 0) - held.get(isin, 0)
        difference = owned.get(isin, 0) - located_trade.get(isin, 0)
        rows.append({"isin": isin, "owned": plain(decimal_of(owned.get(isin, 0), scale)),
                     "at_depository": plain(decimal_of(held.get(isin, 0), scale)),
                     "pending_from_street": plain(decimal_of(pending, scale)),
                     "failing_to_receive": plain(decimal_of(failing.get(isin, (0, 0))[0],
                                                            scale)),
                     "failing_to_deliver": plain(decimal_of(failing.get(isin, (0, 0))[1],
                                                            scale)),
                     "break": plain(decimal_of(difference, scale))})
    return [row for row in rows if any(row[c] != "0" for c in
                                       ("owned", "at_depository", "pending_from_street"))]
