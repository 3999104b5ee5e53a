"""Every route's permission, by route name: the one table the server checks (``auth.authorize``)
and the authorization-matrix test reads. A route missing here is refused for everyone.

Object-level checks (an account, trade, instruction or break of another desk) are made in the
routes through ``api.common.own_account`` and ``desk_rows``: another desk's object is 404.
"""

from __future__ import annotations

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
}
