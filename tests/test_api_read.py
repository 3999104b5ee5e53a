"""The reading side of the REST API, on SQLite and PostgreSQL: positions, cash, prices,
accounts, lots, activity, instruments, the inventory, reports, settlement and the audit trail.

The book: the golden scenario (../shared/scenarios/basic) with an ``ssis.csv`` that instructs
its KDPWCCP (Warsaw) trades gross; the CSD never answers, so they fail and accrue penalties.
End of day runs through 2024-09-30. The trade basis is untouched by that, so the API's
trade-basis positions must equal the scenario's expected files exactly.

Desks: "warsaw" has C01 and H01, "berlin" C02. People: olga (operations, firm-wide), dora
(operations, warsaw), sam (settlement), cora (compliance), fred (front office).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import REQUIRE_PG, _pg_url, pg_admin, postgres_unavailable, shared_path
from zaplecze.bootstrap import Book, open_book
from zaplecze.interfaces.web.app import create_app
from zaplecze.interfaces.web.settings import WebSettings
from zaplecze.services import holdings, identity, reporting, settlement_reports
from zaplecze.services.audit_trail import Actor
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import repo
from zaplecze.store.db import read_connection

PASSWORD = "correct horse battery"
LAST = dt.date(2024, 9, 30)
SSIS = ("counterparty,market,currency,place_of_settlement,counterparty_bic,"
        "counterparty_account,safekeeping_account,payment,netting\n"
        "KDPWCCP,XWAR,PLN,KDPWPLPWXXX,KDPCPLPWXXX,CCP-01,ZAP-001,DVP,GROSS\n")
USERS = {"olga": (["operations"], ""), "dora": (["operations"], "warsaw"),
         "sam": (["settlement"], ""), "cora": (["compliance"], ""),
         "fred": (["front_office"], "")}
DATES = (dt.date(2024, 6, 3), dt.date(2024, 6, 10), dt.date(2024, 7, 5), LAST)
ADMIN = Actor("admin", "test")


@dataclass
class Golden:
    book: Book
    clients: dict[str, TestClient]

    def __call__(self, username: str) -> TestClient:
        return self.clients[username]

    def build(self, name: str, **options: Any) -> list[dict[str, Any]]:
        return reporting.build(self.book.engine, name, **options)


def build_book(url: str, folder: Path) -> Book:
    book = open_book(url, create=True)
    inputs = folder / "golden"
    inputs.mkdir()
    for source in sorted(shared_path("scenarios", "basic").glob("*.csv")):
        shutil.copy(source, inputs / source.name)
    (inputs / "ssis.csv").write_text(SSIS, encoding="utf-8")
    Loader(book.engine, book.calendar()).load(inputs)
    run_eod(book.engine, LAST)
    for username, (roles, desk) in USERS.items():
        identity.add_user(book.engine, ADMIN, username, PASSWORD, roles, desk=desk)
    identity.assign_desk(book.engine, ADMIN, "warsaw", ["C01", "H01"])
    identity.assign_desk(book.engine, ADMIN, "berlin", ["C02"])
    return book


def token_client(book: Book, username: str) -> TestClient:
    """A client with the user's API token (every permission of its roles)."""
    token = identity.issue_token(book.engine, ADMIN, username, [])
    client = TestClient(create_app(book, WebSettings(clock=lambda: dt.datetime(
        2024, 9, 30, 18, tzinfo=dt.UTC))), base_url="https://testserver",
        raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def session_client(book: Book, username: str) -> TestClient:
    """A client logged in with password and TOTP code, sending the CSRF header."""
    client = TestClient(create_app(book), base_url="https://testserver",
                        raise_server_exceptions=False)
    with read_connection(book.engine) as connection:
        user = identity.get_user(connection, username)
    assert user is not None
    answer = client.post("/api/session", json={
        "username": username, "password": PASSWORD, "code": identity.totp_code(user.totp_secret)})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _database(kind: str, folder: Path) -> tuple[str, str]:
    if kind == "sqlite":
        return f"sqlite:///{folder / 'book.db'}", ""
    reason = postgres_unavailable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here (ZAPLECZE_REQUIRE_PG=1): {reason}")
        pytest.skip(reason)
    name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name}")
    return _pg_url(name), name


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def golden(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Golden]:
    """The book, built once per database for this module's reading tests (not changed)."""
    folder = tmp_path_factory.mktemp("api-read")
    url, database = _database(request.param, folder)
    book = build_book(url, folder)
    clients = {name: token_client(book, name) for name in USERS}
    try:
        yield Golden(book, clients)
    finally:
        for client in clients.values():
            client.close()
        book.engine.dispose()
        if database:
            pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def items(client: TestClient, path: str, **query: Any) -> list[dict[str, Any]]:
    body = ok(client.get(path, params={"limit": 1000, **query}))
    assert body["total"] == len(body["items"]), body["total"]
    return list(body["items"])


def problem(answer: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    if field is not None:
        assert field in [error["field"] for error in body["errors"]], body
    return body


def expected(name: str) -> list[dict[str, Any]]:
    path = shared_path("scenarios", "basic", "expected", f"{name}.json")
    return list(json.loads(path.read_text(encoding="utf-8")))


# --- positions and cash ----------------------------------------------------------------------

def test_positions_and_cash_are_the_reports(golden: Golden) -> None:
    olga = golden("olga")
    for day in DATES:
        for basis in ("trade", "settlement"):
            report = golden.build("positions", as_of=day, basis=basis)
            shown = items(olga, "/api/positions", as_of=day.isoformat(), basis=basis)
            assert shown == [{"cost_basis": None, **row} for row in report]
            for account in ("C01", "C02", "H01"):
                one = items(olga, "/api/positions", as_of=day.isoformat(), basis=basis,
                            account=account)
                assert one == [{"cost_basis": None, **row} for row in report
                               if row["account"] == account]
            cash = golden.build("cash", as_of=day, basis=basis)
            assert items(olga, "/api/cash", as_of=day.isoformat(), basis=basis) == cash
            assert items(olga, "/api/cash", as_of=day.isoformat(), basis=basis,
                         account="C02", currency="USD") == [
                row for row in cash if row["account"] == "C02" and row["currency"] == "USD"]
    # The scenario's own expected figures (trade basis; its independent reference model).
    assert items(olga, "/api/positions", as_of="2024-09-30") == expected(
        "positions-trade-2024-09-30")
    assert items(olga, "/api/positions", as_of="2024-06-10") == expected(
        "positions-trade-2024-06-10")
    # By hand: C01 bought 500 PKO at 58.12 (T015, commission 0.39% = 113.33) and sold 200 on
    # 13 August; FIFO leaves 300 costing 300/500 × 29173.33 = 17504.00.
    pko = items(olga, "/api/positions", account="C01", isin="PLPKO0000016")
    assert pko == [{"account": "C01", "isin": "PLPKO0000016", "quantity": "300",
                    "cost_basis": "17504.00", "currency": "PLN"}]
    # Default as_of is today (the app's clock says 2024-09-30).
    assert items(olga, "/api/positions") == items(olga, "/api/positions", as_of="2024-09-30")


def test_one_accounts_figures_by_either_path_are_the_fold(golden: Golden,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An account's balances come from its materialised balances less later postings, or
    (older dates) from its postings summed: both equal the journal's fold."""
    inventories = []
    for limit in (holdings.LATER_POSTINGS_MAX, -1):
        monkeypatch.setattr(holdings, "LATER_POSTINGS_MAX", limit)
        with read_connection(golden.book.engine) as connection:
            inventories.append([holdings.inventory(connection, day) for day in DATES])
            for day in (*DATES, dt.date(2024, 6, 2), dt.date(2024, 8, 14)):
                for basis in ("trade", "settlement"):
                    fold = repo.balances_as_of(connection, day, basis, ("client", "house"))
                    assert holdings.balances(connection, day, basis) == fold
                    for account in ("C01", "C02", "H01"):
                        mine = {key: value for key, value in fold.items()
                                if key[0].endswith(f":{account}")}
                        assert holdings.balances(connection, day, basis, [account]) == mine
    assert inventories[0] == inventories[1]


def test_paging_sorting_and_filters(golden: Golden) -> None:
    olga = golden("olga")
    whole = items(olga, "/api/positions")
    body = ok(olga.get("/api/positions", params={"limit": 2, "offset": 1, "sort": "quantity",
                                                  "order": "desc"}))
    by_quantity = sorted(whole, key=lambda row: -float(row["quantity"]))
    assert body["total"] == len(whole) == 12
    assert [row["quantity"] for row in body["items"]] == [
        row["quantity"] for row in by_quantity[1:3]]
    assert body["limit"] == 2 and body["offset"] == 1
    assert items(olga, "/api/positions", isin="US1912161007") == [
        row for row in whole if row["isin"] == "US1912161007"]
    prices = items(olga, "/api/prices", isin="PLPKO0000016")
    assert [p["business_date"] for p in prices] == ["2024-06-28", "2024-09-30"]
    assert prices[1]["close"] == "54.80" and prices[1]["currency"] == "PLN"
    latest = items(olga, "/api/prices", latest="true", as_of="2024-07-31")
    assert {p["isin"]: p["business_date"] for p in latest} == {
        isin: "2024-06-28" for isin in {p["isin"] for p in latest}}
    assert len(latest) == 6
    window = ok(olga.get("/api/prices", params={"date_from": "2024-07-01", "limit": 2,
                                                  "sort": "isin", "order": "desc"}))
    assert window["total"] == 6
    assert [p["isin"] for p in window["items"]] == ["US67066G1040", "US46625H1005"]


# --- accounts, lots, activity, instruments, inventory ---------------------------------------

def test_accounts_lots_activity_and_instruments(golden: Golden) -> None:
    olga = golden("olga")
    accounts = items(olga, "/api/accounts")
    assert [a["account"] for a in accounts] == ["C01", "C02", "H01"]
    assert {a["account"]: a["desk"] for a in accounts} == {
        "C01": "warsaw", "C02": "berlin", "H01": "warsaw"}
    assert ok(olga.get("/api/accounts/C02"))["name"] == "Jonas Becker"
    problem(olga.get("/api/accounts/NOPE"), 404, "unknown_account")
    lots = items(olga, "/api/accounts/C01/lots", as_of="2024-09-30")
    positions = {(p["isin"]): p for p in items(olga, "/api/positions", account="C01")}
    assert {lot["isin"] for lot in lots} == set(positions)
    for isin, position in positions.items():
        mine = [lot for lot in lots if lot["isin"] == isin]
        assert sum(float(lot["quantity"]) for lot in mine) == float(position["quantity"])
    activity = ok(olga.get("/api/accounts/C01/activity", params={"limit": 5}))
    with read_connection(golden.book.engine) as connection:
        count = connection.exec_driver_sql(
            "SELECT COUNT(DISTINCT entry_sequence) FROM postings WHERE gl_account = 'client:C01'"
        ).scalar()
    assert activity["total"] == count
    sequences = [entry["sequence"] for entry in activity["items"]]
    assert sequences == sorted(sequences, reverse=True)  # newest first
    deposit = items(olga, "/api/accounts/C01/activity", to="2024-06-03", sort="sequence")[0]
    assert deposit["entry_key"] == "cash:M001" and deposit["kind"] == "CASH"
    assert deposit["postings"] == [
        {"line": 1, "gl_account": "client:C01", "asset": "PLN", "amount": "50000.00",
         "basis": "B"},
        {"line": 2, "gl_account": "bank:PLN", "asset": "PLN", "amount": "-50000.00",
         "basis": "B"}]
    june = items(olga, "/api/accounts/C01/activity", **{"from": "2024-06-04", "to": "2024-06-04"})
    assert {entry["business_date"] for entry in june} == {"2024-06-04"}
    assert all(posting["gl_account"] in ("client:C01",) or not posting["gl_account"].startswith(
        ("client:", "house:")) for entry in items(olga, "/api/accounts/C01/activity")
        for posting in entry["postings"])
    instruments = items(olga, "/api/instruments", currency="USD")
    assert [i["isin"] for i in instruments] == ["US1912161007", "US46625H1005", "US67066G1040"]
    assert ok(olga.get("/api/instruments/US46625H1005"))["symbol"] == "JPM"
    problem(olga.get("/api/instruments/XX0000000000"), 404, "unknown_instrument")


def test_inventory_is_the_house_and_the_clients_at_the_last_price(golden: Golden) -> None:
    rows = {row["isin"]: row for row in items(golden("fred"), "/api/inventory")}
    # Coca-Cola: the house 1100 (1000 + 100), clients 200 (C01) + 180 (C02), closing 71.86.
    assert rows["US1912161007"] == {
        "isin": "US1912161007", "symbol": "KO", "name": "Coca-Cola Co.", "currency": "USD",
        "house_quantity": "1100", "client_quantity": "380", "quantity": "1480",
        "price": "71.86", "price_date": "2024-09-30", "house_market_value": "79046.00",
        "client_market_value": "27306.80", "market_value": "106352.80"}
    positions = items(golden("olga"), "/api/positions")
    for isin, row in rows.items():
        assert float(row["quantity"]) == sum(float(p["quantity"]) for p in positions
                                             if p["isin"] == isin)
    warsaw = {row["isin"]: row for row in items(golden("dora"), "/api/inventory")}
    assert warsaw["US1912161007"]["client_quantity"] == "200"  # C02's 180 is not warsaw's
    assert warsaw["US1912161007"]["house_quantity"] == "1100"
    early = items(golden("olga"), "/api/inventory", as_of="2024-06-05")
    assert all(row["price"] is None and row["market_value"] is None for row in early)


# --- desks and roles --------------------------------------------------------------------------

def test_a_desk_sees_only_its_accounts(golden: Golden) -> None:
    dora = golden("dora")
    assert {p["account"] for p in items(dora, "/api/positions")} == {"C01", "H01"}
    assert {c["account"] for c in items(dora, "/api/cash")} == {"C01", "H01"}
    assert [a["account"] for a in items(dora, "/api/accounts")] == ["C01", "H01"]
    for path in ("/api/accounts/C02", "/api/accounts/C02/lots", "/api/accounts/C02/activity"):
        problem(dora.get(path), 404, "unknown_account")
    problem(dora.get("/api/positions", params={"account": "C02"}), 404, "unknown_account")
    problem(dora.get("/api/cash", params={"account": "C02"}), 404, "unknown_account")
    problem(dora.get("/api/reports/positions", params={"as_of": "2024-09-30",
                                                       "account": "C02"}),
            404, "unknown_account")
    for name, options in (("positions", {"as_of": "2024-09-30"}),
                          ("realized", {"from": "2024-06-01", "to": "2024-09-30"}),
                          ("dividends", {"from": "2024-06-01", "to": "2024-09-30"}),
                          ("valuation", {"as_of": "2024-09-30"})):
        rows = items(dora, f"/api/reports/{name}", **options)
        assert rows and {row["account"] for row in rows} <= {"C01", "H01"}, name
    assert items(dora, "/api/reports/rejected") == []
    assert ok(dora.get("/api/accounts/C01"))["account"] == "C01"


def test_roles_decide_settlement_audit_and_reports(golden: Golden) -> None:
    fred, olga = golden("fred"), golden("olga")
    for path in ("/api/settlement/obligations", "/api/settlement/instructions",
                 "/api/settlement/fails", "/api/settlement/penalties", "/api/audit",
                 "/api/audit/verify", "/api/audit/export", "/api/reports",
                 "/api/reports/positions"):
        problem(fred.get(path), 403, "forbidden")
    problem(fred.post("/api/settlement/instructions/X/hold"), 403, "forbidden")
    problem(olga.get("/api/audit"), 403, "forbidden")  # operations does not read the trail
    problem(olga.post("/api/settlement/instructions/X/hold"), 403, "forbidden")
    ok(fred.get("/api/positions"))
    ok(fred.get("/api/prices"))
    anonymous = TestClient(create_app(golden.book), base_url="https://testserver")
    problem(anonymous.get("/api/positions"), 401, "not_logged_in")


def test_bad_query_values_are_400_with_the_field(golden: Golden) -> None:
    olga = golden("olga")
    problem(olga.get("/api/positions", params={"as_of": "yesterday"}), 400, "invalid_request",
            "query.as_of")
    problem(olga.get("/api/positions", params={"basis": "cash"}), 400, "invalid_request",
            "query.basis")
    problem(olga.get("/api/cash", params={"limit": "0"}), 400, "invalid_request", "query.limit")
    problem(olga.get("/api/positions", params={"sort": "nope"}), 400, "invalid_sort", "sort")
    problem(olga.get("/api/prices", params={"sort": "close"}), 400, "invalid_sort", "sort")
    problem(olga.get("/api/prices", params={"date_from": "2024-09-01",
                                            "date_to": "2024-08-01"}),
            400, "invalid_period", "date_from")
    problem(olga.get("/api/prices", params={"latest": "maybe"}), 400, "invalid_request",
            "query.latest")
    problem(olga.get("/api/accounts/C01/activity", params={"sort": "memo"}), 400,
            "invalid_sort", "sort")
    problem(olga.get("/api/reports/positions"), 400, "missing_option", "as_of")
    problem(olga.get("/api/reports/realized", params={"from": "2024-06-01"}), 400,
            "missing_option", "to")
    problem(olga.get("/api/reports/obligations"), 400, "missing_option", "settlement_date")
    problem(olga.get("/api/reports/penalties", params={"from": "2024-09-01",
                                                       "to": "2024-06-01"}),
            400, "invalid_period", "from")
    problem(olga.get("/api/reports/positions", params={"as_of": "2024-09-30",
                                                       "format": "xml"}),
            400, "invalid_request", "query.format")
    problem(olga.get("/api/reports/nonsense"), 404, "unknown_report")
    problem(olga.get("/api/settlement/fails", params={"as_of": "2024-13-01"}), 400,
            "invalid_request", "query.as_of")
    problem(golden("cora").get("/api/audit", params={"sort": "actor"}), 400, "invalid_sort",
            "sort")


# --- reports ----------------------------------------------------------------------------------

REPORT_OPTIONS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "positions": ({"as_of": "2024-07-05", "basis": "settlement"},
                  {"as_of": dt.date(2024, 7, 5), "basis": "settlement"}),
    "cash": ({"as_of": "2024-07-05"}, {"as_of": dt.date(2024, 7, 5), "basis": "trade"}),
    "realized": ({"from": "2024-06-01", "to": "2024-09-30"},
                 {"start": dt.date(2024, 6, 1), "end": LAST}),
    "dividends": ({"from": "2024-06-01", "to": "2024-09-30"},
                  {"start": dt.date(2024, 6, 1), "end": LAST}),
    "trial-balance": ({"as_of": "2024-09-30"}, {"as_of": LAST}),
    "rejected": ({}, {}),
    "stock-record": ({"as_of": "2024-08-14"}, {"as_of": dt.date(2024, 8, 14)}),
    "valuation": ({"as_of": "2024-09-30"}, {"as_of": LAST}),
    "obligations": ({"settlement_date": "2024-06-07"},
                    {"settlement_date": dt.date(2024, 6, 7)}),
    "cash-ladder": ({"from": "2024-06-01", "to": "2024-06-30"},
                    {"start": dt.date(2024, 6, 1), "end": dt.date(2024, 6, 30)}),
    "instructions": ({}, {}),
    "fails": ({"as_of": "2024-09-30"}, {"as_of": LAST}),
    "penalties": ({"from": "2024-06-01", "to": "2024-09-30"},
                  {"start": dt.date(2024, 6, 1), "end": LAST}),
    "breaks": ({"as_of": "2024-09-30"}, {"as_of": LAST}),
    "corporate-actions": ({}, {}),
}


def test_every_report_as_json_and_csv(golden: Golden) -> None:
    sam = golden("sam")
    names = [row["name"] for row in items(sam, "/api/reports")]
    assert names == sorted(reporting.REPORTS)
    assert set(REPORT_OPTIONS) == set(names)
    for name, (query, options) in REPORT_OPTIONS.items():
        body = ok(sam.get(f"/api/reports/{name}", params={"limit": 1000, **query}))
        assert body["items"] == golden.build(name, **options), name
        assert body["total"] == len(body["items"])
        assert body["name"] == name
        download = sam.get(f"/api/reports/{name}", params={"format": "csv", **query})
        assert download.status_code == 200, download.text
        assert download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        header, *table = list(csv.reader(io.StringIO(download.text)))
        assert header == body["columns"], name
        assert len(table) == body["total"], name
    # Settlement basis: no cost basis column; a report's rows sorted and paged.
    body = ok(sam.get("/api/reports/positions", params={"as_of": "2024-09-30",
                                                         "basis": "settlement"}))
    assert "cost_basis" not in body["columns"]
    paged = ok(sam.get("/api/reports/trial-balance", params={
        "as_of": "2024-09-30", "sort": "gl_account", "order": "desc", "limit": 3,
        "offset": 1}))
    whole = golden.build("trial-balance", as_of=LAST)
    assert paged["total"] == len(whole)
    assert [r["gl_account"] for r in paged["items"]] == sorted(
        (r["gl_account"] for r in whole), reverse=True)[1:4]


# --- settlement ---------------------------------------------------------------------------------

def test_settlement_lists_are_the_reports(golden: Golden) -> None:
    sam = golden("sam")
    with read_connection(golden.book.engine) as connection:
        obligations = settlement_reports.obligations(connection, dt.date(2024, 6, 7),
                                                     dt.date(2024, 6, 7))
        instructions = settlement_reports.instructions(connection)
        fails = settlement_reports.fails(connection, LAST)
        penalties = settlement_reports.penalties(connection, dt.date(2024, 6, 1), LAST)
    key = lambda name: lambda row: row[name]  # noqa: E731
    assert items(sam, "/api/settlement/obligations", settlement_date="2024-06-07") == sorted(
        obligations, key=key("counterparty"))
    assert len(instructions) == 12
    assert items(sam, "/api/settlement/instructions") == sorted(instructions,
                                                               key=key("reference"))
    assert items(sam, "/api/settlement/instructions", isin="PLPKO0000016") == [
        row for row in sorted(instructions, key=key("reference"))
        if row["isin"] == "PLPKO0000016"]
    assert items(sam, "/api/settlement/instructions", status="SETTLED") == []
    assert items(sam, "/api/settlement/fails") == sorted(fails, key=key("reference"))
    assert items(sam, "/api/settlement/penalties", **{"from": "2024-06-01"}) == penalties
    september = items(sam, "/api/settlement/penalties")  # this month (the clock's September)
    assert [row["month"] for row in september] == ["2024-09"]
    first = instructions[0]["reference"]
    detail = ok(sam.get(f"/api/settlement/instructions/{first}"))
    assert detail["isin"] == instructions[0]["isin"] and detail["messages"] == []
    problem(sam.get("/api/settlement/instructions/ZS0000000000"), 404, "unknown_instruction")
    problem(sam.post("/api/settlement/instructions/ZS0000000000/hold"), 404,
            "unknown_instruction")


def test_hold_release_and_cancel_are_audited(book_url: str, tmp_path: Path) -> None:
    book = build_book(book_url, tmp_path)
    try:
        sam, cora = session_client(book, "sam"), token_client(book, "cora")
        reference = items(sam, "/api/settlement/fails")[0]["reference"]
        held = ok(sam.post(f"/api/settlement/instructions/{reference}/hold"))
        problem(sam.post(f"/api/settlement/instructions/{reference}/hold"), 409,
                "instruction_already_held")
        assert held["instruction"]["held"] == "yes" and held["action"] == "hold"
        released = ok(sam.post(f"/api/settlement/instructions/{reference}/release"))
        assert released["instruction"]["held"] == "no"
        cancelled = ok(sam.post(f"/api/settlement/instructions/{reference}/cancel"))
        assert cancelled["instruction"]["status"] == "CANCEL_REQUESTED"
        messages = ok(sam.get(f"/api/settlement/instructions/{reference}"))["messages"]
        assert [m["status"] for m in messages][:2] == ["HELD", "RELEASED"]
        # Without the CSRF header a cookie-authenticated change is refused.
        bare = sam.post(f"/api/settlement/instructions/{reference}/hold",
                        headers={"X-CSRF-Token": ""})
        problem(bare, 403, "forbidden")
        trail = items(cora, "/api/audit", object_type="instruction")
        assert [(r["actor"], r["action"], r["object_id"]) for r in trail] == [
            ("sam", f"instruction.{action}", reference)
            for action in ("cancel", "release", "hold")]  # newest first
        assert trail[2]["before"]["held"] is False and trail[2]["after"]["held"] is True
        assert trail[0]["after"]["status"] == "CANCEL_REQUESTED"
        oldest = ok(cora.get("/api/audit", params={"sort": "seq", "order": "asc", "limit": 2}))
        assert [r["seq"] for r in oldest["items"]] == [1, 2]
        assert oldest["total"] == len(items(cora, "/api/audit"))
        assert items(cora, "/api/audit", actor="sam", action="instruction.hold")[0][
            "object_id"] == reference
        check = ok(cora.get("/api/audit/verify"))
        assert check == {"records": oldest["total"], "intact": True, "problems": []}
        exported = cora.get("/api/audit/export")
        assert exported.status_code == 200
        records = exported.json()
        assert [r["seq"] for r in records] == list(range(1, oldest["total"] + 1))
        assert records[-1]["action"] == "instruction.cancel"
        as_csv = cora.get("/api/audit/export", params={"format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert len(rows) == oldest["total"]
        assert json.loads(rows[-1]["after"])["status"] == "CANCEL_REQUESTED"
        problem(sam.post(f"/api/settlement/instructions/{reference}/cancel"), 409,
                "instruction_not_cancellable")
        problem(sam.post(f"/api/settlement/instructions/{reference}/release"), 409,
                "instruction_not_held")
    finally:
        book.engine.dispose()


def test_the_openapi_schema_describes_these_routes(golden: Golden) -> None:
    schema = ok(golden("olga").get("/api/openapi.json"))
    for path in ("/api/positions", "/api/cash", "/api/prices", "/api/accounts",
                 "/api/accounts/{account}", "/api/accounts/{account}/lots",
                 "/api/accounts/{account}/activity", "/api/instruments",
                 "/api/instruments/{isin}", "/api/inventory", "/api/reports",
                 "/api/reports/{name}", "/api/settlement/obligations",
                 "/api/settlement/instructions", "/api/settlement/instructions/{reference}",
                 "/api/settlement/fails", "/api/settlement/penalties",
                 "/api/settlement/instructions/{reference}/cancel", "/api/audit",
                 "/api/audit/export", "/api/audit/verify"):
        assert path in schema["paths"], path
