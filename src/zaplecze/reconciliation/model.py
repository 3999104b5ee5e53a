"""Statements from the outside world, as values: what a custodian or CSD says we hold, what a
bank says moved on our account. Every statement format (ISO 20022 semt.002 / camt.053, SWIFT
MT535 / MT940, the plain positions CSV) reads into these; matching them against our books is
``reconciliation.matching``'s work.

Signs: a cash entry's ``amount`` is positive when money came in (credit), negative when it went
out (debit); a balance is positive when the bank owes us (credit balance).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class HoldingLine:
    """One security's balance at one safekeeping account, as the statement gives it."""

    safekeeping_account: str
    isin: str
    quantity: Decimal  # units (or face amount for a bond)
    line: int | None = None  # where in the file, for located problems


@dataclass(frozen=True, slots=True)
class HoldingsStatement:
    """A statement of holdings (semt.002, MT535, or positions CSV) as of one date."""

    source: str  # file name
    statement_id: str  # the sender's reference; '' when the format has none
    statement_date: dt.date
    lines: tuple[HoldingLine, ...]
    sender: str = ""  # BIC of the custodian/CSD when the message says


@dataclass(frozen=True, slots=True)
class CashEntry:
    """One entry of a bank statement."""

    amount: Decimal  # + credit (money in), − debit (money out)
    currency: str
    booking_date: dt.date
    value_date: dt.date
    reference: str  # the best reference the bank gives (end-to-end id, our reference, …)
    bank_reference: str = ""  # the account servicer's own reference
    description: str = ""
    reversal: bool = False  # a reversal (storno) of an earlier entry
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CashStatement:
    """A bank statement (camt.053, MT940) of one account over one period."""

    source: str
    statement_id: str
    account: str  # IBAN or the bank's account number
    currency: str
    opening_balance: Decimal  # signed, + credit
    opening_date: dt.date
    closing_balance: Decimal  # booked closing balance, signed
    closing_date: dt.date
    entries: tuple[CashEntry, ...]
    available_balances: tuple[tuple[dt.date, Decimal], ...] = ()  # forward/closing available
    extra: dict[str, str] = field(default_factory=dict, compare=False)
