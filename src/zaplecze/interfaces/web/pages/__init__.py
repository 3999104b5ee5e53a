"""The server-rendered pages: Jinja2 templates, htmx for small changes in place, AG Grid
Community for the blotter, Chart.js for the cash ladder (the three are vendored into
static/vendor/ by ``make vendor``; without them the pages still render, as plain tables).

Pages are authorized like the API (``auth.authorize`` against ``policy.POLICY``, entries in
``page_policy.PAGE_POLICY``). Refusals on pages are shown as pages: a 401 is a redirect to
/login?next=…, a 403 a "not allowed" page with status 403; under /api they stay problem+json.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from zaplecze.interfaces.web import problems
from zaplecze.interfaces.web.pages import base
from zaplecze.kernel.problems import BookError

PAGE_MODULES = ("session", "desk", "operations", "queue", "records")


def install(app: FastAPI) -> None:
    """Add the pages' routes and static files to ``app``, and show errors on pages as pages."""
    from importlib import import_module

    app.mount("/static", StaticFiles(directory=base.STATIC, check_dir=False), name="static")
    for name in PAGE_MODULES:
        app.include_router(import_module(f"zaplecze.interfaces.web.pages.{name}").router)
    app.add_exception_handler(problems.ApiProblem, _on_problem)
    app.add_exception_handler(BookError, _on_book_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path == "/api" or path.startswith("/api/")


def _page_problem(request: Request, problem: problems.ApiProblem) -> Response:
    if problem.status == 401:
        return base.login_redirect(request)
    return base.error_page(request, problem.status, problem.code, problem.detail,
                           problem.errors)


async def _on_problem(request: Request, error: Exception) -> Response:
    if _is_api(request):
        return await problems.on_api_problem(request, error)
    assert isinstance(error, problems.ApiProblem)
    return _page_problem(request, error)


async def _on_book_error(request: Request, error: Exception) -> Response:
    if _is_api(request):
        return await problems.on_book_error(request, error)
    assert isinstance(error, BookError)
    return _page_problem(request, problems.from_book_error(error))


async def _on_validation(request: Request, error: Exception) -> Response:
    if _is_api(request):
        return await problems.on_validation(request, error)
    assert isinstance(error, RequestValidationError)
    errors = [{"field": ".".join(str(p) for p in item.get("loc", ()) if p not in ("body",
                                                                                  "query")),
               "message": str(item.get("msg", "invalid"))} for item in error.errors()]
    return base.error_page(request, 400, "invalid_request",
                           "the request has fields that are not valid", errors)


async def _on_http(request: Request, error: Exception) -> Response:
    if _is_api(request):
        return await problems.on_http(request, error)
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return base.error_page(request, error.status_code, code, str(error.detail))
