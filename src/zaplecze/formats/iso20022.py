"""ISO 20022 settlement messages: the instruction we send, the status and confirmation we get.

Three messages of the ISO 20022 securities settlement family (``sese``), each an XML ``Document``
in its own namespace ``urn:iso:std:iso:20022:tech:xsd:<message>``:

  sese.023.001.11  SctiesSttlmTxInstr    our settlement instruction        ``Instruction``
  sese.024.001.12  SctiesSttlmTxStsAdvc  the CSD's status of it            ``StatusAdvice``
  sese.025.001.11  SctiesSttlmTxConf     what settled, all or a part       ``Confirmation``

Each has a writer and a reader (the sese.023 reader and the sese.024/025 writers serve tests and
a simulated CSD). Writers follow the XSD's element order and write what the values say and no
more; readers take what the values need and ignore the rest. The official schemas are never
copied here: ``load_schema`` reads one from a path the caller gives, ``validate`` checks bytes
against it, and a reader given a schema checks every Document before reading it.

A message may travel alone (the ``Document`` is the root) or behind a business application
header: an envelope element of any name holding ``AppHdr`` (head.001, any version) then
``Document``, as many pairs as it likes. Writers given an ``AppHeader`` write the envelope
``<message>`` with a head.001.001.01 ``AppHdr``; its BizMsgIdr is the message's reference (the
instruction's reference for sese.023, ``message_reference`` for sese.024/025, which have no
message identification of their own), its CreDt the header's time in UTC.

Encoding choices (sese.023):
  - amounts and quantities are written exactly from Decimal, never in exponent form; an amount at
    its currency's minor unit when it has no more decimals ("1234.50" EUR), else as given;
  - the settlement amount (SttlmAmt) only against payment: CRDT when we deliver (cash comes to
    us), DBIT when we receive;
  - PrtlSttlmInd PART when a partial settlement is allowed, NPAR when not (PARQ and PARC, the
    allowed-above-a-threshold variants, are not used);
  - both party chains, each at the place of settlement (Dpstry): the counterparty's (Pty1 = its
    BIC and, when known, its safekeeping account) and ours (Pty1 = the account owner with our
    safekeeping account), delivering side before receiving side as the XSD orders them;
  - a cancellation: ISO 20022 cancels an instruction with sese.020, which we do not send, and
    sese.023 has no message function (no NEWM/CANC). A ``Function.CANCEL`` is therefore written
    the way MT540–543 do it (``:23G:CANC`` repeating the whole instruction, ``:20C::PREV``
    naming it): a full sese.023 with its own TxId, a linkage Lnkgs/MsgNb/LngNb
    ``sese.023.001.11`` + Lnkgs/Ref/SctiesSttlmTxId = the cancelled instruction's TxId, and the
    function code ``CANC`` in TradDtls/SttlmInstrPrcgAddtlDtls, the field ISO keeps for
    "processing information that cannot be included within the structured fields". A new
    instruction with a ``linked_reference`` gets the same linkage without ``CANC``.

Reading sese.024: one advice may hold a processing, a matching and a settlement status at once;
each becomes one ``StatusAdvice`` (in that order), ``reference`` = TxId/AcctOwnrTxId:

  PrcgSts/AckdAccptd  ACKNOWLEDGED          MtchgSts/Mtchd   MATCHED
  PrcgSts/PdgPrcg     PENDING               MtchgSts/Umtchd  UNMATCHED
  PrcgSts/Rjctd, Rpr  REJECTED              SttlmSts/Pdg     PENDING, or HELD when a reason is a
  PrcgSts/Canc        CANCELLED                              hold (PREA, CSDH, CVAL)
  PrcgSts/PdgCxl, CxlReqd  CANCEL_PENDING   SttlmSts/Flng    FAILING

Reasons are the codes of <status>/Rsn/Cd/Cd, or the Id of <status>/Rsn/Cd/Prtry for a
proprietary reason (Mtchd's own Rsn/Id too); NoSpcfdRsn (NORE) gives none. A proprietary status
(Prtry) and ModReqd have no kind: each gives an ``invalid_enum_value`` problem and the other
statuses of the advice are still read. The inferred matching status (IfrrdMtchgSts) is not read.
``message_reference`` is the AppHdr's BizMsgIdr ("" without a header). RELEASED has no sese.024
form (a release is answered by sese.031), so ``write_sese024`` refuses it.

Reading sese.025: reference TxIdDtls/AcctOwnrTxId; direction and payment from TxIdDtls; ISIN;
the settled quantity QtyAndAcctDtls/SttldQty (units, or the face amount of a bond); the settled
amount SttldAmt/Amt and its Ccy; the effective settlement date TradDtls/FctvSttlmDt; ``partial``
when AddtlParams/PrtlSttlm is PAIN (a part, more to come) or PARC (a part, the rest cancelled;
``extra["partial_settlement"]`` says which) or a positive RmngToBeSttldQty, which is
``remaining_quantity``. SttlmParams/PrtlSttlmInd (PART…) only repeats that the instruction
allowed partial settlement, so it does not make a confirmation partial.

Problems are values beside the results, located at the file and physical line, their detail
naming the message (BizMsgIdr) and the instruction (TxId) when known: ``xml_malformed`` (not
well-formed XML: that document is lost, but a file may hold several documents one after the
other, each starting with its own ``<?xml`` declaration, and the others are still read),
``unsupported_message_type`` (a Document of another namespace, or none at all),
``xml_schema_invalid`` (the schema's first complaints), then ``missing_required_value``,
``invalid_number``, ``invalid_date``, ``invalid_enum_value``, ``non_positive_quantity`` for a
value the reader needs. One bad Document never stops the next. Entities are never expanded and
nothing is fetched from the network.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from lxml import etree

from zaplecze.kernel.money import (
    NotAnExactNumber,
    at_scale,
    currency_scale,
    fits_scale,
    parse_decimal,
    plain,
)
from zaplecze.kernel.problems import Problem, Rule
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
    "SESE023",
    "SESE024",
    "SESE025",
    "AppHeader",
    "load_schema",
    "read_sese023",
    "read_sese024",
    "read_sese025",
    "validate",
    "write_sese023",
    "write_sese024",
    "write_sese025",
]

ISO_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"
SESE023 = "sese.023.001.11"
SESE024 = "sese.024.001.12"
SESE025 = "sese.025.001.11"
HEAD = "head.001.001.01"
ENVELOPE = "message"  # ISO 20022 names no envelope; the shared samples use this one
CANCEL_MARK = Function.CANCEL.value  # in TradDtls/SttlmInstrPrcgAddtlDtls, see the module doc

# Pending reasons that mean "on hold": your instruction on hold, CSD hold, CSD validation hold.
_HOLD_REASONS = frozenset({"PREA", "CSDH", "CVAL"})
_K = StatusKind
_READ_STATUSES: tuple[tuple[str, dict[str, StatusKind]], ...] = (
    ("PrcgSts", {"AckdAccptd": _K.ACKNOWLEDGED, "PdgPrcg": _K.PENDING, "Rjctd": _K.REJECTED,
                 "Rpr": _K.REJECTED, "Canc": _K.CANCELLED, "PdgCxl": _K.CANCEL_PENDING,
                 "CxlReqd": _K.CANCEL_PENDING}),
    ("MtchgSts", {"Mtchd": _K.MATCHED, "Umtchd": _K.UNMATCHED}),
    ("SttlmSts", {"Pdg": _K.PENDING, "Flng": _K.FAILING}),
)
_WRITTEN_STATUSES: dict[StatusKind, str] = {
    _K.ACKNOWLEDGED: "PrcgSts/AckdAccptd", _K.REJECTED: "PrcgSts/Rjctd",
    _K.CANCELLED: "PrcgSts/Canc", _K.CANCEL_PENDING: "PrcgSts/PdgCxl",
    _K.MATCHED: "MtchgSts/Mtchd", _K.UNMATCHED: "MtchgSts/Umtchd",
    _K.PENDING: "SttlmSts/Pdg", _K.HELD: "SttlmSts/Pdg", _K.FAILING: "SttlmSts/Flng",
}
_PARTIAL_CODES = ("PAIN", "PARC")
_PARTS = ("AppHdr", "Document")
_DECLARATION = re.compile(rb"<\?xml[\s?]")
_ISO_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_UNDECLARED_ROOT = "SCHEMAV_CVC_ELT_1"  # libxml2: no global declaration for the element

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


@dataclass(frozen=True, slots=True)
class AppHeader:
    """The business application header (head.001.001.01) a writer puts before the Document."""

    sender: str  # Fr: the sender's BIC (BICFI)
    receiver: str  # To: the receiver's BIC
    created: dt.datetime  # CreDt: timezone-aware, written in UTC


# --- schemas -------------------------------------------------------------------------------


def load_schema(path: str | Path) -> etree.XMLSchema:
    """The XSD at ``path``, compiled once per path (a missing or broken file raises)."""
    return _compiled(Path(path).resolve())


@cache
def _compiled(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), safe_parser()))


def validate(xml: bytes, schema: etree.XMLSchema) -> list[str]:
    """The schema's complaints about ``xml``, each "line N: message"; empty when it is valid.

    In an envelope every AppHdr and Document the schema declares is checked and the others are
    skipped (a sese.024 schema checks the Document, a head.001 schema the AppHdr); when the
    schema declares none of them, that is the complaint.
    """
    try:
        root = _parse(xml)
    except etree.XMLSyntaxError as error:
        return [f"line {error.lineno}: not well-formed XML: {error.msg}"]
    reports = [_schema_errors(schema, part) for part in list(_top_parts(root)) or [root]]
    declared = [errors for errors in reports if not _undeclared(errors)]
    return [f"line {error.line}: {error.message}"
            for errors in declared or reports for error in errors]


def _schema_errors(schema: etree.XMLSchema, element: etree._Element) -> list[Any]:
    try:
        schema.assertValid(element)
    except etree.DocumentInvalid as invalid:
        return list(invalid.error_log)
    return []


def _undeclared(errors: list[Any]) -> bool:
    return len(errors) == 1 and errors[0].type_name == _UNDECLARED_ROOT


# --- writers -------------------------------------------------------------------------------


def write_sese023(instruction: Instruction, header: AppHeader | None = None) -> bytes:
    """The instruction as a sese.023.001.11 Document (in an envelope when given a header).

    Instructions of one shape (direction, payment, linkage, number of trade ids, cancellation,
    accounts given) share one tree: it is built once with lxml, each message is a C-level copy
    of it with its texts filled in (a bulk of a million instructions is a few shapes)."""
    i = instruction
    if i.function is Function.CANCEL and not i.linked_reference:
        raise ValueError(f"cancellation {i.reference} has no linked_reference (what it cancels)")
    if i.payment is Payment.AGAINST and (i.amount is None or i.currency is None):
        raise ValueError(f"instruction {i.reference} is against payment without an amount")
    shape = _Sese023Shape(i.direction, i.payment, bool(i.linked_reference), len(i.trade_ids),
                          i.function is Function.CANCEL, bool(i.counterparty.account),
                          bool(i.safekeeping_account), i.trade_date is not None)
    template = _sese023_template(shape)
    document = copy.deepcopy(template.tree)
    elements = list(document.iter())
    values = _sese023_values(i)
    for index, name in template.texts:
        elements[index].text = values[name]
    for index, name in template.attributes:
        elements[index].set("Ccy", values[name])
    return _serialize(document, header, i.reference)


class _Sese023Shape(NamedTuple):
    direction: Direction
    payment: Payment
    linked: bool
    trade_ids: int
    cancel: bool
    counterparty_account: bool
    safekeeping_account: bool
    trade_date: bool = True  # TradDt is optional (0..1)


@dataclass(frozen=True)
class _Template:
    tree: etree._Element
    texts: tuple[tuple[int, str], ...]  # (element's index in document order, field)
    attributes: tuple[tuple[int, str], ...]  # the Ccy attribute of an amount


def _sese023_values(i: Instruction) -> dict[str, str]:
    """Every variable text of the message, formatted as the schema wants."""
    values = {"reference": i.reference, "linked_reference": i.linked_reference or "",
              "trade_date": i.trade_date.isoformat() if i.trade_date else "",
              "settlement_date": i.settlement_date.isoformat(), "isin": i.isin,
              "quantity": plain(i.quantity), "account_owner": i.account_owner,
              "safekeeping_account": i.safekeeping_account,
              "place_of_settlement": i.place_of_settlement, "counterparty": i.counterparty.bic,
              "counterparty_account": i.counterparty.account,
              "partial": "PART" if i.partial_allowed else "NPAR"}
    for number, trade_id in enumerate(i.trade_ids):
        values[f"trade_id_{number}"] = trade_id
    if i.amount is not None and i.currency is not None:
        values["amount"] = _money(i.amount, i.currency)
        values["currency"] = i.currency
    return values


@cache
def _sese023_template(shape: _Sese023Shape) -> _Template:
    """The shape's tree, built with a marker for every variable text, and where they are."""
    marker = "\ue000"  # a private-use character: never in a real value
    document, body = _document(SESE023, "SctiesSttlmTxInstr")

    def field(name: str) -> str:
        return marker + name

    _add(body, "TxId", field("reference"))
    kind = _add(body, "SttlmTpAndAddtlParams")
    _add(kind, "SctiesMvmntTp", shape.direction.value)
    _add(kind, "Pmt", shape.payment.value)
    if shape.linked:
        link = _add(body, "Lnkgs")
        _add(link, "MsgNb/LngNb", SESE023)
        _add(link, "Ref/SctiesSttlmTxId", field("linked_reference"))
    trade = _add(body, "TradDtls")
    for number in range(shape.trade_ids):
        _add(trade, "TradId", field(f"trade_id_{number}"))
    if shape.trade_date:
        _add(trade, "TradDt/Dt/Dt", field("trade_date"))
    _add(trade, "SttlmDt/Dt/Dt", field("settlement_date"))
    if shape.cancel:
        _add(trade, "SttlmInstrPrcgAddtlDtls", CANCEL_MARK)
    _add(body, "FinInstrmId/ISIN", field("isin"))
    account = _add(body, "QtyAndAcctDtls")
    _add(account, "SttlmQty/Qty/Unit", field("quantity"))
    _add(account, "AcctOwnr/Id/AnyBIC", field("account_owner"))
    _add(account, "SfkpgAcct/Id", field("safekeeping_account"))
    settlement = _add(body, "SttlmParams")
    _add(settlement, "SctiesTxTp/Cd", "TRAD")
    _add(settlement, "PrtlSttlmInd", field("partial"))
    receiving = shape.direction is Direction.RECEIVE
    ours = ("account_owner", "safekeeping_account" if shape.safekeeping_account else "")
    theirs = ("counterparty", "counterparty_account" if shape.counterparty_account else "")
    for name, (bic, safekeeping) in (("DlvrgSttlmPties", theirs if receiving else ours),
                                     ("RcvgSttlmPties", ours if receiving else theirs)):
        parties = _add(body, name)
        _add(parties, "Dpstry/Id/AnyBIC", field("place_of_settlement"))
        first = _add(parties, "Pty1")
        _add(first, "Id/AnyBIC", field(bic))
        if safekeeping:
            _add(first, "SfkpgAcct/Id", field(safekeeping))
    if shape.payment is Payment.AGAINST:
        holder = _add(body, "SttlmAmt")
        _add(holder, "Amt", field("amount")).set("Ccy", field("currency"))
        _add(holder, "CdtDbtInd", "DBIT" if receiving else "CRDT")
    texts, attributes = [], []
    for index, element in enumerate(document.iter()):
        if element.text and element.text.startswith(marker):
            texts.append((index, element.text[1:]))
        currency = element.get("Ccy")
        if currency and currency.startswith(marker):
            attributes.append((index, currency[1:]))
    return _Template(document, tuple(texts), tuple(attributes))


def write_sese024(advice: StatusAdvice, header: AppHeader | None = None) -> bytes:
    """The status as a sese.024.001.12 Document; its message_reference travels in the header.

    Reasons are written as ISO codes (Rsn/Cd/Cd): each must be one the status's code list has,
    which ``validate`` checks. HELD needs a hold reason (PREA, CSDH, CVAL); MATCHED takes no
    reasons; RELEASED cannot be said in sese.024.
    """
    path = _WRITTEN_STATUSES.get(advice.kind)
    if path is None:
        raise ValueError(f"{advice.kind} has no sese.024 status (a release is sese.031's)")
    if advice.kind is StatusKind.HELD and not _HOLD_REASONS.intersection(advice.reasons):
        raise ValueError(f"HELD is a pending status with a hold reason ({sorted(_HOLD_REASONS)})")
    if advice.kind is StatusKind.MATCHED and advice.reasons:
        raise ValueError("a matched status (Mtchd) carries no reason codes")
    document, body = _document(SESE024, "SctiesSttlmTxStsAdvc")
    _add(body, "TxId/AcctOwnrTxId", advice.reference)
    status = _add(body, path)
    if advice.kind is not StatusKind.MATCHED:
        if not advice.reasons:
            _add(status, "NoSpcfdRsn", "NORE")
        for reason in advice.reasons:
            _add(status, "Rsn/Cd/Cd", reason)
    return _serialize(document, header, _header_reference(advice.message_reference, header))


def write_sese025(confirmation: Confirmation, header: AppHeader | None = None) -> bytes:
    """The confirmation as a sese.025.001.11 Document; its message_reference travels in the
    header. A partial one says PAIN, or PARC when ``extra["partial_settlement"]`` says so."""
    c = confirmation
    document, body = _document(SESE025, "SctiesSttlmTxConf")
    ids = _add(body, "TxIdDtls")
    _add(ids, "AcctOwnrTxId", c.reference)
    _add(ids, "SctiesMvmntTp", c.direction.value)
    _add(ids, "Pmt", c.payment.value)
    if c.partial:
        code = c.extra.get("partial_settlement", "PAIN")
        _add(body, "AddtlParams/PrtlSttlm", code if code in _PARTIAL_CODES else "PAIN")
    _add(body, "TradDtls/FctvSttlmDt/Dt/Dt", c.settlement_date.isoformat())
    _add(body, "FinInstrmId/ISIN", c.isin)
    quantities = _add(body, "QtyAndAcctDtls")
    _add(quantities, "SttldQty/Qty/Unit", plain(c.quantity))
    if c.remaining_quantity is not None:
        _add(quantities, "RmngToBeSttldQty/Unit", plain(c.remaining_quantity))
    _add(body, "SttlmParams/SctiesTxTp/Cd", "TRAD")
    if c.amount is not None:
        if c.currency is None:
            raise ValueError(f"confirmation of {c.reference} has an amount without a currency")
        _add_amount(body, "SttldAmt", c.amount, c.currency,
                    credit=c.direction is Direction.DELIVER)
    return _serialize(document, header, _header_reference(c.message_reference, header))


def _document(message: str, body: str) -> tuple[etree._Element, etree._Element]:
    namespace = ISO_NAMESPACE + message
    document = etree.Element(f"{{{namespace}}}Document", nsmap={None: namespace})
    return document, _add(document, body)


def _add(parent: etree._Element, path: str, text: str | None = None) -> etree._Element:
    """New elements ``a/b/c`` under ``parent``, in its namespace; the last of them."""
    tag = parent.tag
    prefix = tag[:tag.index("}") + 1] if tag.startswith("{") else ""  # "{namespace}"
    element = parent
    for name in path.split("/"):
        element = etree.SubElement(element, prefix + name)
    if text is not None:
        element.text = text
    return element


def _add_amount(parent: etree._Element, name: str, amount: Decimal, currency: str, *,
                credit: bool) -> None:
    holder = _add(parent, name)
    _add(holder, "Amt", _money(amount, currency)).set("Ccy", currency)
    _add(holder, "CdtDbtInd", "CRDT" if credit else "DBIT")


def _money(amount: Decimal, currency: str) -> str:
    try:
        scale = currency_scale(currency)
    except ValueError:
        return plain(amount)
    return at_scale(amount, scale) if fits_scale(amount, scale) else plain(amount)


def _header_reference(reference: str, header: AppHeader | None) -> str:
    if bool(reference) != (header is not None):
        raise ValueError("a message_reference is the AppHdr's BizMsgIdr: give both or neither")
    return reference


def _serialize(document: etree._Element, header: AppHeader | None, reference: str) -> bytes:
    root = document
    if header is not None:
        if header.created.tzinfo is None:
            raise ValueError("AppHeader.created must be timezone-aware")
        created = header.created.astimezone(dt.UTC).replace(tzinfo=None)
        root = etree.Element(ENVELOPE)
        namespace = ISO_NAMESPACE + HEAD
        app = etree.SubElement(root, f"{{{namespace}}}AppHdr", nsmap={None: namespace})
        _add(app, "Fr/FIId/FinInstnId/BICFI", header.sender)
        _add(app, "To/FIId/FinInstnId/BICFI", header.receiver)
        _add(app, "BizMsgIdr", reference)
        _add(app, "MsgDefIdr", etree.QName(document).namespace.removeprefix(ISO_NAMESPACE))
        _add(app, "CreDt", created.isoformat() + "Z")
        root.append(document)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# --- readers -------------------------------------------------------------------------------


def read_sese023(data: bytes, source: str, schema: etree.XMLSchema | None = None,
                 ) -> tuple[list[Instruction], list[Problem]]:
    """The instructions of a file of sese.023.001.11 messages, and the problems met."""
    return _read(data, source, SESE023, "SctiesSttlmTxInstr", schema, _instruction)


def read_sese024(data: bytes, source: str, schema: etree.XMLSchema | None = None,
                 ) -> tuple[list[StatusAdvice], list[Problem]]:
    """The statuses of a file of sese.024.001.12 messages, and the problems met."""
    return _read(data, source, SESE024, "SctiesSttlmTxStsAdvc", schema, _advices)


def read_sese025(data: bytes, source: str, schema: etree.XMLSchema | None = None,
                 ) -> tuple[list[Confirmation], list[Problem]]:
    """The confirmations of a file of sese.025.001.11 messages, and the problems met."""
    return _read(data, source, SESE025, "SctiesSttlmTxConf", schema, _confirmation)


class _Rejected(Exception):
    """Stops reading one Document; carries the problem (never leaves this module)."""

    def __init__(self, rule: Rule, detail: str, element: etree._Element | None = None) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.element = element


@dataclass
class _Message:
    """One Document being read: its body's values by path, and where it came from."""

    body: etree._Element  # the message element under Document
    header: etree._Element | None  # its AppHdr
    source: str  # the file
    offset: int  # lines of the file before this XML document
    line: int  # the Document's physical line
    label: str  # "message M, instruction R: " or ""
    problems: list[Problem]

    @property
    def reference(self) -> str:
        return _leaf_text(self.header, "BizMsgIdr") if self.header is not None else ""

    @property
    def created(self) -> dt.datetime | None:
        text = _leaf_text(self.header, "CreDt") if self.header is not None else ""
        try:
            return dt.datetime.fromisoformat(text) if text else None
        except ValueError:
            return None

    def problem(self, rule: Rule, detail: str, element: etree._Element | None) -> Problem:
        line = self.offset + element.sourceline if element is not None else self.line
        return Problem(rule, self.label + detail, self.source, line)

    def find(self, path: str, within: etree._Element | None = None) -> etree._Element | None:
        return (self.body if within is None else within).find(self._steps(path))

    def text(self, path: str) -> str | None:
        return _text(self.find(path))

    def texts(self, path: str) -> tuple[str, ...]:
        found = (_text(element) for element in self.body.iterfind(self._steps(path)))
        return tuple(text for text in found if text is not None)

    def _steps(self, path: str) -> str:
        namespace = etree.QName(self.body).namespace
        return "/".join(f"{{{namespace}}}{step}" for step in path.split("/"))

    def required(self, path: str) -> str:
        value = self.text(path)
        if value is None:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{self._name(path)} is missing")
        return value

    def code(self, path: str, kind: type[E]) -> E:
        value = self.required(path)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in kind)
            raise _Rejected(Rule.INVALID_ENUM_VALUE, f"{self._name(path)} is {value!r}, not one "
                                                     f"of {allowed}", self.find(path)) from None

    def date(self, path: str) -> dt.date:
        """The date of a DateAndDateTime2Choice (its Dt, or the date of its DtTm)."""
        choice = self.find(path)
        if choice is None:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{self._name(path)} (a date) is missing")
        leaf = next(choice.iterchildren(tag=etree.Element), None)
        text = _text(leaf) or ""
        try:
            if leaf is not None and etree.QName(leaf).localname == "DtTm":
                return dt.datetime.fromisoformat(text).date()
            if (date := _ISO_DATE.fullmatch(text)) is not None:
                return dt.date.fromisoformat(date.group(1))
        except ValueError:
            pass
        raise _Rejected(Rule.INVALID_DATE, f"{self._name(path)} is {text!r}, not a date "
                                           "YYYY-MM-DD", leaf)

    def quantity(self, path: str) -> Decimal | None:
        """The number of a Quantity51Choice or FinancialInstrumentQuantity33Choice, if any."""
        choice = self.find(path)
        if choice is None:
            return None
        for wrapper in ("Qty", "OrgnlAndCurFace"):
            inner = self.find(wrapper, choice)
            if inner is not None:
                choice = inner
        leaf = next(choice.iterchildren(tag=etree.Element), None)
        if leaf is None:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{self._name(path)} holds no number",
                            choice)
        return self._number(leaf, f"{path}/…/{etree.QName(leaf).localname}")

    def amount(self, path: str) -> tuple[Decimal, str] | None:
        """An amount element's number and its Ccy attribute, if the element is there."""
        element = self.find(path)
        if element is None:
            return None
        currency = element.get("Ccy")
        if not currency:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{self._name(path)} has no Ccy",
                            element)
        return self._number(element, path), str(currency)

    def _number(self, element: etree._Element, path: str) -> Decimal:
        text = _text(element) or ""
        try:
            return parse_decimal(text)
        except NotAnExactNumber:
            raise _Rejected(Rule.INVALID_NUMBER, f"{self._name(path)} is {text!r}, not a "
                                                 "decimal number", element) from None

    def _name(self, path: str) -> str:
        return f"{etree.QName(self.body).localname}/{path}"


def _read(data: bytes, source: str, message: str, body_name: str,
          schema: etree.XMLSchema | None,
          convert: Callable[[_Message], list[T]]) -> tuple[list[T], list[Problem]]:
    results: list[T] = []
    problems: list[Problem] = []
    namespace = ISO_NAMESPACE + message
    chunks = list(xml_documents(data))
    if not chunks:
        problems.append(Problem(Rule.XML_MALFORMED, "the file holds no XML", source, None))
    for offset, chunk in chunks:
        try:
            root = _parse(chunk)
        except etree.XMLSyntaxError as error:
            problems.append(Problem(Rule.XML_MALFORMED, f"not well-formed XML: {error.msg}",
                                    source, offset + (error.lineno or 1)))
            continue
        pairs = list(header_document_pairs(root))
        if not pairs:
            problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                    f"no ISO 20022 Document in the XML (its root is "
                                    f"{etree.QName(root).localname}); expected {message}",
                                    source, offset + (root.sourceline or 1)))
        for header, document in pairs:
            line = offset + (document.sourceline or 1)
            label = _label(header, document)
            found = etree.QName(document).namespace or ""
            if found != namespace:
                name = found.removeprefix(ISO_NAMESPACE) or "a Document without a namespace"
                problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                        f"{label}{name} is not {message}; not read", source, line))
                continue
            errors = _schema_errors(schema, document) if schema is not None else []
            if errors:
                more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
                detail = "; ".join(f"line {offset + error.line}: {error.message}"
                                   for error in errors[:3])
                problems.append(Problem(Rule.XML_SCHEMA_INVALID,
                                        f"{label}not valid {message}: {detail}{more}",
                                        source, offset + errors[0].line))
                continue
            body = document.find(f"{{{namespace}}}{body_name}")
            reader = _Message(body if body is not None else document, header, source, offset,
                              line, label, problems)
            try:
                if body is None:
                    raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"Document/{body_name} missing")
                results.extend(convert(reader))
            except _Rejected as rejected:
                problems.append(reader.problem(rejected.rule, rejected.detail, rejected.element))
    return results, problems


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, safe_parser())


def xml_documents(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each XML document of ``data`` (split before every ``<?xml`` declaration but the first)
    with the number of lines before it; blank pieces are skipped."""
    bounds = sorted({0, len(data), *(found.start() for found in _DECLARATION.finditer(data))})
    for start, end in itertools.pairwise(bounds):
        piece = data[start:end]
        if piece.strip(b" \t\r\n\xef\xbb\xbf"):
            yield data.count(b"\n", 0, start), piece


def _top_parts(element: etree._Element) -> Iterator[etree._Element]:
    """The AppHdr and Document elements of an XML document, in order, not looking inside them."""
    if etree.QName(element).localname in _PARTS:
        yield element
        return
    for child in element.iterchildren(tag=etree.Element):
        yield from _top_parts(child)


def header_document_pairs(root: etree._Element,
                          ) -> Iterator[tuple[etree._Element | None, etree._Element]]:
    """Each Document with the AppHdr just before it, if any."""
    header = None
    for part in _top_parts(root):
        if etree.QName(part).localname == "AppHdr":
            header = part
        else:
            yield header, part
            header = None


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None or not element.text.strip():
        return None
    return str(element.text.strip())


def _leaf_text(element: etree._Element, name: str) -> str:
    """The text of the first element ``name`` (any namespace) under ``element`` with text."""
    for found in element.iter(f"{{*}}{name}"):
        if len(found) == 0 and (text := _text(found)):
            return text
    return ""


def _label(header: etree._Element | None, document: etree._Element) -> str:
    names = []
    if header is not None and (reference := _leaf_text(header, "BizMsgIdr")):
        names.append(f"message {reference}")
    if instruction := _leaf_text(document, "AcctOwnrTxId") or _leaf_text(document, "TxId"):
        names.append(f"instruction {instruction}")
    return f"{', '.join(names)}: " if names else ""


# --- the three messages --------------------------------------------------------------------


def _instruction(m: _Message) -> list[Instruction]:
    direction = m.code("SttlmTpAndAddtlParams/SctiesMvmntTp", Direction)
    payment = m.code("SttlmTpAndAddtlParams/Pmt", Payment)
    linked = m.text("Lnkgs/Ref/SctiesSttlmTxId")
    cancel = m.text("TradDtls/SttlmInstrPrcgAddtlDtls") == CANCEL_MARK
    if cancel and linked is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "a cancellation (CANC) without "
                                                     "Lnkgs/Ref/SctiesSttlmTxId: cancels what?")
    quantity = _positive(m, "QtyAndAcctDtls/SttlmQty")
    theirs, ours = (("DlvrgSttlmPties", "RcvgSttlmPties") if direction is Direction.RECEIVE
                    else ("RcvgSttlmPties", "DlvrgSttlmPties"))
    amount = m.amount("SttlmAmt/Amt") if payment is Payment.AGAINST else None
    if payment is Payment.AGAINST and amount is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "SttlmAmt is missing against payment")
    return [Instruction(
        reference=m.required("TxId"),
        function=Function.CANCEL if cancel else Function.NEW,
        direction=direction,
        payment=payment,
        trade_date=m.date("TradDtls/TradDt/Dt") if m.find("TradDtls/TradDt/Dt") is not None
        else None,  # optional (0..1)
        settlement_date=m.date("TradDtls/SttlmDt/Dt"),
        isin=m.required("FinInstrmId/ISIN"),
        quantity=quantity,
        amount=amount[0] if amount else None,
        currency=amount[1] if amount else None,
        account_owner=m.text("QtyAndAcctDtls/AcctOwnr/Id/AnyBIC") or "",
        safekeeping_account=m.text("QtyAndAcctDtls/SfkpgAcct/Id") or "",
        place_of_settlement=(m.text(f"{theirs}/Dpstry/Id/AnyBIC")
                             or m.text(f"{ours}/Dpstry/Id/AnyBIC") or ""),
        counterparty=Party(m.text(f"{theirs}/Pty1/Id/AnyBIC") or "",
                           m.text(f"{theirs}/Pty1/SfkpgAcct/Id") or ""),
        linked_reference=linked,
        trade_ids=m.texts("TradDtls/TradId"),
        partial_allowed=m.text("SttlmParams/PrtlSttlmInd") != "NPAR",
        creation=m.created,
    )]


def _advices(m: _Message) -> list[StatusAdvice]:
    reference = m.required("TxId/AcctOwnrTxId")
    advices: list[StatusAdvice] = []
    unread = 0
    for group, kinds in _READ_STATUSES:
        container = m.find(group)
        status = None if container is None else next(container.iterchildren(tag=etree.Element),
                                                     None)
        if status is None:
            continue
        name = etree.QName(status).localname
        kind = kinds.get(name)
        if kind is None:
            unread += 1
            m.problems.append(m.problem(Rule.INVALID_ENUM_VALUE, f"{group}/{name} is no status "
                                        "Zaplecze knows (proprietary or modification); not "
                                        "read", status))
            continue
        reasons = _reasons(m, status)
        if kind is StatusKind.PENDING and group == "SttlmSts" \
                and _HOLD_REASONS.intersection(reasons):
            kind = StatusKind.HELD
        advices.append(StatusAdvice(reference, kind, reasons, m.reference,
                                    f"{m.source}:{m.line}"))
    if not advices and not unread:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE,
                        "no processing, matching or settlement status (PrcgSts, MtchgSts, "
                        "SttlmSts)")
    return advices


def _reasons(m: _Message, status: etree._Element) -> tuple[str, ...]:
    """<status>/Rsn/Cd/Cd or …/Rsn/Cd/Prtry/Id, each reason; Mtchd's Rsn/Id."""
    codes = []
    for reason in status.iterchildren(f"{{{etree.QName(status).namespace}}}Rsn"):
        choice = m.find("Cd", reason)
        if choice is None:
            leaf = m.find("Id", reason)
        else:
            leaf = m.find("Cd", choice)
            if leaf is None:
                leaf = m.find("Prtry/Id", choice)
        if (code := _text(leaf)) is not None:
            codes.append(code)
    return tuple(codes)


def _positive(m: _Message, path: str) -> Decimal:
    quantity = m.quantity(path)
    if quantity is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{path} is missing")
    if quantity <= 0:
        raise _Rejected(Rule.NON_POSITIVE_QUANTITY, f"{path} is {plain(quantity)}",
                        m.find(path))
    return quantity


def _confirmation(m: _Message) -> list[Confirmation]:
    quantity = _positive(m, "QtyAndAcctDtls/SttldQty")
    remaining = m.quantity("QtyAndAcctDtls/RmngToBeSttldQty")
    amount = m.amount("SttldAmt/Amt")
    extra = {name: value for name, path in (
        ("account_servicer_reference", "TxIdDtls/AcctSvcrTxId"),
        ("market_infrastructure_reference", "TxIdDtls/MktInfrstrctrTxId"),
        ("partial_settlement", "AddtlParams/PrtlSttlm"),
    ) if (value := m.text(path)) is not None}
    return [Confirmation(
        reference=m.required("TxIdDtls/AcctOwnrTxId"),
        direction=m.code("TxIdDtls/SctiesMvmntTp", Direction),
        payment=m.code("TxIdDtls/Pmt", Payment),
        isin=m.required("FinInstrmId/ISIN"),
        quantity=quantity,
        amount=amount[0] if amount else None,
        currency=amount[1] if amount else None,
        settlement_date=m.date("TradDtls/FctvSttlmDt/Dt"),
        partial=extra.get("partial_settlement") in _PARTIAL_CODES or bool(remaining),
        remaining_quantity=remaining,
        message_reference=m.reference,
        source=f"{m.source}:{m.line}",
        extra=extra,
    )]
