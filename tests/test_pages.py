"""The workbench's server-rendered pages, server side (TestClient; the browser tests are
elsewhere): logging in and out, what each role sees, refusals shown as pages, languages, CSRF,
the idle timeout, and the exception queue and four-eyes approval on the demo book."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import format_decimal

from zaplecze.bootstrap import open_book
from zaplecze.interfaces.web.app import create_app
from zaplecze.interfaces.web.i18n import LANGUAGES, Formats, translations
from zaplecze.interfaces.web.pages.base import TEMPLATES
from zaplecze.interfaces.web.policy import POLICY
from zaplecze.interfaces.web.settings import WebSettings
from zaplecze.services import identity
from zaplecze.services.audit_trail import Actor
from zaplecze.services.load import Loader

pytest_plugins = ("web_support",)  # demo_book; imported by pytest (assertion rewriting)
BASE_URL = "https://testserver"  # the session cookie is Secure


def fresh_code(engine: Any, username: str, now: dt.datetime | None = None) -> str:
    from web_support import fresh_code as code

    return str(code(engine, username, now))

PASSWORD = "correct horse battery"
ADMIN = Actor("admin", "test")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def golden_book(book_url: str, golden_folder: Path) -> Any:
    book = open_book(book_url, create=True)
    Loader(book.engine, book.calendar()).load(golden_folder)
    identity.add_user(book.engine, ADMIN, "alice", PASSWORD, ["operations"], desk="")
    identity.add_user(book.engine, ADMIN, "fred", PASSWORD, ["front_office"], desk="")
    try:
        yield book
    finally:
        book.engine.dispose()


def client(book: Any, settings: WebSettings | None = None) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(book, settings), base_url=BASE_URL, follow_redirects=False)


LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def login_form(web: Any, **fields: str) -> Any:
    """POST /login as a browser does: the form's own login-CSRF token, from GET /login."""
    found = LOGIN_CSRF.search(web.get("/login").text)
    assert found, "the login form carries no login-CSRF token"
    return web.post("/login", data={**fields, "login_csrf": found.group(1)})


def log_in(web: Any, book: Any, username: str, now: dt.datetime | None = None,
           next_path: str = "/") -> Any:
    answer = login_form(web, username=username, password=PASSWORD,
                        code=fresh_code(book.engine, username, now), next=next_path)
    assert answer.status_code == 303, answer.text
    return answer


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def count_testid(html: str, name: str) -> int:
    return html.count(f'data-testid="{name}"')


def figure(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert found, f"no {testid} on the page"
    return found.group(1)


# --- logging in and out --------------------------------------------------------------------

def test_login_page_renders(golden_book: Any) -> None:
    page = client(golden_book).get("/login")
    assert page.status_code == 200
    for testid in ("login-username", "login-password", "login-code", "login-submit"):
        assert count_testid(page.text, testid) == 1
    assert count_testid(page.text, "login-error") == 0


def test_a_wrong_code_shows_the_error(golden_book: Any) -> None:
    web = client(golden_book)
    good = fresh_code(golden_book.engine, "alice")
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    page = login_form(web, username="alice", password=PASSWORD, code=wrong)
    assert page.status_code == 401
    assert count_testid(page.text, "login-error") == 1
    assert "The user name, password or code is not right." in page.text
    assert "zaplecze_session" not in page.headers.get("set-cookie", "")
    # a code that is not six digits is an error beside its field, not a login attempt
    page = login_form(web, username="alice", password=PASSWORD, code="12")
    assert page.status_code == 400 and count_testid(page.text, "login-error-code") == 1
    # a login form from elsewhere (no login-CSRF token of ours) is refused before any check
    page = web.post("/login", data={"username": "alice", "password": PASSWORD, "code": good})
    assert page.status_code == 403 and "did not come from this site" in page.text


def test_login_then_the_dashboard_shows_the_day(golden_book: Any) -> None:
    web = client(golden_book)
    answer = log_in(web, golden_book, "alice")
    assert answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert "zaplecze_session=" in cookie and "HttpOnly" in cookie and "Secure" in cookie
    page = web.get("/?as_of=2024-06-05")
    assert page.status_code == 200
    html = page.text
    assert count_testid(html, "dashboard") == 1
    # golden trades of 2024-06-05: T003, T019, T021; T010 (XNYS, 06-04) settles on 06-05
    assert figure(html, "booked-count") == "3"
    booked = html.split('data-testid="booked-trades"')[1].split("</table>")[0]
    assert all(f'data-trade-id="{t}"' in booked for t in ("T003", "T019", "T021"))
    assert figure(html, "settling-count") == "1"
    settling = html.split('data-testid="settling-trades"')[1].split("</table>")[0]
    assert 'data-trade-id="T010"' in settling
    for section in ("fails", "breaks-by-age", "penalties", "cash-ladder"):
        assert count_testid(html, section) == 1, section
    assert figure(html, "fails-count") == "0" and figure(html, "breaks-count") == "0"
    # the header: who, roles, desk, language switch, logout; the navigation of the role
    assert figure(html, "user") == "alice" and "operations" in figure(html, "user-roles")
    assert count_testid(html, "language-switch") == 1 and count_testid(html, "logout") == 1
    assert count_testid(html, "nav-trades") == 1 and count_testid(html, "nav-audit") == 0
    assert 'hx-headers=' in html and csrf_of(html) in html.split("<body", 1)[1][:300]
    # the default day: the book's last day with activity (its last trade date)
    assert 'data-as-of="2024-09-06"' in web.get("/").text


def test_a_page_without_a_session_redirects_to_login(golden_book: Any) -> None:
    web = client(golden_book)
    answer = web.get("/trades?account=C01")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/trades%3Faccount%3DC01"
    assert web.get("/trades", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith(
        "/login?next=")
    api = web.get("/api/trades")  # the API keeps its problem+json
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    # logging in comes back to where the user was going; only to a path of this site
    assert log_in(web, golden_book, "alice", next_path="/trades?account=C01").headers[
        "location"] == "/trades?account=C01"
    web.cookies.clear()
    assert log_in(web, golden_book, "alice", next_path="//evil.example/").headers[
        "location"] == "/"


def test_logout_ends_the_session_on_the_server(golden_book: Any) -> None:
    web = client(golden_book)
    token = log_in(web, golden_book, "alice").cookies["zaplecze_session"]
    html = web.get("/").text
    answer = web.post("/logout", data={"csrf_token": csrf_of(html)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert identity.session(golden_book.engine, token) is None
    assert web.get("/").status_code == 303


# --- roles ---------------------------------------------------------------------------------

def test_the_front_office_sees_its_inventory_only(golden_book: Any) -> None:
    web = client(golden_book)
    log_in(web, golden_book, "fred")
    landing = web.get("/")
    assert landing.status_code == 303 and landing.headers["location"] == "/inventory"
    for path in ("/exceptions", "/trades", "/audit", "/corporate-actions"):
        refused = web.get(path)
        assert refused.status_code == 403, path
        assert count_testid(refused.text, "not-allowed") == 1
        assert refused.headers["content-type"].startswith("text/html")
    page = web.get("/inventory?as_of=2024-06-28")
    assert page.status_code == 200
    html = page.text
    assert count_testid(html, "nav-inventory") == 1 and count_testid(html, "nav-trades") == 0
    row = html.split('data-isin="PLOPTTC00011"')[1].split("</tr>")[0]
    assert ">1,000<" in row and ">70<" in row  # house and clients
    assert "128,935.00" in row  # 1,070 × the last close of 2024-06-28, 120.50
    assert count_testid(html, "assign-to-me") == 0 and count_testid(html, "approve") == 0


def test_another_desks_account_is_not_found(golden_book: Any) -> None:
    identity.assign_desk(golden_book.engine, ADMIN, "WAW", ["C01"])
    identity.add_user(golden_book.engine, ADMIN, "wanda", PASSWORD, ["operations"], desk="WAW")
    web = client(golden_book)
    log_in(web, golden_book, "wanda")
    assert web.get("/accounts/C01?as_of=2024-06-07").status_code == 200
    for path in ("/accounts/C02", "/accounts/NOPE"):
        missing = web.get(path)
        assert missing.status_code == 404 and count_testid(missing.text, "error-page") == 1
    listed = web.get("/accounts").text
    assert 'data-account="C01"' in listed and 'data-account="C02"' not in listed


def test_an_account_page_shows_positions_cash_lots_and_documents(golden_book: Any) -> None:
    web = client(golden_book)
    log_in(web, golden_book, "alice")
    html = web.get("/accounts/C01?as_of=2024-06-07").text
    # expected/positions-trade-2024-06-07.json and cash-trade-2024-06-07.json of the scenario
    position = html.split('data-testid="position-row" data-isin="PLPKO0000016"')[1]
    assert ">500<" in position.split("</tr>")[0] and "29,173.33" in position.split("</tr>")[0]
    assert "12,299.74" in html.split('data-currency="PLN"')[1].split("</tr>")[0]
    assert count_testid(html, "lot-row") >= 3 and count_testid(html, "trade-row") >= 1
    assert "/api/reports/positions?format=csv&amp;account=C01" in html


# --- languages -----------------------------------------------------------------------------

def test_polish_labels_with_lang_pl(golden_book: Any) -> None:
    web = client(golden_book)
    log_in(web, golden_book, "alice")
    page = web.get("/?lang=pl&as_of=2024-06-05")
    assert 'lang="pl"' in page.text
    for label in ("Pulpit", "Transakcje", "Wyloguj", "Zaksięgowane transakcje"):
        assert label in page.text, label
    assert "zaplecze_lang=pl" in page.headers["set-cookie"]
    remembered = web.get("/accounts/C01?as_of=2024-06-07").text  # the cookie keeps it
    assert "Pozycje" in remembered
    polish = format_decimal(Decimal("29173.33"), format="#,##0.00", locale="pl_PL")
    assert polish in remembered and "29,173.33" not in remembered
    assert "7 cze 2024" in remembered  # the date, by the locale
    english = web.get("/?lang=en").text
    assert "Dashboard" in english and "Pulpit" not in english


def test_the_language_follows_accept_language(golden_book: Any) -> None:
    page = client(golden_book).get("/login", headers={"Accept-Language": "pl-PL,pl;q=0.9"})
    assert "Zaloguj się" in page.text
    page = client(golden_book).get("/login", headers={"Accept-Language": "de, en;q=0.5"})
    assert "Log in" in page.text


def test_numbers_are_exact_in_both_languages() -> None:
    assert Formats("en").number("1234567.100") == "1,234,567.100"
    assert Formats("pl").number(Decimal("-0.05")) == "-0,05"
    assert Formats("en").number("0.000000001") == "0.000000001"
    with pytest.raises(TypeError):
        Formats("en").number(0.1)  # type: ignore[arg-type]


def test_every_label_of_the_templates_is_translated_to_polish() -> None:
    catalogue = translations("pl")
    labels = set()
    for template in TEMPLATES.glob("*.html"):
        labels |= {m[1] for m in re.findall(r"_\((['\"])(.+?)\1\)", template.read_text())}
    assert labels
    missing = sorted(label for label in labels if catalogue.gettext(label) == label
                     and label not in ("ISIN", "Symbol", "Status"))
    assert not missing, f"no Polish for: {missing}"
    assert set(LANGUAGES) == {"en", "pl"}


# --- CSRF, timeouts, policy ----------------------------------------------------------------

def test_a_page_post_without_the_csrf_token_is_refused(golden_book: Any) -> None:
    web = client(golden_book)
    log_in(web, golden_book, "alice")
    refused = web.post("/logout", data={})
    assert refused.status_code == 403 and count_testid(refused.text, "error-page") == 1
    assert web.get("/").status_code == 200  # still logged in
    refused = web.post("/exceptions/assign", data={"key": "fail:X"},
                       headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert refused.headers["HX-Retarget"] == "#flash"
    wrong = web.post("/logout", data={"csrf_token": "not-the-token"})
    assert wrong.status_code == 403


def test_an_idle_session_expires_to_the_login_page(golden_book: Any) -> None:
    from web_support import FakeClock

    clock = FakeClock()
    web = client(golden_book, WebSettings(idle_timeout=dt.timedelta(minutes=30), clock=clock))
    log_in(web, golden_book, "alice", now=clock.now)
    assert web.get("/trades").status_code == 200
    clock.advance(minutes=29)
    assert web.get("/trades").status_code == 200  # in use: the idle time starts again
    clock.advance(minutes=31)
    posted = web.post("/exceptions/assign", data={"key": "fail:X", "csrf_token": "t"},
                      headers={"Referer": f"{BASE_URL}/exceptions?kind=fail"})
    assert posted.status_code == 303  # back to the page of the form, not to the POST
    assert posted.headers["location"] == "/login?next=/exceptions%3Fkind%3Dfail&expired=1"
    log_in(web, golden_book, "alice", now=clock.now)
    clock.advance(minutes=31)
    answer = web.get("/trades")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/trades&expired=1"
    login = web.get(answer.headers["location"])
    assert login.status_code == 200 and count_testid(login.text, "login-notice") == 1
    assert "Your session expired" in login.text


def test_every_page_route_has_a_policy(golden_book: Any) -> None:
    from importlib import import_module

    from zaplecze.interfaces.web.pages import PAGE_MODULES

    pages = [route for name in PAGE_MODULES
             for route in import_module(f"zaplecze.interfaces.web.pages.{name}").router.routes]
    assert len(pages) >= 17
    assert all(route.name.startswith("page.") and route.name in POLICY  # type: ignore[attr-defined]
               for route in pages)
    assert client(golden_book).get("/static/app.css").status_code == 200


def test_a_missing_page_is_a_page_and_a_missing_api_a_problem(golden_book: Any) -> None:
    web = client(golden_book)
    log_in(web, golden_book, "alice")
    page = web.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = web.get("/api/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


# --- the demo book: the exception queue and four eyes --------------------------------------

def demo_client(book: Any, username: str) -> tuple[Any, str]:
    from fastapi.testclient import TestClient

    from web_support import demo_password

    web = TestClient(create_app(book), base_url=BASE_URL, follow_redirects=False)
    answer = login_form(web, username=username, password=demo_password(),
                        code=fresh_code(book.engine, username))
    assert answer.status_code == 303, answer.text
    return web, csrf_of(web.get("/reports").text)  # a page, or a refusal: both carry it


def test_the_exception_queue_assign_comment_resolve(demo_book: Any) -> None:
    web, csrf = demo_client(demo_book, "settle")
    page = web.get("/exceptions")
    assert page.status_code == 200
    html = page.text
    kinds = set(re.findall(r'data-testid="exception-row" data-key="[^"]+" data-kind="(\w+)"',
                           html))
    assert kinds == {"fail", "break", "rejected", "ca"}
    key = re.search(r'data-key="(fail:[^"]+)"', html).group(1)  # type: ignore[union-attr]
    htmx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    row = web.post("/exceptions/assign", data={"key": key}, headers=htmx)
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr")
    assert 'data-owner="settle"' in row.text and count_testid(row.text, "assign-to-me") == 0
    row = web.post("/exceptions/comment", data={"key": key, "text": "called the agent"},
                   headers=htmx)
    assert "called the agent" in row.text
    refused = web.post("/exceptions/resolve", data={"key": key, "reason": " "}, headers=htmx)
    assert refused.status_code == 400 and refused.headers["HX-Retarget"] == "#flash"
    row = web.post("/exceptions/resolve", data={"key": key, "reason": "settled late"},
                   headers=htmx)
    assert 'data-status="resolved"' in row.text and "settled late" in row.text
    assert f'data-key="{key}"' not in web.get("/exceptions").text  # resolved: off the queue
    assert f'data-key="{key}"' in web.get("/exceptions?status=all").text
    # a plain form (no htmx) goes back to the queue
    other = re.search(r'data-key="(rejected:[^"]+)"', html).group(1)  # type: ignore[union-attr]
    back = web.post("/exceptions/assign", data={"key": other, "csrf_token": csrf})
    assert back.status_code == 303 and back.headers["location"].startswith("/exceptions")
    audit = web.get("/audit")
    assert audit.status_code == 403  # settlement staff do not read the audit trail


def test_the_preparer_cannot_approve_another_person_can(demo_book: Any) -> None:
    event = "PKO-DVCA-DEMO-2"  # prepared by ops1 in the demo
    web, csrf = demo_client(demo_book, "ops1")
    page = web.get(f"/corporate-actions/{event}")
    assert page.status_code == 200
    digest = re.search(r'name="payload" value="([0-9a-f]{64})"', page.text).group(1)  # type: ignore[union-attr]
    refused = web.post(f"/corporate-actions/{event}/approve",
                       data={"payload": digest, "csrf_token": csrf})
    assert refused.status_code == 403
    assert count_testid(refused.text, "ca-refusal") == 1
    assert "Another person must approve" in refused.text
    other, other_csrf = demo_client(demo_book, "ops2")
    stale = other.post(f"/corporate-actions/{event}/approve",
                       data={"payload": "0" * 64, "csrf_token": other_csrf})
    assert stale.status_code == 409  # not the entitlements shown
    done = other.post(f"/corporate-actions/{event}/approve",
                      data={"payload": digest, "csrf_token": other_csrf})
    assert done.status_code == 303
    after = other.get(done.headers["location"]).text
    assert 'data-status="APPROVED"' in after and count_testid(after, "ca-notice") == 1
    # the other event is only announced: ops2 prepares it
    prepared = other.post("/corporate-actions/PKO-DVCA-DEMO-1/prepare",
                          data={"csrf_token": other_csrf})
    assert prepared.status_code == 303
    assert 'data-status="ENTITLEMENTS_COMPUTED"' in other.get(prepared.headers["location"]).text


def test_pages_render_for_every_demo_role(demo_book: Any) -> None:
    from web_support import user_roles
    from zaplecze.interfaces.web.pages.base import NAV

    for username in user_roles():
        web, _ = demo_client(demo_book, username)
        for item in NAV:
            answer = web.get(item.path)
            assert answer.status_code in (200, 303, 403), (username, item.path)


def test_a_nul_character_in_a_form_or_a_body_is_a_bad_request(golden_book: Any) -> None:
    """PostgreSQL keeps no NUL in text: the app refuses it before anything reads the request,
    and still reads the form of an ordinary login afterwards."""
    web = client(golden_book)
    page = login_form(web, username="al\x00ice", password=PASSWORD, code="123456")
    assert page.status_code == 400 and "NUL character" in page.text  # a page, not JSON
    answer = web.post("/api/session", json={"username": "al\x00ice", "password": "x",
                                             "code": "123456"})
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_character"
    assert web.get("/api/trades?account=C0%001").status_code == 400
    log_in(web, golden_book, "alice")  # the form is still read once the check has run
