"""Our books against a statement: positions against a custodian's holdings, cash movements
against a bank statement. Pure: values in, values out, every result sorted so that the order
of the inputs never matters.

Positions (``compare_positions``)
    Our settled positions and the statement's lines are summed per safekeeping account × ISIN
    (a statement may give one security in several lines, one per sub-balance). A zero on
    either side counts as absent. Only the safekeeping accounts that appear in the statement
    (in any line, a zero line too) are compared: a statement of one account says nothing of
    another, and an empty statement says nothing at all. Differences are ours − theirs.

Cash (``match_cash``)
    Amounts are signed (+ money in), as in ``reconciliation.model``; ours are signed alike.
    Matching is on value date, never booking date; "within the window" means at most
    ``date_window`` business days apart (payment days of the currency in ``calendar``,
    weekdays without one), counted as the business days after the earlier date up to and
    including the later (Friday and the next Tuesday are 2 apart). References are compared
    stripped, ``NONREF`` counting as none; an entry's references are its ``reference`` and
    its ``bank_reference``.

    A one-to-one pair needs the same currency, amounts within ``tolerance``, value dates within
    the window, and our reference among the entry's references whenever both we and the
    entry's ``reference`` give one (references that differ never match). A group (many to one,
    one to many) needs one currency and one sign (the whole's), every part within the window
    of the whole and no larger than it, and the parts summing to it within ``tolerance``.
    Reversal entries never take part in a group. The steps, each on what the earlier left:

    1. one to one by reference: pairs whose references agree, nearest amount, then date first.
    2. groups by reference — many to one (several of ours summing to one entry, e.g. a batch
       payment), then one to many (one of ours split into several entries): parts sharing a
       reference, which must be one of the whole's when the whole has any.
    3. one to one, the rest: the same amount on the same value date first, then the nearest
       value date (then the nearest amount).
    4. groups by value date — many to one, then one to many: parts sharing a value date,
       the value date nearest the whole's tried first.
    5. reversals — a reversal (storno) entry nothing of ours matched, and an entry it reverses
       (same currency, opposite amount, a reference or bank reference in common) nothing of
       ours matched, drop out together as a netted pair.
    6. near misses — one of ours (due by the closing date) and one entry left over, with the
       same reference and currency: amounts within tolerance but value dates outside the
       window, a DATE break; amounts beyond tolerance, an AMOUNT break (DATE pairs first,
       then AMOUNT, nearest value date first).
    7. what is left: entries are MISSING_AT_US breaks; ours value-dated after the statement's
       closing date are *not yet due* (not expected on it, not breaks), the others
       MISSING_AT_THEM breaks.

    One-to-one pairs are taken greedily over all candidate pairs in the order of preference,
    wholes of groups in the order of their values: the result never depends on input order.
    The group search is bounded: the whole group is tried first (any size), then subsets of 2
    to ``MAX_PARTS`` (6) of its first ``MAX_CANDIDATES`` (16) members, nearest value date
    first — at most 14,877 sums per group; the smallest subset wins, then the smallest
    difference, then the first in that order. A batch of more than 16 items is found only
    whole.

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


def _is_reversal(item: OurMovement | CashEntry) -> bool:
    return isinstance(item, CashEntry) and item.reversal


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
    values = [amount(item) for item in pool]
    total = sum(values, ZERO)
    if abs(total) < abs(target) - tolerance:
        return None  # one sign throughout: not even all of them reach the target
    if abs(total - target) <= tolerance:
        return tuple(pool)
    values = values[:MAX_CANDIDATES]
    for size in range(2, min(MAX_PARTS, len(values)) + 1):
        if size == len(pool):  # the whole pool, tried above
            break
        best: tuple[int, ...] | None = None
        best_difference = ZERO
        for combo in combinations(range(len(values)), size):
            difference = abs(sum([values[k] for k in combo], ZERO) - target)
            if difference <= tolerance and (best is None or difference < best_difference):
                best, best_difference = combo, difference
                if difference == 0:
                    break
        if best is not None:
            return tuple(pool[k] for k in best)
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
    def one_to_one(self, tiers: frozenset[int]) -> None:
        """Pairs of the given tiers: 0 same reference, 1 same amount and value date, 2 the
        rest (nearest value date first)."""
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
                if score[0] in tiers:
                    candidates.append(((*score, i, j), i, j, rule))
        candidates.sort(key=lambda c: c[0])
        for _, i, j, rule in candidates:
            if self.our_free[i] and self.entry_free[j]:
                self._match(MatchKind.ONE_TO_ONE, [i], [j], rule)

    # 2. and 3. many to one, one to many ------------------------------------------------------
    def combine(self, many_ours: bool, by_reference: bool) -> None:
        """Several of ours to one entry (``many_ours``), or one of ours to several entries:
        the groups sharing a reference (``by_reference``) or else a value date."""
        ours, entries = self.ours, self.entries
        our_refs = [frozenset({ref} - {""}) for ref in self.our_refs]
        if many_ours:
            parts: Sequence[OurMovement | CashEntry] = ours
            wholes: Sequence[OurMovement | CashEntry] = entries
            part_free, whole_free = self.our_free, self.entry_free
            part_refs, whole_refs = our_refs, self.entry_refs
        else:
            parts, wholes = entries, ours
            part_free, whole_free = self.entry_free, self.our_free
            part_refs, whole_refs = self.entry_refs, our_refs
        by_ref: dict[tuple[str, int, str], list[int]] = defaultdict(list)
        by_date: dict[tuple[str, int], dict[dt.date, list[int]]] = defaultdict(
            lambda: defaultdict(list))
        for p, part in enumerate(parts):
            if not part_free[p] or _is_reversal(part):
                continue
            side = (part.currency, _sign(part.amount))
            for ref in part_refs[p]:
                by_ref[(*side, ref)].append(p)
            by_date[side][part.value_date].append(p)
        shared_refs: dict[tuple[str, int], list[str]] = defaultdict(list)
        for (currency, sign, ref), members in sorted(by_ref.items()):
            if len(members) >= 2:
                shared_refs[(currency, sign)].append(ref)

        for w, whole in enumerate(wholes):
            if not whole_free[w] or _is_reversal(whole) or whole.amount == 0:
                continue
            side = (whole.currency, _sign(whole.amount))
            anchor = whole.value_date

            def fits(p: int, whole: OurMovement | CashEntry = whole) -> bool:
                return part_free[p] and abs(parts[p].amount) <= abs(whole.amount) + \
                    self.tolerance and self.days.within(parts[p].value_date, whole.value_date)

            def nearest(p: int, anchor: dt.date = anchor) -> tuple[int, int, int]:
                day = parts[p].value_date
                return self.days.between(day, anchor), abs((day - anchor).days), p

            groups: list[tuple[str, list[int]]]
            if by_reference:
                wanted = sorted(whole_refs[w]) if whole_refs[w] else shared_refs.get(side, [])
                groups = [("reference group", [p for p in by_ref.get((*side, ref), ())
                                               if fits(p)]) for ref in wanted]
            else:
                days = by_date.get(side, {})
                near = sorted((day for day in days if self.days.within(day, anchor)),
                              key=lambda day: (self.days.between(day, anchor),
                                               abs((day - anchor).days), day))
                groups = [("value date group", [p for p in days[day] if fits(p)])
                          for day in near]
            for rule, group in groups:
                if len(group) < 2:
                    continue
                chosen = _subset(sorted(group, key=nearest), lambda p: parts[p].amount,
                                 whole.amount, self.tolerance)
                if chosen is not None:
                    if many_ours:
                        self._match(MatchKind.MANY_TO_ONE, chosen, [w], rule)
                    else:
                        self._match(MatchKind.ONE_TO_MANY, [w], chosen, rule)
                    break

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
    matcher.one_to_one(frozenset({0}))  # by reference first, whatever the shape
    matcher.combine(many_ours=True, by_reference=True)
    matcher.combine(many_ours=False, by_reference=True)
    matcher.one_to_one(frozenset({1, 2}))
    matcher.combine(many_ours=True, by_reference=False)
    matcher.combine(many_ours=False, by_reference=False)
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
