"""Reconciliation end to end, through the command line, on SQLite and on PostgreSQL.

Each test writes a small book of its own (no ssis.csv unless it says so: its trades settle at
end of day on their settlement date, so after ``eod`` our settled positions at KDPW and our
cash on ``bank:<CCY>`` are exactly what the trades and deposits say), then hands it statements
written here or taken from ``shared/standards``: positions CSV, MT535, semt.002 for holdings,
camt.053 and MT940 for cash. What is checked is what an operator sees: the lines printed, the
exit statuses, ``report breaks`` and ``report rejected``; and, where the brief is "audited",
the append-only tables themselves, read with SQL.

Dates: November 2026. Monday 2nd the trades (XWAR and XETR settle T+2: Wednesday 4th);
Friday 6th, Monday 9th, Tuesday 10th; Wednesday 11th is Polish Independence Day (no PLN
payment day, no XWAR session; TARGET2 is open), Thursday 12th.

The book (every figure below follows from it):

    cash   M1 C01 PLN +100,000.00 value 11-02      M2 C01 EUR +1,000.00 value 11-02
           M3 H01 EUR   +2,500.50 value 11-03      M4 C01 EUR   +300.00 value 11-05
    trades T1 C01 BUY 100 PKO at 50.00 PLN  → bank:PLN −5,000.00 on 11-04
           T2 C01 BUY  30 PZU at 40.00 PLN  → bank:PLN −1,200.00 on 11-04
           T3 C01 BUY   2 SAP at 200.00 EUR → bank:EUR   −400.00 on 11-04
    so at depository:KDPW from 11-04: PKO 100, PZU 30.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import stdnum.isin
from lxml import etree
from sqlalchemy.exc import DBAPIError

from conftest import Done, run_cli, shared_path, zaplecze_in_process
from zaplecze.store.db import open_engine

PKO, PZU, CDR, SAP = "PLPKO0000016", "PLPZU0000011", "PLOPTTC00011", "DE0007164600"
SAFE = "ZAP-001"  # our safekeeping account at KDPW
EUR_IBAN = "DE89370400440532013000"
PLN_IBAN = "PL61109010140000071219812874"
TRADE_DAY, SETTLED, FRI, MON, TUE, THU = (
    "2026-11-02", "2026-11-04", "2026-11-06", "2026-11-09", "2026-11-10", "2026-11-12")

INSTRUMENTS = """isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale
PLPKO0000016,PKO,PKO Bank Polski S.A.,EQUITY,PLN,XWAR,,
PLPZU0000011,PZU,PZU S.A.,EQUITY,PLN,XWAR,,
PLOPTTC00011,CDR,CD Projekt S.A.,EQUITY,PLN,XWAR,,
DE0007164600,SAP,SAP SE,EQUITY,EUR,XETR,,
"""
ACCOUNTS = """account,name,kind,base_currency,tax_residence,lot_method
C01,Anna Kowalska,CLIENT,PLN,PL,FIFO
H01,House proprietary book,HOUSE,PLN,PL,FIFO
"""
CASH = """movement_id,account,date,currency,amount,kind,description
M1,C01,2026-11-02,PLN,100000.00,DEPOSIT,
M2,C01,2026-11-02,EUR,1000.00,DEPOSIT,
M3,H01,2026-11-03,EUR,2500.50,DEPOSIT,
M4,C01,2026-11-05,EUR,300.00,DEPOSIT,
"""
TRADES = """trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,\
counterparty,commission,settlement_date
T1,NEW,C01,PLPKO0000016,BUY,100,50.00,PLN,2026-11-02,XWAR,BRK1,0,
T2,NEW,C01,PLPZU0000011,BUY,30,40.00,PLN,2026-11-02,XWAR,BRK1,0,
T3,NEW,C01,DE0007164600,BUY,2,200.00,EUR,2026-11-02,XETR,BRK1,0,
"""
SSI_HEADER = ("counterparty,market,currency,place_of_settlement,counterparty_bic,"
              "counterparty_account,safekeeping_account,payment,netting")
# A counterparty no trade here names: the row only tells where ZAP-001 is (KDPW).
UNUSED_SSI = f"OTHERBRK,XWAR,PLN,KDPWPLPWXXX,BPKOPLPWXXX,PL-0042,{SAFE},DVP,GROSS"


@dataclass
class Book:
    url: str
    folder: Path  # where this test's statements go

    def run(self, *args: str, check: bool = False) -> Done:
        return zaplecze_in_process(self.url, *args, check=check)

    def rows(self, name: str, *options: str) -> list[dict[str, Any]]:
        done = self.run("report", name, *options, "--format", "json", check=True)
        return list(json.loads(done.stdout))

    def breaks(self, as_of: str) -> dict[str, dict[str, Any]]:
        """`report breaks --as-of` by subject."""
        found = {row["subject"]: row for row in self.rows("breaks", "--as-of", as_of)}
        assert len(found) == len(self.rows("breaks", "--as-of", as_of))
        return found

    def write(self, name: str, text: str) -> Path:
        path = self.folder / "inbox" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def recon(self, kind: str, path: Path, day: str, *options: str, by: str = "carol") -> Done:
        return self.run("recon", kind, str(path), "--by", by, "--date", day, *options)

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        engine = open_engine(self.url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.exec_driver_sql(query)]
        finally:
            engine.dispose()


def open_book(url: str, tmp_path: Path, *, ssis: Sequence[str] = (),
              eod_through: str = FRI) -> Book:
    folder = tmp_path / "book"
    folder.mkdir()
    for name, text in (("instruments.csv", INSTRUMENTS), ("accounts.csv", ACCOUNTS),
                       ("cash.csv", CASH), ("trades.csv", TRADES)):
        (folder / name).write_text(text, encoding="utf-8")
    if ssis:
        (folder / "ssis.csv").write_text("\n".join((SSI_HEADER, *ssis)) + "\n")
    book = Book(url, tmp_path)
    book.run("init", check=True)
    book.run("load", str(folder), check=True)
    book.run("eod", "--through", eod_through, check=True)
    return book


def summary(done: Done) -> str:
    """The last line on standard error: `N statement(s) reconciled, …`."""
    lines = done.stderr.strip().splitlines()
    assert lines, done
    return lines[-1]


def problems(done: Done, kind: str = "problem") -> list[str]:
    """The rules of the `problem …` (or `warning …`) lines printed."""
    found = []
    for line in done.stdout.splitlines():
        if line.startswith(f"{kind} "):
            rule = re.search(r"(?<![\w.])([a-z]+(?:_[a-z0-9]+)+)(?: \(warning, read\))?: ", line)
            assert rule, line
            found.append(rule.group(1))
    return found


def positions_csv(*lines: tuple[str, str, str, str]) -> str:
    return "date,safekeeping_account,isin,quantity\n" + "".join(
        f"{day},{account},{isin},{quantity}\n" for day, account, isin, quantity in lines)


# --- camt.053.001.02 and MT940, written here ------------------------------------------------


def _camt_amount(amount: str) -> tuple[str, str]:
    return amount.lstrip("-"), ("DBIT" if amount.startswith("-") else "CRDT")


def camt_entry(amount: str, value: str, booked: str | None = None, *,
               bank_reference: str = "", end_to_end: str = "") -> str:
    figure, mark = _camt_amount(amount)
    return (f'<Ntry><Amt Ccy="EUR">{figure}</Amt><CdtDbtInd>{mark}</CdtDbtInd><Sts>BOOK</Sts>'
            f"<BookgDt><Dt>{booked or value}</Dt></BookgDt><ValDt><Dt>{value}</Dt></ValDt>"
            + (f"<AcctSvcrRef>{bank_reference}</AcctSvcrRef>" if bank_reference else "")
            + "<BkTxCd><Prtry><Cd>ZAP</Cd></Prtry></BkTxCd>"
            + (f"<NtryDtls><TxDtls><Refs><EndToEndId>{end_to_end}</EndToEndId></Refs></TxDtls>"
               "</NtryDtls>" if end_to_end else "")
            + "</Ntry>")


def camt053(statement_id: str, opening: tuple[str, str], closing: tuple[str, str],
            entries: Sequence[str]) -> str:
    """A camt.053.001.02 of our EUR account: (amount, date) of OPBD and CLBD, the entries."""
    def balance(code: str, amount: str, day: str) -> str:
        figure, mark = _camt_amount(amount)
        return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f'<Amt Ccy="EUR">{figure}</Amt><CdtDbtInd>{mark}</CdtDbtInd>'
                f"<Dt><Dt>{day}</Dt></Dt></Bal>")

    body = (f"<BkToCstmrStmt><GrpHdr><MsgId>MSG-{statement_id}</MsgId>"
            f"<CreDtTm>{closing[1]}T18:00:00</CreDtTm></GrpHdr><Stmt><Id>{statement_id}</Id>"
            f"<CreDtTm>{closing[1]}T18:00:00</CreDtTm><Acct><Id><IBAN>{EUR_IBAN}</IBAN></Id>"
            f"<Ccy>EUR</Ccy></Acct>{balance('OPBD', *opening)}{balance('CLBD', *closing)}"
            f"{''.join(entries)}</Stmt></BkToCstmrStmt>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
            + body.replace("><", ">\n<") + "</Document>\n")


def mt940(reference: str, account: str, currency: str, opening: tuple[str, str],
          closing: tuple[str, str], lines: Sequence[tuple[str, str, str]]) -> str:
    """An MT940: balances (amount, YYMMDD), entries (signed amount, value YYMMDD, :86: text);
    every entry NONREF with a bank reference of its own (//BANKn)."""
    def mark(amount: str) -> tuple[str, str]:
        return ("D" if amount.startswith("-") else "C"), amount.lstrip("-").replace(".", ",")

    text = [f":20:{reference}", f":25:{account}", ":28C:1/1"]
    side, figure = mark(opening[0])
    text.append(f":60F:{side}{opening[1]}{currency}{figure}")
    for number, (amount, value, details) in enumerate(lines, 1):
        side, figure = mark(amount)
        text += [f":61:{value}{value[2:]}{side}{figure}NTRFNONREF//BANK{number}", f":86:{details}"]
    side, figure = mark(closing[0])
    text += [f":62F:{side}{closing[1]}{currency}{figure}", "-"]
    return "\n".join(text) + "\n"


# The EUR statement of the week: M2, M3 and T3 as our books have them, one entry we know
# nothing of; M4 (value 11-05, within the week) missing. 0 + 1,000.00 + 2,500.50 − 400.00
# + 77.77 = 3,178.27.
def eur_week(bank_references: bool = False) -> str:
    def refs(n: int) -> dict[str, str]:
        return {"bank_reference": f"2611{n:02d}ESSEFIHX{n:04d}"} if bank_references else {}

    return camt053("EUR-W45", ("0.00", TRADE_DAY), ("3178.27", FRI), [
        camt_entry("1000.00", TRADE_DAY, **refs(1)), camt_entry("2500.50", "2026-11-03", **refs(2)),
        camt_entry("-400.00", SETTLED, **refs(3)), camt_entry("77.77", SETTLED, **refs(4))])


# The PLN statement of the week (MT940): M1, T1, T2 and one entry we know nothing of.
PLN_WEEK = mt940("PLN-W45", PLN_IBAN, "PLN", ("0.00", "261102"), ("93855.55", "261106"), [
    ("100000.00", "261102", "WPLATA KLIENTA"), ("-5000.00", "261104", "KDPW T1"),
    ("-1200.00", "261104", "KDPW T2"), ("55.55", "261106", "NIEZNANY PRZELEW")])

XSD_DIR = ("--xsd-dir", str(shared_path("standards", "iso20022", "xsd")))


# --- 1. positions: agree, disagree, the same file again, agree again ------------------------


def test_positions_statements_open_breaks_and_a_later_agreeing_one_resolves_them(
        book_url: str, tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    # Friday: KDPW says what we say (from 11-04: PKO 100, PZU 30). Run as an operator would.
    agree = book.write("kdpw-1106.csv", positions_csv((FRI, SAFE, PKO, "100"),
                                                      (FRI, SAFE, PZU, "30")))
    done = run_cli(book_url, "recon", "positions", str(agree), "--depository", "KDPW", "--by",
                   "carol", "--date", FRI)
    assert done.returncode == 0, done
    assert "new break" not in done.stdout and "problem" not in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "1 statement(s) reconciled, 0 received before; 2 matched, 0 new break(s), 0 seen "
        "again, 0 resolved by the statement; 0 problem(s)")
    assert book.rows("breaks", "--as-of", FRI) == []

    # Monday: 90 PKO (we say 100), no PZU (we hold 30), 5 CDR (we hold none).
    differ = book.write("kdpw-1109.csv", positions_csv((MON, SAFE, PKO, "90"),
                                                       (MON, SAFE, CDR, "5")))
    done = book.recon("positions", differ, MON, "--depository", "KDPW")
    assert done.returncode == 0, done
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 0 matched, 3 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    assert len(re.findall(r"^new break BRK-[0-9A-F]{16} ", done.stdout, re.MULTILINE)) == 3
    found = book.breaks(MON)
    columns = ("kind", "ours", "theirs", "difference", "asset", "first_seen", "last_seen",
               "age_days", "owner", "status", "resolution_reason", "comments")
    assert {subject: tuple(row[c] for c in columns) for subject, row in found.items()} == {
        f"positions {SAFE} {PKO}": ("QUANTITY", "100", "90", "10", PKO, MON, MON, "0", "",
                                    "OPEN", "", "0"),
        f"positions {SAFE} {PZU}": ("MISSING_AT_THEM", "30", "0", "30", PZU, MON, MON, "0", "",
                                    "OPEN", "", "0"),
        f"positions {SAFE} {CDR}": ("MISSING_AT_US", "0", "5", "-5", CDR, MON, MON, "0", "",
                                    "OPEN", "", "0")}
    # The same file again: received before, nothing new, nothing changed.
    done = book.recon("positions", differ, MON, "--depository", "KDPW")
    assert done.returncode == 0, done
    assert summary(done) == ("0 statement(s) reconciled, 1 received before; 0 matched, 0 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    assert done.stdout == ""
    assert book.breaks(MON) == found
    # The other formats list the same breaks.
    csv_rows = book.run("report", "breaks", "--as-of", MON, "--format", "csv",
                        check=True).stdout.strip().splitlines()
    assert csv_rows[0].split(",")[:3] == ["break_id", "kind", "subject"]
    assert sorted(line.split(",")[0] for line in csv_rows[1:]) == sorted(
        row["break_id"] for row in found.values())
    table = book.run("report", "breaks", "--as-of", MON, "--format", "table", check=True).stdout
    assert len(re.findall(r"^│ BRK-", table, re.MULTILINE)) == 3  # ids cut to the width

    # Tuesday: KDPW agrees with us again: all three are resolved by that statement.
    again = book.write("kdpw-1110.csv", positions_csv((TUE, SAFE, PKO, "100"),
                                                      (TUE, SAFE, PZU, "30")))
    done = book.recon("positions", again, TUE, "--depository", "KDPW")
    assert done.returncode == 0, done
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 2 matched, 0 new "
                             "break(s), 0 seen again, 3 resolved by the statement; 0 problem(s)")
    assert len(re.findall(r"^resolved BRK-", done.stdout, re.MULTILINE)) == 3
    after = book.breaks(TUE)
    assert set(after) == set(found)
    for subject, row in after.items():
        assert row["status"] == "RESOLVED", row
        assert row["resolution_reason"] == f"agreed by statement of {TUE}", row
        assert row["break_id"] == found[subject]["break_id"]
        assert (row["first_seen"], row["last_seen"]) == (MON, MON)
    received = book.sql("SELECT kind, statement_date, account FROM recon_statements ORDER BY id")
    assert [(kind, str(day), account) for kind, day, account in received] == [
        ("POSITIONS", day, SAFE) for day in (FRI, MON, TUE)]
    # Resolved by statements: each break was opened and auto-resolved, by the runs' operator.
    events = book.sql("SELECT what, who FROM break_events ORDER BY id")
    assert sorted(events) == [("auto-resolved", "carol")] * 3 + [("opened", "carol")] * 3
    assert book.rows("rejected") == []


def test_ssis_tell_where_a_safekeeping_account_is_and_an_unknown_one_is_refused(
        book_url: str, tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path, ssis=[UNUSED_SSI])
    # ZAP-001 is at KDPWPLPWXXX (ssis.csv): no --depository needed. ZAP-999 is nowhere.
    statement = book.write("kdpw.csv", positions_csv((FRI, SAFE, PKO, "100"),
                                                     (FRI, SAFE, PZU, "29")))
    done = book.recon("positions", statement, FRI)
    assert done.returncode == 0, done
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 1 matched, "
                                    "1 new break(s)")
    (row,) = book.rows("breaks", "--as-of", FRI)
    assert (row["subject"], row["kind"], row["ours"], row["theirs"]) == (
        f"positions {SAFE} {PZU}", "QUANTITY", "30", "29")

    unknown = book.write("elsewhere.csv", positions_csv((FRI, "ZAP-999", PKO, "100")))
    done = book.recon("positions", unknown, FRI)
    assert done.returncode == 1, done
    assert problems(done) == ["unknown_safekeeping_account"]
    assert summary(done).startswith("0 statement(s) reconciled, 0 received before")
    (kept,) = book.rows("rejected")
    assert (kept["file"], kept["reason"]) == ("elsewhere.csv", "unknown_safekeeping_account")
    assert "ZAP-999" in kept["detail"]
    # Not recorded as received: given the depository, the same file is reconciled.
    done = book.recon("positions", unknown, FRI, "--depository", "KDPW")
    assert done.returncode == 0, done
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 1 matched, "
                                    "1 new break(s)")  # PZU: ours 30, none at ZAP-999
    # A cash file is no positions statement.
    done = book.recon("positions", book.write("eur.xml", eur_week()), FRI)
    assert done.returncode == 1 and problems(done) == ["unsupported_message_type"], done


# --- 2. the break workflow ------------------------------------------------------------------


def test_the_break_workflow_is_audited_and_its_refusals_change_nothing(
        book_url: str, tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    statement = book.write("kdpw.csv", positions_csv((MON, SAFE, PKO, "90"),
                                                     (MON, SAFE, PZU, "30"),
                                                     (MON, SAFE, CDR, "5")))
    assert book.recon("positions", statement, MON, "--depository", "KDPW").returncode == 0
    found = book.breaks(MON)
    quantity = found[f"positions {SAFE} {PKO}"]["break_id"]
    other = found[f"positions {SAFE} {CDR}"]["break_id"]

    def act(*args: str, by: str) -> Done:
        return book.run("recon", "break", *args, "--by", by)

    done = act("assign", quantity, "bob", by="alice")
    assert (done.returncode, done.stdout.strip()) == (0, f"{quantity} OPEN owner=bob (2 events)")
    comment = "KDPW blocks 10 PKO in a pledge; asked the custodian"
    assert act("comment", quantity, comment, by="bob").returncode == 0
    done = act("investigate", quantity, by="bob")
    assert (done.returncode, done.stdout.strip()) == (
        0, f"{quantity} INVESTIGATING owner=bob (4 events)")
    reason = "pledged shares are left out of the KDPW statement"
    done = act("resolve", quantity, reason, by="bob")
    assert (done.returncode, done.stdout.strip()) == (0, f"{quantity} RESOLVED owner=bob "
                                                         "(5 events)")
    row = book.breaks(MON)[f"positions {SAFE} {PKO}"]
    assert (row["owner"], row["status"], row["resolution_reason"], row["comments"]) == (
        "bob", "RESOLVED", reason, "1")

    # Refusals: exit 2, the rule named, nothing written.
    before = book.sql("SELECT id FROM break_events")
    for args, rule in ((("resolve", quantity, "once more"), "break_already_resolved"),
                       (("assign", quantity, "dave"), "break_already_resolved"),
                       (("investigate", quantity), "break_already_resolved"),
                       (("resolve", other), "resolution_reason_required"),
                       (("resolve", other, "   "), "resolution_reason_required"),
                       (("comment", other, ""), "missing_required_value"),
                       (("assign", "BRK-0000000000000000", "bob"), "unknown_break")):
        done = act(*args, by="alice")
        assert done.returncode == 2, (args, done)
        assert rule in done.stderr, (args, done)
        assert done.stdout == ""
    done = run_cli(book_url, "recon", "break", "resolve", "BRK-FFFFFFFFFFFFFFFF", "no such",
                   "--by", "alice")
    assert done.returncode == 2 and "unknown_break" in done.stderr, done
    assert book.sql("SELECT id FROM break_events") == before
    assert book.breaks(MON)[f"positions {SAFE} {CDR}"]["status"] == "OPEN"
    # A comment on a resolved break is accepted (people explain after the fact).
    assert act("comment", quantity, "custodian confirmed the pledge", by="alice").returncode == 0

    # The history: one event per action, with who did it, what it was before and after.
    events = book.sql(f"SELECT who, what, before, after FROM break_events WHERE break_id = "
                      f"'{quantity}' ORDER BY id")
    assert events == [
        ("carol", "opened", "", "QUANTITY ours=100 theirs=90 difference=10"),
        ("alice", "assigned", "", "bob"),
        ("bob", "commented", "", comment),
        ("bob", "investigating", "OPEN", "INVESTIGATING"),
        ("bob", "resolved", "INVESTIGATING", f"RESOLVED: {reason}"),
        ("alice", "commented", "", "custodian confirmed the pledge")]
    assert book.sql(f"SELECT author, text FROM break_comments WHERE break_id = '{quantity}' "
                    "ORDER BY id") == [("bob", comment),
                                       ("alice", "custodian confirmed the pledge")]
    assert book.sql(f"SELECT what FROM break_events WHERE break_id = '{other}'") == [("opened",)]

    # The records are append-only: the database itself refuses to change or remove them.
    engine = open_engine(book_url)
    try:
        for statement_sql in ("UPDATE break_events SET who = 'mallory'",
                              f"UPDATE break_events SET after = 'x' WHERE break_id = '{quantity}'",
                              "DELETE FROM break_events",
                              f"DELETE FROM break_events WHERE break_id = '{other}'",
                              "UPDATE break_comments SET text = 'nothing happened'",
                              "DELETE FROM break_comments",
                              "DELETE FROM recon_statements"):
            with pytest.raises(DBAPIError), engine.begin() as connection:
                connection.exec_driver_sql(statement_sql)
    finally:
        engine.dispose()
    assert len(book.sql("SELECT id FROM break_events")) == len(before) + 1
    assert book.sql(f"SELECT who FROM break_events WHERE break_id = '{quantity}' ORDER BY id") \
        == [("carol",), ("alice",), ("bob",), ("bob",), ("bob",), ("alice",)]
    assert len(book.sql("SELECT id FROM break_comments")) == 2


# --- 3. cash ----------------------------------------------------------------------------------


def test_a_camt053_matches_our_movements_and_breaks_on_the_rest(book_url: str,
                                                               tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    statement = book.write("eur-w45.xml", eur_week())
    done = book.recon("cash", statement, FRI, *XSD_DIR)  # valid camt.053.001.02, checked
    assert done.returncode == 0, done
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 3 matched, 2 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    found = book.breaks(FRI)
    columns = ("kind", "ours", "theirs", "difference", "asset", "first_seen", "status")
    assert {subject: tuple(row[c] for c in columns) for subject, row in found.items()} == {
        f"cash {EUR_IBAN} entry {SETTLED} +77.77": ("MISSING_AT_US", "0", "77.77", "-77.77",
                                                    "EUR", FRI, "OPEN"),
        f"cash {EUR_IBAN} ref M4 ours cash:M4": ("MISSING_AT_THEM", "300.00", "0", "300.00",
                                                 "EUR", FRI, "OPEN")}
    # Again: received before.
    done = book.recon("cash", statement, FRI)
    assert summary(done).startswith("0 statement(s) reconciled, 1 received before;"), done
    # A positions file is no cash statement.
    done = book.recon("cash", book.write("p.csv", positions_csv((FRI, SAFE, PKO, "100"))), FRI)
    assert done.returncode == 1 and problems(done) == ["unsupported_message_type"], done
    assert len(book.breaks(FRI)) == 2


def test_a_mt940_of_our_pln_account_matches_by_amount_and_value_date(book_url: str,
                                                                     tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    done = book.recon("cash", book.write("pln-w45.sta", PLN_WEEK), FRI)
    assert done.returncode == 0, done
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 3 matched, 1 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    (row,) = book.rows("breaks", "--as-of", FRI)
    assert (row["kind"], row["subject"], row["ours"], row["theirs"], row["asset"]) == (
        "MISSING_AT_US", f"cash {PLN_IBAN} ref BANK4 entry {FRI} +55.55", "0", "55.55", "PLN")


def test_camt053_entries_with_the_banks_own_reference_match_by_amount_and_value_date(
        book_url: str, tmp_path: Path) -> None:
    """Every bank gives each entry its own reference (AcctSvcrRef: every entry of the Finnish
    sample has one). It is not ours to compare: the MT940 statement above, whose entries carry
    the bank's reference too (``//BANKn``), matches; so must the same camt.053."""
    book = open_book(book_url, tmp_path)
    done = book.recon("cash", book.write("eur-w45.xml", eur_week(bank_references=True)), FRI,
                      *XSD_DIR)
    assert done.returncode == 0, done
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 3 matched, "
                                    "2 new break(s)"), done
    assert sorted(row["kind"] for row in book.rows("breaks", "--as-of", FRI)) == [
        "MISSING_AT_THEM", "MISSING_AT_US"]


def test_a_later_statement_resolves_what_it_agrees_with_and_breaks_nothing_matched_before(
        book_url: str, tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path, eod_through=MON)
    assert book.recon("cash", book.write("eur-w45.xml", eur_week()), FRI).returncode == 0
    # Monday's statement: M4's 300.00, booked late with its value date of 11-05. M2, M3 and T3
    # were matched on Friday's statement: a bank lists an entry once, so Monday's has none of
    # them, and that is no break. 3,178.27 + 300.00 = 3,478.27.
    monday = camt053("EUR-1109", ("3178.27", MON), ("3478.27", MON),
                     [camt_entry("300.00", "2026-11-05", MON)])
    done = book.recon("cash", book.write("eur-1109.xml", monday), MON, *XSD_DIR)
    assert done.returncode == 0, done
    assert "new break" not in done.stdout, done.stdout
    resolved = book.breaks(MON)[f"cash {EUR_IBAN} ref M4 ours cash:M4"]
    assert (resolved["status"], resolved["resolution_reason"]) == (
        "RESOLVED", f"agreed by statement EUR-1109 of {MON}")
    assert {row["subject"]: row["status"] for row in book.rows("breaks", "--as-of", MON)} == {
        f"cash {EUR_IBAN} entry {SETTLED} +77.77": "OPEN",  # still unknown to us
        f"cash {EUR_IBAN} ref M4 ours cash:M4": "RESOLVED"}


def test_shared_bank_statements_reconcile_or_are_refused_without_crashing(
        book_url: str, tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    samples = shared_path("standards", "iso20022", "samples")
    # The Finnish sample adds up (10000.00 + 13644.83 = 23644.83); none of it is ours.
    finnish = samples / "camt.053.001.02_FFFS_Finland_sample.xml"
    done = book.recon("cash", finnish, FRI, *XSD_DIR)
    assert done.returncode == 0, done
    assert "statement_does_not_add_up" not in done.stdout
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 0 matched, 10 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    rows = [r for r in book.rows("breaks", "--as-of", FRI)
            if r["subject"].startswith("cash FI7433010001222090 ")]
    assert len(rows) == 10 and {r["kind"] for r in rows} == {"MISSING_AT_US"}
    assert sum(Decimal(r["theirs"]) for r in rows) == Decimal("13644.83")
    assert book.rows("rejected") == []

    # The OCA sample does not add up: reported, kept, exit 1.
    oca = samples / "camt.053.001.02_OCA_test-camt053.xml"
    done = book.recon("cash", oca, FRI)
    assert done.returncode == 1, done
    assert problems(done) == ["statement_does_not_add_up"]
    assert "opening 15568.27 + entries -12.99 = 15555.28, but the closing balance is " \
           "15121.12" in done.stdout
    (kept,) = book.rows("rejected")
    assert (kept["file"], kept["line"], kept["reason"]) == (oca.name, 7,
                                                            "statement_does_not_add_up")

    # MT940: mBank's PLN statement (0.40 + 3 × 0.01 = 0.43), then a file of 26 statements.
    mbank = shared_path("standards", "swift", "mt940", "mBank", "mt940.sta")
    done = book.recon("cash", mbank, FRI)
    assert done.returncode == 0, done
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 0 matched, "
                                    "3 new break(s)")
    account = "PL29114010810000267002001002"
    rows = [r for r in book.rows("breaks", "--as-of", FRI) if f" {account} " in r["subject"]]
    assert [(r["kind"], r["theirs"], r["asset"]) for r in rows] == [
        ("MISSING_AT_US", "0.01", "PLN")] * 3
    done = book.recon("cash", mbank, FRI)
    assert summary(done).startswith("0 statement(s) reconciled, 1 received before;"), done
    sepa = shared_path("standards", "swift", "mt940", "betterplace", "sepa_mt9401.sta")
    done = book.recon("cash", sepa, FRI)
    assert done.returncode == 0, done
    assert summary(done).startswith("26 statement(s) reconciled, 0 received before;")
    assert problems(done) == []
    # An MT942 is no statement: refused, kept.
    mt942 = shared_path("standards", "swift", "mt940", "mBank", "mt942.sta")
    done = book.recon("cash", mt942, FRI)
    assert done.returncode == 1 and problems(done) == ["unsupported_message_type"], done
    assert [r["reason"] for r in book.rows("rejected") if r["file"] == mt942.name] == [
        "unsupported_message_type"]


# --- 4. holdings from the shared samples ---------------------------------------------------


def test_the_prowide_semt002_keeps_its_invalid_isins_and_reports_them(book_url: str,
                                                                      tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    sample = shared_path("standards", "iso20022", "samples",
                         "semt.002.001.11_prowide_test_Jira3251.xml")
    isins = [element.text.strip() for element in
             etree.parse(str(sample)).iter("{*}ISIN")]  # one per balance, 139
    assert len(isins) == 139
    invalid = [isin for isin in isins if not stdnum.isin.is_valid(isin)]
    assert invalid  # "XX…": deliberately not ISINs
    account = "IBRCBBBBDEFFXXX000000001P0EX0000001"

    # Its safekeeping account is at no depository we know: refused, nothing recorded.
    done = book.recon("positions", sample, FRI, *XSD_DIR)
    assert done.returncode == 1, done
    assert problems(done) == ["invalid_isin"] * len(invalid) + ["unknown_safekeeping_account"]
    assert book.rows("breaks", "--as-of", FRI) == []

    done = book.recon("positions", sample, FRI, "--depository", "KDPW", *XSD_DIR)
    assert done.returncode == 1, done
    assert problems(done) == ["invalid_isin"] * len(invalid)
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 0 matched, "
                                    "139 new break(s)")
    rows = book.rows("breaks", "--as-of", FRI)
    # Every line kept, the invalid ones too: each a holding we do not have.
    assert sorted(r["asset"] for r in rows) == sorted(isins)
    assert {(r["kind"], r["ours"]) for r in rows} == {("MISSING_AT_US", "0")}
    assert {r["subject"] for r in rows} == {f"positions {account} {isin}" for isin in isins}
    assert sum(Decimal(r["theirs"]) for r in rows) == Decimal(84 * 100 + 55 * 1000)
    kept = [r for r in book.rows("rejected") if r["reason"] == "invalid_isin"]
    assert sorted(r["detail"].split("'")[1] for r in kept) == sorted(invalid)
    assert {r["file"] for r in kept} == {sample.name}


def semt002_with_a_sub_account(account: str, sub_account: str, day: str,
                               holdings: tuple[str, str], sub_holdings: tuple[str, str]) -> str:
    """A semt.002.001.02 (the shape of the standard) of ``account`` and its ``sub_account``."""
    def balance(tag: str, isin: str, quantity: str) -> str:
        return (f"<{tag}><AggtQty><Qty><Unit>{quantity}</Unit></Qty></AggtQty>"
                f"<FinInstrmDtls><Id><ISIN>{isin}</ISIN></Id></FinInstrmDtls></{tag}>")

    def identified(name: str) -> str:
        return f"<Id><SmplId><Prtry><Id>{name}</Id></Prtry></SmplId></Id>"

    return ('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:semt.002.001.02">'
            f"<CtdyStmtOfHldgsV02><MsgId><Id>ZAP-M-1</Id><CreDtTm>{day}T18:00:00</CreDtTm>"
            "</MsgId><MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn>"
            f"<StmtGnlDtls><Ref>ZAP-HLD-1</Ref><StmtDtTm><Dt>{day}</Dt></StmtDtTm>"
            "<Frqcy><FrqcyAsCd>DAIL</FrqcyAsCd></Frqcy><UpdTp><StmtUpdTpAsCd>COMP"
            "</StmtUpdTpAsCd></UpdTp><ActvtyInd>true</ActvtyInd><StmtBsis><StmtBsisAsCd>SETT"
            "</StmtBsisAsCd></StmtBsis></StmtGnlDtls>"
            f"<AcctDtls>{identified(account)}<FngbInd>false</FngbInd></AcctDtls>"
            f"{balance('BalForAcct', *holdings)}<SubAcctDtls>{identified(sub_account)}"
            "<FngbInd>false</FngbInd><ActvtyInd>true</ActvtyInd>"
            f"{balance('BalForSubAcct', *sub_holdings)}</SubAcctDtls>"
            "</CtdyStmtOfHldgsV02></Document>").replace("><", ">\n<")


def test_a_semt002_of_an_account_and_its_sub_account_with_long_ids(book_url: str,
                                                                   tmp_path: Path) -> None:
    """Safekeeping accounts are Max35Text: a statement of two of them, at their longest."""
    book = open_book(book_url, tmp_path)
    account, sub_account = "ZAP" + "1" * 32, "ZAP" + "2" * 32
    data = semt002_with_a_sub_account(account, sub_account, "2026-10-30", (PKO, "5"),
                                      (PZU, "7"))  # before our first trade: none of it ours
    done = book.recon("positions", book.write("subaccounts.xml", data), FRI, "--depository",
                      "KDPW", *XSD_DIR)
    assert done.returncode == 0, done
    assert summary(done).startswith("1 statement(s) reconciled, 0 received before; 0 matched, "
                                    "2 new break(s)")
    assert {(r["subject"], r["kind"], r["theirs"]) for r in book.rows("breaks", "--as-of", FRI)
            } == {(f"positions {account} {PKO}", "MISSING_AT_US", "5"),
                  (f"positions {sub_account} {PZU}", "MISSING_AT_US", "7")}


def mt535(safe: str, day: str, holdings: Sequence[tuple[str, str]]) -> str:
    """An MT535 from KDPW: a complete statement of ``safe`` on ``day`` (YYYYMMDD)."""
    blocks = "".join(f":16R:FIN\n:35B:ISIN {isin}\n:93B::AGGR//UNIT/{quantity},\n:16S:FIN\n"
                     for isin, quantity in holdings)
    return ("{1:F01ZAPLPLPWAXXX0000000000}{2:O5351800" + day[2:] + "KDPWPLPWAXXX0000000000"
            + day[2:] + "1800N}{4:\n:16R:GENL\n:28E:1/ONLY\n:20C::SEME//ZAP-535-" + day
            + "\n:23G:NEWM\n:98A::STAT//" + day + "\n:22F::SFRE//DAIL\n:22F::CODE//COMP\n"
            ":22F::STTY//CUST\n:22F::STBA//SETT\n:97A::SAFE//" + safe + "\n:17B::ACTI//Y\n"
            ":17B::CONS//N\n:16S:GENL\n:16R:SUBSAFE\n" + blocks + ":16S:SUBSAFE\n-}\n")


def test_mt535_statements_reconcile_and_malformed_ones_are_reported(book_url: str,
                                                                    tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    # KDPW's own MT535 for ZAP-001 agrees with us.
    ours = book.write("kdpw.fin", mt535(SAFE, "20261106", [(PKO, "100"), (PZU, "30")]))
    done = book.recon("positions", ours, FRI, "--depository", "KDPW")
    assert done.returncode == 0, done
    assert summary(done) == ("1 statement(s) reconciled, 0 received before; 2 matched, 0 new "
                             "break(s), 0 seen again, 0 resolved by the statement; 0 problem(s)")
    assert book.rows("breaks", "--as-of", FRI) == []

    samples = sorted(shared_path("standards", "swift", "mt5xx").glob("MT535_*.fin"))
    assert [p.name for p in samples] == [f"MT535_0{n}.fin" for n in range(1, 7)]
    # Flawed samples are read with a warning, kept for operators beside the problems.
    # 01 and 03 (ACTI//Y without SUBSAFE) list no holdings: nothing to reconcile, exit 0.
    # 02, 04, 05 (cut short; trailer unclosed) hold CUSIP-named securities: kept, and breaks.
    reconciled = {"MT535_01.fin": 0, "MT535_02.fin": 1, "MT535_03.fin": 0, "MT535_04.fin": 1,
                  "MT535_05.fin": 1}
    for path in samples[:5]:
        done = book.recon("positions", path, FRI, "--depository", "DTC")
        warned = problems(done, "warning")
        assert warned in (["mt_malformed"], ["mt_missing_sequence"]), (path.name, done)
        assert set(problems(done)) <= {"invalid_isin"}, done
        assert done.returncode == (1 if problems(done) else 0), done
        assert summary(done).startswith(f"{reconciled[path.name]} statement(s) reconciled")
        assert summary(done).endswith(f"{len(problems(done))} problem(s), 1 warning(s)")
        kept = [r for r in book.rows("rejected") if r["file"] == path.name]
        assert len(kept) == len(problems(done)) + 1
        assert sum(r["detail"].startswith("read, with a warning: ") for r in kept) == 1
    # MT535_06: a CUSIP-identified security, kept with its identification; not ours.
    done = book.recon("positions", samples[5], FRI, "--depository", "DTC")
    assert done.returncode == 1, done
    assert problems(done) == ["invalid_isin"]
    (row,) = [row for row in book.rows("breaks", "--as-of", FRI)
              if row["subject"] == "positions F275 /US/000000000"]
    assert (row["kind"], row["ours"], row["theirs"]) == ("MISSING_AT_US", "0", "35732656")


# --- 5. ageing --------------------------------------------------------------------------------


def test_breaks_first_seen_on_a_friday_age_in_business_days(book_url: str,
                                                            tmp_path: Path) -> None:
    book = open_book(book_url, tmp_path)
    assert book.recon("cash", book.write("pln.sta", PLN_WEEK), FRI).returncode == 0
    assert book.recon("cash", book.write("eur.xml", eur_week()), FRI).returncode == 0
    position = book.write("kdpw.csv", positions_csv((FRI, SAFE, PKO, "90"),
                                                    (FRI, SAFE, PZU, "30")))
    assert book.recon("positions", position, FRI, "--depository", "KDPW").returncode == 0
    pln = f"cash {PLN_IBAN} ref BANK4 entry {FRI} +55.55"
    eur = f"cash {EUR_IBAN} entry {SETTLED} +77.77"
    quantity = f"positions {SAFE} {PKO}"

    def ages(day: str) -> dict[str, str]:
        return {subject: row["age_days"] for subject, row in book.breaks(day).items()
                if subject in (pln, eur, quantity)}

    assert ages(FRI) == {pln: "0", eur: "0", quantity: "0"}
    assert ages("2026-11-07") == {pln: "0", eur: "0", quantity: "0"}  # Saturday
    assert ages("2026-11-08") == {pln: "0", eur: "0", quantity: "0"}  # Sunday
    assert ages(MON) == {pln: "1", eur: "1", quantity: "1"}
    assert ages(TUE) == {pln: "2", eur: "2", quantity: "2"}
    # Wednesday 11-11: no PLN payment day; TARGET2 open.
    assert ages("2026-11-11")[pln] == "2" and ages("2026-11-11")[eur] == "3"
    # (the position break across 11-11: test_a_position_break_in_a_warsaw_security_…)
    assert {k: v for k, v in ages(THU).items() if k != quantity} == {pln: "3", eur: "4"}
    assert book.rows("breaks", "--as-of", "2026-11-05") == []  # none first seen by then


def test_a_position_break_in_a_warsaw_security_ages_by_warsaw_sessions(book_url: str,
                                                                       tmp_path: Path) -> None:
    """Its asset is an ISIN of XWAR: 2026-11-11 had no session (nothing could settle at KDPW),
    as it is no PLN payment day for the cash break beside it."""
    book = open_book(book_url, tmp_path)
    position = book.write("kdpw.csv", positions_csv((FRI, SAFE, PKO, "90"),
                                                    (FRI, SAFE, PZU, "30")))
    assert book.recon("positions", position, FRI, "--depository", "KDPW").returncode == 0
    (row,) = book.rows("breaks", "--as-of", THU)
    assert row["age_days"] == "3", row  # Mon 9, Tue 10, Thu 12


def test_a_break_resolved_by_a_statement_stops_ageing_on_that_statements_day(
        book_url: str, tmp_path: Path) -> None:
    """Monday's statement opens it, Tuesday's agrees: it was open one business day, whenever
    the report is run and whatever the clock of the machine that reconciled."""
    book = open_book(book_url, tmp_path)
    differ = book.write("kdpw-1109.csv", positions_csv((MON, SAFE, PKO, "90"),
                                                       (MON, SAFE, PZU, "30")))
    assert book.recon("positions", differ, MON, "--depository", "KDPW").returncode == 0
    again = book.write("kdpw-1110.csv", positions_csv((TUE, SAFE, PKO, "100"),
                                                      (TUE, SAFE, PZU, "30")))
    assert book.recon("positions", again, TUE, "--depository", "KDPW").returncode == 0
    (row,) = book.rows("breaks", "--as-of", TUE)
    assert (row["status"], row["age_days"]) == ("RESOLVED", "1"), row
    (row,) = book.rows("breaks", "--as-of", "2026-11-20")
    assert (row["status"], row["age_days"]) == ("RESOLVED", "1"), row
