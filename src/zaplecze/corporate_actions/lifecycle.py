"""The life of one corporate-action event, as a pure state machine, and the announcements
(MT564) that start and change it.

::

    WAITING_FOR_REFERENCE_DATA ──ISIN known──▶ ANNOUNCED ──compute──▶ ENTITLEMENTS_COMPUTED
            ▲                                   ▲  ▲                          │
            └──────────── amend ────────────────┘  └──── amend ───────────────┤
                                                                          approve
                                                                              ▼
    REVERSED ◀──reverse── APPLIED ◀──apply── APPROVED ──revoke_approval──▶ ENTITLEMENTS_COMPUTED
    (any state before APPLIED, and REVERSED) ──withdraw (CANC / WITH)──▶ WITHDRAWN

- ``announce`` starts a record from an ``Announcement`` (read from an MT564) or a
  ``CorporateAction`` (a corporate_actions.csv row). An event whose security (or, for a
  SPINOFF / MERGER, whose new security) is not in the reference data WAITS for it instead of
  failing; ``reference_data_arrived`` moves it on to ANNOUNCED once the ISIN is known. An
  announcement we cannot book (an event type with no ``CaKind``, or terms it does not give)
  is kept, ANNOUNCED with ``terms`` None: an operator sees it and may ``amend`` it with
  complete terms; ``compute`` refuses it until then.
- ``amend`` (a REPL/REPE/RMDR announcement or a corrected CSV row) replaces the terms before
  approval, keeps the old terms in ``versions`` and drops computed entitlements (back to
  ANNOUNCED). Terms that do not change (a reminder, a REPE that only updates eligible
  balances) change nothing but the list of announcements. Different terms after approval are
  refused (AMENDMENT_AFTER_APPROVAL: ``revoke_approval`` first); after application they are
  refused too (EVENT_ALREADY_APPLIED: ``reverse`` first).
- ``compute`` records who prepared the entitlements and the ``payload_hash`` of what they
  were shown; ``approve`` needs another person (FOUR_EYES_REQUIRED; names compared without
  case or surrounding spaces, an unnamed approver refused) and that very payload hash;
  ``apply`` needs the approval and, again, the hash of what is being applied: entitlements
  that changed since they were approved are refused (EVENT_NOT_APPROVED).
- ``reverse`` undoes an APPLIED event (EVENT_NOT_APPLIED otherwise); its ledger side is
  ``reversal_entries``. A REVERSED event may be amended or computed again here (a corrected
  re-run; booking it again would need entry keys other than apply.py's
  ``ca:<event_id>:<account>``, which the journal already holds): the desk
  (services/ca_desk.py) refuses that (EVENT_ALREADY_REVERSED), a corrected event is announced
  under a new reference.
- ``withdraw`` (a CANC or WITH announcement) ends an event that was not applied; an applied one
  must be reversed first (EVENT_ALREADY_APPLIED). ``receive`` routes an announcement to
  ``announce``, ``amend`` or ``withdraw`` by its function.

A refused transition returns the record unchanged with the problem; every transition that
happens appends an ``Event`` (when, who, what, status before and after) to ``history``.

The problem catalogue has no code for "this step does not fit the event's state"; the nearest
code is used and the detail names the state: computing a waiting event is UNKNOWN_INSTRUMENT,
computing a withdrawn one UNKNOWN_EVENT, approving or applying one that is not ready
EVENT_NOT_APPROVED, a missing name or reason MISSING_REQUIRED_VALUE.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from zaplecze.corporate_actions.apply import Entitlement
from zaplecze.corporate_actions.model import (
    CA_COLUMNS,
    CASH_KINDS,
    NEW_ISIN_KINDS,
    RATIO_KINDS,
    CaKind,
    CorporateAction,
)
from zaplecze.kernel.money import is_currency
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.ledger.model import Entry, Phase, Posting, netted

# --- announcements ----------------------------------------------------------------------------


class AnnouncementFunction(StrEnum):
    """:23G: of an MT564."""

    NEW = "NEWM"
    REPLACE = "REPL"
    REPLACE_ELIGIBLE = "REPE"  # a replacement that also gives the eligible balance
    REMINDER = "RMDR"
    CANCEL = "CANC"  # the announcement was sent in error
    WITHDRAWAL = "WITH"  # the issuer withdrew the event


ENDING_FUNCTIONS = frozenset({AnnouncementFunction.CANCEL, AnnouncementFunction.WITHDRAWAL})

# ISO 15022 event types (:22F::CAEV//) booked as one of our kinds; every other one is kept
# with kind None. SPLR (reverse split) is a SPLIT whose ratio is below one.
EVENT_KINDS: Mapping[str, CaKind] = {
    "DVCA": CaKind.CASH_DIVIDEND,
    "SPLF": CaKind.SPLIT,
    "SPLR": CaKind.SPLIT,
    "BONU": CaKind.STOCK_DIVIDEND,
    "DVSE": CaKind.STOCK_DIVIDEND,
}
EVENT_TYPE_NAMES: Mapping[str, str] = {
    "ACTV": "trading status: active", "BIDS": "repurchase offer", "BONU": "bonus issue",
    "BPUT": "put redemption", "CAPD": "capital distribution", "CAPG": "capital gains "
    "distribution", "CHAN": "change", "CONV": "conversion", "DECR": "decrease in value",
    "DRIP": "dividend reinvestment", "DVCA": "cash dividend", "DVOP": "dividend option",
    "DVSC": "scrip dividend", "DVSE": "stock dividend", "EXOF": "exchange", "EXRI": "call on "
    "intermediate securities", "EXWA": "warrant exercise", "INTR": "interest payment",
    "LIQU": "liquidation", "MCAL": "full call", "MEET": "meeting", "MRGR": "merger",
    "OTHR": "other event", "PARI": "pari passu", "PCAL": "partial call", "PRED": "partial "
    "redemption", "REDM": "final maturity", "RHDI": "intermediate securities distribution",
    "RHTS": "rights issue", "SOFF": "spin-off", "SPLF": "stock split", "SPLR": "reverse "
    "split", "TEND": "tender offer",
}


def event_type_name(code: str) -> str:
    return EVENT_TYPE_NAMES.get(code, "an event type")


@dataclass(frozen=True, slots=True)
class Rate:
    """One :92a: rate: 92A (a rate), 92F / 92H (an amount per share in a currency), 92J (a
    typed amount: ``code`` INCO, …), 92B (an exchange rate, ``currency`` 'USD/EUR'), 92K (a
    code alone: UKWN, NILP; ``value`` None). ``status`` is ACTU or INDI (indicative) when given.
    Any other option keeps its text in ``code`` with ``value`` None."""

    qualifier: str  # GRSS, NETT, TAXR, WITF, …
    value: Decimal | None
    currency: str = ""
    code: str = ""
    status: str = ""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A :92D: ratio 'first/second': NEWO new for old (splits, exchanges), ADEX additional for
    existing (bonus issues, stock dividends)."""

    qualifier: str
    first: Decimal
    second: Decimal
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Movement:
    """A securities (SECMOVE) or cash (CASHMOVE) movement of an option."""

    kind: str  # 'SECU' or 'CASH'
    credit: bool | None  # :22H::CRDB//CRED (True) or DEBT (False)
    isin: str = ""  # SECMOVE :35B:
    security_id: str = ""  # the :35B: identification when it is no ISIN
    pay_date: dt.date | None = None
    dates: Mapping[str, dt.date] = field(default_factory=dict)  # every 98a date by qualifier
    rates: tuple[Rate, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    amounts: Mapping[str, tuple[str, Decimal]] = field(default_factory=dict)  # 19B: (ccy, amt)
    quantities: Mapping[str, tuple[str, Decimal]] = field(default_factory=dict)  # 36B: (type, q)


@dataclass(frozen=True, slots=True)
class CaOption:
    """One CAOPTN sequence: :13A::CAON//001, :22F::CAOP//CASH (SECU, CASE, NOAC, LAPS, …)."""

    number: str
    kind: str
    default: bool  # :17B::DFLT//Y
    currency: str = ""  # :11A::OPTN//
    isin: str = ""  # the option's own :35B: (the security it concerns), when an ISIN
    security_id: str = ""
    dates: Mapping[str, dt.date] = field(default_factory=dict)
    rates: tuple[Rate, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    movements: tuple[Movement, ...] = ()
    cash_in_lieu_price: Decimal = Decimal(0)  # :90B::CINL// of the option or its movements
    line: int = field(default=0, compare=False)

    @property
    def pay_date(self) -> dt.date | None:
        """The option's own PAYD, else that of its first credit movement that has one."""
        if "PAYD" in self.dates:
            return self.dates["PAYD"]
        return next((m.pay_date for m in self.movements if m.credit is not False
                     and m.pay_date is not None), None)


@dataclass(frozen=True, slots=True)
class Balance:
    """A :93B: balance of an ACCTINFO sequence (ELIG eligible, SETT settled, UNBA, …)."""

    account: str  # :97a::SAFE
    qualifier: str
    quantity_type: str  # UNIT, FAMT, AMOR
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Announcement:
    """One corporate-action notification (MT564) as read, with the terms it resolves to.

    ``kind`` is our kind when the event type is one we book (``EVENT_KINDS``) and the message
    says how (a mandatory event, the option that pays); else None, the CAEV code kept in
    ``event_type``. ``ex_date`` … ``ratio_old`` are the terms as resolved from the message
    (None when it does not give them); everything else it says is kept in ``dates``, ``rates``,
    ``options``, ``extra`` and, whole, in ``raw``."""

    event_reference: str  # :20C::CORP// the event's official reference
    message_reference: str  # :20C::SEME// this message's
    function: AnnouncementFunction
    event_type: str  # :22F::CAEV//
    kind: CaKind | None
    isin: str  # the underlying security (USECU :35B:); '' when named otherwise
    source: str = ""  # file
    line: int = 0  # the line of the message's '{1:'
    subfunction: str = ""  # :23G:CANC/CODU → 'CODU'
    previous_reference: str = ""  # :20C::PREV// of the linkages
    mandatory: str = ""  # :22F::CAMV// MAND, CHOS, VOLU
    processing_status: str = ""  # :25D::PROC// PREU, PREC, COMP, ENTL
    prepared: dt.datetime | None = None  # :98a::PREP//
    security_id: str = ""  # the :35B: identification when it is no ISIN ('/CUSP/12345B68')
    security_name: str = ""  # the :35B: description lines
    sender: str = ""  # BIC of the account servicer that sent it
    receiver: str = ""
    ex_date: dt.date | None = None  # :98a::XDTE//
    record_date: dt.date | None = None  # :98a::RDTE//
    pay_date: dt.date | None = None  # :98a::PAYD// of CADETL, else of the option booked
    gross_rate: Decimal | None = None  # :92a::GRSS// cash per share
    currency: str = ""  # of the gross rate, else :11A::OPTN// of the option booked
    tax_rate: Decimal | None = None  # :92A::TAXR//
    ratio_new: Decimal | None = None  # :92D::NEWO// (SPLIT) or ADEX (STOCK_DIVIDEND), first
    ratio_old: Decimal | None = None  # … second
    cash_in_lieu_price: Decimal = Decimal(0)  # :90B::CINL// per new share, when given
    option: str = ""  # the number of the option the terms come from
    unsupported: str = ""  # why ``kind`` is None, for an operator
    dates: Mapping[str, dt.date] = field(default_factory=dict)  # every CADETL date
    rates: tuple[Rate, ...] = ()  # CADETL rates
    ratios: tuple[Ratio, ...] = ()  # CADETL ratios
    options: tuple[CaOption, ...] = ()
    balances: tuple[Balance, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)  # other CADETL fields, '98B::XDTE'
    raw: str = field(default="", compare=False)  # the message as received

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def carries_terms(self) -> bool:
        return self.function not in ENDING_FUNCTIONS


def terms_of(announcement: Announcement) -> tuple[CorporateAction | None, list[Problem]]:
    """The event's terms, as a corporate_actions.csv row would give them, or None with the
    problems when the announcement does not give complete, sound terms. An event type we do
    not book gives None and no problem (the reader said so: UNSUPPORTED_EVENT_KIND)."""
    a = announcement
    kind = a.kind
    if kind is None or not a.carries_terms:
        return None, []

    def problem(rule: Rule, detail: str) -> Problem:
        return Problem(rule, f"event {a.event_reference} ({a.event_type}): {detail}", a.source,
                       a.line)

    problems: list[Problem] = []
    missing = [name for name, value in (("the ex date (:98a::XDTE:)", a.ex_date),
                                        ("the record date (:98a::RDTE:)", a.record_date),
                                        ("the pay date (:98a::PAYD:)", a.pay_date))
               if value is None]
    if not a.isin:
        missing.append(f"an ISIN (the security is named {a.security_id or 'otherwise'})")
    if missing:
        problems.append(problem(Rule.MISSING_REQUIRED_VALUE,
                                f"the terms are incomplete, missing {'; '.join(missing)}"))
    fields: dict[str, object] = {}
    if kind in CASH_KINDS:
        if a.gross_rate is None or a.gross_rate <= 0:
            problems.append(problem(Rule.AMOUNT_REQUIRED, f"the gross rate (:92a::GRSS:) is "
                                    f"{a.gross_rate if a.gross_rate is not None else 'missing'}"
                                    ", it must be a positive amount per share"))
        if not is_currency(a.currency):
            problems.append(problem(Rule.INVALID_CURRENCY, f"the currency {a.currency!r} is "
                                    "not an ISO 4217 currency"))
        fields.update(amount=a.gross_rate, currency=a.currency)
    if kind in RATIO_KINDS:
        if a.ratio_new is None or a.ratio_old is None or a.ratio_new <= 0 or a.ratio_old <= 0:
            qualifier = "NEWO" if kind is CaKind.SPLIT else "ADEX"
            problems.append(problem(Rule.INVALID_RATIO, f"the ratio (:92D::{qualifier}:) is "
                                    f"{a.ratio_new}/{a.ratio_old}; both must be positive"))
        fields.update(ratio_new=a.ratio_new, ratio_old=a.ratio_old,
                      fraction_price=a.cash_in_lieu_price)
    for name, day in (("ex date", a.ex_date), ("pay date", a.pay_date)):
        if day is not None and day.weekday() >= 5:
            problems.append(problem(Rule.NOT_A_BUSINESS_DAY, f"the {name} {day} is a {day:%A}"))
    if a.ex_date is not None and a.record_date is not None \
            and abs((a.record_date - a.ex_date).days) > PLAUSIBLE_EX_RECORD_GAP_DAYS:
        problems.append(problem(Rule.DATES_OUT_OF_ORDER, f"the ex date {a.ex_date} and the "
                                f"record date {a.record_date} are more than "
                                f"{PLAUSIBLE_EX_RECORD_GAP_DAYS} days apart: a typing error?"))
    if problems:
        return None, problems
    assert a.ex_date is not None and a.record_date is not None and a.pay_date is not None
    terms = CorporateAction(event_id=a.event_reference, kind=kind, isin=a.isin,
                            ex_date=a.ex_date, record_date=a.record_date, pay_date=a.pay_date,
                            **fields)  # type: ignore[arg-type]
    return replace(terms, content_hash=terms_hash(terms)), []


# Ex and record dates lie a settlement cycle apart; weeks apart is a typing error.
PLAUSIBLE_EX_RECORD_GAP_DAYS = 31


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return "0" if value == 0 else format(value.normalize(), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def terms_hash(terms: CorporateAction) -> str:
    """A fingerprint of the terms (the corporate_actions.csv columns, numbers canonical)."""
    text = "\x1f".join(_text(getattr(terms, column)) for column in CA_COLUMNS)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def same_terms(a: CorporateAction | None, b: CorporateAction | None) -> bool:
    """Whether two versions of the terms book the same (their fingerprint aside)."""
    if a is None or b is None:
        return a is b
    return replace(a, content_hash="") == replace(b, content_hash="")


# --- the event record -------------------------------------------------------------------------


class EventStatus(StrEnum):
    WAITING_FOR_REFERENCE_DATA = "WAITING_FOR_REFERENCE_DATA"
    ANNOUNCED = "ANNOUNCED"
    ENTITLEMENTS_COMPUTED = "ENTITLEMENTS_COMPUTED"
    APPROVED = "APPROVED"
    APPLIED = "APPLIED"
    REVERSED = "REVERSED"
    WITHDRAWN = "WITHDRAWN"


@dataclass(frozen=True, slots=True)
class Event:
    """One step of an event's life."""

    at: dt.datetime
    who: str
    what: str  # announce, amend, reference_data, compute, approve, revoke_approval, apply, …
    before: EventStatus | None  # None for the first step
    after: EventStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EventRecord:
    event_id: str  # the CORP reference of an announcement, the event_id of a CSV row
    kind: CaKind | None  # None: an event type we do not book (see event_type)
    terms: CorporateAction | None  # None: not bookable as it stands (an operator amends it)
    status: EventStatus
    event_type: str = ""  # the CAEV code ('DVCA') or, for a CSV row, the kind
    isin: str = ""  # the security the event is on ('' when announced without an ISIN)
    announcements: tuple[str, ...] = ()  # SEMEs of the MT564s (or 'csv:<hash>') received
    prepared_by: str = ""
    computed_payload_hash: str = ""
    approved_by: str = ""
    approved_payload_hash: str = ""
    versions: tuple[CorporateAction, ...] = ()  # the terms it had before, oldest first
    history: tuple[Event, ...] = ()


_Source = Announcement | CorporateAction


@dataclass(frozen=True, slots=True)
class _Read:
    """What an announcement or a CSV row says about the event."""

    event_id: str
    kind: CaKind | None
    event_type: str
    isin: str
    terms: CorporateAction | None
    reference: str
    detail: str
    problems: list[Problem]


def _read(source: _Source) -> _Read:
    if isinstance(source, CorporateAction):
        reference = f"csv:{source.content_hash}" if source.content_hash else "csv"
        return _Read(source.event_id, source.kind, source.kind.value, source.isin, source,
                     reference, f"{source.kind.value} {source.isin} from corporate_actions.csv",
                     [])
    terms, problems = terms_of(source)
    why = f" ({source.unsupported})" if source.kind is None and source.unsupported else ""
    detail = (f"{source.function.value} {source.message_reference}: {source.event_type}"
              f"{why} {source.isin or source.security_id} from {source.where}")
    return _Read(source.event_reference, source.kind, source.event_type, source.isin, terms,
                 source.message_reference, detail, problems)


def _missing_isins(isin: str, terms: CorporateAction | None,
                   known_isins: Collection[str]) -> list[str]:
    missing = [] if isin and isin in known_isins else [isin or "(no ISIN)"]
    if terms is not None and terms.kind in NEW_ISIN_KINDS and terms.new_isin not in known_isins:
        missing.append(terms.new_isin)
    return missing


def _step(record: EventRecord, who: str, at: dt.datetime, what: str, after: EventStatus,
          detail: str = "", **changes: object) -> EventRecord:
    event = Event(at, who, what, record.status, after, detail)
    return replace(record, status=after, history=(*record.history, event),
                   **changes)  # type: ignore[arg-type]


def _refuse(record: EventRecord, rule: Rule, detail: str) -> tuple[EventRecord, list[Problem]]:
    return record, [Problem(rule, f"event {record.event_id}: {detail}")]


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _with_reference(references: tuple[str, ...], reference: str) -> tuple[str, ...]:
    return references if reference in references else (*references, reference)


def announce(source: _Source, known_isins: Collection[str], who: str,
             at: dt.datetime) -> tuple[EventRecord, list[Problem]]:
    """A new event record from an announcement or a CSV row: ANNOUNCED, or WAITING for
    reference data when its security is unknown, or WITHDRAWN at once when the announcement
    is a CANC / WITH of an event we never had (kept, with UNKNOWN_EVENT, for an operator).
    The problems say why the terms are incomplete, if they are; the record is kept anyway."""
    read = _read(source)
    problems = list(read.problems)
    record = EventRecord(event_id=read.event_id, kind=read.kind, terms=read.terms,
                         status=EventStatus.ANNOUNCED, event_type=read.event_type,
                         isin=read.isin, announcements=(read.reference,))
    if isinstance(source, Announcement) and not source.carries_terms:
        problems.append(Problem(Rule.UNKNOWN_EVENT, f"event {read.event_id}: "
                                f"{source.function.value} of an event never announced to us",
                                source.source, source.line))
        status = EventStatus.WITHDRAWN
    else:
        status = (EventStatus.WAITING_FOR_REFERENCE_DATA
                  if _missing_isins(read.isin, read.terms, known_isins)
                  else EventStatus.ANNOUNCED)
    first = Event(at, who, "announce", None, status, read.detail)
    return replace(record, status=status, history=(first,)), problems


def reference_data_arrived(record: EventRecord, known_isins: Collection[str], who: str,
                           at: dt.datetime) -> tuple[EventRecord, list[Problem]]:
    """A waiting event moves to ANNOUNCED once its securities are known; one still waiting
    says which ISIN it waits for. Events in any other state are left as they are."""
    if record.status is not EventStatus.WAITING_FOR_REFERENCE_DATA:
        return record, []
    missing = _missing_isins(record.isin, record.terms, known_isins)
    if missing:
        return _refuse(record, Rule.UNKNOWN_INSTRUMENT,
                       f"still waits for reference data of {', '.join(missing)}")
    return _step(record, who, at, "reference_data", EventStatus.ANNOUNCED,
                 f"{record.isin} is known"), []


def amend(record: EventRecord, new: _Source, known_isins: Collection[str], who: str,
          at: dt.datetime) -> tuple[EventRecord, list[Problem]]:
    """New terms for the event (a REPL / REPE / RMDR / NEWM announcement, a corrected CSV row).
    Before approval they replace the terms (the old kept in ``versions``) and drop computed
    entitlements: the event is ANNOUNCED again (or WAITING when its security is unknown). The
    same terms again change nothing but the list of announcements."""
    assert not isinstance(new, Announcement) or new.carries_terms, "CANC/WITH: use withdraw"
    read = _read(new)
    if read.event_id != record.event_id:
        return _refuse(record, Rule.UNKNOWN_EVENT, f"an amendment for event {read.event_id}")
    unchanged = (same_terms(read.terms, record.terms) and read.kind == record.kind
                 and read.event_type == record.event_type and read.isin == record.isin)
    references = _with_reference(record.announcements, read.reference)
    if unchanged and record.status is not EventStatus.WITHDRAWN:
        if references == record.announcements:
            return record, []
        return _step(record, who, at, "amend", record.status,
                     f"{read.detail}: terms unchanged", announcements=references), read.problems
    if record.status is EventStatus.APPROVED:
        return _refuse(record, Rule.AMENDMENT_AFTER_APPROVAL,
                       f"approved by {record.approved_by}; revoke the approval before amending "
                       f"it ({read.detail})")
    if record.status is EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_ALREADY_APPLIED,
                       f"applied; reverse it before amending it ({read.detail})")
    status = (EventStatus.WAITING_FOR_REFERENCE_DATA
              if _missing_isins(read.isin, read.terms, known_isins) else EventStatus.ANNOUNCED)
    versions = record.versions if record.terms is None or same_terms(read.terms, record.terms) \
        else (*record.versions, record.terms)
    dropped = " (computed entitlements dropped)" \
        if record.status is EventStatus.ENTITLEMENTS_COMPUTED else ""
    return _step(record, who, at, "amend", status, f"{read.detail}{dropped}",
                 kind=read.kind, event_type=read.event_type, isin=read.isin, terms=read.terms,
                 announcements=references, versions=versions, prepared_by="",
                 computed_payload_hash="", approved_by="",
                 approved_payload_hash=""), read.problems


def compute(record: EventRecord, who: str, at: dt.datetime,
            payload_hash: str) -> tuple[EventRecord, list[Problem]]:
    """``who`` computed the entitlements and was shown them: ``payload_hash`` is theirs."""
    if not who.strip():
        return _refuse(record, Rule.MISSING_REQUIRED_VALUE, "who computed it is not named")
    status = record.status
    if status is EventStatus.WAITING_FOR_REFERENCE_DATA:
        return _refuse(record, Rule.UNKNOWN_INSTRUMENT,
                       f"waits for reference data of {record.isin or 'its security'}")
    if status is EventStatus.WITHDRAWN:
        return _refuse(record, Rule.UNKNOWN_EVENT, "withdrawn: there is nothing to compute")
    if status is EventStatus.APPROVED:
        return _refuse(record, Rule.AMENDMENT_AFTER_APPROVAL,
                       f"approved by {record.approved_by}; revoke the approval before "
                       "computing it again")
    if status is EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_ALREADY_APPLIED, "applied; reverse it first")
    if record.terms is None:
        if record.kind is None:
            return _refuse(record, Rule.UNSUPPORTED_EVENT_KIND,
                           f"{record.event_type} ({event_type_name(record.event_type)}) is not "
                           "an event kind we book; amend it with terms of one we do")
        return _refuse(record, Rule.MISSING_REQUIRED_VALUE,
                       "the announcement does not give complete terms; amend it with them")
    assert len(payload_hash) == 64, "payload_hash() of the entitlements computed"
    return _step(record, who, at, "compute", EventStatus.ENTITLEMENTS_COMPUTED,
                 f"payload {payload_hash}", prepared_by=who,
                 computed_payload_hash=payload_hash), []


def approve(record: EventRecord, who: str, at: dt.datetime,
            payload_hash: str) -> tuple[EventRecord, list[Problem]]:
    """``who`` approves the entitlements whose hash is ``payload_hash``: someone other than
    who computed them, and exactly the payload computed."""
    status = record.status
    if status is EventStatus.APPROVED and payload_hash == record.approved_payload_hash:
        return record, []  # approved already, this very payload
    if status is EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_ALREADY_APPLIED, "applied already")
    if status is not EventStatus.ENTITLEMENTS_COMPUTED:
        return _refuse(record, Rule.EVENT_NOT_APPROVED,
                       f"approval refused: it is {status.value}, not ENTITLEMENTS_COMPUTED")
    if not who.strip():
        return _refuse(record, Rule.FOUR_EYES_REQUIRED, "an approval needs a named approver")
    if _same_person(who, record.prepared_by):
        return _refuse(record, Rule.FOUR_EYES_REQUIRED,
                       f"{who} computed the entitlements and cannot approve them too")
    if payload_hash != record.computed_payload_hash:
        return _refuse(record, Rule.EVENT_NOT_APPROVED,
                       f"approval refused: the entitlements shown (payload {payload_hash}) are "
                       f"not those computed by {record.prepared_by} (payload "
                       f"{record.computed_payload_hash}); compute them again")
    return _step(record, who, at, "approve", EventStatus.APPROVED, f"payload {payload_hash}",
                 approved_by=who, approved_payload_hash=payload_hash), []


def revoke_approval(record: EventRecord, who: str, at: dt.datetime,
                    reason: str) -> tuple[EventRecord, list[Problem]]:
    """An approval taken back before application: ENTITLEMENTS_COMPUTED again."""
    if record.status is not EventStatus.APPROVED:
        return _refuse(record, Rule.EVENT_NOT_APPROVED,
                       f"no approval to revoke: it is {record.status.value}")
    return _step(record, who, at, "revoke_approval", EventStatus.ENTITLEMENTS_COMPUTED,
                 reason, approved_by="", approved_payload_hash=""), []


def apply(record: EventRecord, who: str, at: dt.datetime,
          payload_hash: str) -> tuple[EventRecord, list[Problem]]:
    """The approved event is booked: ``payload_hash`` is that of the entitlements being
    booked, which must be the ones approved."""
    if record.status is EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_ALREADY_APPLIED,
                       f"applied already ({record.history[-1].at:%Y-%m-%d %H:%M})")
    if record.status is not EventStatus.APPROVED:
        return _refuse(record, Rule.EVENT_NOT_APPROVED,
                       f"it is {record.status.value}: only an approved event is applied")
    if payload_hash != record.approved_payload_hash:
        return _refuse(record, Rule.EVENT_NOT_APPROVED,
                       f"the entitlements to book (payload {payload_hash}) are not those "
                       f"{record.approved_by} approved (payload {record.approved_payload_hash})"
                       "; they changed since: revoke the approval and compute them again")
    return _step(record, who, at, "apply", EventStatus.APPLIED, f"payload {payload_hash}"), []


def reverse(record: EventRecord, who: str, at: dt.datetime,
            reason: str) -> tuple[EventRecord, list[Problem]]:
    """An applied event undone (its entries: ``reversal_entries``)."""
    if record.status is not EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_NOT_APPLIED,
                       f"it is {record.status.value}: only an applied event is reversed")
    if not reason.strip():
        return _refuse(record, Rule.MISSING_REQUIRED_VALUE, "a reversal needs a reason")
    return _step(record, who, at, "reverse", EventStatus.REVERSED, reason), []


def withdraw(record: EventRecord, who: str, at: dt.datetime, reason: str,
             announcement: Announcement | None = None) -> tuple[EventRecord, list[Problem]]:
    """The event is off (a CANC or WITH announcement, or an operator): WITHDRAWN unless it was
    applied (reverse it first)."""
    reference = announcement.message_reference if announcement is not None else ""
    references = _with_reference(record.announcements, reference) if reference \
        else record.announcements
    if record.status is EventStatus.APPLIED:
        return _refuse(record, Rule.EVENT_ALREADY_APPLIED,
                       f"applied; reverse it before withdrawing it ({reason})")
    if record.status is EventStatus.WITHDRAWN:
        if references == record.announcements:
            return record, []
        return _step(record, who, at, "withdraw", record.status, f"{reason} (again)",
                     announcements=references), []
    return _step(record, who, at, "withdraw", EventStatus.WITHDRAWN, reason,
                 announcements=references, approved_by="", approved_payload_hash=""), []


def receive(record: EventRecord | None, announcement: Announcement,
            known_isins: Collection[str], who: str,
            at: dt.datetime) -> tuple[EventRecord, list[Problem]]:
    """An MT564 for the event ``record`` (None: not seen before), routed by its function:
    the first one announces it, NEWM / REPL / REPE / RMDR amend it, CANC / WITH withdraw it.
    The same message (its SEME) twice changes nothing."""
    if record is None:
        return announce(announcement, known_isins, who, at)
    if announcement.event_reference != record.event_id:
        return _refuse(record, Rule.UNKNOWN_EVENT,
                       f"{announcement.where} is about event {announcement.event_reference}")
    if announcement.message_reference in record.announcements:
        return record, []
    if not announcement.carries_terms:
        return withdraw(record, who, at, f"{announcement.function.value} "
                        f"{announcement.message_reference} from {announcement.where}",
                        announcement)
    return amend(record, announcement, known_isins, who, at)


# --- what is approved, and what undoes an application -----------------------------------------


def payload_hash(entitlements: Iterable[Entitlement]) -> str:
    """sha256 of a canonical text of the entitlements (per account: kind, security,
    quantities, amounts, currency, dates; numbers without trailing zeros; in sorted order), so
    an approval binds to exactly what was shown, whatever the order it was listed in."""
    lines = sorted("\x1f".join((
        e.event_id, e.account, e.kind.value, e.isin, _text(e.quantity), _text(e.new_quantity),
        _text(e.gross), _text(e.withholding), _text(e.net), e.currency, _text(e.pay_date),
        _text(e.cash_date))) for e in entitlements)
    return hashlib.sha256("\x1e".join(lines).encode()).hexdigest()


def _negated(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    return tuple(Posting(p.gl_account, p.asset, -p.amount) for p in postings)


def reversal_entries(applied_entries: Sequence[Entry], at: dt.date, event_id: str,
                     reason: str = "") -> list[Entry]:
    """The entries that undo an applied event, dated ``at``: after them every account holds
    on both bases exactly what it held without the event's entries.

    ``applied_entries`` are all the journal's entries of the event (``ref`` = event_id): the
    ex-date entries, the pay-date cash, and what became of each pending transformation since
    (its POST parts when its trade settled, its VOID when the trade was cancelled). Each
    reversal is keyed ``reversal:<key of what it reverses>``, keeps that entry's kind, account
    and ref, and names the reason in its memo:

    - a POSTED entry (securities, cash): a POSTED entry with every posting negated;
    - a POST (a pending transformation settled, in whole or in part): a POSTED entry with its
      postings negated — that undoes it on the settlement basis and that much of the
      transformation on the trade basis;
    - a PENDING transformation: a VOID of it (trade basis) for what still counts there beyond
      its POST parts, i.e. its postings plus any VOID's less its POST parts. Unsettled, that is
      the whole transformation, and the VOID also keeps it from being posted when its trade
      settles later (the trade then settles unchanged); settled in full, or voided with its
      cancelled trade, nothing remains and no entry is made.
    """
    day = at.date() if isinstance(at, dt.datetime) else at
    assert all(e.ref == event_id for e in applied_entries), "only the event's own entries"
    assert not any(e.key.startswith("reversal:") for e in applied_entries), "reversed already"
    pending = {e.key: e for e in applied_entries if e.phase is Phase.PENDING}
    follow_ups: dict[str, list[Entry]] = {}
    for e in applied_entries:
        if e.phase in (Phase.POST, Phase.VOID):
            assert e.target_key in pending, f"{e.key} acts on {e.target_key}, not given"
            follow_ups.setdefault(e.target_key, []).append(e)
    memo_reason = f": {reason}" if reason else ""

    def reversal(of: Entry, kind_of: Entry, phase: Phase, postings: tuple[Posting, ...],
                 target: str = "") -> Entry:
        return Entry(key=f"reversal:{of.key}", kind=kind_of.kind, phase=phase,
                     business_date=day, postings=postings, ref=event_id, account=of.account,
                     target_key=target, linked_key=kind_of.linked_key,
                     memo=f"reversal of {of.key} (event {event_id}){memo_reason}")

    result: list[Entry] = []
    for e in applied_entries:
        if e.phase is Phase.POSTED:
            result.append(reversal(e, e, Phase.POSTED, _negated(e.postings)))
        elif e.phase is Phase.POST:
            result.append(reversal(e, pending[e.target_key], Phase.POSTED, _negated(e.postings)))
        elif e.phase is Phase.PENDING:
            counted = list(e.postings)
            for later in follow_ups.get(e.key, ()):
                counted += later.postings if later.phase is Phase.VOID \
                    else _negated(later.postings)
            remaining = netted(counted)
            if remaining:
                result.append(reversal(e, e, Phase.VOID, _negated(remaining), target=e.key))
    return result
