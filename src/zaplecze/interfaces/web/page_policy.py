"""The pages' permissions, by route name (merged into ``policy.POLICY``).

The values are ``policy.PUBLIC`` ("public") and ``policy.AUTHENTICATED`` ("authenticated")
written out, as policy.py imports this module. A page refused for lack of a permission shows a
"not allowed" page (403); without a session, the login page.
"""

from __future__ import annotations

PUBLIC = "public"
AUTHENTICATED = "authenticated"

PAGE_POLICY: dict[str, str] = {
    "static": PUBLIC,  # the mounted static files (CSS, JS)
    "page.login": PUBLIC,
    "page.login.submit": PUBLIC,
    "page.logout": AUTHENTICATED,
    # the dashboard: trades:read, checked in the page (the front office lands on /inventory)
    "page.dashboard": AUTHENTICATED,
    "page.trades": "trades:read",
    "page.accounts": "positions:read",
    "page.account": "positions:read",
    "page.inventory": "prices:read",
    "page.exceptions": "exceptions:read",
    "page.exceptions.assign": "exceptions:write",
    "page.exceptions.comment": "exceptions:write",
    "page.exceptions.resolve": "exceptions:write",
    "page.corporate_actions": "corporate_actions:read",
    "page.corporate_action": "corporate_actions:read",
    "page.corporate_action.prepare": "corporate_actions:prepare",
    "page.corporate_action.approve": "corporate_actions:approve",
    "page.reports": "reports:read",
    "page.audit": "audit:read",
}
