"""Market claims of a cash dividend, through the command line, on SQLite and PostgreSQL.

A small book of its own (tests/test_settlement_lifecycle.py's: PKO on XWAR, C01 and H01 funded
with PLN 100,000.00 each, BRK1 an instrumented counterparty with a gross SSI) and a PKO
dividend of PLN 2.35 a share, 19% withheld (a Polish issuer): ex Mon 2026-03-09, record Tue
03-10, pay Mon 03-16. Every trade is with BRK1 and settles as the depository confirms it:

    S0  C01 buys 2,000 on 03-02, ISD 03-04, settled 03-04            before the record date
    N1  C01 buys   100 on 03-04, ISD 03-06, settled 03-06            before the record date
    B1  C01 buys 1,000 on 03-05, ISD 03-12, settled 03-12            after it: RECEIVABLE
    B2  H01 buys   400 on 03-06, ISD 03-10, 150 settled 03-10, 250 on 03-11: RECEIVABLE (250)
    S1  C01 sells  300 on 03-06, ISD 03-13, settled 03-13            after it: PAYABLE

Entitled (trade basis on the eve of the ex date): C01 2,000 + 100 + 1,000 − 300 = 2,800 →
gross 6,580.00, withheld 1,250.20, net 5,329.80; H01 400 → 940.00, 178.60, 761.40.
The CSD pays on what our account holds at the end of the record date: 2,000 + 100 + 150 =
2,250 (S1's 300 not delivered yet are among them, B1's 1,000 and 250 of B2 are not) →
2,250 × 2.35 = 5,287.50, which is what the bank shows once the claims are booked:

    B1  1,000 × 2.35 = 2,350.00 owed to us       bank +2,350.00 · claim:BRK1 −2,350.00
    B2    250 × 2.35 =   587.50 owed to us       bank   +587.50 · claim:BRK1   −587.50
    S1    300 × 2.35 =   705.00 owed by us       bank   −705.00 · claim:BRK1   +705.00
    bank on the pay date: −7,520.00 (the entitlements' gross) + 2,350.00 + 587.50 − 705.00
                        = −5,287.50 (held for us: 2,250 × 2.35)
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from test_settlement_lifecycle import (
    BRK1_GROSS,
    PKO,
    Desk,
    balanced,
    confirmation,
    open_desk,
    trade,
)
from zaplecze.corporate_actions.claims import (
    ClaimableTrade,
    ClaimDirection,
    claim_entry,
    claim_id,
    compensation_entry,
    detect,
)
from zaplecze.corporate_actions.model import CaKind, CorporateAction
from zaplecze.ledger.model import unbalanced_assets
from zaplecze.store.db import open_engine

EVENT = "PKO-DVCA-2026"
EX, RECORD, PAY = "2026-03-09", "2026-03-10", "2026-03-16"
ACTIONS = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,currency,"
           "new_isin,cost_fraction,fraction_price\n"
           f"{EVENT},CASH_DIVIDEND,{PKO},{EX},{RECORD},{PAY},,,2.35,PLN,,,\n")
WITHHOLDING = "issuer_country,tax_residence,rate\nPL,PL,0.19\nPL,*,0.19\n"


def dated_trade(trade_id: str, account: str, side: str, quantity: int, price: str, day: str,
                settlement: str) -> str:
    return trade(trade_id, account, PKO, side, quantity, price, day, "BRK1") + settlement


TRADES = [
    trade("S0", "C01", PKO, "BUY", 2000, "20.00", "2026-03-02", "BRK1"),
    trade("N1", "C01", PKO, "BUY", 100, "20.00", "2026-03-04", "BRK1"),
    dated_trade("B1", "C01", "BUY", 1000, "21.00", "2026-03-05", "2026-03-12"),
    trade("B2", "H01", PKO, "BUY", 400, "20.00", "2026-03-06", "BRK1"),
    dated_trade("S1", "C01", "SELL", 300, "22.00", "2026-03-06", "2026-03-13"),
]


def book(url: str, tmp_path: Path) -> Desk:
    desk = open_desk(url, tmp_path, trades=TRADES, ssis=(BRK1_GROSS,))
    more = tmp_path / "dividend"
    more.mkdir()
    (more / "withholding.csv").write_text(WITHHOLDING, encoding="utf-8")
    (more / "corporate_actions.csv").write_text(ACTIONS, encoding="utf-8")
    desk.run("load", str(more), check=True)
    return desk


def settle(desk: Desk, trade_id: str, quantity: int, amount: str, day: str,
           remaining: int | None = None) -> None:
    row = desk.instructions()[trade_id]
    sent = desk.write(f"{trade_id}-{day}.xml", confirmation(
        row, quantity, amount, day, f"K-{trade_id}-{day}", remaining=remaining))
    done = desk.receive(day, sent)
    assert done.returncode == 0 and "1 message(s) applied" in done.stderr, done


def claims(desk: Desk) -> dict[str, dict[str, str]]:
    done = desk.run("ca", "claims", "--format", "json", check=True)
    return {row["trade_id"]: row for row in json.loads(done.stdout)}


def trial(desk: Desk, day: str) -> dict[str, tuple[str, str]]:
    return {row["gl_account"]: (row["debit"], row["credit"])
            for row in desk.rows("trial-balance", "--as-of", day) if row["currency"] == "PLN"}


FIGURES = ("account", "counterparty", "direction", "isin", "quantity", "rate", "gross",
           "currency", "record_date", "pay_date", "raised_on")


def figures(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(row[name] for name in FIGURES)


def test_claims_are_raised_booked_and_compensated(book_url: str, tmp_path: Path) -> None:
    desk = book(book_url, tmp_path)
    desk.eod("2026-03-03")
    settle(desk, "S0", 2000, "40000.00", "2026-03-04")
    desk.eod("2026-03-05")
    settle(desk, "N1", 100, "2000.00", "2026-03-06")
    desk.eod("2026-03-06")
    assert claims(desk) == {}

    # Applied on the ex date: B1 and S1 settle after the record date by their terms; B2 is due
    # on the record date itself and may still make it.
    desk.eod(EX)
    raised = claims(desk)
    assert {k: figures(v) for k, v in raised.items()} == {
        "B1": ("C01", "BRK1", "RECEIVABLE", PKO, "1000", "2.35", "2350.00", "PLN", RECORD, PAY,
               EX),
        "S1": ("C01", "BRK1", "PAYABLE", PKO, "300", "2.35", "705.00", "PLN", RECORD, PAY, EX)}
    assert {(row["status"], row["booked_on"]) for row in raised.values()} == {("RAISED", "")}
    assert raised["B1"]["claim_id"] == claim_id(EVENT, "B1")

    # B2 settles 150 of 400 on the record date: the 250 left raise a claim that evening.
    settle(desk, "B2", 150, "3000.00", RECORD, remaining=250)
    desk.eod(RECORD)
    settle(desk, "B2", 250, "5000.00", "2026-03-11")
    desk.eod("2026-03-11")
    settle(desk, "B1", 1000, "21000.00", "2026-03-12")
    desk.eod("2026-03-12")
    settle(desk, "S1", 300, "6600.00", "2026-03-13")
    desk.eod(PAY)
    found = claims(desk)
    assert set(found) == {"B1", "B2", "S1"}  # S0 and N1 settled before the record date
    assert figures(found["B2"]) == ("H01", "BRK1", "RECEIVABLE", PKO, "250", "2.35", "587.50",
                                    "PLN", RECORD, PAY, RECORD)
    assert {(k, row["status"], row["booked_on"]) for k, row in found.items()} == {
        ("B1", "OPEN", PAY), ("B2", "OPEN", PAY), ("S1", "OPEN", PAY)}

    # The entitled accounts are credited as ever; the bank shows what the CSD paid us, the
    # counterparty the difference: 2,350.00 + 587.50 − 705.00 = 2,232.50 owed to us.
    dividends = {row["account"]: (row["quantity"], row["gross"], row["withholding"], row["net"])
                 for row in desk.rows("dividends", "--from", EX, "--to", PAY)}
    assert dividends == {"C01": ("2800", "6580.00", "1250.20", "5329.80"),
                         "H01": ("400", "940.00", "178.60", "761.40")}
    before, after = trial(desk, "2026-03-13"), trial(desk, PAY)
    assert after["claim:BRK1"] == ("2232.50", "0.00")
    assert "claim:BRK1" not in before
    bank_moved = Decimal(after["bank:PLN"][0]) - Decimal(before["bank:PLN"][0])
    assert bank_moved == Decimal("5287.50") == 2250 * Decimal("2.35")
    balanced(desk, PAY)

    # Compensation: BRK1 pays B1's claim on the open day 03-17, we pay S1's.
    refused = desk.run("ca", "compensate", found["B1"]["claim_id"], "--date", PAY)
    assert refused.returncode == 2 and "day_already_closed" in refused.stderr, refused
    unknown = desk.run("ca", "compensate", "MC0000000000")
    assert unknown.returncode == 2 and "unknown_claim" in unknown.stderr, unknown
    paid = desk.run("ca", "compensate", found["B1"]["claim_id"], "--by", "carol")
    assert paid.returncode == 0 and "COMPENSATED on 2026-03-17" in paid.stdout, paid
    again = desk.run("ca", "compensate", found["B1"]["claim_id"])
    assert again.returncode == 2 and "claim_not_open" in again.stderr, again
    desk.run("ca", "compensate", found["S1"]["claim_id"], "--date", "2026-03-17", check=True)
    desk.eod("2026-03-17")

    closed = claims(desk)
    assert {(k, row["status"], row["closed_on"]) for k, row in closed.items()} == {
        ("B1", "COMPENSATED", "2026-03-17"), ("B2", "OPEN", ""),
        ("S1", "COMPENSATED", "2026-03-17")}
    day = trial(desk, "2026-03-17")
    assert day["claim:BRK1"] == ("587.50", "0.00")  # B2's, still open
    # what the bank received that day: 2,350.00 in, 705.00 out
    assert Decimal(day["bank:PLN"][0]) - Decimal(after["bank:PLN"][0]) == Decimal("1645.00")
    # the open claims add up to the claim account, from the journal
    open_total = sum((Decimal(r["gross"]) * (1 if r["direction"] == "RECEIVABLE" else -1)
                      for r in closed.values() if r["status"] == "OPEN"), Decimal(0))
    assert open_total == Decimal(day["claim:BRK1"][0])
    balanced(desk, "2026-03-17")
    desk.stock_record("2026-03-17")
    desk.audit()
    assert sql(desk, "SELECT actor FROM audit_trail WHERE action = 'ca.claim.compensate' AND "
                     f"object_id = '{found['B1']['claim_id']}'") == [("carol",)]

    # Reversing the dividend reverses the claims' entries and cancels them.
    done = desk.run("ca", "reverse", EVENT, "--reason", "wrong rate", "--by", "carol")
    request_id, digest = done.stdout.split()[1], done.stdout.split()[3].rstrip("):")
    assert desk.run("user", "approve", request_id, "--hash", digest,
                    "--by", "dave").returncode == 0, done
    cancelled = claims(desk)
    assert {(k, row["status"], row["closed_on"]) for k, row in cancelled.items()} == {
        ("B1", "CANCELLED", "2026-03-18"), ("B2", "CANCELLED", "2026-03-18"),
        ("S1", "CANCELLED", "2026-03-18")}
    refused = desk.run("ca", "compensate", found["B2"]["claim_id"])
    assert refused.returncode == 2 and "claim_not_open" in refused.stderr, refused
    desk.eod("2026-03-18")
    assert "claim:BRK1" not in trial(desk, "2026-03-18")
    assert trial(desk, "2026-03-18")["bank:PLN"] == trial(desk, "2026-03-06")["bank:PLN"]
    balanced(desk, "2026-03-18")
    desk.audit()

    # The records are append-only in the database itself.
    engine = open_engine(desk.url)
    try:
        for statement in ("UPDATE market_claims SET gross = '0'",
                          "DELETE FROM market_claim_events",
                          "UPDATE ca_reversals SET reason = 'x'", "DELETE FROM ca_reversals"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert len(claims(desk)) == 3


def sql(desk: Desk, query: str) -> list[tuple[Any, ...]]:
    engine = open_engine(desk.url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(query)]
    finally:
        engine.dispose()


def test_a_trade_settled_before_the_record_date_raises_no_claim(book_url: str,
                                                               tmp_path: Path) -> None:
    desk = open_desk(book_url, tmp_path, ssis=(BRK1_GROSS,), trades=[
        trade("E1", "C01", PKO, "BUY", 500, "20.00", "2026-03-04", "BRK1")])
    more = tmp_path / "dividend"
    more.mkdir()
    (more / "corporate_actions.csv").write_text(ACTIONS, encoding="utf-8")
    desk.run("load", str(more), check=True)
    desk.eod("2026-03-05")
    settle(desk, "E1", 500, "10000.00", "2026-03-06")
    desk.eod(PAY)
    assert claims(desk) == {}
    # (no withholding.csv here: the gross is paid) 500 x 2.35 = 1,175.00
    assert [(r["account"], r["net"]) for r in desk.rows("dividends", "--from", EX,
                                                        "--to", PAY)] == [("C01", "1175.00")]
    assert "claim:BRK1" not in trial(desk, PAY)


# --- the rules, pure ------------------------------------------------------------------------


DIVIDEND = CorporateAction(event_id="D", kind=CaKind.CASH_DIVIDEND, isin=PKO,
                           ex_date=dt.date(2026, 3, 9), record_date=dt.date(2026, 3, 10),
                           pay_date=dt.date(2026, 3, 16), amount=Decimal("0.485"),
                           currency="PLN")


def claimable(side: str, settled: str = "0", isd: str = "2026-03-12",
              traded: str = "2026-03-05") -> ClaimableTrade:
    return ClaimableTrade("T", "C01", "BRK1", side, Decimal(333), Decimal(settled),
                          dt.date.fromisoformat(traded), dt.date.fromisoformat(isd))


@pytest.mark.parametrize(("trade_", "day", "expected"), [
    # 333 x 0.485 = 161.505 -> 161.51 (half up to the grosz)
    (claimable("BUY"), "2026-03-09", (ClaimDirection.RECEIVABLE, "333", "161.51")),
    (claimable("SELL"), "2026-03-09", (ClaimDirection.PAYABLE, "333", "161.51")),
    # 133 delivered by the record date: 200 x 0.485 = 97.00
    (claimable("BUY", settled="133", isd="2026-03-10"), "2026-03-10",
     (ClaimDirection.RECEIVABLE, "200", "97.000")),
    (claimable("BUY", isd="2026-03-10"), "2026-03-09", None),  # may still settle in time
    (claimable("BUY", isd="2026-03-10"), "2026-03-10", (ClaimDirection.RECEIVABLE, "333",
                                                        "161.51")),
    (claimable("BUY", settled="333", isd="2026-03-10"), "2026-03-16", None),  # delivered
    (claimable("BUY", traded="2026-03-09"), "2026-03-09", None),  # bought ex: no dividend
])
def test_detect(trade_: ClaimableTrade, day: str,
                expected: tuple[ClaimDirection, str, str] | None) -> None:
    found = detect(DIVIDEND, [trade_], dt.date.fromisoformat(day))
    if expected is None:
        assert found == []
        return
    (claim,) = found
    assert (claim.direction, claim.quantity, claim.gross) == (
        expected[0], Decimal(expected[1]), Decimal(expected[2]))
    assert (claim.raised_on, claim.pay_date, claim.claim_id) == (
        dt.date.fromisoformat(day), DIVIDEND.pay_date, claim_id("D", "T"))


def test_only_cash_dividends_raise_claims() -> None:
    split = CorporateAction(event_id="S", kind=CaKind.SPLIT, isin=PKO,
                            ex_date=DIVIDEND.ex_date, record_date=DIVIDEND.record_date,
                            pay_date=DIVIDEND.pay_date, ratio_old=Decimal(1),
                            ratio_new=Decimal(2))
    assert detect(split, [claimable("BUY")], DIVIDEND.pay_date) == []


def test_the_claim_entries_balance_and_undo_each_other() -> None:
    for side, sign in (("BUY", 1), ("SELL", -1)):
        (claim,) = detect(DIVIDEND, [claimable(side)], DIVIDEND.ex_date)
        booked = claim_entry(claim)
        paid = compensation_entry(claim, dt.date(2026, 3, 17))
        assert booked.business_date == DIVIDEND.pay_date and booked.ref == "D"
        assert unbalanced_assets(booked) == unbalanced_assets(paid) == {}
        assert {p.gl_account: p.amount for p in booked.postings} == {
            "bank:PLN": sign * 16151, "claim:BRK1": -sign * 16151}
        assert [p.amount for p in paid.postings] == [-p.amount for p in booked.postings]
