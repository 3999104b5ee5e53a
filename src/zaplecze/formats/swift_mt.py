"""SWIFT ISO 15022 settlement messages: MT540–543 out; MT544–548 and MT535 in.

The FIN envelope
----------------
A FIN message is a row of blocks ``{1:…}{2:…}{3:…}{4:…}{5:…}`` (and ``{S:…}`` from some
interfaces). Block 1 is ``F01`` + the 12-character logical-terminal address (BIC8, a terminal
letter, the branch or ``XXX``) + session and sequence numbers. Block 2 says ``I`` (input: the
sender is block 1, the receiver's address follows the message type) or ``O`` (output: the
sender's address is inside the MIR), then the message type: ``I540DTCYUS33XXXXN``. Blocks 3, 5
and S hold ``{tag:value}`` items. Block 4 of a user message is text: a line break, fields
``:TAG:value`` whose value runs over the following lines until the next ``:TAG:``, and a closing
line ``-}``. A service message (``F21`` ACK/NAK) holds ``{tag:value}`` items in block 4 instead.
A file may hold several messages, back to back, on separate lines or with RJE ``$`` between.

ISO 15022 inside block 4
------------------------
Category-5 messages group their fields in sequences opened by ``:16R:NAME`` and closed by
``:16S:NAME``, nested (GENL holds LINK and STAT; SETDET holds SETPRTY and AMT). Most fields are
*qualified generic fields*, ``:TAG::QUAL//value`` or ``:TAG::QUAL/ISSUER/value`` where ISSUER
is a data source scheme (a proprietary code list): ``:20C::SEME//REF``,
``:98A::SETT//20240105``, ``:36B::SETT//UNIT/1000,``, ``:19A::SETT//USD1234,56``,
``:95P::PSET//DTCYUS33``, ``:95R::DEAG/SICV/4042``, ``:25D::MTCH//MACH``, ``:24B::PEND//LACK``.
``Field.qualifier``, ``Field.issuer`` and ``Field.value`` split them. Numbers have a decimal
comma, mandatory even for whole numbers (``1000,``), and no thousands separator; they become
``Decimal`` exactly, never through a float.

Reading
-------
``parse_fin`` frames the messages and builds each one's sequence tree. A message that cannot be
framed (block 1–4 not closed, a header of the wrong shape, text before the first field, a
``:16S:`` closing an outer sequence past an inner one still open) is *damaged*: it gets one
``mt_malformed`` problem at its line and is left out; the messages around it are read.
Problems carry the physical line of the file (1-based). Checksums and MACs are not verified.

Some flaws leave no doubt about what the sender meant; the message is then read and the flaw
comes back as a *warning* (``Problem.severity``), kept for operators like a refusal:

- a trailer block (5 or S) without its closing ``}``: read to the end of the message;
- ``:16S:NAME`` naming no open sequence (``:16S:TRADFOO`` after ``:16R:TRADDET``): closes the
  innermost one;
- block 4 ending right after a ``:16R:`` (the message was cut short there): what came before
  is read, the sequences still open are closed at the end and the empty one is left out (a
  statement of holdings cut short gives breaks for what it no longer lists — the warning says
  why). Sequences left open otherwise (a ``:16S:`` missing in the middle) are damage: where
  the sequence ended, the nesting does not say;
- MT535 ``:17B::ACTI//Y`` without a SUBSAFE sequence, or ``ACTI//N`` with one (network rule
  C1): what the sequences hold is read;
- a quantity with one slash after its qualifier (``:36B::SETT/UNIT/1000,``): these fields take
  no data source scheme, so the slash can only be the second one.

The typed readers (``read_instructions``, ``read_confirmations``, ``read_status_advices``,
``read_holdings``, and ``read_settlement_messages`` for MT544–548 in one pass) take the user
messages of their types, check the mandatory sequences and fields (``check_mandatory``:
``mt_missing_sequence`` / ``mt_missing_field``) and read the values; a message of another type
is ``unsupported_message_type``; service messages (ACK/NAK) are skipped. A broken value rejects
its message (``invalid_number``, ``invalid_date``, ``invalid_isin``, ``invalid_currency``,
``non_positive_quantity``, ``mt_malformed`` for a field of the wrong shape,
``invalid_enum_value`` for a function or status we do not read) and never stops the next one.
Problems come back in the order of the file.

Choices made while reading:

- Parties (``:95a:``) become text as the message gives them: a BIC (95P), ``ISSUER/code``
  (95R, e.g. ``SICV/4042``), a country code (95C), or a name and address (95Q; lines are
  joined without a separator after a full 35-character line, as wrapped text, else with a
  line break). ``Party.bic`` and ``Instruction.place_of_settlement`` then hold that text.
- A security named without an ISIN (``:35B:/US/3132MAD40``) leaves ``isin`` empty and keeps
  the identification in ``Confirmation.extra["security_id"]`` / ``Holding.security_id``.
- Quantities are read whatever their type (UNIT, FAMT face amount, AMOR); a confirmation
  prefers UNIT, then FAMT, then AMOR, and names a type other than UNIT in
  ``extra["quantity_type"]``. The instruction reader has nowhere to keep the type.
- A confirmation is *partial* when it says ``:22F::PARS//PAIN`` (or ``:22F::STCO//PART``), or
  gives a positive remaining quantity ``:36B::RSTT``; ``remaining_quantity`` is that RSTT.
  ``PARS//PARC`` (the last part of an earlier partial) is not partial. A confirmation whose
  function is not NEWM (a CANC reverses an earlier one) is refused: the value has no way to
  say so. ``reference`` (ours) is ``:20C::RELA`` of the linkages; the sender's SEME is
  ``message_reference``; 23G's subfunction (DUPL, COPY) goes to ``extra["subfunction"]``.
- Status (MT548): one ``StatusAdvice`` per status sequence (A2 STAT), its reasons the
  ``:24B:`` codes of that sequence (``ISSUER/code`` for a proprietary one). ``reference`` is
  ``:20C::RELA``: the instruction for 23G INST, our cancellation request for 23G CAST. Codes:
  IPRC PACK → ACKNOWLEDGED (CANCEL_PENDING under CAST: the cancellation is accepted),
  REJT → REJECTED (under CAST the cancellation is refused), CAND → CANCELLED,
  CPRC and CANP → CANCEL_PENDING; CPRC (cancellation status) CAND → CANCELLED, CANP and
  PACK → CANCEL_PENDING, REJT and DEND → REJECTED (a refused cancellation); MTCH MACH →
  MATCHED, NMAT → UNMATCHED; SETT PEND → PENDING, PENF → FAILING, either of them HELD when a
  reason says the instruction is on hold (PREA ours, CSDH and CVAL the CSD's). ISO 15022 has
  no code for a lifted hold, so RELEASED is never read. Any other status (PPRC, REPR, INMH…)
  is an ``invalid_enum_value`` problem for that status alone.
- Instructions: the account owner is ``:95a::ACOW`` of FIAC, else the sender of the message;
  ``creation`` is ``:98a::PREP`` (a date alone is midnight); 23G's subfunction (COPY, DUPL)
  is ignored; the trade date (``:98a::TRAD``) is optional, as in the standard (``None``).
- Holdings (MT535): one ``Holding`` per B1 FIN, its ``:93B::AGGR`` balance (sign N:
  negative), for the sub-safekeeping account's ``:97a::SAFE`` or else the statement's.
- Check digits (ISIN) are not verified when reading: the shape is; BICs are read as given.

Writing
-------
``write_mt54x`` writes MT540 (receive free), MT541 (receive against payment), MT542 (deliver
free) or MT543 (deliver against payment), CR LF line ends, blocks 1, 2 and 4 (the interface adds
the rest): A GENL (SEME, 23G NEWM or CANC, PREP as 98C, or 98E with the UTC offset when the
time is aware, to the second; A1 LINK with PREV for the linked reference, one A1 with TRRF per
trade id), B TRADDET (SETT, TRAD, ISIN), C FIAC (36B UNIT, ACOW, SAFE), E SETDET (SETR//TRAD,
STCO//NPAR when no partial settlement is allowed, E1 DEAG (receive) or REAG (deliver) with its
account, then E1 PSET, E3 SETT amount when against payment). No network rule orders the E1
sequences; the counterparty's agent comes first and the place of settlement last, as in the
shared samples. The counterparty is written as 95P when it is a BIC, 95R when it is
``ISSUER/code`` in the x set, else as 95Q name and address; PSET as 95P (a BIC) or 95C (a
country). ``write_mt54x`` reads what it wrote back and asserts it frames and is complete.

The SWIFT x character set is ``a-z A-Z 0-9 / - ? : ( ) . , ' +``, space and CR LF.
``check_x_charset`` lists what falls outside; ``transliterate`` maps Polish and other Latin
letters into it (NFKD without the accents, plus ł, ß, æ, ø, đ, œ, þ and typographic dashes and
quotes). The writer transliterates free text (the 95Q name) only; references, accounts,
BICs and ISINs are identifiers and are refused rather than changed. An instruction that cannot
be written is a business problem, not a crash: ``mt54x_problems`` lists the problems
(``mt_invalid_character``, ``mt_missing_field``, ``mt_malformed`` for a value too long or of
the wrong shape, ``invalid_bic``, ``invalid_isin``, ``invalid_currency``, …) and
``write_mt54x`` raises ``MtWriteError`` (a ``ValueError`` carrying them) rather than return
a message the network would refuse.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from typing import TypeVar

from stdnum import bic as bic_number
from stdnum import isin as isin_number

from zaplecze.kernel.money import currency_scale, fits_scale, is_currency
from zaplecze.kernel.problems import Problem, Rule, warning
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

__all__ = [
    "X_CHARSET",
    "Field",
    "FinMessage",
    "Holding",
    "MtWriteError",
    "Sequence",
    "check_mandatory",
    "check_x_charset",
    "format_swift_decimal",
    "mt54x_problems",
    "parse_fin",
    "parse_swift_decimal",
    "read_confirmations",
    "read_holdings",
    "read_instructions",
    "read_settlement_messages",
    "read_status_advices",
    "transliterate",
    "write_mt54x",
]

T = TypeVar("T")

# --- the x character set ----------------------------------------------------------------------

X_CHARSET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      "/-?:().,'+ \r\n")
# Letters NFKD does not take apart, and typographic marks with a plain x-set twin.
_TRANSLITERATION = {
    "ł": "l", "Ł": "L", "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
    "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
    "ħ": "h", "Ħ": "H", "ı": "i", "ŀ": "l", "Ŀ": "L", "‘": "'", "’": "'", "‚": ",",
    "‐": "-", "‑": "-", "–": "-", "—": "-", "\u00a0": " ",
}


def check_x_charset(text: str) -> list[tuple[int, str]]:
    """The characters of ``text`` outside the SWIFT x set, each with its 0-based position."""
    return [(position, char) for position, char in enumerate(text) if char not in X_CHARSET]


def transliterate(text: str) -> str:
    """``text`` with Latin letters carrying diacritics replaced by their x-set letters:
    'Zażółć gęślą jaźń' → 'Zazolc gesla jazn'. A character with no x-set spelling ('&', '€',
    'Ж') is left as it is, for ``check_x_charset`` to find."""
    out: list[str] = []
    for char in text:
        if char in X_CHARSET:
            out.append(char)
        elif char in _TRANSLITERATION:
            out.append(_TRANSLITERATION[char])
        else:
            bare = "".join(part for part in unicodedata.normalize("NFKD", char)
                           if not unicodedata.combining(part))
            out.append(bare if bare and not check_x_charset(bare) else char)
    return "".join(out)


# --- numbers and dates ------------------------------------------------------------------------

_SWIFT_NUMBER = re.compile(r"[0-9]+,[0-9]*")


def parse_swift_decimal(text: str) -> Decimal:
    """A SWIFT number ('1234,56', '1000,') as an exact Decimal; ValueError for anything else
    (no sign, no '.', no thousands separator, at least one digit before the mandatory comma)."""
    if not _SWIFT_NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a SWIFT number (digits, a decimal comma: 1000, 12,5)")
    whole, _, fraction = text.partition(",")
    return Decimal(f"{whole}.{fraction}" if fraction else whole)


def format_swift_decimal(value: Decimal) -> str:
    """A non-negative Decimal the SWIFT way: Decimal('1000') → '1000,', Decimal('12.50') →
    '12,50'; no exponent, no thousands separator."""
    if not value.is_finite() or value < 0:
        raise ValueError(f"{value} is not a non-negative finite number")
    whole, _, fraction = format(abs(value), "f").partition(".")
    return f"{whole},{fraction}"


def _yyyymmdd(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


# --- the message model ------------------------------------------------------------------------

_QUALIFIED = re.compile(r":([A-Z0-9]{4})/([A-Za-z0-9]{0,8})/(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Field:
    """One field of block 4: ``:98A::SETT//20240105`` is tag '98A', text ':SETT//20240105'.
    Text spanning lines keeps its line breaks ('\\n')."""

    tag: str
    text: str
    line: int  # physical line of the file where the field starts

    def _parts(self) -> tuple[str, str, str]:
        match = _QUALIFIED.fullmatch(self.text)
        if match is None:
            return "", "", self.text
        return match.group(1), match.group(2), match.group(3)

    @property
    def qualifier(self) -> str:
        """'SETT' of ':SETT//…'; '' for a field that is not qualified (23G, 35B)."""
        return self._parts()[0]

    @property
    def issuer(self) -> str:
        """The data source scheme of ':DEAG/SICV/4042' ('SICV'); '' when none."""
        return self._parts()[1]

    @property
    def value(self) -> str:
        """What follows the qualifier and issuer ('20240105'); the whole text when unqualified."""
        return self._parts()[2]

    def is_(self, tag: str, qualifier: str = "") -> bool:
        """Whether this is ``tag`` ('98a' with a lower-case letter: any option, 98A/C/E…) with
        ``qualifier`` (any when '')."""
        if tag[-1:].islower():
            if not (self.tag[:-1] == tag[:-1] and self.tag[-1:].isupper()):
                return False
        elif self.tag != tag:
            return False
        return not qualifier or self.qualifier == qualifier


@dataclass(frozen=True, slots=True)
class Sequence:
    """A :16R:/:16S: sequence: its own fields in order and the sequences nested in it. The
    message body is the unnamed root sequence."""

    name: str
    fields: tuple[Field, ...]
    children: tuple[Sequence, ...] = ()
    line: int = 0  # the line of its :16R: (of block 4 for the root)

    def find(self, *path: str) -> list[Sequence]:
        """Every sequence at ``path`` below this one: ``body.find('SETDET', 'SETPRTY')``."""
        found = [self]
        for name in path:
            found = [child for sequence in found for child in sequence.children
                     if child.name == name]
        return found

    def first(self, tag: str, qualifier: str = "") -> Field | None:
        return next((f for f in self.fields if f.is_(tag, qualifier)), None)

    def every(self, tag: str, qualifier: str = "") -> list[Field]:
        return [f for f in self.fields if f.is_(tag, qualifier)]

    def walk(self) -> Iterator[Sequence]:
        """This sequence and every one nested in it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class FinMessage:
    """One FIN message as framed by ``parse_fin``."""

    source: str
    line: int  # the line of its '{1:'
    basic_header: str  # block 1: 'F01BANKPLPWAXXX0000000000'
    application_header: str  # block 2: 'I540DTCYUS33XXXXN' ('' for a service message)
    user_header: tuple[tuple[str, str], ...]  # block 3 items: (('108', 'MUR'),)
    fields: tuple[Field, ...]  # block 4 in order, :16R:/:16S: included
    body: Sequence  # block 4 as a tree of sequences
    trailer: tuple[tuple[str, str], ...] = ()  # block 5 items: (('CHK', '…'),)
    repairs: tuple[Problem, ...] = ()  # warnings: how a flaw of its framing was read past

    @property
    def service_id(self) -> str:
        """'01' for a user message, '21' for an ACK/NAK."""
        return self.basic_header[1:3]

    @property
    def is_user_message(self) -> bool:
        return self.service_id == "01"

    @property
    def direction(self) -> str:
        """'I' (input, as sent to the network) or 'O' (output, as delivered); '' when none."""
        return self.application_header[:1]

    @property
    def message_type(self) -> str:
        """'540' …; '' for a service message."""
        return self.application_header[1:4]

    @property
    def sender_bic(self) -> str:
        if self.direction == "O":
            return _bic_of(self.application_header[14:26])
        return _bic_of(self.basic_header[3:15])

    @property
    def receiver_bic(self) -> str:
        if self.direction == "I":
            return _bic_of(self.application_header[4:16])
        return _bic_of(self.basic_header[3:15])

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def _bic_of(address: str) -> str:
    """The BIC of a 12-character LT address: BIC8 + terminal letter + branch ('XXX': none)."""
    branch = address[9:12]
    return address[:8] + ("" if branch in ("XXX", "") else branch)


# --- framing: parse_fin ------------------------------------------------------------------------

_BLOCK = re.compile(r"\{([0-9A-Z]{1,3}):")
_BLOCK_ORDER = ("1", "2", "3", "4", "5", "S")
_TRAILERS = ("5", "S")
_BASIC_HEADER = re.compile(r"[A-Z][0-9]{2}[A-Z0-9]{12}[0-9]{10}")
_INPUT_HEADER = re.compile(r"I[0-9]{3}[A-Z0-9]{12}(?:[SNU](?:[123](?:[0-9]{3})?)?)?")
_OUTPUT_HEADER = re.compile(r"O[0-9]{3}[0-9]{4}[0-9]{6}[A-Z0-9]{22}[0-9]{6}[0-9]{4}[SNU]?")
_ITEM = re.compile(r"\{([^:{}]+):([^{}]*)\}")
_FIELD_START = re.compile(r":([0-9]{2}[A-Z]?):")
_GAP = " \t\n$"


class _Damaged(Exception):
    """A message that cannot be framed; never leaves this module."""

    def __init__(self, detail: str, offset: int, resume: int, line: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.offset = offset  # where the damage is
        self.resume = resume  # where reading goes on
        self.line = line  # the damaged line when known, else the line of ``offset``


class _LineOf:
    """The 1-based line of an offset in the text."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(match.end() for match in re.finditer("\n", text))]

    def __call__(self, offset: int) -> int:
        return bisect_right(self._starts, offset)


def parse_fin(text: str, source: str) -> tuple[list[FinMessage], list[Problem]]:
    """The FIN messages of ``text`` (one or several), and a problem for each damaged one."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    line_of = _LineOf(text)
    messages: list[FinMessage] = []
    problems: list[Problem] = []
    position = 0
    while True:
        start = text.find("{1:", position)
        stray = text[position:start if start >= 0 else len(text)]
        if stray.strip(_GAP):
            offset = position + len(stray) - len(stray.lstrip(_GAP))
            what = "no FIN message ({1:…), only" if start < 0 and position == 0 else \
                "text outside any message:"
            problems.append(Problem(Rule.MT_MALFORMED,
                                    f"{what} {_excerpt(stray.strip(_GAP))!r}",
                                    source, line_of(offset)))
        if start < 0:
            return messages, problems
        try:
            message, position = _message_at(text, start, source, line_of)
        except _Damaged as damaged:
            line = damaged.line if damaged.line is not None else line_of(damaged.offset)
            problems.append(Problem(Rule.MT_MALFORMED, damaged.detail, source, line))
            position = damaged.resume
            continue
        messages.append(message)
        problems.extend(message.repairs)


def _excerpt(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size] + "…"


def _message_at(text: str, start: int, source: str,
                line_of: Callable[[int], int]) -> tuple[FinMessage, int]:
    following = text.find("{1:", start + 3)
    limit = len(text) if following < 0 else following
    blocks: dict[str, tuple[str, int]] = {}  # block id -> (content, offset of the content)
    repairs: list[Problem] = []
    position = start
    while position < limit and text.startswith("{", position):
        match = _BLOCK.match(text, position)
        name = match.group(1) if match else ""
        if match is None or name not in _BLOCK_ORDER:
            raise _Damaged(f"{_excerpt(text[position:limit])!r} is not a FIN block "
                           "({1:, {2:, {3:, {4:, {5: or {S:)", position, limit)
        if blocks and _BLOCK_ORDER.index(name) <= _BLOCK_ORDER.index(list(blocks)[-1]):
            raise _Damaged(f"block {name} comes after block {list(blocks)[-1]}", position, limit)
        content = match.end()
        if name == "4" and not text.startswith("{", content):
            end = text.find("\n-}", content, limit)
            if end < 0:
                raise _Damaged("block 4 is not closed by a line '-}' (a truncated message?)",
                               position, limit)
            blocks[name] = (text[content:end], content)
            position = end + 3
        else:
            end = _closing_brace(text, position, limit)
            if end < 0 and name in _TRAILERS and "4" in blocks:
                # The trailer (MAC, checksum…) lacks its last '}': the text is all there.
                end = len(text[:limit].rstrip(_GAP))
                repairs.append(warning(Rule.MT_MALFORMED, f"block {name} is not closed by '}}'; "
                                       "read to the end of the message", source,
                                       line_of(position)))
                blocks[name] = (text[content:end], content)
                position = limit
                continue
            if end < 0:
                raise _Damaged(f"block {name} is not closed by '}}' (a truncated message?)",
                               position, limit)
            blocks[name] = (text[content:end], content)
            position = end + 1
    return _message(blocks, start, position, source, line_of, repairs), position


def _closing_brace(text: str, start: int, limit: int) -> int:
    depth = 0
    for position in range(start, limit):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return position
    return -1


def _message(blocks: dict[str, tuple[str, int]], start: int, end: int, source: str,
             line_of: Callable[[int], int], repairs: list[Problem]) -> FinMessage:
    basic = blocks["1"][0]
    if not _BASIC_HEADER.fullmatch(basic):
        raise _Damaged(f"block 1 {basic!r} is not F01 + a 12-character LT address + session "
                       "and sequence numbers", start, end)
    application, application_at = blocks.get("2", ("", start))
    user_message = basic[1:3] == "01"
    if user_message:
        if "2" not in blocks:
            raise _Damaged("a user message without block 2 (its type)", start, end)
        if not (_INPUT_HEADER.fullmatch(application) or _OUTPUT_HEADER.fullmatch(application)):
            raise _Damaged(f"block 2 {application!r} is neither an input (I + type + receiver) "
                           "nor an output (O + type + time + MIR + date + time) header",
                           application_at, end)
        if "4" not in blocks:
            raise _Damaged(f"MT{application[1:4]} without block 4 (its text)", start, end)
    body, body_at = blocks.get("4", ("", start))
    if body.startswith("{"):
        fields = [Field(tag, value, line_of(body_at))
                  for tag, value in _items(body, "4", body_at, end)]
    else:
        fields = _text_fields(body, body_at, end, line_of)
    user_header, user_at = blocks.get("3", ("", start))
    trailer, trailer_at = blocks.get("5", ("", start))
    return FinMessage(
        source=source, line=line_of(start), basic_header=basic, application_header=application,
        user_header=_items(user_header, "3", user_at, end), fields=tuple(fields),
        body=_sequences(fields, line_of(body_at), end, source, repairs),
        trailer=_items(trailer, "5", trailer_at, end), repairs=tuple(repairs))


def _items(content: str, name: str, offset: int, end: int) -> tuple[tuple[str, str], ...]:
    items: list[tuple[str, str]] = []
    position = 0
    while position < len(content):
        match = _ITEM.match(content, position)
        if match is None:
            raise _Damaged(f"block {name} is not a row of {{tag:value}} items: "
                           f"{_excerpt(content[position:])!r}", offset + position, end)
        items.append((match.group(1), match.group(2)))
        position = match.end()
    return tuple(items)


def _text_fields(body: str, offset: int, end: int,
                 line_of: Callable[[int], int]) -> list[Field]:
    starts: list[tuple[str, int]] = []  # (tag, line) of each field
    texts: list[list[str]] = []  # the lines of each field's text
    position = offset
    for raw in body.split("\n"):
        start, position = position, position + len(raw) + 1
        match = _FIELD_START.match(raw)
        if match:
            starts.append((match.group(1), line_of(start)))
            texts.append([raw[match.end():]])
        elif texts:
            texts[-1].append(raw)
        elif raw.strip():
            raise _Damaged(f"block 4 has text before its first field: {_excerpt(raw)!r}",
                           start, end)
    return [Field(tag, "\n".join(lines), line) for (tag, line), lines in zip(starts, texts,
                                                                             strict=True)]


def _sequences(fields: list[Field], line: int, end: int, source: str,
               repairs: list[Problem]) -> Sequence:
    """The tree of :16R:/:16S: sequences. Two flaws are read past with a warning: a :16S:
    naming no open sequence closes the innermost one (a misspelt name: ':16S:TRADFOO' for
    TRADDET), and sequences still open when block 4 ends are closed there — an empty one is
    left out, as it holds nothing. A :16S: closing an outer sequence past an inner one still
    open, or closing nothing, leaves the nesting unknowable: the message is damaged."""
    # One frame per open sequence: name, line of its :16R:, own fields, children.
    stack: list[tuple[str, int, list[Field], list[Sequence]]] = [("", line, [], [])]

    def close() -> None:
        name, opened, own, children = stack.pop()
        stack[-1][3].append(Sequence(name, tuple(own), tuple(children), opened))

    for f in fields:
        if f.tag == "16R":
            stack.append((f.text, f.line, [], []))
        elif f.tag == "16S":
            name, opened, _, _ = stack[-1]
            if len(stack) == 1:
                raise _Damaged(f":16S:{f.text} closes no open sequence", 0, end, f.line)
            if f.text != name:
                if any(f.text == outer for outer, _, _, _ in stack[1:]):
                    raise _Damaged(f":16S:{f.text} closes :16R:{name} (opened at line "
                                   f"{opened})", 0, end, f.line)
                repairs.append(warning(Rule.MT_MALFORMED, f":16S:{f.text} names no open "
                                       f"sequence; read as closing :16R:{name} (opened at line "
                                       f"{opened})", source, f.line))
            close()
        else:
            stack[-1][2].append(f)
    if len(stack) > 1:
        innermost, opened, own, children = stack[-1]
        still_open = ", ".join(f":16R:{name} (line {at})" for name, at, _, _ in stack[1:])
        if own or children:  # a :16S: left out somewhere: where, the nesting does not say
            raise _Damaged(f"block 4 ends before :16S:{innermost}; never closed: {still_open}",
                           0, end, opened)
        # Cut right after a :16R:: what came before it is whole, the rest is missing.
        repairs.append(warning(
            Rule.MT_MALFORMED, f"block 4 ends right after :16R:{innermost} (line {opened}): "
            f"the message was cut short; read up to there, with {still_open} closed at its "
            "end and the empty one left out", source, opened))
        stack.pop()
        while len(stack) > 1:
            close()
    _, _, own, children = stack[0]
    return Sequence("", tuple(own), tuple(children), line)


# --- mandatory sequences and fields -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Need:
    """``path`` must be present ('' field), or every occurrence of it must hold ``field``
    ('98a::SETT'), or — ``somewhere`` — at least one occurrence must."""

    path: str
    field: str = ""
    somewhere: bool = False


def _needs(*specs: str) -> tuple[_Need, ...]:
    """'GENL' (a sequence), 'GENL 20C::SEME' (a field in each), 'SETDET/SETPRTY ? 95a::PSET'
    (a field in one of them)."""
    needs = []
    for spec in specs:
        path, _, rest = spec.partition(" ")
        somewhere = rest.startswith("? ")
        needs.append(_Need(path, rest.removeprefix("? "), somewhere))
    return tuple(needs)


_INSTRUCTION_NEEDS = _needs(
    "GENL", "GENL 20C::SEME", "GENL 23G", "TRADDET", "TRADDET 98a::SETT", "TRADDET 35B",
    "FIAC", "FIAC 36B::SETT", "FIAC 97a::SAFE", "SETDET", "SETDET 22F::SETR", "SETDET/SETPRTY")
_CONFIRMATION_NEEDS = _needs(
    "GENL", "GENL 20C::SEME", "GENL 23G", "GENL/LINK", "GENL/LINK 20C", "TRADDET",
    "TRADDET 98a::ESET", "TRADDET 35B", "FIAC", "FIAC 36B::ESTT", "FIAC 97a::SAFE", "SETDET",
    "SETDET 22F::SETR", "SETDET/SETPRTY")
_NEEDS: dict[str, tuple[_Need, ...]] = {
    **dict.fromkeys(("540", "541", "542", "543"), _INSTRUCTION_NEEDS),
    **dict.fromkeys(("544", "545", "546", "547"), _CONFIRMATION_NEEDS),
    "548": _needs("GENL", "GENL 20C::SEME", "GENL 23G", "GENL/LINK", "GENL/LINK 20C",
                  "GENL/STAT", "GENL/STAT 25D", "GENL/STAT/REAS 24B"),
    "535": _needs("GENL", "GENL 28E", "GENL 20C::SEME", "GENL 23G", "GENL 98a::STAT",
                  "GENL 97a::SAFE", "GENL 17B::ACTI", "SUBSAFE/FIN 35B", "SUBSAFE/FIN 93B::AGGR"),
}
# The settlement parties needed unless :22F::DBNM: says there are none (a network rule).
_PARTIES_NEEDED = {
    mt: _needs(f"SETDET/SETPRTY ? 95a::{agent}", "SETDET/SETPRTY ? 95a::PSET")
    for mts, agent in ((("540", "541", "544", "545"), "DEAG"),
                       (("542", "543", "546", "547"), "REAG")) for mt in mts}
# The settlement amount (instructions) or settled amount (confirmations) against payment.
_AMOUNT_NEEDED = {"541": "SETT", "543": "SETT", "545": "ESTT", "547": "ESTT"}


def check_mandatory(message: FinMessage) -> list[Problem]:
    """The mandatory sequences and fields ``message`` lacks (MT535, MT540–548): the standard's
    format tables plus the network rules we rely on — a delivering (receive) or receiving
    (deliver) agent and the place of settlement unless :22F::DBNM says there is none, the
    (settled) amount against payment, :20C::PREV in the linkages of a cancellation, and for
    MT535 sub-safekeeping sequences exactly when :17B::ACTI//Y. Other message types, and
    service messages, have nothing to check here."""
    mt = message.message_type
    if not message.is_user_message or mt not in _NEEDS:
        return []
    problems: list[Problem] = []

    def lack(rule: Rule, line: int, detail: str) -> None:
        problems.append(Problem(rule, f"MT{mt}: {detail}", message.source, line))

    body = message.body
    needs = _NEEDS[mt]
    if mt in _PARTIES_NEEDED and not _dbnm(body):
        needs += _PARTIES_NEEDED[mt]
    for need in needs:
        path = need.path.split("/")
        found = body.find(*path)
        if not need.field:
            if not found:
                parents = body.find(*path[:-1])
                lack(Rule.MT_MISSING_SEQUENCE, parents[0].line if parents else message.line,
                     f"no sequence {need.path}")
            continue
        tag, _, qualifier = need.field.partition("::")
        holding = [sequence for sequence in found if sequence.first(tag, qualifier)]
        if need.somewhere and found and not holding:
            lack(Rule.MT_MISSING_FIELD, found[0].line,
                 f"no {need.path} sequence holds :{need.field}:")
        for sequence in [] if need.somewhere else found:
            if sequence not in holding:
                lack(Rule.MT_MISSING_FIELD, sequence.line,
                     f"sequence {need.path} (line {sequence.line}) has no :{need.field}:")
    if mt in _AMOUNT_NEEDED and not _anywhere(body, "19A", _AMOUNT_NEEDED[mt]):
        lack(Rule.MT_MISSING_FIELD, message.line,
             f"against payment, but no :19A::{_AMOUNT_NEEDED[mt]}: amount")
    genl = body.find("GENL")
    function = genl[0].first("23G") if genl else None
    if function is not None and function.value.startswith("CANC") \
            and not any(link.first("20C", "PREV") for link in body.find("GENL", "LINK")):
        lack(Rule.MT_MISSING_FIELD, function.line,
             "a cancellation (23G:CANC) without :20C::PREV: in its linkages (rule E08)")
    activity = genl[0].first("17B", "ACTI") if genl and mt == "535" else None
    if activity is not None and (activity.value == "Y") != bool(body.find("SUBSAFE")):
        # Rule C1 contradicted: the sequences present are what is read, with a warning.
        if activity.value == "Y":
            problems.append(warning(
                Rule.MT_MISSING_SEQUENCE, f"MT{mt}: :17B::ACTI//Y (there are holdings) but no "
                "sequence SUBSAFE (rule C1, E66); no holdings are read from it",
                message.source, activity.line))
        else:
            problems.append(warning(
                Rule.MT_MALFORMED, f"MT{mt}: :17B::ACTI//N (no holdings) but a sequence SUBSAFE "
                "(rule C1, E66); its holdings are read", message.source,
                body.find("SUBSAFE")[0].line))
    return problems


def _dbnm(body: Sequence) -> bool:
    """:22F::DBNM//… in SETDET: no settlement parties are given (a book transfer…)."""
    return any(sequence.first("22F", "DBNM") for sequence in body.find("SETDET"))


def _anywhere(body: Sequence, tag: str, qualifier: str) -> Field | None:
    return next((f for sequence in body.walk() if (f := sequence.first(tag, qualifier))), None)


# --- typed reading: shared --------------------------------------------------------------------


class _Rejected(Exception):
    """Stops reading one message; carries the problem (never leaves this module)."""

    def __init__(self, rule: Rule, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.line = line


def _read(text: str, source: str, types: dict[str, str],
          build: Callable[[FinMessage, list[Problem]], list[T]]) -> tuple[list[T], list[Problem]]:
    """Frame ``text``, check and build each user message of ``types`` (type -> what it is)."""
    messages, problems = parse_fin(text, source)
    results: list[T] = []
    for message in messages:
        if not message.is_user_message:
            continue  # an ACK/NAK around the messages
        if message.message_type not in types:
            known = ", ".join(f"MT{mt} ({what})" for mt, what in types.items())
            problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                    f"MT{message.message_type} is not read here; this reader "
                                    f"takes {known}", source, message.line))
            continue
        missing = check_mandatory(message)
        problems.extend(missing)
        if any(not problem.is_warning for problem in missing):
            continue
        notes: list[Problem] = []
        try:
            results.extend(build(message, notes))
        except _Rejected as rejected:
            problems.append(Problem(rejected.rule, f"MT{message.message_type}: {rejected.detail}",
                                    source, rejected.line or message.line))
        problems.extend(note if note.source else
                        Problem(note.rule, f"MT{message.message_type}: {note.detail}", source,
                                note.line, note.severity) for note in notes)
    problems.sort(key=lambda problem: problem.line or 0)  # in the order of the file
    return results, problems


def _one(message: FinMessage, path: str) -> Sequence:
    """The first sequence at ``path`` (check_mandatory made sure there is one)."""
    return message.body.find(*path.split("/"))[0]


def _needed(sequence: Sequence, tag: str, qualifier: str, what: str) -> Field:
    found = sequence.first(tag, qualifier)
    if found is None:
        name = f":{tag}::{qualifier}:" if qualifier else f":{tag}:"
        raise _Rejected(Rule.MT_MISSING_FIELD, f"{what} ({name} in {sequence.name or 'the body'})"
                                               " is missing", sequence.line)
    return found


def _name(f: Field) -> str:
    return f":{f.tag}::{f.qualifier}:" if f.qualifier else f":{f.tag}:"


_MOMENT = {
    "98A": re.compile(r"([0-9]{8})"),
    "98C": re.compile(r"([0-9]{8})([0-9]{6})"),
    "98E": re.compile(r"([0-9]{8})([0-9]{6})(?:,([0-9]{1,3}))?(?:/(N?)([0-9]{2})([0-9]{2})?)?"),
}


def _moment(f: Field) -> dt.datetime:
    """A 98A date (at midnight), a 98C date and time, or a 98E one (aware with its UTC offset)."""
    shape = _MOMENT.get(f.tag)
    if shape is None or f.issuer:
        raise _Rejected(Rule.INVALID_DATE, f"{_name(f)} is {f.text!r}, not a date "
                                           "(98A YYYYMMDD, 98C or 98E with a time)", f.line)
    match = shape.fullmatch(f.value)
    try:
        if match is None:
            raise ValueError
        day = dt.datetime.strptime(match.group(1), "%Y%m%d")
        if f.tag == "98A":
            return day
        time = dt.datetime.strptime(match.group(2), "%H%M%S").time()
        moment = dt.datetime.combine(day.date(), time)
        if f.tag == "98E":
            decimals, sign, hours, minutes = match.group(3, 4, 5, 6)
            moment = moment.replace(microsecond=int((decimals or "0").ljust(6, "0")))
            if hours is not None:
                offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
                moment = moment.replace(tzinfo=dt.timezone(-offset if sign else offset))
        return moment
    except ValueError:
        raise _Rejected(Rule.INVALID_DATE, f"{_name(f)} {f.value!r} is not a date "
                                           f"of option {f.tag[-1]}", f.line) from None


def _number(f: Field, text: str, what: str) -> Decimal:
    try:
        return parse_swift_decimal(text)
    except ValueError:
        raise _Rejected(Rule.INVALID_NUMBER, f"{what} of {_name(f)} is {text!r}, not a SWIFT "
                                             "number (digits and a decimal comma: 1000, or 12,5)",
                        f.line) from None


_QUANTITY = re.compile(r"([A-Z]{4})/(N?)(.*)", re.DOTALL)
_QUANTITY_TYPES = ("UNIT", "FAMT", "AMOR")  # the quantity type codes of 36B and 93B


def _quantity(f: Field, signed: bool = False,
              notes: list[Problem] | None = None) -> tuple[str, Decimal]:
    """(type, quantity) of ':SETT//UNIT/1000,' (36B) or ':AGGR//UNIT/N5,' (93B, ``signed``).
    With ``notes``, ':SETT/UNIT/1000,' (one slash: the type where a data source scheme would
    be; these fields have none) is read with a warning added to them."""
    match = None if f.issuer else _QUANTITY.fullmatch(f.value)
    if match is None and notes is not None and f.issuer in _QUANTITY_TYPES:
        match = _QUANTITY.fullmatch(f"{f.issuer}/{f.value}")
        if match is not None:
            notes.append(warning(Rule.MT_MALFORMED, f":{f.tag}:{f.text} has one slash after "
                                 f"the qualifier, not two; read as :{f.qualifier}//{f.issuer}/"
                                 f"{f.value}", "", f.line))
    if match is None:
        raise _Rejected(Rule.MT_MALFORMED, f":{f.tag}:{f.text} is not "
                                           f":{f.qualifier or 'QUAL'}//TYPE/quantity", f.line)
    kind, sign, text = match.groups()
    if sign and not signed:
        raise _Rejected(Rule.INVALID_NUMBER, f"{_name(f)} {f.value!r} has a sign", f.line)
    quantity = _number(f, text, "the quantity")
    return kind, -quantity if sign else quantity


def _positive(f: Field | None, quantity: Decimal) -> None:
    if quantity <= 0:
        raise _Rejected(Rule.NON_POSITIVE_QUANTITY, f"the quantity {quantity} is not positive",
                        f.line if f else None)


_AMOUNT = re.compile(r"(N?)([A-Z]{3})(.*)", re.DOTALL)


def _amount(f: Field) -> tuple[str, Decimal]:
    """(currency, positive amount) of ':SETT//USD1234,56'; a negative one is refused."""
    match = _AMOUNT.fullmatch(f.value)
    if f.issuer or match is None:
        raise _Rejected(Rule.MT_MALFORMED, f":{f.tag}:{f.text} is not "
                                           f":{f.qualifier or 'QUAL'}//CCYamount", f.line)
    sign, currency, text = match.groups()
    if not is_currency(currency):
        raise _Rejected(Rule.INVALID_CURRENCY, f"{_name(f)} {f.value!r}: {currency!r} is not an "
                                               "ISO 4217 currency", f.line)
    amount = _number(f, text, "the amount")
    if sign:
        raise _Rejected(Rule.AMOUNT_SIGN_CONTRADICTS_KIND,
                        f"{_name(f)} {f.value!r} is negative (sign N)", f.line)
    return currency, amount


_ISIN_SHAPE = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")


def _security(f: Field) -> tuple[str, str]:
    """(ISIN, '') of ':35B:ISIN US0378331005', or ('', the identification as given)."""
    first = f.text.partition("\n")[0]
    if not first.startswith("ISIN "):
        return "", first
    isin = first.removeprefix("ISIN ")
    if not _ISIN_SHAPE.fullmatch(isin):
        raise _Rejected(Rule.INVALID_ISIN, f":35B: ISIN {isin!r} is not 2 letters, 9 letters "
                                           "or digits and a check digit", f.line)
    return isin, ""


def _account(f: Field) -> str:
    """The account of :97A::SAFE//123 or :97B::SAFE/ISSUER/TYPE/123."""
    if f.tag == "97B":
        return f.value.partition("/")[2]
    return f.value


def _joined(text: str) -> str:
    """95Q name and address: a full 35-character line was wrapped, so it runs on; other line
    breaks are kept (a hard break right after 35 characters cannot be told from a wrap)."""
    lines = text.split("\n")
    out = lines[0]
    for before, line in pairwise(lines):
        out += ("" if len(before) == _LINE else "\n") + line
    return out


def _party(f: Field) -> str:
    if f.tag == "95R":
        return f"{f.issuer}/{f.value}"
    if f.tag == "95Q":
        return _joined(f.value)
    return f.value


def _parties(body: Sequence) -> dict[str, Party]:
    """The settlement parties of SETDET by qualifier (DEAG, REAG, PSET, …) with their account."""
    parties: dict[str, Party] = {}
    for sequence in body.find("SETDET", "SETPRTY"):
        party = next((f for f in sequence.fields if f.is_("95a")), None)
        if party is not None:
            account = sequence.first("97a", "SAFE")
            parties.setdefault(party.qualifier,
                               Party(_party(party), _account(account) if account else ""))
    return parties


def _function(f: Field, allowed: dict[str, T]) -> T:
    code = f.value.partition("/")[0]
    if code not in allowed:
        raise _Rejected(Rule.INVALID_ENUM_VALUE, f":23G:{f.value} is not read here (only "
                                                 f"{', '.join(allowed)})", f.line)
    return allowed[code]


# --- instructions: MT540–543 ------------------------------------------------------------------

_INSTRUCTION_TYPES = {
    "540": (Direction.RECEIVE, Payment.FREE), "541": (Direction.RECEIVE, Payment.AGAINST),
    "542": (Direction.DELIVER, Payment.FREE), "543": (Direction.DELIVER, Payment.AGAINST),
}
_MT_OF = {kinds: mt for mt, kinds in _INSTRUCTION_TYPES.items()}
_INSTRUCTION_NAMES = {"540": "receive free", "541": "receive against payment",
                      "542": "deliver free", "543": "deliver against payment"}
_FUNCTIONS = {"NEWM": Function.NEW, "CANC": Function.CANCEL}


def read_instructions(text: str, source: str) -> tuple[list[Instruction], list[Problem]]:
    """The settlement instructions (MT540–543) of ``text`` and the problems met."""
    return _read(text, source, _INSTRUCTION_NAMES,
                 lambda message, notes: [_instruction(message, notes)])


def _instruction(message: FinMessage, notes: list[Problem]) -> Instruction:
    direction, payment = _INSTRUCTION_TYPES[message.message_type]
    genl, traddet, fiac = (_one(message, path) for path in ("GENL", "TRADDET", "FIAC"))
    links = message.body.find("GENL", "LINK")
    previous = [f.value for link in links for f in link.every("20C", "PREV")]
    prep = genl.first("98a", "PREP")
    isin, named = _security(_needed(traddet, "35B", "", "the security"))
    if not isin:
        raise _Rejected(Rule.INVALID_ISIN, f"the security is {named!r}, not an ISIN",
                        traddet.line)
    quantity_field = _needed(fiac, "36B", "SETT", "the quantity")
    _, quantity = _quantity(quantity_field, notes=notes)
    _positive(quantity_field, quantity)
    trade_date = traddet.first("98a", "TRAD")  # optional in MT540–543
    owner = fiac.first("95a", "ACOW")
    amount = currency = None
    if payment is Payment.AGAINST:
        amount_field = _anywhere(message.body, "19A", "SETT")
        assert amount_field is not None  # check_mandatory
        currency, amount = _amount(amount_field)
    parties = _parties(message.body)
    agent = "DEAG" if direction is Direction.RECEIVE else "REAG"
    for qualifier in (agent, "PSET"):
        if qualifier not in parties:
            raise _Rejected(Rule.MT_MISSING_FIELD, f"no settlement party :95a::{qualifier}: "
                                                   "(the message says :22F::DBNM:)",
                            _one(message, "SETDET").line)
    return Instruction(
        reference=_needed(genl, "20C", "SEME", "the reference").value,
        function=_function(_needed(genl, "23G", "", "the function"), _FUNCTIONS),
        direction=direction, payment=payment,
        trade_date=_moment(trade_date).date() if trade_date else None,
        settlement_date=_moment(_needed(traddet, "98a", "SETT", "the settlement date")).date(),
        isin=isin, quantity=quantity, amount=amount, currency=currency,
        account_owner=_party(owner) if owner else message.sender_bic,
        safekeeping_account=_account(_needed(fiac, "97a", "SAFE", "the safekeeping account")),
        place_of_settlement=parties["PSET"].bic, counterparty=parties[agent],
        linked_reference=previous[0] if previous else None,
        trade_ids=tuple(f.value for link in links for f in link.every("20C", "TRRF")),
        partial_allowed=not any(f.value == "NPAR" for sequence in message.body.find("SETDET")
                                for f in sequence.every("22F", "STCO")),
        creation=_moment(prep) if prep else None)


# --- confirmations: MT544–547 -----------------------------------------------------------------

_CONFIRMATION_TYPES = {
    "544": (Direction.RECEIVE, Payment.FREE), "545": (Direction.RECEIVE, Payment.AGAINST),
    "546": (Direction.DELIVER, Payment.FREE), "547": (Direction.DELIVER, Payment.AGAINST),
}
_CONFIRMATION_NAMES = {"544": "receive free confirmation",
                       "545": "receive against payment confirmation",
                       "546": "deliver free confirmation",
                       "547": "deliver against payment confirmation"}
_QUANTITY_PREFERENCE = ("UNIT", "FAMT", "AMOR")


def read_confirmations(text: str, source: str) -> tuple[list[Confirmation], list[Problem]]:
    """What settled, from the confirmations (MT544–547) of ``text``, and the problems met."""
    return _read(text, source, _CONFIRMATION_NAMES,
                 lambda message, notes: [_confirmation(message, notes)])


def _confirmation(message: FinMessage, notes: list[Problem]) -> Confirmation:
    direction, payment = _CONFIRMATION_TYPES[message.message_type]
    genl, traddet, fiac = (_one(message, path) for path in ("GENL", "TRADDET", "FIAC"))
    function = _needed(genl, "23G", "", "the function")
    _function(function, {"NEWM": None})
    related = [f for link in message.body.find("GENL", "LINK") for f in link.every("20C", "RELA")]
    if not related:
        raise _Rejected(Rule.MT_MISSING_FIELD, "our reference (:20C::RELA: in GENL/LINK) is "
                                               "missing", genl.line)
    extra: dict[str, str] = {}
    isin, named = _security(_needed(traddet, "35B", "", "the security"))
    if named:
        extra["security_id"] = named
    settled: dict[str, Decimal] = {}  # the first settled quantity of each type
    for f in fiac.every("36B", "ESTT"):
        settled.setdefault(*_quantity(f, notes=notes))
    kind = next((k for k in _QUANTITY_PREFERENCE if k in settled), next(iter(settled)))
    _positive(fiac.first("36B", "ESTT"), settled[kind])
    if kind != "UNIT":
        extra["quantity_type"] = kind
    remaining_field = _anywhere(message.body, "36B", "RSTT")
    remaining = _quantity(remaining_field, notes=notes)[1] if remaining_field else None
    indicators = {(f.qualifier, f.value) for sequence in message.body.walk()
                  for f in sequence.every("22F")}
    partial = bool({("PARS", "PAIN"), ("STCO", "PART")} & indicators) \
        or (remaining is not None and remaining > 0)
    if ("PARS", "PARC") in indicators:
        extra["partial_settlement"] = "PARC"
    if "/" in function.value:
        extra["subfunction"] = function.value.partition("/")[2]
    amount = currency = None
    if payment is Payment.AGAINST:
        amount_field = _anywhere(message.body, "19A", "ESTT")
        assert amount_field is not None  # check_mandatory
        currency, amount = _amount(amount_field)
    return Confirmation(
        reference=related[0].value, direction=direction, payment=payment, isin=isin,
        quantity=settled[kind], amount=amount, currency=currency,
        settlement_date=_moment(_needed(traddet, "98a", "ESET", "the settlement date")).date(),
        partial=partial, remaining_quantity=remaining,
        message_reference=_needed(genl, "20C", "SEME", "the reference").value,
        source=message.where(), extra=extra)


# --- status advices: MT548 --------------------------------------------------------------------

_STATUS_KINDS: dict[tuple[str, str], StatusKind] = {
    ("IPRC", "PACK"): StatusKind.ACKNOWLEDGED,
    ("IPRC", "REJT"): StatusKind.REJECTED,
    ("IPRC", "CAND"): StatusKind.CANCELLED,
    ("IPRC", "CPRC"): StatusKind.CANCEL_PENDING,
    ("IPRC", "CANP"): StatusKind.CANCEL_PENDING,
    ("CPRC", "CAND"): StatusKind.CANCELLED,
    ("CPRC", "CANP"): StatusKind.CANCEL_PENDING,
    ("CPRC", "PACK"): StatusKind.CANCEL_PENDING,
    ("CPRC", "REJT"): StatusKind.REJECTED,
    ("CPRC", "DEND"): StatusKind.REJECTED,
    ("MTCH", "MACH"): StatusKind.MATCHED,
    ("MTCH", "NMAT"): StatusKind.UNMATCHED,
    ("SETT", "PEND"): StatusKind.PENDING,
    ("SETT", "PENF"): StatusKind.FAILING,
}
# Under 23G:CAST the advice is about our cancellation request, not the instruction.
_CANCELLATION_KINDS = {("IPRC", "PACK"): StatusKind.CANCEL_PENDING,
                       ("IPRC", "DEND"): StatusKind.REJECTED}
_HOLD_REASONS = frozenset({"PREA", "CSDH", "CVAL"})  # ours on hold; the CSD's hold, validation


def read_status_advices(text: str, source: str) -> tuple[list[StatusAdvice], list[Problem]]:
    """The status advices of the MT548s of ``text`` (one per status given) and the problems."""
    return _read(text, source, {"548": "settlement status and processing advice"},
                 _status_advices)


def _status_advices(message: FinMessage, problems: list[Problem]) -> list[StatusAdvice]:
    genl = _one(message, "GENL")
    cancellation = _function(_needed(genl, "23G", "", "the function"),
                             {"INST": False, "CAST": True})
    related = [f for link in message.body.find("GENL", "LINK") for f in link.every("20C", "RELA")]
    if not related:
        raise _Rejected(Rule.MT_MISSING_FIELD, "the reference the status is about "
                                               "(:20C::RELA: in GENL/LINK) is missing", genl.line)
    advices = []
    for stat in message.body.find("GENL", "STAT"):
        status = _needed(stat, "25D", "", "the status")
        reasons = tuple(f"{f.issuer}/{f.value}" if f.issuer else f.value
                        for reason in stat.find("REAS") for f in reason.every("24B"))
        key = (status.qualifier, status.value)
        kind = (_CANCELLATION_KINDS.get(key) if cancellation else None) \
            or (_STATUS_KINDS.get(key) if not status.issuer else None)
        if kind is None:
            problems.append(Problem(Rule.INVALID_ENUM_VALUE,
                                    f"MT548: status :25D:{status.text} is not one we read "
                                    "(IPRC, CPRC, MTCH, SETT codes of settlement/model.py)",
                                    message.source, status.line))
            continue
        if kind in (StatusKind.PENDING, StatusKind.FAILING) and _HOLD_REASONS & set(reasons):
            kind = StatusKind.HELD
        advices.append(StatusAdvice(
            reference=related[0].value, kind=kind, reasons=reasons,
            message_reference=_needed(genl, "20C", "SEME", "the reference").value,
            source=message.where()))
    return advices


def read_settlement_messages(text: str, source: str,
                             ) -> tuple[list[Confirmation | StatusAdvice], list[Problem]]:
    """Confirmations (MT544–547) and status advices (MT548) of one file, in file order: one
    pass, so a damaged message is reported once and neither type is 'unsupported'."""
    names = {**_CONFIRMATION_NAMES, "548": "settlement status and processing advice"}

    def build(message: FinMessage, problems: list[Problem]) -> list[Confirmation | StatusAdvice]:
        if message.message_type == "548":
            return list(_status_advices(message, problems))
        return [_confirmation(message, problems)]

    return _read(text, source, names, build)


# --- holdings: MT535 --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holding:
    """One aggregate balance of a statement of holdings (MT535 :93B::AGGR//)."""

    account: str  # the safekeeping account (97a::SAFE of the sub-safekeeping or of GENL)
    isin: str  # '' when the statement names the security otherwise (see security_id)
    quantity: Decimal  # the aggregate balance; negative when short (sign N)
    statement_date: dt.date  # :98a::STAT
    quantity_type: str = "UNIT"  # UNIT, FAMT (face amount), AMOR (amortised value)
    security_id: str = ""  # the :35B: identification when it is not an ISIN ('/US/31392EXH8')
    source: str = field(default="", compare=False)  # file:line of the message


def read_holdings(text: str, source: str) -> tuple[list[Holding], list[Problem]]:
    """The aggregate holdings of the statements of holdings (MT535) of ``text``."""
    return _read(text, source, {"535": "statement of holdings"},
                 lambda message, notes: _holdings(message, notes))


def _holdings(message: FinMessage, notes: list[Problem]) -> list[Holding]:
    genl = _one(message, "GENL")
    statement_date = _moment(_needed(genl, "98a", "STAT", "the statement date")).date()
    account = _account(_needed(genl, "97a", "SAFE", "the safekeeping account"))
    holdings = []
    for subsafe in message.body.find("SUBSAFE"):
        sub_account = subsafe.first("97a", "SAFE")
        for position in subsafe.find("FIN"):
            isin, named = _security(_needed(position, "35B", "", "the security"))
            kind, quantity = _quantity(_needed(position, "93B", "AGGR", "the balance"), True,
                                       notes)
            holdings.append(Holding(
                account=_account(sub_account) if sub_account else account, isin=isin,
                quantity=quantity, statement_date=statement_date, quantity_type=kind,
                security_id=named, source=message.where()))
    return holdings


# --- writing MT540–543 ------------------------------------------------------------------------


class MtWriteError(ValueError):
    """An instruction that cannot be written as a valid MT54x; ``problems`` say why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


_COUNTRY = re.compile(r"[A-Z]{2}")
_PROPRIETARY = re.compile(r"([A-Z0-9]{1,8})/([^\n]{1,34})")
_LINE = 35  # the width of a 95Q name and address line
_LINES = 4


def _is_bic(code: str) -> bool:
    """ISO 9362, 8 or 11 characters, capitals, as SWIFT writes it."""
    return code == code.upper() and " " not in code and bool(bic_number.is_valid(code))


def _lt_address(bic: str, terminal: str) -> str:
    return f"{bic[:8]}{terminal}{bic[8:] or 'XXX'}"


class _Writer:
    """Builds the lines of one MT54x, collecting every problem instead of stopping at one."""

    def __init__(self, instruction: Instruction) -> None:
        self.instruction = instruction
        self.problems: list[Problem] = []
        self.lines: list[str] = []

    def refuse(self, rule: Rule, detail: str) -> None:
        self.problems.append(Problem(rule, detail, f"instruction {self.instruction.reference}"))

    def x_text(self, what: str, text: str, size: int, *, lines: int = 1) -> bool:
        """Whether ``text`` is a valid ``lines`` * ``size`` x field; refuses it if not."""
        if not text.strip():
            self.refuse(Rule.MT_MISSING_FIELD, f"{what} is empty")
            return False
        bad = check_x_charset(text) + [(at, char) for at, char in enumerate(text)
                                       if lines == 1 and char in "\r\n"]
        if bad:
            shown = ", ".join(f"{char!r} at {at}" for at, char in bad[:5])
            self.refuse(Rule.MT_INVALID_CHARACTER,
                        f"{what} {text!r} has characters outside the SWIFT x set: {shown}")
            return False
        if len(text) > size * lines:
            self.refuse(Rule.MT_MALFORMED, f"{what} {text!r} has {len(text)} characters, more "
                                           f"than the {size * lines} allowed")
            return False
        return True

    def reference(self, what: str, text: str) -> bool:
        """A 16x reference: not beginning or ending with '/', no '//' inside."""
        if not self.x_text(what, text, 16):
            return False
        if text.startswith("/") or text.endswith("/") or "//" in text:
            self.refuse(Rule.MT_MALFORMED, f"{what} {text!r} may not begin or end with '/' nor "
                                           "hold '//'")
            return False
        return True

    def bic(self, what: str, code: str) -> bool:
        if not _is_bic(code):
            self.refuse(Rule.INVALID_BIC, f"{what} {code!r} is not a BIC (ISO 9362: 8 or 11 "
                                          "characters, capitals)")
            return False
        return True

    def number(self, what: str, value: Decimal) -> str:
        text = format_swift_decimal(value)
        if len(text) > 15:
            self.refuse(Rule.MT_MALFORMED, f"{what} {text} is longer than the 15 characters "
                                           "SWIFT allows")
        return text

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def sequence(self, name: str, *lines: str) -> None:
        self.add(f":16R:{name}", *lines, f":16S:{name}")

    def party(self, qualifier: str, identifier: str) -> list[str]:
        """The 95a line(s) of a settlement party: 95P for a BIC, 95R for ISSUER/code, 95C for
        a country (PSET), else 95Q name and address (DEAG, REAG), transliterated."""
        if _is_bic(identifier):
            return [f":95P::{qualifier}//{identifier}"]
        if qualifier == "PSET":
            if _COUNTRY.fullmatch(identifier):
                return [f":95C::PSET//{identifier}"]
            self.refuse(Rule.INVALID_BIC, f"the place of settlement {identifier!r} is neither "
                                          "a BIC nor a country code")
            return []
        if _PROPRIETARY.fullmatch(identifier) and not check_x_charset(identifier):
            return [f":95R::{qualifier}/{identifier}"]
        text = transliterate(identifier)
        if not self.x_text(f"the {qualifier} name and address", text, _LINE, lines=_LINES):
            return []
        lines = [hard[at:at + _LINE] for hard in text.split("\n")
                 for at in range(0, max(len(hard), 1), _LINE)]
        if len(lines) > _LINES:
            self.refuse(Rule.MT_MALFORMED, f"the {qualifier} name and address {text!r} needs "
                                           f"{len(lines)} lines of {_LINE}, more than {_LINES}")
            return []
        if not all(lines):
            self.refuse(Rule.MT_MALFORMED, f"the {qualifier} name and address {text!r} has an "
                                           "empty line")
            return []
        if any(line.startswith((":", "-")) for line in lines[1:]):
            self.refuse(Rule.MT_INVALID_CHARACTER,
                        f"a line of the {qualifier} name and address {text!r} would begin with "
                        "':' or '-', which SWIFT reads as a new field or the end of the text")
            return []
        lines[0] = f":95Q::{qualifier}//{lines[0]}"
        return lines


def mt54x_problems(instruction: Instruction, sender_bic: str, receiver_bic: str) -> list[Problem]:
    """Why ``instruction`` cannot be written as an MT540–543 (empty when it can)."""
    return _compose(instruction, sender_bic, receiver_bic)[1]


def write_mt54x(instruction: Instruction, sender_bic: str, receiver_bic: str) -> str:
    """The MT540/541/542/543 of ``instruction``, from ``sender_bic`` (us) to ``receiver_bic``
    (our custodian or the CSD). Raises ``MtWriteError`` (a ValueError) with the problems when
    the instruction cannot be written (see ``mt54x_problems``)."""
    text, problems = _compose(instruction, sender_bic, receiver_bic)
    if problems:
        raise MtWriteError(problems)
    return text


def _compose(i: Instruction, sender_bic: str, receiver_bic: str) -> tuple[str, list[Problem]]:
    w = _Writer(i)
    mt = _MT_OF[(i.direction, i.payment)]
    w.bic("the sender", sender_bic)
    w.bic("the receiver", receiver_bic)
    # A: general information
    w.reference("the reference (SEME)", i.reference)
    genl = [f":20C::SEME//{i.reference}", f":23G:{i.function.value}"]
    if i.creation is not None:
        genl.append(_preparation(w, i.creation))
    if i.function is Function.CANCEL and not i.linked_reference:
        w.refuse(Rule.MT_MISSING_FIELD, "a cancellation needs the reference it cancels "
                                        "(linked_reference, :20C::PREV:)")
    links = [] if i.linked_reference is None else [("PREV", i.linked_reference)]
    links += [("TRRF", trade_id) for trade_id in i.trade_ids]
    for qualifier, reference in links:
        w.reference(f"the linked reference ({qualifier})", reference)
        genl += [":16R:LINK", f":20C::{qualifier}//{reference}", ":16S:LINK"]
    w.sequence("GENL", *genl)
    # B: trade details
    if not isin_number.is_valid(i.isin) or i.isin != i.isin.upper():
        w.refuse(Rule.INVALID_ISIN, f"{i.isin!r} is not a valid ISIN")
    w.sequence("TRADDET", f":98A::SETT//{_yyyymmdd(i.settlement_date)}",
               *([f":98A::TRAD//{_yyyymmdd(i.trade_date)}"] if i.trade_date else []),
               f":35B:ISIN {i.isin}")
    # C: financial instrument and account
    if i.quantity <= 0:
        w.refuse(Rule.NON_POSITIVE_QUANTITY, f"the quantity {i.quantity} is not positive")
    quantity = w.number("the quantity", i.quantity) if i.quantity > 0 else "0,"
    w.bic("the account owner", i.account_owner)
    w.x_text("the safekeeping account", i.safekeeping_account, 35)
    w.sequence("FIAC", f":36B::SETT//UNIT/{quantity}", f":95P::ACOW//{i.account_owner}",
               f":97A::SAFE//{i.safekeeping_account}")
    # E: settlement details, E1 parties, E3 amount
    agent = "DEAG" if i.direction is Direction.RECEIVE else "REAG"
    setdet = [":22F::SETR//TRAD"] + ([] if i.partial_allowed else [":22F::STCO//NPAR"])
    account = i.counterparty.account
    if account:
        w.x_text(f"the {agent} account", account, 35)
    setdet += [":16R:SETPRTY", *w.party(agent, i.counterparty.bic),
               *([f":97A::SAFE//{account}"] if account else []), ":16S:SETPRTY",
               ":16R:SETPRTY", *w.party("PSET", i.place_of_settlement), ":16S:SETPRTY"]
    setdet += _settlement_amount(w, i)
    w.sequence("SETDET", *setdet)
    if w.problems:
        return "", w.problems
    header = (f"{{1:F01{_lt_address(sender_bic, 'A')}0000000000}}"
              f"{{2:I{mt}{_lt_address(receiver_bic, 'X')}N}}{{4:")
    text = "\r\n".join([header, *w.lines, "-}"])
    _assert_readable(text, mt)
    return text, []


def _preparation(w: _Writer, creation: dt.datetime) -> str:
    stamp = f"{_yyyymmdd(creation)}{creation:%H%M%S}"
    offset = creation.utcoffset()
    if offset is None:
        return f":98C::PREP//{stamp}"
    minutes, seconds = divmod(int(offset.total_seconds()), 60)
    if seconds or abs(minutes) >= 100 * 60:
        w.refuse(Rule.INVALID_DATE, f"the creation time's UTC offset {offset} is not whole "
                                    "minutes below 100 hours")
    sign = "N" if minutes < 0 else ""
    hours, minutes = divmod(abs(minutes), 60)
    return f":98E::PREP//{stamp}/{sign}{hours:02d}{minutes:02d}"


def _settlement_amount(w: _Writer, i: Instruction) -> list[str]:
    if i.payment is Payment.FREE:
        if i.amount is not None or i.currency is not None:
            w.refuse(Rule.MT_MALFORMED, f"a free-of-payment instruction has no settlement "
                                        f"amount, yet it says {i.currency} {i.amount}")
        return []
    if i.amount is None or i.currency is None:
        w.refuse(Rule.AMOUNT_REQUIRED, "against payment, but the amount or currency is missing")
        return []
    if not is_currency(i.currency):
        w.refuse(Rule.INVALID_CURRENCY, f"{i.currency!r} is not an ISO 4217 currency")
        return []
    if i.amount <= 0:
        w.refuse(Rule.ZERO_AMOUNT if i.amount == 0 else Rule.AMOUNT_SIGN_CONTRADICTS_KIND,
                 f"the settlement amount {i.amount} is not positive")
        return []
    scale = currency_scale(i.currency)
    if not fits_scale(i.amount, scale):
        w.refuse(Rule.AMOUNT_EXCEEDS_SCALE, f"the settlement amount {i.amount} has more than "
                                            f"the {scale} decimals of {i.currency}")
        return []
    amount = w.number("the settlement amount", i.amount)
    return [":16R:AMT", f":19A::SETT//{i.currency}{amount}", ":16S:AMT"]


def _assert_readable(text: str, mt: str) -> None:
    """What we write reads back whole and has its mandatory parts (a programmer check)."""
    messages, problems = parse_fin(text, "written")
    problems += [p for message in messages for p in check_mandatory(message)]
    assert len(messages) == 1 and not problems, (mt, problems)
    assert not check_x_charset(text.partition("{4:")[2].removesuffix("-}")), text
