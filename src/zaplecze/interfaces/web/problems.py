"""Errors in one shape: RFC 9457 problem details (``application/problem+json``) carrying our
problem codes (``code``), with a message per field for a bad request."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from zaplecze.kernel.problems import BookError

PROBLEM_TYPE = "https://zaplecze.org/problems/"
MEDIA_TYPE = "application/problem+json"

TITLES = {400: "Bad request", 401: "Not logged in", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Too large",
          415: "Unsupported media type", 429: "Too many requests", 500: "Server error"}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str = ""
    errors: list[FieldError] = []


class ApiProblem(Exception):
    """Raise from an endpoint: the status, our problem code, words for a person."""

    def __init__(self, status: int, code: str, detail: str,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors or []


# Our problem codes that mean "no such thing" or "conflicts with the current state".
_NOT_FOUND = {"unknown_event", "unknown_break", "unknown_trade", "unknown_user",
              "unknown_request", "unknown_account", "unknown_entry", "unknown_instruction",
              "unknown_item", "unknown_claim"}
_FORBIDDEN = {"four_eyes_required"}  # the maker of a request can never decide it
_CONFLICT = {"request_already_decided", "payload_changed",
             "event_not_approved", "event_already_applied", "break_already_resolved",
             "amendment_after_approval", "user_exists", "trade_already_settled",
             "conflicting_duplicate_id", "instruction_not_cancellable",
             "instruction_already_held", "instruction_not_held", "item_already_resolved",
             "idempotency_key_reused", "entry_already_reversed", "adjustment_already_booked",
             "event_already_reversed", "claim_not_open", "day_already_closed"}


def from_book_error(error: BookError) -> ApiProblem:
    text = str(error)
    code, _, detail = text.partition(": ")
    if not detail or " " in code:
        code, detail = "invalid_request", text
    status = (404 if code in _NOT_FOUND else 403 if code in _FORBIDDEN
              else 409 if code in _CONFLICT else 400)
    return ApiProblem(status, code, detail)


def body(status: int, code: str, detail: str, instance: str = "",
         errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"type": PROBLEM_TYPE + code.replace("_", "-"), "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code, "instance": instance,
            "errors": errors or []}


def response(status: int, code: str, detail: str, instance: str = "",
             errors: list[dict[str, str]] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(status, code, detail, instance, errors), status_code=status,
                        media_type=MEDIA_TYPE, headers=headers)


async def on_api_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiProblem)
    return response(error.status, error.code, error.detail, request.url.path, error.errors)


async def on_book_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, BookError)
    problem = from_book_error(error)
    return response(problem.status, problem.code, problem.detail, request.url.path)


async def on_validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        errors.append({"field": where or "body", "message": str(item.get("msg", "invalid"))})
    return response(400, "invalid_request", "the request has fields that are not valid",
                    request.url.path, errors)


async def on_http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return response(error.status_code, code, str(error.detail), request.url.path,
                    headers=getattr(error, "headers", None))


# Documented on every API operation, so a client (and schemathesis) knows the shape.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": TITLES[status],
             "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for status in (400, 401, 403, 404, 409, 429)
}
