"""The settlement domain (settlement/ssi, obligations, penalties, lifecycle): pure values.

Conventions pinned here:
- SSI precedence: exact > any market (``*``) > any currency (``*``) > both ``*``.
- Legs are signed from our side: + receive securities / cash, − deliver / pay; the street
  moves gross, never commission. Netting preserves quantity and cash per key (property test).
- Failing (penalty) days: settlement days from the ISD inclusive to ``today`` exclusive.
- Buy-in: due from ISD + extension + 1 settlement days (4 liquid / 7 illiquid / 15 SME growth).
- Lack-of-cash penalties: reference value × overnight rate / 365 per failing day.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.fields import Rejected
from zaplecze.kernel.problems import Rule
from zaplecze.settlement.lifecycle import (
    InstructionState,
    InstructionStatus,
    apply_confirmation,
    apply_status,
    cancellation_of,
    is_failing,
    mark_sent,
    new_state,
    request_cancel,
)
from zaplecze.settlement.model import (
    Confirmation,
    Direction,
    Function,
    Instruction,
    Party,
    Payment,
    StatusAdvice,
    StatusKind,
)
from zaplecze.settlement.obligations import (
    Leg,
    Obligation,
    ObligationKey,
    cash_ladder,
    instruction_for,
    is_valid_reference,
    leg_of,
    make_reference,
    net_obligations,
    obligations,
)
from zaplecze.settlement.penalties import (
    Fail,
    FailingParty,
    FailReason,
    PenaltyClass,
    accrue,
    buy_in_date,
    buy_in_due,
    daily_cash_penalty,
    daily_penalty,
    extension_period,
    failing_days,
    monthly_report,
    penalty_days,
)
from zaplecze.settlement.ssi import SSI, SSIBook, load_ssis, ssi_row
from zaplecze.trading.model import Side, Trade

D = dt.date
KDPW = "KDPWPLPWXXX"  # KDPW, the Polish CSD
CBF = "DAKVDEFFXXX"  # Clearstream Banking Frankfurt
US_BIC = "ZAPLPLPWXXX"  # our own BIC in these tests
PKO = "PLPKO0000016"
PZU = "PLPZU0000011"
CAL = SettlementCalendar()
DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = 1000 if DEEP else 100
ISD = D(2026, 11, 9)  # a Monday, two days before Independence Day (Wed 11 November)


def ssi_values(**changes: str) -> dict[str, str]:
    values = {"counterparty": "BROKER1", "market": "XWAR", "currency": "PLN",
              "place_of_settlement": KDPW, "counterparty_bic": "BPKOPLPWXXX",
              "counterparty_account": "PL-0042", "safekeeping_account": "ZAP-001",
              "payment": "DVP", "netting": "GROSS"}
    values.update(changes)
    return values


def make_ssi(counterparty: str = "BROKER1", market: str = "XWAR", currency: str = "PLN", *,
             netting: bool = False, payment: Payment = Payment.AGAINST,
             place: str = KDPW, account: str = "PL-0042") -> SSI:
    return SSI(counterparty=counterparty, market=market, currency=currency,
               place_of_settlement=place, counterparty_bic="BPKOPLPWXXX",
               counterparty_account=account, safekeeping_account="ZAP-001", payment=payment,
               netting=netting)


def book_of(*ssis: SSI) -> SSIBook:
    book, problems = SSIBook.build(ssis)
    assert problems == []
    return book


# --- SSIs ---------------------------------------------------------------------------------


def test_an_ssi_row_reads_into_an_ssi() -> None:
    ssi = ssi_row(ssi_values(payment="FOP", netting="NET"))
    assert ssi == make_ssi(payment=Payment.FREE, netting=True)
    wildcard = ssi_row(ssi_values(market="*", currency="*"))
    assert (wildcard.market, wildcard.currency) == ("*", "*")
    assert ssi_row(ssi_values(counterparty_bic="BPKOPLPW")).counterparty_bic == "BPKOPLPW"


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("place_of_settlement", "KDPW1LPW", Rule.INVALID_BIC),  # digit in the country code
    ("place_of_settlement", "KDPWXXPW", Rule.INVALID_BIC),  # XX is not a country
    ("counterparty_bic", "BPKOPLPWX", Rule.INVALID_BIC),  # 9 characters
    ("counterparty_bic", "bpkoplpwxxx", Rule.INVALID_BIC),  # BICs are written in capitals
    ("counterparty_bic", "BPKO PLPW", Rule.INVALID_BIC),
    ("counterparty_bic", "", Rule.MISSING_REQUIRED_VALUE),
    ("market", "XXXX", Rule.UNKNOWN_MIC),
    ("currency", "PLZ", Rule.INVALID_CURRENCY),
    ("payment", "DVD", Rule.INVALID_ENUM_VALUE),
    ("netting", "CNS", Rule.INVALID_ENUM_VALUE),
    ("safekeeping_account", "", Rule.MISSING_REQUIRED_VALUE),
])
def test_a_bad_ssi_row_is_rejected(column: str, value: str, rule: Rule) -> None:
    with pytest.raises(Rejected) as caught:
        ssi_row(ssi_values(**{column: value}))
    assert caught.value.rule is rule
    assert column in caught.value.detail


def test_a_second_ssi_for_one_key_is_refused_where_it_stands() -> None:
    rows = [(2, ssi_values()), (3, ssi_values(counterparty_account="PL-0099")),
            (4, ssi_values(place_of_settlement="NOPE")), (5, ssi_values(currency="EUR")),
            (6, ssi_values())]
    book, problems = load_ssis(rows)
    assert [(p.rule, p.source, p.line) for p in problems] == [
        (Rule.DUPLICATE_SSI, "ssis.csv", 3), (Rule.INVALID_BIC, "ssis.csv", 4),
        (Rule.DUPLICATE_SSI, "ssis.csv", 6)]
    assert "line 2" in problems[0].detail and "other content" in problems[0].detail
    assert "the same content" in problems[2].detail
    assert len(book) == 2
    found = book.find("BROKER1", "XWAR", "PLN")
    assert found is not None and found.counterparty_account == "PL-0042"  # the first stays


def test_build_refuses_duplicates_without_lines() -> None:
    _, problems = SSIBook.build([make_ssi(), make_ssi(account="other")])
    assert [p.rule for p in problems] == [Rule.DUPLICATE_SSI]
    assert "BROKER1" in problems[0].detail and "XWAR" in problems[0].detail


def test_the_most_specific_ssi_wins() -> None:
    exact = make_ssi(account="exact")
    any_market = make_ssi(market="*", account="any-market")
    any_currency = make_ssi(currency="*", account="any-currency")
    both = make_ssi(market="*", currency="*", account="both")
    full = book_of(exact, any_market, any_currency, both)

    def found(book: SSIBook, market: str, currency: str) -> str | None:
        ssi = book.find("BROKER1", market, currency)
        return ssi.counterparty_account if ssi else None

    assert found(full, "XWAR", "PLN") == "exact"
    assert found(full, "XETR", "PLN") == "any-market"
    assert found(full, "XWAR", "EUR") == "any-currency"
    assert found(full, "XETR", "EUR") == "both"
    assert found(book_of(any_market, any_currency, both), "XWAR", "PLN") == "any-market"
    assert found(book_of(any_currency, both), "XWAR", "PLN") == "any-currency"
    assert found(book_of(both), "XWAR", "PLN") == "both"
    assert found(book_of(exact), "XETR", "PLN") is None
    assert full.find("SOMEONE", "XWAR", "PLN") is None


# --- legs and obligations -----------------------------------------------------------------


def trade(trade_id: str, side: Side, quantity: str, price: str, *, isin: str = PKO,
          counterparty: str = "BROKER1", settlement_date: dt.date = ISD,
          currency: str = "PLN") -> Trade:
    gross = Decimal(quantity) * Decimal(price)
    return Trade(trade_id=trade_id, account="C01", isin=isin, side=side,
                 quantity=Decimal(quantity), price=Decimal(price), currency=currency,
                 trade_date=D(2026, 11, 5), settlement_date=settlement_date, venue="XWAR",
                 counterparty=counterparty, gross=gross, commission=Decimal("12.34"),
                 content_hash="-")


def test_a_leg_is_signed_from_our_side_and_moves_gross() -> None:
    buy = leg_of(trade("T1", Side.BUY, "100", "50.00"), "XWAR")
    sell = leg_of(trade("T2", Side.SELL, "40", "51.00"), "XWAR")
    assert (buy.quantity, buy.cash) == (Decimal(100), Decimal("-5000.00"))  # no commission
    assert (sell.quantity, sell.cash) == (Decimal(-40), Decimal("2040.00"))
    assert (buy.market, buy.settlement_date, buy.isin) == ("XWAR", D(2026, 11, 9), PKO)


def legs_of(*trades: Trade) -> list[Leg]:
    return [leg_of(one, "XWAR") for one in trades]


def test_gross_gives_one_obligation_per_leg_and_net_one_per_key() -> None:
    legs = legs_of(trade("T1", Side.BUY, "100", "50.00"), trade("T2", Side.BUY, "50", "50.20"),
                   trade("T3", Side.SELL, "30", "50.10"), trade("T4", Side.BUY, "10", "40.00",
                                                               isin=PZU))
    gross, problems = obligations(legs, book_of(make_ssi()))
    assert problems == [] and len(gross) == 4
    assert [o.trade_ids for o in gross] == [("T1",), ("T2",), ("T3",), ("T4",)]
    net, _ = obligations(legs, book_of(make_ssi(netting=True)))
    key = ObligationKey(D(2026, 11, 9), "BROKER1", KDPW, PKO, "PLN")
    assert net[0] == Obligation(key=key, quantity=Decimal(120),
                                cash=Decimal("-5000.00") - Decimal("2510.00") + Decimal("1503.00"),
                                trade_ids=("T1", "T2", "T3"), payment=Payment.AGAINST,
                                ssi=make_ssi(netting=True))
    assert net[0].direction is Direction.RECEIVE
    assert [o.trade_ids for o in net] == [("T1", "T2", "T3"), ("T4",)]


def test_net_zero_is_netted_out_and_zero_quantity_with_cash_stays() -> None:
    legs = legs_of(trade("T1", Side.BUY, "100", "50.00"), trade("T2", Side.SELL, "100", "50.00"),
                   trade("T3", Side.BUY, "10", "40.00", isin=PZU),
                   trade("T4", Side.SELL, "10", "40.50", isin=PZU))
    netting = net_obligations(legs, book_of(make_ssi(netting=True)))
    assert [(o.key.isin, o.quantity, o.cash) for o in netting.obligations] == [
        (PZU, Decimal(0), Decimal("5.00"))]  # cash only: we receive the price difference
    assert netting.obligations[0].direction is None
    assert [o.trade_ids for o in netting.netted_out] == [("T1", "T2")]
    assert netting.trade_ids == {"T1", "T2", "T3", "T4"}


def test_a_leg_without_an_ssi_is_a_located_problem_and_no_obligation() -> None:
    legs = legs_of(trade("T1", Side.BUY, "1", "50.00"),
                   trade("T2", Side.BUY, "1", "50.00", counterparty="NOBODY"))
    found, problems = obligations(legs, book_of(make_ssi()))
    assert [o.trade_ids for o in found] == [("T1",)]
    assert [(p.rule, p.source) for p in problems] == [(Rule.MISSING_SSI, "T2")]
    assert "NOBODY" in problems[0].detail


def test_legs_net_only_with_the_same_settlement_details() -> None:
    """Two markets' SSIs with one CSD and the same details net together; another account not."""
    book = book_of(make_ssi(netting=True), make_ssi(market="XETR", netting=True),
                   make_ssi(counterparty="BROKER2", netting=True),
                   make_ssi(counterparty="BROKER2", market="XETR", netting=True, account="X"))
    legs = [leg_of(trade("T1", Side.BUY, "5", "1"), "XWAR"),
            leg_of(trade("T2", Side.BUY, "7", "1"), "XETR"),
            leg_of(trade("T3", Side.BUY, "5", "1", counterparty="BROKER2"), "XWAR"),
            leg_of(trade("T4", Side.BUY, "7", "1", counterparty="BROKER2"), "XETR")]
    found, _ = obligations(legs, book)
    assert [o.trade_ids for o in found] == [("T1", "T2"), ("T3",), ("T4",)]


COUNTERPARTIES = ("BROKER1", "BROKER2", "CCP", "NOBODY")
ISINS = (PKO, PZU, "US0378331005")
DATES = (D(2026, 11, 9), D(2026, 11, 10))
CURRENCIES = ("PLN", "EUR")


@st.composite
def random_legs(draw: st.DrawFn) -> list[Leg]:
    count = draw(st.integers(min_value=0, max_value=40))
    legs = []
    for number in range(count):
        quantity = Decimal(draw(st.integers(min_value=1, max_value=500)))
        price = Decimal(draw(st.integers(min_value=1, max_value=10_000))).scaleb(-2)
        receive = draw(st.booleans())
        legs.append(Leg(trade_id=f"T{number:03d}",
                        counterparty=draw(st.sampled_from(COUNTERPARTIES)),
                        settlement_date=draw(st.sampled_from(DATES)),
                        isin=draw(st.sampled_from(ISINS)),
                        currency=draw(st.sampled_from(CURRENCIES)),
                        quantity=quantity if receive else -quantity,
                        cash=-(quantity * price) if receive else quantity * price,
                        market=draw(st.sampled_from(("XWAR", "XETR")))))
    return legs


MIXED_BOOK = book_of(
    make_ssi("BROKER1", "XWAR", "*"), make_ssi("BROKER1", "XETR", "*", place=CBF),
    make_ssi("BROKER2", "*", "*", netting=True),
    make_ssi("CCP", "*", "PLN", netting=True),
    make_ssi("CCP", "XETR", "EUR", netting=True, place=CBF, payment=Payment.FREE))


@settings(max_examples=EXAMPLES, deadline=None)
@given(random_legs(), st.randoms(use_true_random=False))
def test_netting_preserves_quantity_and_cash(legs: list[Leg], rnd: random.Random) -> None:
    netting = net_obligations(legs, MIXED_BOOK)
    placed = [leg for leg in legs
              if MIXED_BOOK.find(leg.counterparty, leg.market, leg.currency) is not None]
    assert len(netting.problems) == len(legs) - len(placed)
    # every placed trade is in exactly one obligation (or netted-out one)
    ids = [i for o in (*netting.obligations, *netting.netted_out) for i in o.trade_ids]
    assert sorted(ids) == sorted(leg.trade_id for leg in placed)

    def totals(pairs: list[tuple[object, Decimal, Decimal]]) -> dict[object, tuple[Decimal, ...]]:
        sums: dict[object, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for key, quantity, cash in pairs:
            sums[key][0] += quantity
            sums[key][1] += cash
        return {key: tuple(value) for key, value in sums.items()}

    everything = [*netting.obligations, *netting.netted_out]
    by_leg = {leg.trade_id: leg for leg in placed}
    for grouping in (lambda o: (o.key.isin, o.key.currency), lambda o: o.key):
        from_obligations = totals([(grouping(o), o.quantity, o.cash) for o in everything])
        from_legs = totals([(grouping(o), by_leg[i].quantity, by_leg[i].cash)
                            for o in everything for i in o.trade_ids])
        assert from_obligations == from_legs
    per_security = totals([((leg.isin, leg.currency), leg.quantity, leg.cash) for leg in placed])
    assert totals([((o.key.isin, o.key.currency), o.quantity, o.cash)
                   for o in everything]) == per_security
    # net keys appear once; netted-out ones move nothing; gross ones are one leg each
    net_keys = [(o.key, o.payment) for o in everything if o.ssi.netting]
    assert len(net_keys) == len(set(net_keys))
    assert all(o.quantity == 0 and o.cash == 0 for o in netting.netted_out)
    assert all(len(o.trade_ids) == 1 for o in everything if not o.ssi.netting)
    # deterministic: the order of the legs does not matter
    shuffled = list(legs)
    rnd.shuffle(shuffled)
    again = net_obligations(shuffled, MIXED_BOOK)
    assert (again.obligations, again.netted_out) == (netting.obligations, netting.netted_out)


@settings(max_examples=EXAMPLES, deadline=None)
@given(random_legs())
def test_gross_mode_yields_one_obligation_per_leg(legs: list[Leg]) -> None:
    book = book_of(*(make_ssi(cp, "*", "*") for cp in COUNTERPARTIES))
    found, problems = obligations(legs, book)
    assert problems == []
    assert sorted(o.trade_ids for o in found) == sorted((leg.trade_id,) for leg in legs)
    by_id = {leg.trade_id: leg for leg in legs}
    assert all((o.quantity, o.cash) == (by_id[o.trade_ids[0]].quantity,
                                        by_id[o.trade_ids[0]].cash) for o in found)


def test_instructions_follow_the_sign_and_the_ssi() -> None:
    legs = legs_of(trade("T1", Side.BUY, "100", "50.00"), trade("T2", Side.SELL, "40", "51.00",
                                                               isin=PZU))
    ssi = make_ssi()
    receive, deliver = obligations(legs, book_of(ssi))[0]
    created = dt.datetime(2026, 11, 5, 18, 0)
    first = instruction_for(receive, ssi, make_reference(D(2026, 11, 9), 1), US_BIC,
                            D(2026, 11, 5), created)
    assert first == Instruction(
        reference="ZS2611090001", function=Function.NEW, direction=Direction.RECEIVE,
        payment=Payment.AGAINST, trade_date=D(2026, 11, 5), settlement_date=D(2026, 11, 9),
        isin=PKO, quantity=Decimal(100), amount=Decimal("5000.00"), currency="PLN",
        account_owner=US_BIC, safekeeping_account="ZAP-001", place_of_settlement=KDPW,
        counterparty=first.counterparty, trade_ids=("T1",), creation=created)
    assert (first.counterparty.bic, first.counterparty.account) == ("BPKOPLPWXXX", "PL-0042")
    second = instruction_for(deliver, ssi, "ZS2611090002", US_BIC, D(2026, 11, 5))
    assert (second.direction, second.quantity, second.amount) == (
        Direction.DELIVER, Decimal(40), Decimal("2040.00"))
    free = instruction_for(deliver, make_ssi(payment=Payment.FREE), "ZS2611090003", US_BIC,
                           D(2026, 11, 5))
    assert (free.payment, free.amount, free.currency) == (Payment.FREE, None, None)


def test_no_securities_instruction_for_cash_only_or_one_way_obligations() -> None:
    key = ObligationKey(D(2026, 11, 9), "BROKER1", KDPW, PKO, "PLN")
    ssi = make_ssi(netting=True)
    cash_only = Obligation(key, Decimal(0), Decimal("5.00"), ("T1", "T2"), Payment.AGAINST, ssi)
    one_way = Obligation(key, Decimal(10), Decimal("5.00"), ("T1", "T2"), Payment.AGAINST, ssi)
    for obligation in (cash_only, one_way):
        with pytest.raises(ValueError):
            instruction_for(obligation, ssi, "ZS2611090001", US_BIC, D(2026, 11, 5))
    with pytest.raises(ValueError):
        instruction_for(one_way, ssi, "TOO-LONG-A-REFERENCE", US_BIC, D(2026, 11, 5))


def test_references_are_short_swift_x_and_unique_per_date_and_sequence() -> None:
    assert make_reference(D(2026, 11, 9), 0) == "ZS2611090000"
    assert make_reference(D(2026, 11, 9), 35) == "ZS261109000Z"
    assert make_reference(D(2026, 11, 9), 36**4) == "ZS26110910000"
    assert make_reference(D(2026, 11, 9), 36**8 - 1) == "ZS261109ZZZZZZZZ"
    seen = set()
    for day in (D(2026, 11, 9), D(2026, 11, 10), D(2027, 1, 1)):
        for sequence in (*range(2000), 36**4 - 1, 36**4, 36**6, 36**8 - 1):
            reference = make_reference(day, sequence)
            assert is_valid_reference(reference) and len(reference) <= 16
            seen.add(reference)
    assert len(seen) == 3 * 2004
    for bad in (-1, 36**8):
        with pytest.raises(ValueError):
            make_reference(D(2026, 11, 9), bad)
    assert not is_valid_reference("/ZS1") and not is_valid_reference("ZS//1")
    assert not is_valid_reference("ZS_1") and not is_valid_reference("")


def test_the_cash_ladder_sums_cash_per_date_and_currency() -> None:
    legs = legs_of(trade("T1", Side.BUY, "100", "50.00"), trade("T2", Side.SELL, "40", "51.00"),
                   trade("T3", Side.SELL, "10", "10.00", settlement_date=D(2026, 11, 10)),
                   trade("T4", Side.BUY, "1", "7.00", currency="EUR"))
    found, _ = obligations(legs, book_of(make_ssi(currency="*")))
    ladder = cash_ladder(found)
    assert list(ladder) == [(D(2026, 11, 9), "EUR"), (D(2026, 11, 9), "PLN"),
                            (D(2026, 11, 10), "PLN")]
    day = ladder[(D(2026, 11, 9), "PLN")]
    assert (day.cash_in, day.cash_out, day.net) == (
        Decimal("2040.00"), Decimal("5000.00"), Decimal("-2960.00"))
    assert ladder[(D(2026, 11, 10), "PLN")].net == Decimal("100.00")
    assert ladder[(D(2026, 11, 9), "EUR")].net == Decimal("-7.00")


# --- penalties ----------------------------------------------------------------------------


def pko_fail(isd: dt.date = ISD, party: FailingParty = FailingParty.US,
             counterparty: str = "BROKER1") -> Fail:
    return Fail(reference="ZS2611090001", counterparty=counterparty, isin=PKO,
                intended_settlement_date=isd, quantity=Decimal(10_000), currency="PLN",
                reason=FailReason.LACK_OF_SECURITIES, failing_party=party)


def test_the_pko_worked_example() -> None:
    """PKO BP, a liquid share: 10,000 shares failed at a reference price of 50.00 PLN.
    Reference value 10,000 × 50.00 = 500,000.00 PLN; 1 bp a day = 500,000.00 × 0.0001 =
    50.00 PLN a day. ISD Monday 2026-11-09, delivered Friday 2026-11-13: failing days are
    9, 10 and 12 November (11 November, Independence Day, is no settlement day), so
    3 × 50.00 = 150.00 PLN."""
    assert daily_penalty(Decimal(10_000), Decimal("50.00"), PenaltyClass.LIQUID_SHARE) == 50
    days = failing_days(D(2026, 11, 9), D(2026, 11, 13), CAL, "XWAR", "PLN")
    assert days == [D(2026, 11, 9), D(2026, 11, 10), D(2026, 11, 12)]
    charged = [accrue(pko_fail(), day, Decimal("50.00"), PenaltyClass.LIQUID_SHARE)
               for day in days]
    assert [p.amount for p in charged] == [Decimal("50.00")] * 3
    assert str(charged[0].amount) == "50.00"
    assert sum(p.amount for p in charged) == Decimal("150.00")
    assert charged[0].signed == Decimal("-50.00")  # we failed: charged to us


def test_a_lack_of_cash_example() -> None:
    """We fail to pay for 2,000 shares at a reference price of 75.50 EUR: reference value
    151,000.00 EUR. With the ECB marginal lending rate at 2.40 % a year, one day is
    151,000.00 × 0.024 / 365 = 3,624 / 365 = 9.92876712… → 9.93 EUR."""
    fail = Fail(reference="ZS2611090002", counterparty="BROKER1", isin="DE0007164600",
                intended_settlement_date=D(2026, 11, 9), quantity=Decimal(2_000), currency="EUR",
                reason=FailReason.LACK_OF_CASH, failing_party=FailingParty.US)
    exact = daily_cash_penalty(Decimal(2_000), Decimal("75.50"), Decimal("0.024"))
    assert exact == Decimal(3624) / Decimal(365)
    penalty = accrue(fail, D(2026, 11, 9), Decimal("75.50"), PenaltyClass.LIQUID_SHARE,
                     overnight_rate=Decimal("0.024"))
    assert (penalty.exact, penalty.amount) == (exact, Decimal("9.93"))
    # the central bank rate is floored at zero
    negative = accrue(fail, D(2026, 11, 9), Decimal("75.50"), PenaltyClass.LIQUID_SHARE,
                      overnight_rate=Decimal("-0.005"))
    assert negative.amount == 0
    with pytest.raises(ValueError):
        accrue(fail, D(2026, 11, 9), Decimal("75.50"), PenaltyClass.LIQUID_SHARE)


@pytest.mark.parametrize(("penalty_class", "bp"), [
    (PenaltyClass.LIQUID_SHARE, "1.0"), (PenaltyClass.ILLIQUID_SHARE, "0.5"),
    (PenaltyClass.SME_GROWTH, "0.25"), (PenaltyClass.SOVEREIGN_DEBT, "0.10"),
    (PenaltyClass.OTHER_DEBT, "0.20"), (PenaltyClass.SME_DEBT, "0.15"),
    (PenaltyClass.OTHER, "0.5")])
def test_the_annex_rates(penalty_class: PenaltyClass, bp: str) -> None:
    # a reference value of 1,000,000.00: one basis point is 100.00
    assert daily_penalty(Decimal(10_000), Decimal("100.00"), penalty_class) == \
        Decimal(bp) * 100


def test_a_daily_penalty_is_rounded_half_up_to_the_minor_unit() -> None:
    # 1 × 100.00 × 0.5 bp = 0.005 exactly -> 0.01; in JPY (no minor unit) 1,000 × 10 -> 1
    fail = Fail("R", "BROKER1", PKO, D(2026, 11, 9), Decimal(1), "PLN",
                FailReason.LACK_OF_SECURITIES, FailingParty.THEM)
    half = accrue(fail, D(2026, 11, 9), Decimal("100.00"), PenaltyClass.ILLIQUID_SHARE)
    assert (half.exact, half.amount, half.signed) == (Decimal("0.005"), Decimal("0.01"),
                                                      Decimal("0.01"))
    yen = Fail("R", "BROKER1", "JP3633400001", D(2026, 11, 9), Decimal(1_000), "JPY",
               FailReason.LACK_OF_SECURITIES, FailingParty.US)
    assert accrue(yen, D(2026, 11, 9), Decimal(10), PenaltyClass.OTHER).amount == Decimal(1)
    with pytest.raises(ValueError):
        accrue(fail, D(2026, 11, 6), Decimal("100.00"), PenaltyClass.OTHER)


@pytest.mark.parametrize(("isd", "today", "days"), [
    (D(2026, 11, 9), D(2026, 11, 9), 0),  # settled on ISD: no penalty
    (D(2026, 11, 9), D(2026, 11, 10), 1),  # ISD inclusive, today exclusive
    (D(2026, 11, 6), D(2026, 11, 9), 1),  # Friday ISD, Monday: the weekend does not count
    (D(2026, 11, 6), D(2026, 11, 8), 1),  # asked on a Sunday
    (D(2026, 11, 10), D(2026, 11, 12), 1),  # Wednesday 11 November is a holiday
    (D(2026, 11, 10), D(2026, 11, 13), 2),
    (D(2026, 11, 6), D(2026, 11, 16), 5),  # 6, 9, 10, 12, 13
])
def test_penalty_days(isd: dt.date, today: dt.date, days: int) -> None:
    assert penalty_days(isd, today, CAL, "XWAR", "PLN") == days


def test_buy_in_after_four_days_across_a_weekend_and_a_holiday() -> None:
    # ISD Thu 5 Nov; +1 Fri 6, +2 Mon 9, +3 Tue 10, (Wed 11 holiday), +4 Thu 12: the extension
    # period ends with Thursday 12; the buy-in is due from Friday 13 November.
    isd = D(2026, 11, 5)
    liquid = PenaltyClass.LIQUID_SHARE
    assert extension_period(liquid) == 4
    assert buy_in_date(isd, CAL, "XWAR", "PLN", 4) == D(2026, 11, 13)
    for day, due in ((D(2026, 11, 10), False), (D(2026, 11, 11), False),
                     (D(2026, 11, 12), False), (D(2026, 11, 13), True), (D(2026, 11, 14), True)):
        assert buy_in_due(isd, day, CAL, "XWAR", "PLN", liquid) is due, day
    # without the holiday (EUR on Xetra: 11 November is an ordinary day) it is due a day earlier
    assert buy_in_due(isd, D(2026, 11, 12), CAL, "XETR", "EUR", liquid)


def test_buy_in_extension_periods() -> None:
    isd = D(2026, 11, 5)
    # illiquid: 7 settlement days: 6, 9, 10, 12, 13, 16, 17 -> due from Wednesday 18
    assert extension_period(PenaltyClass.ILLIQUID_SHARE) == 7
    assert not buy_in_due(isd, D(2026, 11, 17), CAL, "XWAR", "PLN", PenaltyClass.ILLIQUID_SHARE)
    assert buy_in_due(isd, D(2026, 11, 18), CAL, "XWAR", "PLN", PenaltyClass.ILLIQUID_SHARE)
    assert not buy_in_due(isd, D(2026, 11, 17), CAL, "XWAR", "PLN", PenaltyClass.OTHER_DEBT,
                          liquid=False)
    # SME growth market: 15 settlement days -> 6, 9, 10, 12, 13, 16-20, 23-27 -> due 30 Nov
    assert extension_period(PenaltyClass.SME_GROWTH) == extension_period(PenaltyClass.SME_DEBT)
    assert buy_in_date(isd, CAL, "XWAR", "PLN", 15) == D(2026, 11, 30)
    assert not buy_in_due(isd, D(2026, 11, 27), CAL, "XWAR", "PLN", PenaltyClass.SME_GROWTH)
    assert buy_in_due(isd, D(2026, 11, 30), CAL, "XWAR", "PLN", PenaltyClass.SME_GROWTH)
    # an SME growth market's shorter period
    assert buy_in_due(isd, D(2026, 11, 13), CAL, "XWAR", "PLN", PenaltyClass.SME_GROWTH,
                      extension_days=4)
    assert extension_period(PenaltyClass.SOVEREIGN_DEBT) == 4


def test_the_monthly_report_nets_per_month_counterparty_and_currency() -> None:
    ours = [accrue(pko_fail(D(2026, 10, 29)), day, Decimal("50.00"), PenaltyClass.LIQUID_SHARE)
            for day in failing_days(D(2026, 10, 29), D(2026, 11, 4), CAL, "XWAR", "PLN")]
    theirs = [accrue(pko_fail(D(2026, 11, 2), FailingParty.THEM), day, Decimal("40.00"),
                     PenaltyClass.LIQUID_SHARE) for day in (D(2026, 11, 2), D(2026, 11, 3))]
    other = [accrue(pko_fail(D(2026, 11, 2), FailingParty.THEM, "BROKER2"), D(2026, 11, 2),
                    Decimal("40.00"), PenaltyClass.ILLIQUID_SHARE)]
    # ours: 29, 30 October; 2, 3 November (1 Nov is a Sunday; 30 Oct a Friday) at 50.00
    rows = monthly_report([*theirs, *other, *ours])
    assert [(r.month, r.counterparty, r.currency, r.charged_to_us, r.owed_to_us, r.net)
            for r in rows] == [
        ("2026-10", "BROKER1", "PLN", Decimal("100.00"), Decimal(0), Decimal("-100.00")),
        ("2026-11", "BROKER1", "PLN", Decimal("100.00"), Decimal("80.00"), Decimal("-20.00")),
        ("2026-11", "BROKER2", "PLN", Decimal(0), Decimal("20.00"), Decimal("20.00"))]


# --- the instruction lifecycle --------------------------------------------------------------


INSTRUCTION = Instruction(
    reference="ZS2611090001", function=Function.NEW, direction=Direction.RECEIVE,
    payment=Payment.AGAINST, trade_date=D(2026, 11, 5), settlement_date=D(2026, 11, 9),
    isin=PKO, quantity=Decimal(100), amount=Decimal("5000.00"), currency="PLN",
    account_owner=US_BIC, safekeeping_account="ZAP-001", place_of_settlement=KDPW,
    counterparty=Party("BPKOPLPWXXX", "PL-0042"), trade_ids=("T1",))


def advice(kind: StatusKind, *reasons: str, reference: str = "ZS2611090001") -> StatusAdvice:
    return StatusAdvice(reference=reference, kind=kind, reasons=reasons, message_reference="S")


def confirmation(quantity: str, amount: str, message: str, *,
                 reference: str = "ZS2611090001", isin: str = PKO) -> Confirmation:
    return Confirmation(reference=reference, direction=Direction.RECEIVE,
                        payment=Payment.AGAINST, isin=isin, quantity=Decimal(quantity),
                        amount=Decimal(amount), currency="PLN", settlement_date=D(2026, 11, 9),
                        partial=Decimal(quantity) < 100, message_reference=message,
                        source="sese025.xml")


def statuses(*kinds: StatusKind) -> InstructionState:
    state = mark_sent(new_state(INSTRUCTION))
    for kind in kinds:
        state, problems = apply_status(state, advice(kind))
        assert problems == []
    return state


def test_instruct_match_settle() -> None:
    state = new_state(INSTRUCTION)
    assert (state.status, state.remaining_quantity) == (InstructionStatus.NEW, Decimal(100))
    state = mark_sent(state)
    assert state.status is InstructionStatus.SENT
    state = statuses(StatusKind.ACKNOWLEDGED, StatusKind.MATCHED)
    assert state.status is InstructionStatus.MATCHED
    assert is_failing(state, D(2026, 11, 10)) and not is_failing(state, D(2026, 11, 9))
    state, settled, problems = apply_confirmation(state, confirmation("100", "5000.00", "C1"))
    assert problems == [] and state.status is InstructionStatus.SETTLED
    assert (settled.quantity, settled.amount) == (Decimal(100), Decimal("5000.00"))
    assert (state.settled_quantity, state.settled_amount) == (Decimal(100), Decimal("5000.00"))
    assert not is_failing(state, D(2026, 11, 10))
    # a late status changes nothing
    assert apply_status(state, advice(StatusKind.PENDING, "LACK")) == (state, [])


def test_partial_then_settled() -> None:
    state = statuses(StatusKind.ACKNOWLEDGED, StatusKind.MATCHED)
    state, settled, problems = apply_confirmation(state, confirmation("40", "2000.00", "C1"))
    assert problems == [] and state.status is InstructionStatus.PARTIALLY_SETTLED
    assert (settled.quantity, state.remaining_quantity, state.remaining_amount) == (
        Decimal(40), Decimal(60), Decimal("3000.00"))
    assert is_failing(state, D(2026, 11, 10))
    # a FAILING advice about the remainder keeps it partially settled, with its reasons
    state, _ = apply_status(state, advice(StatusKind.FAILING, "LACK"))
    assert (state.status, state.reasons) == (InstructionStatus.PARTIALLY_SETTLED, ("LACK",))
    state, settled, problems = apply_confirmation(state, confirmation("60", "3000.00", "C2"))
    assert problems == [] and state.status is InstructionStatus.SETTLED
    assert (settled.quantity, state.settled_amount) == (Decimal(60), Decimal("5000.00"))
    assert state.confirmations == ("C1", "C2")


def test_unmatched_then_cancelled() -> None:
    state = statuses(StatusKind.ACKNOWLEDGED, StatusKind.UNMATCHED)
    assert state.status is InstructionStatus.UNMATCHED
    state, problems = request_cancel(state)
    assert problems == [] and state.status is InstructionStatus.CANCEL_REQUESTED
    state, _ = apply_status(state, advice(StatusKind.CANCEL_PENDING))
    assert state.status is InstructionStatus.CANCEL_REQUESTED
    state, _ = apply_status(state, advice(StatusKind.CANCELLED))
    assert state.status is InstructionStatus.CANCELLED
    assert not is_failing(state, D(2026, 11, 20))
    cancel = cancellation_of(INSTRUCTION, "ZS2611090002")
    assert (cancel.function, cancel.linked_reference, cancel.isin) == (
        Function.CANCEL, "ZS2611090001", PKO)


def test_a_refused_cancellation_returns_to_where_it_was_and_unsent_ones_cancel_at_once() -> None:
    state, _ = request_cancel(statuses(StatusKind.ACKNOWLEDGED))
    state, _ = apply_status(state, advice(StatusKind.MATCHED))  # matched meanwhile
    state, _ = apply_status(state, advice(StatusKind.REJECTED, "CANC"))
    assert state.status is InstructionStatus.MATCHED
    never_sent, problems = request_cancel(new_state(INSTRUCTION))
    assert problems == [] and never_sent.status is InstructionStatus.CANCELLED
    rejected = statuses(StatusKind.REJECTED)
    assert rejected.status is InstructionStatus.REJECTED


def test_statuses_never_move_backwards_and_hold_is_a_flag() -> None:
    state = statuses(StatusKind.MATCHED, StatusKind.ACKNOWLEDGED)
    assert state.status is InstructionStatus.MATCHED
    state, _ = apply_status(state, advice(StatusKind.HELD))
    assert state.held and state.status is InstructionStatus.MATCHED
    state, _ = apply_status(state, advice(StatusKind.RELEASED))
    assert not state.held
    state, _ = apply_status(state, advice(StatusKind.UNMATCHED, "NMAS"))
    assert state.status is InstructionStatus.UNMATCHED  # the counterparty's side went away
    other, problems = apply_status(state, advice(StatusKind.MATCHED, reference="ZS999"))
    assert other == state and [p.rule for p in problems] == [Rule.STATUS_MATCHES_NO_INSTRUCTION]


def test_a_confirmation_for_more_than_remains_changes_nothing() -> None:
    state = statuses(StatusKind.MATCHED)
    state, _, _ = apply_confirmation(state, confirmation("40", "2000.00", "C1"))
    for too_much in (confirmation("61", "3050.00", "C2"), confirmation("60", "3000.01", "C2")):
        after, settled, problems = apply_confirmation(state, too_much)
        assert after == state and settled.quantity == 0
        assert [(p.rule, p.source) for p in problems] == [
            (Rule.CONFIRMATION_EXCEEDS_INSTRUCTION, "sese025.xml")]


def test_the_same_confirmation_twice_changes_nothing() -> None:
    state = statuses(StatusKind.MATCHED)
    state, _, _ = apply_confirmation(state, confirmation("40", "2000.00", "C1"))
    again, settled, problems = apply_confirmation(state, confirmation("40", "2000.00", "C1"))
    assert again == state and settled.quantity == 0
    assert [p.rule for p in problems] == [Rule.DUPLICATE_CONFIRMATION]
    # seen elsewhere (another run, another instruction's store)
    fresh = statuses(StatusKind.MATCHED)
    _, _, problems = apply_confirmation(fresh, confirmation("40", "2000.00", "C9"), {"C9"})
    assert [p.rule for p in problems] == [Rule.DUPLICATE_CONFIRMATION]


def test_a_confirmation_for_a_cancelled_instruction_is_refused() -> None:
    state = statuses(StatusKind.UNMATCHED, StatusKind.CANCELLED)
    after, settled, problems = apply_confirmation(state, confirmation("100", "5000.00", "C1"))
    assert after == state and settled.quantity == 0
    assert [p.rule for p in problems] == [Rule.CONFIRMATION_EXCEEDS_INSTRUCTION]
    assert "CANCELLED" in problems[0].detail


def test_no_cancellation_once_settlement_started() -> None:
    state = statuses(StatusKind.MATCHED)
    state, _, _ = apply_confirmation(state, confirmation("40", "2000.00", "C1"))
    after, problems = request_cancel(state)
    assert after == state and [p.rule for p in problems] == [Rule.INSTRUCTION_NOT_CANCELLABLE]
    settled, _, _ = apply_confirmation(state, confirmation("60", "3000.00", "C2"))
    assert [p.rule for p in request_cancel(settled)[1]] == [Rule.INSTRUCTION_NOT_CANCELLABLE]


def test_settlement_wins_the_race_against_a_cancellation() -> None:
    state, _ = request_cancel(statuses(StatusKind.MATCHED))
    state, _, problems = apply_confirmation(state, confirmation("100", "5000.00", "C1"))
    assert problems == [] and state.status is InstructionStatus.SETTLED


def test_a_confirmation_must_fit_the_instruction() -> None:
    state = statuses(StatusKind.MATCHED)
    for wrong in (confirmation("10", "500.00", "C1", reference="ZS999"),
                  confirmation("10", "500.00", "C1", isin=PZU)):
        after, _, problems = apply_confirmation(state, wrong)
        assert after == state and [p.rule for p in problems] == [
            Rule.STATUS_MATCHES_NO_INSTRUCTION]


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=60), st.integers(0, 5)),
                max_size=12))
def test_confirmations_never_settle_more_than_instructed(
        parts: list[tuple[int, int]]) -> None:
    state = statuses(StatusKind.MATCHED)
    total = Decimal(0)
    for quantity, message in parts:
        amount = Decimal(quantity) * 50
        state, settled, problems = apply_confirmation(
            state, confirmation(str(quantity), f"{amount}.00", f"C{message}"))
        assert bool(problems) == (settled.quantity == 0)
        total += settled.quantity
    assert state.settled_quantity == total <= state.instructed_quantity
    assert state.settled_amount == total * 50
    assert (state.status is InstructionStatus.SETTLED) == (total == 100)
