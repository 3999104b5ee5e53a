"""The life of a corporate-action event (corporate_actions/lifecycle.py): four eyes, approval
bound to the payload, amendments before and after approval, events waiting for reference data,
withdrawals, MT564 announcements routed by function, the history, and reversal entries that
net every account to zero (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_path
from zaplecze.corporate_actions import lifecycle as lc
from zaplecze.corporate_actions.apply import Entitlement, Holding, PendingTrade
from zaplecze.corporate_actions.apply import apply as apply_event
from zaplecze.corporate_actions.lifecycle import (
    Announcement,
    AnnouncementFunction,
    EventRecord,
    EventStatus,
    payload_hash,
    reversal_entries,
)
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.formats.mt564 import read_mt564
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.ledger.model import (
    Entry,
    EntryKind,
    Phase,
    Posting,
    settle,
    settle_part,
    unbalanced_assets,
    void,
)
from zaplecze.refdata.model import Account, AccountKind, Instrument, LotMethod, RefData

D = dt.date.fromisoformat
AAPL = "US0378331005"  # Apple
GEV = "US36828A1016"  # GE Vernova
GE = "US3696043013"  # GE Aerospace
KNOWN = frozenset({AAPL, GE})
AT = dt.datetime(2024, 2, 1, 9, 0)
DIVIDEND = CorporateAction("AAPL-DIV", CaKind.CASH_DIVIDEND, AAPL, D("2024-02-09"),
                           D("2024-02-12"), D("2024-02-15"), amount=Decimal("0.24"),
                           currency="USD", content_hash="row-1")
Result = tuple[EventRecord, list[Problem]]


def ok(result: Result) -> EventRecord:
    record, problems = result
    assert problems == []
    return record


def refused(result: Result, before: EventRecord, rule: Rule) -> Problem:
    """The transition was refused with ``rule`` and left the record exactly as it was."""
    record, problems = result
    assert [problem.rule for problem in problems] == [rule], problems
    assert record is before
    return problems[0]


def at(minutes: int) -> dt.datetime:
    return AT + dt.timedelta(minutes=minutes)


def entitlements(rate: str = "0.24", holdings: Iterable[tuple[str, int]] = (("A1", 100),
                                                                           ("A2", 250))
                 ) -> list[Entitlement]:
    result = []
    for account, quantity in holdings:
        gross = Decimal(quantity) * Decimal(rate)
        withholding = (gross * Decimal("0.15")).quantize(Decimal("0.01"))
        result.append(Entitlement("AAPL-DIV", account, CaKind.CASH_DIVIDEND, AAPL,
                                  Decimal(quantity), gross, withholding, gross - withholding,
                                  "USD", D("2024-02-15"), credit_date=D("2024-02-15")))
    return result


PAYLOAD = payload_hash(entitlements())


def announced(terms: CorporateAction = DIVIDEND) -> EventRecord:
    return ok(lc.announce(terms, KNOWN, "loader", at(0)))


def computed(record: EventRecord | None = None, who: str = "ann") -> EventRecord:
    return ok(lc.compute(record or announced(), who, at(10), PAYLOAD))


def approved(who: str = "bob") -> EventRecord:
    return ok(lc.approve(computed(), who, at(20), PAYLOAD))


def applied() -> EventRecord:
    return ok(lc.apply(approved(), "eod", at(30), PAYLOAD))


def announcement(seme: str, function: AnnouncementFunction = AnnouncementFunction.NEW, *,
                 rate: str = "0.24", isin: str = AAPL, event: str = "AAPL-DIV") -> Announcement:
    return Announcement(event_reference=event, message_reference=seme, function=function,
                        event_type="DVCA", kind=CaKind.CASH_DIVIDEND, isin=isin,
                        source="feed.fin", line=1, mandatory="MAND", ex_date=D("2024-02-09"),
                        record_date=D("2024-02-12"), pay_date=D("2024-02-15"),
                        gross_rate=Decimal(rate), currency="USD", option="001")


# --- approval ---------------------------------------------------------------------------------


def test_an_unapproved_event_cannot_be_applied() -> None:
    for record in (announced(), computed()):
        refused(lc.apply(record, "eod", at(30), PAYLOAD), record, Rule.EVENT_NOT_APPROVED)
    waiting = ok(lc.announce(DIVIDEND, frozenset(), "loader", at(0)))
    refused(lc.apply(waiting, "eod", at(30), PAYLOAD), waiting, Rule.EVENT_NOT_APPROVED)


def test_the_same_person_cannot_prepare_and_approve() -> None:
    record = computed(who="ann")
    for same in ("ann", " Ann ", "ANN"):
        problem = refused(lc.approve(record, same, at(20), PAYLOAD), record,
                          Rule.FOUR_EYES_REQUIRED)
        assert "computed the entitlements" in problem.detail
    refused(lc.approve(record, "  ", at(20), PAYLOAD), record, Rule.FOUR_EYES_REQUIRED)
    after = ok(lc.approve(record, "bob", at(20), PAYLOAD))
    assert (after.status, after.prepared_by, after.approved_by) == \
        (EventStatus.APPROVED, "ann", "bob")


def test_whoever_recomputes_becomes_the_preparer() -> None:
    record = ok(lc.compute(computed(who="ann"), "bob", at(15), PAYLOAD))
    refused(lc.approve(record, "bob", at(20), PAYLOAD), record, Rule.FOUR_EYES_REQUIRED)
    assert ok(lc.approve(record, "ann", at(20), PAYLOAD)).approved_by == "ann"


def test_the_approval_is_bound_to_the_payload_computed() -> None:
    record = computed()
    other = payload_hash(entitlements(rate="0.25"))
    problem = refused(lc.approve(record, "bob", at(20), other), record, Rule.EVENT_NOT_APPROVED)
    assert PAYLOAD in problem.detail and other in problem.detail


def test_a_payload_changed_after_approval_is_not_applied() -> None:
    record = approved()
    changed = payload_hash(entitlements(holdings=(("A1", 100), ("A2", 251))))
    problem = refused(lc.apply(record, "eod", at(30), changed), record, Rule.EVENT_NOT_APPROVED)
    assert "changed since" in problem.detail
    assert ok(lc.apply(record, "eod", at(30), PAYLOAD)).status is EventStatus.APPLIED


def test_an_event_is_applied_once() -> None:
    record = applied()
    refused(lc.apply(record, "eod", at(40), PAYLOAD), record, Rule.EVENT_ALREADY_APPLIED)


def test_an_approval_can_be_revoked() -> None:
    record = ok(lc.revoke_approval(approved(), "carol", at(25), "holdings under review"))
    assert (record.status, record.approved_by, record.prepared_by) == \
        (EventStatus.ENTITLEMENTS_COMPUTED, "", "ann")
    refused(lc.revoke_approval(record, "carol", at(26), "again"), record,
            Rule.EVENT_NOT_APPROVED)


amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)
entitlement_lists = st.lists(st.builds(
    lambda account, quantity, gross: Entitlement(
        "EV", account, CaKind.CASH_DIVIDEND, AAPL, quantity, gross, Decimal(0), gross, "USD",
        D("2024-02-15")),
    st.sampled_from(["A1", "A2", "A3", "H1"]), amounts, amounts), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(entitlement_lists, st.randoms(), st.data())
def test_the_payload_hash_binds_to_the_content_not_the_order(
        listed: list[Entitlement], rng: random.Random, data: st.DataObject) -> None:
    shuffled = list(listed)
    rng.shuffle(shuffled)
    assert payload_hash(shuffled) == payload_hash(listed)
    padded = [replace(e, gross=e.gross.quantize(Decimal("0.0001"))) for e in listed]
    assert payload_hash(padded) == payload_hash(listed)  # 1.5 and 1.5000 are the same amount
    index = data.draw(st.integers(0, len(listed) - 1))
    delta = data.draw(st.sampled_from([Decimal("0.01"), Decimal(1), Decimal("-0.01")]))
    field = data.draw(st.sampled_from(["quantity", "gross", "net", "withholding"]))
    changed = list(listed)
    changed[index] = replace(listed[index], **{field: getattr(listed[index], field) + delta})
    assert payload_hash(changed) != payload_hash(listed)


# --- amendments -------------------------------------------------------------------------------


def test_an_amendment_before_approval_replaces_the_terms_and_keeps_the_old() -> None:
    new_terms = replace(DIVIDEND, amount=Decimal("0.25"), content_hash="row-2")
    for before in (announced(), computed()):
        record = ok(lc.amend(before, new_terms, KNOWN, "loader", at(15)))
        assert record.terms == new_terms and record.versions == (DIVIDEND,)
        assert (record.status, record.prepared_by, record.computed_payload_hash) == \
            (EventStatus.ANNOUNCED, "", "")
        assert record.announcements == ("csv:row-1", "csv:row-2")
    # the old computation cannot be approved any more
    record = ok(lc.amend(computed(), new_terms, KNOWN, "loader", at(15)))
    refused(lc.approve(record, "bob", at(20), PAYLOAD), record, Rule.EVENT_NOT_APPROVED)


def test_the_same_terms_again_change_nothing_but_the_announcements() -> None:
    record = computed()
    again = ok(lc.amend(record, replace(DIVIDEND, content_hash="row-1b"), KNOWN, "loader",
                        at(15)))
    assert again.status is EventStatus.ENTITLEMENTS_COMPUTED
    assert again.computed_payload_hash == PAYLOAD and again.versions == ()
    assert again.announcements == ("csv:row-1", "csv:row-1b")
    assert ok(lc.amend(again, replace(DIVIDEND, content_hash="row-1b"), KNOWN, "loader",
                       at(16))) is again


def test_after_approval_an_amendment_is_refused() -> None:
    record = approved()
    new_terms = replace(DIVIDEND, pay_date=D("2024-02-16"))
    problem = refused(lc.amend(record, new_terms, KNOWN, "loader", at(25)), record,
                      Rule.AMENDMENT_AFTER_APPROVAL)
    assert "revoke the approval" in problem.detail
    refused(lc.compute(record, "ann", at(25), PAYLOAD), record, Rule.AMENDMENT_AFTER_APPROVAL)
    revoked = ok(lc.revoke_approval(record, "bob", at(26), "new pay date announced"))
    amended = ok(lc.amend(revoked, new_terms, KNOWN, "loader", at(27)))
    assert (amended.status, amended.terms, amended.versions) == \
        (EventStatus.ANNOUNCED, new_terms, (DIVIDEND,))


def test_after_application_it_must_be_reversed_before_an_amendment() -> None:
    record = applied()
    new_terms = replace(DIVIDEND, amount=Decimal("0.23"))
    problem = refused(lc.amend(record, new_terms, KNOWN, "loader", at(35)), record,
                      Rule.EVENT_ALREADY_APPLIED)
    assert "reverse it" in problem.detail
    reversed_ = ok(lc.reverse(record, "carol", at(40), "wrong rate"))
    amended = ok(lc.amend(reversed_, new_terms, KNOWN, "loader", at(41)))
    assert (amended.status, amended.terms, amended.approved_by) == \
        (EventStatus.ANNOUNCED, new_terms, "")


def test_an_amendment_for_another_event_is_refused() -> None:
    record = announced()
    refused(lc.amend(record, replace(DIVIDEND, event_id="OTHER"), KNOWN, "loader", at(5)),
            record, Rule.UNKNOWN_EVENT)


# --- reference data ---------------------------------------------------------------------------


def test_an_event_on_an_unknown_isin_waits_and_is_announced_when_it_is_known() -> None:
    record = ok(lc.announce(DIVIDEND, frozenset({GE}), "loader", at(0)))
    assert record.status is EventStatus.WAITING_FOR_REFERENCE_DATA
    refused(lc.compute(record, "ann", at(1), PAYLOAD), record, Rule.UNKNOWN_INSTRUMENT)
    problem = refused(lc.reference_data_arrived(record, frozenset({GE}), "refdata", at(2)),
                      record, Rule.UNKNOWN_INSTRUMENT)
    assert AAPL in problem.detail
    record = ok(lc.reference_data_arrived(record, KNOWN, "refdata", at(3)))
    assert record.status is EventStatus.ANNOUNCED
    assert [(e.what, e.before, e.after) for e in record.history] == [
        ("announce", None, EventStatus.WAITING_FOR_REFERENCE_DATA),
        ("reference_data", EventStatus.WAITING_FOR_REFERENCE_DATA, EventStatus.ANNOUNCED)]
    assert ok(lc.reference_data_arrived(record, KNOWN, "refdata", at(4))) is record


def test_a_spinoff_waits_for_its_new_security_too() -> None:
    spinoff = CorporateAction("GE-GEV", CaKind.SPINOFF, GE, D("2024-04-02"), D("2024-03-19"),
                              D("2024-04-02"), ratio_old=Decimal(4), ratio_new=Decimal(1),
                              new_isin=GEV, cost_fraction=Decimal("0.2"))
    record = ok(lc.announce(spinoff, KNOWN, "loader", at(0)))
    assert record.status is EventStatus.WAITING_FOR_REFERENCE_DATA
    assert ok(lc.reference_data_arrived(record, KNOWN | {GEV}, "refdata",
                                        at(1))).status is EventStatus.ANNOUNCED


def test_an_amendment_to_an_unknown_isin_waits_again() -> None:
    record = ok(lc.amend(computed(), announcement("M2", AnnouncementFunction.REPLACE,
                                                  isin=GEV), KNOWN, "mt564", at(12)))
    assert (record.status, record.isin) == (EventStatus.WAITING_FOR_REFERENCE_DATA, GEV)


# --- announcements from MT564 -----------------------------------------------------------------


def read(name: str) -> Announcement:
    announcements, _ = read_mt564(shared_path("standards", "swift", "mt5xx", name).read_text(),
                                  name)
    return announcements[0]


def test_shared_samples_become_records() -> None:
    swiss = ok(lc.announce(read("MT564_02.fin"), {"CH0011075394"}, "mt564", at(0)))
    assert (swiss.status, swiss.event_id, swiss.kind, swiss.announcements) == \
        (EventStatus.ANNOUNCED, "D455103", CaKind.CASH_DIVIDEND, ("029206016",))
    assert swiss.terms is not None and swiss.terms.amount == Decimal("0.000001")
    # a CUSIP only: it waits for reference data, its terms incomplete until an operator amends
    cusip, problems = lc.announce(read("MT564_01.fin"), KNOWN, "mt564", at(0))
    assert cusip.status is EventStatus.WAITING_FOR_REFERENCE_DATA and cusip.terms is None
    assert [p.rule for p in problems] == [Rule.MISSING_REQUIRED_VALUE, Rule.DATES_OUT_OF_ORDER]
    assert "(no ISIN)" in lc.reference_data_arrived(cusip, KNOWN, "x", at(1))[1][0].detail


def test_an_unsupported_event_is_kept_but_not_computed() -> None:
    record = ok(lc.announce(read("MT564_05.fin"), {"AT0000A00GJ3"}, "mt564", at(0)))
    assert (record.status, record.kind, record.event_type, record.terms) == \
        (EventStatus.ANNOUNCED, None, "OTHR", None)
    problem = refused(lc.compute(record, "ann", at(1), PAYLOAD), record,
                      Rule.UNSUPPORTED_EVENT_KIND)
    assert "OTHR (other event)" in problem.detail


def test_incomplete_terms_wait_for_an_operator_to_amend_them() -> None:
    record, problems = lc.announce(read("MT564_08.fin"), {"US1234567890"}, "mt564", at(0))
    assert [p.rule for p in problems] == [Rule.AMOUNT_REQUIRED]
    assert (record.status, record.kind, record.terms) == \
        (EventStatus.ANNOUNCED, CaKind.CASH_DIVIDEND, None)
    refused(lc.compute(record, "ann", at(1), PAYLOAD), record, Rule.MISSING_REQUIRED_VALUE)
    row = CorporateAction("ABC123456789", CaKind.CASH_DIVIDEND, "US1234567890", D("2026-09-01"),
                          D("2026-09-02"), D("2026-09-15"), amount=Decimal("1.5"),
                          currency="USD", content_hash="fix-1")
    record = ok(lc.amend(record, row, {"US1234567890"}, "operator", at(2)))
    assert record.terms == row and record.versions == ()  # there were no terms before
    assert ok(lc.compute(record, "ann", at(3), PAYLOAD)).status is \
        EventStatus.ENTITLEMENTS_COMPUTED


def test_announcements_are_routed_by_their_function() -> None:
    record = ok(lc.receive(None, announcement("M1"), KNOWN, "mt564", at(0)))
    assert ok(lc.receive(record, announcement("M1"), KNOWN, "mt564", at(1))) is record
    record = ok(lc.receive(record, announcement("M2", AnnouncementFunction.REPLACE,
                                                rate="0.25"), KNOWN, "mt564", at(2)))
    assert record.terms is not None and record.terms.amount == Decimal("0.25")
    assert [v.amount for v in record.versions] == [Decimal("0.24")]
    record = ok(lc.approve(ok(lc.compute(record, "ann", at(3), PAYLOAD)), "bob", at(4), PAYLOAD))
    # a REPE with the same terms (only the eligible balance) leaves the approval standing
    record = ok(lc.receive(record, announcement("M3", AnnouncementFunction.REPLACE_ELIGIBLE,
                                                rate="0.25"), KNOWN, "mt564", at(5)))
    assert record.status is EventStatus.APPROVED and record.announcements[-1] == "M3"
    refused(lc.receive(record, announcement("M4", AnnouncementFunction.REPLACE, rate="0.26"),
                       KNOWN, "mt564", at(6)), record, Rule.AMENDMENT_AFTER_APPROVAL)
    refused(lc.receive(record, announcement("X1", event="OTHER"), KNOWN, "mt564", at(6)),
            record, Rule.UNKNOWN_EVENT)
    record = ok(lc.receive(record, announcement("M5", AnnouncementFunction.WITHDRAWAL), KNOWN,
                           "mt564", at(7)))
    assert (record.status, record.approved_by) == (EventStatus.WITHDRAWN, "")
    refused(lc.compute(record, "ann", at(8), PAYLOAD), record, Rule.UNKNOWN_EVENT)
    refused(lc.apply(record, "eod", at(8), PAYLOAD), record, Rule.EVENT_NOT_APPROVED)
    # announced again after all: back to ANNOUNCED, needing a new computation and approval
    record = ok(lc.receive(record, announcement("M6", AnnouncementFunction.NEW, rate="0.25"),
                           KNOWN, "mt564", at(9)))
    assert (record.status, record.prepared_by) == (EventStatus.ANNOUNCED, "")


def test_a_cancellation_of_an_event_never_announced_is_kept_withdrawn() -> None:
    cancel = read("MT564_09.fin")
    record, problems = lc.receive(None, cancel, KNOWN, "mt564", at(0))
    assert record.status is EventStatus.WITHDRAWN and record.event_id == "FOOBAR"
    assert [(p.rule, p.source, p.line) for p in problems] == \
        [(Rule.UNKNOWN_EVENT, "MT564_09.fin", 1)]


def test_a_withdrawal_after_application_needs_a_reversal_first() -> None:
    record = applied()
    refused(lc.receive(record, announcement("C1", AnnouncementFunction.CANCEL), KNOWN,
                       "mt564", at(40)), record, Rule.EVENT_ALREADY_APPLIED)
    reversed_ = ok(lc.reverse(record, "carol", at(41), "the issuer withdrew the dividend"))
    assert ok(lc.withdraw(reversed_, "carol", at(42), "withdrawn")).status is \
        EventStatus.WITHDRAWN


# --- reversal and history ---------------------------------------------------------------------


def test_only_an_applied_event_is_reversed() -> None:
    for record in (announced(), computed(), approved()):
        refused(lc.reverse(record, "carol", at(40), "why"), record, Rule.EVENT_NOT_APPLIED)
    record = applied()
    refused(lc.reverse(record, "carol", at(40), " "), record, Rule.MISSING_REQUIRED_VALUE)
    reversed_ = ok(lc.reverse(record, "carol", at(40), "wrong rate"))
    assert reversed_.status is EventStatus.REVERSED
    refused(lc.reverse(reversed_, "carol", at(41), "again"), reversed_, Rule.EVENT_NOT_APPLIED)


def test_history_records_every_step() -> None:
    record = ok(lc.reverse(applied(), "carol", at(40), "wrong rate"))
    assert [(e.what, e.who, e.at, e.before, e.after) for e in record.history] == [
        ("announce", "loader", at(0), None, EventStatus.ANNOUNCED),
        ("compute", "ann", at(10), EventStatus.ANNOUNCED, EventStatus.ENTITLEMENTS_COMPUTED),
        ("approve", "bob", at(20), EventStatus.ENTITLEMENTS_COMPUTED, EventStatus.APPROVED),
        ("apply", "eod", at(30), EventStatus.APPROVED, EventStatus.APPLIED),
        ("reverse", "carol", at(40), EventStatus.APPLIED, EventStatus.REVERSED),
    ]
    assert PAYLOAD in record.history[2].detail and record.history[4].detail == "wrong rate"


OPERATIONS: dict[str, Callable[[EventRecord, str, int, str], Result]] = {
    "compute": lambda r, who, t, h: lc.compute(r, who, at(t), h),
    "approve": lambda r, who, t, h: lc.approve(r, who, at(t), h),
    "apply": lambda r, who, t, h: lc.apply(r, who, at(t), h),
    "reverse": lambda r, who, t, h: lc.reverse(r, who, at(t), "reason"),
    "revoke": lambda r, who, t, h: lc.revoke_approval(r, who, at(t), "reason"),
    "withdraw": lambda r, who, t, h: lc.withdraw(r, who, at(t), "reason"),
    "amend": lambda r, who, t, h: lc.amend(r, replace(DIVIDEND, amount=Decimal(t)), KNOWN, who,
                                           at(t)),
    "reference": lambda r, who, t, h: lc.reference_data_arrived(r, KNOWN, who, at(t)),
}


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(st.tuples(st.sampled_from(sorted(OPERATIONS)),
                                         st.sampled_from(["ann", "bob", "Ann"]),
                                         st.sampled_from(["a" * 64, "b" * 64])), max_size=25))
def test_any_sequence_of_steps_keeps_the_rules(known: bool,
                                                steps: list[tuple[str, str, str]]) -> None:
    record = ok(lc.announce(DIVIDEND, KNOWN if known else frozenset(), "loader", at(0)))
    for number, (name, who, payload) in enumerate(steps, start=1):
        before = record
        record, problems = OPERATIONS[name](record, who, number, payload)
        if problems:
            assert record is before  # a refusal changes nothing
        elif record is not before:
            assert record.history[:-1] == before.history
            last = record.history[-1]
            assert (last.who, last.before, last.after) == (who, before.status, record.status)
        if record.status is EventStatus.APPLIED and before.status is not EventStatus.APPLIED:
            assert name == "apply" and before.status is EventStatus.APPROVED
            assert payload == record.approved_payload_hash == record.computed_payload_hash
            assert record.prepared_by.casefold() != record.approved_by.casefold()
    for earlier, later in zip(record.history, record.history[1:], strict=False):
        assert earlier.after == later.before


# --- reversal entries -------------------------------------------------------------------------

BASES = {Phase.POSTED: ("T", "S"), Phase.PENDING: ("T",), Phase.POST: ("S",), Phase.VOID: ("T",)}


def balances(entries: Iterable[Entry]) -> dict[tuple[str, str, str], int]:
    """Σ postings per (basis, GL account, asset); zeros dropped."""
    totals: dict[tuple[str, str, str], int] = {}
    for entry in entries:
        for basis in BASES[entry.phase]:
            for p in entry.postings:
                key = (basis, p.gl_account, p.asset)
                totals[key] = totals.get(key, 0) + p.amount
    return {key: total for key, total in totals.items() if total}


def test_a_split_with_pending_trades_is_reversed_to_nothing() -> None:
    apple = Instrument(AAPL, "AAPL", "Apple", "EQUITY", "USD", "XNAS", "US", 0)
    refdata = RefData(instruments={AAPL: apple}, accounts={"A1": Account(
        "A1", "Ann", AccountKind.CLIENT, "USD", "US", LotMethod.FIFO)})
    split = CorporateAction("AAPL-SPLIT", CaKind.SPLIT, AAPL, D("2020-08-31"), D("2020-08-24"),
                            D("2020-08-28"), ratio_old=Decimal(1), ratio_new=Decimal(4))
    holding = Holding("A1", 100, 0, (PendingTrade("trade:T1", 30), PendingTrade("trade:T2", -10)))
    entries, _ = apply_event(split, holding, refdata)
    settled_pending, voided_pending = (e for e in entries if e.phase is Phase.PENDING)
    journal = [*entries, settle(settled_pending, D("2020-09-01")),
               void(voided_pending, D("2020-09-01"), "trade T2 cancelled")]
    reversal = reversal_entries(journal, D("2020-09-10"), "AAPL-SPLIT", "wrong ratio")
    assert [(e.key, e.phase, e.kind) for e in reversal] == [
        ("reversal:ca:AAPL-SPLIT:A1", Phase.POSTED, EntryKind.CORPORATE_ACTION),
        ("reversal:post:ca:AAPL-SPLIT:A1:trade:T1", Phase.POSTED, EntryKind.TRANSFORMATION)]
    assert all(e.business_date == D("2020-09-10") and "wrong ratio" in e.memo for e in reversal)
    assert balances(journal + reversal) == {}
    # unsettled, the transformation is voided instead: it will not be posted with its trade
    reversal = reversal_entries(entries, D("2020-08-31"), "AAPL-SPLIT")
    assert [(e.key, e.phase, e.target_key) for e in reversal] == [
        ("reversal:ca:AAPL-SPLIT:A1", Phase.POSTED, ""),
        (f"reversal:{settled_pending.key}", Phase.VOID, settled_pending.key),
        (f"reversal:{voided_pending.key}", Phase.VOID, voided_pending.key)]
    assert balances(entries + reversal) == {}


OWNERS = ["client:A1", "client:A2", "house:H1"]
PLACES = {"US0378331005": "depository:DTC", "PLPKO0000016": "depository:KDPW",
          "USD": "bank:USD"}


@st.composite
def postings(draw: st.DrawFn) -> tuple[Posting, ...]:
    moves = draw(st.lists(st.tuples(st.sampled_from(OWNERS), st.sampled_from(sorted(PLACES)),
                                    st.integers(-10**6, 10**6).filter(bool)),
                          min_size=1, max_size=4))
    return tuple(p for owner, asset, amount in moves
                 for p in (Posting(owner, asset, amount), Posting(PLACES[asset], asset, -amount)))


@st.composite
def applied_journals(draw: st.DrawFn) -> list[Entry]:
    """What an event's application left in the journal: POSTED entries, and PENDING
    transformations left open, settled whole or in parts, or voided with their trade."""
    journal: list[Entry] = []
    for number in range(draw(st.integers(1, 8))):
        key = f"ca:EV:{number}"
        day = D("2024-02-09")
        if draw(st.booleans()):
            kind = draw(st.sampled_from([EntryKind.CORPORATE_ACTION,
                                         EntryKind.CORPORATE_ACTION_CASH]))
            journal.append(Entry(key, kind, Phase.POSTED, day, draw(postings()), ref="EV",
                                 account="A1"))
            continue
        pending = Entry(key, EntryKind.TRANSFORMATION, Phase.PENDING, day, draw(postings()),
                        ref="EV", account="A1", linked_key=f"trade:{number}")
        journal.append(pending)
        fate = draw(st.sampled_from(["open", "settled", "parts", "voided"]))
        if fate == "settled":
            journal.append(settle(pending, D("2024-02-12")))
        elif fate == "voided":
            journal.append(void(pending, D("2024-02-12"), "trade cancelled"))
        elif fate == "parts":
            total = draw(st.integers(2, 1000))
            cuts = sorted(set(draw(st.lists(st.integers(1, total), min_size=1, max_size=4))))
            before = 0
            for part, cut in enumerate(cuts, start=1):
                journal.append(settle_part(pending, D("2024-02-12"), before, cut - before,
                                           total, part))
                before = cut
    return journal


@settings(max_examples=400, deadline=None)
@given(applied_journals())
def test_reversal_entries_net_every_account_to_zero(journal: list[Entry]) -> None:
    reversal = reversal_entries(journal, D("2024-03-01"), "EV", "applied to the wrong holdings")
    assert balances(journal + reversal) == {}  # on both bases, every account and asset
    for entry in reversal:
        assert unbalanced_assets(entry) == {}
        assert entry.key.startswith("reversal:") and entry.ref == "EV"
        assert entry.phase in (Phase.POSTED, Phase.VOID)
        assert entry.business_date == D("2024-03-01")
    keys = [entry.key for entry in reversal]
    assert len(keys) == len(set(keys))
    originals = {entry.key for entry in journal}
    assert {key.removeprefix("reversal:") for key in keys} <= originals
    # every transformation still open after the reversal is voided by it
    targeted = {e.target_key for e in journal + reversal if e.phase in (Phase.POST, Phase.VOID)}
    assert all(e.key in targeted for e in journal if e.phase is Phase.PENDING
               and balances([e, *(x for x in journal if x.target_key == e.key)]))


def test_the_entries_of_another_event_are_not_reversed_here() -> None:
    entry = Entry("ca:OTHER:A1", EntryKind.CORPORATE_ACTION, Phase.POSTED, D("2024-02-09"),
                  (Posting("client:A1", AAPL, 1), Posting("depository:DTC", AAPL, -1)),
                  ref="OTHER")
    with pytest.raises(AssertionError):
        reversal_entries([entry], D("2024-03-01"), "EV")
