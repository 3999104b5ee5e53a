"""The workbench in a real browser: headless Chromium (Debian's package, driven by Playwright)
against the app under uvicorn on a loopback port, on a copy of the demo book (SQLite).

Scenarios: logging in with password and TOTP code; working an exception (assign to me, resolve
with a reason); four-eyes on a corporate action (the preparer is refused, another approves);
the front office kept out of the operations pages; an expired session sends the next click to
the login page. Screenshots of the main pages go to test-artifacts/screenshots/.

Without Chromium the tests are skipped, except where CI=true or ZAPLECZE_REQUIRE_BROWSER=1:
there a missing browser is a failure. (Never `playwright install`: the Debian package is used.)
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("web_support")
from web_support import (  # noqa: E402
    DemoTemplate,
    book_copy,
    demo_password,
    fresh_code,
    live_server,
    web_app,
)

pytest_plugins = ("web_support",)

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("ZAPLECZE_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 20_000


def browser_required() -> bool:
    return (os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get("ZAPLECZE_REQUIRE_BROWSER") == "1")


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return (f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium; "
                "or set ZAPLECZE_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"the playwright package is missing: {error}"
    return None


# Skipped before any fixture (the demo book is built once per session, first): not for nothing.
pytestmark = pytest.mark.skipif(browser_unavailable() is not None and not browser_required(),
                                reason=str(browser_unavailable()))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = browser_unavailable()
    if reason:
        if browser_required():
            pytest.fail(f"the browser tests are required here (CI): {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site(sqlite_demo_template: DemoTemplate,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on a copy of the demo book, served on a loopback port."""
    with book_copy(sqlite_demo_template, tmp_path_factory.mktemp("browser-book")) as book, \
            live_server(web_app(book)) as url:
        yield {"url": url, "book": book, "ids": sqlite_demo_template.ids}


def new_page(browser: Any, url: str) -> Any:
    context = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900},
                                  locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def log_in(page: Any, book: Any, username: str, path: str = "/login") -> Any:
    """Fill the login form (password and the current TOTP code); the response of the POST."""
    page.goto(path)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(demo_password())
    page.get_by_test_id("login-code").fill(fresh_code(book.engine, username))
    with page.expect_response(lambda r: r.url.endswith("/login") and
                              r.request.method == "POST") as posted:
        page.get_by_test_id("login-submit").click()
    page.wait_for_load_state()
    return posted.value


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_log_in_with_password_and_totp(browser: Any, site: dict[str, Any]) -> None:
    page = new_page(browser, site["url"])
    page.goto("/")
    assert "/login" in page.url  # not logged in: to the login page, coming back after
    shot(page, "login")
    # a wrong code: refused, same words whatever was wrong
    page.get_by_test_id("login-username").fill("ops1")
    page.get_by_test_id("login-password").fill(demo_password())
    page.get_by_test_id("login-code").fill("000000")
    page.get_by_test_id("login-submit").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("login-error").is_visible()
    log_in(page, site["book"], "ops1", page.url)
    assert page.get_by_test_id("dashboard").is_visible(), page.url
    assert page.get_by_test_id("user").get_attribute("title") == "ops1"
    assert int(page.get_by_test_id("fails-count").inner_text().replace(",", "")
               .replace("\u00a0", "").replace(" ", "")) >= 1
    assert page.get_by_test_id("breaks-count").inner_text().strip() not in ("", "0")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["zaplecze_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    shot(page, "dashboard")
    page.context.close()


def test_work_an_exception_assign_and_resolve(browser: Any, site: dict[str, Any]) -> None:
    book, ids = site["book"], site["ids"]
    page = new_page(browser, site["url"])
    log_in(page, book, "settle")
    page.goto(f"/exceptions?as_of={ids.last_day.isoformat()}")
    assert page.get_by_test_id("exception-table").is_visible()
    shot(page, "exceptions")
    row = page.locator(f'[data-testid="exception-row"][data-key="{ids.fail_key}"]')
    assert row.count() == 1, f"{ids.fail_key} is not in the queue"
    assert row.get_attribute("data-status") == "open"
    row.get_by_test_id("assign-to-me").click()
    row = page.locator(f'[data-testid="exception-row"][data-key="{ids.fail_key}"]')
    row.locator('[data-testid="owner"]:has-text("settle")').wait_for()
    row.get_by_test_id("resolve-reason").fill("settled late at KDPW, confirmed by phone")
    row.get_by_test_id("resolve").click()
    # resolved: gone from the open queue, shown with its reason among all items
    page.wait_for_function(
        "key => { const r = document.querySelector(`[data-testid=exception-row]"
        "[data-key='${key}']`); return !r || r.dataset.status === 'resolved'; }",
        arg=ids.fail_key, timeout=TIMEOUT_MS)
    page.goto(f"/exceptions?as_of={ids.last_day.isoformat()}&status=all")
    row = page.locator(f'[data-testid="exception-row"][data-key="{ids.fail_key}"]')
    assert row.get_attribute("data-status") == "resolved"
    assert row.get_attribute("data-owner") == "settle"
    assert "confirmed by phone" in row.get_by_test_id("resolution-reason").inner_text()
    with book.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT owner, status, resolution_reason FROM work_items WHERE item_key = "
            f"'{ids.fail_key}'").one()
        trail = [r[0] for r in connection.exec_driver_sql(
            "SELECT action FROM audit_trail WHERE object_id = "
            f"'{ids.fail_key}' ORDER BY seq")]
    assert tuple(stored) == ("settle", "resolved", "settled late at KDPW, confirmed by phone")
    assert trail == ["exception.assign", "exception.resolve"]
    page.context.close()


def test_four_eyes_on_a_corporate_action(browser: Any, site: dict[str, Any]) -> None:
    book, ids = site["book"], site["ids"]
    event = ids.open_event
    maker = new_page(browser, site["url"])
    log_in(maker, book, "ops1")
    maker.goto("/corporate-actions")
    assert maker.locator(f'[data-testid="ca-row"]:has-text("{event}")').count() >= 1
    shot(maker, "corporate-actions")
    maker.goto(f"/corporate-actions/{event}")
    maker.get_by_test_id("prepare").click()
    maker.wait_for_load_state()
    assert maker.get_by_test_id("ca-prepared-by").inner_text().strip() == "ops1"
    assert maker.get_by_test_id("entitlement-row").count() >= 1
    shot(maker, "corporate-action-prepared")
    with maker.expect_response(lambda r: r.request.method == "POST") as refused:
        maker.get_by_test_id("approve").click()
    maker.wait_for_load_state()
    assert refused.value.status == 403, refused.value.status
    refusal = maker.get_by_test_id("ca-refusal")
    assert refusal.is_visible() and refusal.get_attribute("data-code") == "four_eyes_required"
    assert maker.get_by_test_id("ca-approved-by").inner_text().strip() == ""
    maker.context.close()

    checker = new_page(browser, site["url"])
    log_in(checker, book, "ops2")
    checker.goto(f"/corporate-actions/{event}")
    checker.get_by_test_id("approve").click()
    checker.wait_for_load_state()
    assert checker.get_by_test_id("ca-approved-by").inner_text().strip() == "ops2"
    assert checker.get_by_test_id("ca-refusal").count() == 0
    shot(checker, "corporate-action-approved")
    checker.context.close()


def test_front_office_is_kept_out_of_operations(browser: Any, site: dict[str, Any]) -> None:
    page = new_page(browser, site["url"])
    log_in(page, site["book"], "front")
    assert "/login" not in page.url
    for path in ("/exceptions", "/trades", "/corporate-actions", "/audit"):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, (path, answer and answer.status)
        page_error = page.get_by_test_id("error-page")
        assert page_error.get_attribute("data-code") == "forbidden"
        assert page.get_by_test_id("not-allowed").is_visible()
    shot(page, "forbidden")
    answer = page.goto("/inventory")
    assert answer is not None and answer.status == 200
    assert page.get_by_test_id("inventory-row").count() >= 1
    nav = page.get_by_test_id("nav").inner_text()
    assert "Inventory" in nav and "Exceptions" not in nav and "Trades" not in nav
    page.context.close()


def test_screenshots_of_the_main_pages(browser: Any, site: dict[str, Any]) -> None:
    ids = site["ids"]
    page = new_page(browser, site["url"])
    log_in(page, site["book"], "auditor")  # reads everything
    pages = {"blotter": "/trades", "accounts": "/accounts",
             "account": f"/accounts/{ids.waw_account}", "inventory": "/inventory",
             "reports": "/reports", "audit": "/audit"}
    for name, path in pages.items():
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        page.wait_for_load_state("networkidle")
        shot(page, name)
    assert page.get_by_test_id("audit-row").count() >= 1
    page.goto("/trades")
    page.wait_for_load_state("networkidle")
    assert (page.get_by_test_id("trades-grid").count()
            + page.get_by_test_id("trades-fallback").count()) >= 1
    for name in ("login", "dashboard", "blotter", "account", "inventory", "audit"):
        if (SCREENSHOTS / f"{name}.png").exists():
            assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5_000
    page.context.close()


def test_an_expired_session_sends_the_next_click_to_login(
        browser: Any, sqlite_demo_template: DemoTemplate, tmp_path: Path) -> None:
    from zaplecze.interfaces.web.settings import WebSettings

    idle = 3
    with book_copy(sqlite_demo_template, tmp_path) as book, \
            live_server(web_app(book, WebSettings(idle_timeout=dt.timedelta(seconds=idle)))
                        ) as url:
        page = new_page(browser, url)
        log_in(page, book, "ops1")
        assert page.get_by_test_id("dashboard").is_visible()
        page.get_by_test_id("nav-trades").click()
        page.wait_for_load_state()
        assert "/trades" in page.url and "/login" not in page.url
        time.sleep(idle + 1.5)
        page.get_by_test_id("nav-exceptions").click()
        page.wait_for_load_state()
        assert "/login" in page.url, page.url
        assert "expired=1" in page.url
        assert page.get_by_test_id("login-notice").is_visible()
        # logging in again goes back where the click was going
        log_in(page, book, "ops1", page.url)
        assert page.url.rstrip("/").endswith("/exceptions"), page.url
        page.context.close()
