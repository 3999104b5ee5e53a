"""Shared fixtures: a fresh book on SQLite and on PostgreSQL for every test that asks.

``book_url`` is parametrised over both databases. PostgreSQL is taken from ZAPLECZE_TEST_PG
(default postgresql://postgres@127.0.0.1:5432/postgres); every test gets a database of its own,
dropped afterwards. When PostgreSQL cannot be reached the PostgreSQL cases are skipped with that
reason — unless ZAPLECZE_REQUIRE_PG=1 (set by CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GOLDEN = SHARED / "scenarios" / "basic"
PG_ADMIN_URL = os.environ.get("ZAPLECZE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("ZAPLECZE_REQUIRE_PG") == "1"
CLI = [sys.executable, "-m", "zaplecze"]

_pg_reason: str | None = None
_pg_checked = False


def shared_path(*parts: str) -> Path:
    """A file of ../shared (beside the clone); fails loudly when it is not there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests read shared/ from beside the repository")
    return path


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    global _pg_checked, _pg_reason
    if not _pg_checked:
        _pg_checked = True
        try:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as connection:
                connection.execute("SELECT 1")
        except Exception as error:  # any failure to connect means: no PostgreSQL here
            _pg_reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}".splitlines()[0]
    return _pg_reason


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(sql)


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    reason = postgres_unavailable()
    if reason:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here (ZAPLECZE_REQUIRE_PG=1): {reason}")
        pytest.skip(reason)
    name = f"zaplecze_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    try:
        yield _pg_url(name)
    finally:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def book_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a fresh, empty book on each database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'book.db'}"
    return str(request.getfixturevalue("fresh_pg_url"))


@pytest.fixture
def golden_folder(tmp_path: Path) -> Path:
    """A copy of the golden scenario's CSV files."""
    folder = tmp_path / "golden-book"
    folder.mkdir()
    for csv_file in sorted(shared_path("scenarios", "basic").glob("*.csv")):
        shutil.copy(csv_file, folder / csv_file.name)
    return folder


def run_cli(url: str, *args: str, check: bool = False,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``zaplecze --db URL ARGS`` in a subprocess, as an operator would."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([*CLI, "--db", url, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)
    if check and done.returncode != 0:
        raise AssertionError(f"zaplecze {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout}\n{done.stderr}")
    return done
