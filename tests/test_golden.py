"""The golden scenario (../shared/scenarios/basic) through the CLI, on SQLite and PostgreSQL,
scored by the scenario's own acceptance runner: every check must match exactly."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, shared_path


def test_golden_scenario_matches_every_check(book_url: str) -> None:
    """Loads twice (the second load must book nothing and change no report), then scores."""
    runner = shared_path("scenarios", "run.py")
    args = [sys.executable, str(runner), str(shared_path("scenarios", "basic")),
            "--cli", f"{sys.executable} -m zaplecze"]
    if book_url.startswith("postgresql"):
        args += ["--db-url", book_url]
    args.append("--load-twice")
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT / "src", timeout=900)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    passed, total = last.split()[0].split("/")
    assert passed == total and int(total) == 37, last
