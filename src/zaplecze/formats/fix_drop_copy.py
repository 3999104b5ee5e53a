"""The FIX 4.4 drop copy: a broker's or venue's copy of our executions, read as trades.csv rows.

``read_drop_copy`` takes a whole file of FIX messages and returns the rows it yields, each with
the columns of trades.csv (see the book-folder contract), beside the problems it met. It does no
I/O and books nothing: the capture path validates the rows like any trades.csv row.

What the file may look like:
  - SOH-delimited, or '|'-delimited when the file holds no SOH at all (checksum and body length are
    then computed as if every '|' were SOH);
  - one message per line or back to back; log prefixes before ``8=FIX`` (``I8=FIX…``, a time
    stamp) and text after a message's CheckSum field are skipped.

Every message is checked before it is read, in this order, and a message gets one problem at
most (the first rule it breaks): its length (``FIX_MESSAGE_BYTES_MAX``), BodyLength(9) as the
second field and CheckSum(10) as the last (``fix_malformed``), the body length
(``fix_bad_body_length``, whose detail also names a wrong checksum), the checksum
(``fix_bad_checksum``), then its fields (``fix_malformed`` when they are not tag=value pairs,
``fix_missing_tag`` when MsgType(35) is absent). A damaged message is never read further.

Which messages become rows (MsgType 35=8, ExecutionReport, BeginString FIX.4.4):
  - ExecType(150)=F, a trade: a NEW row, ``trade_id`` = ``"FIX-" + ExecID(17)``;
  - ExecType(150)=H, a trade cancel: a CANCEL row of ``"FIX-" + ExecRefID(19)``;
  - every other message and exec type is skipped without a problem (``summarize_drop_copy``
    counts them), except ExecType 1 and 2 (FIX 4.2's partial fill and fill, not FIX 4.4 values:
    ``invalid_enum_value``) and an ExecutionReport of another FIX version that reports a trade
    (``fix_malformed``): both would otherwise be fills dropped without a word.

The trade_id comes from ExecID alone so that reading the same file again, or a PossDup resend,
or the same execution through a backup session, gives the same id: a repeat books nothing. Two
sources that both use the same ExecID collide loudly (``conflicting_duplicate_id`` at capture)
rather than silently booking twice.

Field by field (a NEW row; a CANCEL row carries trade_id, action, account and trade_date only):
  account       Account(1) through the map (see ``parse_account_map``)
  isin          SecurityID(48) when SecurityIDSource(22) is 4 (ISIN), else Symbol(55) through
                the map
  side          Side(54): 1 BUY, 2 SELL; any other value is a problem
  quantity      LastQty(32), price LastPx(31): the text as sent, checked to be a plain decimal
  currency      Currency(15); blank when absent (capture then rejects or fills it, not this reader)
  trade_date    TradeDate(75), else the date of TransactTime(60), which is UTC; for a CANCEL the
                other way round: the day the cancel happened, TransactTime first
  venue         LastMkt(30), else ExDestination(100), when it has the shape of a MIC; else blank
  counterparty  the first ContraBroker(375), else blank
  commission    Commission(12) when CommType(13) is 3 (absolute), else blank (the fee schedule)
  settlement_date  SettlDate(64), else blank

The line of a row or a problem is the message's MsgSeqNum(34), or its 1-based position in the
file when it has none. Numbers stay text and never pass through a float.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import simplefix

from zaplecze.kernel.limits import FIX_MESSAGE_BYTES_MAX
from zaplecze.kernel.money import NotAnExactNumber, parse_decimal
from zaplecze.kernel.problems import BookError, Problem, Rule

__all__ = [
    "TRADE_COLUMNS",
    "DropCopyMap",
    "parse_account_map",
    "read_drop_copy",
    "summarize_drop_copy",
]

TRADE_COLUMNS = ("trade_id", "action", "account", "isin", "side", "quantity", "price", "currency",
                 "trade_date", "venue", "counterparty", "commission", "settlement_date")
TRADE_ID_PREFIX = "FIX-"

SOH = b"\x01"
# A message starts at "8=FIX" unless a digit precedes it: "58=FIX…" is a Text field, not a start.
_START = re.compile(rb"(?<![0-9])8=FIX")
_HEADER = re.compile(rb"8=[^\x01]*\x019=([^\x01]*)\x01")
_FIELD_END = re.compile(rb"[\x01\r\n]")
_SEQUENCE_NUMBER = re.compile(rb"\x0134=([0-9]{1,9})\x01")
_MIC = re.compile(r"[A-Z0-9]{4}")

_TAG_NAMES = {
    1: "Account", 8: "BeginString", 12: "Commission", 13: "CommType", 15: "Currency",
    17: "ExecID", 19: "ExecRefID", 22: "SecurityIDSource", 30: "LastMkt", 31: "LastPx",
    32: "LastQty", 35: "MsgType", 48: "SecurityID", 54: "Side", 55: "Symbol",
    60: "TransactTime", 64: "SettlDate", 75: "TradeDate", 100: "ExDestination",
    150: "ExecType", 375: "ContraBroker", 479: "CommCurrency",
}
_SIDES = {"1": "BUY", "2": "SELL"}
_SUPPORTED_VERSION = "FIX.4.4"
# ExecType values that report a trade in FIX 4.4 (F, G, H) or in FIX 4.0-4.2 (1, 2).
_TRADE_EXEC_TYPES = frozenset({"1", "2", "F", "G", "H"})


@dataclass(frozen=True)
class DropCopyMap:
    """How the FIX side's names translate to ours; built by ``parse_account_map``."""

    accounts: Mapping[str, str]  # FIX Account(1) value -> our account id; "*" maps any account
    symbols: Mapping[str, str] = field(default_factory=dict)  # Symbol(55) -> ISIN
    default_account: str | None = None  # for a message without Account(1)


def parse_account_map(text: str) -> DropCopyMap:
    """Read the small CSV that maps FIX names to ours.

    The header is ``kind,fix_value,zaplecze_value``; every other line is one of::

        account,U7B008,C1            FIX Account(1) U7B008 is our account C1
        account,*,HOUSE              any Account(1) not listed, and a message without one, is HOUSE
        account,,C9                  a message without Account(1) is C9 (rather than '*')
        symbol,TESTB,US0378331005    Symbol(55) TESTB is this ISIN (used when SecurityID(48) is
                                     not an ISIN)

    A byte-order mark, CRLF, quoted fields and blank lines are accepted; cells are stripped.
    Repeating a line is harmless; giving one FIX value two different meanings is not. A file
    that cannot be used raises ``BookError`` naming the line, since no message can be read
    without it.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = [cell.strip() for cell in next(reader, [])]
    if header != ["kind", "fix_value", "zaplecze_value"]:
        raise BookError(f"account map line 1: the header must be kind,fix_value,zaplecze_value, "
                        f"not {','.join(header)!r}")
    tables: dict[str, dict[str, str]] = {"account": {}, "symbol": {}}
    for row in reader:
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        where = f"account map line {reader.line_num}"
        if len(cells) != 3:
            raise BookError(f"{where}: expected 3 fields (kind,fix_value,zaplecze_value), "
                            f"found {len(cells)}")
        kind, fix_value, ours = cells
        if kind not in tables:
            raise BookError(f"{where}: kind must be 'account' or 'symbol', not {kind!r}")
        if not ours or (kind == "symbol" and not fix_value):
            raise BookError(f"{where}: a {kind} line needs both a FIX value and ours")
        earlier = tables[kind].setdefault(fix_value, ours)
        if earlier != ours:
            raise BookError(f"{where}: {kind} {fix_value or '(none)'!r} is mapped to both "
                            f"{earlier!r} and {ours!r}")
    accounts = tables["account"]
    default_account = accounts.pop("", None)
    return DropCopyMap(accounts=accounts, symbols=tables["symbol"], default_account=default_account)


def read_drop_copy(data: bytes, source: str,
                   mapping: DropCopyMap) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """The trades.csv rows of a drop-copy file, each with its line, and the problems met."""
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[Problem] = []
    found = False
    for message in _messages(data):
        found = True
        if message.problem is not None:
            problems.append(message.problem.located(source, message.line))
            continue
        assert message.fields is not None
        try:
            row = _trade_row(message.fields, mapping)
        except _Rejected as rejected:
            problems.append(rejected.problem.located(source, message.line))
            continue
        if row is not None:
            rows.append((message.line, row))
    if not found and data.strip():
        problems.append(Problem(Rule.FIX_MALFORMED,
                                f"no FIX message (8=FIX…) in the {len(data)} bytes given", source))
    return rows, problems


def summarize_drop_copy(data: bytes) -> dict[str, int]:
    """How many messages of each kind the file holds, sorted by kind.

    Kinds are ``"35=8 150=F"`` for execution reports (``150=?`` without an ExecType),
    ``"35=A"`` and so on for other messages, and ``"damaged"`` for messages that fail their
    framing, body length, checksum or field checks.
    """
    counts = Counter(message.kind for message in _messages(data))
    return dict(sorted(counts.items()))


# --- framing and checking -----------------------------------------------------------------


class _Rejected(Exception):
    """Stops reading one message; carries the problem it broke (never leaves this module)."""

    def __init__(self, rule: Rule, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(rule, detail)


@dataclass(frozen=True)
class _Frame:
    raw: bytes  # from "8=" to the end of the CheckSum field, or up to the next message
    trailer: int | None  # offset of "10=" in raw, None when no CheckSum field was found


@dataclass(frozen=True)
class _Message:
    line: int
    kind: str
    fields: _Fields | None
    problem: Problem | None


def _frames(data: bytes) -> Iterator[_Frame]:
    if SOH not in data:
        data = data.replace(b"|", SOH)
    position = 0
    while (start := _START.search(data, position)) is not None:
        frame = _frame_at(data, start.start())
        position = start.start() + len(frame.raw)
        yield frame


def _frame_at(data: bytes, start: int) -> _Frame:
    # BodyLength frames the message as a FIX engine would (raw data fields may hold "\x0110=").
    # Past what looks like the next message's start (a Text field may say "8=FIX") it is trusted
    # only with a right checksum, so a truncated message cannot swallow the next one. Failing
    # that, the first "\x0110=" before the next message ends this one.
    trailer = _trailer_by_length(data, start)
    following = _START.search(data, start + 1)
    limit = following.start() if following is not None else len(data)
    if trailer is not None and trailer >= limit and not _checksum_holds(data, start, trailer):
        trailer = None
    if trailer is None:
        found = data.find(SOH + b"10=", start, limit)
        if found < 0:
            return _Frame(data[start:limit], None)
        trailer = found + 1
    following = _START.search(data, trailer)
    limit = following.start() if following is not None else len(data)
    end = _FIELD_END.search(data, trailer, limit)
    stop = limit if end is None else end.end() if data[end.start()] == SOH[0] else end.start()
    return _Frame(data[start:stop], trailer - start)


def _trailer_by_length(data: bytes, start: int) -> int | None:
    header = _HEADER.match(data, start)
    if header is None or not header.group(1).isdigit():
        return None
    declared = int(header.group(1))
    if declared > FIX_MESSAGE_BYTES_MAX:
        return None
    trailer = header.end() + declared
    if data[trailer - 1:trailer] == SOH and data[trailer:trailer + 3] == b"10=":
        return trailer
    return None


def _checksum_holds(data: bytes, start: int, trailer: int) -> bool:
    end = _FIELD_END.search(data, trailer)
    found = data[trailer + 3:end.start() if end is not None else len(data)]
    return found == b"%03d" % (sum(data[start:trailer]) % 256)


def _check(frame: _Frame) -> Problem | None:
    raw = frame.raw
    if len(raw) > FIX_MESSAGE_BYTES_MAX:
        return Problem(Rule.FIX_MALFORMED, f"the message has {len(raw)} bytes, more than the "
                                           f"{FIX_MESSAGE_BYTES_MAX} allowed")
    header = _HEADER.match(raw)
    if header is None:
        return Problem(Rule.FIX_MALFORMED, "BodyLength(9) is not the second field")
    if frame.trailer is None:
        return Problem(Rule.FIX_MALFORMED, "no CheckSum(10) field ends the message")
    expected = f"{sum(raw[:frame.trailer]) % 256:03d}"
    found = raw[frame.trailer + 3:].rstrip(SOH).decode("ascii", "replace")
    checksum = f"CheckSum(10) is {found!r}, expected {expected!r}"
    declared = header.group(1).decode("ascii", "replace")
    measured = frame.trailer - header.end()
    if not (declared.isascii() and declared.isdigit() and int(declared) == measured):
        also = f"; {checksum} as well" if found != expected else ""
        return Problem(Rule.FIX_BAD_BODY_LENGTH,
                       f"BodyLength(9) is {declared!r}, but the body has {measured} bytes{also}")
    if found != expected:
        return Problem(Rule.FIX_BAD_CHECKSUM,
                       f"{checksum} (the sum of the bytes before it, modulo 256)")
    return None


def _parse(raw: bytes) -> Any:
    parser = simplefix.FixParser(allow_empty_values=True)
    parser.append_buffer(raw if raw.endswith(SOH) else raw + SOH)
    try:
        return parser.get_message()
    except (simplefix.errors.ParsingError, ValueError):
        return None


def _messages(data: bytes) -> Iterator[_Message]:
    for index, frame in enumerate(_frames(data), start=1):
        sequence = _SEQUENCE_NUMBER.search(frame.raw)
        line = int(sequence.group(1)) if sequence and int(sequence.group(1)) > 0 else index
        problem = _check(frame)
        parsed = None if problem is not None else _parse(frame.raw)
        if problem is None and parsed is None:
            problem = Problem(Rule.FIX_MALFORMED, "the message is not a list of tag=value fields")
        if problem is not None:
            yield _Message(line, "damaged", None, problem)
            continue
        fields = _Fields.of(parsed)
        try:
            kind = f"35={fields.required(35)}"
            if kind == "35=8":
                kind += f" 150={fields.text(150) or '?'}"
        except _Rejected as rejected:
            yield _Message(line, "damaged", None, rejected.problem)
            continue
        yield _Message(line, kind, fields, None)


# --- reading one execution report ----------------------------------------------------------


@dataclass(frozen=True)
class _Fields:
    first: dict[int, bytes]  # each tag's first value: the body's, before any repeating group's

    @classmethod
    def of(cls, message: Any) -> _Fields:
        first: dict[int, bytes] = {}
        for tag, value in message.pairs:
            first.setdefault(int(tag), bytes(value))
        return cls(first)

    def text(self, tag: int) -> str | None:
        """The first value of ``tag`` as text; an empty value counts as absent."""
        value = self.first.get(tag)
        if not value:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Rejected(Rule.FIX_MALFORMED,
                            f"tag {tag} ({_name(tag)}) is not UTF-8 text") from None

    def required(self, tag: int) -> str:
        value = self.text(tag)
        if value is None:
            raise _Rejected(Rule.FIX_MISSING_TAG, f"tag {tag} ({_name(tag)}) missing")
        return value

    def number(self, tag: int) -> str:
        value = self.required(tag)
        try:
            parse_decimal(value)
        except NotAnExactNumber:
            raise _Rejected(Rule.INVALID_NUMBER, f"tag {tag} ({_name(tag)}) is {value!r}, "
                                                 "not a decimal number") from None
        return value


def _name(tag: int) -> str:
    return _TAG_NAMES.get(tag, "?")


def _trade_row(fields: _Fields, mapping: DropCopyMap) -> dict[str, str] | None:
    if fields.text(35) != "8":
        return None
    exec_type = fields.required(150)
    version = fields.text(8)
    if version != _SUPPORTED_VERSION:
        if exec_type in _TRADE_EXEC_TYPES:
            raise _Rejected(Rule.FIX_MALFORMED, f"an ExecutionReport of {version} reports a trade "
                                                f"(ExecType {exec_type}); only {_SUPPORTED_VERSION}"
                                                " is read")
        return None
    if exec_type in ("1", "2"):
        raise _Rejected(Rule.INVALID_ENUM_VALUE, f"ExecType(150) {exec_type} is FIX 4.2's "
                                                 "(partial) fill; FIX 4.4 reports a trade as F")
    if exec_type == "F":
        return _new_row(fields, mapping)
    if exec_type == "H":
        return _cancel_row(fields, mapping)
    return None


def _new_row(fields: _Fields, mapping: DropCopyMap) -> dict[str, str]:
    exec_id = fields.required(17)
    account = _account(fields, mapping)
    isin = _isin(fields, mapping)
    side = _side(fields.required(54))
    quantity = fields.number(32)
    price = fields.number(31)
    trade_date = _first_date(fields, (75, 60))
    currency = fields.text(15) or ""
    settlement_date = fields.text(64)
    return _row(trade_id=TRADE_ID_PREFIX + exec_id, action="NEW", account=account, isin=isin,
                side=side, quantity=quantity, price=price, currency=currency,
                trade_date=trade_date, venue=_venue(fields),
                counterparty=fields.text(375) or "",
                commission=_commission(fields, currency),
                settlement_date=_date(64, settlement_date) if settlement_date else "")


def _cancel_row(fields: _Fields, mapping: DropCopyMap) -> dict[str, str]:
    # The cancel is booked on the day it happened, so TransactTime comes before TradeDate (which
    # a venue may fill with the cancelled trade's own date).
    cancelled = fields.required(19)
    return _row(trade_id=TRADE_ID_PREFIX + cancelled, action="CANCEL",
                account=_account(fields, mapping), trade_date=_first_date(fields, (60, 75)))


def _row(**values: str) -> dict[str, str]:
    return {column: values.get(column, "") for column in TRADE_COLUMNS}


def _account(fields: _Fields, mapping: DropCopyMap) -> str:
    value = fields.text(1)
    if value is None:
        account = mapping.default_account or mapping.accounts.get("*")
        if account is None:
            raise _Rejected(Rule.FIX_MISSING_TAG, "tag 1 (Account) missing, and the account map "
                                                  "has no default account (a line 'account,,ID')")
        return account
    account = mapping.accounts.get(value, mapping.accounts.get("*"))
    if account is None:
        raise _Rejected(Rule.FIX_UNMAPPED_ACCOUNT, f"Account(1) {value!r} is not in the account "
                                                   f"map; add a line 'account,{value},ID'")
    return account


def _isin(fields: _Fields, mapping: DropCopyMap) -> str:
    security_id, source, symbol = fields.text(48), fields.text(22), fields.text(55)
    if security_id is not None and source == "4":
        return security_id
    if symbol is None and security_id is None:
        raise _Rejected(Rule.FIX_MISSING_TAG, "tag 48 (SecurityID) and tag 55 (Symbol) missing: "
                                              "no instrument")
    if symbol is None:
        raise _Rejected(Rule.FIX_MISSING_TAG,
                        f"tag 55 (Symbol) missing, and SecurityID(48) {security_id!r} "
                        f"(SecurityIDSource(22) {source!r}) is not an ISIN (source 4)")
    isin = mapping.symbols.get(symbol)
    if isin is None:
        raise _Rejected(Rule.UNKNOWN_INSTRUMENT,
                        f"Symbol(55) {symbol!r} is not in the symbol map and SecurityID(48) "
                        f"{security_id!r} (SecurityIDSource {source!r}) is not an ISIN; add a line "
                        f"'symbol,{symbol},ISIN'")
    return isin


def _side(value: str) -> str:
    side = _SIDES.get(value)
    if side is None:
        raise _Rejected(Rule.INVALID_ENUM_VALUE,
                        f"Side(54) {value!r} is neither 1 (buy) nor 2 (sell)")
    return side


def _first_date(fields: _Fields, tags: tuple[int, int]) -> str:
    for tag in tags:
        value = fields.text(tag)
        if value is not None:
            return _date(tag, value)
    first, second = tags
    raise _Rejected(Rule.FIX_MISSING_TAG, f"tag {first} ({_name(first)}) missing, and tag "
                                          f"{second} ({_name(second)}) too: no trade date")


def _date(tag: int, text: str) -> str:
    """YYYYMMDD (or TransactTime's YYYYMMDD-HH:MM:SS[.sss], in UTC) as YYYY-MM-DD."""
    digits, rest = text[:8], text[8:]
    try:
        if not (digits.isascii() and digits.isdigit()) or (rest and not rest.startswith("-")):
            raise ValueError(text)
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        raise _Rejected(Rule.INVALID_DATE, f"tag {tag} ({_name(tag)}) is {text!r}, "
                                           "not a date YYYYMMDD") from None


def _venue(fields: _Fields) -> str:
    for tag in (30, 100):
        value = fields.text(tag)
        if value is not None and _MIC.fullmatch(value):
            return value
    return ""


def _commission(fields: _Fields, currency: str) -> str:
    # Only an absolute commission is an amount; per-unit and percentage ones are left to the fee
    # schedule rather than computed here.
    if fields.text(13) != "3" or fields.text(12) is None:
        return ""
    amount = fields.number(12)
    commission_currency = fields.text(479)
    if commission_currency and currency and commission_currency != currency:
        raise _Rejected(Rule.CURRENCY_MISMATCH,
                        f"Commission(12) {amount} is in {commission_currency} (CommCurrency 479), "
                        f"the trade in {currency}")
    return amount
