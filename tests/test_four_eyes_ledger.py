"""Manual adjustments and reversals, four eyes, through the API, on SQLite and PostgreSQL.

Over the golden book (C01 deposits 50,000.00 PLN on 2024-06-03): a correction of 12.34 PLN from
suspense:corrections to C01 is requested by accountant ann, refused to ann, approved by bob with
the hash he was shown; C01's cash as of 2024-06-03 is then 50,012.34 PLN, the trial balance still
balances, the journal's hash chain verifies, the audit trail names both people. Its reversal
(again four eyes) brings C01 back to exactly 50,000.00; a second reversal and the reversal of a
trade entry are refused; unbalanced postings, an amount finer than the currency's minor unit and
an unknown asset are refused when requested, with the field's problem code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from zaplecze.bootstrap import open_book
from zaplecze.interfaces.web.app import create_app
from zaplecze.services import audit, audit_trail, identity
from zaplecze.services.audit_trail import Actor
from zaplecze.services.load import Loader
from zaplecze.services.reporting import build

PASSWORD = "correct horse battery"
DAY = dt.date(2024, 6, 3)
ADJUSTMENT = {"business_date": "2024-06-03", "memo": "deposit short-credited by the bank",
              "account": "C01",
              "postings": [{"gl_account": "client:C01", "asset": "PLN", "amount": "12.34"},
                           {"gl_account": "suspense:corrections", "asset": "PLN",
                            "amount": "-12.34"}]}


def _client(app: Any, secret: str, username: str) -> TestClient:
    client = TestClient(app, base_url="https://testserver")
    answer = client.post("/api/session", json={
        "username": username, "password": PASSWORD, "code": identity.totp_code(secret)})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


@pytest.fixture
def desk(book_url: str, golden_folder: Path) -> dict[str, Any]:
    book = open_book(book_url, create=True)
    Loader(book.engine, book.calendar()).load(golden_folder)
    admin = Actor("admin", "test")
    ann = identity.add_user(book.engine, admin, "ann", PASSWORD, ["accounting"])
    bob = identity.add_user(book.engine, admin, "bob", PASSWORD, ["accounting"])
    app = create_app(book)
    return {"book": book, "ann": _client(app, ann.totp_secret, "ann"),
            "bob": _client(app, bob.totp_secret, "bob")}


def _cash(book: Any, account: str, currency: str) -> Decimal:
    rows = build(book.engine, "cash", as_of=DAY, basis="trade")
    return sum((Decimal(r["balance"]) for r in rows
                if r["account"] == account and r["currency"] == currency), Decimal(0))


def _decide(client: TestClient, made: dict[str, Any], hash_: str | None = None) -> Any:
    return client.post(f"/api/approvals/{made['request_id']}/approve",
                       json={"payload_hash": hash_ or made["payload_hash"]})


def test_an_adjustment_books_only_when_a_second_person_approves_it(desk: dict[str, Any]) -> None:
    book, ann, bob = desk["book"], desk["ann"], desk["bob"]
    before = _cash(book, "C01", "PLN")
    assert before == Decimal("50000.00")
    made = ann.post("/api/adjustments", json=ADJUSTMENT)
    assert made.status_code == 202, made.text
    request = made.json()
    assert request["status"] == "pending" and request["maker"] == "ann"
    assert _cash(book, "C01", "PLN") == before  # a request books nothing

    refused = _decide(ann, request)
    assert refused.status_code == 403 and refused.json()["code"] == "four_eyes_required"
    stale = _decide(bob, request, "0" * 64)
    assert stale.status_code == 409 and stale.json()["code"] == "payload_changed"
    assert _cash(book, "C01", "PLN") == before

    approved = _decide(bob, request)
    assert approved.status_code == 200, approved.text
    assert _cash(book, "C01", "PLN") == Decimal("50012.34")
    again = _decide(bob, request)
    assert again.status_code == 409 and again.json()["code"] == "request_already_decided"

    trial = build(book.engine, "trial-balance", as_of=DAY)
    pln = [r for r in trial if r["currency"] == "PLN"]
    assert sum(Decimal(r["debit"]) for r in pln) == sum(Decimal(r["credit"]) for r in pln)
    assert audit.verify(book.engine).problems == []
    check = audit_trail.verify(book.engine)
    assert check.problems == [] and check.records > 0
    with book.engine.connect() as connection:
        trail, _ = audit_trail.page(connection, limit=50, offset=0)
    done = [r for r in trail if r["action"] == "ledger.adjustment"]
    assert len(done) == 1 and done[0]["actor"] == "bob"
    assert any(r["action"] == "approval.request" and r["actor"] == "ann" for r in trail)


def test_a_reversal_restores_the_account_exactly_and_only_once(desk: dict[str, Any]) -> None:
    book, ann, bob = desk["book"], desk["ann"], desk["bob"]
    assert _decide(bob, ann.post("/api/adjustments", json=ADJUSTMENT).json()).status_code == 200
    with book.engine.connect() as connection:
        key = connection.exec_driver_sql(
            "SELECT entry_key FROM entries WHERE kind = 'ADJUSTMENT'").scalar()
    reverse = {"entry_key": key, "business_date": "2024-06-03", "reason": "booked twice"}
    made = bob.post("/api/reversals", json=reverse)
    assert made.status_code == 202, made.text
    assert _cash(book, "C01", "PLN") == Decimal("50012.34")
    assert _decide(ann, made.json()).status_code == 200
    assert _cash(book, "C01", "PLN") == Decimal("50000.00")

    twice = bob.post("/api/reversals", json=reverse)
    assert twice.status_code == 409 and twice.json()["code"] == "entry_already_reversed"
    trade = bob.post("/api/reversals", json={**reverse, "entry_key": "trade:T001"})
    assert trade.status_code == 400 and trade.json()["code"] == "entry_not_reversible"
    unknown = bob.post("/api/reversals", json={**reverse, "entry_key": "adjustment:nope"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_entry"
    assert audit.verify(book.engine).problems == []


@pytest.mark.parametrize(("change", "code"), [
    ({"postings": [{"gl_account": "client:C01", "asset": "PLN", "amount": "12.34"},
                   {"gl_account": "suspense:corrections", "asset": "PLN", "amount": "-12.30"}]},
     "unbalanced_entry"),
    ({"postings": [{"gl_account": "client:C01", "asset": "PLN", "amount": "0.001"},
                   {"gl_account": "suspense:corrections", "asset": "PLN", "amount": "-0.001"}]},
     "invalid_amount"),
    ({"postings": [{"gl_account": "client:C01", "asset": "XXY", "amount": "1"},
                   {"gl_account": "suspense:corrections", "asset": "XXY", "amount": "-1"}]},
     "unknown_asset"),
    ({"postings": [{"gl_account": "nowhere", "asset": "PLN", "amount": "1"},
                   {"gl_account": "suspense:corrections", "asset": "PLN", "amount": "-1"}]},
     "unknown_gl_account"),
])
def test_a_bad_adjustment_is_refused_when_requested(desk: dict[str, Any],
                                                    change: dict[str, Any], code: str) -> None:
    answer = desk["ann"].post("/api/adjustments", json={**ADJUSTMENT, **change})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    with desk["book"].engine.connect() as connection:
        assert connection.exec_driver_sql(
            "SELECT COUNT(*) FROM approval_requests").scalar() == 0
