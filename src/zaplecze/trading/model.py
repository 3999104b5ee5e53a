"""Trades, cancels and cash movements as resolved against reference data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class CashKind(StrEnum):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    FEE = "FEE"
    INTEREST = "INTEREST"
    ADJUSTMENT = "ADJUSTMENT"


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: str
    account: str
    isin: str
    side: Side
    quantity: Decimal
    price: Decimal
    currency: str
    trade_date: dt.date
    settlement_date: dt.date
    venue: str
    counterparty: str
    gross: Decimal  # quantity × price, rounded half-up to the minor unit
    commission: Decimal
    content_hash: str
    sequence: int = 0  # booking order (file order); lots with the same date follow it

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side is Side.BUY else -self.quantity

    @property
    def cash_amount(self) -> Decimal:
        """What the account pays (negative) or receives (positive)."""
        if self.side is Side.BUY:
            return -(self.gross + self.commission)
        return self.gross - self.commission


@dataclass(frozen=True, slots=True)
class Cancel:
    trade_id: str
    account: str
    cancel_date: dt.date
    content_hash: str


@dataclass(frozen=True, slots=True)
class CashMovement:
    movement_id: str
    account: str
    value_date: dt.date
    currency: str
    amount: Decimal
    kind: CashKind
    description: str
    content_hash: str
