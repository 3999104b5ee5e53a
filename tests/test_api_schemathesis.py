"""The REST API against its own OpenAPI document, with schemathesis, in process (ASGI), once per
role: generated requests (valid ones, and invalid ones) to every operation the role may use,
with the role's API token. No answer may be a server error, or disagree with the documented
status codes, media types and schemas. Runs on a copy of the demo book (SQLite and PostgreSQL).

ZAPLECZE_API_FUZZ_EXAMPLES sets the examples per operation, mode and role (default 6; 30 in
the deep tier). Every failure is listed, not only the first.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from zaplecze.interfaces.web.policy import AUTHENTICATED, POLICY, PUBLIC
from zaplecze.services import access

pytest.register_assert_rewrite("web_support")
from web_support import (  # noqa: E402
    api_token,
    bearer,
    client_for,
    role_users,
    route_names,
    user_roles,
    web_app,
)

pytest_plugins = ("web_support",)

DEEP = os.environ.get("ZAPLECZE_DEEP") == "1"
EXAMPLES = int(os.environ.get("ZAPLECZE_API_FUZZ_EXAMPLES", "30" if DEEP else "6"))
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
ROLE_USERS = role_users()
ROLES_OF = user_roles()
# Logging out with a token ends nothing; logging in would need a TOTP code: the fuzzer cannot
# guess one and only exercises the 400/401 answers there, which it does.
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, database=None, derandomize=not DEEP,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    print_blob=False)


REAL_SETTINGS = hypothesis.settings(SETTINGS, max_examples=max(2, EXAMPLES // 2))


def may(username: str, permission: str) -> bool:
    if permission in (PUBLIC, AUTHENTICATED):
        return True
    granted = access.permissions_of([ROLES_OF[username]])
    return any(one in granted for one in permission.split("|"))


def real_values(ids: Any, request_id: str) -> dict[str, list[str]]:
    """Path parameters of real objects of the demo book (random ones are nearly always 404)."""
    from zaplecze.services import reporting

    return {"account": [ids.waw_account, ids.intl_account, ids.house_account],
            "trade_id": [ids.waw_trade, ids.intl_pending_trade], "isin": [ids.isin],
            "name": list(reporting.REPORTS), "reference": [ids.fail_reference, ids.instruction],
            "event_id": [ids.open_event, ids.prepared_event], "break_id": [ids.break_id],
            "key": [ids.fail_key, ids.break_key, ids.rejected_key, ids.ca_key],
            "username": ["ops2", "front"], "request_id": [request_id]}


@pytest.fixture(scope="module")
def api(demo_book_module: Any, demo_template: Any) -> dict[str, Any]:
    from zaplecze.services import four_eyes
    from zaplecze.services.audit_trail import Actor

    app = web_app(demo_book_module)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    tokens = {username: api_token(demo_book_module.engine, username)
              for username in ROLE_USERS.values()}
    pending = four_eyes.request(demo_book_module.engine, Actor("admin", "test"), "user.roles",
                                "front", {"username": "front", "roles": ["auditor"]})
    return {"app": app, "schema": schema, "tokens": tokens, "names": route_names(app),
            "real": real_values(demo_template.ids, pending.request_id)}


def _describe(case: Any, response: Any, error: BaseException) -> str:
    body = "" if case.body is schemathesis.core.NOT_SET else case.body
    request = (f"{case.method} {case.formatted_path} query={case.query or {}} "
               f"body={str(body)[:300]}")
    answer = f"{response.status_code} {response.text[:300]}" if response is not None else "-"
    text = str(error).strip().splitlines()
    return f"{request}\n      -> {answer}\n      {' | '.join(text[:6])[:600]}"


def run_operation(operation: Any, mode: GenerationMode, headers: dict[str, str],
                  failures: dict[str, str], path: dict[str, str] | None = None) -> int:
    """Hypothesis over one operation in one mode (with some path parameters fixed); failures
    recorded (the first of each kind), not raised, so that one run lists them all. The number of
    requests sent."""
    sent = 0

    @(REAL_SETTINGS if path else SETTINGS)
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode, path_parameters=path))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = None
        try:
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as error:  # a failed check, or the server's own exception
            key = f"{operation.label} {type(error).__name__} {str(error)[:120]}"
            failures.setdefault(key, f"[{mode.value}] {operation.label}: "
                                + _describe(case, response, error))

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            failures[operation.label] = f"{operation.label}: no valid request can be generated"
        # negative: nothing in the operation can be made invalid (no parameters, no body)
    return sent


def fuzz(api: dict[str, Any], username: str) -> tuple[int, list[str]]:
    """Run every operation ``username`` may use; (requests sent, failures)."""
    headers = bearer(api["tokens"][username])
    sent = 0
    failures: dict[str, str] = {}
    for result in api["schema"].get_all_operations():
        operation = result.ok()
        name = api["names"].get((operation.method.upper(), operation.path), "")
        if not may(username, POLICY.get(name, "-")):
            continue  # refused with 403: the authorization matrix checks those
        if name == "api.session.logout":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            sent += run_operation(operation, mode, headers, failures)
        params = [p.name for p in operation.path_parameters]
        if params and all(p in api["real"] for p in params):
            for values in itertools.product(*(api["real"][p] for p in params)):
                sent += run_operation(operation, GenerationMode.POSITIVE, headers, failures,
                                      dict(zip(params, values, strict=True)))
    return sent, list(failures.values())


@pytest.mark.parametrize("username", list(ROLE_USERS.values()))
def test_the_api_keeps_its_schema(api: dict[str, Any], username: str) -> None:
    sent, failures = fuzz(api, username)
    assert sent > 0
    assert not failures, (f"{username} ({ROLES_OF[username]}): {len(failures)} problem(s) "
                          f"in {sent} requests:\n  " + "\n  ".join(failures))


def test_the_schema_documents_every_api_route(api: dict[str, Any]) -> None:
    documented = {(op.ok().method.upper(), op.ok().path)
                  for op in api["schema"].get_all_operations()}
    routes = {key for key, name in api["names"].items()
              if key[1].startswith("/api/") and key[0] not in ("HEAD", "OPTIONS")
              and name not in ("openapi", "swagger_ui_html", "swagger_ui_redirect")}
    assert routes <= documented, sorted(routes - documented)
    spec = client_for(api["app"]).get("/api/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation.get("responses", {}), (method, path)
