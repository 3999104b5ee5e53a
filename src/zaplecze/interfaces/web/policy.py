"""Every route's permission, by route name: the one table the server checks (``auth.authorize``)
and the authorization-matrix test reads. A route missing here is refused for everyone.

Object-level checks (an account, trade, instruction or break of another desk) are made in the
routes through ``api.common.own_account`` and ``desk_rows``: another desk's object is 404.
"""

from __future__ import annotations

from zaplecze.interfaces.web.page_policy import PAGE_POLICY

# A permission, or several separated by "|" (any of them will do).
PUBLIC = "public"  # anyone, logged in or not
AUTHENTICATED = "authenticated"  # any logged-in user, whatever the roles

POLICY: dict[str, str] = {
    # session and tokens
    "api.session.login": PUBLIC,
    "api.session.me": AUTHENTICATED,
    "api.session.logout": AUTHENTICATED,
    "api.tokens.issue": AUTHENTICATED,
    # trades
    "api.trades.capture": "trades:write",
    "api.trades.list": "trades:read",
    "api.trades.get": "trades:read",
    "api.trades.cancel": "trades:write",
    # manual entries and reversals: four-eyes requests (api/ledger.py)
    "api.ledger.adjustment": "ledger:adjust",
    "api.ledger.reversal": "ledger:adjust",
    # holdings: positions, cash, prices, accounts, instruments (api/holdings.py)
    "api.positions.list": "positions:read",
    "api.cash.list": "cash:read",
    "api.prices.list": "prices:read",
    "api.accounts.list": "refdata:read",
    "api.accounts.get": "refdata:read",
    "api.accounts.lots": "positions:read",
    "api.accounts.activity": "positions:read",
    "api.instruments.list": "refdata:read",
    "api.instruments.get": "refdata:read",
    "api.inventory.list": "positions:read",
    # reports (api/reports.py)
    "api.reports.list": "reports:read",
    "api.reports.get": "reports:read",
    # settlement (api/settlement.py)
    "api.settlement.obligations": "settlement:read",
    "api.settlement.instructions": "settlement:read",
    "api.settlement.instruction": "settlement:read",
    "api.settlement.fails": "settlement:read",
    "api.settlement.penalties": "settlement:read",
    "api.settlement.cancel": "settlement:write",
    "api.settlement.hold": "settlement:write",
    "api.settlement.release": "settlement:write",
    # audit trail (api/audit.py)
    "api.audit.list": "audit:read",
    "api.audit.export": "audit:read",
    "api.audit.verify": "audit:read",
    # corporate actions (api/corporate_actions.py)
    "api.corporate_actions.list": "corporate_actions:read",
    "api.corporate_actions.get": "corporate_actions:read",
    "api.corporate_actions.prepare": "corporate_actions:prepare",
    "api.corporate_actions.approve": "corporate_actions:approve",
    # reconciliation breaks (api/breaks.py)
    "api.breaks.list": "breaks:read",
    "api.breaks.get": "breaks:read",
    "api.breaks.assign": "breaks:write",
    "api.breaks.comment": "breaks:write",
    "api.breaks.investigate": "breaks:write",
    "api.breaks.resolve": "breaks:write",
    # the exception queue (api/exceptions.py)
    "api.exceptions.list": "exceptions:read",
    "api.exceptions.get": "exceptions:read",
    "api.exceptions.assign": "exceptions:write",
    "api.exceptions.comment": "exceptions:write",
    "api.exceptions.resolve": "exceptions:write",
    # users and four-eyes approvals (api/users.py)
    "api.users.list": "users:read",
    "api.users.create": "users:write",
    "api.users.roles": "users:write",
    "api.approvals.list": "approvals:decide|users:read|audit:read",
    "api.approvals.approve": "approvals:decide",
    "api.approvals.reject": "approvals:decide",
}

# The pages' entries live beside the pages; merged here so that there is one table.
POLICY.update(PAGE_POLICY)
