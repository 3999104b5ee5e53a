"""Statements from the outside world read into ``reconciliation.model`` values.

Holdings (what a custodian or CSD says we hold) become ``HoldingsStatement``; bank statements
(what moved on a cash account) become ``CashStatement``. Every reader returns its values and
the problems it met, each located at the file and physical line (1-based); one bad statement
never stops the next one in the file. Amounts and quantities are ``Decimal`` from the text,
never through a float.

``read_statement_file`` sniffs a file's format and calls the right reader: XML with a camt.053
or semt.002 Document; SWIFT MT (``{1:`` or ``:20:``), MT535 when block 2 or the fields say so,
else MT940/MT942; the positions CSV by its header. It also checks the arithmetic of every cash
statement it returns (``statement_arithmetic``).

camt.053 (``read_camt053``), any version 001.02–001.12
    Namespace-driven: the element names are the same in every version. A file may hold several
    XML documents (each with its own ``<?xml`` declaration), each a ``Document`` alone or in an
    envelope of ``AppHdr`` + ``Document`` pairs, as ``formats.iso20022`` reads them; entities
    are never expanded, nothing is fetched. Given a schema, every Document is validated first
    (``xml_schema_invalid``, not read). Each ``Stmt`` is one ``CashStatement``:

    - ``statement_id`` Stmt/Id; ``account`` Acct/Id/IBAN, else Acct/Id/Othr/Id; ``currency``
      Acct/Ccy, else the Ccy of the first balance.
    - balances by Tp/CdOrPrtry/Cd, signed by CdtDbtInd (DBIT negative), dated by Dt/Dt or the
      date of Dt/DtTm: opening = OPBD, else PRCD (previously closed booked), else the first
      ITBD; closing = CLBD, else the last ITBD. An interim booked balance (ITBD) closes one page
      of a paginated statement and opens the next; a page that gives only ITBD balances (the
      prowide sample: OPAV and one ITBD, no entries) is read with that ITBD as both, and
      ``extra["opening_balance_type"]`` / ``extra["closing_balance_type"]`` say so. CLAV and
      FWAV, in document order, are ``available_balances``; every other balance is kept in
      ``extra["balance.<code>"]`` as "date amount".
    - entries (Ntry): ``amount`` Amt, DBIT negative (a reversal keeps the sign its CdtDbtInd
      gives: the direction of the reversing booking), its ``currency`` the Amt's Ccy;
      ``reversal`` RvslInd true; ``booking_date`` BookgDt, ``value_date`` ValDt (Dt, or the
      date of DtTm; either stands in for the other when one is missing); ``bank_reference``
      Ntry/AcctSvcrRef (else the single transaction's Refs/AcctSvcrRef); ``reference`` the first
      of EndToEndId (NOTPROVIDED counts as none), MsgId, PmtInfId, InstrId of
      NtryDtls/TxDtls/Refs that every transaction of the entry shares (for one transaction:
      its end-to-end id), else the batch's Btch/PmtInfId or Btch/MsgId, else AcctSvcrRef,
      else NtryRef; ``description`` AddtlNtryInf, else the RmtInf/Ustrd texts, else
      AddtlTxInf. A batch entry stays one entry, the booked amount: the balance moves by it.
      Return reasons (TxDtls/RtrInf/Rsn/Cd or Prtry) are kept in
      ``extra["entry.<n>.return_reason"]``, n counting the statement's entries from 1.
    - only booked entries are ``entries``: status BOOK (Sts, or Sts/Cd from 001.08 on; no
      status at all counts as booked). Pending, information-only and future entries (PDNG,
      INFO, FUTR, proprietary) move no booked balance: they are left out of ``entries`` and of
      the arithmetic and noted in ``extra["unbooked_entries"]`` (their count) and
      ``extra["unbooked.<k>"]`` ("line L: STATUS amount CCY booked D value D ref R").
    - ``extra`` also keeps message_id (GrpHdr/MsgId), electronic/legal sequence numbers, the
      servicer's BIC (the AppHdr's sender, else Acct/Svcr) and ``line``, the Stmt's line.
    - a Stmt without Id, account, an opening or a closing booked balance, with a balance in
      another currency than the account's, or with a value that is no number or date is not
      read (located at it); the other Stmts are. A closing balance dated before the opening
      one is ``dates_out_of_order`` (the statement is still read).

semt.002 (``read_semt002``): 001.02, 001.11 and 002.11 (any semt.002 whose body is
    CtdyStmtOfHldgsV02 or SctiesBalCtdyRpt). One ``HoldingsStatement`` per Document:
    ``statement_date`` StmtGnlDtls/StmtDtTm (Dt or DtTm); ``statement_id`` StmtGnlDtls/StmtId
    (001.02: StmtGnlDtls/Ref), else the AppHdr's BizMsgIdr, else ''; ``sender`` the AppHdr's
    sender, else the account servicer's BIC. One line per BalForAcct (safekeeping account
    SfkpgAcct/Id; 001.02 AcctDtls/Id) and per SubAcctDtls/BalForSubAcct (the sub-account's
    own account): the ISIN FinInstrmId/ISIN (001.02 FinInstrmDtls/Id/ISIN) and the aggregate
    balance AggtBal (001.02 AggtQty): its Unit, FaceAmt, AmtsdVal or DgtlTknUnit (a face
    amount for a bond; OrgnlAndCurFace gives its FaceAmt), negative when ShrtLngInd is SHOR.
    A line whose ISIN fails ISO 6166 (country code, check digit) is kept and gets an
    ``invalid_isin`` problem at its line; so is a security identified otherwise (OthrId, a
    SEDOL…), kept with that identification in ``isin``: a holding the custodian reports must
    not vanish from the reconciliation, and an unknown identifier shows there as a break. A
    line without a readable quantity (a proprietary one, a bad number) is left out with a
    problem; a statement without a date or account is not read.

MT940 / MT942 (``read_mt940``, ``read_mt940_entries``)
    Each statement (from one ``:20:`` to the next; what comes before the first ``:20:`` is a
    statement of its own) is parsed by the mt-940 package (5.1.1), with its tag patterns and
    processors as they are, with three of its opt-in fixes: ``reversal_sign`` (RC, a reversal
    of a credit, is money out: negative; release 5.0.0 and the shared ``*.expected.json`` files
    give it positive, which the balances of ``betterplace/sepa_mt9401.sta`` contradict),
    ``case_insensitive_marks`` (a lowercase ``d`` is a debit too) and ``unbounded_details``
    (``:86:`` is never cut). FIN envelope lines (``{1:…}{2:…}{4:``, ``-}``) are ignored.
    A statement the package cannot parse (a tag not of its shape) gives one located problem
    (``mt_malformed``; ``invalid_date``, ``invalid_number`` when the date or amount is what
    broke) and is not read; the others are.

    - opening ``:60F:``, else ``:60M:`` (or ``:60:``); closing ``:62F:``, else ``:62M:``
      (or ``:62:``), signed by their D/C mark; ``:64:`` and every ``:65:``, in order, are
      ``available_balances``; the currency is the opening balance's.
    - ``statement_id`` ``:20:``; ``account`` ``:25:``; ``extra["statement_number"]`` ``:28C:``,
      ``extra["related_reference"]`` ``:21:``, ``extra["line"]`` the first field's line.
    - entries (``:61:`` + ``:86:``): ``amount`` signed by the mark (D and RC negative, C and
      RD positive; ``reversal`` for RC and RD); ``value_date`` the first date of ``:61:``,
      ``booking_date`` its entry date (MMDD, the year guessed by the package across a year
      end), else the value date; ``reference`` the ``:61:`` reference for the account owner,
      else (NONREF) the SEPA end-to-end reference of ``:86:`` (EREF+): the package lets a
      structured ``:86:`` overwrite the ``:61:`` reference, so it is kept before that;
      ``bank_reference`` the ``//`` reference of ``:61:`` (NONREF counts as none);
      ``description`` the ``:86:`` text, its lines joined (without a separator for a
      structured ``nnn?nn…`` text, as the package does; else with a space). A ``:61:`` whose
      entry the package merges into the one before (no transaction type after the amount)
      is ``mt_malformed``: the earlier entry would be lost.
    - a statement without ``:20:``, ``:25:``, an opening or a closing balance is not read
      (``mt_missing_field`` at its first line: a truncated statement, a fragment); nor one
      with a second ``:20:``, ``:25:``, ``:28C:``, opening or closing balance
      (``mt_malformed`` at it: a field inside another's text, as in
      ``betterplace/sepa_snippet_broken.sta``), nor one whose balance has no currency code
      (``invalid_currency``: ``:62M:C020315105000,00`` reads as currency '105'). Historic
      currencies (DEM) are read. A closing balance dated before the opening one is
      ``dates_out_of_order`` (the statement is still read). An MT942
      interim report (``:34F:``, ``:13D:``, ``:90D:``/``:90C:`` and no balances) has no
      opening or closing balance, so it is no ``CashStatement``: ``unsupported_message_type``.
      ``read_mt940_entries`` gives the entries of every parsed statement, complete or not,
      MT942 included.

MT535 (``read_mt535``): ``swift_mt.read_holdings`` reads the aggregate balances; they are
    grouped per message, statement date and safekeeping account into ``HoldingsStatement``
    values, ``statement_id`` the message's ``:20C::SEME``, ``sender`` its sender BIC, each
    line at the message's line (``Holding`` carries no finer one). ISINs are checked as for
    semt.002; a security named without an ISIN (``:35B:/US/31392EXH8``) is kept with that
    identification and an ``invalid_isin`` problem. A statement saying it holds nothing
    (``:17B::ACTI//N``) gives no ``Holding``, hence no statement.

Positions CSV (``read_positions_csv``): ``date,safekeeping_account,isin,quantity`` with a
    header row (UTF-8, a byte-order mark allowed; more columns are ignored). One statement per
    date × safekeeping account, in the order first met, ``statement_id`` ''. A row with a bad
    date, quantity or a missing value is left out (``invalid_date``, ``invalid_number``,
    ``missing_required_value`` at its line); a bad ISIN keeps the row with an ``invalid_isin``
    problem, as above; a header without a required column reads nothing
    (``missing_required_column`` at line 1). Two rows of one ISIN add up, as the
    reconciliation sums a statement's lines.

Arithmetic (``statement_arithmetic``): see there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import mt940
from lxml import etree
from mt940.models import Balance as Mt940Balance
from mt940.models import Transactions as Mt940Transactions

from zaplecze.formats.iso20022 import (
    header_document_pairs,
    load_schema,
    safe_parser,
    xml_documents,
)
from zaplecze.formats.swift_mt import parse_fin, read_holdings
from zaplecze.kernel.fields import Rejected, required, required_date, required_decimal
from zaplecze.kernel.money import NotAnExactNumber, parse_decimal
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.reconciliation.model import (
    CashEntry,
    CashStatement,
    HoldingLine,
    HoldingsStatement,
)
from zaplecze.refdata.validate import is_valid_isin

__all__ = [
    "POSITION_COLUMNS",
    "Statement",
    "read_camt053",
    "read_mt535",
    "read_mt940",
    "read_mt940_entries",
    "read_positions_csv",
    "read_semt002",
    "read_statement_file",
    "statement_arithmetic",
]

Statement = CashStatement | HoldingsStatement
SchemaFor = Callable[[str], etree.XMLSchema | None]  # message name -> its schema, if any

ISO_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:"
CAMT053 = "camt.053"
SEMT002 = "semt.002"
POSITION_COLUMNS = ("date", "safekeeping_account", "isin", "quantity")

# The mt-940 package logs every tag it cannot match at ERROR before raising; that failure
# reaches the caller as a located problem, so its log lines only repeat it.
logging.getLogger("mt940").addHandler(logging.NullHandler())


def _figure(value: Decimal) -> str:
    """A Decimal as written, never in exponent form."""
    return format(value, "f")


# --- statement arithmetic -----------------------------------------------------------------------


def statement_arithmetic(statement: CashStatement) -> list[Problem]:
    """``statement_does_not_add_up`` unless opening + Σ entries = closing, exactly.

    ``entries`` are the booked entries, reversals included with their sign as given (a camt.053
    reversal's CdtDbtInd, an MT940 RC/RD mark). Banks reckon the booked closing balance in one
    of two ways, and either adds up:

    - by booking date (most banks): every booked entry counts, whatever its value date;
    - by value date: a booked entry value-dated after the closing balance's date is not yet in
      the closing balance, only in the forward available balance. The PostFinance sample
      (camt.053.001.04) does this: opening 211993.19 + five booked entries 4656.02 =
      216649.21, but CLBD of 2020-11-24 is 215112.21 = 216649.21 − 1537.00, the credit booked
      on 2020-11-24 and value-dated 2020-11-25; its FWAV of 2020-11-25 is 216649.21. That
      entry is booked (Sts BOOK), so it is among ``entries`` like the others; only the
      bank's closing balance leaves it out until its value date.

    When neither adds up the detail gives the figures of the first (all entries), e.g.
    "opening 15568.27 + entries -12.99 = 15555.28, but the closing balance is 15121.12".
    An entry in another currency than the statement's is ``currency_mismatch``: the sum would
    mean nothing. Located at ``extra["line"]`` when the reader put it there.
    """
    line = int(statement.extra["line"]) if statement.extra.get("line", "").isdigit() else None
    label = (f"statement {statement.statement_id or '(no id)'} of {statement.account} "
             f"{statement.currency}: ")
    foreign = [entry for entry in statement.entries if entry.currency != statement.currency]
    if foreign:
        where = ", ".join(f"{_figure(e.amount)} {e.currency or '(none)'}"
                          + (f" (line {e.line})" if e.line is not None else "")
                          for e in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return [Problem(Rule.CURRENCY_MISMATCH, f"{label}entries in another currency: "
                                                f"{where}{more}", statement.source, line)]
    total = sum((entry.amount for entry in statement.entries), Decimal(0))
    reckoned = statement.opening_balance + total
    if reckoned == statement.closing_balance:
        return []
    later = [e for e in statement.entries if e.value_date > statement.closing_date]
    later_total = sum((entry.amount for entry in later), Decimal(0))
    if later and reckoned - later_total == statement.closing_balance:
        return []
    detail = (f"opening {_figure(statement.opening_balance)} + entries {_figure(total)} = "
              f"{_figure(reckoned)}, but the closing balance is "
              f"{_figure(statement.closing_balance)}")
    if later:
        detail += (f" (without the {len(later)} entries value-dated after "
                   f"{statement.closing_date}: {_figure(reckoned - later_total)})")
    return [Problem(Rule.STATEMENT_DOES_NOT_ADD_UP, label + detail, statement.source, line)]


def _dates_out_of_order(statement: CashStatement) -> list[Problem]:
    """A closing balance dated before the opening one (the statement is still read)."""
    if statement.closing_date >= statement.opening_date:
        return []
    line = int(statement.extra["line"]) if statement.extra.get("line", "").isdigit() else None
    return [Problem(Rule.DATES_OUT_OF_ORDER, f"statement {statement.statement_id} of "
                                             f"{statement.account}: the closing balance is of "
                                             f"{statement.closing_date}, before the opening "
                                             f"balance of {statement.opening_date}",
                    statement.source, line)]


# --- ISO 20022: the envelope -------------------------------------------------------------------

_ISO_DATE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_NO_REFERENCE = frozenset({"", "NOTPROVIDED", "NONREF"})


class _Rejected(Exception):
    """Stops reading one statement (or line); carries the problem (never leaves this module)."""

    def __init__(self, rule: Rule, detail: str, element: etree._Element | None = None) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.element = element


@dataclass
class _Doc:
    """One Document being read: lookups in its namespace, problems located in the file."""

    body: etree._Element  # the message element under Document
    header: etree._Element | None  # its AppHdr
    message: str  # 'camt.053.001.02'
    source: str
    offset: int  # lines of the file before this XML document
    problems: list[Problem] = field(default_factory=list)

    def line(self, element: etree._Element | None) -> int | None:
        if element is None or element.sourceline is None:
            return None
        return self.offset + int(element.sourceline)

    def problem(self, rule: Rule, detail: str, element: etree._Element | None) -> Problem:
        return Problem(rule, detail, self.source, self.line(element) or self.line(self.body))

    def _steps(self, path: str) -> str:
        namespace = etree.QName(self.body).namespace
        return "/".join(f"{{{namespace}}}{step}" for step in path.split("/"))

    def find(self, path: str, within: etree._Element | None = None) -> etree._Element | None:
        return (self.body if within is None else within).find(self._steps(path))

    def findall(self, path: str, within: etree._Element | None = None) -> list[etree._Element]:
        return list((self.body if within is None else within).iterfind(self._steps(path)))

    def text(self, path: str, within: etree._Element | None = None) -> str:
        """The stripped text at ``path``; '' when the element is missing or empty."""
        return _text(self.find(path, within))

    def texts(self, path: str, within: etree._Element | None = None) -> list[str]:
        return [text for element in self.findall(path, within) if (text := _text(element))]

    def required(self, path: str, within: etree._Element) -> str:
        value = self.text(path, within)
        if not value:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{path} is missing", within)
        return value

    def date(self, path: str, within: etree._Element) -> dt.date | None:
        """The date of a date-or-date-time choice (its Dt, or the date of its DtTm)."""
        choice = self.find(path, within)
        if choice is None:
            return None
        leaf = next(choice.iterchildren(tag=etree.Element), None)
        text = _text(leaf)
        try:
            if leaf is not None and etree.QName(leaf).localname == "DtTm":
                return dt.datetime.fromisoformat(text).date()
            if (found := _ISO_DATE.fullmatch(text)) is not None:
                return dt.date.fromisoformat(found.group(1))
        except ValueError:
            pass
        raise _Rejected(Rule.INVALID_DATE, f"{path} is {text!r}, not a date YYYY-MM-DD",
                        leaf if leaf is not None else choice)

    def number(self, element: etree._Element, what: str) -> Decimal:
        text = _text(element)
        try:
            return parse_decimal(text)
        except NotAnExactNumber:
            raise _Rejected(Rule.INVALID_NUMBER, f"{what} is {text!r}, not a decimal number",
                            element) from None

    def signed_amount(self, holder: etree._Element) -> tuple[Decimal, str]:
        """Amt and its Ccy under ``holder``, negative when CdtDbtInd is DBIT."""
        amount = self.find("Amt", holder)
        if amount is None:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "Amt is missing", holder)
        value = self.number(amount, "Amt")
        indicator = self.text("CdtDbtInd", holder)
        if indicator not in ("CRDT", "DBIT"):
            raise _Rejected(Rule.INVALID_ENUM_VALUE if indicator else Rule.MISSING_REQUIRED_VALUE,
                            f"CdtDbtInd is {indicator!r}, not CRDT or DBIT",
                            self.find("CdtDbtInd", holder) or holder)
        return (-value if indicator == "DBIT" else value), str(amount.get("Ccy") or "")

    @property
    def reference(self) -> str:
        return _leaf_text(self.header, "BizMsgIdr") if self.header is not None else ""

    @property
    def sender(self) -> str:
        """The BIC of the AppHdr's sender (Fr); '' without a header."""
        sender = self.header.find("{*}Fr") if self.header is not None else None
        if sender is None:
            return ""
        return _leaf_text(sender, "BICFI") or _leaf_text(sender, "AnyBIC")


def _text(element: etree._Element | None) -> str:
    if element is None or element.text is None:
        return ""
    return str(element.text).strip()


def _leaf_text(element: etree._Element, name: str) -> str:
    """The text of the first element ``name`` (any namespace) under ``element`` with text."""
    for found in element.iter(f"{{*}}{name}"):
        if len(found) == 0 and (text := _text(found)):
            return text
    return ""


Converter = Callable[[_Doc], list[Any]]


def _read_iso(data: bytes, source: str, readers: dict[str, tuple[str, Converter]],
              schema_for: SchemaFor | None) -> tuple[list[Any], list[Problem]]:
    """Every Document of ``data`` whose namespace is of a family of ``readers`` (family ->
    (body element name prefix, converter)), converted; the problems met, in file order."""
    results: list[Any] = []
    problems: list[Problem] = []
    wanted = " or ".join(readers)
    chunks = list(xml_documents(data))
    if not chunks:
        problems.append(Problem(Rule.XML_MALFORMED, "the file holds no XML", source, None))
    for offset, chunk in chunks:
        try:
            root = etree.fromstring(chunk, safe_parser())
        except etree.XMLSyntaxError as error:
            problems.append(Problem(Rule.XML_MALFORMED, f"not well-formed XML: {error.msg}",
                                    source, offset + (error.lineno or 1)))
            continue
        pairs = list(header_document_pairs(root))
        if not pairs:
            problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                    f"no ISO 20022 Document in the XML (its root is "
                                    f"{etree.QName(root).localname}); expected {wanted}",
                                    source, offset + (root.sourceline or 1)))
        for header, document in pairs:
            line = offset + (document.sourceline or 1)
            message = (etree.QName(document).namespace or "").removeprefix(ISO_NAMESPACE)
            family = message[:8]
            body = next(document.iterchildren(tag=etree.Element), None)
            if family not in readers or message[8:9] != ".":
                name = message or "a Document without a namespace"
                problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                        f"{name} is not {wanted}; not read", source, line))
                continue
            body_name, convert = readers[family]
            if body is None or not etree.QName(body).localname.startswith(body_name):
                found = etree.QName(body).localname if body is not None else "nothing"
                problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                                        f"the {message} Document holds {found}, not "
                                        f"{body_name}; not read", source, line))
                continue
            schema = schema_for(message) if schema_for is not None else None
            if schema is not None and not schema.validate(document):
                errors = list(schema.error_log)
                more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
                detail = "; ".join(f"line {offset + error.line}: {error.message}"
                                   for error in errors[:3])
                problems.append(Problem(Rule.XML_SCHEMA_INVALID,
                                        f"not valid {message}: {detail}{more}", source,
                                        offset + errors[0].line if errors else line))
                continue
            doc = _Doc(body, header, message, source, offset, problems)
            try:
                results.extend(convert(doc))
            except _Rejected as rejected:
                problems.append(doc.problem(rejected.rule, rejected.detail, rejected.element))
    problems.sort(key=lambda problem: problem.line or 0)
    return results, problems


def read_camt053(data: bytes, source: str, schema: etree.XMLSchema | None = None,
                 ) -> tuple[list[CashStatement], list[Problem]]:
    """The statements (Stmt) of a file of camt.053 messages, any version; see the module."""
    statements, problems = _read_iso(data, source, {CAMT053: ("BkToCstmrStmt", _camt)},
                                     None if schema is None else lambda _: schema)
    return statements, problems


def read_semt002(data: bytes, source: str, schema: etree.XMLSchema | None = None,
                 ) -> tuple[list[HoldingsStatement], list[Problem]]:
    """The holdings statements of a file of semt.002 messages; see the module."""
    statements, problems = _read_iso(data, source, {SEMT002: ("", _semt)},
                                     None if schema is None else lambda _: schema)
    return statements, problems


# --- camt.053 ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Balance:
    code: str
    amount: Decimal
    currency: str
    date: dt.date
    element: etree._Element


def _camt(doc: _Doc) -> list[CashStatement]:
    statements = []
    found = doc.findall("Stmt")
    if not found:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "BkToCstmrStmt holds no Stmt")
    for stmt in found:
        try:
            statement = _camt_statement(doc, stmt)
            statements.append(statement)
            doc.problems.extend(_dates_out_of_order(statement))
        except _Rejected as rejected:
            label = f"statement {doc.text('Id', stmt) or '(no Id)'}: "
            doc.problems.append(doc.problem(rejected.rule, label + rejected.detail,
                                            rejected.element if rejected.element is not None
                                            else stmt))
    return statements


def _camt_balance(doc: _Doc, bal: etree._Element) -> _Balance:
    code = doc.text("Tp/CdOrPrtry/Cd", bal) or doc.text("Tp/CdOrPrtry/Prtry", bal)
    amount, currency = doc.signed_amount(bal)
    day = doc.date("Dt", bal)
    if day is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"balance {code} has no Dt", bal)
    return _Balance(code, amount, currency, day, bal)


def _camt_statement(doc: _Doc, stmt: etree._Element) -> CashStatement:
    statement_id = doc.required("Id", stmt)
    account = doc.text("Acct/Id/IBAN", stmt) or doc.text("Acct/Id/Othr/Id", stmt)
    if not account:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "Acct/Id (IBAN or Othr/Id) is missing",
                        doc.find("Acct", stmt))
    balances = [_camt_balance(doc, bal) for bal in doc.findall("Bal", stmt)]
    currency = doc.text("Acct/Ccy", stmt) or next((b.currency for b in balances), "")
    by_code: dict[str, list[_Balance]] = {}
    for balance in balances:
        by_code.setdefault(balance.code, []).append(balance)
    interim = by_code.get("ITBD", [])
    opening = next((by_code[code][0] for code in ("OPBD", "PRCD") if code in by_code),
                   interim[0] if interim else None)
    closing = by_code["CLBD"][0] if "CLBD" in by_code else interim[-1] if interim else None
    if opening is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "no opening booked balance (OPBD, PRCD "
                                                     "or ITBD)", stmt)
    if closing is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "no closing booked balance (CLBD or ITBD)",
                        stmt)
    for balance in (opening, closing):
        if balance.currency != currency:
            raise _Rejected(Rule.CURRENCY_MISMATCH, f"balance {balance.code} is in "
                                                    f"{balance.currency}, the account in "
                                                    f"{currency}", balance.element)
    extra = {name: value for name, value in (
        ("message_id", doc.text("GrpHdr/MsgId")),
        ("electronic_sequence", doc.text("ElctrncSeqNb", stmt)),
        ("legal_sequence", doc.text("LglSeqNb", stmt)),
        ("servicer_bic", doc.sender or doc.text("Acct/Svcr/FinInstnId/BIC", stmt)
         or doc.text("Acct/Svcr/FinInstnId/BICFI", stmt)),
        ("line", str(doc.line(stmt) or "")),
    ) if value}
    if opening.code != "OPBD":
        extra["opening_balance_type"] = opening.code
    if closing.code != "CLBD":
        extra["closing_balance_type"] = closing.code
    for balance in balances:
        if balance is not opening and balance is not closing \
                and balance.code not in ("CLAV", "FWAV"):
            key = f"balance.{balance.code}"
            text = f"{balance.date} {_figure(balance.amount)}"
            extra[key] = f"{extra[key]}; {text}" if key in extra else text
    entries: list[CashEntry] = []
    unbooked = 0
    for ntry in doc.findall("Ntry", stmt):
        entry, status, reasons = _camt_entry(doc, ntry)
        if status == "BOOK":
            entries.append(entry)
            if reasons:
                extra[f"entry.{len(entries)}.return_reason"] = ",".join(reasons)
        else:
            unbooked += 1
            extra[f"unbooked.{unbooked}"] = (
                f"line {entry.line}: {status} {_figure(entry.amount)} {entry.currency} booked "
                f"{entry.booking_date} value {entry.value_date} ref {entry.reference or '-'}")
    if unbooked:
        extra["unbooked_entries"] = str(unbooked)
    return CashStatement(
        source=doc.source,
        statement_id=statement_id,
        account=account,
        currency=currency,
        opening_balance=opening.amount,
        opening_date=opening.date,
        closing_balance=closing.amount,
        closing_date=closing.date,
        entries=tuple(entries),
        available_balances=tuple((b.date, b.amount) for b in balances
                                 if b.code in ("CLAV", "FWAV")),
        extra=extra,
    )


def _entry_status(doc: _Doc, ntry: etree._Element) -> str:
    status = doc.find("Sts", ntry)
    if status is None:
        return "BOOK"
    if len(status) == 0:
        return _text(status) or "BOOK"
    return doc.text("Cd", status) or doc.text("Prtry", status) or "BOOK"


_REFERENCE_PATHS = ("EndToEndId", "MsgId", "PmtInfId", "InstrId")


def _camt_reference(doc: _Doc, ntry: etree._Element, transactions: list[etree._Element]) -> str:
    for name in _REFERENCE_PATHS:
        values = {doc.text(f"Refs/{name}", tx) for tx in transactions}
        if transactions and len(values) == 1 and (value := values.pop()) not in _NO_REFERENCE:
            return value
    # The bank's own references (AcctSvcrRef, NtryRef) are not ours to match on: they stay
    # in ``bank_reference`` and the entry is matched by amount and value date instead.
    for path in ("NtryDtls/Btch/PmtInfId", "NtryDtls/Btch/MsgId"):
        if (value := doc.text(path, ntry)) not in _NO_REFERENCE:
            return value
    return ""


def _camt_entry(doc: _Doc, ntry: etree._Element) -> tuple[CashEntry, str, list[str]]:
    """The entry, its status code and its return reasons."""
    amount, currency = doc.signed_amount(ntry)
    status = _entry_status(doc, ntry)
    booking = doc.date("BookgDt", ntry)
    value = doc.date("ValDt", ntry)
    if booking is None and value is None:
        if status == "BOOK":
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "a booked entry without BookgDt or "
                                                         "ValDt", ntry)
        booking = value = dt.date.min
    booking = booking or value
    value = value or booking
    assert booking is not None and value is not None
    transactions = doc.findall("NtryDtls/TxDtls", ntry)
    bank_reference = doc.text("AcctSvcrRef", ntry)
    if not bank_reference and len(transactions) == 1:
        bank_reference = doc.text("Refs/AcctSvcrRef", transactions[0])
    description = doc.text("AddtlNtryInf", ntry)
    if not description:
        texts = [" ".join(doc.texts("RmtInf/Ustrd", tx)) for tx in transactions]
        description = "; ".join(dict.fromkeys(text for text in texts if text))
    if not description:
        description = "; ".join(dict.fromkeys(text for tx in transactions
                                              if (text := doc.text("AddtlTxInf", tx))))
    reasons = []
    for tx in transactions:
        reason = doc.text("RtrInf/Rsn/Cd", tx) or doc.text("RtrInf/Rsn/Prtry", tx)
        if reason and reason not in reasons:
            reasons.append(reason)
    reversal = doc.text("RvslInd", ntry).lower() in ("true", "1")
    entry = CashEntry(amount=amount, currency=currency, booking_date=booking, value_date=value,
                      reference=_camt_reference(doc, ntry, transactions),
                      bank_reference=bank_reference, description=description,
                      reversal=reversal, line=doc.line(ntry))
    return entry, status, reasons


# --- semt.002 ----------------------------------------------------------------------------------

_QUANTITY_LEAVES = ("Unit", "FaceAmt", "AmtsdVal", "DgtlTknUnit")


def _semt(doc: _Doc) -> list[HoldingsStatement]:
    body = doc.body
    name = etree.QName(body).localname
    if name.startswith("CtdyStmtOfHldgs"):  # semt.002.001.02
        statement_id = doc.text("StmtGnlDtls/Ref") or doc.reference or doc.text("MsgId/Id")
        account = _semt_v02_account(doc, doc.find("AcctDtls/Id"))
        sender = doc.sender or doc.text("AcctDtls/AcctSvcr/BICOrBEI")
        groups = [(account, doc.findall("BalForAcct"), doc.find("AcctDtls"))]
        groups += [(_semt_v02_account(doc, doc.find("Id", sub)), doc.findall("BalForSubAcct", sub),
                    sub) for sub in doc.findall("SubAcctDtls")]
        security, aggregate = "FinInstrmDtls/Id", "AggtQty"
    elif name.startswith("SctiesBalCtdyRpt"):  # semt.002.001.03 on, semt.002.002.xx
        statement_id = doc.text("StmtGnlDtls/StmtId") or doc.reference
        account = doc.text("SfkpgAcct/Id")
        sender = doc.sender or doc.text("AcctSvcr/Id/AnyBIC")
        groups = [(account, doc.findall("BalForAcct"), doc.find("SfkpgAcct"))]
        groups += [(doc.text("SfkpgAcct/Id", sub), doc.findall("BalForSubAcct", sub), sub)
                   for sub in doc.findall("SubAcctDtls")]
        security, aggregate = "FinInstrmId", "AggtBal"
    else:
        raise _Rejected(Rule.UNSUPPORTED_MESSAGE_TYPE, f"{doc.message} body {name} is not a "
                                                       "statement of holdings Zaplecze reads")
    statement_date = doc.date("StmtGnlDtls/StmtDtTm", body)
    if statement_date is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, "StmtGnlDtls/StmtDtTm is missing",
                        doc.find("StmtGnlDtls"))
    lines: list[HoldingLine] = []
    for group_account, balances, where in groups:
        if balances and not group_account:
            doc.problems.append(doc.problem(Rule.MISSING_REQUIRED_VALUE,
                                            f"{len(balances)} balances without a safekeeping "
                                            "account (SfkpgAcct/Id); not read", where))
            continue
        for balance in balances:
            try:
                lines.append(_semt_line(doc, balance, group_account, security, aggregate))
            except _Rejected as rejected:
                doc.problems.append(doc.problem(rejected.rule, rejected.detail,
                                                rejected.element if rejected.element is not None
                                                else balance))
    return [HoldingsStatement(source=doc.source, statement_id=statement_id,
                              statement_date=statement_date, lines=tuple(lines), sender=sender)]


def _semt_v02_account(doc: _Doc, choice: etree._Element | None) -> str:
    """The account of an AccountIdentificationFormatChoice (SmplId, IdAndPurp or IdAsDSS)."""
    if choice is None:
        return ""
    return _leaf_text(choice, "Id")


def _semt_line(doc: _Doc, balance: etree._Element, account: str, security: str,
               aggregate: str) -> HoldingLine:
    identification = doc.find(security, balance)
    isin = doc.text("ISIN", identification) if identification is not None else ""
    line = doc.line(balance)
    if isin:
        if not is_valid_isin(isin):
            doc.problems.append(doc.problem(Rule.INVALID_ISIN, f"ISIN {isin!r} of account "
                                            f"{account} is not a valid ISIN (ISO 6166 country "
                                            "code and check digit); the line is kept",
                                            doc.find("ISIN", identification)))
    else:
        isin, scheme = _other_identification(doc, identification)
        if not isin:
            raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{security} identifies no security",
                            identification if identification is not None else balance)
        doc.problems.append(doc.problem(Rule.INVALID_ISIN, f"a security of account {account} "
                                        f"without an ISIN: {scheme} {isin!r}; the line is kept "
                                        "with that identification", identification))
    holder = doc.find(aggregate, balance)
    if holder is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{aggregate} of {isin} is missing", balance)
    leaf = next((element for element in holder.iter(tag=etree.Element)
                 if etree.QName(element).localname in _QUANTITY_LEAVES), None)
    if leaf is None:
        raise _Rejected(Rule.MISSING_REQUIRED_VALUE, f"{aggregate} of {isin} gives no quantity "
                                                     "(Unit, FaceAmt, AmtsdVal); a proprietary "
                                                     "quantity is not read", holder)
    quantity = doc.number(leaf, f"{aggregate}/…/{etree.QName(leaf).localname} of {isin}")
    if doc.text("ShrtLngInd", holder) == "SHOR":
        quantity = -quantity
    return HoldingLine(safekeeping_account=account, isin=isin, quantity=quantity, line=line)


def _other_identification(doc: _Doc, identification: etree._Element | None) -> tuple[str, str]:
    """(identification, its scheme) of a security named without an ISIN."""
    if identification is None:
        return "", ""
    other = doc.find("OthrId", identification)
    if other is not None:
        scheme = (doc.text("Tp/Cd", other) or doc.text("Tp/Prtry", other) or "OthrId")
        return doc.text("Id", other), scheme
    for element in identification.iterchildren(tag=etree.Element):  # 001.02: a choice
        name = etree.QName(element).localname
        text = _text(element) or _leaf_text(element, "Id")
        if text:
            return text, name
    return "", ""


# --- MT940 / MT942 -----------------------------------------------------------------------------

# As mt-940 5.1.1's Transactions.parse finds its tags.
_MT_TAG = re.compile(r"^:\n?(?P<full_tag>(?P<tag>[0-9]{2}|NS)(?P<sub_tag>[A-Z])?):", re.MULTILINE)
_FIN_ENVELOPE = re.compile(r"\s*(?:\{[1-5S]:|-\})")
_STRUCTURED_DETAILS = re.compile(r"[0-9]{3}\?[0-9]{2}")
_MT_OPTIONS = mt940.Options(reversal_sign=True, case_insensitive_marks=True,
                            unbounded_details=True)
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_ONCE = {"20": ":20:", "25": ":25:", "28": ":28C:", "28C": ":28C:",
         "60": "opening balance", "60F": "opening balance", "60M": "opening balance",
         "62": "closing balance", "62F": "closing balance", "62M": "closing balance"}
_INTERIM_KEYS = ("d_floor_limit", "c_floor_limit", "date", "sum_debit_entries",
                 "sum_credit_entries")
_MT_REFERENCE = "zaplecze_61"  # the :61: references, kept where a later :86: cannot reach
_MT_DETAILS = "zaplecze_86"  # the :86: text as given


@dataclass
class _MtBlock:
    """One statement of an MT940/MT942 file as the mt-940 package parsed it."""

    first_line: int  # physical line of its first field
    last_line: int
    transactions: Mt940Transactions
    entry_lines: list[int]  # the :61: line of each transaction
    available: list[Mt940Balance]  # :64: and :65: in order
    fields: list[tuple[str, int]]  # each field's tag ('20', '60F', …) and line
    problem: Problem | None = None


def _mt_blocks(text: str, source: str) -> Iterator[_MtBlock]:
    raw = text.removeprefix("\ufeff").split("\n")
    starts = [i for i, line in enumerate(raw) if line.startswith(":20:")]
    for start, end in itertools.pairwise(sorted({0, len(raw), *starts})):
        kept: list[tuple[int, str]] = []
        for number in range(start, end):  # as mt-940's Transactions.strip, lines kept
            line = raw[number].replace("\r", "").rstrip()
            if line and line.strip() != "-" and not _FIN_ENVELOPE.match(line):
                kept.append((number + 1, line))
        if kept:
            block = _mt_block(kept, source)
            if block is not None:
                yield block


def _mt_block(kept: list[tuple[int, str]], source: str) -> _MtBlock | None:
    data = "\n".join(line for _, line in kept)
    available: list[Mt940Balance] = []

    def keep_available(transactions: Mt940Transactions, tag: Any, tag_dict: dict[str, Any],
                       result: dict[str, Any]) -> dict[str, Any]:
        available.extend(value for value in result.values() if isinstance(value, Mt940Balance))
        return result

    def keep_references(transactions: Mt940Transactions, tag: Any, tag_dict: dict[str, Any],
                        result: dict[str, Any]) -> dict[str, Any]:
        result[_MT_REFERENCE] = (result.get("customer_reference") or "",
                                 result.get("bank_reference") or "",
                                 str(result.get("status") or ""))
        return result

    def keep_details(transactions: Mt940Transactions, tag: Any, tag_dict: dict[str, Any],
                     result: dict[str, Any]) -> dict[str, Any]:
        result[_MT_DETAILS] = str(tag_dict.get("transaction_details") or "")
        return result

    defaults = Mt940Transactions.DEFAULT_PROCESSORS
    processors: Any = {
        "post_statement": [*defaults["post_statement"], keep_references],
        "post_transaction_details": [keep_details, *defaults["post_transaction_details"]],
        "post_available_balance": [keep_available],
        "post_forward_available_balance": [keep_available],
    }
    transactions = Mt940Transactions(processors=processors, options=_MT_OPTIONS)
    matches = transactions.sanitize_tag_id_matches(list(_MT_TAG.finditer(data)))
    if not matches:
        return None
    lines = [kept[data.count("\n", 0, match.start())][0] for match in matches]
    block = _MtBlock(lines[0], kept[-1][0], transactions, [], available, [])
    for index, match in enumerate(matches):
        tag = match.group("full_tag")
        block.fields.append((tag, lines[index]))
        before = len(transactions.transactions)
        try:
            transactions._process_match(match, index, matches, data)  # as Transactions.parse
        except Exception as error:  # the package raises RuntimeError, ValueError, decimal errors
            block.problem = _mt_parse_problem(error, tag, source, lines[index])
            return block
        if match.group("tag") == "61":
            if len(transactions.transactions) == before:
                block.problem = Problem(
                    Rule.MT_MALFORMED, f":61: at line {lines[index]} has no transaction type "
                    f"(N/F/S + 3 characters) after the amount in the :61: before it (line "
                    f"{block.entry_lines[-1]}), so mt-940 merged the two; statement not read",
                    source, block.entry_lines[-1])
                return block
            block.entry_lines.append(lines[index])
    return block


def _mt_parse_problem(error: Exception, tag: str, source: str, line: int) -> Problem:
    if isinstance(error, RuntimeError) and len(error.args) == 3:  # Tag.parse: (msg, tag, value)
        value = str(error.args[2])
        shown = value if len(value) <= 60 else value[:57] + "..."
        return Problem(Rule.MT_MALFORMED, f":{tag}: {shown!r} is not of the field's format; "
                                          "statement not read", source, line)
    message = str(error) or type(error).__name__
    if isinstance(error, ArithmeticError):
        rule = Rule.INVALID_NUMBER
    elif isinstance(error, ValueError) and any(word in message
                                               for word in ("day", "month", "year")):
        rule = Rule.INVALID_DATE
    else:
        rule = Rule.MT_MALFORMED
    return Problem(rule, f":{tag}: cannot be read ({message}); statement not read", source, line)


def _mt_date(value: dt.date) -> dt.date:
    return dt.date(value.year, value.month, value.day)  # a plain date, not mt940.models.Date


def _mt_amount(value: Any) -> tuple[Decimal, str]:
    amount = getattr(value, "amount", None)
    if not isinstance(amount, Decimal):
        raise ValueError(f"{value!r} is not an amount")
    return amount, str(getattr(value, "currency", None) or "")


def _mt_description(details: str) -> str:
    lines = [line.strip() for line in details.splitlines()]
    joined = "".join(lines)
    if _STRUCTURED_DETAILS.match(joined):
        return joined
    return " ".join(line for line in lines if line)


def _mt_entries(block: _MtBlock) -> list[CashEntry]:
    entries = []
    for transaction, line in zip(block.transactions.transactions, block.entry_lines,
                                 strict=False):
        data = transaction.data
        amount, currency = _mt_amount(data["amount"])
        customer, bank, status = data.get(_MT_REFERENCE, ("", "", ""))
        reference = customer.strip()
        if reference.upper() in _NO_REFERENCE:
            eref = str(data.get("end_to_end_reference") or "").strip()
            reference = "" if eref.upper() in _NO_REFERENCE else eref
        value_date = _mt_date(data["date"])
        entry_date = data.get("entry_date")
        entries.append(CashEntry(
            amount=amount,
            currency=currency,
            booking_date=_mt_date(entry_date) if isinstance(entry_date, dt.date) else value_date,
            value_date=value_date,
            reference=reference,
            bank_reference="" if bank.strip().upper() in _NO_REFERENCE else bank.strip(),
            description=_mt_description(str(data.get(_MT_DETAILS) or "")),
            reversal=status.upper().startswith("R"),
            line=line,
        ))
    return entries


def _mt_statement(block: _MtBlock, source: str) -> tuple[CashStatement | None, Problem | None]:
    data = block.transactions.data
    opening = next((data[key] for key in ("final_opening_balance", "intermediate_opening_balance",
                                          "opening_balance") if key in data), None)
    closing = next((data[key] for key in ("final_closing_balance", "intermediate_closing_balance",
                                          "closing_balance") if key in data), None)
    reference = str(data.get("transaction_reference") or "").strip()
    account = str(data.get("account_identification") or "").strip()
    where = f"lines {block.first_line}-{block.last_line}"
    label = f"statement {reference!r} ({where})" if reference else f"the fields of {where}"
    if opening is None and closing is None and any(key in data for key in _INTERIM_KEYS):
        return None, Problem(Rule.UNSUPPORTED_MESSAGE_TYPE,
                             f"{label} is an MT942 interim transaction report (no opening or "
                             f"closing balance), not a statement; its "
                             f"{len(block.entry_lines)} entries are read by read_mt940_entries",
                             source, block.first_line)
    seen: dict[str, int] = {}
    for tag, line in block.fields:
        if (kind := _ONCE.get(tag)) is None:
            continue
        if kind in seen:
            return None, Problem(Rule.MT_MALFORMED,
                                 f"{label}: a second {kind} (:{tag}:) at line {line}, the "
                                 f"first at line {seen[kind]} (a field inside another's text?)"
                                 "; not read", source, line)
        seen[kind] = line
    missing = [name for name, present in ((":20: (reference)", reference),
                                          (":25: (account)", account),
                                          (":60F:/:60M: (opening balance)", opening),
                                          (":62F:/:62M: (closing balance)", closing))
               if not present]
    if missing:
        return None, Problem(Rule.MT_MISSING_FIELD,
                             f"{label} lacks {', '.join(missing)}: truncated or a fragment; "
                             f"not read ({len(block.entry_lines)} entries)",
                             source, block.first_line)
    assert opening is not None and closing is not None
    opening_amount, currency = _mt_amount(opening.amount)
    closing_amount, closing_currency = _mt_amount(closing.amount)
    for name, code in (("opening", currency), ("closing", closing_currency)):
        if not _CURRENCY_CODE.fullmatch(code):  # DEM and the like are read: old statements
            return None, Problem(Rule.INVALID_CURRENCY, f"{label}: the {name} balance's "
                                                        f"currency {code!r} is not a currency "
                                                        "code (the field lacks one?); not read",
                                 source, block.first_line)
    if closing_currency != currency:
        return None, Problem(Rule.CURRENCY_MISMATCH, f"{label}: the opening balance is in "
                                                     f"{currency}, the closing in "
                                                     f"{closing_currency}; not read",
                             source, block.first_line)
    number = str(data.get("statement_number") or "")
    if sequence := str(data.get("sequence_number") or ""):
        number = f"{number}/{sequence}"
    extra = {name: value for name, value in (
        ("statement_number", number),
        ("related_reference", str(data.get("related_reference") or "").strip()),
        ("line", str(block.first_line)),
    ) if value}
    return CashStatement(
        source=source,
        statement_id=reference,
        account=account,
        currency=currency,
        opening_balance=opening_amount,
        opening_date=_mt_date(opening.date),
        closing_balance=closing_amount,
        closing_date=_mt_date(closing.date),
        entries=tuple(_mt_entries(block)),
        available_balances=tuple((_mt_date(balance.date), _mt_amount(balance.amount)[0])
                                 for balance in block.available if balance.date is not None),
        extra=extra,
    ), None


def _mt_unusable(block: _MtBlock, source: str, error: Exception) -> Problem:
    """What mt-940 parsed is not of the shape expected (a guard: no sample does this)."""
    return Problem(Rule.MT_MALFORMED, f"the fields of lines {block.first_line}-"
                                      f"{block.last_line} cannot be read ({error}); not read",
                   source, block.first_line)


def _no_mt(text: str, source: str) -> Problem:
    return Problem(Rule.MT_MALFORMED, "no MT940 field (:20:, :25:, :60F:, :61:, …) at the "
                                      "start of any line" if text.strip() else "the file is "
                                      "empty", source, 1)


def read_mt940(text: str, source: str) -> tuple[list[CashStatement], list[Problem]]:
    """The statements of an MT940 file (a FIN envelope or none); see the module."""
    statements: list[CashStatement] = []
    problems: list[Problem] = []
    blocks = list(_mt_blocks(text, source))
    if not blocks:
        problems.append(_no_mt(text, source))
    for block in blocks:
        if block.problem is not None:
            problems.append(block.problem)
            continue
        try:
            statement, problem = _mt_statement(block, source)
        except (ValueError, LookupError, TypeError, AttributeError) as error:
            statement, problem = None, _mt_unusable(block, source, error)
        if statement is not None:
            statements.append(statement)
            problems.extend(_dates_out_of_order(statement))
        if problem is not None:
            problems.append(problem)
    return statements, problems


def read_mt940_entries(text: str, source: str) -> tuple[list[CashEntry], list[Problem]]:
    """Every entry (``:61:`` + ``:86:``) of an MT940 or MT942 file, its statements complete or
    not: an MT942 interim report or a fragment has entries but no balances. The problems are
    those of parsing (a statement the package cannot parse gives no entries)."""
    entries: list[CashEntry] = []
    problems: list[Problem] = []
    blocks = list(_mt_blocks(text, source))
    if not blocks:
        problems.append(_no_mt(text, source))
    for block in blocks:
        if block.problem is not None:
            problems.append(block.problem)
            continue
        try:
            entries.extend(_mt_entries(block))
        except (ValueError, LookupError, TypeError, AttributeError) as error:
            problems.append(_mt_unusable(block, source, error))
    return entries, problems


# --- MT535 -------------------------------------------------------------------------------------


def read_mt535(text: str, source: str) -> tuple[list[HoldingsStatement], list[Problem]]:
    """The statements of holdings of a file of MT535 messages; see the module."""
    holdings, problems = read_holdings(text, source)
    messages, _ = parse_fin(text, source)
    about: dict[str, tuple[str, str, int]] = {}  # file:line -> (SEME, sender, line)
    for message in messages:
        genl = message.body.find("GENL")
        reference = genl[0].first("20C", "SEME") if genl else None
        about[message.where()] = (reference.value if reference is not None else "",
                                  message.sender_bic, message.line)
    groups: dict[tuple[str, dt.date, str], list[HoldingLine]] = {}
    for holding in holdings:
        _, sender, line = about.get(holding.source, ("", "", 0))
        isin = holding.isin
        if not isin:
            isin = holding.security_id
            problems.append(Problem(Rule.INVALID_ISIN, f"MT535: a security of account "
                                    f"{holding.account} without an ISIN: :35B:{isin}; the line "
                                    "is kept with that identification", source, line or None))
        elif not is_valid_isin(isin):
            problems.append(Problem(Rule.INVALID_ISIN, f"MT535: ISIN {isin!r} of account "
                                    f"{holding.account} is not a valid ISIN (ISO 6166 country "
                                    "code and check digit); the line is kept", source,
                                    line or None))
        key = (holding.source, holding.statement_date, holding.account)
        groups.setdefault(key, []).append(HoldingLine(holding.account, isin, holding.quantity,
                                                      line or None))
    statements = []
    for (where, statement_date, _account), lines in groups.items():
        seme, sender, _ = about.get(where, ("", "", 0))
        statements.append(HoldingsStatement(source=source, statement_id=seme,
                                            statement_date=statement_date, lines=tuple(lines),
                                            sender=sender))
    problems.sort(key=lambda problem: problem.line or 0)
    return statements, problems


# --- positions CSV -----------------------------------------------------------------------------


def read_positions_csv(data: bytes, source: str) -> tuple[list[HoldingsStatement], list[Problem]]:
    """The positions CSV ``date,safekeeping_account,isin,quantity``; see the module."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return [], [Problem(Rule.UNREADABLE_FILE, "not UTF-8: save the file as UTF-8", source,
                            line)]
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    problems: list[Problem] = []
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return [], [Problem(Rule.MISSING_REQUIRED_COLUMN, "the file is empty: expected the "
                            f"header {','.join(POSITION_COLUMNS)}", source, 1)]
    except csv.Error as error:
        return [], [Problem(Rule.UNREADABLE_FILE, str(error), source, 1)]
    missing = [column for column in POSITION_COLUMNS if column not in header]
    if missing:
        return [], [Problem(Rule.MISSING_REQUIRED_COLUMN, f"header lacks {', '.join(missing)} "
                            f"(expected {','.join(POSITION_COLUMNS)})", source, 1)]
    groups: dict[tuple[dt.date, str], list[HoldingLine]] = {}
    previous_end = reader.line_num
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            problems.append(Problem(Rule.UNREADABLE_FILE, str(error), source, previous_end + 1))
            break
        line = previous_end + 1
        previous_end = reader.line_num
        if not any(value.strip() for value in fields):
            continue
        if len(fields) > len(header) and any(value.strip() for value in fields[len(header):]):
            problems.append(Problem(Rule.WRONG_FIELD_COUNT, f"{len(fields)} fields, the header "
                                    f"has {len(header)}", source, line))
            continue
        values = {name: (fields[i].strip() if i < len(fields) else "")
                  for i, name in enumerate(header)}
        try:
            day = required_date(values, "date")
            account = required(values, "safekeeping_account")
            isin = required(values, "isin")
            quantity = required_decimal(values, "quantity")
        except Rejected as rejected:
            problems.append(Problem(rejected.rule, rejected.detail, source, line))
            continue
        if not is_valid_isin(isin):
            problems.append(Problem(Rule.INVALID_ISIN, f"isin {isin!r} is not a valid ISIN "
                                    "(ISO 6166 country code and check digit); the line is kept",
                                    source, line))
        groups.setdefault((day, account), []).append(HoldingLine(account, isin, quantity, line))
    statements = [HoldingsStatement(source=source, statement_id="", statement_date=day,
                                    lines=tuple(lines)) for (day, _), lines in groups.items()]
    return statements, problems


# --- any statement file ------------------------------------------------------------------------

_MT535 = re.compile(r"\{2:[IO]535|^:16R:GENL", re.MULTILINE)
_MT940 = re.compile(r"\{1:|^:(?:[0-9]{2}[A-Z]?|NS):", re.MULTILINE)


def _decode_mt(data: bytes) -> str:
    """As the mt-940 package decodes: UTF-8, else code page 852 (which never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp852")


def read_statement_file(path: Path, xsd_dir: Path | None = None,
                        ) -> tuple[list[Statement], list[Problem]]:
    """The statements of a file of any format read here (the format sniffed), with the
    problems of reading them and of their arithmetic (``statement_arithmetic``).

    Given ``xsd_dir``, each ISO 20022 Document is validated against ``<message>.xsd`` there
    (camt.053.001.02.xsd, …); a message whose XSD is not there is read unvalidated, with a
    ``missing_required_file`` problem saying so.
    """
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as error:
        return [], [Problem(Rule.UNREADABLE_FILE, f"cannot read the file: {error.strerror}",
                            source, None)]
    statements: list[Statement] = []
    problems: list[Problem] = []
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    text = "" if head.startswith(b"<") else _decode_mt(data)
    if head.startswith(b"<"):
        missing: set[str] = set()

        def schema_for(message: str) -> etree.XMLSchema | None:
            assert xsd_dir is not None
            xsd = xsd_dir / f"{message}.xsd"
            if xsd.is_file():
                return load_schema(xsd)
            if message not in missing:
                missing.add(message)
                problems.append(Problem(Rule.MISSING_REQUIRED_FILE, f"no {xsd.name} in "
                                        f"{xsd_dir}: {message} read without validation",
                                        source, None))
            return None

        found, read_problems = _read_iso(data, source, {CAMT053: ("BkToCstmrStmt", _camt),
                                                        SEMT002: ("", _semt)},
                                         schema_for if xsd_dir is not None else None)
        statements.extend(found)
        problems.extend(read_problems)
    elif _MT535.search(text):
        holdings, read_problems = read_mt535(text, source)
        statements.extend(holdings)
        problems.extend(read_problems)
    elif _MT940.search(text):
        cash, read_problems = read_mt940(text, source)
        statements.extend(cash)
        problems.extend(read_problems)
    elif _is_positions_csv(head):
        positions, read_problems = read_positions_csv(data, source)
        statements.extend(positions)
        problems.extend(read_problems)
    else:
        problems.append(Problem(Rule.UNSUPPORTED_MESSAGE_TYPE, "not a statement format read "
                                "here (camt.053 or semt.002 XML, MT940/MT942, MT535, the "
                                f"positions CSV {','.join(POSITION_COLUMNS)})", source, 1))
    for statement in statements:
        if isinstance(statement, CashStatement):
            problems.extend(statement_arithmetic(statement))
    return statements, problems


def _is_positions_csv(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    names = {name.strip().strip('"') for name in first.split(",")}
    return "isin" in names and "safekeeping_account" in names
