"""Every route's permission, by route name: the one table the server checks (``auth.authorize``)
and the authorization-matrix test reads. A route missing here is refused for everyone.

Object-level checks (an account, trade, instruction or break of another desk) are made in the
routes through ``api.common.own_account`` and ``desk_rows``: another desk's object is 404.
"""

from __future__ import annotations

from zaplecze.interfaces.web.page_policy import PAGE_POLICY

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
    # reports (api/reports.py)
    # settlement (api/settlement.py)
    # audit trail (api/audit.py)
    # corporate actions (api/corporate_actions.py)
    # reconciliation breaks (api/breaks.py)
    # the exception queue (api/exceptions.py)
    # users and four-eyes approvals (api/users.py)
}

# The pages' entries live beside the pages; merged here so that there is one table.
POLICY.update(PAGE_POLICY)
