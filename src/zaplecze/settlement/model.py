"""The settlement conversation as values: what we instruct, what the depository answers.

Every message format (ISO 20022 sese.023/024/025, SWIFT MT540–548) reads into or writes from
these values; the formats room knows the wire, this room knows the business.

Vocabulary (see docs/glossary.md):
- *obligation*: what must move between us and one counterparty at one place of settlement on
  one settlement date, for one security and currency (gross: one per trade; net: one per key).
- *instruction*: what we send the custodian/CSD to settle an obligation; its *reference* is
  our SEME (ISO 15022 :20C::SEME, ISO 20022 TxId), unique for ever.
- *status advice*: the CSD's word on an instruction (matched, unmatched, pending, …).
- *confirmation*: what actually settled — all, or part (a partial settlement).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Direction(StrEnum):
    """The securities movement seen from us (ISO 20022 SctiesMvmntTp)."""

    RECEIVE = "RECE"  # MT540 (free) / MT541 (against payment)
    DELIVER = "DELI"  # MT542 (free) / MT543 (against payment)


class Payment(StrEnum):
    """Whether cash moves against the securities (ISO 20022 Pmt)."""

    AGAINST = "APMT"  # delivery/receipt versus payment (DVP/RVP)
    FREE = "FREE"  # free of payment (FOP)


class Function(StrEnum):
    """The message function (ISO 15022 :23G:)."""

    NEW = "NEWM"
    CANCEL = "CANC"


class StatusKind(StrEnum):
    """What a status advice says about an instruction (sese.024 / MT548)."""

    ACKNOWLEDGED = "ACKNOWLEDGED"  # accepted for further processing (IPRC//PACK)
    REJECTED = "REJECTED"  # refused by the CSD (IPRC//REJT)
    MATCHED = "MATCHED"  # matched with the counterparty's instruction (MTCH//MACH)
    UNMATCHED = "UNMATCHED"  # no counterparty instruction matches (MTCH//NMAT)
    PENDING = "PENDING"  # matched, settlement pending, reasons say why (SETT//PEND)
    FAILING = "FAILING"  # past its intended settlement date, not settled (SETT//PENF)
    CANCELLED = "CANCELLED"  # the cancellation took effect (IPRC//CAND)
    CANCEL_PENDING = "CANCEL_PENDING"  # cancellation requested, awaiting (IPRC//CPRC)
    HELD = "HELD"  # on hold at our request or the CSD's (party hold)
    RELEASED = "RELEASED"  # hold lifted


@dataclass(frozen=True, slots=True)
class Party:
    """A settlement party: its BIC and, where it matters, the safekeeping account at the CSD."""

    bic: str
    account: str = ""


@dataclass(frozen=True, slots=True)
class Instruction:
    """One settlement instruction as sent (or to be sent)."""

    reference: str  # our SEME / TxId: at most 16 characters of the SWIFT x set, no '/' at ends
    function: Function
    direction: Direction
    payment: Payment
    trade_date: dt.date | None  # None only as read from a message that gives none (optional)
    settlement_date: dt.date  # intended settlement date (ISD)
    isin: str
    quantity: Decimal  # positive, in units
    amount: Decimal | None  # settlement amount, positive; None when FREE
    currency: str | None  # None when FREE
    account_owner: str  # our BIC
    safekeeping_account: str  # our securities account at the place of settlement
    place_of_settlement: str  # the CSD's BIC (PSET)
    counterparty: Party  # the delivering (we receive) or receiving (we deliver) agent
    linked_reference: str | None = None  # the instruction a cancellation cancels (PREV)
    trade_ids: tuple[str, ...] = ()  # the trades it settles (one when gross)
    partial_allowed: bool = True  # partial settlement allowed (PARQ) or not (NPAR)
    creation: dt.datetime | None = None  # when the message was made (PREP)


@dataclass(frozen=True, slots=True)
class StatusAdvice:
    """A status of one of our instructions, as read from sese.024 or MT548."""

    reference: str  # our SEME the status is about
    kind: StatusKind
    reasons: tuple[str, ...] = ()  # ISO reason codes: LACK, CLAC, CASH, NMAS, CMIS, …
    message_reference: str = ""  # the sender's own reference of this message
    source: str = ""  # file (and position) it came from, for located problems


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What settled, as read from sese.025 or MT544–547."""

    reference: str  # our SEME
    direction: Direction
    payment: Payment
    isin: str
    quantity: Decimal  # settled in this confirmation, positive
    amount: Decimal | None  # settled cash, positive; None when FREE
    currency: str | None
    settlement_date: dt.date  # effective settlement date (ESET)
    partial: bool = False  # a partial settlement (PAIN//PART…) leaving a remainder
    remaining_quantity: Decimal | None = None  # still to settle, when the message says
    message_reference: str = ""
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)
