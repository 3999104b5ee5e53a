"""Roles and what each may do. One table, read by the API, the pages and the CLI.

A permission is ``area:verb``; ``read`` sees, ``write`` changes, ``prepare`` and ``approve`` are
the two halves of a four-eyes action. Roles are additive: a user with several roles may do what
any of them may. Data scoping by desk is separate (``identity.User.desk``).
"""

from __future__ import annotations

READ_AREAS = ("trades", "positions", "cash", "prices", "refdata", "reports", "settlement",
              "corporate_actions", "breaks", "exceptions", "audit", "users")

PERMISSIONS = frozenset({
    *(f"{area}:read" for area in READ_AREAS),
    "trades:write", "settlement:write", "corporate_actions:prepare",
    "corporate_actions:approve", "breaks:write", "exceptions:write", "users:write",
    "approvals:decide", "ledger:adjust",
})

_OPERATIONS_READ = {f"{area}:read" for area in READ_AREAS if area not in ("audit", "users")}

ROLES: dict[str, frozenset[str]] = {
    "operations": frozenset(_OPERATIONS_READ | {
        "trades:write", "corporate_actions:prepare", "corporate_actions:approve",
        "breaks:write", "exceptions:write", "approvals:decide", "ledger:adjust"}),
    "settlement": frozenset(_OPERATIONS_READ | {
        "settlement:write", "breaks:write", "exceptions:write"}),
    "accounting": frozenset(_OPERATIONS_READ | {"breaks:write", "exceptions:write",
                                                 "ledger:adjust", "approvals:decide"}),
    "compliance": frozenset(_OPERATIONS_READ | {"audit:read"}),
    "auditor": frozenset(f"{area}:read" for area in READ_AREAS),
    "front_office": frozenset({"positions:read", "prices:read", "cash:read", "refdata:read"}),
    "administrator": frozenset({"users:read", "users:write", "audit:read", "refdata:read",
                                "approvals:decide"}),
}

ROLE_NAMES = tuple(ROLES)


def permissions_of(roles: tuple[str, ...] | list[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return frozenset(granted)


def unknown_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    return [role for role in roles if role not in ROLES]
