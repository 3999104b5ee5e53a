"""Entitlements and the ledger entries of a corporate action, as pure functions.

Entitlement is the account's position on trade basis counting every trade dated before the
ex date. The security side takes effect on the ex date: the part on settled holdings is posted
at once; the part on trades still pending across the ex date is a TRANSFORMATION entry that
stays pending with its trade (posted when it settles, voided if it is cancelled), so that on
settlement basis a pending trade counts as its transformed quantities. Cash (dividends, takeover
cash, cash in lieu) is credited on the pay date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.kernel.money import currency_scale, decimal_of, round_half_up, units
from zaplecze.ledger import accounts
from zaplecze.ledger.model import Entry, EntryKind, Phase, Posting
from zaplecze.refdata.model import RefData


@dataclass(frozen=True, slots=True)
class PendingTrade:
    """A trade dated before the ex date and not yet settled at the end of the day before."""

    entry_key: str
    quantity: int  # signed, in units of the event security's quantity scale


@dataclass(frozen=True, slots=True)
class Holding:
    """What one account holds going into the ex date (trade basis, in units)."""

    account: str
    quantity: int  # of the event security
    resulting_held: int  # of the resulting security (SPINOFF / MERGER), before the event
    pending: tuple[PendingTrade, ...] = ()


@dataclass(frozen=True, slots=True)
class Entitlement:
    event_id: str
    account: str
    kind: CaKind
    isin: str
    quantity: Decimal  # entitled quantity of the event security
    gross: Decimal  # cash: dividend gross, takeover proceeds or cash in lieu
    withholding: Decimal
    net: Decimal
    currency: str
    pay_date: dt.date  # the event's pay date, as reported
    new_quantity: Decimal = Decimal(0)  # resulting-security quantity credited
    credit_date: dt.date | None = None  # when the cash is booked: pay date, never before ex

    @property
    def cash_date(self) -> dt.date:
        return self.credit_date or self.pay_date


def _truncate(value: Fraction) -> int:
    """Toward zero: a transformed pending quantity never exceeds what it is entitled to."""
    return int(value)


def _floor(value: Fraction) -> int:
    return value.numerator // value.denominator


def apply(event: CorporateAction, holding: Holding, refdata: RefData,
          ) -> tuple[list[Entry], Entitlement | None]:
    """The ex-date entries of one account and its entitlement (cash is booked on pay date)."""
    if holding.quantity <= 0:
        if holding.quantity == 0 and holding.pending and event.kind not in (
                CaKind.CASH_DIVIDEND, CaKind.CASH_MERGER):
            # Flat on the eve (bought and sold, one still pending): nothing is entitled, but
            # the pending trade still settles in the new shares, and what settled with it.
            entries, _ = _ratio_event(event, holding, refdata)
            return entries, None
        return [], None
    if event.kind is CaKind.CASH_DIVIDEND:
        return [], _dividend(event, holding, refdata)
    if event.kind is CaKind.CASH_MERGER:
        return _cash_merger(event, holding, refdata)
    return _ratio_event(event, holding, refdata)


def _owner(account_id: str, refdata: RefData) -> str:
    return accounts.owner(account_id, refdata.accounts[account_id].kind)


def _dividend(event: CorporateAction, holding: Holding, refdata: RefData) -> Entitlement:
    instrument = refdata.instruments[event.isin]
    account = refdata.accounts[holding.account]
    quantity = decimal_of(holding.quantity, instrument.quantity_scale)
    scale = currency_scale(event.currency)
    gross = round_half_up(quantity * event.amount, scale)
    rate = refdata.withholding_rate(instrument.issuer_country, account.tax_residence)
    withholding = round_half_up(gross * rate, scale)
    return Entitlement(event.event_id, holding.account, event.kind, event.isin, quantity, gross,
                       withholding, gross - withholding, event.currency, event.pay_date,
                       credit_date=event.cash_date)


def _ratio_event(event: CorporateAction, holding: Holding, refdata: RefData,
                 ) -> tuple[list[Entry], Entitlement | None]:
    old = refdata.instruments[event.isin]
    new = refdata.instruments[event.resulting_isin]
    # Quantities in units of each security's scale; the ratio converts between them.
    unit_ratio = event.ratio * Fraction(10**new.quantity_scale, 10**old.quantity_scale)
    if event.kind is CaKind.SPLIT:
        factor = unit_ratio - 1  # the holding becomes ratio × itself: the change
    else:
        factor = unit_ratio  # stock dividend, spin-off: ratio more; merger: ratio of the new
    # The fraction is measured on the account's whole holding of the resulting security.
    before = holding.quantity if event.resulting_isin == event.isin else holding.resulting_held
    exact_new = before + Fraction(holding.quantity) * factor
    target = _floor(exact_new)
    delta_total = target - before
    fraction = exact_new - target
    pending_parts: list[tuple[PendingTrade, list[tuple[str, int]]]] = []
    settled_new = delta_total
    settled_old = -holding.quantity if event.kind is CaKind.MERGER else 0
    for trade in holding.pending:
        if event.resulting_isin == event.isin:
            # The pending trade becomes its whole transformed quantity, cut toward zero: the
            # change is that less the trade (cutting the change itself would round a reverse
            # split's negative change away from zero).
            change = _truncate(Fraction(trade.quantity) * (1 + factor)) - trade.quantity
        else:
            change = _truncate(Fraction(trade.quantity) * factor)
        moves = [(event.resulting_isin, change)]
        if event.kind is CaKind.MERGER:
            moves.append((event.isin, -trade.quantity))
            settled_old += trade.quantity
        settled_new -= moves[0][1]
        pending_parts.append((trade, moves))
    settled = [(event.resulting_isin, settled_new), (event.isin, settled_old)]
    entries = _security_entries(event, holding.account, refdata, settled, pending_parts)
    cash = Decimal(0)
    if fraction:
        fraction_shares = fraction / 10**new.quantity_scale
        cash = round_half_up(fraction_shares * Fraction(event.fraction_price),
                             currency_scale(new.currency))
    entitlement = Entitlement(event.event_id, holding.account, event.kind, event.isin,
                              decimal_of(holding.quantity, old.quantity_scale), cash,
                              Decimal(0), cash, new.currency, event.pay_date,
                              new_quantity=decimal_of(delta_total, new.quantity_scale),
                              credit_date=event.cash_date)
    return entries, entitlement


def _security_entries(event: CorporateAction, account_id: str, refdata: RefData,
                      settled: Sequence[tuple[str, int]],
                      pending_parts: Sequence[tuple[PendingTrade, Sequence[tuple[str, int]]]],
                      ) -> list[Entry]:
    owner = _owner(account_id, refdata)

    def postings(moves: Sequence[tuple[str, int]]) -> tuple[Posting, ...]:
        result: list[Posting] = []
        for isin, amount in moves:
            if amount:
                place = accounts.depository(refdata.instruments[isin].mic)
                result += [Posting(owner, isin, amount), Posting(place, isin, -amount)]
        return tuple(result)

    entries: list[Entry] = []
    settled_postings = postings(settled)
    if settled_postings:
        entries.append(Entry(key=f"ca:{event.event_id}:{account_id}",
                             kind=EntryKind.CORPORATE_ACTION, phase=Phase.POSTED,
                             business_date=event.ex_date, postings=settled_postings,
                             ref=event.event_id, account=account_id,
                             memo=f"{event.kind.value} {event.isin}"))
    for trade, moves in pending_parts:
        moved = postings(moves)
        if moved:
            entries.append(Entry(key=f"ca:{event.event_id}:{account_id}:{trade.entry_key}",
                                 kind=EntryKind.TRANSFORMATION, phase=Phase.PENDING,
                                 business_date=event.ex_date, postings=moved,
                                 ref=event.event_id, account=account_id,
                                 linked_key=trade.entry_key,
                                 memo=f"{event.kind.value} transformation of {trade.entry_key}"))
    return entries


def _cash_merger(event: CorporateAction, holding: Holding, refdata: RefData,
                 ) -> tuple[list[Entry], Entitlement]:
    instrument = refdata.instruments[event.isin]
    settled = holding.quantity - sum(trade.quantity for trade in holding.pending)
    parts = [(trade, [(event.isin, -trade.quantity)]) for trade in holding.pending]
    entries = _security_entries(event, holding.account, refdata, [(event.isin, -settled)], parts)
    quantity = decimal_of(holding.quantity, instrument.quantity_scale)
    proceeds = round_half_up(quantity * event.amount, currency_scale(event.currency))
    return entries, Entitlement(event.event_id, holding.account, event.kind, event.isin, quantity,
                                proceeds, Decimal(0), proceeds, event.currency, event.pay_date,
                                credit_date=event.cash_date)


def cash_entry(entitlement: Entitlement, refdata: RefData) -> Entry | None:
    """The pay-date entry: the account's net cash, the tax withheld, the bank's receipt."""
    if entitlement.gross == 0:
        return None
    scale = currency_scale(entitlement.currency)
    owner = _owner(entitlement.account, refdata)
    gross = units(entitlement.gross, scale)
    withheld = units(entitlement.withholding, scale)
    postings = [Posting(owner, entitlement.currency, gross - withheld),
                Posting(accounts.bank(entitlement.currency), entitlement.currency, -gross)]
    if withheld:
        postings.append(Posting(accounts.WITHHOLDING_TAX, entitlement.currency, withheld))
    return Entry(key=f"ca-cash:{entitlement.event_id}:{entitlement.account}",
                 kind=EntryKind.CORPORATE_ACTION_CASH, phase=Phase.POSTED,
                 business_date=entitlement.cash_date, postings=tuple(postings),
                 ref=entitlement.event_id, account=entitlement.account,
                 memo=f"{entitlement.kind.value} cash {entitlement.isin}")
