"""Settlement obligations: what must move with the street, gross or net, and the instructions
that settle them.

A client trade has two sides. Between us and the client, the client pays gross + commission
(a BUY) or receives gross − commission (a SELL). Between us and the street (the executing
counterparty, a CCP or a clearing broker) only the gross amount moves: commission never leaves
the house. So the street-side *leg* of a trade, seen at settlement, is signed from our side:

- ``quantity`` > 0: we receive securities (the client bought); < 0: we deliver (the client sold);
- ``cash`` > 0: we receive cash (the client sold: + gross); < 0: we pay cash (a BUY: − gross).

A DVP leg therefore always has quantity and cash of opposite signs.

Legs become *obligations* per the counterparty's SSI (see ``ssi.py``):

- gross (bilateral) SSIs: one obligation per leg;
- net SSIs (a CCP, a CNS-style continuous net settlement): one obligation per key
  (settlement date, counterparty, place of settlement, ISIN, currency) with quantity and cash
  summed, i.e. one net long (receive) or net short (deliver) per security and day. Legs are
  netted together only when their SSIs also agree on the settlement details an instruction
  carries (payment, the counterparty's BIC and account, our safekeeping account).
  A net zero quantity with cash left over stays as a cash-only obligation; a net zero of both
  moves nothing and is returned in ``Netting.netted_out`` with its trade ids, so every trade
  is accounted for.

A leg whose counterparty has no SSI for its market and currency gives a MISSING_SSI problem
(located by the trade id) and no obligation. Results are sorted (date, counterparty, place of
settlement, ISIN, currency, payment, trade ids), so the same legs always give the same list.

References: ``make_reference`` writes our SEME as ``ZS`` + the settlement date (``yymmdd``) +
the day's sequence in base 36 (0-9A-Z), zero-padded to at least 4 digits: ``ZS2611090001``.
It is at most 16 characters of the SWIFT x set, and different for every (date, sequence)
within a century (the date has a fixed width, base 36 writes every number one way).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from zaplecze.kernel.problems import Problem, Rule
from zaplecze.settlement.model import Direction, Function, Instruction, Party, Payment
from zaplecze.settlement.ssi import SSI, SSIBook
from zaplecze.trading.model import Side, Trade

ZERO = Decimal(0)
REFERENCE_PREFIX = "ZS"
REFERENCE_MAX_LENGTH = 16  # ISO 15022 :20C::SEME// is 16x
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SEQUENCE_MIN_DIGITS = 4
_SEQUENCE_MAX_DIGITS = REFERENCE_MAX_LENGTH - len(REFERENCE_PREFIX) - 6
MAX_SEQUENCE = 36**_SEQUENCE_MAX_DIGITS - 1
# The SWIFT x character set (letters, digits, / - ? : ( ) . , ' + space).
_SWIFT_X = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]+")


@dataclass(frozen=True, slots=True)
class Leg:
    """One trade's street-side leg as seen at settlement, signed from our side."""

    trade_id: str
    counterparty: str
    settlement_date: dt.date
    isin: str
    currency: str
    quantity: Decimal  # + we receive securities (client BUY), − we deliver (client SELL)
    cash: Decimal  # + we receive cash (SELL: gross), − we pay (BUY: gross); never commission
    market: str  # the MIC that selects the SSI


def leg_of(trade: Trade, market: str) -> Leg:
    """The street-side leg of ``trade``, settling in ``market`` (the instrument's MIC)."""
    receive = trade.side is Side.BUY
    return Leg(trade_id=trade.trade_id, counterparty=trade.counterparty,
               settlement_date=trade.settlement_date, isin=trade.isin, currency=trade.currency,
               quantity=trade.quantity if receive else -trade.quantity,
               cash=-trade.gross if receive else trade.gross, market=market)


class ObligationKey(NamedTuple):
    """A plain tuple: made once per leg and sorted by the million, so it must be cheap."""

    settlement_date: dt.date
    counterparty: str
    place_of_settlement: str  # the CSD's BIC
    isin: str
    currency: str


class Obligation(NamedTuple):
    """What must move with one counterparty at one CSD on one date for one security/currency.

    Signs as on ``Leg``: quantity + receive / − deliver, cash + receive / − pay. A named tuple,
    not a frozen dataclass: netting a million trades makes several hundred thousand of them,
    and a frozen dataclass costs several times more to build.
    """

    key: ObligationKey
    quantity: Decimal
    cash: Decimal
    trade_ids: tuple[str, ...]  # sorted; one when gross
    payment: Payment
    ssi: SSI  # the SSI that placed it (all its legs share its settlement details)

    @property
    def direction(self) -> Direction | None:
        """RECEIVE, DELIVER, or None for a cash-only (or netted-out) obligation."""
        if self.quantity > 0:
            return Direction.RECEIVE
        if self.quantity < 0:
            return Direction.DELIVER
        return None

    @property
    def netted_out(self) -> bool:
        return self.quantity == 0 and self.cash == 0


@dataclass(frozen=True, slots=True)
class Netting:
    """Everything ``net_obligations`` found: obligations to settle, keys that netted to zero
    (with their trades), and the legs it could not place."""

    obligations: list[Obligation]
    netted_out: list[Obligation]  # quantity 0 and cash 0: nothing to instruct
    problems: list[Problem]

    @property
    def trade_ids(self) -> set[str]:
        """Every trade placed in an obligation or netted out."""
        return {trade_id for obligation in (*self.obligations, *self.netted_out)
                for trade_id in obligation.trade_ids}


def _sort_key(obligation: Obligation) -> tuple[object, ...]:
    """One flat tuple (compared item by item in C): the key, the payment, the trades."""
    return (*obligation.key, obligation.payment, obligation.trade_ids)


def _details(ssi: SSI) -> tuple[str, str, str, str]:
    """What an instruction carries from the SSI: legs differing here are never netted."""
    return (ssi.payment.value, ssi.counterparty_bic, ssi.counterparty_account,
            ssi.safekeeping_account)


def _netted(key: ObligationKey, group: list[Leg], ssis: dict[int, SSI]) -> Obligation:
    ssi = min(ssis.values(), key=lambda one: one.key)  # the same details: any would do
    return Obligation(key=key, quantity=sum((leg.quantity for leg in group), ZERO),
                      cash=sum((leg.cash for leg in group), ZERO),
                      trade_ids=tuple(sorted(leg.trade_id for leg in group)),
                      payment=ssi.payment, ssi=ssi)


def net_obligations(legs: Iterable[Leg], ssis: SSIBook) -> Netting:
    """Legs into obligations per their SSIs (gross or net), with what netted out and the
    legs without an SSI (MISSING_SSI, source = the trade id)."""
    problems: list[Problem] = []
    gross: list[Obligation] = []
    groups: dict[tuple[ObligationKey, tuple[str, str, str, str]], list[Leg]] = defaultdict(list)
    placed_by: dict[tuple[ObligationKey, tuple[str, str, str, str]], dict[int, SSI]] = {}
    details: dict[int, tuple[str, str, str, str]] = {}
    found: dict[tuple[str, str, str], SSI | None] = {}
    for leg in legs:
        wanted = (leg.counterparty, leg.market, leg.currency)
        if wanted in found:
            ssi = found[wanted]
        else:
            ssi = found[wanted] = ssis.find(*wanted)
        if ssi is None:
            problems.append(Problem(Rule.MISSING_SSI,
                                    f"trade {leg.trade_id}: no SSI for counterparty "
                                    f"{leg.counterparty}, market {leg.market}, currency "
                                    f"{leg.currency} (nor a * SSI)", leg.trade_id))
            continue
        key = ObligationKey(leg.settlement_date, leg.counterparty, ssi.place_of_settlement,
                            leg.isin, leg.currency)
        if ssi.netting:
            kept = details.get(id(ssi))
            if kept is None:
                kept = details[id(ssi)] = _details(ssi)
            slot = (key, kept)
            groups[slot].append(leg)
            placed_by.setdefault(slot, {})[id(ssi)] = ssi
        else:
            gross.append(Obligation(key=key, quantity=leg.quantity, cash=leg.cash,
                                    trade_ids=(leg.trade_id,), payment=ssi.payment, ssi=ssi))
    netted = [_netted(slot[0], group, placed_by[slot]) for slot, group in groups.items()]
    settled = sorted([*gross, *(one for one in netted if not one.netted_out)], key=_sort_key)
    nothing = sorted((one for one in netted if one.netted_out), key=_sort_key)
    problems.sort(key=lambda problem: problem.source)
    return Netting(settled, nothing, problems)


def obligations(legs: Iterable[Leg], ssis: SSIBook) -> tuple[list[Obligation], list[Problem]]:
    """The obligations to instruct and the MISSING_SSI problems (``net_obligations`` also
    returns the keys that netted to zero)."""
    netting = net_obligations(legs, ssis)
    return netting.obligations, netting.problems


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if number == 0:
            return digits


def make_reference(settlement_date: dt.date, sequence: int) -> str:
    """Our SEME for the ``sequence``-th instruction of ``settlement_date``: ``ZS`` + yymmdd +
    the sequence in base 36, at least 4 digits (``ZS2611090001``); at most 16 characters."""
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"sequence {sequence} is outside 0..{MAX_SEQUENCE}")
    return (f"{REFERENCE_PREFIX}{settlement_date:%y%m%d}"
            f"{_base36(sequence).rjust(_SEQUENCE_MIN_DIGITS, '0')}")


def is_valid_reference(reference: str) -> bool:
    """1-16 characters of the SWIFT x set, not starting or ending with '/' nor holding '//'
    (the rule for ISO 15022 references)."""
    return (0 < len(reference) <= REFERENCE_MAX_LENGTH and bool(_SWIFT_X.fullmatch(reference))
            and not reference.startswith("/") and not reference.endswith("/")
            and "//" not in reference)


def instruction_for(obligation: Obligation, ssi: SSI, reference: str, account_owner_bic: str,
                    trade_date: dt.date, creation: dt.datetime | None = None, *,
                    partial_allowed: bool = True) -> Instruction:
    """The settlement instruction (NEWM) for ``obligation`` per ``ssi``.

    Direction from the sign of the quantity; payment from the SSI; amount = |cash| and the
    currency when AGAINST, none when FREE. An obligation moving no securities (cash only) is
    not a securities instruction, and a DVP one whose cash moves the same way as the securities
    needs a credit/debit indicator that ``Instruction`` does not carry: both raise ValueError.
    """
    if not is_valid_reference(reference):
        raise ValueError(f"reference {reference!r} is not 1-16 characters of the SWIFT x set")
    direction = obligation.direction
    if direction is None:
        raise ValueError(f"obligation {obligation.key} moves no securities (cash only): it "
                         f"settles as a payment, not a securities instruction")
    amount: Decimal | None = None
    currency: str | None = None
    if ssi.payment is Payment.AGAINST:
        if obligation.cash != 0 and (obligation.cash > 0) == (obligation.quantity > 0):
            raise ValueError(f"obligation {obligation.key} receives (or delivers) both "
                             f"securities and cash; Instruction has no credit/debit indicator")
        amount = abs(obligation.cash)
        currency = obligation.key.currency
    return Instruction(reference=reference, function=Function.NEW, direction=direction,
                       payment=ssi.payment, trade_date=trade_date,
                       settlement_date=obligation.key.settlement_date, isin=obligation.key.isin,
                       quantity=abs(obligation.quantity), amount=amount, currency=currency,
                       account_owner=account_owner_bic,
                       safekeeping_account=ssi.safekeeping_account,
                       place_of_settlement=ssi.place_of_settlement,
                       counterparty=Party(ssi.counterparty_bic, ssi.counterparty_account),
                       trade_ids=obligation.trade_ids, partial_allowed=partial_allowed,
                       creation=creation)


@dataclass(frozen=True, slots=True)
class CashLadderRow:
    """Cash expected on one date in one currency: received, paid (both ≥ 0) and the net."""

    cash_in: Decimal
    cash_out: Decimal

    @property
    def net(self) -> Decimal:
        return self.cash_in - self.cash_out


def cash_ladder(obligations: Iterable[Obligation]) -> dict[tuple[dt.date, str], CashLadderRow]:
    """Per (settlement date, currency), the cash the obligations receive and pay, sorted by
    date then currency. Every obligation counts, DVP or FOP: FOP cash is still owed that day,
    it only moves outside the CSD."""
    totals: dict[tuple[dt.date, str], tuple[Decimal, Decimal]] = {}
    for obligation in obligations:
        slot = (obligation.key.settlement_date, obligation.key.currency)
        cash_in, cash_out = totals.get(slot, (ZERO, ZERO))
        if obligation.cash > 0:
            cash_in += obligation.cash
        else:
            cash_out -= obligation.cash
        totals[slot] = (cash_in, cash_out)
    return {slot: CashLadderRow(*totals[slot]) for slot in sorted(totals)}
