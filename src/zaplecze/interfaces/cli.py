"""The ``zaplecze`` command line.

Exit codes: 0 success; 1 some input rows were rejected (the rest were booked); 2 the command
could not run (no database, a broken invariant, bad arguments).
"""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from zaplecze import __version__
from zaplecze.bootstrap import Book, open_book
from zaplecze.kernel.problems import BookError

app = typer.Typer(help="Zaplecze — the back office for securities brokers: books and records, "
                       "clearing and settlement, from a book folder of CSV files.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
audit_app = typer.Typer(help="Tamper evidence: the hash chain over the journal.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class Format(StrEnum):
    json = "json"
    csv = "csv"
    table = "table"


class Basis(StrEnum):
    trade = "trade"
    settlement = "settlement"


class ExportFormat(StrEnum):
    ledger = "ledger"
    beancount = "beancount"


class State:
    db: str | None = None


def _book(create: bool = False) -> Book:
    return open_book(State.db, create=create)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        _fail(f"{name} {text!r} is not a date YYYY-MM-DD")
    return None


@app.callback()
def main_options(
    db: Annotated[str | None, typer.Option(
        "--db", help="Database URL: sqlite:///FILE or postgresql://… "
                     "[default: $ZAPLECZE_DB, else sqlite:///zaplecze.db]")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"zaplecze {__version__}")
        raise typer.Exit(0)
    State.db = db


@app.command()
def init() -> None:
    """Create an empty book, or bring an existing one to the newest schema (idempotent)."""
    book = _book(create=True)
    out.print(f"book ready at {book.url.split('@')[-1]}")


@app.command()
def load(folder: Annotated[Path, typer.Argument(help="A book folder of CSV files.")]) -> None:
    """Import every file of a book folder, in the contract's order. Idempotent: loading the
    same folder twice books nothing new. Rejected rows are printed (file:line: rule: detail),
    kept for `report rejected`, and make the exit status 1."""
    from zaplecze.services.load import Loader

    if not folder.is_dir():
        _fail(f"{folder} is not a folder")
    book = _book()
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def step(file_name: str, rows: int) -> None:
            if file_name not in tasks:
                tasks[file_name] = progress.add_task(file_name, total=None)
            progress.advance(tasks[file_name], rows)

        report = Loader(book.engine, book.calendar(), step).load(folder)
    for warning in report.warnings:
        err.print(f"warning: {warning}")
    if report.fatal is not None:
        _fail(str(report.fatal), 1)
    for problem in sorted(report.rejected, key=lambda p: (p.source, p.line or 0)):
        out.print(f"rejected {problem}")
    booked = sum(report.booked.values())
    unchanged = sum(report.unchanged.values())
    err.print(f"loaded {folder}: {booked} new, {unchanged} already booked, "
              f"{len(report.rejected)} rejected")
    raise typer.Exit(1 if report.rejected else 0)


@app.command()
def eod(through: Annotated[str, typer.Option(help="Run every business day not yet run, up to "
                                                  "this date (YYYY-MM-DD).")]) -> None:
    """End of day: settle what is due, apply corporate actions, credit their cash, value
    positions, check the invariants — each business day once, in order."""
    from zaplecze.services.eod import run_eod

    day = _date(through, "--through")
    assert day is not None
    book = _book()
    with _progress() as progress:
        task = progress.add_task("end of day", total=None)

        def step(result: object, index: int, total: int) -> None:
            progress.update(task, completed=index, total=total,
                            description=f"end of day {getattr(result, 'day', '')}")

        report = run_eod(book.engine, day, step)
    settled = sum(d.settled for d in report.days)
    actions = [a for d in report.days for a in d.corporate_actions]
    err.print(f"end of day through {day}: {len(report.days)} day(s) run, {report.skipped} "
              f"already run; {settled} settlements, {len(actions)} corporate action(s)"
              + (f" ({', '.join(actions)})" if actions else ""))


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="positions, cash, realized, dividends, "
                                             "trial-balance, rejected, stock-record, valuation")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD")] = None,
    basis: Annotated[Basis, typer.Option(help="trade or settlement")] = Basis.trade,
    date_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD, inclusive")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD, inclusive")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="json, csv or table")] = Format.table,
) -> None:
    """Print a report. Numbers in JSON are exact decimals as strings."""
    from zaplecze.formats.render import render
    from zaplecze.services.reporting import BUILDERS, COLUMNS, build

    if name not in BUILDERS:
        _fail(f"unknown report {name!r}; reports: {', '.join(BUILDERS)}")
    options: dict[str, object] = {}
    if name in ("positions", "cash"):
        options = {"as_of": _required_date(as_of, "--as-of"), "basis": basis.value}
    elif name in ("trial-balance", "stock-record", "valuation"):
        options = {"as_of": _required_date(as_of, "--as-of")}
    elif name in ("realized", "dividends"):
        options = {"start": _required_date(date_from, "--from"),
                   "end": _required_date(date_to, "--to")}
    rows = build(_book().engine, name, **options)
    columns = [c for c in COLUMNS[name] if not (c == "cost_basis" and basis is Basis.settlement)]
    out.print(render(rows, fmt.value, columns=columns, title=name), markup=False)


def _required_date(text: str | None, name: str) -> dt.date:
    if text is None:
        _fail(f"{name} is required for this report")
    day = _date(text, name)
    assert day is not None
    return day


@audit_app.command("verify")
def audit_verify(
    head: Annotated[str | None, typer.Option(help="A journal head exported earlier "
                                                  "(SEQUENCE:HASH): detects truncation.")] = None,
) -> None:
    """Recompute the hash chain over every entry; print the head to anchor outside."""
    from zaplecze.services.audit import verify

    result = verify(_book().engine, expected_head=head)
    if result.problems:
        for problem in result.problems:
            err.print(f"[bold red]TAMPERED[/] {problem}")
        raise typer.Exit(1)
    out.print(f"journal intact: {result.entries} entries; head {result.head}")


@app.command()
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="ledger or beancount")],
    output: Annotated[Path | None, typer.Option("--out", help="File to write; default: stdout")]
    = None,
) -> None:
    """Write the general ledger in Ledger's or Beancount's text format, for auditors."""
    from zaplecze.services.exporting import export_journal

    book = _book()
    if output is None:
        count = export_journal(book.engine, fmt.value, sys.stdout)
    else:
        with output.open("w", encoding="utf-8") as stream:
            count = export_journal(book.engine, fmt.value, stream)
        err.print(f"wrote {count} transactions to {output}")


@app.command("load-fix")
def load_fix(
    file: Annotated[Path, typer.Argument(help="A file of FIX 4.4 messages (drop copy).")],
    account_map: Annotated[Path, typer.Option(help="CSV: kind,fix_value,zaplecze_value with "
                                                   "kind account or symbol.")],
) -> None:
    """Book the fills (ExecutionReport, ExecType=F) of a FIX drop copy through the same capture
    path as trades.csv; checksum, body length and required tags are verified."""
    from zaplecze.services.fix_capture import load_drop_copy

    book = _book()
    report = load_drop_copy(book.engine, book.calendar(), file, account_map)
    for problem in report.rejected:
        out.print(f"rejected {problem}")
    err.print(f"loaded {file}: {sum(report.booked.values())} new, "
              f"{sum(report.unchanged.values())} already booked, {len(report.rejected)} rejected")
    raise typer.Exit(1 if report.rejected else 0)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where to write the sample book folder.")]
    = Path("demo-book"),
    seed: Annotated[int, typer.Option(help="Seed of the sample book generator.")] = 7,
) -> None:
    """Build a realistic sample book, load it, run end of day and print what happened."""
    from zaplecze.services.demo import run_demo

    run_demo(State.db, folder, seed, out, err)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def main() -> None:
    try:
        app()
    except BookError as error:
        err.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
    except SQLAlchemyError as error:
        text = str(getattr(error, "orig", error)).strip().splitlines()
        err.print(f"[bold red]error:[/] the database refused the command: "
                  f"{text[0] if text else error}; nothing of the failed batch was written")
        sys.exit(2)


if __name__ == "__main__":
    main()
