"""SWIFT MT564 corporate-action notifications in: ``read_mt564``.

An MT564 announces one event of one security to one safekeeping account: A GENL (the event's
official reference :20C::CORP//, this message's :20C::SEME//, the function :23G: NEWM, REPL,
REPE, RMDR, CANC or WITH with an optional subfunction, the event type :22F::CAEV//, mandatory
or voluntary :22F::CAMV//, the preparation date, the processing status :25D::PROC//, A1 LINK
with :20C::PREV//), B USECU (the underlying :35B:, B2 ACCTINFO with the account and its
:93B: balances), C INTSEC, D CADETL (the event's dates :98a:, rates :92a:, prices :90a:,
flags), E CAOPTN (each option: :13A::CAON//, :22F::CAOP// CASH, SECU…, the default flag, the
currency :11A::OPTN//, its own dates and rates, E1 SECMOVE and E2 CASHMOVE movements with their
pay dates, rates, ratios and amounts) and F ADDINFO. The reader is built on
``swift_mt.parse_fin`` (framing, sequences, qualified fields).

What an ``Announcement`` (``corporate_actions.lifecycle``) resolves
------------------------------------------------------------------
- ``kind``: DVCA → CASH_DIVIDEND (from its CASH option), SPLF and SPLR (reverse split) →
  SPLIT (ratio :92D::NEWO// new for old), BONU (bonus issue) and DVSE (stock dividend) →
  STOCK_DIVIDEND (ratio :92D::ADEX// additional for existing, of the same ISIN); and only when
  the event is mandatory (CAMV MAND or not given) and the option that pays can be told (the
  one CASH option for a dividend, the one SECU option for the others, the default among
  several, or no options at all). Everything else — another event type, a choice or
  voluntary event, no paying option, a split or bonus delivering another ISIN — is kind None,
  the CAEV code kept in ``event_type`` and the reason in ``unsupported``; the announcement is
  KEPT (an operator decides) and an ``unsupported_event_kind`` problem says so.
- The ex date :98a::XDTE// and record date :98a::RDTE// of CADETL (else of the option used),
  the pay date :98a::PAYD// of CADETL, else of the option, else of its first credit movement.
  A date given as a code (:98B::XDTE//UKWN) is None, the code kept in ``extra['98B::XDTE']``.
- The gross rate :92a::GRSS//: a rate (92A), an amount per share (92F, 92H), searched in the
  option used, then its cash movements, then CADETL; rates typed by a rate type code (92J
  INCO, …) are parts of a rate, kept but not taken for the whole. Two different rates at the
  same place: ``invalid_rate``, no rate taken. The currency is the rate's, else
  :11A::OPTN//. The tax rate is :92A::TAXR// found the same way.
- The ratio, searched in the option's securities movements, the option, then CADETL; a bonus
  issue or stock dividend that gives only NEWO (new for old) gets no ratio and an
  ``invalid_ratio`` problem: whether '1,/2,' means one more per two or two becoming one is an
  operator's call, not ours. The cash-in-lieu price :90B::CINL// becomes the fraction price.
- Every other CADETL field is kept in ``extra`` ('98a::ANOU' → '2020-10-29', '22F::DIVI' →
  'REGR'), every option in ``options``, the eligible and other balances in ``balances``, and
  the message as received in ``raw``.

Problems (located: the file and the physical line) and what becomes of the message:

- Damaged framing (``parse_fin``): ``mt_malformed``, the message is not read. An empty file is
  ``mt_malformed`` at line 1. Another message type: ``unsupported_message_type``. Service
  messages (ACK/NAK) are skipped.
- An input header without its receiver (``{2:I564N}``, as in one shared sample) is framed all
  the same: ``mt_malformed`` at its line, the announcement read and kept with no receiver.
- No GENL or USECU sequence, no CORP, SEME, 23G, CAEV or :35B:: ``mt_missing_sequence`` /
  ``mt_missing_field``, the message is not read (there is no event to keep). A function we do
  not know: ``invalid_enum_value``, not read.
- A broken value (a date, a number, an ISIN of the wrong shape, a rate of the wrong shape)
  is a problem for that value alone (``invalid_date``, ``invalid_number``, ``invalid_isin``,
  ``mt_malformed``): the value is left out (kept as text in ``extra`` for CADETL), the
  announcement is kept. An event whose terms lack a value cannot be booked until an operator
  amends it (``lifecycle.terms_of`` says what is missing).
- ``unsupported_event_kind`` and ``invalid_rate`` / ``invalid_ratio`` are information about a
  kept announcement.

A problem therefore does not by itself mean a message was dropped: the announcements returned
are those read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal

from zaplecze.corporate_actions.lifecycle import (
    EVENT_KINDS,
    Announcement,
    AnnouncementFunction,
    Balance,
    CaOption,
    Movement,
    Rate,
    Ratio,
    event_type_name,
)
from zaplecze.corporate_actions.model import CaKind
from zaplecze.formats.swift_mt import (
    Field,
    FinMessage,
    Sequence,
    parse_fin,
    parse_swift_decimal,
)
from zaplecze.kernel.problems import Problem, Rule

__all__ = ["read_mt564"]

# An input header with no receiver: 'I564' and at most the priority and delivery monitoring.
_NO_RECEIVER = re.compile(r"\{2:I564([SNU]?(?:[123](?:[0-9]{3})?)?)\}")
# Twelve digits: framing needs a 12-character address, and no BIC begins with a digit.
_PLACEHOLDER = "000000000000"
_ISIN_SHAPE = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_CURRENCY = r"([A-Z]{3})"
_NUMBER = r"([0-9]+,[0-9]*)"


class _Rejected(Exception):
    def __init__(self, rule: Rule, detail: str, line: int) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.line = line


def read_mt564(text: str, source: str) -> tuple[list[Announcement], list[Problem]]:
    """The corporate-action announcements (MT564) of ``text``, and the problems, in the order
    of the file."""
    if not text.strip():
        return [], [Problem(Rule.MT_MALFORMED, "the file is empty: no MT564 in it", source, 1)]
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    framed, problems = _fill_missing_receivers(text, source)
    messages, framing = parse_fin(framed, source)
    problems += framing
    announcements: list[Announcement] = []
    lines = [0, *(match.end() for match in re.finditer("\n", text))]
    cursor = 0
    for message in messages:
        raw, cursor = _raw(text, lines, message, cursor)
        if not message.is_user_message:
            continue
        if message.message_type != "564":
            problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                    f"MT{message.message_type} is not read here; this reader "
                                    "takes MT564 (corporate action notification)", source,
                                    message.line))
            continue
        found: list[Problem] = []
        try:
            announcements.append(_announcement(message, raw, found))
        except _Rejected as rejected:
            found.append(Problem(rejected.rule, f"MT564: {rejected.detail}", source,
                                 rejected.line))
        problems += found
    problems.sort(key=lambda problem: problem.line or 0)
    return announcements, problems


def _fill_missing_receivers(text: str, source: str) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []

    def fill(match: re.Match[str]) -> str:
        problems.append(Problem(
            Rule.MT_MALFORMED, f"block 2 {match.group(0)[3:-1]!r} has no receiver address (an "
            "input header is I, the type and the receiver's 12-character address); the "
            "message is read without it", source, text.count("\n", 0, match.start()) + 1))
        return f"{{2:I564{_PLACEHOLDER}{match.group(1)}}}"

    return _NO_RECEIVER.sub(fill, text), problems


def _raw(text: str, lines: list[int], message: FinMessage, cursor: int) -> tuple[str, int]:
    """The message as received: from its '{1:' (on its line, past the messages before it) to
    the next '{1:'. ``lines`` are the offsets where the lines of ``text`` start."""
    start = text.find("{1:" + message.basic_header, max(cursor, lines[message.line - 1]))
    if start < 0:
        return "", cursor
    end = text.find("{1:", start + 3)
    return text[start:end if end >= 0 else len(text)].strip(), start + 3


# --- one message ------------------------------------------------------------------------------


def _needed(sequence: Sequence, tag: str, qualifier: str, what: str) -> Field:
    found = sequence.first(tag, qualifier)
    if found is None or not found.value.strip():
        name = f":{tag}::{qualifier}:" if qualifier else f":{tag}:"
        state = "is missing" if found is None else "is empty"
        raise _Rejected(Rule.MT_MISSING_FIELD,
                        f"{what} ({name} in {sequence.name or 'the body'}) {state}",
                        found.line if found is not None else sequence.line)
    return found


def _sequence(message: FinMessage, name: str, what: str) -> Sequence:
    found = message.body.find(name)
    if not found:
        raise _Rejected(Rule.MT_MISSING_SEQUENCE, f"no sequence {name} ({what})", message.line)
    return found[0]


def _announcement(message: FinMessage, raw: str, problems: list[Problem]) -> Announcement:
    source = message.source
    genl = _sequence(message, "GENL", "general information")
    usecu = _sequence(message, "USECU", "the underlying securities")
    corp = _needed(genl, "20C", "CORP", "the event reference")
    seme = _needed(genl, "20C", "SEME", "the message reference")
    function_field = _needed(genl, "23G", "", "the function")
    caev = _needed(genl, "22F", "CAEV", "the event type")
    security = _needed(usecu, "35B", "", "the underlying security")
    code, _, subfunction = function_field.value.partition("/")
    try:
        function = AnnouncementFunction(code)
    except ValueError:
        allowed = ", ".join(member.value for member in AnnouncementFunction)
        raise _Rejected(Rule.INVALID_ENUM_VALUE, f":23G:{function_field.value} is not a function "
                                                 f"of an MT564 ({allowed})",
                        function_field.line) from None
    reader = _Reader(source, problems)
    isin, security_id, name = reader.security(security)
    event_type = f"{caev.issuer}/{caev.value}" if caev.issuer else caev.value
    camv = genl.first("22F", "CAMV")
    mandatory = camv.value if camv is not None else ""
    prep = genl.first("98a", "PREP")
    process = genl.first("25D", "PROC")
    previous = next((f.value for link in genl.find("LINK") for f in link.every("20C", "PREV")),
                    "")
    cadetl = message.body.find("CADETL")
    dates, rates, ratios, extra = reader.details(cadetl[0] if cadetl else None)
    options = tuple(reader.option(sequence) for sequence in message.body.find("CAOPTN"))
    kind, option, unsupported = _kind(event_type, mandatory, isin, options)
    shown = option or _shown_option(options)
    ratio = reader.ratio(kind, event_type, shown, ratios)
    gross = reader.rate("GRSS", shown, rates)
    tax = reader.rate("TAXR", shown, rates)
    if kind is None:
        problems.append(Problem(Rule.UNSUPPORTED_EVENT_KIND,
                                f"MT564 {seme.value}: event {corp.value} {unsupported}; the "
                                "announcement is kept for an operator", source, caev.line))
    receiver = message.receiver_bic
    return Announcement(
        event_reference=corp.value, message_reference=seme.value, function=function,
        event_type=event_type, kind=kind, isin=isin, source=source, line=message.line,
        subfunction=subfunction, previous_reference=previous, mandatory=mandatory,
        processing_status=process.value if process is not None else "",
        prepared=reader.moment(prep) if prep is not None else None,
        security_id=security_id, security_name=name, sender=message.sender_bic,
        receiver="" if receiver.startswith(_PLACEHOLDER[:8]) else receiver,
        ex_date=dates.get("XDTE") or (shown.dates.get("XDTE") if shown else None),
        record_date=dates.get("RDTE") or (shown.dates.get("RDTE") if shown else None),
        pay_date=dates.get("PAYD") or (shown.pay_date if shown else None),
        gross_rate=gross.value if gross is not None else None,
        currency=(gross.currency if gross is not None and gross.currency
                  else shown.currency if shown else ""),
        tax_rate=tax.value if tax is not None else None,
        ratio_new=ratio.first if ratio is not None else None,
        ratio_old=ratio.second if ratio is not None else None,
        cash_in_lieu_price=reader.cash_in_lieu(shown),
        option=shown.number if shown else "", unsupported=unsupported, dates=dates,
        rates=tuple(rates), ratios=tuple(ratios), options=options,
        balances=tuple(reader.balances(usecu)), extra=extra, raw=raw)


def _kind(event_type: str, mandatory: str, isin: str, options: tuple[CaOption, ...],
          ) -> tuple[CaKind | None, CaOption | None, str]:
    """Our kind of the event, the option that pays it, or why there is none."""
    named = f"{event_type} ({event_type_name(event_type)})"
    kind = EVENT_KINDS.get(event_type)
    if kind is None:
        return None, None, f"is {named}, not an event kind we book"
    if mandatory not in ("", "MAND"):
        return None, None, (f"is {named} with CAMV {mandatory}: an event with a choice needs "
                            "elections, which we do not take")
    wanted = "CASH" if kind is CaKind.CASH_DIVIDEND else "SECU"
    candidates = [option for option in options if option.kind == wanted]
    if options and not candidates:
        return None, None, f"is {named} without a {wanted} option"
    option = candidates[0] if candidates else None
    if len(candidates) > 1:
        defaults = [option for option in candidates if option.default]
        if len(defaults) != 1:
            return None, None, (f"is {named} with {len(candidates)} {wanted} options and no "
                                "single default")
        option = defaults[0]
    if kind is not CaKind.CASH_DIVIDEND and option is not None:
        delivered = {movement.isin for movement in option.movements
                     if movement.kind == "SECU" and movement.credit is not False
                     and movement.isin}
        other = sorted(delivered - {isin})
        if other:
            underlying = isin or "the underlying"
            return None, None, (f"is {named} delivering {', '.join(other)}, not {underlying}: "
                                f"it is no {kind.value} of the same security")
    return kind, option, ""


def _shown_option(options: tuple[CaOption, ...]) -> CaOption | None:
    """The option whose terms an unsupported event shows: the default, else the only one."""
    defaults = [option for option in options if option.default]
    if len(defaults) == 1:
        return defaults[0]
    return options[0] if len(options) == 1 else None


class _Reader:
    """Reads values of one message; a broken value becomes a problem and is left out."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems

    def problem(self, rule: Rule, f: Field, detail: str) -> None:
        self.problems.append(Problem(rule, f"MT564: :{f.tag}:{f.text.partition(chr(10))[0]} "
                                           f"{detail}", self.source, f.line))

    # -- securities, numbers, dates ----------------------------------------------------------

    def security(self, f: Field) -> tuple[str, str, str]:
        """(ISIN, other identification, description) of a :35B:."""
        first, _, rest = f.text.partition("\n")
        name = " ".join(line.strip() for line in rest.split("\n") if line.strip())
        if not first.startswith("ISIN "):
            return "", first.strip(), name
        isin = first.removeprefix("ISIN ").strip()
        if not _ISIN_SHAPE.fullmatch(isin):
            self.problem(Rule.INVALID_ISIN, f, "is not an ISIN (2 letters, 9 letters or digits "
                                               "and a check digit); kept as its identification")
            return "", first.strip(), name
        return isin, "", name

    def number(self, f: Field, text: str, *, signed: bool = False) -> Decimal | None:
        negative = signed and text.startswith("N")
        try:
            value = parse_swift_decimal(text[1:] if negative else text)
        except ValueError:
            self.problem(Rule.INVALID_NUMBER, f, f"has {text!r}, not a SWIFT number (digits "
                                                 "and a decimal comma: 1000, or 12,5)")
            return None
        return -value if negative else value

    def moment(self, f: Field) -> dt.datetime | None:
        """A 98A date (midnight), 98C date and time, 98E with its UTC offset; None (with a
        problem) when broken."""
        shapes = {"98A": r"([0-9]{8})", "98C": r"([0-9]{8})([0-9]{6})",
                  "98E": r"([0-9]{8})([0-9]{6})(?:,[0-9]{1,3})?(?:/(N?)([0-9]{2})([0-9]{2})?)?"}
        match = re.fullmatch(shapes.get(f.tag, "(?!)"), f.value) if not f.issuer else None
        try:
            if match is None:
                raise ValueError
            moment = dt.datetime.strptime(match.group(1), "%Y%m%d")
            if f.tag != "98A":
                time = dt.datetime.strptime(match.group(2), "%H%M%S").time()
                moment = dt.datetime.combine(moment.date(), time)
            if f.tag == "98E" and match.group(4) is not None:
                offset = dt.timedelta(hours=int(match.group(4)), minutes=int(match.group(5) or 0))
                moment = moment.replace(tzinfo=dt.timezone(-offset if match.group(3) else offset))
        except ValueError:
            self.problem(Rule.INVALID_DATE, f, f"has {f.value!r}, not a date of option "
                                               f"{f.tag[-1]} (98A YYYYMMDD, 98C with a time)")
            return None
        return moment

    def day(self, f: Field) -> tuple[dt.date | None, str]:
        """(date, '') of a 98A/C/E; (None, the code) of a 98B ('UKWN', 'ONGO')."""
        if f.tag == "98B":
            return None, f"{f.issuer}/{f.value}" if f.issuer else f.value
        moment = self.moment(f)
        return (moment.date() if moment is not None else None), ""

    def rate(self, qualifier: str, option: CaOption | None, details: list[Rate]) -> Rate | None:
        """The whole rate ``qualifier`` (not a typed part of it) of the option, else of its
        cash movements, else of CADETL; None when none, or when two differ at one place."""
        places: list[tuple[Rate, ...]] = []
        if option is not None:
            places += [option.rates, tuple(r for m in option.movements
                                           if m.kind == "CASH" and m.credit is not False
                                           for r in m.rates)]
        places.append(tuple(details))
        for rates in places:
            found = [r for r in rates if r.qualifier == qualifier and r.value is not None
                     and not r.code]
            if not found:
                continue
            if len({r.value for r in found}) > 1:
                shown = ", ".join(f"{r.currency}{r.value} (line {r.line})" for r in found)
                self.problems.append(Problem(
                    Rule.INVALID_RATE, f"MT564: the :92a::{qualifier}: rates {shown} differ; "
                    "none is taken", self.source, found[0].line))
                return None
            currency = next((r.currency for r in found if r.currency), "")
            return Rate(qualifier, found[0].value, currency, "", found[0].status, found[0].line)
        return None

    def ratio(self, kind: CaKind | None, event_type: str, option: CaOption | None,
              details: list[Ratio]) -> Ratio | None:
        """NEWO for a split, ADEX for a bonus issue or stock dividend (NEWO then ADEX for an
        event we do not book: shown only), from the securities movements of the option, the
        option, or CADETL."""
        places: list[tuple[Ratio, ...]] = []
        if option is not None:
            places += [tuple(r for m in option.movements
                             if m.kind == "SECU" and m.credit is not False for r in m.ratios),
                       option.ratios]
        places.append(tuple(details))
        wanted = {CaKind.SPLIT: ("NEWO",), CaKind.STOCK_DIVIDEND: ("ADEX",)}.get(
            kind, ("NEWO", "ADEX")) if kind is not None else ("NEWO", "ADEX")
        for qualifier in wanted:
            for ratios in places:
                found = [r for r in ratios if r.qualifier == qualifier]
                if not found:
                    continue
                if len({(r.first, r.second) for r in found}) > 1:
                    self.problems.append(Problem(
                        Rule.INVALID_RATIO, f"MT564: the :92D::{qualifier}: ratios differ (lines "
                        f"{', '.join(str(r.line) for r in found)}); none is taken", self.source,
                        found[0].line))
                    return None
                return found[0]
        if kind is CaKind.STOCK_DIVIDEND:
            newo = next((r for ratios in places for r in ratios if r.qualifier == "NEWO"), None)
            if newo is not None:
                self.problems.append(Problem(
                    Rule.INVALID_RATIO, f"MT564: a {event_type} gives :92D::NEWO//{newo.first}/"
                    f"{newo.second} (new for old), not :92D::ADEX: (additional for existing): "
                    "whether it means more shares per share held or the holding becoming "
                    "that many is not guessed; no ratio is taken", self.source, newo.line))
        return None

    def cash_in_lieu(self, option: CaOption | None) -> Decimal:
        """The :90B::CINL//ACTU/CCYprice of the option (or its movements); 0 when none."""
        return option.cash_in_lieu_price if option is not None else Decimal(0)

    # -- sequences ---------------------------------------------------------------------------

    def rate_or_ratio(self, f: Field) -> Rate | Ratio | None:
        q, value, tag = f.qualifier, f.value, f.tag
        shapes = {
            "92A": r"(N?[0-9]+,[0-9]*)",
            "92B": rf"{_CURRENCY}/{_CURRENCY}/{_NUMBER}",
            "92D": rf"{_NUMBER}/{_NUMBER}",
            "92F": rf"{_CURRENCY}{_NUMBER}",
            "92H": rf"{_CURRENCY}{_NUMBER}(?:/([A-Z]{{4}}))?",
            "92J": rf"([A-Z0-9]{{4}})/{_CURRENCY}{_NUMBER}(?:/([A-Z]{{4}}))?",
        }
        if tag not in shapes:
            return Rate(q, None, code=f"{f.issuer}/{value}" if f.issuer else value, line=f.line)
        match = re.fullmatch(shapes[tag], value)
        if match is None or (f.issuer and tag != "92J"):
            self.problem(Rule.MT_MALFORMED, f, f"is not a rate of option {tag[-1]}")
            return None
        groups = match.groups()
        if tag == "92A":
            number = self.number(f, groups[0], signed=True)
            return None if number is None else Rate(q, number, line=f.line)
        if tag == "92B":
            number = self.number(f, groups[2])
            return None if number is None else Rate(q, number, f"{groups[0]}/{groups[1]}",
                                                    line=f.line)
        if tag == "92D":
            first, second = self.number(f, groups[0]), self.number(f, groups[1])
            if first is None or second is None:
                return None
            return Ratio(q, first, second, f.line)
        if tag in ("92F", "92H"):
            number = self.number(f, groups[1])
            status = groups[2] or "" if tag == "92H" else ""
            return None if number is None else Rate(q, number, groups[0], status=status,
                                                    line=f.line)
        number = self.number(f, groups[2])  # 92J
        code = f"{f.issuer}/{groups[0]}" if f.issuer else groups[0]
        return None if number is None else Rate(q, number, groups[1], code, groups[3] or "",
                                                f.line)

    def terms(self, fields: Iterable[Field],
              ) -> tuple[dict[str, dt.date], list[Rate], list[Ratio], dict[str, str]]:
        """Dates, rates, ratios and every other field (as text) of ``fields``."""
        dates: dict[str, dt.date] = {}
        rates: list[Rate] = []
        ratios: list[Ratio] = []
        extra: dict[str, str] = {}
        for f in fields:
            key = f"{f.tag}::{f.qualifier}" if f.qualifier else f.tag
            if f.is_("98a"):
                day, code = self.day(f)
                if day is not None:
                    dates.setdefault(f.qualifier, day)
                    continue
                text = code or f.value
            elif f.is_("92a"):
                found = self.rate_or_ratio(f)
                if isinstance(found, Rate):
                    rates.append(found)
                elif isinstance(found, Ratio):
                    ratios.append(found)
                if found is not None:
                    continue
                text = f.value
            else:
                text = f"{f.issuer}/{f.value}" if f.issuer else f.value
            extra[key] = f"{extra[key]}\n{text}" if key in extra else text
        return dates, rates, ratios, extra

    def details(self, cadetl: Sequence | None,
                ) -> tuple[dict[str, dt.date], list[Rate], list[Ratio], dict[str, str]]:
        if cadetl is None:
            return {}, [], [], {}
        dates, rates, ratios, extra = self.terms(f for s in cadetl.walk() for f in s.fields)
        for qualifier, day in dates.items():
            if qualifier not in ("XDTE", "RDTE", "PAYD"):
                extra[f"98a::{qualifier}"] = day.isoformat()
        return dates, rates, ratios, extra

    def option(self, sequence: Sequence) -> CaOption:
        number = sequence.first("13A", "CAON")
        kind = sequence.first("22F", "CAOP")
        default = sequence.first("17B", "DFLT")
        currency = sequence.first("11A", "OPTN")
        security = sequence.first("35B")
        isin, security_id, _ = self.security(security) if security else ("", "", "")
        dates, rates, ratios, _ = self.terms(sequence.fields)
        movements = tuple(self.movement(child) for child in sequence.children
                          if child.name in ("SECMOVE", "CASHMOVE"))
        cinl = sequence.first("90B", "CINL") or next(
            (f for child in sequence.children for f in child.every("90B", "CINL")), None)
        price = self.price(cinl) if cinl is not None else None
        return CaOption(number=number.value if number else "", kind=kind.value if kind else "",
                        default=default is not None and default.value == "Y",
                        currency=currency.value if currency else "", isin=isin,
                        security_id=security_id, dates=dates, rates=tuple(rates),
                        ratios=tuple(ratios), movements=movements,
                        cash_in_lieu_price=price or Decimal(0), line=sequence.line)

    def price(self, f: Field) -> Decimal | None:
        """The amount of a 90B price ':CINL//ACTU/USD1,5'."""
        match = re.fullmatch(rf"[A-Z]{{4}}/{_CURRENCY}{_NUMBER}", f.value)
        if match is None or f.issuer:
            self.problem(Rule.MT_MALFORMED, f, "is not a price 'ACTU/CCYamount'")
            return None
        return self.number(f, match.group(2))

    def movement(self, sequence: Sequence) -> Movement:
        crdb = sequence.first("22H", "CRDB")
        credit = {"CRED": True, "DEBT": False}.get(crdb.value) if crdb else None
        security = sequence.first("35B")
        isin, security_id, _ = self.security(security) if security else ("", "", "")
        dates, rates, ratios, _ = self.terms(sequence.fields)
        amounts: dict[str, tuple[str, Decimal]] = {}
        for f in sequence.every("19B"):
            match = re.fullmatch(rf"(N?){_CURRENCY}(.*)", f.value, re.DOTALL)
            if match is None:
                self.problem(Rule.MT_MALFORMED, f, "is not an amount 'CCYamount'")
                continue
            amount = self.number(f, match.group(1) + match.group(3), signed=True)
            if amount is not None:
                amounts.setdefault(f.qualifier, (match.group(2), amount))
        quantities: dict[str, tuple[str, Decimal]] = {}
        for f in sequence.every("36B"):
            found = self.quantity(f)
            if found is not None:
                quantities.setdefault(f.qualifier, found)
        return Movement(kind="SECU" if sequence.name == "SECMOVE" else "CASH", credit=credit,
                        isin=isin, security_id=security_id, pay_date=dates.get("PAYD"),
                        dates=dates, rates=tuple(rates), ratios=tuple(ratios), amounts=amounts,
                        quantities=quantities)

    def quantity(self, f: Field) -> tuple[str, Decimal] | None:
        """(type, quantity) of ':ELIG//UNIT/1000,' or ':ELIG/ISSR/UNIT/N5,'."""
        kind, _, text = f.value.partition("/")
        if not re.fullmatch(r"[A-Z]{4}", kind) or not text:
            self.problem(Rule.MT_MALFORMED, f, "is not a quantity 'TYPE/quantity'")
            return None
        quantity = self.number(f, text, signed=True)
        return None if quantity is None else (kind, quantity)

    def balances(self, usecu: Sequence) -> list[Balance]:
        balances = []
        for info in usecu.find("ACCTINFO"):
            safe = info.first("97a", "SAFE")
            account = "" if safe is None else \
                safe.value.partition("/")[2] if safe.tag == "97B" else safe.value
            for f in info.every("93B"):
                found = self.quantity(f)
                if found is not None:
                    balances.append(Balance(account, f.qualifier, found[0], found[1]))
        return balances

