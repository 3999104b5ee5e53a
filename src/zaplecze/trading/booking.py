"""Booking rules: a trade or a cash movement becomes one balanced ledger entry."""

from __future__ import annotations

from zaplecze.kernel.money import currency_scale, units
from zaplecze.ledger import accounts
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.refdata.model import RefData
from zaplecze.trading.model import CashKind, CashMovement, Side, Trade


def trade_key(trade_id: str) -> str:
    return f"trade:{trade_id}"


def book_trade(trade: Trade, refdata: RefData) -> Entry:
    """The pending entry of a trade: the securities leg and the cash leg, one event.

    BUY 20 NVDA @ 1,150.00, commission 34.50:
        NVDA  client +20             depository −20
        USD   client −23,034.50      bank +23,000.00      income:commission +34.50
    """
    instrument = refdata.instruments[trade.isin]
    account = refdata.accounts[trade.account]
    owner = accounts.owner(account.account, account.kind)
    cash_scale = currency_scale(trade.currency)
    quantity = units(trade.quantity, instrument.quantity_scale)
    gross = units(trade.gross, cash_scale)
    commission = units(trade.commission, cash_scale)
    sign = 1 if trade.side is Side.BUY else -1
    postings = [
        Posting(owner, trade.isin, sign * quantity),
        Posting(accounts.depository(instrument.mic), trade.isin, -sign * quantity),
        Posting(owner, trade.currency, -sign * gross - commission),
        Posting(accounts.bank(trade.currency), trade.currency, sign * gross),
    ]
    if commission:
        postings.append(Posting(accounts.COMMISSION_INCOME, trade.currency, commission))
    return Entry(key=trade_key(trade.trade_id), kind=EntryKind.TRADE, phase=Phase.PENDING,
                 business_date=trade.trade_date, postings=tuple(postings), ref=trade.trade_id,
                 account=trade.account, settle_date=trade.settlement_date,
                 memo=f"{trade.side.value} {trade.quantity} {trade.isin} @ {trade.price}")


def book_cash(movement: CashMovement, refdata: RefData) -> Entry:
    """A cash movement, final on its value date on both bases."""
    account = refdata.accounts[movement.account]
    owner = accounts.owner(account.account, account.kind)
    amount = units(movement.amount, currency_scale(movement.currency))
    counterpart = (accounts.FEE_INCOME if movement.kind is CashKind.FEE
                   else accounts.bank(movement.currency))
    return Entry(key=f"cash:{movement.movement_id}", kind=EntryKind.CASH, phase=Phase.POSTED,
                 business_date=movement.value_date,
                 postings=(Posting(owner, movement.currency, amount),
                           Posting(counterpart, movement.currency, -amount)),
                 ref=movement.movement_id, account=movement.account,
                 memo=f"{movement.kind.value} {movement.description}".strip())
