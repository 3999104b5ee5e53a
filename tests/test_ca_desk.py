"""Corporate actions in operation, end to end through the command line (services/ca_desk.py), on
SQLite and PostgreSQL, over the golden book (../shared/scenarios/basic: PKO PLPKO0000016 held by
C01 500 and C02 300 from June 2024 until C01 sells 200 on 08-13 and C02 300 on 08-14).

- every shared MT564 sample is announced without a crash; unknown event types are kept (with
  ``unsupported_event_kind``), events on unknown securities wait for them; the same files twice
  add nothing to ``ca_event_log``;
- an announced (or computed) but unapproved dividend books nothing: end of day past its ex and
  pay dates leaves the cash exactly as in the same book without the announcement;
- four eyes: the entitlements computed by alice (quantity x rate, withholding per
  withholding.csv, net), refused to alice, approved by bob, then applied by end of day;
- the approval binds to the entitlements shown: holdings that change after the computation
  refuse the approval until it is computed again, and end of day books only what was approved;
- a REPL before approval replaces the terms; one after approval is refused and shown;
- a CANC / WITH withdraws the event, and nothing of it is booked;
- ``ca_event_log`` refuses UPDATE and DELETE (and their disguises) in the database itself.

Our own MT564s are MT564_02 (a DVCA) with PKO's ISIN, dates in July 2024 and a rate
``:92F::GRSS//PLN5,47`` (a realistic PKO rate): ex Mon 07-15, record 07-16, pay 07-25.
"""

from __future__ import annotations

import csv
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from conftest import Done, pg_admin, run_cli, shared_path, zaplecze_in_process
from zaplecze.store.db import open_engine

PKO = "PLPKO0000016"
EVENT = "PKO-DVCA-2024-1"
EX, RECORD, PAY = "2024-07-15", "2024-07-16", "2024-07-25"
THROUGH = "2024-08-02"  # past every pay date here (end of day stops there: faster)
MT564_DIR = ("standards", "swift", "mt5xx")
CSV_EVENTS = {"CA-NVDA-2024-SPLIT", "CA-KO-2024Q2-DIV"}  # the golden corporate_actions.csv
TRADE_HEADER = ("trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
                "counterparty,commission,settlement_date")
# C01 buys 100 PKO more on Wed 07-10, before the ex date: entitled to 600 instead of 500.
LATE_TRADE = f"T031,NEW,C01,{PKO},BUY,100,57.00,PLN,2024-07-10,XWAR,KDPWCCP,,"


def mt564(corp: str, seme: str, function: str = "NEWM", rate: str = "5,47", ex: str = EX,
          record: str = RECORD, pay: str = PAY) -> str:
    """MT564_02 (a mandatory DVCA with one CASH option) made a PKO dividend in PLN."""
    text = shared_path(*MT564_DIR, "MT564_02.fin").read_text(encoding="latin-1")

    def swap(old: str, new: str, count: int) -> None:
        nonlocal text
        assert text.count(old) == count, f"MT564_02.fin changed: {old!r} x{text.count(old)}"
        text = text.replace(old, new)

    swap(":20C::CORP//D455103", f":20C::CORP//{corp}", 1)
    swap(":20C::SEME//029206016", f":20C::SEME//{seme}", 1)
    swap(":23G:NEWM", f":23G:{function}", 1)
    swap(":98C::PREP//20070316143348", ":98C::PREP//20240701090000", 1)
    swap("ISIN CH0011075394\n/XX/5983816\nZURICH FIN SVS GRP\nCHF0.10",
         f"ISIN {PKO}\nPKO BANK POLSKI SA", 1)
    swap(":93B::ELIG//UNIT/7000,", ":93B::ELIG//UNIT/800,", 1)
    swap(":92A::WITF//35,\n", "", 1)
    swap(":92A::GRSS//0,000001000", f":92F::GRSS//PLN{rate}", 2)
    swap(":11A::OPTN//CHF", ":11A::OPTN//PLN", 1)
    for qualifier, day in (("XDTE", ex), ("RDTE", record), ("PAYD", pay), ("VALU", pay)):
        text = text.replace(f":98A::{qualifier}//20111111",
                            f":98A::{qualifier}//{day.replace('-', '')}")
    text = re.sub(r":19B::[A-Z]{4}//CHF0,01\n", "", text)
    assert "20111111" not in text and "CHF" not in text
    return text


@dataclass
class Desk:
    """One book (the golden one, loaded, end of day not yet run) and the desk's commands."""

    url: str
    folder: Path

    def run(self, *args: str, check: bool = False) -> Done:
        return zaplecze_in_process(self.url, *args, check=check)

    def rows(self, name: str, *options: str) -> list[dict[str, str]]:
        done = self.run("report", name, *options, "--format", "json", check=True)
        return list(json.loads(done.stdout))

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="latin-1")
        return path

    def announce(self, path: Path, by: str = "alice") -> Done:
        return self.run("ca", "announce", str(path), "--by", by)

    def announce_text(self, name: str, text: str, by: str = "alice") -> Done:
        return self.announce(self.write(name, text), by)

    def compute(self, event_id: str, by: str) -> tuple[Done, list[dict[str, str]]]:
        done = self.run("ca", "compute", event_id, "--by", by, "--format", "json")
        return done, (list(json.loads(done.stdout)) if done.returncode == 0 else [])

    def approve(self, event_id: str, by: str) -> Done:
        return self.run("ca", "approve", event_id, "--by", by)

    def eod(self, through: str = THROUGH) -> None:
        self.run("eod", "--through", through, check=True)

    def load_trade(self, line: str) -> None:
        more = self.folder / f"more-{uuid.uuid4().hex[:6]}"
        more.mkdir()
        (more / "trades.csv").write_text(f"{TRADE_HEADER}\n{line}\n", encoding="utf-8")
        done = self.run("load", str(more))
        assert done.returncode == 0 and "1 new" in done.stderr, done

    def events(self) -> dict[str, dict[str, str]]:
        """`report corporate-actions` by event."""
        rows = self.rows("corporate-actions")
        found = {row["event_id"]: row for row in rows}
        assert len(found) == len(rows), rows
        return found

    def dividends(self, event_id: str) -> list[dict[str, str]]:
        return [row for row in self.rows("dividends", "--from", "2024-06-01", "--to", THROUGH)
                if row["event_id"] == event_id]

    def cash(self, as_of: str) -> dict[tuple[str, str], Decimal]:
        return {(row["account"], row["currency"]): Decimal(row["balance"]) for row in
                self.rows("cash", "--as-of", as_of, "--basis", "settlement")}

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        engine = open_engine(self.url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.exec_driver_sql(query)]
        finally:
            engine.dispose()

    def log(self) -> list[tuple[Any, ...]]:
        return self.sql("SELECT id, event_id, action, who, at, payload, source FROM ca_event_log "
                        "ORDER BY id")


def golden_book(url: str, golden_folder: Path, folder: Path) -> Desk:
    folder.mkdir(exist_ok=True)
    desk = Desk(url, folder)
    desk.run("init", check=True)
    loaded = desk.run("load", str(golden_folder))
    # The golden book rejects two rows on purpose (cash.csv:9, trades.csv:27): exit 1.
    assert loaded.returncode == 1 and "2 rejected" in loaded.stderr, loaded
    return desk


@pytest.fixture
def desk(book_url: str, golden_folder: Path, tmp_path: Path) -> Desk:
    return golden_book(book_url, golden_folder, tmp_path / "desk")


@pytest.fixture
def plain_url(book_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty book on the same database as ``book_url``."""
    if book_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'plain.db'}"
        return
    name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"{book_url.rpartition('/')[0]}/{name}"
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def printed(done: Done) -> tuple[list[str], dict[str, tuple[str, str, str]]]:
    """What `ca announce` printed: the rules of its `problem …` lines, and each event line
    `EVENT TYPE ISIN: STATUS` as {event: (type, isin, status)}."""
    rules, events = [], {}
    for line in done.stdout.splitlines():
        if line.startswith("problem "):
            rule = re.search(r"(?<![\w.])([a-z]+(?:_[a-z0-9]+)+): ", line)
            assert rule, line
            rules.append(rule.group(1))
            continue
        event = re.fullmatch(r"(\S+) (\S+) (\S+): ([A-Z_]+)", line)
        assert event, f"unexpected line {line!r} in {done}"
        events[event.group(1)] = (event.group(2), event.group(3), event.group(4))
    return rules, events


def said(done: Done) -> str:
    return f"{done.stdout}\n{done.stderr}"


# --- the expected figures ---------------------------------------------------------------------

CENT = Decimal("0.01")


def withholding_rate(golden_folder: Path, issuer_country: str, residence: str) -> Decimal:
    with (golden_folder / "withholding.csv").open(encoding="utf-8") as handle:
        rates = {(row["issuer_country"], row["tax_residence"]): Decimal(row["rate"])
                 for row in csv.DictReader(handle)}
    return rates.get((issuer_country, residence), rates[(issuer_country, "*")])


def residences(golden_folder: Path) -> dict[str, str]:
    with (golden_folder / "accounts.csv").open(encoding="utf-8") as handle:
        return {row["account"]: row["tax_residence"] for row in csv.DictReader(handle)}


def expected_dividend(golden_folder: Path, holdings: dict[str, int],
                      rate: str) -> list[dict[str, str]]:
    """Per account: gross = quantity x rate, withholding = gross x the rate of withholding.csv
    for a Polish issuer (PKO's ISIN; instruments.csv leaves its issuer country blank) and the
    account's tax residence, half up to the grosz; net = gross - withholding."""
    found = []
    for account, quantity in sorted(holdings.items()):
        gross = (quantity * Decimal(rate)).quantize(CENT, ROUND_HALF_UP)
        tax = withholding_rate(golden_folder, "PL", residences(golden_folder)[account])
        withholding = (gross * tax).quantize(CENT, ROUND_HALF_UP)
        found.append({"account": account, "quantity": str(quantity), "gross": str(gross),
                      "withholding": str(withholding), "net": str(gross - withholding)})
    return found


FIGURES = ("account", "quantity", "gross", "withholding", "net")


def figures(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(({k: row[k] for k in FIGURES} for row in rows), key=lambda r: r["account"])


# 500 x 5.47 = 2,735.00, 19% (PL issuer, PL resident) 519.65, net 2,215.35;
# 300 x 5.47 = 1,641.00, 19% (PL issuer, the '*' row for C02, a German resident) 311.79, 1,329.21.
AT_5_47 = [{"account": "C01", "quantity": "500", "gross": "2735.00", "withholding": "519.65",
            "net": "2215.35"},
           {"account": "C02", "quantity": "300", "gross": "1641.00", "withholding": "311.79",
            "net": "1329.21"}]
# The rate amended to 5.60: 2,800.00 / 532.00 / 2,268.00 and 1,680.00 / 319.20 / 1,360.80.
AT_5_60 = [{"account": "C01", "quantity": "500", "gross": "2800.00", "withholding": "532.00",
            "net": "2268.00"},
           {"account": "C02", "quantity": "300", "gross": "1680.00", "withholding": "319.20",
            "net": "1360.80"}]
# C01 with 600 (LATE_TRADE): 3,282.00 / 623.58 / 2,658.42.
AT_5_47_C01_600 = [{"account": "C01", "quantity": "600", "gross": "3282.00",
                    "withholding": "623.58", "net": "2658.42"}, AT_5_47[1]]


def test_the_expected_figures_follow_from_withholding_csv(golden_folder: Path) -> None:
    assert expected_dividend(golden_folder, {"C01": 500, "C02": 300}, "5.47") == AT_5_47
    assert expected_dividend(golden_folder, {"C01": 500, "C02": 300}, "5.60") == AT_5_60
    assert expected_dividend(golden_folder, {"C01": 600, "C02": 300}, "5.47") \
        == AT_5_47_C01_600


# --- 1. every shared sample -------------------------------------------------------------------

# What each shared sample becomes, announced in file order into the golden book (none of their
# securities is in it): {event: (kind, event_type, status)}, and the rules it must print.
SAMPLES: dict[str, tuple[dict[str, tuple[str, str, str]], set[str]]] = {
    # a DVCA on a CUSIP, block 2 without its receiver
    # (its ex date 2000-11-27 against a 2020 record date: dates_out_of_order, so no terms)
    "MT564_01.fin": ({"DV200000168730": ("CASH_DIVIDEND", "DVCA", "WAITING_FOR_REFERENCE_DATA")},
                     {"mt_malformed", "dates_out_of_order", "missing_required_value"}),
    "MT564_02.fin": ({"D455103": ("CASH_DIVIDEND", "DVCA", "WAITING_FOR_REFERENCE_DATA")},
                     set()),
    "MT564_03.fin": ({"123456": ("", "RHDI", "WAITING_FOR_REFERENCE_DATA")},
                     {"unsupported_event_kind"}),
    "MT564_04.fin": ({}, set()),  # an ACK and MT564_02 again (its SEME): nothing new
    "MT564_05.fin": ({"OTHR000000000302": ("", "OTHR", "WAITING_FOR_REFERENCE_DATA")},
                     {"unsupported_event_kind"}),
    "MT564_06.fin": ({"VQ8000V1LOI51000": ("", "ACTV", "WAITING_FOR_REFERENCE_DATA")},
                     {"unsupported_event_kind"}),
    "MT564_07.fin": ({"11111111": ("", "EXWA", "WAITING_FOR_REFERENCE_DATA")},
                     {"unsupported_event_kind"}),
    # a DVCA with no gross rate: kept, with no terms
    "MT564_08.fin": ({"ABC123456789": ("CASH_DIVIDEND", "DVCA", "WAITING_FOR_REFERENCE_DATA")},
                     {"amount_required"}),
    # the CANC of an event never announced, a DVCA with no CASH option: kept, withdrawn
    "MT564_09.fin": ({"FOOBAR": ("", "DVCA", "WITHDRAWN")},
                     {"unsupported_event_kind", "invalid_date", "invalid_isin", "unknown_event"}),
    "MT564_10.fin": ({}, {"unsupported_event_kind", "invalid_date", "invalid_isin"}),  # 09's SEME
    "MT564_11.fin": ({}, {"mt_malformed"}),  # empty
}


def test_every_shared_mt564_is_announced_once_and_kept(desk: Desk) -> None:
    samples = sorted(shared_path(*MT564_DIR).glob("MT564_*.fin"))
    assert [path.name for path in samples] == sorted(SAMPLES), "the shared samples changed"
    first: dict[str, Done] = {}
    announced: dict[str, tuple[str, str, str]] = {}
    for path in samples:
        done = first[path.name] = desk.announce(path, by="ops")
        assert "Traceback" not in done.stderr, done
        rules, events = printed(done)
        assert done.returncode == (1 if rules else 0), (path.name, done)
        expected_events, expected_rules = SAMPLES[path.name]
        assert set(rules) == expected_rules, (path.name, done)
        assert "unsupported_event_kind" not in rules or done.returncode == 1
        assert {event: status for event, (_, _, status) in events.items()} \
            == {event: status for event, (_, _, status) in expected_events.items()}, done
        for event, (event_type, _, _) in events.items():
            assert event_type == expected_events[event][1], done
        announced.update(expected_events)

    report = desk.events()
    assert set(report) == CSV_EVENTS | set(announced)
    for event, (kind, event_type, status) in announced.items():
        row = report[event]
        assert (row["kind"], row["event_type"], row["status"]) == (kind, event_type, status), row
        assert row["prepared_by"] == row["approved_by"] == "" and row["accounts_entitled"] == ""
    assert report["D455103"]["isin"] == "CH0011075394"
    assert (report["D455103"]["ex_date"], report["D455103"]["pay_date"]) \
        == ("2011-11-11", "2011-11-11")
    assert report["D455103"]["source"] == "029206016"
    # one row of ca_event_log per message read anew: MT564_04 and MT564_10 repeat a SEME
    log = desk.log()
    assert [(row[1], row[2], row[3], row[6]) for row in log] == [
        (event, "announce", "ops", name) for name, (events, _) in SAMPLES.items()
        for event in events]

    # The same files again: nothing is added; the reader's problems are said again (those of
    # the event's life were said when the message was first taken, and it is not taken again).
    for path in samples:
        done = desk.announce(path, by="ops")
        rules, events = printed(done)
        assert events == {}, (path.name, done)
        assert set(rules) <= SAMPLES[path.name][1], (path.name, done)
        assert done.returncode == (1 if rules else 0), (path.name, done)
        assert "0 event(s) announced or amended" in done.stderr, done
    assert desk.log() == log
    assert desk.events() == report

    # A waiting event moves on once its security is loaded.
    more = desk.folder / "instruments"
    more.mkdir()
    (more / "instruments.csv").write_text(
        "isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale\n"
        "CH0011075394,ZURN,Zurich Insurance Group AG,EQUITY,CHF,XSWX,CH,\n", encoding="utf-8")
    desk.run("load", str(more), check=True)
    assert desk.events()["D455103"]["status"] == "ANNOUNCED"
    assert desk.events()["123456"]["status"] == "WAITING_FOR_REFERENCE_DATA"
    assert desk.log() == log


# --- 2. unapproved: nothing booked ------------------------------------------------------------

def test_an_announced_but_unapproved_dividend_books_nothing(desk: Desk, golden_folder: Path,
                                                            plain_url: str) -> None:
    # EVENT announced only; a second PKO dividend (ex 07-22, pay 08-01) computed but unapproved
    second = "PKO-DVCA-2024-2"
    assert desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM")).returncode == 0
    assert desk.announce_text("second.fin", mt564(second, "PKO2-NEWM", rate="1,00",
                                                  ex="2024-07-22", record="2024-07-23",
                                                  pay="2024-08-01")).returncode == 0
    done, shown = desk.compute(second, "alice")
    assert done.returncode == 0, done
    assert figures(shown) == expected_dividend(golden_folder, {"C01": 500, "C02": 300}, "1.00")
    desk.eod()

    events = desk.events()
    assert events[EVENT]["status"] == "ANNOUNCED"
    assert events[second]["status"] == "ENTITLEMENTS_COMPUTED"
    assert events[second]["prepared_by"] == "alice" and events[second]["approved_by"] == ""
    assert events[EVENT]["accounts_entitled"] == events[second]["accounts_entitled"] == ""
    dividends = desk.rows("dividends", "--from", "2024-06-01", "--to", THROUGH)
    assert {row["event_id"] for row in dividends} == {"CA-KO-2024Q2-DIV"}

    plain = golden_book(plain_url, golden_folder, desk.folder / "plain")
    plain.eod()
    for day in (EX, PAY, "2024-08-01", THROUGH):
        assert desk.cash(day) == plain.cash(day), day
    assert dividends == plain.rows("dividends", "--from", "2024-06-01", "--to", THROUGH)


# --- 3. four eyes -----------------------------------------------------------------------------

def test_four_eyes_compute_by_one_approve_by_another_then_end_of_day_applies(
        desk: Desk, golden_folder: Path) -> None:
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    done, shown = desk.compute(EVENT, "alice")
    assert done.returncode == 0, done
    assert figures(shown) == AT_5_47
    assert figures(shown) == expected_dividend(golden_folder, {"C01": 500, "C02": 300}, "5.47")
    assert {(row["isin"], row["currency"], row["pay_date"]) for row in shown} \
        == {(PKO, "PLN", PAY)}
    assert desk.events()[EVENT]["status"] == "ENTITLEMENTS_COMPUTED"

    refused = run_cli(desk.url, "ca", "approve", EVENT, "--by", "alice")  # a real process
    assert refused.returncode == 2, refused
    assert "four_eyes_required" in refused.stderr, refused
    refused_again = desk.approve(EVENT, " ALICE ")  # names compared without case or spaces
    assert refused_again.returncode == 2 and "four_eyes_required" in refused_again.stderr
    row = desk.events()[EVENT]
    assert (row["status"], row["prepared_by"], row["approved_by"]) \
        == ("ENTITLEMENTS_COMPUTED", "alice", "")

    approved = desk.approve(EVENT, "bob")
    assert approved.returncode == 0, approved
    row = desk.events()[EVENT]
    assert (row["status"], row["prepared_by"], row["approved_by"]) == ("APPROVED", "alice", "bob")

    desk.eod()
    booked = desk.dividends(EVENT)
    assert figures(booked) == AT_5_47
    assert {(r["isin"], r["pay_date"], r["currency"]) for r in booked} == {(PKO, PAY, "PLN")}
    row = desk.events()[EVENT]
    assert (row["status"], row["prepared_by"], row["approved_by"], row["accounts_entitled"],
            row["ex_date"], row["pay_date"]) == ("APPLIED", "alice", "bob", "2", EX, PAY)
    # the net arrives on the pay date, on the settlement basis, and nothing else moves that day
    before_pay, after_pay = desk.cash("2024-07-24"), desk.cash(PAY)
    moved = {key: after_pay.get(key, Decimal(0)) - before_pay.get(key, Decimal(0))
             for key in before_pay.keys() | after_pay.keys()}
    assert {key: amount for key, amount in moved.items() if amount} \
        == {("C01", "PLN"): Decimal("2215.35"), ("C02", "PLN"): Decimal("1329.21")}


# --- 4. the approval binds to the payload -----------------------------------------------------

def test_holdings_changed_since_the_computation_refuse_the_approval_until_computed_again(
        desk: Desk) -> None:
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    done, shown = desk.compute(EVENT, "alice")
    assert figures(shown) == AT_5_47, done
    desk.load_trade(LATE_TRADE)

    for approver in ("bob", "carol"):
        refused = desk.approve(EVENT, approver)
        assert refused.returncode == 2, refused
        assert "event_not_approved" in refused.stderr and "compute them again" in refused.stderr
    row = desk.events()[EVENT]
    assert (row["status"], row["approved_by"]) == ("ENTITLEMENTS_COMPUTED", "")

    done, shown = desk.compute(EVENT, "alice")
    assert figures(shown) == AT_5_47_C01_600, done
    assert desk.approve(EVENT, "bob").returncode == 0
    desk.eod()
    assert figures(desk.dividends(EVENT)) == AT_5_47_C01_600
    assert desk.events()[EVENT]["status"] == "APPLIED"


def test_end_of_day_books_only_the_entitlements_approved(desk: Desk) -> None:
    """Holdings that change after the approval (a trade before the ex date loaded late): the
    entitlements to book are not those bob approved, and lifecycle.apply refuses such an
    application (EVENT_NOT_APPROVED: revoke, compute again). End of day must not book them."""
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    done, shown = desk.compute(EVENT, "alice")
    assert figures(shown) == AT_5_47, done
    assert desk.approve(EVENT, "bob").returncode == 0
    desk.load_trade(LATE_TRADE)
    desk.eod()
    booked = figures(desk.dividends(EVENT))
    assert booked in ([], AT_5_47), (
        f"end of day booked {booked} for {EVENT}; bob approved {AT_5_47} "
        f"(report corporate-actions: {desk.events()[EVENT]})")


# --- 5. amendments ----------------------------------------------------------------------------

def test_a_replacement_before_approval_replaces_the_terms(desk: Desk, golden_folder: Path) -> None:
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    done, shown = desk.compute(EVENT, "alice")
    assert figures(shown) == AT_5_47, done

    replaced = desk.announce_text("repl.fin", mt564(EVENT, "PKO1-REPL", "REPL", rate="5,60"))
    assert replaced.returncode == 0, replaced
    assert printed(replaced)[1] == {EVENT: ("DVCA", PKO, "ANNOUNCED")}  # computation dropped
    row = desk.events()[EVENT]
    assert (row["status"], row["prepared_by"], row["source"]) \
        == ("ANNOUNCED", "", "PKO1-NEWM,PKO1-REPL")
    refused = desk.approve(EVENT, "bob")  # what alice was shown is gone with the old terms
    assert refused.returncode == 2 and "event_not_approved" in refused.stderr, refused

    done, shown = desk.compute(EVENT, "alice")
    assert figures(shown) == AT_5_60, done
    assert figures(shown) == expected_dividend(golden_folder, {"C01": 500, "C02": 300}, "5.60")
    assert desk.approve(EVENT, "bob").returncode == 0
    desk.eod()
    assert figures(desk.dividends(EVENT)) == AT_5_60
    assert desk.events()[EVENT]["status"] == "APPLIED"


def test_a_replacement_after_approval_is_refused_and_the_approved_terms_stay(desk: Desk) -> None:
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    desk.compute(EVENT, "alice")
    assert desk.approve(EVENT, "bob").returncode == 0
    log = desk.log()

    late = desk.announce_text("late-repl.fin", mt564(EVENT, "PKO1-REPL", "REPL", rate="6,00"))
    again = desk.announce_text("late-repl.fin", mt564(EVENT, "PKO1-REPL", "REPL", rate="6,00"))
    row = desk.events()[EVENT]
    assert (row["status"], row["prepared_by"], row["approved_by"]) == ("APPROVED", "alice", "bob")
    desk.eod()
    assert figures(desk.dividends(EVENT)) == AT_5_47  # the approved terms, not 6.00
    assert desk.events()[EVENT]["status"] == "APPLIED"

    # What the operator is told, and what the log keeps, gathered so each is reported.
    failures = []
    if late.returncode not in (1, 2) or "amendment_after_approval" not in said(late):
        failures.append(f"the refused REPL is not shown as such (amendment_after_approval, "
                        f"exit 1 or 2): exit {late.returncode}, printed {said(late)!r}")
    if len(desk.log()) > len(log) + 1:
        failures.append(f"the same refused REPL twice added {len(desk.log()) - len(log)} rows "
                        f"to ca_event_log (exits {late.returncode}, {again.returncode})")
    assert not failures, "\n".join(failures)


# --- 6. withdrawal ----------------------------------------------------------------------------

def test_a_cancellation_or_withdrawal_before_approval_withdraws_the_event(desk: Desk) -> None:
    cancelled, withdrawn = "PKO-DVCA-2024-C", "PKO-DVCA-2024-W"
    desk.announce_text("c.fin", mt564(cancelled, "PKOC-NEWM"))
    desk.announce_text("w.fin", mt564(withdrawn, "PKOW-NEWM", ex="2024-07-22",
                                      record="2024-07-23", pay="2024-08-01"))
    assert desk.compute(cancelled, "alice")[0].returncode == 0  # computed, not approved

    for event, function in ((cancelled, "CANC"), (withdrawn, "WITH")):
        done = desk.announce_text(f"{function}.fin", mt564(event, f"{event}-{function}",
                                                           function))
        assert done.returncode == 0, done
        assert printed(done)[1] == {event: ("DVCA", PKO, "WITHDRAWN")}
        approve = desk.approve(event, "bob")
        assert approve.returncode == 2 and "event_not_approved" in approve.stderr, approve
        compute = desk.compute(event, "alice")[0]
        assert compute.returncode == 2 and "withdrawn" in compute.stderr, compute
    desk.eod()
    events = desk.events()
    for event in (cancelled, withdrawn):
        assert events[event]["status"] == "WITHDRAWN"
        assert events[event]["approved_by"] == events[event]["accounts_entitled"] == ""
        assert desk.dividends(event) == []


def test_a_cancellation_after_approval_before_the_ex_date_books_nothing(desk: Desk) -> None:
    """lifecycle.withdraw ends any event not applied yet, an approved one included."""
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    desk.compute(EVENT, "alice")
    assert desk.approve(EVENT, "bob").returncode == 0
    done = desk.announce_text("canc.fin", mt564(EVENT, "PKO1-CANC", "CANC"))
    assert printed(done)[1] == {EVENT: ("DVCA", PKO, "WITHDRAWN")}, done
    desk.eod()
    row = desk.events()[EVENT]
    booked = desk.dividends(EVENT)
    assert (row["status"], booked) == ("WITHDRAWN", []), (
        f"{EVENT} is {row['status']} (accounts_entitled {row['accounts_entitled']!r}) and end "
        f"of day booked {figures(booked)}")


# --- 7. the log is append-only ----------------------------------------------------------------

def test_the_ca_event_log_refuses_update_and_delete_in_the_database(desk: Desk) -> None:
    desk.announce_text("new.fin", mt564(EVENT, "PKO1-NEWM"))
    desk.compute(EVENT, "alice")
    assert desk.approve(EVENT, "bob").returncode == 0
    log = desk.log()
    assert [row[2:4] for row in log] == [("announce", "alice"), ("compute", "alice"),
                                         ("approve", "bob")]
    compute_id = log[1][0]
    postgres = desk.url.startswith("postgresql")
    columns = "id, event_id, action, who, at, payload, source"
    attempts = [
        f"UPDATE ca_event_log SET who = 'bob' WHERE id = {compute_id}",
        "UPDATE ca_event_log SET payload = 'x'",
        f"DELETE FROM ca_event_log WHERE id = {log[2][0]}",
        "DELETE FROM ca_event_log",
    ]
    # an update in disguise: the same key written again, who computed it made 'bob'
    rewrite = ("SELECT id, event_id, action, 'bob', at, payload, source FROM ca_event_log "
               f"WHERE id = {compute_id}")
    if postgres:
        attempts += ["TRUNCATE ca_event_log",
                     f"INSERT INTO ca_event_log ({columns}) {rewrite} ON CONFLICT (id) DO UPDATE "
                     "SET who = excluded.who"]
    else:
        attempts += [f"INSERT OR REPLACE INTO ca_event_log ({columns}) {rewrite}",
                     f"REPLACE INTO ca_event_log ({columns}) {rewrite}"]

    accepted = []
    engine = open_engine(desk.url)
    try:
        for statement in attempts:
            try:
                with engine.begin() as connection:
                    connection.exec_driver_sql(statement)
            except DBAPIError as error:
                assert "append-only" in str(error.orig), (statement, error)
            else:
                accepted.append(statement)
    finally:
        engine.dispose()
    row = desk.events()[EVENT]
    assert not accepted and desk.log() == log, (
        f"accepted: {accepted}; ca_event_log now {[r[:4] for r in desk.log()]}; "
        f"report corporate-actions: prepared_by {row['prepared_by']!r}, approved_by "
        f"{row['approved_by']!r}")
    assert (row["status"], row["prepared_by"], row["approved_by"]) == ("APPROVED", "alice", "bob")
