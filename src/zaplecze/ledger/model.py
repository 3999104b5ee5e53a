"""Entries and postings: the journal's records.

Every business event becomes one ``Entry`` of ``Posting``s; each posting moves an integer
amount (at the asset's declared scale) of one asset in one GL account. For every entry and
asset the postings sum to zero.

Two-phase, as TigerBeetle's pending transfers: a trade is booked as a PENDING entry on its
trade date; settlement appends a POST entry that points at it, cancelling appends a VOID
entry. Nothing is ever changed in place. Each posting carries the basis it counts on, so every
balance is one sum over one table:

    trade basis as of D       = Σ postings with basis in {BOTH, TRADE}      and date ≤ D
    settlement basis as of D  = Σ postings with basis in {BOTH, SETTLEMENT} and date ≤ D

A PENDING entry's postings count on the trade basis only; its POST entry repeats them on the
settlement basis; a VOID entry reverses them on the trade basis. A POSTED entry counts on both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    POSTED = "POSTED"  # final on both bases from its date
    PENDING = "PENDING"  # trade basis from its date; settlement basis once posted
    POST = "POST"  # posts the pending entry it names (settlement)
    VOID = "VOID"  # voids the pending entry it names (cancel before settlement)


class Basis(StrEnum):
    BOTH = "B"
    TRADE = "T"
    SETTLEMENT = "S"


BASIS_OF_PHASE = {Phase.POSTED: Basis.BOTH, Phase.PENDING: Basis.TRADE,
                  Phase.POST: Basis.SETTLEMENT, Phase.VOID: Basis.TRADE}


class EntryKind(StrEnum):
    TRADE = "TRADE"
    SETTLEMENT = "SETTLEMENT"
    CANCEL = "CANCEL"
    CASH = "CASH"
    CORPORATE_ACTION = "CORPORATE_ACTION"
    CORPORATE_ACTION_CASH = "CORPORATE_ACTION_CASH"
    TRANSFORMATION = "TRANSFORMATION"
    PENALTY = "PENALTY"  # a CSDR cash penalty accrued on a failing day
    ADJUSTMENT = "ADJUSTMENT"  # a manual entry, made by one person and approved by another
    REVERSAL = "REVERSAL"  # undoes a posted entry by its opposite; target_key names it


@dataclass(frozen=True, slots=True)
class Posting:
    gl_account: str
    asset: str  # an ISO 4217 code or an ISIN
    amount: int  # in the asset's smallest unit; positive = owned by / owed to the owner


@dataclass(frozen=True, slots=True)
class Entry:
    key: str  # idempotency key, unique in the journal
    kind: EntryKind
    phase: Phase
    business_date: dt.date
    postings: tuple[Posting, ...]
    ref: str = ""  # the source record: trade_id, movement_id, event_id
    account: str = ""  # the client or house account the event is about
    settle_date: dt.date | None = None  # intended settlement date of a PENDING entry
    target_key: str = ""  # POST / VOID: the pending entry it acts on
    linked_key: str = ""  # a TRANSFORMATION settles with (and is voided with) this entry
    memo: str = ""

    @property
    def basis(self) -> Basis:
        return BASIS_OF_PHASE[self.phase]


def unbalanced_assets(entry: Entry) -> dict[str, int]:
    """The assets whose postings do not sum to zero, with the sum; empty when balanced."""
    return unbalanced((posting.asset, posting.amount) for posting in entry.postings)


def unbalanced(amounts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Of (asset, amount) pairs: the assets whose amounts do not sum to zero, with the sum."""
    totals: dict[str, int] = {}
    for asset, amount in amounts:
        totals[asset] = totals.get(asset, 0) + amount
    return {asset: total for asset, total in totals.items() if total != 0}


def netted(postings: list[Posting]) -> tuple[Posting, ...]:
    """Postings summed per (account, asset), zeros dropped, in first-seen order."""
    sums: dict[tuple[str, str], int] = {}
    for posting in postings:
        key = (posting.gl_account, posting.asset)
        sums[key] = sums.get(key, 0) + posting.amount
    return tuple(Posting(account, asset, amount) for (account, asset), amount in sums.items()
                 if amount != 0)


def settle(pending: Entry, date: dt.date) -> Entry:
    """The POST entry that settles ``pending`` on ``date``: the same postings, settlement basis."""
    assert pending.phase is Phase.PENDING, pending.key
    return Entry(key=f"post:{pending.key}", kind=EntryKind.SETTLEMENT, phase=Phase.POST,
                 business_date=date, postings=pending.postings, ref=pending.ref,
                 account=pending.account, target_key=pending.key)


def void(pending: Entry, date: dt.date, reason: str) -> Entry:
    """The VOID entry that cancels ``pending`` on ``date``: its postings reversed, trade basis."""
    assert pending.phase is Phase.PENDING, pending.key
    reversed_postings = tuple(Posting(p.gl_account, p.asset, -p.amount) for p in pending.postings)
    return Entry(key=f"void:{pending.key}", kind=EntryKind.CANCEL, phase=Phase.VOID,
                 business_date=date, postings=reversed_postings, ref=pending.ref,
                 account=pending.account, target_key=pending.key, memo=reason)


# What a manual reversal may undo: entries made by people or by accrual, never the lifecycle
# entries of trades and corporate actions (those are cancelled and reversed by their own
# events, which keep their records in step).
REVERSIBLE = frozenset({EntryKind.ADJUSTMENT, EntryKind.PENALTY})


def reversal(entry: Entry, date: dt.date, reason: str) -> Entry:
    """The entry that undoes a posted ``entry`` on ``date``: its postings reversed, on the same
    basis, pointing to what it reverses."""
    assert entry.phase is Phase.POSTED and entry.kind in REVERSIBLE, entry.key
    return Entry(key=f"reverse:{entry.key}", kind=EntryKind.REVERSAL, phase=Phase.POSTED,
                 business_date=date,
                 postings=tuple(Posting(p.gl_account, p.asset, -p.amount)
                                for p in entry.postings),
                 ref=entry.ref, account=entry.account, target_key=entry.key, memo=reason)


def _share(amount: int, numerator: int, denominator: int) -> int:
    """``amount × numerator / denominator`` rounded half away from zero, in integers."""
    whole, rest = divmod(abs(amount) * numerator, denominator)
    if 2 * rest >= denominator:
        whole += 1
    return whole if amount >= 0 else -whole


def settle_part(pending: Entry, date: dt.date, before: int, now: int, total: int,
                part: int) -> Entry:
    """The POST entry for a partial settlement: ``now`` of ``total`` units of the security
    settle, ``before`` having settled already. Each posting moves its share of the cumulative
    fraction minus what the earlier parts moved (so the parts always add up to the whole entry
    exactly); per asset the first posting — the owner's — takes the rounding, so every part
    balances. When ``before + now == total`` this is the entry's final part and carries the same
    key as a whole settlement (``post:…``); earlier parts are ``post:…#n``."""
    assert pending.phase is Phase.PENDING, pending.key
    assert now > 0 and before >= 0 and before + now <= total, (before, now, total)
    done = before + now
    moved: list[Posting] = []
    first_of: dict[str, int] = {}
    for posting in pending.postings:
        amount = _share(posting.amount, done, total) - _share(posting.amount, before, total)
        if posting.asset not in first_of:
            first_of[posting.asset] = len(moved)
        moved.append(Posting(posting.gl_account, posting.asset, amount))
    for asset, index in first_of.items():
        rest = sum(p.amount for i, p in enumerate(moved) if p.asset == asset and i != index)
        moved[index] = Posting(moved[index].gl_account, asset, -rest)
    final = done == total
    return Entry(key=f"post:{pending.key}" if final else f"post:{pending.key}#{part}",
                 kind=EntryKind.SETTLEMENT, phase=Phase.POST, business_date=date,
                 postings=tuple(p for p in moved if p.amount), ref=pending.ref,
                 account=pending.account, target_key=pending.key,
                 memo="" if final else f"partial settlement {part}: {now} of {total}")
