"""The workbench's settings: timeouts, cookies, the clock (tests move it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from zaplecze.services import identity


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class WebSettings:
    idle_timeout: dt.timedelta = identity.IDLE_TIMEOUT
    absolute_timeout: dt.timedelta = identity.ABSOLUTE_TIMEOUT
    # Secure cookies are sent over HTTPS only; browsers also accept them from http://localhost
    # and 127.0.0.1, so the default holds for a loopback `zaplecze serve` too.
    secure_cookies: bool = True
    page_size_max: int = 1_000
    # Threads of one server process that read the book at once (see app._lifespan); more
    # processes (``zaplecze serve --workers``) use more cores.
    threads: int = 4
    clock: Callable[[], dt.datetime] = field(default=_utc_now)
