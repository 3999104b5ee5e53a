"""The test command behind `make test`: the whole suite on SQLite and PostgreSQL.

PostgreSQL is mandatory where CI=true (or ZAPLECZE_REQUIRE_PG=1): its tests fail if it cannot
be reached. Elsewhere, a machine without PostgreSQL still runs the suite, and this script says
plainly at the end that the PostgreSQL tests were skipped and why.
ZAPLECZE_DEEP=1 runs the deep tier (more Hypothesis examples, more kill points, more seeds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    env = dict(os.environ)
    if env.get("CI", "").lower() in ("1", "true", "yes"):
        env["ZAPLECZE_REQUIRE_PG"] = "1"
    from conftest import postgres_unavailable

    reason = postgres_unavailable()
    if reason and env.get("ZAPLECZE_REQUIRE_PG") == "1":
        print(f"PostgreSQL is required (CI) but unavailable: {reason}", file=sys.stderr)
        return 2
    tier = "deep" if env.get("ZAPLECZE_DEEP") == "1" else "fast"
    print(f"zaplecze tests ({tier} tier): SQLite and "
          f"{'PostgreSQL' if not reason else 'no PostgreSQL'}", flush=True)
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            "-n", env.get("ZAPLECZE_TEST_WORKERS", "2"), "--dist", "loadfile", *sys.argv[1:]]
    code = subprocess.call(args, cwd=ROOT, env=env)
    if reason:
        print(f"\nNOTE: the PostgreSQL tests were SKIPPED — {reason}.\n"
              f"Start PostgreSQL (or set ZAPLECZE_TEST_PG=postgresql://…) to run them.")
    from test_browser import browser_unavailable

    browser = browser_unavailable()
    if browser and env.get("CI", "").lower() not in ("1", "true", "yes") \
            and env.get("ZAPLECZE_REQUIRE_BROWSER") != "1":
        print(f"\nNOTE: the browser tests were SKIPPED — {browser}.")
    if code == 5:
        print("no tests ran: that is a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
