"""Idempotent replay (RELIABILITY.md rule 4; the battery's row "same key K times, concurrently and
across restarts: exactly 1 effect; different payload rejected"; the contract's idempotency keys).

- The same folder loaded three times books nothing after the first load — also after end of
  day — and every load reports the same rejected rows.
- A row repeated in one file (within a batch or across batches) is booked once and is no error.
- The same key with other content is rejected `conflicting_duplicate_id`, in the same file and in
  a later load, for every kind of key, and the first content stays booked.
- Eight `load` processes of the same folder, started together, book everything exactly once and
  each exits 0 or 1 for the right reason: the folder's own rejected rows, nothing else.

The CLI runs in this process (its own `main`), except for the eight concurrent processes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, shared_path, zaplecze_in_process
from zaplecze.bootstrap import open_book
from zaplecze.kernel.limits import ROWS_PER_BATCH
from zaplecze.services.audit import verify
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.store import repo
from zaplecze.store.db import open_engine, read_connection

TABLES = ("instruments", "accounts", "fee_rules", "withholding_rates", "prices", "fx_rates",
          "calendar_overrides", "trades", "cancels", "cash_movements", "corporate_actions",
          "entries", "postings", "balances", "rejections", "eod_runs", "entitlements",
          "ca_applications", "valuations")
GOLDEN_REJECTED = {("cash.csv", 9, "insufficient_settled_cash"),
                   ("trades.csv", 27, "invalid_isin")}
TRADES_HEADER = ("trade_id,action,account,isin,side,quantity,price,currency,trade_date,venue,"
                 "counterparty,commission,settlement_date")
NVDA, KO = "US67066G1040", "US1912161007"
CA_HEADER = ("event_id,kind,isin,ex_date,record_date,pay_date,ratio_old,ratio_new,amount,"
             "currency,new_isin,cost_fraction,fraction_price")
REJECTED_LINE = re.compile(r"^rejected (\S+?):(\d+): ([a-z_]+): ")


zaplecze = zaplecze_in_process


def book_state(url: str) -> dict[str, Any]:
    """Everything a load could change: row counts, the journal head, balances, rejections."""
    engine = open_engine(url)
    try:
        with read_connection(engine) as connection:
            state: dict[str, Any] = {table: connection.exec_driver_sql(
                f"SELECT COUNT(*) FROM {table}").scalar() for table in TABLES}
            head = connection.exec_driver_sql(
                "SELECT sequence, hash FROM entries ORDER BY sequence DESC LIMIT 1").first()
            state["head"] = tuple(head) if head else None
            state["balance rows"] = repo.stored_balances(connection)
            state["rejection rows"] = connection.exec_driver_sql(
                "SELECT file, line, reason, detail FROM rejections ORDER BY id").all()
            state["trade rows"] = connection.exec_driver_sql(
                "SELECT * FROM trades ORDER BY sequence").all()
        return state
    finally:
        engine.dispose()


def rejected(output: str) -> set[tuple[str, int, str]]:
    """(file, line, rule) of every `rejected` line; fails on any other line."""
    found = set()
    for line in output.splitlines():
        match = REJECTED_LINE.match(line)
        assert match, f"an unexpected line on standard output: {line!r}"
        found.add((match[1], int(match[2]), match[3]))
    assert len(found) == len(output.splitlines()), f"a row reported twice:\n{output}"
    return found


def summary(stderr: str) -> tuple[int, int, int]:
    """(new, already booked, rejected) from load's last line."""
    match = re.search(r": (\d+) new, (\d+) already booked, (\d+) rejected$", stderr.strip())
    assert match, stderr
    return int(match[1]), int(match[2]), int(match[3])


def write_book(folder: Path, **files: str) -> Path:
    """A small book: the golden instruments and accounts plus the given files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("instruments", "accounts"):
        (folder / f"{name}.csv").write_text(shared_path("scenarios", "basic", f"{name}.csv")
                                            .read_text(encoding="utf-8"), encoding="utf-8")
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text.strip() + "\n", encoding="utf-8")
    return folder


# --- the same folder again ---------------------------------------------------------------------


def test_the_same_folder_loaded_three_times_books_nothing_new(book_url: str,
                                                              golden_folder: Path) -> None:
    zaplecze(book_url, "init", check=True)
    states = []
    for attempt in range(3):
        done = zaplecze(book_url, "load", str(golden_folder))
        assert done.returncode == 1, done.stderr  # the golden book's two rejected rows, each time
        assert rejected(done.stdout) == GOLDEN_REJECTED, done.stdout
        new, unchanged, refused = summary(done.stderr)
        assert (refused, new == 0, unchanged == 0) == (2, attempt > 0, attempt == 0), done.stderr
        states.append(book_state(book_url))
    assert states[1] == states[0] and states[2] == states[0]

    zaplecze(book_url, "eod", "--through", "2024-09-30", check=True)
    after_eod = book_state(book_url)
    assert after_eod["head"] != states[0]["head"]
    for _ in range(2):
        done = zaplecze(book_url, "load", str(golden_folder))
        assert done.returncode == 1 and rejected(done.stdout) == GOLDEN_REJECTED, done.stdout
        assert summary(done.stderr)[0] == 0, done.stderr
        assert book_state(book_url) == after_eod
    again = zaplecze(book_url, "eod", "--through", "2024-09-30", check=True)
    assert "0 day(s) run" in again.stderr
    assert book_state(book_url) == after_eod


def test_a_generated_book_replays_to_nothing_after_its_end_of_day(book_url: str,
                                                                  tmp_path: Path) -> None:
    """Corporate actions, cancels, a refused and a granted withdrawal: loaded, run through its
    last day, loaded twice more: not one entry more, the same rejection."""
    shape = BookShape(seed=11, trades=800, months=3)
    folder = tmp_path / "book"
    generate_book(shape, folder)
    book = open_book(book_url, create=True)
    try:
        first = Loader(book.engine, book.calendar()).load(folder)
        assert [p.rule.value for p in first.rejected] == ["insufficient_settled_cash"]
        run_eod(book.engine, book_period(shape)[1])
        before = book_state(book_url)
        for _ in range(2):
            report = Loader(book.engine, book.calendar()).load(folder)
            assert sum(report.booked.values()) == 0, report.booked
            assert [(p.source, p.line, p.rule) for p in report.rejected] == [
                (p.source, p.line, p.rule) for p in first.rejected]
            assert book_state(book_url) == before
    finally:
        book.engine.dispose()


# --- repeated rows -------------------------------------------------------------------------------


def test_a_row_repeated_in_one_file_is_booked_once_and_is_no_error(book_url: str,
                                                                    tmp_path: Path) -> None:
    folder = write_book(
        tmp_path / "book",
        instruments=shared_path("scenarios", "basic", "instruments.csv").read_text() + (
            f"{NVDA},NVDA,NVIDIA Corp.,EQUITY,USD,XNAS,US,0\n"),  # the golden row again
        trades=f"""{TRADES_HEADER}
T1,NEW,C01,{NVDA},BUY,10,120.00,USD,2024-06-03,,,,
T2,NEW,C01,{KO},BUY,100,62.00,USD,2024-06-03,,,,
T1,NEW,C01,{NVDA},BUY,10,120.00,USD,2024-06-03,,,,
T2,CANCEL,C01,,,,,,2024-06-03,,,,
T2,CANCEL,C01,,,,,,2024-06-03,,,,
T1,NEW,C01,{NVDA},BUY,10,120.00,USD,2024-06-03,,,,""",
        cash="""movement_id,account,date,currency,amount,kind,description
M1,C01,2024-06-03,USD,5000.00,DEPOSIT,
M1,C01,2024-06-03,USD,5000.00,DEPOSIT,
M2,C01,2024-06-04,USD,-100.00,WITHDRAWAL,
M2,C01,2024-06-04,USD,-100.00,WITHDRAWAL,""",
        prices=f"""date,isin,close,currency
2024-06-03,{NVDA},121.00,USD
2024-06-03,{NVDA},121.00,USD""",
        corporate_actions=f"""{CA_HEADER}
D1,CASH_DIVIDEND,{NVDA},2024-06-11,2024-06-11,2024-06-28,,,0.01,USD,,,
D1,CASH_DIVIDEND,{NVDA},2024-06-11,2024-06-11,2024-06-28,,,0.01,USD,,,""")
    zaplecze(book_url, "init", check=True)
    done = zaplecze(book_url, "load", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    state = book_state(book_url)
    assert (state["trades"], state["cancels"], state["cash_movements"], state["prices"],
            state["corporate_actions"], state["instruments"]) == (2, 1, 2, 1, 1, 6)
    engine = open_engine(book_url)
    try:
        with read_connection(engine) as connection:
            kinds = dict(connection.exec_driver_sql(
                "SELECT entry_key, COUNT(*) FROM entries GROUP BY entry_key").all())
    finally:
        engine.dispose()
    assert kinds == {"trade:T1": 1, "trade:T2": 1, "void:trade:T2": 1, "cash:M1": 1,
                     "cash:M2": 1}
    positions = zaplecze(book_url, "report", "positions", "--as-of", "2024-06-03", "--format",
                        "json", check=True).stdout
    assert '"quantity": "10"' in positions and KO not in positions
    again = zaplecze(book_url, "load", str(folder))
    assert (again.returncode, again.stdout, summary(again.stderr)[0]) == (0, "", 0)
    assert book_state(book_url) == state


def test_a_row_repeated_in_a_later_batch_is_booked_once(book_url: str, tmp_path: Path) -> None:
    """The first batch's rows are in the database when the repeat comes: the stored key
    decides (same content: nothing; other content: conflicting_duplicate_id)."""
    rows = [f"B{n:05d},NEW,C01,{NVDA},BUY,1,100.00,USD,2024-06-03,,,0,"
            for n in range(1, ROWS_PER_BATCH + 1)]
    rows.append(rows[0])  # line ROWS_PER_BATCH + 2: the same row again
    rows.append(rows[1].replace(",1,100.00,", ",2,100.00,"))  # other content
    folder = write_book(tmp_path / "book", trades="\n".join([TRADES_HEADER, *rows]))
    zaplecze(book_url, "init", check=True)
    done = zaplecze(book_url, "load", str(folder))
    assert done.returncode == 1
    assert rejected(done.stdout) == {("trades.csv", ROWS_PER_BATCH + 3,
                                      "conflicting_duplicate_id")}
    assert summary(done.stderr) == (9 + ROWS_PER_BATCH, 1, 1)  # 6 instruments, 3 accounts
    state = book_state(book_url)
    assert state["trades"] == ROWS_PER_BATCH
    assert {row.quantity for row in state["trade rows"]} == {"1"}


# --- the same key with other content -------------------------------------------------------------


CONFLICTS_FIRST = {
    "instruments": shared_path("scenarios", "basic", "instruments.csv").read_text() + (
        f"{NVDA},NVDA,NVIDIA Corporation,EQUITY,USD,XNAS,US,0\n"),  # line 8: another name
    "prices": f"""date,isin,close,currency
2024-06-03,{NVDA},121.00,USD
2024-06-03,{NVDA},122.00,USD""",
    "cash": """movement_id,account,date,currency,amount,kind,description
M1,C01,2024-06-03,USD,5000.00,DEPOSIT,
M1,C01,2024-06-03,USD,5001.00,DEPOSIT,""",
    "trades": f"""{TRADES_HEADER}
T1,NEW,C01,{NVDA},BUY,10,120.00,USD,2024-06-03,,,,
T1,NEW,C01,{NVDA},BUY,11,120.00,USD,2024-06-03,,,,
T2,NEW,C01,{KO},BUY,100,62.00,USD,2024-06-03,,,,
T2,CANCEL,C01,,,,,,2024-06-03,,,,
T2,CANCEL,C01,,,,,,2024-06-03,,STREET,,""",
    "corporate_actions": f"""{CA_HEADER}
D1,CASH_DIVIDEND,{NVDA},2024-06-11,2024-06-11,2024-06-28,,,0.01,USD,,,
D1,CASH_DIVIDEND,{NVDA},2024-06-11,2024-06-11,2024-06-28,,,0.02,USD,,,""",
}
CONFLICTS_LATER = {
    "instruments": f"""isin,symbol,name,kind,currency,mic,issuer_country,quantity_scale
{NVDA},NVDA,NVIDIA,EQUITY,USD,XNAS,US,0""",
    "prices": f"""date,isin,close,currency
2024-06-03,{NVDA},123.00,USD""",
    "cash": """movement_id,account,date,currency,amount,kind,description
M1,C01,2024-06-04,USD,5000.00,DEPOSIT,""",
    "trades": f"""{TRADES_HEADER}
T1,NEW,C01,{NVDA},BUY,10,120.01,USD,2024-06-03,,,,
T2,CANCEL,C01,,,,,,2024-06-03,XNYS,,,""",
    "corporate_actions": f"""{CA_HEADER}
D1,CASH_DIVIDEND,{NVDA},2024-06-12,2024-06-12,2024-06-28,,,0.01,USD,,,""",
}


def test_the_same_key_with_other_content_is_rejected(book_url: str, tmp_path: Path) -> None:
    zaplecze(book_url, "init", check=True)
    first = zaplecze(book_url, "load", str(write_book(tmp_path / "first", **CONFLICTS_FIRST)))
    assert first.returncode == 1
    assert rejected(first.stdout) == {
        ("instruments.csv", 8, "conflicting_duplicate_id"),
        ("prices.csv", 3, "conflicting_duplicate_id"),
        ("cash.csv", 3, "conflicting_duplicate_id"),
        ("trades.csv", 3, "conflicting_duplicate_id"),
        ("trades.csv", 6, "conflicting_duplicate_id"),
        ("corporate_actions.csv", 3, "conflicting_duplicate_id")}, first.stdout
    state = book_state(book_url)
    assert [(row.trade_id, row.quantity) for row in state["trade rows"]] == [("T1", "10"),
                                                                             ("T2", "100")]
    assert state["cancels"] == 1

    # Each key again, in a later load, with content other than what was booked.
    later = write_book(tmp_path / "later", **CONFLICTS_LATER)
    (later / "accounts.csv").write_text("account,name,kind,base_currency,tax_residence\n"
                                        "C01,Anna Kowalska-Nowak,CLIENT,PLN,PL\n")
    done = zaplecze(book_url, "load", str(later))
    assert done.returncode == 1
    assert rejected(done.stdout) == {
        (f"{name}.csv", 2, "conflicting_duplicate_id")
        for name in ("instruments", "accounts", "prices", "cash", "trades", "corporate_actions")
    } | {("trades.csv", 3, "conflicting_duplicate_id")}, done.stdout
    after = book_state(book_url)
    assert summary(done.stderr)[0] == 0
    for key in ("head", "balance rows", "trade rows", "cancels", "cash_movements", "prices",
                "corporate_actions", "instruments", "accounts"):
        assert after[key] == state[key], key
    report = zaplecze(book_url, "report", "rejected", "--format", "json", check=True).stdout
    assert report.count('"reason": "conflicting_duplicate_id"') == 13


# --- concurrency -------------------------------------------------------------------------------


# One interpreter imports the CLI once, then forks the eight processes; they wait on a pipe and
# all run `zaplecze --db URL load DIR` (the console command's own `main`) the moment it closes.
# Forking spares eight interpreter starts (several seconds on two cores) that would also spread
# the starts apart.
LAUNCHER = """
import os, sys, traceback
import zaplecze.interfaces.cli as cli
import zaplecze.bootstrap, zaplecze.services.load, zaplecze.store.db, sqlalchemy, psycopg
count, folder, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
gate, opener = os.pipe()
children = []
sys.stdout.flush(); sys.stderr.flush()
for number in range(count):
    pid = os.fork()
    if pid == 0:
        os.close(opener)
        for fd, name in ((1, "out"), (2, "err")):
            os.dup2(os.open(f"{folder}/{number}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.read(gate, 1)  # blocks until the parent closes the pipe: everybody starts together
        try:
            cli.main(args)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    children.append(pid)
os.close(gate); os.close(opener)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
print(" ".join(map(str, codes)))
"""
PROCESSES = 8


def test_eight_concurrent_loads_book_everything_exactly_once(book_url: str,
                                                             tmp_path: Path) -> None:
    shape = BookShape(seed=5, accounts=20, instruments=8, trades=ROWS_PER_BATCH + 200,
                      months=2)
    folder = tmp_path / "book"
    rows = generate_book(shape, folder)
    zaplecze(book_url, "init", check=True)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(PROCESSES), str(outputs), "--db", book_url, "load",
         str(folder)], capture_output=True, text=True, timeout=600, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert launched.returncode == 0, launched.stderr
    codes = [int(code) for code in launched.stdout.split()]
    outcomes = [(number, codes[number], (outputs / f"{number}.out").read_text(),
                 (outputs / f"{number}.err").read_text()) for number in range(PROCESSES)]

    engine = open_engine(book_url)
    try:
        with read_connection(engine) as connection:
            kept = {(file, line, reason) for file, line, reason in connection.exec_driver_sql(
                "SELECT file, line, reason FROM rejections")}
            counts = {table: connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
                      for table in ("trades", "cancels", "cash_movements", "corporate_actions")}
            trade_entries = connection.exec_driver_sql(
                "SELECT COUNT(*) FROM entries WHERE kind = 'TRADE'").scalar()
            duplicates = connection.exec_driver_sql(
                "SELECT entry_key FROM entries GROUP BY entry_key HAVING COUNT(*) > 1").all()
            stored, folded = repo.stored_balances(connection), repo.folded_balances(connection)
        audit = verify(engine)
    finally:
        engine.dispose()
    trade_lines = (folder / "trades.csv").read_text().splitlines()[1:]
    cancels = sum(1 for line in trade_lines if ",CANCEL," in line)
    assert counts == {"trades": len(trade_lines) - cancels, "cancels": cancels,
                      "cash_movements": rows["cash.csv"],
                      "corporate_actions": rows["corporate_actions.csv"]}
    assert trade_entries == counts["trades"] and duplicates == []
    assert stored == folded and audit.problems == []
    assert kept == {("cash.csv", kept_line, "insufficient_settled_cash")
                    for _, kept_line, _ in kept} and len(kept) == 1  # the story's refused one

    wrong = []
    for number, code, stdout, stderr in outcomes:
        lines = stderr.strip().splitlines()
        try:
            assert code == 1 and rejected(stdout) == kept
            assert len(lines) == 1 and summary(lines[0])[2] == len(kept)
        except AssertionError:
            wrong.append(f"process {number} exited {code}:\n{stdout}{stderr}".strip())
    assert not wrong, (f"{len(wrong)} of {PROCESSES} concurrent loads ended for the wrong "
                       f"reason:\n\n" + "\n\n".join(wrong))
    # Between them the processes booked each row once: what one load alone books.
    assert sum(summary(stderr)[0] for _, _, _, stderr in outcomes) == sum(rows.values()) - 1
