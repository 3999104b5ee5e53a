"""The reconciliation engine, pure: positions and cash matched against statements, and the
breaks they leave, through their life.

Dates: November 2026. Friday 6th, Monday 9th, Tuesday 10th, Wednesday 11th (Polish
Independence Day: no PLN payment day, no XWAR session), Thursday 12th, Friday 13th.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.kernel.problems import Rule
from zaplecze.reconciliation.breaks import (
    Break,
    BreakKind,
    BreakStatus,
    Discrepancy,
    age_in_business_days,
    assign,
    break_key,
    comment,
    lookup,
    reconcile_breaks,
    resolve,
    start_investigating,
)
from zaplecze.reconciliation.matching import (
    MAX_CANDIDATES,
    CashMatching,
    MatchKind,
    OurMovement,
    OurPosition,
    cash_discrepancies,
    cash_scopes,
    compare_positions,
    match_cash,
    position_discrepancies,
    position_scopes,
)
from zaplecze.reconciliation.model import (
    CashEntry,
    CashStatement,
    HoldingLine,
    HoldingsStatement,
)

FRI, MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (6, 9, 10, 11, 12))
PKO, PZU, CDR, KGH = "PLPKO0000016", "PLPZU0000011", "PLOPTTC00011", "PLKGHM000017"
IBAN = "PL61109010140000071219812874"
CAL = SettlementCalendar()
AT = dt.datetime(2026, 11, 10, 9, 30)


def D(text: str | int) -> Decimal:
    return Decimal(text)


# --- positions --------------------------------------------------------------------------------


def holdings(*lines: tuple[str, str, str], day: dt.date = TUE,
             statement_id: str = "S1") -> HoldingsStatement:
    return HoldingsStatement("semt002.xml", statement_id, day,
                             tuple(HoldingLine(a, i, D(q), n + 2)
                                   for n, (a, i, q) in enumerate(lines)))


def test_positions_kinds() -> None:
    statement = holdings(("ACCT-1", PKO, "100"), ("ACCT-1", PZU, "50"), ("ACCT-1", CDR, "10"),
                         ("ACCT-1", "PLBSK0000017", "0"), ("ACCT-1", "PLLOTOS00025", "8"))
    ours = [OurPosition("ACCT-1", PKO, D(100)), OurPosition("ACCT-1", PZU, D(40)),
            OurPosition("ACCT-1", KGH, D(5)),
            OurPosition("ACCT-1", "PLBSK0000017", D(3)),  # they say 0: absent at them
            OurPosition("ACCT-1", "PLLOTOS00025", D(0)),  # we say 0: absent at us
            OurPosition("ACCT-2", PKO, D(7))]  # not on this statement: not compared
    found = compare_positions(ours, statement)
    got = {(b.isin, b.kind, b.ours, b.theirs, b.difference) for b in found}
    assert got == {
        (PZU, BreakKind.QUANTITY, D(40), D(50), D(-10)),
        (CDR, BreakKind.MISSING_AT_US, D(0), D(10), D(-10)),
        (KGH, BreakKind.MISSING_AT_THEM, D(5), D(0), D(5)),
        ("PLBSK0000017", BreakKind.MISSING_AT_THEM, D(3), D(0), D(3)),
        ("PLLOTOS00025", BreakKind.MISSING_AT_US, D(0), D(8), D(-8)),
    }
    assert all(b.safekeeping_account == "ACCT-1" for b in found)
    assert [(b.safekeeping_account, b.isin) for b in found] == sorted(
        (b.safekeeping_account, b.isin) for b in found)
    assert compare_positions(reversed(ours), statement) == found
    assert position_scopes(statement) == frozenset({"positions ACCT-1"})


def test_positions_lines_and_ours_are_summed() -> None:
    statement = holdings(("ACCT-1", PKO, "60"), ("ACCT-1", PKO, "40"))
    assert compare_positions([OurPosition("ACCT-1", PKO, D(100))], statement) == []
    [b] = compare_positions([OurPosition("ACCT-1", PKO, D(70)),
                             OurPosition("ACCT-1", PKO, D(20))], statement)
    assert (b.kind, b.difference, b.lines) == (BreakKind.QUANTITY, D(-10), (2, 3))


def test_empty_statement_covers_nothing() -> None:
    assert compare_positions([OurPosition("ACCT-1", PKO, D(1))], holdings()) == []


# --- cash: helpers ----------------------------------------------------------------------------


def entry(amount: str | int, value: dt.date, ref: str = "", *, booked: dt.date | None = None,
          bank_ref: str = "", reversal: bool = False, currency: str = "PLN") -> CashEntry:
    return CashEntry(D(amount), currency, booked or value, value, ref, bank_ref,
                     reversal=reversal)


def ours(key: str, amount: str | int, value: dt.date, ref: str = "",
         currency: str = "PLN") -> OurMovement:
    return OurMovement(key, D(amount), currency, value, value, ref)


def bank(*entries: CashEntry, closing: dt.date = TUE, statement_id: str = "B1",
         account: str = IBAN) -> CashStatement:
    total = sum((e.amount for e in entries), D(0))
    return CashStatement("camt053.xml", statement_id, account, "PLN", D(0), FRI, total,
                         closing, entries)


def pairs(result: CashMatching) -> set[tuple[str, tuple[str, ...], tuple[Decimal, ...]]]:
    return {(m.kind.value, tuple(o.key for o in m.ours), tuple(e.amount for e in m.theirs))
            for m in result.matches}


def kinds(result: CashMatching) -> set[tuple[BreakKind, str | None, Decimal | None]]:
    return {(b.kind, b.ours.key if b.ours else None, b.theirs.amount if b.theirs else None)
            for b in result.breaks}


# --- cash: one to one -------------------------------------------------------------------------


def test_one_to_one_prefers_the_reference() -> None:
    statement = bank(entry(100, TUE), entry(100, TUE, "E2E-1"))
    result = match_cash([ours("K1", 100, TUE), ours("K2", 100, TUE, "E2E-1")], statement)
    by_key = {m.ours[0].key: m for m in result.matches}
    assert by_key["K2"].theirs[0].reference == "E2E-1"
    assert by_key["K2"].rule == "reference"
    assert by_key["K1"].theirs[0].reference == ""
    assert all(m.kind is MatchKind.ONE_TO_ONE and m.difference == 0 for m in result.matches)
    assert result.breaks == () and result.not_yet_due == ()


def test_one_to_one_by_amount_and_value_date_then_nearest_date() -> None:
    statement = bank(entry(250, MON), entry(250, TUE), entry(-40, MON), closing=WED)
    result = match_cash([ours("K1", 250, TUE), ours("K2", -40, TUE)], statement)
    by_key = {m.ours[0].key: m for m in result.matches}
    assert (by_key["K1"].theirs[0].value_date, by_key["K1"].rule) == (TUE,
                                                                      "amount and value date")
    assert (by_key["K2"].theirs[0].value_date, by_key["K2"].rule) == (MON, "nearest date")
    assert kinds(result) == {(BreakKind.MISSING_AT_US, None, D(250))}


def test_references_that_differ_never_match() -> None:
    result = match_cash([ours("K1", 100, TUE, "A")], bank(entry(100, TUE, "B")))
    assert result.matches == ()
    assert kinds(result) == {(BreakKind.MISSING_AT_THEM, "K1", None),
                             (BreakKind.MISSING_AT_US, None, D(100))}


def test_nonref_counts_as_no_reference() -> None:
    result = match_cash([ours("K1", 100, TUE, "A")], bank(entry(100, TUE, "NONREF")))
    assert pairs(result) == {("1:1", ("K1",), (D(100),))}


def test_tolerance() -> None:
    statement = bank(entry("100.02", TUE))
    assert match_cash([ours("K1", "100.00", TUE)], statement).matches == ()
    result = match_cash([ours("K1", "100.00", TUE)], statement, tolerance=D("0.05"))
    [match] = result.matches
    assert match.difference == D("-0.02")
    assert result.breaks == ()


def test_date_window_counts_business_days_across_a_weekend() -> None:
    statement = bank(entry(100, TUE), closing=TUE)
    assert len(match_cash([ours("K1", 100, FRI)], statement).matches) == 1  # Mon, Tue: 2
    assert match_cash([ours("K1", 100, FRI)], statement, date_window=1).matches == ()


def test_date_window_skips_the_polish_holiday_with_a_calendar() -> None:
    statement = bank(entry(100, WED), closing=WED)  # value-dated on the holiday
    # Fri → Wed: Mon, Tue, Wed are three weekdays, but Wed 11 November is no PLN payment day
    assert match_cash([ours("K1", 100, FRI)], statement).matches == ()
    assert len(match_cash([ours("K1", 100, FRI)], statement, calendar=CAL).matches) == 1
    # a currency whose payment system works that day: three days again
    assert match_cash([ours("K1", 100, FRI)], statement, calendar=CAL,
                      currency="EUR").matches == ()  # TARGET2 is open on 11 November


def test_matching_is_on_value_date_not_booking_date() -> None:
    # booked on Tuesday (the closing date), value-dated Wednesday: still matched
    statement = bank(entry(100, WED, booked=TUE), closing=TUE)
    result = match_cash([ours("K1", 100, WED)], statement, date_window=0)
    assert len(result.matches) == 1 and result.not_yet_due == () and result.breaks == ()


def test_not_yet_due_is_not_a_break() -> None:
    result = match_cash([ours("K1", 100, THU), ours("K2", 5, TUE)], bank(closing=TUE))
    assert [m.key for m in result.not_yet_due] == ["K1"]
    assert kinds(result) == {(BreakKind.MISSING_AT_THEM, "K2", None)}


# --- cash: many to one, one to many -----------------------------------------------------------


def test_many_to_one_batch_by_reference() -> None:
    batch = [ours(f"P{n}", -amount, TUE, "BATCH-7") for n, amount in
             enumerate((100, 200, 300))]
    statement = bank(entry(-600, TUE, "BATCH-7"), entry(-100, TUE))
    result = match_cash(batch, statement)
    assert pairs(result) == {("many:1", ("P0", "P1", "P2"), (D(-600),))}
    assert result.matches[0].rule == "reference group"
    assert kinds(result) == {(BreakKind.MISSING_AT_US, None, D(-100))}


def test_many_to_one_by_value_date_takes_the_smallest_subset() -> None:
    movements = [ours("A", -10, TUE), ours("B", -20, TUE), ours("C", -30, TUE),
                 ours("D", -45, TUE)]
    result = match_cash(movements, bank(entry(-75, TUE, "PAYROLL")))
    assert pairs(result) == {("many:1", ("C", "D"), (D(-75),))}
    assert result.matches[0].rule == "value date group"
    assert kinds(result) == {(BreakKind.MISSING_AT_THEM, "A", None),
                             (BreakKind.MISSING_AT_THEM, "B", None)}


def test_many_to_one_whole_group_beyond_the_search_bound() -> None:
    count = MAX_CANDIDATES + 4
    movements = [ours(f"P{n:02}", -1, TUE, "BULK") for n in range(count)]
    result = match_cash(movements, bank(entry(-count, TUE, "BULK")))
    [match] = result.matches
    assert match.kind is MatchKind.MANY_TO_ONE and len(match.ours) == count


def test_many_to_one_within_tolerance() -> None:
    movements = [ours("A", "-10.00", TUE, "B1"), ours("B", "-20.01", TUE, "B1")]
    result = match_cash(movements, bank(entry("-30.00", TUE, "B1")), tolerance=D("0.02"))
    [match] = result.matches
    assert match.kind is MatchKind.MANY_TO_ONE and match.difference == D("-0.01")


def test_one_to_many_split() -> None:
    statement = bank(entry(400, MON, "SPLIT"), entry(600, TUE, "SPLIT"), entry(999, TUE))
    result = match_cash([ours("K1", 1000, TUE, "SPLIT")], statement)
    [match] = result.matches
    assert match.kind is MatchKind.ONE_TO_MANY
    assert sorted(e.amount for e in match.theirs) == [D(400), D(600)]
    assert kinds(result) == {(BreakKind.MISSING_AT_US, None, D(999))}


def test_one_to_many_by_value_date() -> None:
    statement = bank(entry(-300, TUE, bank_ref="BK-1"), entry(-200, TUE, bank_ref="BK-2"))
    result = match_cash([ours("K1", -500, TUE)], statement)
    [match] = result.matches
    assert (match.kind, match.rule, len(match.theirs)) == (MatchKind.ONE_TO_MANY,
                                                           "value date group", 2)


def test_a_reference_group_comes_before_a_one_to_one_guess() -> None:
    # P0 alone would match the -100 entry by amount and date; its batch reference wins
    batch = [ours("P0", -100, TUE, "BATCH-7"), ours("P1", -200, TUE, "BATCH-7")]
    result = match_cash(batch, bank(entry(-300, TUE, "BATCH-7"), entry(-100, TUE)))
    assert pairs(result) == {("many:1", ("P0", "P1"), (D(-300),))}


# --- cash: reversals, near misses -------------------------------------------------------------


def test_reversal_pair_nets_out_when_nothing_of_ours_matches() -> None:
    statement = bank(entry(500, MON, "R1", bank_ref="BK-1"),
                     entry(-500, TUE, "R1", bank_ref="BK-2", reversal=True))
    result = match_cash([], statement)
    [pair] = result.netted
    assert (pair.original.amount, pair.reversal.amount) == (D(500), D(-500))
    assert result.breaks == () and result.matches == ()


def test_reversal_pairs_through_the_bank_reference() -> None:
    statement = bank(entry(500, MON, "X", bank_ref="BK-1"),
                     entry(-500, TUE, "STORNO", bank_ref="BK-1", reversal=True))
    assert len(match_cash([], statement).netted) == 1


def test_reversal_of_a_matched_entry_is_a_break() -> None:
    statement = bank(entry(500, MON, "R1"), entry(-500, TUE, "R1", reversal=True))
    result = match_cash([ours("K1", 500, MON, "R1")], statement)
    assert pairs(result) == {("1:1", ("K1",), (D(500),))}
    assert result.netted == ()
    assert kinds(result) == {(BreakKind.MISSING_AT_US, None, D(-500))}


def test_reversal_we_booked_too_matches() -> None:
    statement = bank(entry(500, MON, "R1"), entry(-500, TUE, "R1", reversal=True))
    result = match_cash([ours("K1", 500, MON, "R1"), ours("K2", -500, TUE, "R1")], statement)
    assert len(result.matches) == 2 and result.breaks == () and result.netted == ()


def test_amount_near_miss() -> None:
    result = match_cash([ours("K1", 100, TUE, "X")], bank(entry(105, TUE, "X")))
    [b] = result.breaks
    assert (b.kind, b.ours_amount, b.theirs_amount, b.difference) == (
        BreakKind.AMOUNT, D(100), D(105), D(-5))


def test_date_near_miss() -> None:
    result = match_cash([ours("K1", 100, dt.date(2026, 11, 2), "Y")], bank(entry(100, TUE, "Y")))
    [b] = result.breaks
    assert (b.kind, b.difference) == (BreakKind.DATE, D(0))
    assert result.matches == ()


def test_other_currencies_do_not_match() -> None:
    statement = bank(entry(100, TUE, "X", currency="EUR"))
    result = match_cash([ours("K1", 100, TUE, "X")], statement)
    assert kinds(result) == {(BreakKind.MISSING_AT_THEM, "K1", None),
                             (BreakKind.MISSING_AT_US, None, D(100))}


# --- cash: properties -------------------------------------------------------------------------

DAYS = [dt.date(2026, 11, d) for d in range(5, 14)]
REFS = ["", "", "A", "B", "C", "NONREF"]
AMOUNTS = st.sampled_from([D(v) for v in ("-300", "-100", "-50", "-49.99", "50", "100",
                                          "100.01", "150", "250", "0")])
ENTRIES = st.builds(
    lambda amount, value, lag, ref, bank_ref, reversal, currency: CashEntry(
        amount, currency, value - dt.timedelta(days=lag), value, ref, bank_ref,
        reversal=reversal),
    AMOUNTS, st.sampled_from(DAYS), st.integers(0, 2), st.sampled_from(REFS),
    st.sampled_from(["", "BK1", "BK2"]), st.booleans(), st.sampled_from(["PLN", "PLN", "EUR"]))
MOVEMENTS = st.lists(st.tuples(AMOUNTS, st.sampled_from(DAYS), st.sampled_from(REFS),
                               st.sampled_from(["PLN", "PLN", "EUR"])), max_size=12).map(
    lambda rows: [OurMovement(f"K{n:02}", amount, currency, value, value, ref)
                  for n, (amount, value, ref, currency) in enumerate(rows)])
PROPERTY = settings(max_examples=150, deadline=None)


def business_days(a: dt.date, b: dt.date, with_calendar: bool) -> int:
    low, high = sorted((a, b))
    return sum(1 for n in range(1, (high - low).days + 1)
               if (CAL.is_payment_day(low + dt.timedelta(days=n), "PLN") if with_calendar
                   else (low + dt.timedelta(days=n)).weekday() < 5))


def everything(result: CashMatching) -> tuple[Counter[OurMovement], Counter[CashEntry]]:
    mine: Counter[OurMovement] = Counter(result.not_yet_due)
    theirs: Counter[CashEntry] = Counter()
    for m in result.matches:
        mine.update(m.ours)
        theirs.update(m.theirs)
    for n in result.netted:
        theirs.update((n.original, n.reversal))
    for b in result.breaks:
        if b.ours is not None:
            mine[b.ours] += 1
        if b.theirs is not None:
            theirs[b.theirs] += 1
    return mine, theirs


@PROPERTY
@given(MOVEMENTS, st.lists(ENTRIES, max_size=12), st.sampled_from([D(0), D("0.01")]),
       st.integers(0, 3), st.booleans())
def test_every_item_ends_up_in_exactly_one_place(movements: list[OurMovement],
                                                 entries: list[CashEntry], tolerance: Decimal,
                                                 window: int, with_calendar: bool) -> None:
    statement = bank(*entries, closing=dt.date(2026, 11, 10))
    result = match_cash(movements, statement, tolerance, window,
                        CAL if with_calendar else None)
    mine, theirs = everything(result)
    assert mine == Counter(movements)
    assert theirs == Counter(entries)
    for m in result.matches:
        assert abs(m.difference) <= tolerance
        assert len({x.currency for x in (*m.ours, *m.theirs)}) == 1
        shape = {MatchKind.ONE_TO_ONE: (False, False), MatchKind.MANY_TO_ONE: (True, False),
                 MatchKind.ONE_TO_MANY: (False, True)}[m.kind]
        assert (len(m.ours) > 1, len(m.theirs) > 1) == shape
        assert m.ours and m.theirs
    for movement in result.not_yet_due:
        assert movement.value_date > statement.closing_date
    discrepancies = cash_discrepancies(result)
    assert len({d.key for d in discrepancies}) == len(discrepancies) == len(result.breaks)
    # nothing left over could have been a one-to-one match
    left_ours = [*result.not_yet_due, *(b.ours for b in result.breaks if b.ours)]
    left_theirs = [*(b.theirs for b in result.breaks if b.theirs),
                   *(e for n in result.netted for e in (n.original, n.reversal))]
    for m in left_ours:
        for e in left_theirs:
            ref, their_ref = m.reference.strip(), e.reference.strip()
            conflict = ref not in ("", "NONREF") and their_ref not in ("", "NONREF") and \
                ref not in (their_ref, e.bank_reference.strip())
            assert conflict or m.currency != e.currency or \
                abs(m.amount - e.amount) > tolerance or \
                business_days(m.value_date, e.value_date, with_calendar) > window


@PROPERTY
@given(MOVEMENTS, st.lists(ENTRIES, max_size=12), st.randoms(use_true_random=False),
       st.sampled_from([D(0), D("0.01")]))
def test_results_do_not_depend_on_input_order(movements: list[OurMovement],
                                              entries: list[CashEntry], shuffler: random.Random,
                                              tolerance: Decimal) -> None:
    first = match_cash(movements, bank(*entries), tolerance, calendar=CAL)
    shuffler.shuffle(movements)
    shuffler.shuffle(entries)
    again = match_cash(movements, bank(*entries), tolerance, calendar=CAL)
    assert again == first
    assert cash_discrepancies(again) == cash_discrepancies(first)


# --- breaks -----------------------------------------------------------------------------------


def found_positions(statement: HoldingsStatement,
                    positions: Iterable[OurPosition]) -> list[Discrepancy]:
    return position_discrepancies(compare_positions(positions, statement))


def fold(existing: dict[str, Break], statement: HoldingsStatement,
         positions: Sequence[OurPosition]) -> tuple[dict[str, Break], Sequence[dict[str, Break]]]:
    outcome = reconcile_breaks(existing, found_positions(statement, positions),
                               statement.statement_date, covered=position_scopes(statement),
                               statement_id=statement.statement_id)
    merged = dict(existing)
    for part in outcome:
        merged.update(part)
    return merged, outcome


def one_break() -> Break:
    statement = holdings(("ACCT-1", PKO, "100"), day=MON)
    outcome = reconcile_breaks({}, found_positions(statement, [OurPosition("ACCT-1", PKO,
                                                                           D(90))]),
                               MON, covered=position_scopes(statement), statement_id="S1")
    [b] = outcome.new.values()
    return b


def test_a_new_break() -> None:
    b = one_break()
    assert b.break_id == break_key("positions", "ACCT-1", PKO)
    assert (b.kind, b.subject, b.ours, b.theirs, b.difference, b.currency_or_isin) == (
        BreakKind.QUANTITY, f"positions ACCT-1 {PKO}", D(90), D(100), D(-10), PKO)
    assert (b.first_seen, b.last_seen, b.status, b.owner) == (MON, MON, BreakStatus.OPEN, "")
    [event] = b.history
    assert (event.what, event.who, event.at) == ("opened", "system", dt.datetime(2026, 11, 9))


def test_break_key_is_stable() -> None:
    assert break_key("positions", "ACCT-1", PKO) == break_key("positions", " ACCT-1 ", PKO)
    assert break_key("positions", "ACCT-1", PKO) != break_key("positions", "ACCT-1", PZU)
    digest = hashlib.sha256(b"positions\x1fACCT-1\x1fPLPKO0000016").hexdigest()
    assert break_key("positions", "ACCT-1", PKO) == "BRK-" + digest[:16].upper()


def test_lifecycle_and_refusals() -> None:
    b = one_break()
    b, problems = assign(b, "anna", "lead", AT)
    assert problems == [] and b.owner == "anna"
    b, problems = comment(b, "anna", AT, "custodian booked a corporate action early?")
    assert problems == [] and [c.text for c in b.comments] == [
        "custodian booked a corporate action early?"]
    b2, problems = comment(b, "anna", AT, "  ")
    assert b2 == b and [p.rule for p in problems] == [Rule.MISSING_REQUIRED_VALUE]
    b, problems = start_investigating(b, "anna", AT)
    assert problems == [] and b.status is BreakStatus.INVESTIGATING
    same, problems = start_investigating(b, "anna", AT)
    assert same == b and problems == []
    unchanged, problems = resolve(b, "anna", AT, "  ")
    assert unchanged == b and [p.rule for p in problems] == [Rule.RESOLUTION_REASON_REQUIRED]
    b, problems = resolve(b, "anna", AT, "custodian error, corrected on their side")
    assert problems == [] and b.status is BreakStatus.RESOLVED
    assert b.resolution_reason == "custodian error, corrected on their side"
    for refused in (resolve(b, "anna", AT, "again"), assign(b, "piotr", "lead", AT),
                    start_investigating(b, "piotr", AT)):
        assert refused[0] == b
        assert [p.rule for p in refused[1]] == [Rule.BREAK_ALREADY_RESOLVED]
    b, problems = comment(b, "piotr", AT, "confirmed with the custodian")
    assert problems == [] and len(b.comments) == 2
    assert [e.what for e in b.history] == ["opened", "assigned", "commented", "investigating",
                                           "resolved", "commented"]


def test_resolve_straight_from_open() -> None:
    b, problems = resolve(one_break(), "anna", AT, "known timing difference")
    assert problems == [] and b.status is BreakStatus.RESOLVED
    assert (b.history[-1].before, b.history[-1].after) == ("OPEN",
                                                           "RESOLVED: known timing difference")


def test_lookup() -> None:
    b = one_break()
    assert lookup({b.break_id: b}, b.break_id) == (b, [])
    missing, problems = lookup({b.break_id: b}, "BRK-NOPE")
    assert missing is None and [p.rule for p in problems] == [Rule.UNKNOWN_BREAK]


def test_auto_resolution_reopening_and_history() -> None:
    positions = [OurPosition("ACCT-1", PKO, D(90)), OurPosition("ACCT-2", PZU, D(5))]
    day1 = holdings(("ACCT-1", PKO, "100"), ("ACCT-2", PZU, "6"), day=MON, statement_id="S1")
    books, outcome = fold({}, day1, positions)
    assert len(outcome.new) == 2
    key = break_key("positions", "ACCT-1", PKO)
    other = break_key("positions", "ACCT-2", PZU)
    books[key], _ = start_investigating(books[key], "anna", AT)

    # Tuesday, same discrepancy, other numbers: the same break, updated; ACCT-2 not covered
    day2 = holdings(("ACCT-1", PKO, "95"), day=TUE, statement_id="S2")
    books, outcome = fold(books, day2, positions)
    assert (list(outcome.updated), outcome.new, outcome.auto_resolved) == ([key], {}, {})
    b = books[key]
    assert (b.first_seen, b.last_seen, b.theirs, b.status) == (
        MON, TUE, D(95), BreakStatus.INVESTIGATING)
    assert b.history[-1].what == "updated"

    # Wednesday: the custodian agrees: resolved by the statement
    day3 = holdings(("ACCT-1", PKO, "90"), day=WED, statement_id="S3")
    books, outcome = fold(books, day3, positions)
    assert list(outcome.auto_resolved) == [key]
    b = books[key]
    assert b.status is BreakStatus.RESOLVED
    assert b.resolution_reason == "agreed by statement S3 of 2026-11-11"
    assert books[other].status is BreakStatus.OPEN  # ACCT-2 is not on S3

    # the same statement again changes nothing
    _, outcome = fold(books, day3, positions)
    assert outcome == ({}, {}, {})

    # a late Tuesday statement still disagreeing does not reopen it
    _, outcome = fold(books, day2, positions)
    assert outcome == ({}, {}, {})

    # Thursday: it disagrees again: reopened
    day4 = holdings(("ACCT-1", PKO, "80"), day=THU, statement_id="S4")
    books, outcome = fold(books, day4, positions)
    assert list(outcome.updated) == [key]
    b = books[key]
    assert (b.status, b.resolution_reason, b.last_seen, b.theirs) == (
        BreakStatus.OPEN, "", THU, D(80))
    assert [e.what for e in b.history] == ["opened", "investigating", "updated",
                                           "auto-resolved", "reopened", "updated"]
    assert b.history[3].after == "RESOLVED: agreed by statement S3 of 2026-11-11"
    assert b.history[4].before == b.history[3].after
    # history completeness: the status chain replays to the current status
    status = None
    for event in b.history:
        assert event.who and event.at
        if event.what in ("investigating", "resolved", "auto-resolved", "reopened"):
            assert status is not None and event.before.split(":")[0] == status
            status = event.after.split(":")[0]
        elif event.what == "opened":
            status = BreakStatus.OPEN.value
    assert status == b.status.value


def test_manually_resolved_break_reopens_on_a_later_statement_only() -> None:
    b, _ = resolve(one_break(), "anna", AT, "accepted")
    found = found_positions(holdings(("ACCT-1", PKO, "100"), day=MON),
                            [OurPosition("ACCT-1", PKO, D(90))])
    again = reconcile_breaks({b.break_id: b}, found, MON, covered={"positions ACCT-1"})
    assert again == ({}, {}, {})  # the statement it was resolved on, run again
    later = reconcile_breaks({b.break_id: b}, found, TUE, covered={"positions ACCT-1"})
    assert later.updated[b.break_id].status is BreakStatus.OPEN


def test_an_older_statement_resolves_nothing() -> None:
    b = replace(one_break(), last_seen=WED)
    outcome = reconcile_breaks({b.break_id: b}, [], TUE, covered={"positions ACCT-1"})
    assert outcome == ({}, {}, {})
    found = found_positions(holdings(("ACCT-1", PKO, "70"), day=TUE),
                            [OurPosition("ACCT-1", PKO, D(90))])
    assert reconcile_breaks({b.break_id: b}, found, TUE) == ({}, {}, {})


def test_without_covered_scopes_only_found_scopes_count() -> None:
    b = one_break()
    assert reconcile_breaks({b.break_id: b}, [], TUE) == ({}, {}, {})


def test_cash_breaks_keep_their_ids_across_statements() -> None:
    monday = bank(entry(70, MON, "INV-9"), closing=MON, statement_id="B1")
    movements = [ours("K1", 100, MON, "E2E-1")]
    day1 = match_cash(movements, monday)
    found1 = cash_discrepancies(day1)
    outcome = reconcile_breaks({}, found1, MON, covered=cash_scopes(monday), statement_id="B1")
    assert {b.kind for b in outcome.new.values()} == {BreakKind.MISSING_AT_THEM,
                                                      BreakKind.MISSING_AT_US}
    books = dict(outcome.new)
    open_entry = list(monday.entries)  # still open: carried to the next statement
    # Tuesday: nothing new from the bank; our K1 still missing, their entry still unbooked
    tuesday = bank(closing=TUE, statement_id="B2")
    day2 = match_cash(movements, tuesday, earlier=open_entry)
    outcome = reconcile_breaks(books, cash_discrepancies(day2), TUE,
                               covered=cash_scopes(tuesday), statement_id="B2")
    assert outcome.new == {} and outcome.auto_resolved == {}
    books.update(outcome.updated)
    assert {b.last_seen for b in books.values()} == {TUE}
    # Wednesday: the bank pays K1, we book the INV-9 receipt: both resolved
    wednesday = bank(entry(100, WED, "E2E-1"), closing=WED, statement_id="B3")
    day3 = match_cash([*movements, ours("K2", 70, MON, "INV-9")], wednesday,
                      earlier=open_entry, calendar=CAL)
    assert day3.breaks == ()
    outcome = reconcile_breaks(books, cash_discrepancies(day3), WED,
                               covered=cash_scopes(wednesday), statement_id="B3")
    assert set(outcome.auto_resolved) == set(books)
    assert all(b.resolution_reason == "agreed by statement B3 of 2026-11-11"
               for b in outcome.auto_resolved.values())


def test_cash_subjects() -> None:
    result = match_cash([ours("K1", 100, TUE, "X")], bank(entry(105, TUE, "X"), entry(3, TUE)))
    subjects = sorted(d.subject for d in cash_discrepancies(result))
    assert subjects == [f"cash {IBAN} entry 2026-11-10 +3", f"cash {IBAN} ref X ours K1"]


ACCOUNTS = ["ACCT-1", "ACCT-2"]
ISINS = [PKO, PZU, CDR]
QUANTITIES = st.sampled_from([D(0), D(10), D(20)])
BOOK = st.fixed_dictionaries({(a, i): QUANTITIES for a in ACCOUNTS for i in ISINS})
DAY = st.tuples(st.lists(st.sampled_from(ACCOUNTS), min_size=1, max_size=2, unique=True),
                BOOK, BOOK)


@settings(max_examples=100, deadline=None)
@given(st.lists(DAY, min_size=1, max_size=6))
def test_breaks_follow_the_statements(days: list[tuple[list[str], dict[tuple[str, str], Decimal],
                                                      dict[tuple[str, str], Decimal]]]) -> None:
    books: dict[str, Break] = {}
    for n, (accounts, mine, theirs) in enumerate(days):
        day = dt.date(2026, 11, 2) + dt.timedelta(days=n)
        lines = tuple((a, i, str(q)) for (a, i), q in sorted(theirs.items()) if a in accounts)
        statement = holdings(*lines, day=day, statement_id=f"S{n}")
        positions = [OurPosition(a, i, q) for (a, i), q in sorted(mine.items())]
        found = {d.key: d for d in found_positions(statement, positions)}
        books, outcome = fold(books, statement, positions)
        parts = [set(part) for part in outcome]
        assert sum(map(len, parts)) == len(set().union(*parts))  # each break in one part
        assert set(outcome.new) <= set(found)
        for key, d in found.items():
            b = books[key]
            assert b.is_open and b.last_seen == day
            assert (b.kind, b.ours, b.theirs, b.difference) == (d.kind, d.ours, d.theirs,
                                                                d.difference)
        for key, b in books.items():
            if key not in found and b.scope in position_scopes(statement):
                assert b.status is BreakStatus.RESOLVED
                if key in outcome.auto_resolved:
                    assert b.resolution_reason == \
                        f"agreed by statement S{n} of {day.isoformat()}"
                assert key not in outcome.updated and key not in outcome.new
    for b in books.values():  # every status change is in the history, in order
        status = ""
        for event in b.history:
            if event.what == "opened":
                status = "OPEN"
            elif event.what in ("resolved", "auto-resolved", "reopened", "investigating"):
                assert event.before.split(":")[0] == status
                status = event.after.split(":")[0]
        assert status == b.status.value
        assert [e.at for e in b.history] == sorted(e.at for e in b.history)


# --- ageing -----------------------------------------------------------------------------------


def test_ageing_across_the_polish_holiday() -> None:
    b = replace(one_break(), first_seen=TUE, currency_or_isin="PLN")
    assert age_in_business_days(b, TUE) == 0
    assert age_in_business_days(b, THU) == 2  # weekdays: Wed, Thu
    assert age_in_business_days(b, THU, CAL) == 1  # PLN: Wed 11 Nov is a holiday
    assert age_in_business_days(b, THU, CAL, "EUR") == 2  # TARGET2 open on 11 November
    assert age_in_business_days(b, THU, CAL, "USD") == 1  # Veterans Day: the Fed is shut
    assert age_in_business_days(b, dt.date(2026, 11, 16), CAL) == 3  # Thu, Fri, Mon


def test_ageing_of_a_position_break_by_market() -> None:
    b = replace(one_break(), first_seen=TUE)  # an ISIN: no currency of its own
    assert age_in_business_days(b, THU, CAL) == 2  # no code: weekdays
    assert age_in_business_days(b, THU, CAL, "XWAR") == 1
    assert age_in_business_days(b, THU, CAL, "PLN") == 1


def test_ageing_stops_at_resolution() -> None:
    b = replace(one_break(), first_seen=MON)
    b, _ = resolve(b, "anna", dt.datetime(2026, 11, 10, 17), "fixed")
    assert age_in_business_days(b, dt.date(2026, 11, 20)) == 1


@pytest.mark.parametrize("window", [0, 1, 2])
def test_a_saturday_value_date_is_one_business_day_from_monday(window: int) -> None:
    saturday = dt.date(2026, 11, 7)
    result = match_cash([ours("K1", 100, saturday)], bank(entry(100, MON), closing=MON),
                        date_window=window)
    assert len(result.matches) == (1 if window >= 1 else 0)
