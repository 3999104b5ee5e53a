"""The workbench application: ``create_app(book)`` gives the ASGI app that ``zaplecze serve``
runs under uvicorn and the tests drive in-process.

- /api/…: the REST API; OpenAPI 3 at /api/openapi.json, documentation at /api/docs.
- /…: the server-rendered pages (Jinja2 + htmx), static files under /static.
Every route is checked by ``auth.authorize`` against ``policy.POLICY``.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from zaplecze import __version__
from zaplecze.bootstrap import Book
from zaplecze.interfaces.web import problems
from zaplecze.interfaces.web.settings import WebSettings
from zaplecze.kernel.problems import BookError

API_ROUTERS = ("session", "trades", "holdings", "reports", "settlement", "corporate_actions",
               "breaks", "exceptions", "audit", "users", "ledger")


_NUL = (b"%00", b"\x00")
_NUL_IN_BODY = (*_NUL, b"\\u0000")


async def refuse_nul(request: Request) -> None:
    """No text we keep may hold a NUL (PostgreSQL refuses it): a request carrying one anywhere
    — path, query or body — is a bad request, before anything else looks at it."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    if any(mark in raw_path or mark in query for mark in _NUL):
        raise problems.ApiProblem(400, "invalid_character", "the request holds a NUL character")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        # A form is read once, by Starlette, and kept: read it that way (not as raw bytes).
        form = await request.form()
        found = any(isinstance(value, str) and "\x00" in value
                    for _, value in form.multi_items())
    else:
        body = (await request.body()).lower()
        found = any(mark in body for mark in _NUL_IN_BODY)
    if found:
        raise problems.ApiProblem(400, "invalid_character", "the request holds a NUL character")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The endpoints read the book in threads; Python runs one at a time, so the default 40
    # threads only queue on the interpreter lock and the database's caches. A few suffice.
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = app.state.settings.threads
    # What is alive now (modules, the app, its routes) lives as long as the process: moved out
    # of the collector's generations, a full collection no longer walks it between requests.
    gc.collect()
    gc.freeze()
    yield


def create_app(book: Book, settings: WebSettings | None = None) -> FastAPI:
    app = FastAPI(title="Zaplecze", version=__version__, dependencies=[Depends(refuse_nul)],
                  lifespan=_lifespan,
                  description="The back office's REST API: trades, positions and cash, "
                  "settlement, corporate actions, reconciliation breaks, the audit trail. "
                  "Decimals are exact, as strings. Errors are RFC 9457 problem details with "
                  "our problem code in `code`.",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    app.state.book = book
    app.state.settings = settings or WebSettings()
    app.add_exception_handler(problems.ApiProblem, problems.on_api_problem)
    app.add_exception_handler(BookError, problems.on_book_error)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    app.add_exception_handler(StarletteHTTPException, problems.on_http)
    from importlib import import_module

    for name in API_ROUTERS:
        app.include_router(import_module(f"zaplecze.interfaces.web.api.{name}").router)
    _pages(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _pages(app: FastAPI) -> None:
    try:
        from zaplecze.interfaces.web import pages
    except ImportError:  # pages not built into this app
        return
    pages.install(app)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with our error shape: a bad request is 400 problem+json, not 422."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    app.openapi_schema = schema
    return schema


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory zaplecze.interfaces.web.app:app_from_environment`` (several
    workers, a process manager): the book named by $ZAPLECZE_DB."""
    from zaplecze.bootstrap import open_book

    return create_app(open_book(None, read_mostly=True))
