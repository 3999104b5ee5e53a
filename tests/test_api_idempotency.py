"""Capturing a trade through the API is safe to retry: with an Idempotency-Key (sequentially and
100 at once against a real server) and without one (by trade id and content), on SQLite and
PostgreSQL, on a copy of the demo book."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

pytest.register_assert_rewrite("web_support")
from web_support import api_token, bearer, client_for, live_server, web_app  # noqa: E402

pytest_plugins = ("web_support",)

ATTEMPTS = 100


def trade(trade_id: str, account: str, quantity: str = "10") -> dict[str, str]:
    return {"trade_id": trade_id, "account": account, "isin": "PLPKO0000016", "side": "BUY",
            "quantity": quantity, "price": "55.10", "currency": "PLN",
            "trade_date": "2024-10-01"}


def booked(book: Any, trade_id: str) -> tuple[int, int, int]:
    """(trade rows, journal entries, audit records) of ``trade_id``."""
    m = "%s" if book.engine.dialect.name == "postgresql" else "?"
    with book.engine.connect() as connection:
        def count(sql: str) -> int:
            return int(connection.exec_driver_sql(sql, (trade_id,)).scalar() or 0)

        return (count(f"SELECT COUNT(*) FROM trades WHERE trade_id = {m}"),
                count(f"SELECT COUNT(*) FROM entries WHERE entry_key = 'trade:' || {m}"),
                count("SELECT COUNT(*) FROM audit_trail WHERE object_type = 'trade' AND "
                      f"action = 'trade.capture' AND object_id = {m}"))


@pytest.fixture
def ops(demo_book: Any) -> tuple[Any, Any, dict[str, str]]:
    """(book, TestClient, headers with ops1's API token)."""
    return demo_book, client_for(web_app(demo_book)), bearer(api_token(demo_book.engine, "ops1"))


def test_one_key_100_times_books_once(ops: tuple[Any, Any, dict[str, str]],
                                      demo_template: Any) -> None:
    book, client, headers = ops
    body = trade("IDEM-SEQ-1", demo_template.ids.waw_account)
    answers = [client.post("/api/trades", json=body,
                           headers={**headers, "Idempotency-Key": "seq-key-1"})
               for _ in range(ATTEMPTS)]
    assert answers[0].status_code == 201, answers[0].text
    first = answers[0].json()
    assert first["trade_id"] == "IDEM-SEQ-1" and first["quantity"] == "10"
    assert first["source"] == "api" and first["gross"] == "551.00"
    assert all(a.status_code in (200, 201) for a in answers), Counter(
        a.status_code for a in answers)
    assert all(a.json() == first for a in answers)
    assert booked(book, "IDEM-SEQ-1") == (1, 1, 1)
    listed = client.get("/api/trades", params={"account": demo_template.ids.waw_account,
                                               "trade_date_from": "2024-10-01"},
                        headers=headers).json()
    assert [t["trade_id"] for t in listed["items"]].count("IDEM-SEQ-1") == 1


def test_a_replayed_key_answers_200_with_the_first_body(
        ops: tuple[Any, Any, dict[str, str]], demo_template: Any) -> None:
    """The first answer is 201 Created; its retries are 200 with the same body (as the
    operation's documented 200 says: "the same Idempotency-Key and body")."""
    _, client, headers = ops
    body = trade("IDEM-SEQ-2", demo_template.ids.waw_account)
    statuses = [client.post("/api/trades", json=body,
                            headers={**headers, "Idempotency-Key": "seq-key-2"}).status_code
                for _ in range(3)]
    assert statuses == [201, 200, 200]


def test_one_key_with_another_body_is_409(ops: tuple[Any, Any, dict[str, str]],
                                          demo_template: Any) -> None:
    book, client, headers = ops
    account = demo_template.ids.waw_account
    key = {**headers, "Idempotency-Key": "key-reused"}
    assert client.post("/api/trades", json=trade("IDEM-K-1", account),
                       headers=key).status_code == 201
    for other in (trade("IDEM-K-1", account, quantity="11"), trade("IDEM-K-2", account)):
        answer = client.post("/api/trades", json=other, headers=key)
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "idempotency_key_reused"
    assert booked(book, "IDEM-K-1") == (1, 1, 1)
    assert booked(book, "IDEM-K-2") == (0, 0, 0)


def test_without_a_key_the_trade_id_decides(ops: tuple[Any, Any, dict[str, str]],
                                            demo_template: Any) -> None:
    book, client, headers = ops
    account = demo_template.ids.waw_account
    first = client.post("/api/trades", json=trade("IDEM-ID-1", account), headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/api/trades", json=trade("IDEM-ID-1", account), headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    changed = client.post("/api/trades", json=trade("IDEM-ID-1", account, quantity="11"),
                          headers=headers)
    assert changed.status_code == 409, changed.text
    assert changed.json()["code"] == "conflicting_duplicate_id"
    assert booked(book, "IDEM-ID-1") == (1, 1, 1)
    got = client.get("/api/trades/IDEM-ID-1", headers=headers)
    assert got.status_code == 200 and got.json()["quantity"] == "10"


def test_cancel_twice_reverses_once(ops: tuple[Any, Any, dict[str, str]],
                                    demo_template: Any) -> None:
    book, client, headers = ops
    trade_id = demo_template.ids.waw_pending_trade
    key = {**headers, "Idempotency-Key": "cancel-1"}
    body = {"cancel_date": demo_template.ids.last_day.isoformat()}
    first = client.post(f"/api/trades/{trade_id}/cancel", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "cancelled"
    again = client.post(f"/api/trades/{trade_id}/cancel", json=body, headers=key)
    assert again.status_code in (200, 201) and again.json() == first.json()
    plain = client.post(f"/api/trades/{trade_id}/cancel", json=body, headers=headers)
    assert plain.status_code == 200, plain.text
    assert plain.json()["status"] == "cancelled"
    m = "%s" if book.engine.dialect.name == "postgresql" else "?"
    with book.engine.connect() as connection:
        voids = connection.exec_driver_sql(
            f"SELECT COUNT(*) FROM entries WHERE entry_key = 'void:trade:' || {m}",
            (trade_id,)).scalar()
    assert voids == 1


def _at_once(url: str, headers: dict[str, str], body: dict[str, str]) -> list[httpx.Response]:
    start = threading.Barrier(ATTEMPTS)
    with httpx.Client(base_url=url, timeout=120,
                      limits=httpx.Limits(max_connections=ATTEMPTS)) as http:
        def post(_: int) -> httpx.Response:
            start.wait()
            return http.post("/api/trades", json=body, headers=headers)

        with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
            return list(pool.map(post, range(ATTEMPTS)))


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_100_concurrent_posts_book_once(demo_book: Any, demo_template: Any,
                                        with_key: bool) -> None:
    book = demo_book
    headers = bearer(api_token(book.engine, "ops1"))
    if with_key:
        headers["Idempotency-Key"] = "concurrent-key"
    trade_id = f"IDEM-CONC-{'K' if with_key else 'N'}"
    with live_server(web_app(book)) as url:
        answers = _at_once(url, headers, trade(trade_id, demo_template.ids.waw_account))
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 201}, (statuses, [a.text for a in answers
                                                    if a.status_code not in (200, 201)][:3])
    if not with_key:
        assert statuses[201] == 1, statuses
    else:
        assert statuses[201] >= 1, statuses
    bodies = {a.text for a in answers}
    assert len({tuple(sorted(a.json().items())) for a in answers}) == 1, list(bodies)[:2]
    assert booked(book, trade_id) == (1, 1, 1)
