"""Our books against a statement: positions against a custodian's holdings, cash movements
against a bank statement. Pure: values in, values out, every result sorted so that the order
of the inputs never matters.

Positions (``compare_positions``)
    Our settled positions and the statement's lines are summed per safekeeping account × ISIN
    (a statement may give one security in several lines, one per sub-balance). A zero on
    either side counts as absent. Only the safekeeping accounts that appear in the statement
    are compared: a statement of one account says nothing of another. Differences are
    ours − theirs.

Cash (``match_cash``)
    Amounts are signed (+ money in), as in ``reconciliation.model``; ours are signed alike.
    Matching is on value date, never booking date; "within the window" means at most
    ``date_window`` business days apart (payment days of the currency in ``calendar``,
    weekdays without one), counted as the business days after the earlier date up to and
    including the later. References are compared stripped, ``NONREF`` counting as none; an
    entry's references are its ``reference`` and its ``bank_reference``. The steps, each on
    what the earlier ones left:

    1. one to one — same currency, amounts within ``tolerance``, value dates within the window,
       and our reference among the entry's when both sides have one. Preferred in this order:
       same reference; then the same amount on the same value date; then the nearest value
       date (then the nearest amount). Pairs are taken greedily over all candidate pairs in
       that order, so the result does not depend on the order of the inputs.
    2. many to one — several of ours summing (within ``tolerance``) to one entry, e.g. a batch
       payment: ours of one sign (the entry's), value-dated within the window, sharing one
       reference (the entry's, when it has one) or else one value date. The whole group is
       tried first, then subsets of 2 to ``MAX_PARTS`` (6) of its first ``MAX_CANDIDATES``
       (16) members (nearest value date first): at most 14,877 sums per group, the smallest
       subset winning, then the smallest difference.
    3. one to many — one of ours split into several entries, the same search mirrored.
       Reversal entries take part in step 1 only.
    4. reversals — a reversal (storno) entry nothing of ours matched, and an entry it reverses
       (same currency, opposite amount, a reference in common) nothing of ours matched, drop
       out together as a netted pair.
    5. near misses — one of ours and one entry left over with the same reference and currency:
       amounts within tolerance but value dates outside the window, a DATE break; amounts
       beyond tolerance, an AMOUNT break (DATE pairs first, then AMOUNT, nearest first).
    6. what is left: entries are MISSING_AT_US breaks; ours value-dated after the statement's
       closing date are *not yet due* (not breaks), the others MISSING_AT_THEM breaks.

    Every one of our movements and every entry ends up in exactly one place: a match, a netted
    pair, not yet due, or a break. A bank lists each entry once; entries still open from
    earlier statements come back through ``earlier`` so that their breaks keep their ids.

Breaks (``position_discrepancies``, ``cash_discrepancies``)
    Turn results into ``breaks.Discrepancy`` values for ``breaks.reconcile_breaks``, keyed by
    subject: ``positions <account> <ISIN>``; for cash our movement's key, else the entry's
    references, value date and amount (identical entries numbered #2, #3, …).
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import combinations
from typing import TypeVar

from zaplecze.kernel.calendar import SettlementCalendar
from zaplecze.reconciliation.breaks import BreakKind, Discrepancy, break_key
from zaplecze.reconciliation.model import CashEntry, CashStatement, HoldingsStatement

ZERO = Decimal(0)
MAX_CANDIDATES = 16  # members of a group a subset search looks at
MAX_PARTS = 6  # the most parts a subset may have (the whole group is always tried)
NO_REFERENCE = frozenset({"", "NONREF"})

T = TypeVar("T")

# --- positions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OurPosition:
    """Our settled position at one safekeeping account in one ISIN, as of the statement date."""

    safekeeping_account: str
    isin: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class PositionBreak:
    kind: BreakKind  # MISSING_AT_US, MISSING_AT_THEM or QUANTITY
    safekeeping_account: str
    isin: str
    ours: Decimal  # 0 when we hold none
    theirs: Decimal  # 0 when the statement shows none
    lines: tuple[int, ...] = ()  # the statement lines it comes from

    @property
    def difference(self) -> Decimal:
        return self.ours - self.theirs


def compare_positions(ours: Iterable[OurPosition],
                      statement: HoldingsStatement) -> list[PositionBreak]:
    """Breaks between our positions and a holdings statement, sorted by account and ISIN."""
    covered = {line.safekeeping_account for line in statement.lines}
    theirs: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    for holding in statement.lines:
        key = (holding.safekeeping_account, holding.isin)
        theirs[key] += holding.quantity
        if holding.line is not None:
            lines[key].append(holding.line)
    mine: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for position in ours:
        if position.safekeeping_account in covered:
            mine[(position.safekeeping_account, position.isin)] += position.quantity
    found = []
    for key in sorted(set(theirs) | set(mine)):
        our, their = mine.get(key, ZERO), theirs.get(key, ZERO)
        if our == their:
            continue
        if our == 0:
            kind = BreakKind.MISSING_AT_US
        elif their == 0:
            kind = BreakKind.MISSING_AT_THEM
        else:
            kind = BreakKind.QUANTITY
        found.append(PositionBreak(kind, key[0], key[1], our, their,
                                   tuple(sorted(lines.get(key, ())))))
    return found


def position_scopes(statement: HoldingsStatement) -> frozenset[str]:
    """The scopes a holdings statement covers: one per safekeeping account in it."""
    return frozenset(f"positions {line.safekeeping_account}" for line in statement.lines)


def position_discrepancies(found: Iterable[PositionBreak]) -> list[Discrepancy]:
    """Position breaks as discrepancies for ``breaks.reconcile_breaks``."""
    result = []
    for b in found:
        where = f"lines {', '.join(map(str, b.lines))}" if b.lines else ""
        result.append(Discrepancy(
            key=break_key("positions", b.safekeeping_account, b.isin), kind=b.kind,
            subject=f"positions {b.safekeeping_account} {b.isin}",
            scope=f"positions {b.safekeeping_account}", ours=b.ours, theirs=b.theirs,
            difference=b.difference, currency_or_isin=b.isin, detail=where))
    return sorted(result, key=lambda d: d.key)


# --- cash -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OurMovement:
    """One of our cash movements on the bank account (signed: + money in)."""

    key: str  # our id of it (movement id, trade id + leg, …)
    amount: Decimal
    currency: str
    booking_date: dt.date
    value_date: dt.date
    reference: str = ""  # what we told the bank (end-to-end id, batch id, …)


class MatchKind(StrEnum):
    ONE_TO_ONE = "1:1"
    MANY_TO_ONE = "many:1"  # several of ours, one entry (a batch)
    ONE_TO_MANY = "1:many"  # one of ours, several entries (a split)


@dataclass(frozen=True, slots=True)
class CashMatch:
    kind: MatchKind
    ours: tuple[OurMovement, ...]
    theirs: tuple[CashEntry, ...]
    difference: Decimal  # Σ ours − Σ theirs, within the tolerance
    rule: str  # why: reference, amount and value date, nearest date, reference group, …


@dataclass(frozen=True, slots=True)
class NettedReversal:
    """An entry and its reversal, neither ours: together they moved nothing."""

    original: CashEntry
    reversal: CashEntry


@dataclass(frozen=True, slots=True)
class CashBreak:
    kind: BreakKind  # MISSING_AT_US, MISSING_AT_THEM, AMOUNT or DATE
    ours: OurMovement | None
    theirs: CashEntry | None

    @property
    def ours_amount(self) -> Decimal:
        return self.ours.amount if self.ours is not None else ZERO

    @property
    def theirs_amount(self) -> Decimal:
        return self.theirs.amount if self.theirs is not None else ZERO

    @property
    def difference(self) -> Decimal:
        return self.ours_amount - self.theirs_amount

    @property
    def currency(self) -> str:
        if self.ours is not None:
            return self.ours.currency
        assert self.theirs is not None
        return self.theirs.currency


@dataclass(frozen=True, slots=True)
class CashMatching:
    """The outcome of one bank statement against our movements, every part sorted."""

    account: str
    statement_id: str
    closing_date: dt.date
    matches: tuple[CashMatch, ...]
    netted: tuple[NettedReversal, ...]
    not_yet_due: tuple[OurMovement, ...]  # value-dated after the closing date, not on it
    breaks: tuple[CashBreak, ...]


def _reference(text: str) -> str:
    text = text.strip()
    return "" if text.upper() in NO_REFERENCE else text


def _entry_refs(entry: CashEntry) -> frozenset[str]:
    return frozenset({_reference(entry.reference), _reference(entry.bank_reference)} - {""})


def _entry_order(entry: CashEntry) -> tuple[object, ...]:
    return (entry.currency, entry.value_date, entry.amount, entry.reference,
            entry.bank_reference, entry.booking_date, entry.reversal, entry.description,
            entry.line is None, entry.line or 0)


def _our_order(movement: OurMovement) -> tuple[object, ...]:
    return (movement.key, movement.currency, movement.value_date, movement.amount,
            movement.reference, movement.booking_date)


def _sign(amount: Decimal) -> int:
    return (amount > 0) - (amount < 0)


class _Days:
    """Business-day distances between value dates, capped just past the window."""

    def __init__(self, calendar: SettlementCalendar | None, currency: str, window: int) -> None:
        self._calendar = calendar
        self._currency = currency
        self.window = window
        self._cache: dict[tuple[dt.date, dt.date], int] = {}

    def _business(self, day: dt.date) -> bool:
        if self._calendar is None:
            return day.weekday() < 5
        return self._calendar.is_payment_day(day, self._currency)

    def between(self, a: dt.date, b: dt.date) -> int:
        """Business days after the earlier date up to and including the later one, counting
        no further than window + 1 (beyond the window, further is no different)."""
        low, high = (a, b) if a <= b else (b, a)
        found = self._cache.get((low, high))
        if found is None:
            found = 0
            day = low
            while day < high and found <= self.window:
                day += dt.timedelta(days=1)
                found += self._business(day)
            self._cache[(low, high)] = found
        return found

    def within(self, a: dt.date, b: dt.date) -> bool:
        return self.between(a, b) <= self.window


def _subset(pool: Sequence[T], amount: Callable[[T], Decimal], target: Decimal,
            tolerance: Decimal) -> tuple[T, ...] | None:
    """Two or more of ``pool`` summing to ``target`` within ``tolerance``: the whole pool if
    it does, else the smallest subset of at most MAX_PARTS of the first MAX_CANDIDATES, the
    smallest difference winning among subsets of one size (the first of them, in pool order)."""
    if len(pool) < 2:
        return None
    if abs(sum((amount(item) for item in pool), ZERO)) < abs(target) - tolerance:
        return None  # one sign throughout: not even all of them reach the target
    if abs(sum((amount(item) for item in pool), ZERO) - target) <= tolerance:
        return tuple(pool)
    candidates = pool[:MAX_CANDIDATES]
    for size in range(2, min(MAX_PARTS, len(candidates)) + 1):
        if size == len(pool):  # the whole pool, tried above
            break
        best: tuple[T, ...] | None = None
        best_difference = ZERO
        for combo in combinations(candidates, size):
            difference = abs(sum((amount(item) for item in combo), ZERO) - target)
            if difference <= tolerance and (best is None or difference < best_difference):
                best, best_difference = combo, difference
                if difference == 0:
                    break
        if best is not None:
            return best
    return None


class _Matcher:
    def __init__(self, ours: list[OurMovement], entries: list[CashEntry], tolerance: Decimal,
                 days: _Days) -> None:
        self.ours = ours
        self.entries = entries
        self.tolerance = tolerance
        self.days = days
        self.our_free = [True] * len(ours)
        self.entry_free = [True] * len(entries)
        self.our_refs = [_reference(m.reference) for m in ours]
        self.entry_refs = [_entry_refs(e) for e in entries]
        self.matches: list[CashMatch] = []

    def _match(self, kind: MatchKind, our_ix: Sequence[int], entry_ix: Sequence[int],
               rule: str) -> None:
        for i in our_ix:
            assert self.our_free[i]
            self.our_free[i] = False
        for j in entry_ix:
            assert self.entry_free[j]
            self.entry_free[j] = False
        ours = tuple(self.ours[i] for i in our_ix)
        theirs = tuple(self.entries[j] for j in entry_ix)
        difference = sum((m.amount for m in ours), ZERO) - sum((e.amount for e in theirs), ZERO)
        self.matches.append(CashMatch(kind, ours, theirs, difference, rule))

    # 1. one to one ----------------------------------------------------------------------------
    def one_to_one(self) -> None:
        by_currency: dict[str, list[tuple[Decimal, int]]] = defaultdict(list)
        for j, entry in enumerate(self.entries):
            by_currency[entry.currency].append((entry.amount, j))
        amounts: dict[str, list[Decimal]] = {}
        for currency, column in by_currency.items():
            column.sort()
            amounts[currency] = [amount for amount, _ in column]
        candidates: list[tuple[tuple[object, ...], int, int, str]] = []
        for i, movement in enumerate(self.ours):
            column = by_currency.get(movement.currency, [])
            sorted_amounts = amounts.get(movement.currency, [])
            low = bisect.bisect_left(sorted_amounts, movement.amount - self.tolerance)
            high = bisect.bisect_right(sorted_amounts, movement.amount + self.tolerance)
            for amount, j in column[low:high]:
                entry = self.entries[j]
                if not self.days.within(movement.value_date, entry.value_date):
                    continue
                ref, refs = self.our_refs[i], self.entry_refs[j]
                if ref and _reference(entry.reference) and ref not in refs:
                    continue  # both have references and they differ
                gap = abs(movement.amount - amount)
                business = self.days.between(movement.value_date, entry.value_date)
                calendar = abs((movement.value_date - entry.value_date).days)
                if ref and ref in refs:
                    score: tuple[object, ...] = (0, gap, business, calendar)
                    rule = "reference"
                elif gap == 0 and calendar == 0:
                    score, rule = (1, ZERO, 0, 0), "amount and value date"
                else:
                    score, rule = (2, business, calendar, gap), "nearest date"
                candidates.append(((*score, i, j), i, j, rule))
        candidates.sort(key=lambda c: c[0])
        for _, i, j, rule in candidates:
            if self.our_free[i] and self.entry_free[j]:
                self._match(MatchKind.ONE_TO_ONE, [i], [j], rule)

    # 2. many to one ---------------------------------------------------------------------------
    def many_to_one(self) -> None:
        by_side: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, m in enumerate(self.ours):
            by_side[(m.currency, _sign(m.amount))].append(i)
        for j, entry in enumerate(self.entries):
            if not self.entry_free[j] or entry.reversal or entry.amount == 0:
                continue
            eligible = [i for i in by_side.get((entry.currency, _sign(entry.amount)), ())
                        if self.our_free[i] and self._part_of(self.ours[i].amount,
                                                              self.ours[i].value_date, entry)]
            groups = self._groups(
                eligible, lambda i: frozenset({self.our_refs[i]} - {""}),
                lambda i: self.ours[i].value_date,
                self.entry_refs[j], entry.value_date)
            for rule, group in groups:
                chosen = _subset(group, lambda i: self.ours[i].amount, entry.amount,
                                 self.tolerance)
                if chosen is not None:
                    self._match(MatchKind.MANY_TO_ONE, chosen, [j], rule)
                    break

    # 3. one to many ---------------------------------------------------------------------------
    def one_to_many(self) -> None:
        by_side: dict[tuple[str, int], list[int]] = defaultdict(list)
        for j, e in enumerate(self.entries):
            if not e.reversal:
                by_side[(e.currency, _sign(e.amount))].append(j)
        for i, movement in enumerate(self.ours):
            if not self.our_free[i] or movement.amount == 0:
                continue
            eligible = [j for j in by_side.get((movement.currency, _sign(movement.amount)), ())
                        if self.entry_free[j] and self._part_of(
                            self.entries[j].amount, self.entries[j].value_date, movement)]
            ref = self.our_refs[i]
            groups = self._groups(
                eligible, lambda j: self.entry_refs[j], lambda j: self.entries[j].value_date,
                frozenset({ref} - {""}), movement.value_date)
            for rule, group in groups:
                chosen = _subset(group, lambda j: self.entries[j].amount, movement.amount,
                                 self.tolerance)
                if chosen is not None:
                    self._match(MatchKind.ONE_TO_MANY, [i], chosen, rule)
                    break

    def _part_of(self, amount: Decimal, value_date: dt.date,
                 whole: OurMovement | CashEntry) -> bool:
        """Could a part of this amount and value date belong to ``whole`` (of the same
        currency and sign)?"""
        return abs(amount) <= abs(whole.amount) + self.tolerance and \
            self.days.within(value_date, whole.value_date)

    def _groups(self, eligible: list[int], refs_of: Callable[[int], frozenset[str]],
                date_of: Callable[[int], dt.date], wanted: frozenset[str],
                anchor: dt.date) -> list[tuple[str, list[int]]]:
        """Candidate groups, best first: by a shared reference (one of ``wanted`` when there
        are any), then by a shared value date; members nearest ``anchor`` first."""
        def nearest(ix: int) -> tuple[int, int, int]:
            return (self.days.between(date_of(ix), anchor), abs((date_of(ix) - anchor).days),
                    ix)

        by_ref: dict[str, list[int]] = defaultdict(list)
        by_date: dict[dt.date, list[int]] = defaultdict(list)
        for ix in eligible:
            for ref in refs_of(ix):
                if not wanted or ref in wanted:
                    by_ref[ref].append(ix)
            by_date[date_of(ix)].append(ix)
        groups = [("reference group", sorted(by_ref[ref], key=nearest)) for ref in sorted(by_ref)]
        for day in sorted(by_date, key=lambda d: (self.days.between(d, anchor),
                                                  abs((d - anchor).days), d)):
            groups.append(("value date group", sorted(by_date[day], key=nearest)))
        return [(rule, group) for rule, group in groups if len(group) >= 2]

    # 4. reversals -----------------------------------------------------------------------------
    def net_reversals(self) -> list[NettedReversal]:
        netted = []
        for r, reversal in enumerate(self.entries):
            if not reversal.reversal or not self.entry_free[r]:
                continue
            options = [o for o, original in enumerate(self.entries)
                       if o != r and self.entry_free[o] and not original.reversal
                       and original.currency == reversal.currency
                       and original.amount == -reversal.amount
                       and self.entry_refs[o] & self.entry_refs[r]]
            if not options:
                continue
            o = min(options, key=lambda o: (
                abs((self.entries[o].value_date - reversal.value_date).days), o))
            self.entry_free[r] = self.entry_free[o] = False
            netted.append(NettedReversal(self.entries[o], reversal))
        return netted

    # 5. near misses ---------------------------------------------------------------------------
    def near_misses(self, closing_date: dt.date) -> list[CashBreak]:
        by_ref: dict[str, list[int]] = defaultdict(list)
        for j, refs in enumerate(self.entry_refs):
            for ref in refs:
                by_ref[ref].append(j)
        pairs: list[tuple[tuple[object, ...], int, int, BreakKind]] = []
        for i, movement in enumerate(self.ours):
            ref = self.our_refs[i]
            if not self.our_free[i] or not ref or movement.value_date > closing_date:
                continue  # (not yet due: not expected on the statement)
            for j in by_ref.get(ref, ()):
                entry = self.entries[j]
                if not self.entry_free[j] or entry.currency != movement.currency:
                    continue
                gap = abs(movement.amount - entry.amount)
                calendar = abs((movement.value_date - entry.value_date).days)
                if gap <= self.tolerance:
                    # within the window and amount it would have matched in step 1
                    pairs.append(((0, calendar, gap, i, j), i, j, BreakKind.DATE))
                else:
                    pairs.append(((1, calendar, gap, i, j), i, j, BreakKind.AMOUNT))
        pairs.sort(key=lambda p: p[0])
        found = []
        for _, i, j, kind in pairs:
            if self.our_free[i] and self.entry_free[j]:
                self.our_free[i] = self.entry_free[j] = False
                found.append(CashBreak(kind, self.ours[i], self.entries[j]))
        return found


def match_cash(ours: Iterable[OurMovement], statement: CashStatement,
               tolerance: Decimal = ZERO, date_window: int = 2,
               calendar: SettlementCalendar | None = None, currency: str | None = None, *,
               earlier: Iterable[CashEntry] = ()) -> CashMatching:
    """Match our movements on a bank account against its statement (see the module's notes).

    ``date_window`` is in business days of ``currency`` (default: the statement's) in
    ``calendar`` (weekdays without one). ``earlier`` are entries of earlier statements of the
    account still unmatched: they are matched as if on this statement.
    """
    assert tolerance >= 0, tolerance
    assert date_window >= 0, date_window
    days = _Days(calendar, currency or statement.currency, date_window)
    movements = sorted(ours, key=_our_order)
    entries = sorted((*statement.entries, *earlier), key=_entry_order)
    matcher = _Matcher(movements, entries, tolerance, days)
    matcher.one_to_one()
    matcher.many_to_one()
    matcher.one_to_many()
    netted = matcher.net_reversals()
    breaks = matcher.near_misses(statement.closing_date)
    not_yet_due = []
    for i, movement in enumerate(movements):
        if not matcher.our_free[i]:
            continue
        if movement.value_date > statement.closing_date:
            not_yet_due.append(movement)
        else:
            breaks.append(CashBreak(BreakKind.MISSING_AT_THEM, movement, None))
    breaks.extend(CashBreak(BreakKind.MISSING_AT_US, None, entry)
                  for j, entry in enumerate(entries) if matcher.entry_free[j])
    return CashMatching(
        account=statement.account, statement_id=statement.statement_id,
        closing_date=statement.closing_date,
        matches=tuple(sorted(matcher.matches, key=_match_order)),
        netted=tuple(sorted(netted, key=lambda n: (_entry_order(n.original),
                                                   _entry_order(n.reversal)))),
        not_yet_due=tuple(not_yet_due),
        breaks=tuple(sorted(breaks, key=_break_order)))


def _match_order(match: CashMatch) -> tuple[object, ...]:
    return (tuple(_our_order(m) for m in match.ours),
            tuple(_entry_order(e) for e in match.theirs))


def _break_order(b: CashBreak) -> tuple[object, ...]:
    return (b.ours is None, _our_order(b.ours) if b.ours is not None else (),
            _entry_order(b.theirs) if b.theirs is not None else ())


def _plain(amount: Decimal) -> str:
    """An amount as text that equal amounts share (100, 100.0 and 100.00 all give 100)."""
    return format(amount.normalize(), "f") if amount else "0"


def cash_scopes(statement: CashStatement) -> frozenset[str]:
    """The scope a bank statement covers: its account."""
    return frozenset({f"cash {statement.account}"})


def cash_discrepancies(result: CashMatching) -> list[Discrepancy]:
    """Cash breaks as discrepancies for ``breaks.reconcile_breaks``: keyed by our movement's
    key when the break has one of ours, else by the entry (references, value date, amount),
    identical entries numbered in order."""
    account = result.account
    seen: dict[str, int] = defaultdict(int)
    found = []
    for b in result.breaks:
        ref = ""
        if b.ours is not None:
            ref = _reference(b.ours.reference)
        if not ref and b.theirs is not None:
            ref = _reference(b.theirs.reference) or _reference(b.theirs.bank_reference)
        subject = f"cash {account} ref {ref}" if ref else f"cash {account}"
        details = []
        if b.ours is not None:
            subject += f" ours {b.ours.key}"
            key = break_key("cash", account, "ours", b.ours.key)
            details.append(f"ours {b.ours.key} value {b.ours.value_date.isoformat()}")
        else:
            assert b.theirs is not None
            e = b.theirs
            identity = ("cash", account, "theirs", e.reference.strip(), e.bank_reference.strip(),
                        e.value_date.isoformat(), _plain(e.amount), e.reversal)
            seen[repr(identity)] += 1
            number = seen[repr(identity)]
            key = break_key(*identity, number)
            subject += f" entry {e.value_date.isoformat()} {e.amount:+}"
            if number > 1:
                subject += f" #{number}"
        if b.theirs is not None:
            line = f" line {b.theirs.line}" if b.theirs.line is not None else ""
            details.append(f"entry{line} value {b.theirs.value_date.isoformat()} "
                           f"booked {b.theirs.booking_date.isoformat()}")
        found.append(Discrepancy(
            key=key, kind=b.kind, subject=subject, scope=f"cash {account}", ours=b.ours_amount,
            theirs=b.theirs_amount, difference=b.difference, currency_or_isin=b.currency,
            detail="; ".join(details)))
    return sorted(found, key=lambda d: d.key)
