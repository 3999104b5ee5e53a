"""Bad input: one reproducer per problem code the load path can produce (book-folder.md: "a bad row
never stops the good ones and is never silently dropped").

Each case is a tiny book folder — the golden instruments and accounts, plus a file with a bad row
between good ones — loaded into a fresh book. `load` must print the bad row's file, line and rule,
exit 1, keep the row for `report rejected`, and book the good rows beside it (exactly one row is
rejected). Every case runs on SQLite; the cases whose outcome depends on what the database already
holds (duplicates, cancels, withdrawals, file-level problems) run on PostgreSQL too.
The CLI runs in this process (its own `main`), except where the process itself is the point (an
unreachable database: exit 2, a clear message, no traceback).

`test_every_rule_has_a_reproducer` fails when a member of `Rule` has no case here, is not covered
by another test file (COVERED_ELSEWHERE) and is not one the product never produces (NOT_PRODUCED,
checked against the source).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from conftest import (
    PG_ADMIN_URL,
    REQUIRE_PG,
    ROOT,
    Done,
    postgres_unavailable,
    run_cli,
    shared_path,
    zaplecze_in_process,
)
from zaplecze.kernel.problems import Rule
from zaplecze.store.db import open_engine, read_connection

NVDA, KO, PKO = "US67066G1040", "US1912161007", "PLPKO0000016"
TRADES = ("trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
          "counterparty,commission,settlement_date")
CASH = "movement_id,account,date,currency,amount,kind,description"
ACTIONS = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,currency,"
           "new_isin,cost_fraction,fraction_price")


def trade(trade_id: str, *, action: str = "NEW", account: str = "C01", isin: str = NVDA,
          side: str = "BUY", quantity: str = "10", price: str = "120.00",
          currency: str = "USD", day: str = "2024-06-03", venue: str = "",
          counterparty: str = "", commission: str = "", settlement: str = "") -> str:
    return ",".join((trade_id, action, account, isin, side, quantity, price, currency, day,
                     venue, counterparty, commission, settlement))


def cancel(trade_id: str, day: str, account: str = "C01") -> str:
    return trade(trade_id, action="CANCEL", account=account, isin="", side="", quantity="",
                 price="", currency="", day=day)


def lines(header: str, *rows: str) -> str:
    return "\n".join((header, *rows)) + "\n"


# The good rows a bad one sits between (lines 2 and 4 of their file).
G1, G2 = trade("G1"), trade("G2", isin=KO, quantity="100", price="62.00")
D1 = "D1,C01,2024-06-03,USD,1000.00,DEPOSIT,"
D2 = "D2,C02,2024-06-03,PLN,500.00,DEPOSIT,"
A1 = f"A1,CASH_DIVIDEND,{KO},2024-06-14,2024-06-14,2024-07-01,,,0.485,USD,,,"
A2 = f"A2,SPLIT,{NVDA},2024-06-10,2024-06-06,2024-06-07,1,10,,,,,"


def in_trades(bad: str) -> dict[str, str]:
    return {"trades": lines(TRADES, G1, bad, G2)}


def in_cash(bad: str) -> dict[str, str]:
    return {"cash": lines(CASH, D1, bad, D2)}


def in_actions(bad: str) -> dict[str, str]:
    return {"corporate_actions": lines(ACTIONS, A1, bad, A2)}


GOOD_TRADES = (("entries", "entry_key", "trade:G1"), ("entries", "entry_key", "trade:G2"))
GOOD_CASH = (("entries", "entry_key", "cash:D1"), ("entries", "entry_key", "cash:D2"))
GOOD_ACTIONS = (("corporate_actions", "event_id", "A1"), ("corporate_actions", "event_id", "A2"))
GOLDEN_INSTRUMENTS = shared_path("scenarios", "basic", "instruments.csv").read_text("utf-8")
GOLDEN_ACCOUNTS = shared_path("scenarios", "basic", "accounts.csv").read_text("utf-8")


@dataclass(frozen=True)
class Case:
    name: str
    rule: Rule
    file: str  # the file of the bad row
    line: int | None  # its physical line (header = 1); None: the file as a whole
    files: dict[str, str]  # besides the golden instruments.csv and accounts.csv (or instead)
    good: tuple[tuple[str, str, str], ...]  # (table, column, value) booked beside the bad row
    bad: tuple[tuple[str, str, str], ...] = ()  # (table, column, value) that must not be there
    before: dict[str, str] = field(default_factory=dict)  # a clean first load
    eod_through: str = ""  # end of day after the first load
    postgres: bool = False  # the database decides: run on PostgreSQL too

    def __str__(self) -> str:
        return self.name


CASES = [
    # --- the contract's codes ------------------------------------------------------------------
    Case("invalid isin", Rule.INVALID_ISIN, "trades.csv", 3,
         in_trades(trade("X1", isin="US0378331006")), GOOD_TRADES, postgres=True),
    Case("lower-case isin", Rule.INVALID_ISIN, "trades.csv", 3,
         in_trades(trade("X1", isin=NVDA.lower())), GOOD_TRADES),
    Case("unknown account", Rule.UNKNOWN_ACCOUNT, "trades.csv", 3,
         in_trades(trade("X1", account="C99")), GOOD_TRADES),
    Case("unknown instrument", Rule.UNKNOWN_INSTRUMENT, "trades.csv", 3,
         in_trades(trade("X1", isin="US0378331005")), GOOD_TRADES),
    Case("currency mismatch", Rule.CURRENCY_MISMATCH, "trades.csv", 3,
         in_trades(trade("X1", currency="PLN")), GOOD_TRADES),
    Case("quantity beyond the scale", Rule.QUANTITY_EXCEEDS_SCALE, "trades.csv", 3,
         in_trades(trade("X1", quantity="1.5")), GOOD_TRADES),
    Case("trade on a Saturday", Rule.NOT_A_BUSINESS_DAY, "trades.csv", 3,
         in_trades(trade("X1", day="2024-06-08")), GOOD_TRADES),
    Case("trade on a market holiday", Rule.NOT_A_BUSINESS_DAY, "trades.csv", 3,
         in_trades(trade("X1", isin=KO, day="2024-07-04")), GOOD_TRADES),
    Case("settlement on a Saturday", Rule.NOT_A_BUSINESS_DAY, "trades.csv", 3,
         in_trades(trade("X1", day="2024-06-05", settlement="2024-06-08")), GOOD_TRADES),
    Case("cash on a Sunday", Rule.NOT_A_BUSINESS_DAY, "cash.csv", 3,
         in_cash("X1,C01,2024-06-09,USD,10.00,DEPOSIT,"), GOOD_CASH),
    Case("ex date on a Saturday", Rule.NOT_A_BUSINESS_DAY, "corporate_actions.csv", 3,
         in_actions(f"X1,CASH_DIVIDEND,{KO},2024-06-15,2024-06-15,2024-07-01,,,0.1,USD,,,"),
         GOOD_ACTIONS),
    Case("settlement before the trade", Rule.SETTLEMENT_DATE_BEFORE_TRADE_DATE, "trades.csv", 3,
         in_trades(trade("X1", day="2024-06-04", settlement="2024-06-03")), GOOD_TRADES),
    Case("withdrawal beyond settled cash", Rule.INSUFFICIENT_SETTLED_CASH, "cash.csv", 3,
         in_cash("X1,C01,2024-06-04,USD,-5000.00,WITHDRAWAL,"), GOOD_CASH,
         bad=(("entries", "entry_key", "cash:X1"),), postgres=True),
    Case("cancel of a settled trade", Rule.TRADE_ALREADY_SETTLED, "trades.csv", 3,
         {"trades": lines(TRADES, G1, cancel("G1", "2024-06-04"), G2)}, GOOD_TRADES,
         bad=(("entries", "entry_key", "void:trade:G1"),), postgres=True),
    Case("cancel after the settlement was booked", Rule.TRADE_ALREADY_SETTLED, "trades.csv", 3,
         {"trades": lines(TRADES, G2, cancel("G1", "2024-06-03"))},
         (("entries", "entry_key", "post:trade:G1"), ("entries", "entry_key", "trade:G2")),
         bad=(("entries", "entry_key", "void:trade:G1"),),
         before={"trades": lines(TRADES, G1)}, eod_through="2024-06-04", postgres=True),
    Case("cancel of an unknown trade", Rule.UNKNOWN_TRADE, "trades.csv", 3,
         in_trades(cancel("T999", "2024-06-03")), GOOD_TRADES, postgres=True),
    Case("same trade id, other content", Rule.CONFLICTING_DUPLICATE_ID, "trades.csv", 3,
         in_trades(trade("G1", quantity="11")), GOOD_TRADES,
         bad=(("trades", "quantity", "11"),), postgres=True),
    Case("same trade id, other content, later load", Rule.CONFLICTING_DUPLICATE_ID,
         "trades.csv", 3, {"trades": lines(TRADES, G2, trade("G1", price="120.01"))},
         GOOD_TRADES, bad=(("trades", "price", "120.01"),),
         before={"trades": lines(TRADES, G1)}, postgres=True),
    # --- the project's own codes ---------------------------------------------------------------
    Case("no instruments.csv on the first load", Rule.MISSING_REQUIRED_FILE, "instruments.csv",
         None, {"instruments": "", "trades": lines(TRADES, G1)}, (), postgres=True),
    Case("a required column missing", Rule.MISSING_REQUIRED_COLUMN, "cash.csv", 1,
         {"cash": lines("movement_id,account,date,currency,kind", "D1,C01,2024-06-03,USD,"
                        "DEPOSIT"), "trades": lines(TRADES, G1, G2)}, GOOD_TRADES,
         postgres=True),
    Case("an empty file", Rule.MISSING_REQUIRED_COLUMN, "cash.csv", 1,
         {"cash": "", "trades": lines(TRADES, G1, G2)}, GOOD_TRADES),
    Case("a blank required value", Rule.MISSING_REQUIRED_VALUE, "trades.csv", 3,
         in_trades(trade("X1", price="")), GOOD_TRADES),
    Case("an undecodable byte", Rule.UNREADABLE_FILE, "trades.csv", 3,
         {"trades": lines(TRADES, G1, trade("X1", counterparty="BROKER\udcff"), G2)},
         GOOD_TRADES, postgres=True),
    Case("a field too many", Rule.WRONG_FIELD_COUNT, "trades.csv", 3,
         in_trades(trade("X1") + ",surplus"), GOOD_TRADES),
    Case("NaN", Rule.INVALID_NUMBER, "trades.csv", 3, in_trades(trade("X1", price="NaN")),
         GOOD_TRADES, postgres=True),
    Case("Infinity", Rule.INVALID_NUMBER, "trades.csv", 3,
         in_trades(trade("X1", price="Infinity")), GOOD_TRADES),
    Case("an exponent", Rule.INVALID_NUMBER, "trades.csv", 3,
         in_trades(trade("X1", quantity="1e3")), GOOD_TRADES),
    Case("a thousands separator", Rule.INVALID_NUMBER, "trades.csv", 3,
         in_trades(trade("X1", price='"1,000.00"')), GOOD_TRADES),
    Case("a superscript digit", Rule.INVALID_NUMBER, "trades.csv", 3,
         in_trades(trade("X1", quantity="5²")), GOOD_TRADES),
    Case("full-width digits", Rule.INVALID_NUMBER, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,１０.00,DEPOSIT,"), GOOD_CASH),
    Case("NaN in cash", Rule.INVALID_NUMBER, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,NaN,DEPOSIT,"), GOOD_CASH),
    Case("a quantity scale that is no number", Rule.INVALID_NUMBER, "instruments.csv", 8,
         {"instruments": GOLDEN_INSTRUMENTS + "US0378331005,AAPL,Apple,EQUITY,USD,XNAS,US,x\n"},
         (("instruments", "isin", NVDA),), bad=(("instruments", "isin", "US0378331005"),)),
    Case("no such day", Rule.INVALID_DATE, "trades.csv", 3,
         in_trades(trade("X1", day="2024-06-31")), GOOD_TRADES),
    Case("a day-first date", Rule.INVALID_DATE, "cash.csv", 3,
         in_cash("X1,C01,03/06/2024,USD,10.00,DEPOSIT,"), GOOD_CASH),
    Case("no such currency", Rule.INVALID_CURRENCY, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,ABC,10.00,DEPOSIT,"), GOOD_CASH),
    Case("no such country", Rule.INVALID_COUNTRY, "accounts.csv", 5,
         {"accounts": GOLDEN_ACCOUNTS + "C03,Jan Nowak,CLIENT,PLN,POL,FIFO\n"},
         (("accounts", "account", "C01"),), bad=(("accounts", "account", "C03"),)),
    Case("an unknown market", Rule.UNKNOWN_MIC, "instruments.csv", 8,
         {"instruments": GOLDEN_INSTRUMENTS + "US0378331005,AAPL,Apple,EQUITY,USD,XXXX,US,0\n"},
         (("instruments", "isin", NVDA),), bad=(("instruments", "isin", "US0378331005"),)),
    Case("an unknown calendar", Rule.UNKNOWN_MIC, "calendar_overrides.csv", 3,
         {"calendar_overrides": lines("calendar,date,closed,reason",
                                      "XWAR,2024-06-10,true,outage", "ZZZZ,2024-06-11,true,?",
                                      "USD,2024-06-12,true,outage")},
         (("calendar_overrides", "calendar", "XWAR"), ("calendar_overrides", "calendar", "USD"))),
    Case("a side that is no side", Rule.INVALID_ENUM_VALUE, "trades.csv", 3,
         in_trades(trade("X1", side="HOLD")), GOOD_TRADES),
    Case("an unknown action", Rule.INVALID_ENUM_VALUE, "trades.csv", 3,
         in_trades(trade("X1", action="AMEND")), GOOD_TRADES),
    Case("an unknown cash kind", Rule.INVALID_ENUM_VALUE, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,10.00,GIFT,"), GOOD_CASH),
    Case("an unknown instrument kind", Rule.INVALID_ENUM_VALUE, "instruments.csv", 8,
         {"instruments": GOLDEN_INSTRUMENTS + "US0378331005,AAPL,Apple,BOND,USD,XNAS,US,0\n"},
         (("instruments", "isin", NVDA),)),
    Case("a zero quantity", Rule.NON_POSITIVE_QUANTITY, "trades.csv", 3,
         in_trades(trade("X1", quantity="0")), GOOD_TRADES),
    Case("a negative quantity", Rule.NON_POSITIVE_QUANTITY, "trades.csv", 3,
         in_trades(trade("X1", quantity="-5")), GOOD_TRADES),
    Case("a zero price", Rule.NON_POSITIVE_PRICE, "trades.csv", 3,
         in_trades(trade("X1", price="0")), GOOD_TRADES),
    Case("a zero close", Rule.NON_POSITIVE_PRICE, "prices.csv", 3,
         {"prices": lines("date,isin,close,currency", f"2024-06-03,{NVDA},121.00,USD",
                          f"2024-06-03,{KO},0,USD", f"2024-06-03,{PKO},56.00,PLN")},
         (("prices", "isin", NVDA), ("prices", "isin", PKO))),
    Case("a negative commission", Rule.NEGATIVE_COMMISSION, "trades.csv", 3,
         in_trades(trade("X1", commission="-1.00")), GOOD_TRADES),
    Case("a commission below the cent", Rule.AMOUNT_EXCEEDS_SCALE, "trades.csv", 3,
         in_trades(trade("X1", commission="0.001")), GOOD_TRADES),
    Case("cash below the cent", Rule.AMOUNT_EXCEEDS_SCALE, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,10.001,DEPOSIT,"), GOOD_CASH),
    Case("a negative deposit", Rule.AMOUNT_SIGN_CONTRADICTS_KIND, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,-10.00,DEPOSIT,"), GOOD_CASH),
    Case("a zero amount", Rule.ZERO_AMOUNT, "cash.csv", 3,
         in_cash("X1,C01,2024-06-03,USD,0.00,FEE,"), GOOD_CASH),
    Case("a cancel before the trade date", Rule.CANCEL_BEFORE_TRADE_DATE, "trades.csv", 3,
         in_trades(cancel("G1", "2024-05-31")), GOOD_TRADES,
         bad=(("entries", "entry_key", "void:trade:G1"),), postgres=True),
    Case("a cancel by another account", Rule.CANCEL_ACCOUNT_MISMATCH, "trades.csv", 3,
         in_trades(cancel("G1", "2024-06-03", account="C02")), GOOD_TRADES,
         bad=(("entries", "entry_key", "void:trade:G1"),), postgres=True),
    Case("a split to nothing", Rule.INVALID_RATIO, "corporate_actions.csv", 3,
         in_actions(f"X1,SPLIT,{PKO},2024-06-10,2024-06-10,2024-06-10,1,0,,,,,"), GOOD_ACTIONS),
    Case("a withholding rate above 1", Rule.INVALID_RATE, "withholding.csv", 3,
         {"withholding": lines("issuer_country,tax_residence,rate", "PL,PL,0.19", "US,PL,1.5",
                               "US,*,0.30")},
         (("withholding_rates", "rate", "0.19"), ("withholding_rates", "rate", "0.30"))),
    Case("a negative fee rate", Rule.INVALID_RATE, "fees.csv", 3,
         {"fees": lines("mic,currency,rate_bps,minimum", "XWAR,PLN,39,5.00", "XNYS,USD,-1,5.00",
                        "XNAS,USD,15,5.00")},
         (("fee_rules", "mic", "XWAR"), ("fee_rules", "mic", "XNAS"))),
    Case("a zero exchange rate", Rule.INVALID_RATE, "fx.csv", 3,
         {"fx": lines("date,base,quote,rate", "2024-06-28,USD,PLN,4.0320",
                      "2024-06-28,EUR,PLN,0", "2024-06-28,GBP,PLN,5.0800")},
         (("fx_rates", "base", "USD"), ("fx_rates", "base", "GBP"))),
    Case("a cost fraction above 1", Rule.INVALID_RATE, "corporate_actions.csv", 3,
         in_actions(f"X1,SPINOFF,{PKO},2024-06-10,2024-06-10,2024-06-10,1,1,,,{KO},1.5,"),
         GOOD_ACTIONS),
    Case("a merger into nothing", Rule.NEW_ISIN_REQUIRED, "corporate_actions.csv", 3,
         in_actions(f"X1,MERGER,{PKO},2024-06-10,2024-06-10,2024-06-10,1,1,,,,,"), GOOD_ACTIONS),
    Case("a dividend of no amount", Rule.AMOUNT_REQUIRED, "corporate_actions.csv", 3,
         in_actions(f"X1,CASH_DIVIDEND,{PKO},2024-06-10,2024-06-10,2024-06-12,,,0,PLN,,,"),
         GOOD_ACTIONS),
    Case("a field too long", Rule.LIMIT_EXCEEDED, "trades.csv", 3,
         in_trades(trade("X1", counterparty="X" * 300)), GOOD_TRADES, postgres=True),
]

# Produced by the FIX drop-copy reader, covered by its own tests.
COVERED_ELSEWHERE = {rule: "tests/test_fix_drop_copy.py" for rule in Rule
                     if rule.value.startswith("fix_")}
# The rules of settlement, statements, reconciliation and corporate actions in operation have
# their reproducers beside the rooms that produce them.
COVERED_ELSEWHERE |= {
    Rule.INVALID_BIC: "tests/test_settlement_domain.py",
    Rule.MISSING_SSI: "tests/test_settlement_domain.py",
    Rule.DUPLICATE_SSI: "tests/test_settlement_domain.py",
    Rule.STATUS_MATCHES_NO_INSTRUCTION: "tests/test_settlement_domain.py",
    Rule.DUPLICATE_CONFIRMATION: "tests/test_settlement_domain.py",
    Rule.CONFIRMATION_EXCEEDS_INSTRUCTION: "tests/test_settlement_domain.py",
    Rule.INSTRUCTION_NOT_CANCELLABLE: "tests/test_settlement_domain.py",
    Rule.INSTRUCTION_ALREADY_HELD: "tests/test_api_read.py",
    Rule.INSTRUCTION_NOT_HELD: "tests/test_api_read.py",
    Rule.XML_MALFORMED: "tests/test_iso20022.py",
    Rule.XML_SCHEMA_INVALID: "tests/test_iso20022.py",
    Rule.UNSUPPORTED_MESSAGE_TYPE: "tests/test_iso20022.py",
    Rule.MT_MALFORMED: "tests/test_swift_mt.py",
    Rule.MT_MISSING_SEQUENCE: "tests/test_swift_mt.py",
    Rule.MT_MISSING_FIELD: "tests/test_swift_mt.py",
    Rule.MT_INVALID_CHARACTER: "tests/test_swift_mt.py",
    Rule.STATEMENT_DOES_NOT_ADD_UP: "tests/test_statements.py",
    Rule.DATES_OUT_OF_ORDER: "tests/test_statements.py",
    Rule.UNKNOWN_SAFEKEEPING_ACCOUNT: "tests/test_recon_cli.py",
    Rule.UNKNOWN_BREAK: "tests/test_reconciliation.py",
    Rule.BREAK_ALREADY_RESOLVED: "tests/test_reconciliation.py",
    Rule.RESOLUTION_REASON_REQUIRED: "tests/test_reconciliation.py",
    Rule.FOUR_EYES_REQUIRED: "tests/test_ca_lifecycle.py",
    Rule.EVENT_NOT_APPROVED: "tests/test_ca_lifecycle.py",
    Rule.EVENT_ALREADY_APPLIED: "tests/test_ca_lifecycle.py",
    Rule.EVENT_NOT_APPLIED: "tests/test_ca_lifecycle.py",
    Rule.UNSUPPORTED_EVENT_KIND: "tests/test_ca_lifecycle.py",
    Rule.UNKNOWN_EVENT: "tests/test_ca_lifecycle.py",
    Rule.AMENDMENT_AFTER_APPROVAL: "tests/test_ca_lifecycle.py",
    Rule.EVENT_ALREADY_REVERSED: "tests/test_ca_reversal.py",
    Rule.DAY_ALREADY_CLOSED: "tests/test_ca_reversal.py",
    Rule.UNKNOWN_CLAIM: "tests/test_market_claims.py",
    Rule.CLAIM_NOT_OPEN: "tests/test_market_claims.py",
}
# In the catalogue, produced nowhere (checked below): a CANCEL is keyed by the trade it cancels,
# so a second CANCEL is either the same instruction (nothing to do) or conflicting_duplicate_id.
NOT_PRODUCED = {Rule.TRADE_ALREADY_CANCELLED}


# --- running the CLI -----------------------------------------------------------------------------


zaplecze = zaplecze_in_process


REJECTED = re.compile(r"^rejected (\S+?):(\d+): ([a-z_]+): \S")


def printed_rejections(done: Done) -> list[tuple[str, int, str]]:
    found = []
    for line in done.stdout.splitlines():
        match = REJECTED.match(line)
        assert match, f"an unexpected line on standard output: {line!r}"
        found.append((match[1], int(match[2]), match[3]))
    return found


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    """The golden instruments and accounts, then ``files`` (text, or "" for: leave it out when
    it is instruments/accounts, an empty file otherwise)."""
    folder.mkdir(parents=True)
    given = {"instruments": GOLDEN_INSTRUMENTS, "accounts": GOLDEN_ACCOUNTS} | files
    for name, text in given.items():
        if text or name not in ("instruments", "accounts"):
            (folder / f"{name}.csv").write_bytes(
                text.encode("utf-8", "surrogateescape"))
    return folder


def names(checks: tuple[tuple[str, str, str], ...]) -> list[str]:
    return [f"{table}.{column}={value}" for table, column, value in checks]


def present(url: str, checks: tuple[tuple[str, str, str], ...]) -> dict[str, bool]:
    engine = open_engine(url)
    try:
        with read_connection(engine) as connection:
            mark = "%s" if url.startswith("postgresql") else "?"
            return {f"{table}.{column}={value}": bool(connection.exec_driver_sql(
                f"SELECT COUNT(*) FROM {table} WHERE {column} = {mark}", (value,)).scalar())
                for table, column, value in checks}
    finally:
        engine.dispose()


# --- fresh books ---------------------------------------------------------------------------------


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


def _wait_until_alone(name: str) -> None:
    """A template must have no session: wait for closed ones to be gone."""
    deadline = time.monotonic() + 30
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        while connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                 (name,)).fetchone()[0]:
            assert time.monotonic() < deadline, f"sessions still connected to {name}"
            time.sleep(0.05)


class EmptyBooks:
    """An initialised empty book per database, made once; each case gets a copy of it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.templates: dict[str, str] = {}
        self.copies: list[str] = []

    def fresh(self, kind: str) -> str:
        if kind not in self.templates:
            if kind == "sqlite":
                self.templates[kind] = f"sqlite:///{self.folder / 'empty.db'}"
            else:
                name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
                _admin(f"CREATE DATABASE {name}")
                self.templates[kind] = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
            assert zaplecze(self.templates[kind], "init").returncode == 0
            if kind == "postgresql":
                _wait_until_alone(self.templates[kind].rpartition("/")[2])
        template = self.templates[kind]
        name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
        if kind == "sqlite":
            origin = sqlite3.connect(template.removeprefix("sqlite:///"))
            copy = sqlite3.connect(self.folder / f"{name}.db")
            origin.backup(copy)
            origin.close()
            copy.close()
            return f"sqlite:///{self.folder / name}.db"
        _admin(f"CREATE DATABASE {name} TEMPLATE {template.rpartition('/')[2]}")
        self.copies.append(name)
        return f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"

    def drop_copies(self) -> None:
        while self.copies:
            _admin(f"DROP DATABASE IF EXISTS {self.copies.pop()} WITH (FORCE)")

    def close(self) -> None:
        self.drop_copies()
        if "postgresql" in self.templates:
            _admin(f"DROP DATABASE IF EXISTS {self.templates['postgresql'].rpartition('/')[2]} "
                   f"WITH (FORCE)")


@pytest.fixture(scope="module")
def empty_books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmptyBooks]:
    books = EmptyBooks(tmp_path_factory.mktemp("bad-input"))
    try:
        yield books
    finally:
        books.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_book(request: pytest.FixtureRequest, empty_books: EmptyBooks) -> Iterator[str]:
    require(request.param)
    yield empty_books.fresh(request.param)
    empty_books.drop_copies()


# --- the reproducers -----------------------------------------------------------------------------


def require(database: str) -> None:
    """PostgreSQL cases skip, as book_url's do, where it cannot be reached (fail in CI)."""
    reason = postgres_unavailable() if database == "postgresql" else None
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here (ZAPLECZE_REQUIRE_PG=1): {reason}")
        pytest.skip(reason)


RUNS = [pytest.param("sqlite", case, id=f"sqlite-{case}") for case in CASES] + [
    pytest.param("postgresql", case, id=f"postgresql-{case}", marks=pytest.mark.postgres)
    for case in CASES if case.postgres]


@pytest.mark.parametrize(("database", "case"), RUNS)
def test_a_bad_row_is_located_kept_and_the_good_rows_beside_it_are_booked(
        database: str, case: Case, empty_books: EmptyBooks, tmp_path: Path) -> None:
    require(database)
    url = empty_books.fresh(database)
    try:
        if case.before:
            first = zaplecze(url, "load", str(write_folder(tmp_path / "first", case.before)))
            assert (first.returncode, first.stdout) == (0, ""), first
            if case.eod_through:
                assert zaplecze(url, "eod", "--through", case.eod_through).returncode == 0
        done = zaplecze(url, "load", str(write_folder(tmp_path / "book", case.files)))
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, done
        if case.line is None:  # the whole folder is refused: an error, not a rejected row
            assert done.stdout == ""
            assert done.stderr.startswith(f"error: {case.file}: {case.rule.value}: "), done
        else:
            assert printed_rejections(done) == [(case.file, case.line, case.rule.value)], done
        report = zaplecze(url, "report", "rejected", "--format", "json")
        kept = [(row["file"], row["line"], row["reason"]) for row in json.loads(report.stdout)]
        assert kept == [(case.file, case.line, case.rule.value)], "not kept for the operator"
        booked = present(url, case.good + case.bad)
        assert booked == {**dict.fromkeys(names(case.good), True),
                          **dict.fromkeys(names(case.bad), False)}
    finally:
        empty_books.drop_copies()


def test_every_rule_has_a_reproducer() -> None:
    reproduced = {case.rule for case in CASES}
    missing = set(Rule) - reproduced - set(COVERED_ELSEWHERE) - NOT_PRODUCED
    assert not missing, f"rules without a reproducer: {sorted(missing)}"
    assert not reproduced & NOT_PRODUCED


def test_the_rules_covered_elsewhere_are_tested_there() -> None:
    for rule, test_file in COVERED_ELSEWHERE.items():
        text = (ROOT / test_file).read_text()
        assert f"Rule.{rule.name}" in text or rule.value in text, (rule, test_file)


def test_the_rules_said_not_to_be_produced_are_produced_nowhere() -> None:
    """If the product starts to produce one of them, it needs a reproducer above."""
    sources = "\n".join(path.read_text() for path in (ROOT / "src").rglob("*.py")
                        if path.name != "problems.py")
    for rule in NOT_PRODUCED:
        assert f"Rule.{rule.name}" not in sources, f"{rule} is produced now: add a case"
        assert f'"{rule.value}"' not in sources


# --- files as they come --------------------------------------------------------------------------


def spreadsheet_export(text: str) -> bytes:
    """A UTF-8 BOM, CRLF line ends, every field quoted, a trailing empty line."""
    rows = [",".join(f'"{field_}"' for field_ in line.split(",")) for line in text.splitlines()]
    return "\ufeff".encode() + ("\r\n".join(rows) + "\r\n\r\n").encode()


def test_a_spreadsheet_export_loads_cleanly(fresh_book: str, tmp_path: Path) -> None:
    plain = {
        "trades": lines(TRADES, G1, G2, trade("G3", isin=PKO, quantity="50", price="58.12",
                                              currency="PLN", commission="5.00")),
        "cash": lines(CASH, D1, D2),
        "corporate_actions": lines(ACTIONS, A1, A2),
    }
    folder = write_folder(tmp_path / "export", {})
    for name, text in {"instruments": GOLDEN_INSTRUMENTS, "accounts": GOLDEN_ACCOUNTS,
                       **plain}.items():
        (folder / f"{name}.csv").write_bytes(spreadsheet_export(text))
    done = zaplecze(fresh_book, "load", str(folder))
    assert (done.returncode, done.stdout) == (0, ""), done
    assert "warning" not in done.stderr, done.stderr

    reference = f"sqlite:///{tmp_path / 'plain.db'}"
    zaplecze(reference, "init")
    assert zaplecze(reference, "load", str(write_folder(tmp_path / "plain", plain))).returncode == 0
    for args in (("positions", "--as-of", "2024-06-14"), ("cash", "--as-of", "2024-06-14"),
                 ("rejected",)):
        assert (zaplecze(fresh_book, "report", *args, "--format", "json").stdout
                == zaplecze(reference, "report", *args, "--format", "json").stdout), args
    engine = open_engine(fresh_book)
    try:
        with read_connection(engine) as connection:
            names = {row[0] for row in connection.exec_driver_sql("SELECT name FROM instruments")}
    finally:
        engine.dispose()
    assert "PKO Bank Polski S.A." in names  # quotes and BOM gone, nothing else touched


def test_an_unknown_column_is_ignored_with_a_warning(fresh_book: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "book", {"cash": lines(CASH + ",branch", D1 + ",Krakow")})
    done = zaplecze(fresh_book, "load", str(folder))
    assert (done.returncode, done.stdout) == (0, "")
    assert "warning: cash.csv: unknown column(s) ignored: branch" in done.stderr
    assert present(fresh_book, GOOD_CASH[:1]) == {"entries.entry_key=cash:D1": True}


def test_instruments_may_be_absent_on_a_later_load(fresh_book: str, tmp_path: Path) -> None:
    assert zaplecze(fresh_book, "load", str(write_folder(tmp_path / "first", {}))).returncode == 0
    later = tmp_path / "later"
    later.mkdir()
    (later / "trades.csv").write_text(lines(TRADES, G1))
    done = zaplecze(fresh_book, "load", str(later))
    assert (done.returncode, done.stdout) == (0, ""), done
    assert present(fresh_book, GOOD_TRADES[:1]) == {"entries.entry_key=trade:G1": True}


@pytest.mark.parametrize("args", [("load", "FOLDER"), ("eod", "--through", "2024-06-28"),
                                  ("report", "positions", "--as-of", "2024-06-28"),
                                  ("audit", "verify")], ids=lambda args: args[0])
def test_an_unreachable_database_is_a_clear_error(args: tuple[str, ...], tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "book", {"trades": lines(TRADES, G1)})
    done = run_cli("postgresql://postgres@127.0.0.1:1/x",
                   *(str(folder) if arg == "FOLDER" else arg for arg in args), timeout=60)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith("error: cannot use the book at 127.0.0.1:1/x"), message
    assert len(message.splitlines()) == 1 and "postgres@" not in message
