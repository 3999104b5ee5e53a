"""Shared fixtures: a fresh book on SQLite and on PostgreSQL for every test that asks.

``book_url`` is parametrised over both databases. PostgreSQL is taken from ZAPLECZE_TEST_PG
(default postgresql://postgres@127.0.0.1:5432/postgres); every test gets a database of its own,
dropped afterwards. When PostgreSQL cannot be reached the PostgreSQL cases are skipped with that
reason — unless ZAPLECZE_REQUIRE_PG=1 (set by CI), where they fail instead.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

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


def pg_admin(sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement as the PostgreSQL administrator (autocommit); its rows, if any."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        cursor = connection.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


_admin = pg_admin


def database_name(url: str) -> str:
    return url.rpartition("/")[2]


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


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def zaplecze_in_process(url: str, *args: str, check: bool = False) -> Done:
    """`zaplecze --db URL ARGS` run in this process (the console command's own `main`, without
    an interpreter start per call); every engine it opened is disposed."""
    from zaplecze import bootstrap
    from zaplecze.interfaces import cli

    engines = []
    real_open_book = bootstrap.open_book

    def open_book_recorded(*given: Any, **options: Any) -> bootstrap.Book:
        book = real_open_book(*given, **options)
        engines.append(book.engine)
        return book

    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with mock.patch.object(bootstrap, "open_book", open_book_recorded), \
            redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main(["--db", url, *args])
        except SystemExit as exit_:
            code = exit_.code
    for engine in engines:
        engine.dispose()
    done = Done(int(code or 0), out.getvalue(), err.getvalue())
    assert not check or done.returncode == 0, f"zaplecze {args} exited {code}: {done}"
    return done


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
