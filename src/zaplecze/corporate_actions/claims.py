"""Market claims of a cash dividend, as pure functions.

A trade dated before the ex date carries the dividend (cum): the buyer is entitled to it. The
CSD pays the holders of its books at the end of the record date, so when the trade has not
settled by then the dividend on what is still undelivered goes to the seller's side. Our
entitlements follow the trade basis (``apply.py``: the client who bought cum is credited on the
pay date, the one who sold cum is not), so the money is where the CSD put it, not where our
book says:

- we BOUGHT (a client or the house) from the street: the seller's side received the dividend
  on the undelivered quantity; we claim it from the counterparty: a RECEIVABLE;
- we SOLD to the street: our depository account still held the shares on the record date and
  we received the dividend on them; the buyer's side claims it from us: a PAYABLE.

The claim is ``quantity × rate`` (half up to the currency's minor unit), the quantity being
what the trade had not delivered by the end of the record date. It concerns trades that settle
by confirmation (an instrumented counterparty, with standing settlement instructions): those
settle when the depository says so, which may be after the record date; the others settle on
their settlement date by construction.

Ledger (``claim:<counterparty>`` is an owner account like ``penalty:``: positive is what we owe
the counterparty, negative what it owes us); both entries are POSTED, keyed by the claim:

    on the pay date    RECEIVABLE  bank:CCY +gross · claim:CPTY −gross
                                   (the bank did not receive what the pay-date entry credited
                                   the entitled account with: the counterparty owes it)
                       PAYABLE     bank:CCY −gross · claim:CPTY +gross
                                   (the bank received what belongs to the counterparty)
    on compensation    the opposite: the claim account back to zero, the bank where the
                       money now is.

The entitled accounts' figures (entitlements, the dividends report, client cash) do not move:
a claim only says which place holds the money until it is compensated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.money import currency_scale, round_half_up, units
from zaplecze.ledger import accounts
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting

CLAIM_PREFIX = "claim"


class ClaimDirection(StrEnum):
    RECEIVABLE = "RECEIVABLE"  # the counterparty owes us the dividend
    PAYABLE = "PAYABLE"  # we owe the counterparty the dividend


class ClaimStatus(StrEnum):
    RAISED = "RAISED"  # detected; booked on the pay date
    OPEN = "OPEN"  # booked, waiting for compensation
    COMPENSATED = "COMPENSATED"
    CANCELLED = "CANCELLED"  # its event was reversed


@dataclass(frozen=True, slots=True)
class ClaimableTrade:
    """A trade in the event's security with a counterparty that settles by confirmation, and
    what of it had settled by the end of the record date (as far as known)."""

    trade_id: str
    account: str
    counterparty: str
    side: str  # BUY or SELL
    quantity: Decimal  # the trade's quantity, positive
    settled_by_record: Decimal  # delivered on or before the record date
    trade_date: dt.date
    settlement_date: dt.date  # intended


@dataclass(frozen=True, slots=True)
class MarketClaim:
    claim_id: str
    event_id: str
    trade_id: str
    account: str
    counterparty: str
    direction: ClaimDirection
    isin: str
    quantity: Decimal  # undelivered at the end of the record date
    rate: Decimal  # gross amount per share
    gross: Decimal
    currency: str
    record_date: dt.date
    pay_date: dt.date  # when the CSD paid: the claim is booked then
    raised_on: dt.date


def claim_id(event_id: str, trade_id: str) -> str:
    """A short, stable name for the claim of one trade in one event."""
    digest = hashlib.sha256(f"{event_id}\x1f{trade_id}".encode()).hexdigest()
    return f"MC{digest[:10].upper()}"


def claim_account(counterparty: str) -> str:
    return f"{CLAIM_PREFIX}:{counterparty}"


def booking_key(claim: MarketClaim) -> str:
    return f"ca-claim:{claim.event_id}:{claim.trade_id}"


def compensation_key(claim: MarketClaim) -> str:
    return f"ca-claim-paid:{claim.event_id}:{claim.trade_id}"


def decided(event: CorporateAction, trade: ClaimableTrade, day: dt.date) -> bool:
    """Whether, at the end of ``day``, it is known that the trade was (or will be) pending over
    the record date: its settlement date is after it, or the record date is over and it had
    not settled in full."""
    if trade.settled_by_record >= trade.quantity:
        return False
    return trade.settlement_date > event.record_date or day >= event.record_date


def detect(event: CorporateAction, trades: Iterable[ClaimableTrade],
           day: dt.date) -> list[MarketClaim]:
    """The claims of a cash dividend for the trades dated before its ex date that are known,
    at the end of ``day``, to be pending over its record date; none for other kinds."""
    if event.kind is not CaKind.CASH_DIVIDEND:
        return []
    scale = currency_scale(event.currency)
    found = []
    for trade in trades:
        if trade.trade_date >= event.ex_date or not decided(event, trade, day):
            continue
        quantity = trade.quantity - trade.settled_by_record
        direction = ClaimDirection.RECEIVABLE if trade.side == "BUY" else ClaimDirection.PAYABLE
        found.append(MarketClaim(
            claim_id(event.event_id, trade.trade_id), event.event_id, trade.trade_id,
            trade.account, trade.counterparty, direction, event.isin, quantity, event.amount,
            round_half_up(quantity * event.amount, scale), event.currency, event.record_date,
            event.cash_date, day))
    return found


def booked_on(claim: MarketClaim) -> dt.date:
    """The claim is booked on the pay date (or when raised, if that was later)."""
    return max(claim.pay_date, claim.raised_on)


def _postings(claim: MarketClaim, sign: int) -> tuple[Posting, ...]:
    amount = units(claim.gross, currency_scale(claim.currency))
    signed = amount if claim.direction is ClaimDirection.RECEIVABLE else -amount
    return (Posting(accounts.bank(claim.currency), claim.currency, sign * signed),
            Posting(claim_account(claim.counterparty), claim.currency, -sign * signed))


def claim_entry(claim: MarketClaim) -> Entry:
    """The pay-date entry: the money is with the counterparty (receivable) or ours to pay on
    (payable), not where the pay-date credit put it."""
    return Entry(key=booking_key(claim), kind=EntryKind.CORPORATE_ACTION_CASH,
                 phase=Phase.POSTED, business_date=booked_on(claim),
                 postings=_postings(claim, 1), ref=claim.event_id, account=claim.account,
                 memo=f"market claim {claim.claim_id} {claim.direction.value.lower()} "
                      f"{claim.counterparty}: trade {claim.trade_id}, {claim.quantity} "
                      f"{claim.isin} x {claim.rate}")


def compensation_entry(claim: MarketClaim, day: dt.date) -> Entry:
    """The claim compensated on ``day``: the money moved between the bank and the
    counterparty, the claim account back to zero."""
    assert day >= booked_on(claim), (claim.claim_id, day)
    return Entry(key=compensation_key(claim), kind=EntryKind.CORPORATE_ACTION_CASH,
                 phase=Phase.POSTED, business_date=day, postings=_postings(claim, -1),
                 ref=claim.event_id, account=claim.account,
                 memo=f"market claim {claim.claim_id} compensated by {claim.counterparty}"
                      if claim.direction is ClaimDirection.RECEIVABLE
                      else f"market claim {claim.claim_id} compensated to "
                           f"{claim.counterparty}")
