"""Statements read into reconciliation values: camt.053 and MT940 bank statements, semt.002,
MT535 and the positions CSV of holdings. The shared samples (../shared/standards) are read as
they are: the MT940 ones against the parse of the mt-940 package stored beside them
(``*.expected.json``), the camt.053 ones against their balances; bad input gives located
problems and never stops the next statement."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from conftest import shared_path
from zaplecze.formats.iso20022 import load_schema
from zaplecze.formats.statements import (
    read_camt053,
    read_mt535,
    read_mt940,
    read_mt940_entries,
    read_positions_csv,
    read_semt002,
    read_statement_file,
    statement_arithmetic,
)
from zaplecze.kernel.problems import Problem, Rule
from zaplecze.reconciliation.model import (
    CashEntry,
    CashStatement,
    HoldingLine,
    HoldingsStatement,
)

D = Decimal
NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}


def iso(*parts: str) -> Path:
    return shared_path("standards", "iso20022", *parts)


def mt940_dir() -> Path:
    return shared_path("standards", "swift", "mt940")


def xsd(name: str) -> etree.XMLSchema:
    return load_schema(iso("xsd", f"{name}.xsd"))


def decode(data: bytes) -> str:
    """As the mt-940 package (and read_statement_file) decode: UTF-8, else code page 852."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp852")


def where(problems: list[Problem]) -> list[tuple[Rule, int | None]]:
    return [(problem.rule, problem.line) for problem in problems]


def line_of(data: bytes, needle: bytes, occurrence: int = 1) -> int:
    """The physical line of the ``occurrence``-th ``needle`` in ``data``."""
    at = -1
    for _ in range(occurrence):
        at = data.index(needle, at + 1)
    return data.count(b"\n", 0, at) + 1


def amounts_are_decimal(statements: list[Any]) -> None:
    for statement in statements:
        if isinstance(statement, CashStatement):
            values: list[object] = [statement.opening_balance, statement.closing_balance]
            values += [entry.amount for entry in statement.entries]
            values += [amount for _, amount in statement.available_balances]
        else:
            values = [line.quantity for line in statement.lines]
        assert all(type(value) is Decimal for value in values), statement


# --- MT940: every shared sample against the mt-940 package's own parse -------------------------

EXPECTED = sorted(path.relative_to(mt940_dir()).as_posix()
                  for path in mt940_dir().glob("*/*.expected.json"))


def sample(name: str) -> tuple[str, dict[str, Any], list[str]]:
    """The sample's text, its expected parse (numbers as Decimal) and its physical lines."""
    expected_path = mt940_dir() / name
    text = decode(expected_path.with_name(expected_path.name.removesuffix(".expected.json"))
                  .read_bytes())
    expected = json.loads(expected_path.read_text(encoding="utf-8"), parse_float=Decimal)
    return text, expected, text.split("\n")


def test_every_mt940_sample_with_an_expected_parse_is_here() -> None:
    assert len(EXPECTED) == 50
    assert "ASNB/0708271685_09022020_164516.940.txt.expected.json" in EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_mt940_entries_match_the_expected_parse(name: str) -> None:
    text, expected, lines = sample(name)
    source = name.rsplit("/", 1)[-1]
    entries, problems = read_mt940_entries(text, source)
    if "error" in expected:  # the package cannot parse it: located problems, no exception
        assert problems and all(problem.rule is Rule.MT_MALFORMED for problem in problems)
        return
    transactions = expected["transactions"] or []
    if transactions:
        assert problems == []
    else:  # a file without any field (invalid_statement.sta) is said to be one
        assert all("no MT940 field" in problem.detail for problem in problems)
    assert len(entries) == len(transactions)
    for entry, wanted in zip(entries, transactions, strict=True):
        raw = lines[entry.line - 1]
        assert raw.startswith(":61:"), (entry, raw)  # located at its :61:
        amount = D(wanted["amount"]["amount"])
        if wanted["status"] == "RC":  # a reversal of a credit is money out (see below)
            assert entry.amount == -amount and entry.reversal
        else:
            assert str(entry.amount) == wanted["amount"]["amount"]  # exactly as written
            assert entry.reversal == wanted["status"].startswith("R")
        assert type(entry.amount) is Decimal
        assert entry.currency == (wanted["amount"]["currency"] or "")
        assert entry.value_date.isoformat() == wanted["date"]
        assert entry.booking_date.isoformat() == wanted.get("entry_date", wanted["date"])
        bank = (wanted["bank_reference"] or "").strip()
        assert entry.bank_reference == ("" if bank.upper() in NO_REFERENCE else bank)
        eref = (wanted.get("end_to_end_reference") or "").strip()
        eref = "" if eref.upper() in NO_REFERENCE else eref
        customer = wanted["customer_reference"]
        if isinstance(customer, str) and "\n" not in customer:
            assert entry.reference == (eref if customer.strip().upper() in NO_REFERENCE
                                       else customer.strip())
        else:  # mt-940 let a structured :86: replace the :61: reference; ours keeps it
            assert entry.reference == eref or entry.reference in raw, (entry, raw)


def last_statement_fields(text: str) -> tuple[int, str]:
    """The physical line of the last :20: and the text from there on."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith(":20:")]
    first = starts[-1] if starts else 0
    return first + 1, "\n".join(lines[first:])


def balance(value: dict[str, Any]) -> tuple[dt.date, Decimal, str]:
    return (dt.date.fromisoformat(value["date"]), D(value["amount"]["amount"]),
            value["amount"]["currency"])


@pytest.mark.parametrize("name", EXPECTED)
def test_mt940_statements_match_the_expected_parse(name: str) -> None:
    """The package keeps the statement fields of the last statement of a file: ours agree."""
    text, expected, _ = sample(name)
    statements, problems = read_mt940(text, "x.sta")
    amounts_are_decimal(statements)
    if "error" in expected:
        return
    data = expected["statement"]
    line, last = last_statement_fields(text)
    read = [s for s in statements if s.extra.get("line") == str(line)]
    if not read:  # not a complete statement: a problem located in it says why
        assert any((problem.line or 0) >= line for problem in problems), problems
        return
    statement = read[-1]
    assert statement.statement_id == data["transaction_reference"].strip()
    assert statement.account == data["account_identification"].strip()
    opening = data["final_opening_balance" if ":60F:" in last else
                   "intermediate_opening_balance"]
    closing = data["final_closing_balance" if ":62F:" in last else
                   "intermediate_closing_balance"]
    assert (statement.opening_date, statement.opening_balance, statement.currency) \
        == balance(opening)
    assert (statement.closing_date, statement.closing_balance, statement.currency) \
        == balance(closing)
    for key in ("available_balance", "forward_available_balance"):
        if key in data and f":{64 if key == 'available_balance' else 65}:" in last:
            date, amount, _ = balance(data[key])
            assert (date, amount) in statement.available_balances


def test_mt940_statement_counts_and_problems() -> None:
    """Which samples are statements, which are fragments, and why (one table, so a change in
    the reader shows here)."""
    table = {
        "cmxl/mt940.sta": (3, [Rule.DATES_OUT_OF_ORDER]),  # 3rd: closes 2002-03-25, opens 2003
        "betterplace/sepa_mt9401.sta": (26, []),
        "betterplace/sepa_snippet_broken.sta": (0, [Rule.MT_MALFORMED]),  # :25: inside :86:
        "self-provided/raphaelm.sta": (0, [Rule.INVALID_CURRENCY] * 3),  # :62M:C020315105000,00
        "self-provided/gv_codes.sta": (0, [Rule.MT_MISSING_FIELD]),  # no :62F:
        "self-provided/mt942.sta": (0, [Rule.UNSUPPORTED_MESSAGE_TYPE]),
        "mBank/mt942.sta": (0, [Rule.UNSUPPORTED_MESSAGE_TYPE]),
        "mBank/mt940.sta": (1, []),
        "jejik/rabobank.sta": (4, []),
        "cmxl/statement_line.sta": (0, [Rule.MT_MISSING_FIELD]),  # a lone :61:
        "self-provided/invalid_statement.sta": (0, [Rule.MT_MALFORMED]),  # no field at all
    }
    for name, (count, rules) in table.items():
        text = decode((mt940_dir() / name).read_bytes())
        statements, problems = read_mt940(text, name)
        assert len(statements) == count, name
        assert [problem.rule for problem in problems] == rules, (name, problems)


def test_the_asnb_sample_the_package_cannot_parse_gives_located_problems() -> None:
    """mt-940 fails on ASN Bank's :61: (an IBAN as the reference, 34 characters): those four
    statements are located problems, the other 27 of the file are read."""
    path = mt940_dir() / "ASNB" / "0708271685_09022020_164516.940.txt"
    statements, problems = read_mt940(decode(path.read_bytes()), path.name)
    assert where(problems) == [(Rule.MT_MALFORMED, 6), (Rule.MT_MALFORMED, 42),
                               (Rule.MT_MALFORMED, 233), (Rule.MT_MALFORMED, 263)]
    assert "2001010101D65,00NOVBNL47INGB9999999999" in problems[0].detail
    assert len(statements) == 27
    assert {s.account for s in statements} == {"NL81ASNB9999999999"}
    assert [problem for s in statements for problem in statement_arithmetic(s)] == []
    assert statements[0].extra["statement_number"] == "2/1"


def test_a_reversal_of_a_credit_is_money_out() -> None:
    """sepa_mt9401's first statement adds up only with RC negative, as reversal_sign reads it
    (the package's default, and so the expected json, gives +204.88)."""
    text = (mt940_dir() / "betterplace" / "sepa_mt9401.sta").read_text(encoding="utf-8")
    statements, problems = read_mt940(text, "sepa_mt9401.sta")
    assert problems == []
    first = statements[0]
    reversal = [entry for entry in first.entries if entry.reversal]
    assert [(e.amount, e.line) for e in reversal] == [(D("-204.88"), 19)]
    assert (first.opening_balance, first.closing_balance) == (D("-1234718.36"), D("-1237628.23"))
    assert statement_arithmetic(first) == []
    assert [p for s in statements for p in statement_arithmetic(s)] == []


def test_mt942_entries_are_read_though_it_is_not_a_statement() -> None:
    text = (mt940_dir() / "mBank" / "mt942.sta").read_text(encoding="utf-8")
    statements, problems = read_mt940(text, "mt942.sta")
    assert statements == [] and where(problems) == [(Rule.UNSUPPORTED_MESSAGE_TYPE, 2)]
    entries, problems = read_mt940_entries(text, "mt942.sta")
    assert problems == []
    assert [(e.amount, e.currency, e.bank_reference, e.line) for e in entries] == [
        (D("0.01"), "PLN", "MB170119012058", 7), (D("0.01"), "PLN", "MB170119012085", 13),
        (D("0.01"), "PLN", "MB170119012121", 19)]
    assert entries[0].description.startswith("911 TRANSAKCJA COLLECT; ID IPH: XX000000000001;")


GOOD_MT940 = """\
:20:ZAP-STMT-1
:25:PL61109010140000071219812874
:28C:1/1
:60F:C250314PLN1000,00
:61:2503140314D250,50NTRFZAP-PAY-1//BANK-1
:86:Payment one
:61:2503170314C100,NTRFNONREF//BANK-2
:86:166?00GUTSCHRIFT?20EREF+E2E-42?21SVWZ+more text
:62F:C250314PLN849,50
:64:C250314PLN849,50
:65:C250317PLN949,50
-
"""


def test_mt940_statement_fields() -> None:
    statements, problems = read_mt940(GOOD_MT940, "good.sta")
    assert problems == []
    [statement] = statements
    assert statement == CashStatement(
        source="good.sta", statement_id="ZAP-STMT-1", account="PL61109010140000071219812874",
        currency="PLN", opening_balance=D("1000.00"), opening_date=dt.date(2025, 3, 14),
        closing_balance=D("849.50"), closing_date=dt.date(2025, 3, 14),
        entries=(
            CashEntry(D("-250.50"), "PLN", dt.date(2025, 3, 14), dt.date(2025, 3, 14),
                      "ZAP-PAY-1", "BANK-1", "Payment one", line=5),
            CashEntry(D("100"), "PLN", dt.date(2025, 3, 14), dt.date(2025, 3, 17), "E2E-42",
                      "BANK-2", "166?00GUTSCHRIFT?20EREF+E2E-42?21SVWZ+more text", line=7),
        ),
        available_balances=((dt.date(2025, 3, 14), D("849.50")),
                            (dt.date(2025, 3, 17), D("949.50"))))
    assert statement.extra == {"statement_number": "1/1", "line": "1"}
    assert statement_arithmetic(statement) == []


def test_truncated_mt940_statements_are_located_and_the_others_read() -> None:
    truncated = GOOD_MT940.replace("ZAP-STMT-1", "ZAP-STMT-2").split(":62F:")[0]
    broken = GOOD_MT940.replace("ZAP-STMT-1", "ZAP-STMT-3").replace(
        ":61:2503140314D250,50NTRFZAP-PAY-1//BANK-1", ":61:25031")
    text = GOOD_MT940 + truncated + broken + GOOD_MT940.replace("ZAP-STMT-1", "ZAP-STMT-4")
    statements, problems = read_mt940(text, "mixed.sta")
    assert [s.statement_id for s in statements] == ["ZAP-STMT-1", "ZAP-STMT-4"]
    assert where(problems) == [(Rule.MT_MISSING_FIELD, 13), (Rule.MT_MALFORMED, 25)]
    assert "ZAP-STMT-2" in problems[0].detail and ":62F:" in problems[0].detail
    assert "'25031'" in problems[1].detail
    # a statement cut inside a field, or after it
    statements, problems = read_mt940(":20:ZAP\n:25:PL1\n:60F:C2503", "cut.sta")
    assert statements == [] and where(problems) == [(Rule.MT_MALFORMED, 3)]
    statements, problems = read_mt940(":20:ZAP\n:25:PL1\n:60F:C250314PLN1,", "cut.sta")
    assert statements == [] and where(problems) == [(Rule.MT_MISSING_FIELD, 1)]


def test_mt940_bad_dates_and_amounts_are_located() -> None:
    bad_date = GOOD_MT940.replace(":60F:C250314", ":60F:C251314")
    statements, problems = read_mt940(bad_date + GOOD_MT940, "dates.sta")
    assert len(statements) == 1 and where(problems) == [(Rule.INVALID_DATE, 4)]
    bad_amount = GOOD_MT940.replace("PLN849,50\n:64", "PLN\n:64")
    statements, problems = read_mt940(bad_amount, "amount.sta")
    assert statements == [] and where(problems) == [(Rule.INVALID_NUMBER, 9)]


def test_mt940_in_a_fin_envelope() -> None:
    text = ("{1:F01BANKPLPWAXXX0000000000}{2:O9401200250314BANKPLPWAXXX00000000002503141200N}"
            "{4:\n" + GOOD_MT940.replace("\n-\n", "\n-}{5:{CHK:123456789ABC}}\n"))
    statements, problems = read_mt940(text, "fin.sta")
    assert problems == [] and statements[0].entries[0].line == 6
    assert statements[0].available_balances[-1] == (dt.date(2025, 3, 17), D("949.50"))


# --- camt.053 -----------------------------------------------------------------------------------


def camt(name: str) -> tuple[list[CashStatement], list[Problem]]:
    return read_camt053(iso("samples", name).read_bytes(), name)


def test_the_finnish_camt053_reconciles() -> None:
    statements, problems = camt("camt.053.001.02_FFFS_Finland_sample.xml")
    assert problems == []
    [statement] = statements
    assert (statement.statement_id, statement.account, statement.currency) == (
        "BANKSTMTID0972009", "FI7433010001222090", "EUR")
    assert (statement.opening_balance, statement.opening_date) == (D("10000.00"),
                                                                   dt.date(2009, 10, 29))
    assert (statement.closing_balance, statement.closing_date) == (D("23644.83"),
                                                                   dt.date(2009, 10, 29))
    assert statement.available_balances == ((dt.date(2009, 10, 29), D("33644.83")),)
    assert len(statement.entries) == 10
    assert sum((e.amount for e in statement.entries), D(0)) == D("13644.83")
    assert statement_arithmetic(statement) == []
    first, later = statement.entries[0], statement.entries[6]
    assert (first.amount, first.bank_reference, first.reference) == (
        D("-1000.12"), "091029ACCTSTMTARCH01", "CustRefForSalaBatch")
    assert (later.amount, later.booking_date, later.value_date, later.description) == (
        D("2120.00"), dt.date(2009, 10, 29), dt.date(2009, 10, 30), "INVOICE US20291092")
    assert statement.extra["balance.PRCD"] == "2009-10-28 10000.00"
    assert statement.extra["servicer_bic"] == "ESSEFIHX"
    amounts_are_decimal(statements)


def test_the_oca_camt053_does_not_add_up_and_marks_its_reversals() -> None:
    name = "camt.053.001.02_OCA_test-camt053"
    statements, problems = camt(f"{name}.xml")
    assert problems == []
    [statement] = statements
    [problem] = statement_arithmetic(statement)
    assert (problem.rule, problem.source, problem.line) == (
        Rule.STATEMENT_DOES_NOT_ADD_UP, f"{name}.xml", 7)
    assert problem.detail.endswith("opening 15568.27 + entries -12.99 = 15555.28, but the "
                                   "closing balance is 15121.12")
    assert [(e.amount, e.reversal) for e in statement.entries] == [
        (D("-754.25"), False), (D("-664.05"), True), (D("1405.31"), False)]
    assert statement.extra["entry.2.return_reason"] == "AC06"
    assert statement.entries[1].reference == "2018/125-20141229-NORM"  # the batch: 2 debits
    # against the OCA importer's own parse (which splits the batch into its two transactions)
    currency, account, [wanted] = json.loads(
        iso("samples", f"{name}.expected_parse.json").read_text(encoding="utf-8"),
        parse_float=Decimal)
    assert (statement.currency, statement.account) == (currency, account)
    assert (statement.statement_id, statement.closing_date.isoformat()) == (wanted["name"],
                                                                          wanted["date"])
    assert (statement.opening_balance, statement.closing_balance) == (
        wanted["balance_start"], wanted["balance_end_real"])
    theirs = [t["amount"] for t in wanted["transactions"]]
    assert [e.amount for e in statement.entries] == [theirs[0], theirs[1] + theirs[2], theirs[3]]
    assert [statement.entries[i].reference for i in (0, 2)] == [
        wanted["transactions"][0]["ref"], wanted["transactions"][3]["ref"]]


def test_postfinance_closing_balance_is_by_value_date() -> None:
    """CLBD 215112.21 leaves out the 1537.00 credit booked on 2020-11-24 for value 2020-11-25;
    the forward available balance of 2020-11-25 has it."""
    statements, problems = camt("camt.053.001.04_PostFinance_CH_sample.xml")
    assert problems == []
    [statement] = statements
    assert statement.available_balances == ((dt.date(2020, 11, 24), D("215112.21")),
                                            (dt.date(2020, 11, 25), D("216649.21")))
    assert sum((e.amount for e in statement.entries), D(0)) == D("4656.02")
    later = [e for e in statement.entries if e.value_date > statement.closing_date]
    assert [(e.amount, e.booking_date, e.value_date) for e in later] == [
        (D("1537.00"), dt.date(2020, 11, 24), dt.date(2020, 11, 25))]
    assert statement.opening_balance + D("4656.02") == statement.available_balances[1][1]
    assert statement_arithmetic(statement) == []
    # the booking-date convention adds up too; a closing balance neither explains does not
    by_booking = dataclasses.replace(statement, closing_balance=D("216649.21"))
    assert statement_arithmetic(by_booking) == []
    wrong = dataclasses.replace(statement, closing_balance=D("215112.20"))
    [problem] = statement_arithmetic(wrong)
    assert problem.detail.endswith(
        "opening 211993.19 + entries 4656.02 = 216649.21, but the closing balance is "
        "215112.20 (without the 1 entries value-dated after 2020-11-24: 215112.21)")


def test_the_prowide_camt053_with_its_app_header_reads() -> None:
    name = "camt.053.001.07_prowide_test.xml"
    data = iso("samples", name).read_bytes()
    statements, problems = read_camt053(data, name, xsd("camt.053.001.07"))
    assert problems == []
    [statement] = statements
    assert (statement.statement_id, statement.account, statement.currency) == (
        "SDFSDF", "2345234534", "USD")
    assert (statement.opening_balance, statement.opening_date, statement.closing_balance,
            statement.closing_date) == (D("234299"), dt.date(2018, 4, 19), D("234299"),
                                        dt.date(2018, 4, 19))
    assert statement.entries == () and statement.available_balances == ()
    assert statement.extra == {
        "message_id": "SDFSDF", "servicer_bic": "MLCOUS33XXX", "line": "30",
        "opening_balance_type": "ITBD", "closing_balance_type": "ITBD",
        "balance.OPAV": "2018-04-10 234234"}
    assert statement_arithmetic(statement) == []


def camt_document(version: str, statements: str, header: str = "") -> bytes:
    namespace = f"urn:iso:std:iso:20022:tech:xsd:camt.053.{version}"
    document = (f'<Document xmlns="{namespace}"><BkToCstmrStmt><GrpHdr><MsgId>ZAP-MSG-1</MsgId>'
                f"<CreDtTm>2025-03-14T18:00:00</CreDtTm></GrpHdr>{statements}"
                "</BkToCstmrStmt></Document>")
    body = f"<message>{header}{document}</message>" if header else document
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.replace("><", ">\n<").encode()


def camt_balance(code: str, amount: str, day: str, credit: str = "CRDT") -> str:
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"PLN\">{amount}</Amt>"
            f"<CdtDbtInd>{credit}</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")


def camt_entry(amount: str, credit: str, status: str, *, reversal: bool = False,
               refs: str = "", booked: str = "<Dt>2025-03-14</Dt>") -> str:
    return (f'<Ntry><Amt Ccy="PLN">{amount}</Amt><CdtDbtInd>{credit}</CdtDbtInd>'
            + ("<RvslInd>true</RvslInd>" if reversal else "")
            + f"<Sts>{status}</Sts><BookgDt>{booked}</BookgDt>"
            "<ValDt><DtTm>2025-03-15T10:00:00+01:00</DtTm></ValDt><AcctSvcrRef>SVC-1</AcctSvcrRef>"
            "<BkTxCd><Prtry><Cd>ZAP</Cd></Prtry></BkTxCd>"
            + (f"<NtryDtls><TxDtls><Refs>{refs}</Refs></TxDtls></NtryDtls>" if refs else "")
            + "</Ntry>")


def camt_statement(statement_id: str, balances: str, entries: str = "") -> str:
    return (f"<Stmt><Id>{statement_id}</Id><CreDtTm>2025-03-14T18:00:00</CreDtTm><Acct><Id>"
            f"<IBAN>PL61109010140000071219812874</IBAN></Id><Ccy>PLN</Ccy></Acct>{balances}"
            f"{entries}</Stmt>")


BALANCES = (camt_balance("OPBD", "100.00", "2025-03-14")
            + camt_balance("CLBD", "70.00", "2025-03-14"))


def test_a_camt053_001_08_with_status_codes_and_unbooked_entries() -> None:
    entries = (camt_entry("50.00", "DBIT", "<Cd>BOOK</Cd>",
                          refs="<InstrId>ZAP-1</InstrId><EndToEndId>NOTPROVIDED</EndToEndId>")
               + camt_entry("20.00", "CRDT", "<Cd>BOOK</Cd>", reversal=True,
                            booked="<DtTm>2025-03-14T23:30:00Z</DtTm>")
               + camt_entry("999.00", "CRDT", "<Cd>PDNG</Cd>"))
    data = camt_document("001.08", camt_statement("ZAP-S-1", BALANCES, entries))
    statements, problems = read_camt053(data, "v08.xml", xsd("camt.053.001.08"))
    assert problems == []
    [statement] = statements
    assert [(e.amount, e.reversal, e.booking_date, e.value_date, e.reference, e.line)
            for e in statement.entries] == [
        (D("-50.00"), False, dt.date(2025, 3, 14), dt.date(2025, 3, 15), "ZAP-1",
         line_of(data, b"<Ntry>")),
        # no reference of ours: the bank's own (AcctSvcrRef) is its bank_reference
        (D("20.00"), True, dt.date(2025, 3, 14), dt.date(2025, 3, 15), "",
         line_of(data, b"<Ntry>", 2))]
    assert statement.extra["unbooked_entries"] == "1"
    assert statement.extra["unbooked.1"].startswith(
        f"line {line_of(data, b'<Ntry>', 3)}: PDNG 999.00 PLN booked 2025-03-14 value 2025-03-15")
    assert statement_arithmetic(statement) == []


def test_camt053_bad_statements_are_located_and_the_others_read() -> None:
    no_closing = camt_statement("ZAP-S-2", camt_balance("OPBD", "1.00", "2025-03-14"))
    bad_date = camt_statement("ZAP-S-3", BALANCES.replace("2025-03-14</Dt></Dt></Bal><Bal>",
                                                          "2025-13-14</Dt></Dt></Bal><Bal>"))
    good = camt_statement("ZAP-S-4", BALANCES, camt_entry("30.00", "DBIT", "BOOK"))
    data = camt_document("001.02", no_closing + bad_date + good)
    statements, problems = read_camt053(data, "mixed.xml")
    assert [s.statement_id for s in statements] == ["ZAP-S-4"]
    assert where(problems) == [(Rule.MISSING_REQUIRED_VALUE, line_of(data, b"<Stmt>")),
                               (Rule.INVALID_DATE, line_of(data, b"2025-13-14"))]
    assert "ZAP-S-2: no closing booked balance" in problems[0].detail


def test_malformed_xml_and_a_wrong_namespace_do_not_stop_the_next_document() -> None:
    good = camt_document("001.02", camt_statement("ZAP-S-5", BALANCES))
    other = good.replace(b"camt.053.001.02", b"camt.052.001.02")
    malformed = good.replace(b"</Stmt>", b"</Stmnt>")
    data = malformed + other + good
    lines = malformed.count(b"\n")
    statements, problems = read_camt053(data, "three.xml")
    assert [s.statement_id for s in statements] == ["ZAP-S-5"]
    assert where(problems) == [(Rule.XML_MALFORMED, line_of(data, b"</Stmnt>")),
                               (Rule.UNSUPPORTED_MESSAGE_TYPE, lines + 2)]
    assert "camt.052.001.02 is not camt.053" in problems[1].detail
    assert statements[0].extra["line"] == str(line_of(data, b"<Stmt>", 3))
    assert read_camt053(b"", "empty.xml") == ([], [Problem(Rule.XML_MALFORMED,
                                                           "the file holds no XML",
                                                           "empty.xml", None)])


def test_camt053_schema_invalid_is_not_read() -> None:
    data = camt_document("001.02", camt_statement("ZAP-S-6", BALANCES).replace(
        "<Ccy>PLN</Ccy>", "<Ccy>PLN</Ccy><Bogus/>"))
    statements, problems = read_camt053(data, "invalid.xml", xsd("camt.053.001.02"))
    assert statements == [] and where(problems) == [(Rule.XML_SCHEMA_INVALID,
                                                     line_of(data, b"<Bogus/>"))]


@pytest.mark.parametrize("declaration", [b'SYSTEM "file:///etc/hostname"', b'"EXPANDED"'])
def test_entities_are_never_expanded(declaration: bytes) -> None:
    entity = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY e ' + declaration + b'>]>\n'
              + camt_document("001.02", camt_statement("&e;", BALANCES)).split(b"\n", 1)[1])
    statements, problems = read_camt053(entity, "entity.xml")
    assert statements == []
    assert where(problems) == [(Rule.MISSING_REQUIRED_VALUE, line_of(entity, b"<Stmt>"))]
    assert "Id is missing" in problems[0].detail


# --- semt.002 ------------------------------------------------------------------------------------


def test_the_prowide_semt002_gives_139_lines_and_an_invalid_isin_for_each_xx() -> None:
    """132 ISINs are XX0000000001…132 (no country XX); seven are well-formed ISINs (two real
    French ones and five FO… that pass ISO 6166, the Faroe Islands' code and the check
    digit): those give no problem."""
    name = "semt.002.001.11_prowide_test_Jira3251.xml"
    statements, problems = read_semt002(iso("samples", name).read_bytes(), name,
                                        xsd("semt.002.001.11"))
    [statement] = statements
    assert (statement.statement_id, statement.statement_date, statement.sender) == (
        "TESTSTMT0001", dt.date(2026, 1, 1), "CCCCFRPPXXX")
    assert len(statement.lines) == 139
    account = "IBRCBBBBDEFFXXX000000001P0EX0000001"
    assert statement.lines[0] == HoldingLine(account, "XX0000000001", D("100"), 2)
    assert statement.lines[4] == HoldingLine(account, "XX0000000005", D("1000"), 2)  # FaceAmt
    assert statement.lines[-1].isin == "XX0000000132"
    assert sum((line.quantity for line in statement.lines), D(0)) == D(84 * 100 + 55 * 1000)
    assert [(p.rule, p.line) for p in problems] == [(Rule.INVALID_ISIN, 2)] * 132
    bad = [p.detail.split("'")[1] for p in problems]
    assert bad == [f"XX{n:010d}" for n in range(1, 133)]
    assert [line.isin for line in statement.lines if line.isin not in bad] == [
        "FR0011042753", "FR0011036268", "FOR000972282", "FOR000919994", "FOR000972290",
        "FOR000125E16", "FOR000927807"]
    amounts_are_decimal(statements)


def semt_v02(holdings: str, sub: str = "") -> bytes:
    namespace = "urn:iso:std:iso:20022:tech:xsd:semt.002.001.02"
    return (f'<Document xmlns="{namespace}"><CtdyStmtOfHldgsV02><MsgId><Id>ZAP-M-1</Id>'
            "<CreDtTm>2025-03-14T18:00:00</CreDtTm></MsgId><MsgPgntn><PgNb>1</PgNb>"
            "<LastPgInd>true</LastPgInd></MsgPgntn><StmtGnlDtls><Ref>ZAP-HLD-1</Ref>"
            "<StmtDtTm><Dt>2025-03-14</Dt></StmtDtTm><Frqcy><FrqcyAsCd>DAIL</FrqcyAsCd></Frqcy>"
            "<UpdTp><StmtUpdTpAsCd>COMP</StmtUpdTpAsCd></UpdTp><ActvtyInd>true</ActvtyInd>"
            "<StmtBsis><StmtBsisAsCd>SETT</StmtBsisAsCd></StmtBsis></StmtGnlDtls>"
            "<AcctDtls><Id><SmplId><Prtry><Id>SAFE-1</Id></Prtry></SmplId></Id>"
            f"<FngbInd>false</FngbInd></AcctDtls>{holdings}{sub}"
            "</CtdyStmtOfHldgsV02></Document>").replace("><", ">\n<").encode()


def v02_balance(isin: str, quantity: str) -> str:
    return (f"<BalForAcct><AggtQty><Qty><Unit>{quantity}</Unit></Qty></AggtQty>"
            f"<FinInstrmDtls><Id><ISIN>{isin}</ISIN></Id></FinInstrmDtls></BalForAcct>")


def test_semt002_001_02_with_a_sub_account() -> None:
    sub = ("<SubAcctDtls><Id><SmplId><Prtry><Id>SAFE-1-SUB</Id></Prtry></SmplId></Id>"
           "<FngbInd>false</FngbInd><ActvtyInd>true</ActvtyInd>"
           + v02_balance("US0378331005", "7.5").replace("BalForAcct", "BalForSubAcct")
           + "</SubAcctDtls>")
    data = semt_v02(v02_balance("PLPKO0000016", "1500") + v02_balance("PLPKO0000017", "1"), sub)
    statements, problems = read_semt002(data, "v02.xml", xsd("semt.002.001.02"))
    [statement] = statements
    assert (statement.statement_id, statement.statement_date) == ("ZAP-HLD-1",
                                                                  dt.date(2025, 3, 14))
    assert [(line.safekeeping_account, line.isin, line.quantity, line.line)
            for line in statement.lines] == [
        ("SAFE-1", "PLPKO0000016", D("1500"), line_of(data, b"<BalForAcct>")),
        ("SAFE-1", "PLPKO0000017", D("1"), line_of(data, b"<BalForAcct>", 2)),
        ("SAFE-1-SUB", "US0378331005", D("7.5"), line_of(data, b"<BalForSubAcct>"))]
    # PLPKO0000017: a wrong check digit
    assert where(problems) == [(Rule.INVALID_ISIN, line_of(data, b"PLPKO0000017"))]


def semt_002_11(balances: str) -> bytes:
    namespace = "urn:iso:std:iso:20022:tech:xsd:semt.002.002.11"
    return (f'<Document xmlns="{namespace}"><SctiesBalCtdyRpt><Pgntn><PgNb>1</PgNb>'
            "<LastPgInd>true</LastPgInd></Pgntn><StmtGnlDtls><StmtId>ZAP-HLD-2</StmtId>"
            "<StmtDtTm><DtTm>2025-03-14T18:00:00Z</DtTm></StmtDtTm><Frqcy><Cd>DAIL</Cd>"
            "</Frqcy><UpdTp><Cd>COMP</Cd></UpdTp><StmtBsis><Cd>SETT</Cd></StmtBsis>"
            "<ActvtyInd>true</ActvtyInd><SubAcctInd>false</SubAcctInd></StmtGnlDtls>"
            f"<SfkpgAcct><Id>SAFE-2</Id></SfkpgAcct>{balances}</SctiesBalCtdyRpt></Document>"
            ).replace("><", ">\n<").encode()


def v11_balance(identification: str, quantity: str, side: str = "LONG") -> str:
    return (f"<BalForAcct><FinInstrmId>{identification}</FinInstrmId><AggtBal><ShrtLngInd>"
            f"{side}</ShrtLngInd><Qty><Qty><Qty>{quantity}</Qty></Qty></Qty></AggtBal>"
            "</BalForAcct>")


def test_semt002_002_11_short_other_ids_and_bad_quantities() -> None:
    balances = (v11_balance("<ISIN>US0378331005</ISIN>", "<Unit>10</Unit>", "SHOR")
                + v11_balance("<OthrId><Id>037833100</Id><Tp><Cd>CUSP</Cd></Tp></OthrId>",
                              "<FaceAmt>2500.50</FaceAmt>")
                + v11_balance("<ISIN>PLPKO0000016</ISIN>", "<Unit>1e3</Unit>"))
    data = semt_002_11(balances)
    statements, problems = read_semt002(data, "v211.xml")
    [statement] = statements
    assert (statement.statement_id, statement.statement_date) == ("ZAP-HLD-2",
                                                                  dt.date(2025, 3, 14))
    assert [(line.isin, line.quantity) for line in statement.lines] == [
        ("US0378331005", D("-10")), ("037833100", D("2500.50"))]
    assert where(problems) == [(Rule.INVALID_ISIN, line_of(data, b"<FinInstrmId>", 2)),
                               (Rule.INVALID_NUMBER, line_of(data, b"1e3"))]
    assert "CUSP '037833100'" in problems[0].detail
    # the shape of the test document is the standard's (1e3 aside, which it refuses)
    valid = semt_002_11(balances.replace("1e3", "1000"))
    assert read_semt002(valid, "v211.xml", xsd("semt.002.002.11"))[1][1:] == []


# --- MT535 -------------------------------------------------------------------------------------


def mt535(isin_field: str) -> str:
    return ("{1:F01CUSTPLPWAXXX0000000000}{2:O5351200250314KDPWPLPWAXXX00000000002503141200N}"
            "{4:\n:16R:GENL\n:28E:1/ONLY\n:20C::SEME//ZAP-535-1\n:23G:NEWM\n"
            ":98A::STAT//20250314\n:22F::SFRE//DAIL\n:22F::CODE//COMP\n:22F::STTY//CUST\n"
            ":22F::STBA//SETT\n:97A::SAFE//SAFE-3\n:17B::ACTI//Y\n:17B::CONS//N\n:16S:GENL\n"
            f":16R:SUBSAFE\n:16R:FIN\n{isin_field}\n:93B::AGGR//UNIT/1500,\n:16S:FIN\n"
            ":16R:FIN\n:35B:ISIN PLPKO0000017\n:93B::AGGR//UNIT/N2,5\n:16S:FIN\n"
            ":16S:SUBSAFE\n-}\n")


def test_mt535_holdings_become_statements() -> None:
    statements, problems = read_mt535(mt535(":35B:ISIN PLPKO0000016"), "holdings.fin")
    assert statements == [HoldingsStatement(
        source="holdings.fin", statement_id="ZAP-535-1", statement_date=dt.date(2025, 3, 14),
        lines=(HoldingLine("SAFE-3", "PLPKO0000016", D("1500"), 1),
               HoldingLine("SAFE-3", "PLPKO0000017", D("-2.5"), 1)),
        sender="KDPWPLPW")]
    assert where(problems) == [(Rule.INVALID_ISIN, 1)]
    assert "PLPKO0000017" in problems[0].detail


def test_mt535_samples_that_swift_mt_reads_give_holdings() -> None:
    results = {}
    for path in sorted(shared_path("standards", "swift", "mt5xx").glob("MT535_*.fin")):
        results[path.name] = read_mt535(path.read_text(encoding="utf-8"), path.name)
    statements, problems = results.pop("MT535_06.fin")
    assert statements == [HoldingsStatement(
        "MT535_06.fin", "ICF0000000000002", dt.date(2006, 9, 13),
        (HoldingLine("F275", "/US/000000000", D("35732656"), 1),), "XXXXXXX0")]
    assert where(problems) == [(Rule.INVALID_ISIN, 1)]  # a CUSIP, no ISIN: kept as given
    # The others are read with a warning (see swift_mt): 01 and 03 list no holdings (ACTI//Y
    # without SUBSAFE), 02 and 05 end inside an empty FIN, 04 has its trailer unclosed.
    for name in ("MT535_01.fin", "MT535_03.fin"):
        statements, problems = results.pop(name)
        assert statements == [] and where(problems) == [(Rule.MT_MISSING_SEQUENCE, 14)]
        assert problems[0].is_warning
    lines = {name: [(line.safekeeping_account, line.isin, line.quantity)
                    for statement in statements for line in statement.lines]
             for name, (statements, _) in results.items()}
    assert lines == {
        "MT535_02.fin": [("S 02500", "/US/AGGR_AVAI", D("300"))],
        "MT535_04.fin": [("F275", "/US/31392EXH8", D("35732656")), ("F275", "/US/31406RR72", D(0))],
        "MT535_05.fin": [("S 02500", "/US/AGGRAVAI", D("300"))]}
    for name, (_, problems) in results.items():
        assert [p.rule for p in problems if p.is_warning] == [Rule.MT_MALFORMED], name
        assert {p.rule for p in problems if not p.is_warning} == {Rule.INVALID_ISIN}, name


# --- positions CSV ------------------------------------------------------------------------------


def test_positions_csv_good_and_bad_rows() -> None:
    data = ("\ufeffdate,safekeeping_account,isin,quantity,note\n"
            "2025-03-14,SAFE-1,PLPKO0000016,1500,\n"
            "2025-03-14,SAFE-1,US0378331005,7.25,\n"
            "2025-03-14,SAFE-2,PLPKO0000016,10,\n"
            "2025-03-15,SAFE-1,PLPKO0000016,1400,\n"
            "2025-02-30,SAFE-1,PLPKO0000016,1,\n"
            "2025-03-14,SAFE-1,PLPKO0000016,\"1,5\",\n"
            "2025-03-14,SAFE-1,PLPKO0000017,3,\n"
            "2025-03-14,,PLPKO0000016,3,\n"
            "2025-03-14,SAFE-1,PLPKO0000016,3,,extra\n"
            "\n").encode()
    statements, problems = read_positions_csv(data, "positions.csv")
    assert [(s.statement_date, [(line.safekeeping_account, line.isin, line.quantity, line.line)
                                for line in s.lines]) for s in statements] == [
        (dt.date(2025, 3, 14), [("SAFE-1", "PLPKO0000016", D("1500"), 2),
                                ("SAFE-1", "US0378331005", D("7.25"), 3),
                                ("SAFE-1", "PLPKO0000017", D("3"), 8)]),
        (dt.date(2025, 3, 14), [("SAFE-2", "PLPKO0000016", D("10"), 4)]),
        (dt.date(2025, 3, 15), [("SAFE-1", "PLPKO0000016", D("1400"), 5)])]
    assert all(s.source == "positions.csv" and s.statement_id == "" for s in statements)
    assert where(problems) == [(Rule.INVALID_DATE, 6), (Rule.INVALID_NUMBER, 7),
                               (Rule.INVALID_ISIN, 8), (Rule.MISSING_REQUIRED_VALUE, 9),
                               (Rule.WRONG_FIELD_COUNT, 10)]
    amounts_are_decimal(statements)


def test_positions_csv_without_its_columns_or_utf8() -> None:
    assert read_positions_csv(b"date,account,isin,quantity\n2025-03-14,A,PLPKO0000016,1\n",
                              "p.csv") == ([], [Problem(
        Rule.MISSING_REQUIRED_COLUMN, "header lacks safekeeping_account (expected "
        "date,safekeeping_account,isin,quantity)", "p.csv", 1)])
    assert where(read_positions_csv(b"", "p.csv")[1]) == [(Rule.MISSING_REQUIRED_COLUMN, 1)]
    bad = b"date,safekeeping_account,isin,quantity\n2025-03-14,\xff,PLPKO0000016,1\n"
    assert where(read_positions_csv(bad, "p.csv")[1]) == [(Rule.UNREADABLE_FILE, 2)]


# --- arithmetic and the file sniffer ------------------------------------------------------------


def test_arithmetic_refuses_entries_in_another_currency() -> None:
    statement, = read_mt940(GOOD_MT940, "good.sta")[0]
    mixed = dataclasses.replace(statement, entries=(
        dataclasses.replace(statement.entries[0], currency="EUR"), statement.entries[1]))
    [problem] = statement_arithmetic(mixed)
    assert (problem.rule, problem.line) == (Rule.CURRENCY_MISMATCH, 1)
    assert "-250.50 EUR (line 5)" in problem.detail


@pytest.mark.parametrize(("parts", "kind", "count"), [
    (("iso20022", "samples", "camt.053.001.02_FFFS_Finland_sample.xml"), CashStatement, 1),
    (("iso20022", "samples", "camt.053.001.07_prowide_test.xml"), CashStatement, 1),
    (("iso20022", "samples", "semt.002.001.11_prowide_test_Jira3251.xml"), HoldingsStatement, 1),
    (("swift", "mt940", "cmxl", "mt940.sta"), CashStatement, 3),
    (("swift", "mt940", "self-provided", "raiffeisen-cmi.sta"), CashStatement, 1),  # cp852
    (("swift", "mt5xx", "MT535_06.fin"), HoldingsStatement, 1),
])
def test_read_statement_file_sniffs_the_format(parts: tuple[str, ...], kind: type,
                                               count: int) -> None:
    statements, problems = read_statement_file(shared_path("standards", *parts),
                                               iso("xsd"))
    assert len(statements) == count and all(isinstance(s, kind) for s in statements)
    assert all(p.rule in (Rule.INVALID_ISIN, Rule.DATES_OUT_OF_ORDER,
                          Rule.STATEMENT_DOES_NOT_ADD_UP) for p in problems)
    amounts_are_decimal(statements)


def test_read_statement_file_checks_arithmetic_schemas_and_csv(tmp_path: Path) -> None:
    statements, problems = read_statement_file(
        iso("samples", "camt.053.001.02_OCA_test-camt053.xml"))
    assert where(problems) == [(Rule.STATEMENT_DOES_NOT_ADD_UP, 7)]
    statements, problems = read_statement_file(
        iso("samples", "camt.053.001.04_PostFinance_CH_sample.xml"), tmp_path)
    assert len(statements) == 1
    assert where(problems) == [(Rule.MISSING_REQUIRED_FILE, None)]
    positions = tmp_path / "positions.csv"
    positions.write_text("date,safekeeping_account,isin,quantity\n2025-03-14,S,PLPKO0000016,5\n")
    statements, problems = read_statement_file(positions)
    assert problems == [] and statements[0].lines == (HoldingLine("S", "PLPKO0000016", D(5), 2),)
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    assert where(read_statement_file(other)[1]) == [(Rule.UNSUPPORTED_MESSAGE_TYPE, 1)]
    header = iso("samples", "semt.002.001.11_prowide_test_Jira3251.apphdr_head.001.001.04.xml")
    assert where(read_statement_file(header)[1]) == [(Rule.UNSUPPORTED_MESSAGE_TYPE, 2)]
    assert where(read_statement_file(tmp_path / "missing.xml")[1]) == [
        (Rule.UNREADABLE_FILE, None)]
