"""The acting side of the REST API, on SQLite and PostgreSQL: the exception queue, breaks,
corporate actions with four eyes, users and four-eyes approvals.

The book: the golden scenario (../shared/scenarios/basic) with an ``ssis.csv`` added, so its
trades are instructed and, never confirmed, fail (end of day through 2024-06-06); one more
trades.csv row cancelling C02's T003 as C01's (rejected: it names both accounts); PKO's
July 2024 dividend announced by MT564 (test_ca_desk.mt564: C01 holds 500, C02 300); and a
KDPW positions statement of a week ago claiming 999 PKO we do not have (a break).

Desks: "warsaw" has C01, "berlin" C02. People: alice and bob (operations, firm-wide), dora
(operations, warsaw), admin1 and admin2 (administrators).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import zaplecze_in_process
from test_ca_desk import EVENT, LATE_TRADE, TRADE_HEADER, mt564
from zaplecze.bootstrap import Book, open_book
from zaplecze.interfaces.web.app import create_app
from zaplecze.services import audit_trail, identity
from zaplecze.services.audit_trail import Actor
from zaplecze.store.db import read_connection

PASSWORD = "correct horse battery"
SSIS = """counterparty,market,currency,place_of_settlement,counterparty_bic,\
counterparty_account,safekeeping_account,payment,netting
STREET,*,USD,DTCYUS33XXX,DTCCUS3NXXX,DTC-0001,ZAP-US-01,DVP,GROSS
KDPWCCP,XWAR,PLN,KDPWPLPWXXX,KDPCPLPWXXX,CCP-01,ZAP-001,DVP,NET
"""
# T003 is C02's: cancelling it as C01's is refused, naming both accounts.
MISMATCH = "T003,CANCEL,C01,US67066G1040,BUY,5,1224.40,USD,2024-06-06,XNAS,STREET,,"
USERS = {"alice": (["operations"], ""), "bob": (["operations"], ""),
         "dora": (["operations"], "warsaw"), "admin1": (["administrator"], ""),
         "admin2": (["administrator"], ""), "carol": (["settlement"], "")}


@dataclass
class Bench:
    book: Book
    folder: Path
    statement_date: dt.date
    clients: dict[str, TestClient]

    def __call__(self, username: str) -> TestClient:
        return self.clients[username]

    def cli(self, *args: str) -> None:
        done = zaplecze_in_process(self.book.url, *args)
        assert done.returncode in (0, 1), done

    def load_trades(self, *lines: str) -> None:
        more = self.folder / f"more-{len(list(self.folder.iterdir()))}"
        more.mkdir()
        (more / "trades.csv").write_text("\n".join((TRADE_HEADER, *lines)) + "\n",
                                         encoding="utf-8")
        self.cli("load", str(more))

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        with read_connection(self.book.engine) as connection:
            return [tuple(row) for row in connection.exec_driver_sql(query)]

    def audit(self, object_id: str) -> list[dict[str, Any]]:
        rows = self.sql("SELECT seq, actor, action, object_type, object_id, before, after "
                        "FROM audit_trail ORDER BY seq")
        return [{"actor": r[1], "action": r[2], "object_type": r[3], "before": json.loads(r[5]),
                 "after": json.loads(r[6])} for r in rows if r[4] == object_id]


def log_in(app: Any, book: Book, username: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver")
    with read_connection(book.engine) as connection:
        user = identity.get_user(connection, username)
    assert user is not None
    answer = client.post("/api/session", json={
        "username": username, "password": PASSWORD, "code": identity.totp_code(user.totp_secret)})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


@pytest.fixture
def bench(book_url: str, golden_folder: Path, tmp_path: Path) -> Iterator[Bench]:
    book = open_book(book_url, create=True)
    folder = tmp_path / "inputs"
    folder.mkdir()
    (golden_folder / "ssis.csv").write_text(SSIS, encoding="utf-8")
    statement_date = dt.date.today() - dt.timedelta(days=7)
    bench = Bench(book, folder, statement_date, {})
    bench.cli("load", str(golden_folder))
    bench.load_trades(MISMATCH)
    bench.cli("eod", "--through", "2024-06-06")
    notice = folder / "pko.fin"
    notice.write_text(mt564(EVENT, "SEME1"), encoding="latin-1")
    bench.cli("ca", "announce", str(notice), "--by", "system")
    statement = folder / "kdpw.csv"
    statement.write_text("date,safekeeping_account,isin,quantity\n"
                         f"{statement_date},ZAP-001,PLPKO0000016,999\n", encoding="utf-8")
    bench.cli("recon", "positions", str(statement), "--by", "system", "--date",
              statement_date.isoformat())
    admin = Actor("admin", "test")
    for username, (roles, desk) in USERS.items():
        identity.add_user(book.engine, admin, username, PASSWORD, roles, desk=desk)
    identity.assign_desk(book.engine, admin, "warsaw", ["C01"])
    identity.assign_desk(book.engine, admin, "berlin", ["C02"])
    app = create_app(book)
    bench.clients = {name: log_in(app, book, name) for name in USERS}
    try:
        yield bench
    finally:
        for client in bench.clients.values():
            client.close()
        book.engine.dispose()


def queue(client: TestClient, **query: str) -> list[dict[str, Any]]:
    answer = client.get("/api/exceptions", params={"limit": "1000", **query})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == len(body["items"])
    return list(body["items"])


def prepare(bench: Bench, who: str = "alice") -> dict[str, Any]:
    answer = bench(who).post(f"/api/corporate-actions/{EVENT}/prepare")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = dict(answer.json())
    assert body["code"] == code, body
    return body


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_lists_every_kind_with_its_age(bench: Bench) -> None:
    prepare(bench)
    items = queue(bench("alice"))
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)
    assert set(by_kind) == {"fail", "break", "rejected", "ca"}
    # Oldest first: the fails of June 2024 lead, ages in business days.
    assert [i["since"] for i in items] == sorted(i["since"] for i in items)
    assert items[0]["kind"] == "fail"
    fails = {row["reference"]: row for row in json.loads(zaplecze_in_process(
        bench.book.url, "report", "fails", "--as-of", dt.date.today().isoformat(),
        "--format", "json").stdout)}
    assert {i["key"] for i in by_kind["fail"]} == {f"fail:{ref}" for ref in fails}
    for item in by_kind["fail"]:
        assert item["age_days"] == int(fails[item["links"]["reference"]]["age_days"]) > 300
    (brk,) = by_kind["break"]
    assert brk["since"] == bench.statement_date.isoformat()
    assert 3 <= brk["age_days"] <= 5  # a week of calendar days: five weekdays, less holidays
    assert brk["key"] == f"break:{brk['links']['break_id']}"
    assert brk["status"] == "open" and brk["owner"] == ""
    (event,) = by_kind["ca"]
    assert (event["key"], event["links"]["event_id"], event["age_days"]) == (
        f"ca:{EVENT}", EVENT, 0)
    assert "alice" in event["detail"]
    reasons = sorted(i["links"]["reason"] for i in by_kind["rejected"])
    assert reasons == ["cancel_account_mismatch", "insufficient_settled_cash", "invalid_isin"]
    # The filters.
    assert {i["kind"] for i in queue(bench("alice"), kind="break")} == {"break"}
    assert queue(bench("alice"), owner="me") == []
    assert queue(bench("alice"), status="resolved") == []
    newest = bench("alice").get("/api/exceptions", params={"order": "desc", "limit": "1"})
    assert newest.json()["items"][0]["since"] == items[-1]["since"]
    problem(bench("alice").get("/api/exceptions", params={"sort": "nope"}), 400,
            "invalid_request")
    problem(bench("alice").get("/api/exceptions", params={"kind": "nope"}), 400,
            "invalid_request")
    # Roles decide: an administrator has no exceptions:read.
    problem(bench("admin1").get("/api/exceptions"), 403, "forbidden")


def test_assign_comment_and_resolve_are_audited(bench: Bench) -> None:
    prepare(bench)
    alice = bench("alice")
    items = {item["kind"]: item for item in queue(alice)}  # one of each kind
    for kind, item in items.items():
        key = item["key"]
        done = alice.post(f"/api/exceptions/{key}/assign", json={"owner": "me"})
        assert done.status_code == 200, done.text
        assert done.json()["owner"] == "alice"
        done = alice.post(f"/api/exceptions/{key}/comment", json={"text": f"looking at {kind}"})
        assert done.status_code == 200, done.text
        assert done.json()["comments"] == 1
        assert [(c["author"], c["text"]) for c in done.json()["comment_list"]] == [
            ("alice", f"looking at {kind}")]
        code = "resolution_reason_required"
        problem(alice.post(f"/api/exceptions/{key}/resolve", json={"reason": " "}), 400, code)
        problem(alice.post(f"/api/exceptions/{key}/resolve", json={}), 400, "invalid_request")
        done = alice.post(f"/api/exceptions/{key}/resolve", json={"reason": "dealt with"})
        assert done.status_code == 200, done.text
        assert (done.json()["status"], done.json()["resolution_reason"]) == (
            "resolved", "dealt with")
        again = alice.post(f"/api/exceptions/{key}/resolve", json={"reason": "twice"})
        assert again.status_code == 409, again.text
        # Audited, before and after, by alice.
        object_id = item["links"]["break_id"] if kind == "break" else key
        trail = [(r["action"], r["before"], r["after"]) for r in bench.audit(object_id)
                 if r["actor"] == "alice"]
        verb = "break" if kind == "break" else "exception"
        assert [action for action, _, _ in trail] == [
            f"{verb}.assign", f"{verb}.comment", f"{verb}.resolve"], trail
        assert (trail[0][1]["owner"], trail[0][2]["owner"]) == ("", "alice")
        assert trail[1][2]["comments"] == 1 and trail[1][2]["text"] == f"looking at {kind}"
        assert trail[2][1]["status"].lower() == "open"
        assert trail[2][2]["status"].lower() == "resolved"
        assert trail[2][2]["resolution_reason"] == "dealt with"
    # Resolved items leave the queue and stay resolved.
    remaining = {item["key"] for item in queue(alice)}
    assert not remaining & {item["key"] for item in items.values()}
    resolved = queue(alice, status="resolved")
    assert {item["key"] for item in resolved} == {item["key"] for item in items.values()}
    assert {item["owner"] for item in resolved} == {"alice"}
    # The break's own record is the one truth: the breaks API shows the same.
    break_id = items["break"]["links"]["break_id"]
    detail = alice.get(f"/api/breaks/{break_id}").json()
    assert (detail["status"], detail["owner"], detail["resolution_reason"]) == (
        "RESOLVED", "alice", "dealt with")
    assert [e["what"] for e in detail["events"]] == ["opened", "assigned", "commented",
                                                     "resolved"]
    assert audit_trail.verify(bench.book.engine).problems == []


def test_breaks_through_their_own_routes(bench: Bench) -> None:
    carol = bench("carol")
    listing = carol.get("/api/breaks", params={"status": "OPEN"}).json()
    (row,) = listing["items"]
    assert (row["kind"], row["ours"], row["theirs"], row["difference"]) == (
        "MISSING_AT_US", "0", "999", "-999")
    break_id = row["break_id"]
    done = carol.post(f"/api/breaks/{break_id}/assign", json={"owner": "bob"})
    assert done.json()["owner"] == "bob"
    problem(carol.post(f"/api/breaks/{break_id}/assign", json={"owner": "nobody"}), 400,
            "unknown_owner")
    assert carol.post(f"/api/breaks/{break_id}/investigate").json()["status"] == \
        "INVESTIGATING"
    assert carol.get("/api/breaks", params={"owner": "bob"}).json()["total"] == 1
    assert bench("bob").get("/api/breaks", params={"owner": "me"}).json()["total"] == 1
    done = carol.post(f"/api/breaks/{break_id}/comment", json={"text": "KDPW asked"})
    assert [c["text"] for c in done.json()["comment_list"]] == ["KDPW asked"]
    problem(carol.post(f"/api/breaks/{break_id}/resolve", json={"reason": ""}), 400,
            "resolution_reason_required")
    done = carol.post(f"/api/breaks/{break_id}/resolve", json={"reason": "their error"})
    assert done.json()["status"] == "RESOLVED"
    problem(carol.post(f"/api/breaks/{break_id}/assign", json={"owner": "me"}), 409,
            "break_already_resolved")
    assert [r["action"] for r in bench.audit(break_id)] == [
        "break.assign", "break.investigate", "break.comment", "break.resolve"]
    # Reading is breaks:read; acting is breaks:write (an auditor-less book: admin has neither).
    problem(bench("admin1").get("/api/breaks"), 403, "forbidden")


# --- corporate actions: four eyes ---------------------------------------------------------------


def test_a_corporate_action_needs_a_second_person(bench: Bench) -> None:
    listing = bench("alice").get("/api/corporate-actions", params={"isin": "PLPKO0000016"})
    assert [row["event_id"] for row in listing.json()["items"]] == [EVENT]
    shown = prepare(bench, "alice")
    assert shown["status"] == "ENTITLEMENTS_COMPUTED" and shown["prepared_by"] == "alice"
    assert shown["payload_hash"] == shown["computed_payload_hash"]
    assert [(e["account"], e["quantity"], e["net"]) for e in shown["entitlements"]] == [
        ("C01", "500", "2215.35"), ("C02", "300", "1329.21")]
    digest = shown["computed_payload_hash"]
    # The preparer cannot approve, even with the right hash.
    problem(bench("alice").post(f"/api/corporate-actions/{EVENT}/approve",
                                json={"payload_hash": digest}), 403, "four_eyes_required")
    # C01 buys 100 more before the ex date: the entitlements shown are no longer those.
    bench.load_trades(LATE_TRADE)
    problem(bench("bob").post(f"/api/corporate-actions/{EVENT}/approve",
                              json={"payload_hash": digest}), 409, "event_not_approved")
    again = prepare(bench, "alice")
    fresh = again["computed_payload_hash"]
    assert fresh != digest and again["entitlements"][0]["quantity"] == "600"
    # Bob was shown the old entitlements: his approval of that payload is refused.
    problem(bench("bob").post(f"/api/corporate-actions/{EVENT}/approve",
                              json={"payload_hash": digest}), 409, "payload_changed")
    assert bench("bob").get(f"/api/corporate-actions/{EVENT}").json()["status"] == \
        "ENTITLEMENTS_COMPUTED"
    done = bench("bob").post(f"/api/corporate-actions/{EVENT}/approve",
                             json={"payload_hash": fresh})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["approved_by"]) == ("APPROVED", "bob")
    event = bench("alice").get(f"/api/corporate-actions/{EVENT}").json()
    assert (event["status"], event["approved_payload_hash"]) == ("APPROVED", fresh)
    assert [step["what"] for step in event["history"]] == [
        "announce", "compute", "compute", "approve"]
    assert all(item["kind"] != "ca" for item in queue(bench("alice")))
    trail = [(r["actor"], r["action"], r["before"]["status"], r["after"]["status"])
             for r in bench.audit(EVENT)]
    assert trail == [
        ("alice", "ca.compute", "ANNOUNCED", "ENTITLEMENTS_COMPUTED"),
        ("alice", "ca.compute", "ENTITLEMENTS_COMPUTED", "ENTITLEMENTS_COMPUTED"),
        ("bob", "ca.approve", "ENTITLEMENTS_COMPUTED", "APPROVED")]
    # The CLI still works on the same desk service: approved already, the same payload.
    cli = zaplecze_in_process(bench.book.url, "ca", "approve", EVENT, "--by", "bob")
    assert cli.returncode == 0 and "APPROVED by bob" in cli.stdout, cli
    # Permissions: an administrator neither prepares nor approves.
    problem(bench("admin1").post(f"/api/corporate-actions/{EVENT}/prepare"), 403, "forbidden")


# --- users and approvals ---------------------------------------------------------------------


def test_users_and_a_role_change_by_four_eyes(bench: Bench) -> None:
    admin1, admin2 = bench("admin1"), bench("admin2")
    weak = admin1.post("/api/users", json={"username": "erin", "password": "password",
                                           "roles": ["auditor"]})
    body = problem(weak, 400, "weak_password")
    assert [e["field"] for e in body["errors"]] == ["password"]
    body = problem(admin1.post("/api/users", json={"username": "erin", "password": PASSWORD,
                                                   "roles": ["wizard"]}), 400, "invalid_request")
    assert [e["field"] for e in body["errors"]] == ["roles.0"]
    made = admin1.post("/api/users", json={"username": "erin", "password": PASSWORD,
                                           "roles": ["auditor"], "display_name": "Erin"})
    assert made.status_code == 201, made.text
    assert made.json()["totp_secret"] and made.json()["otpauth_uri"].startswith("otpauth://")
    problem(admin1.post("/api/users", json={"username": "erin", "password": PASSWORD,
                                            "roles": ["auditor"]}), 409, "user_exists")
    users = {u["username"]: u for u in admin1.get("/api/users",
                                                  params={"limit": "100"}).json()["items"]}
    assert users["erin"]["roles"] == ["auditor"] and "totp_secret" not in users["erin"]
    assert users["dora"]["desk"] == "warsaw"

    asked = admin1.post("/api/users/carol/roles", json={"roles": ["settlement", "compliance"]})
    assert asked.status_code == 201, asked.text
    request_id, digest = asked.json()["request_id"], asked.json()["payload_hash"]
    assert (asked.json()["status"], asked.json()["maker"]) == ("pending", "admin1")
    problem(admin1.post(f"/api/approvals/{request_id}/approve", json={"payload_hash": digest}),
            403, "four_eyes_required")
    problem(admin2.post(f"/api/approvals/{request_id}/approve",
                        json={"payload_hash": "0" * 64}), 409, "payload_changed")
    pending = admin2.get("/api/approvals", params={"status": "pending"}).json()["items"]
    assert [p["request_id"] for p in pending] == [request_id]
    with read_connection(bench.book.engine) as connection:
        carol = identity.get_user(connection, "carol")
    assert carol is not None and carol.roles == ("settlement",)  # not applied yet
    done = admin2.post(f"/api/approvals/{request_id}/approve", json={"payload_hash": digest})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["checker"]) == ("approved", "admin2")
    users = {u["username"]: u for u in admin1.get("/api/users").json()["items"]}
    assert users["carol"]["roles"] == ["settlement", "compliance"]
    problem(admin2.post(f"/api/approvals/{request_id}/reject", json={"payload_hash": digest}),
            409, "request_already_decided")
    decided = admin1.get("/api/approvals", params={"status": "approved"}).json()["items"]
    assert [d["request_id"] for d in decided] == [request_id]
    (change,) = [r for r in bench.audit("carol") if r["action"] == "user.roles"]
    assert (change["actor"], change["before"], change["after"]) == (
        "admin2", {"roles": ["settlement"]}, {"roles": ["settlement", "compliance"]})
    # Unknown ids; and the roles of an operator do not reach users.
    problem(admin2.post("/api/approvals/nope/approve", json={"payload_hash": digest}), 404,
            "unknown_request")
    problem(admin1.post("/api/users/nobody/roles", json={"roles": ["auditor"]}), 404,
            "unknown_user")
    problem(bench("alice").get("/api/users"), 403, "forbidden")


# --- not found, and desks --------------------------------------------------------------------


def test_unknown_ids_and_other_desks_are_not_found(bench: Bench) -> None:
    prepare(bench)
    alice, dora = bench("alice"), bench("dora")
    for path in ("/api/exceptions/fail:NOPE", "/api/exceptions/rejected:999999",
                 "/api/exceptions/ca:NOPE", "/api/exceptions/break:BRK-0",
                 "/api/exceptions/bogus"):
        problem(alice.get(path), 404, "unknown_item")
    problem(alice.post("/api/exceptions/fail:NOPE/resolve", json={"reason": "x"}), 404,
            "unknown_item")
    problem(alice.get("/api/breaks/BRK-0"), 404, "unknown_break")
    problem(alice.post("/api/breaks/BRK-0/resolve", json={"reason": "x"}), 404,
            "unknown_break")
    problem(alice.get("/api/corporate-actions/NOPE"), 404, "unknown_event")
    problem(alice.post("/api/corporate-actions/NOPE/prepare"), 404, "unknown_event")

    # The rejected row naming C01 and C02 is desk data: dora (C01 only) never sees it.
    everyone = {i["links"]["reason"]: i for i in queue(alice, kind="rejected")}
    mismatch = everyone["cancel_account_mismatch"]
    mine = {i["links"]["reason"] for i in queue(dora, kind="rejected")}
    assert mine == {"insufficient_settled_cash", "invalid_isin"}  # firm-level rows
    problem(dora.get(f"/api/exceptions/{mismatch['key']}"), 404, "unknown_item")
    problem(dora.post(f"/api/exceptions/{mismatch['key']}/assign", json={"owner": "me"}), 404,
            "unknown_item")
    assert alice.get(f"/api/exceptions/{mismatch['key']}").status_code == 200
    # Entitlements per account are desk data too; the event itself and its hash are not.
    shown = dora.get(f"/api/corporate-actions/{EVENT}").json()
    assert [e["account"] for e in shown["entitlements"]] == ["C01"]
    assert shown["payload_hash"] == alice.get(
        f"/api/corporate-actions/{EVENT}").json()["payload_hash"]
    # Fails, breaks and events are firm-level: dora sees them as alice does.
    assert {i["key"] for i in queue(dora) if i["kind"] != "rejected"} == {
        i["key"] for i in queue(alice) if i["kind"] != "rejected"}
