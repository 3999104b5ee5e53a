"""The ``zaplecze`` command line.

Exit codes: 0 success; 1 some input rows were rejected (the rest were booked), or an audit found
tampering; 2 the command could not run (no database, a broken invariant, bad arguments).

Built on argparse rather than Typer: scripts and the acceptance runner call ``zaplecze report``
many times, and Typer (which now imports pydantic) added about half a second to every start.
Rich is imported only where a table or a progress bar is drawn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zaplecze import __version__
from zaplecze.kernel.limits import (
    BATCH_ROWS_MAX,
    BATCH_ROWS_MIN,
    DEFER_INDEXES_MIN_ROWS,
    LARGE_FILE_BYTES,
    ROWS_PER_BATCH,
    ROWS_PER_LARGE_BATCH,
)
from zaplecze.kernel.problems import BookError

REPORT_NAMES = ("positions", "cash", "realized", "dividends", "trial-balance", "rejected",
                "stock-record", "valuation", "obligations", "cash-ladder", "instructions",
                "fails", "penalties", "breaks", "corporate-actions")
EPILOG = """examples:
  zaplecze init
  zaplecze load ./book
  zaplecze eod --through 2024-09-30
  zaplecze report positions --as-of 2024-06-10 --basis settlement --format table
  zaplecze report realized --from 2024-06-01 --to 2024-09-30 --format csv
  zaplecze report obligations --settlement-date 2024-06-12
  zaplecze settle instruct --date 2024-06-10 --out outbox --format sese023
  zaplecze settle receive inbox/*.xml
  zaplecze report fails --as-of 2024-06-14
  zaplecze audit verify
  zaplecze audit checkpoints --all
  zaplecze export --format ledger --out books.ledger

The database is --db URL, else $ZAPLECZE_DB, else sqlite:///zaplecze.db in this folder.
Exit status: 0 done; 1 rows rejected (the rest booked) or tampering found; 2 could not run."""


class UsageError(Exception):
    pass


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _batch_rows(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not BATCH_ROWS_MIN <= value <= BATCH_ROWS_MAX:
        raise argparse.ArgumentTypeError(
            f"{value} rows a batch is outside {BATCH_ROWS_MIN}..{BATCH_ROWS_MAX:,}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zaplecze", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Zaplecze — the back office for securities brokers: books and records, "
                    "clearing and settlement, from a book folder of CSV files.")
    parser.add_argument("--db", help="database URL: sqlite:///FILE or postgresql://… "
                                     "(default: $ZAPLECZE_DB, else sqlite:///zaplecze.db)")
    parser.add_argument("--version", action="version", version=f"zaplecze {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("init", help="create an empty book, or migrate one (idempotent)")

    load = commands.add_parser("load", help="import a book folder (idempotent)",
                               description="Import every CSV file of a book folder, in the "
                               "contract's order. Loading the same folder twice books nothing "
                               "new. Rejected rows are printed (file:line: rule: detail), kept "
                               "for `report rejected`, and make the exit status 1.")
    load.add_argument("folder", type=Path, help="a book folder of CSV files")
    load.add_argument("--batch-rows", type=_batch_rows, default=None, metavar="N",
                      help=f"source rows committed in one transaction, from "
                      f"{BATCH_ROWS_MIN} to {BATCH_ROWS_MAX:,} (default {ROWS_PER_BATCH:,}, "
                      f"{ROWS_PER_LARGE_BATCH:,} for a file of "
                      f"{LARGE_FILE_BYTES // 2**20} MiB or more unless its indexes are "
                      f"deferred): a crash loses at most one")
    load.add_argument("--defer-indexes", action=argparse.BooleanOptionalAction, default=None,
                      help=f"drop the secondary indexes nothing reads while trades are booked "
                      f"and build them once after trades.csv (default: when the file has "
                      f"{DEFER_INDEXES_MIN_ROWS:,} rows or more and at least as many as the "
                      f"book holds); a load stopped before its end leaves them to the next "
                      f"load or eod to build")

    eod = commands.add_parser("eod", help="run end of day through a date",
                              description="Settle what is due, apply corporate actions, credit "
                              "their cash, value positions and check the invariants — each "
                              "business day not yet run, once, in order.")
    eod.add_argument("--through", type=_date, required=True, metavar="DATE")
    eod.add_argument("--statements", type=Path, metavar="DIR",
                     help="then reconcile every custodian/bank statement file in DIR not yet "
                     "received (each is read once)")

    report = commands.add_parser("report", help="print a report",
                                 description="Print a report; JSON numbers are exact decimals "
                                 "as strings.")
    report.add_argument("name", choices=REPORT_NAMES, metavar="NAME",
                        help=", ".join(REPORT_NAMES))
    report.add_argument("--as-of", type=_date, metavar="DATE")
    report.add_argument("--basis", choices=("trade", "settlement"), default="trade")
    report.add_argument("--from", dest="start", type=_date, metavar="DATE")
    report.add_argument("--to", dest="end", type=_date, metavar="DATE")
    report.add_argument("--settlement-date", type=_date, metavar="DATE",
                        help="obligations: the settlement date")
    report.add_argument("--format", dest="fmt", choices=("json", "csv", "table"),
                        default="table")

    settle = commands.add_parser(
        "settle", help="the settlement desk: instruct, receive statuses, cancel, hold",
        description="Settlement with custodians and CSDs for trades whose counterparty has "
        "standing settlement instructions (ssis.csv). End of day generates the instructions "
        "too; these commands write them out, read what comes back, and act on one instruction.")
    settle_commands = settle.add_subparsers(dest="settle_command", metavar="ACTION",
                                            required=True)
    instruct = settle_commands.add_parser(
        "instruct", help="generate due instructions and write those of a day to files")
    instruct.add_argument("--date", type=_date, required=True, metavar="DATE")
    instruct.add_argument("--out", type=Path, required=True, metavar="DIR")
    instruct.add_argument("--format", dest="fmt", choices=("sese023", "mt54x"),
                          default="sese023")
    instruct.add_argument("--xsd", type=Path, metavar="FILE",
                          help="validate each sese.023 against this schema before writing")
    receive = settle_commands.add_parser(
        "receive", help="apply status advices and confirmations (sese.024/025, MT544-548)")
    receive.add_argument("files", type=Path, nargs="+", metavar="FILE")
    receive.add_argument("--date", type=_date, metavar="DATE",
                         help="the business day they are received (default: today)")
    receive.add_argument("--xsd-dir", type=Path, metavar="DIR",
                         help="validate sese.024/025 against the official schemas in DIR "
                         "(sese.024.001.12.xsd, sese.025.001.11.xsd)")
    for action, words in (("cancel", "cancel an instruction (before settlement started)"),
                          ("hold", "put an instruction on hold"),
                          ("release", "release a held instruction")):
        one = settle_commands.add_parser(action, help=words)
        one.add_argument("reference")
        one.add_argument("--date", type=_date, metavar="DATE")
    recon = commands.add_parser(
        "recon", help="reconcile custodian/CSD holdings and bank statements; work the breaks",
        description="Positions: semt.002, MT535 or CSV date,safekeeping_account,isin,quantity "
        "against our settled positions at the safekeeping account's depository. Cash: camt.053 "
        "or MT940 against our settled cash movements in the statement's currency, and the "
        "statement's own arithmetic. What disagrees is a break (`report breaks`).")
    recon_commands = recon.add_subparsers(dest="recon_command", metavar="ACTION",
                                          required=True)
    for kind in ("positions", "cash"):
        one = recon_commands.add_parser(kind, help=f"reconcile a {kind} statement file")
        one.add_argument("file", type=Path)
        one.add_argument("--by", default=_operator(), help="who runs it (default: $USER)")
        one.add_argument("--date", type=_date, metavar="DATE",
                         help="the business day it is received (default: today)")
        one.add_argument("--xsd-dir", type=Path, metavar="DIR",
                         help="validate ISO 20022 statements against the schemas in DIR")
        if kind == "positions":
            one.add_argument("--depository", help="our depository account name (e.g. KDPW) "
                             "when ssis.csv does not say where the safekeeping account is")
    ca = commands.add_parser(
        "ca", help="corporate actions in operation: MT564 in, entitlements, four-eyes approval,"
        " reversals, market claims",
        description="Announcements (MT564) become events; one operator computes the "
        "entitlements, another approves exactly those; end of day then applies the event on "
        "its ex date. Events of corporate_actions.csv are the broker's own approved "
        "instructions and need no approval. An applied event is reversed on request of one "
        "person and approval of another (`ca reverse`, then `user approve`). End of day raises "
        "market claims for instrumented trades pending over a dividend's record date and "
        "books them on its pay date; `ca claims` lists them, `ca compensate` closes one.")
    ca_commands = ca.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    ca_announce = ca_commands.add_parser("announce", help="read a file of MT564 messages")
    ca_announce.add_argument("file", type=Path)
    ca_announce.add_argument("--by", default=_operator(), help="who (default: $USER)")
    for action, words in (("compute", "compute and show the entitlements (prepare)"),
                          ("approve", "approve the entitlements another operator computed")):
        one = ca_commands.add_parser(action, help=words)
        one.add_argument("event_id")
        one.add_argument("--by", default=_operator(), help="who (default: $USER)")
        one.add_argument("--format", dest="fmt", choices=("json", "csv", "table"),
                         default="table")
    reverse = ca_commands.add_parser(
        "reverse", help="request the reversal of an applied event (four eyes: another person "
        "approves it with `user approve`)")
    reverse.add_argument("event_id")
    reverse.add_argument("--reason", required=True, help="why the event is reversed")
    reverse.add_argument("--date", type=_date, metavar="DATE",
                         help="the reversal's date in the books (default: the open day, the "
                         "first business day end of day has not closed)")
    reverse.add_argument("--by", default=_operator(), help="who requests it (default: $USER)")
    claims = ca_commands.add_parser("claims", help="market claims: raised, open, compensated")
    claims.add_argument("--format", dest="fmt", choices=("json", "csv", "table"),
                        default="table")
    compensate = ca_commands.add_parser(
        "compensate", help="a market claim paid: book its compensation, close it")
    compensate.add_argument("claim_id")
    compensate.add_argument("--date", type=_date, metavar="DATE",
                            help="when the money moved (default: the open day)")
    compensate.add_argument("--by", default=_operator(), help="who (default: $USER)")
    act = recon_commands.add_parser("break", help="assign, comment, investigate, resolve")
    act.add_argument("action", choices=("assign", "comment", "investigate", "resolve"))
    act.add_argument("break_id")
    act.add_argument("text", nargs="?", default="",
                     help="assign: the new owner; comment: the text; resolve: the reason")
    act.add_argument("--by", default=_operator(), help="who acts (default: $USER)")

    simulate = settle_commands.add_parser(
        "simulate", help="a stand-in depository (demo, tests): answer our instructions")
    simulate.add_argument("--date", type=_date, required=True, metavar="DATE")
    simulate.add_argument("--out", type=Path, required=True, metavar="DIR")

    audit = commands.add_parser("audit", help="tamper evidence: verify the hash chain")
    audit_commands = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_commands.add_parser("verify", help="recompute the hash chain over the journal")
    verify.add_argument("--head", metavar="SEQUENCE:HASH",
                        help="a head printed earlier: also detects a truncated journal")
    checkpoints = audit_commands.add_parser(
        "checkpoints", help="compare end of day's checkpoints with the journal",
        description="Compare each checkpoint's balances with the postings it had seen and its "
                    "lots with a fold of the trades from the first one (the latest checkpoint, "
                    "or every one with --all).")
    checkpoints.add_argument("--all", action="store_true", help="every checkpoint, oldest first")

    export = commands.add_parser("export", help="the general ledger as Ledger or Beancount text")
    export.add_argument("--format", dest="fmt", choices=("ledger", "beancount"), required=True)
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")

    fix = commands.add_parser("load-fix", help="book the fills of a FIX 4.4 drop copy",
                              description="Book the fills (ExecutionReport, ExecType=F) of a "
                              "FIX 4.4 drop copy through the same capture path as trades.csv.")
    fix.add_argument("file", type=Path)
    fix.add_argument("--account-map", type=Path, required=True,
                     help="CSV kind,fix_value,zaplecze_value (kind: account or symbol)")

    from zaplecze.interfaces import cli_workbench

    cli_workbench.add_parsers(commands, _operator())

    demo = commands.add_parser("demo", help="build, load and run a realistic sample book")
    demo.add_argument("--folder", type=Path, default=Path("demo-book"))
    demo.add_argument("--seed", type=int, default=7)
    return parser


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def _book(args: argparse.Namespace, create: bool = False) -> Any:
    from zaplecze.bootstrap import open_book

    return open_book(args.db, create=create)


def cmd_init(args: argparse.Namespace) -> int:
    book = _book(args, create=True)
    print(f"book ready at {book.url.split('@')[-1]}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from zaplecze.services.load import Loader

    if not args.folder.is_dir():
        raise UsageError(f"{args.folder} is not a folder")
    book = _book(args)
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def step(file_name: str, rows: int) -> None:
            if progress is None:
                return
            if file_name not in tasks:
                tasks[file_name] = progress.add_task(file_name, total=None)
            progress.advance(tasks[file_name], rows)

        report = Loader(book.engine, book.calendar(), step,
                        batch_rows=args.batch_rows,
                        defer_indexes=args.defer_indexes).load(args.folder)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if report.fatal is not None:
        print(f"error: {report.fatal}", file=sys.stderr)
        return 1
    return _print_load_report(report, args.folder)


def _print_load_report(report: Any, source: Path) -> int:
    """One line per rejected row on stdout, a summary on stderr; exit 1 if anything was
    rejected."""
    for problem in sorted(report.rejected, key=lambda p: (p.source, p.line or 0)):
        print(f"rejected {problem}")
    print(f"loaded {source}: {sum(report.booked.values())} new, "
          f"{sum(report.unchanged.values())} already booked, {len(report.rejected)} rejected",
          file=sys.stderr)
    return 1 if report.rejected else 0


def cmd_eod(args: argparse.Namespace) -> int:
    from zaplecze.services.eod import run_eod

    book = _book(args)
    with _progress() as progress:
        task = progress.add_task("end of day", total=None) if progress else None

        def step(result: Any, index: int, total: int) -> None:
            if progress is not None:
                progress.update(task, completed=index, total=total,
                                description=f"end of day {result.day}")

        report = run_eod(book.engine, args.through, step)
    settled = sum(d.settled for d in report.days)
    actions = [a for d in report.days for a in d.corporate_actions]
    for reason in dict.fromkeys(r for d in report.days for r in d.held_actions):
        print(f"held: {reason}", file=sys.stderr)
    print(f"end of day through {args.through}: {len(report.days)} day(s) run, {report.skipped} "
          f"already run; {settled} settlements, {len(actions)} corporate action(s)"
          + (f" ({', '.join(actions)})" if actions else ""), file=sys.stderr)
    if args.statements is None:
        return 0
    from zaplecze.services import reconciling

    if not args.statements.is_dir():
        raise UsageError(f"{args.statements} is not a folder")
    problems = 0
    for path in sorted(p for p in args.statements.iterdir() if p.is_file()):
        done = reconciling.reconcile_file(book.engine, path, _operator(), args.through)
        problems += len(done.problems)
        for problem in done.problems:
            print(f"problem {problem}")
        print(f"{path.name}: {done.statements} statement(s) reconciled, {done.unchanged} "
              f"received before; {len(done.new)} new break(s), {len(done.auto_resolved)} "
              f"resolved", file=sys.stderr)
    return 1 if problems else 0


def cmd_report(args: argparse.Namespace) -> int:
    from zaplecze.formats.render import render
    from zaplecze.services.reporting import COLUMNS, build

    options: dict[str, Any] = {}
    if args.name in ("positions", "cash"):
        options = {"as_of": _need(args.as_of, "--as-of"), "basis": args.basis}
    elif args.name in ("trial-balance", "stock-record", "valuation", "fails", "breaks"):
        options = {"as_of": _need(args.as_of, "--as-of")}
    elif args.name == "obligations":
        options = {"settlement_date": _need(args.settlement_date or args.as_of,
                                            "--settlement-date")}
    elif args.name in ("realized", "dividends", "cash-ladder", "penalties"):
        options = {"start": _need(args.start, "--from"), "end": _need(args.end, "--to")}
    rows = build(_book(args).engine, args.name, **options)
    columns = [c for c in COLUMNS[args.name]
               if not (c == "cost_basis" and args.basis == "settlement")]
    sys.stdout.write(render(rows, args.fmt, columns=columns, title=args.name) + "\n")
    return 0


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise UsageError(f"{name} is required for this report")
    return value


def cmd_audit(args: argparse.Namespace) -> int:
    from zaplecze.services.audit import verify

    if args.audit_command == "checkpoints":
        return _audit_checkpoints(_book(args).engine, every=args.all)
    result = verify(_book(args).engine, expected_head=args.head)
    if result.problems:
        for problem in result.problems:
            print(f"TAMPERED {problem}", file=sys.stderr)
        return 1
    print(f"journal intact: {result.entries} entries; head {result.head}")
    return 0


def _audit_checkpoints(engine: Any, *, every: bool) -> int:
    from zaplecze.services import lot_books
    from zaplecze.store.db import read_connection

    with read_connection(engine) as connection:
        days = lot_books.checkpoint_days(connection)
        if not days:
            print("no checkpoints yet: end of day keeps one each week's and month's last "
                  "weekday")
            return 0
        broken = 0
        for day in days if every else days[-1:]:
            problems = lot_books.verify(connection, day)
            for problem in problems:
                print(f"DIFFERS {problem}", file=sys.stderr)
            broken += bool(problems)
            if not problems:
                print(f"checkpoint {day}: balances and lots agree with the journal")
    return 1 if broken else 0


def cmd_export(args: argparse.Namespace) -> int:
    from zaplecze.services.exporting import export_journal

    book = _book(args)
    if args.out is None:
        export_journal(book.engine, args.fmt, sys.stdout)
        return 0
    with args.out.open("w", encoding="utf-8") as stream:
        count = export_journal(book.engine, args.fmt, stream)
    print(f"wrote {count} transactions to {args.out}", file=sys.stderr)
    return 0


def cmd_load_fix(args: argparse.Namespace) -> int:
    from zaplecze.services.fix_capture import load_drop_copy

    book = _book(args)
    report = load_drop_copy(book.engine, book.calendar(), args.file, args.account_map)
    return _print_load_report(report, args.file)


def cmd_settle(args: argparse.Namespace) -> int:
    from zaplecze.services import settlement_desk

    engine = _book(args).engine
    action = args.settle_command
    day = getattr(args, "date", None) or dt.date.today()
    if action == "instruct":
        written = settlement_desk.instruct(engine, day, args.out, args.fmt, args.xsd)
        for problem in written.report.problems:
            print(f"problem {problem}")
        for complaint in written.invalid:
            print(f"schema-invalid {complaint}")
        print(f"{len(written.report.created)} instruction(s) generated, "
              f"{len(written.report.cancelled)} cancellation(s), "
              f"{written.report.settled_by_netting} trade(s) settled by netting; "
              f"{len(written.files)} message(s) of {day} written to {args.out}", file=sys.stderr)
        return 1 if written.invalid or written.report.problems else 0
    if action == "receive":
        for path in args.files:
            if not path.is_file():
                raise UsageError(f"{path} is not a file")
        report = settlement_desk.receive(engine, args.files, day, args.xsd_dir)
        for problem in report.problems:
            print(f"{'read' if problem.is_warning else 'rejected'} {problem}")
        refused = _refusals(report.problems)
        print(f"{report.applied} message(s) applied, {report.unchanged} already received, "
              f"{refused} rejected{_warned(report.problems, ' read with a warning')}; "
              f"{report.settled_entries} settlement "
              f"entr{'y' if report.settled_entries == 1 else 'ies'} booked", file=sys.stderr)
        return 1 if refused else 0
    if action == "simulate":
        files = settlement_desk.simulate(engine, day, args.out)
        print(f"the stand-in depository wrote {len(files)} message(s) to {args.out}",
              file=sys.stderr)
        return 0
    print(settlement_desk.act(engine, args.reference, action, day, _cli_actor()))
    return 0


def _refusals(problems: list[Any]) -> int:
    """How many of ``problems`` refused what they are about (the rest are warnings: read)."""
    return sum(1 for problem in problems if not problem.is_warning)


def _warned(problems: list[Any], what: str = " warning(s)") -> str:
    """', N warning(s)' for the warnings among ``problems``; nothing when there are none."""
    warnings = len(problems) - _refusals(problems)
    return f", {warnings}{what}" if warnings else ""


def _cli_actor(who: str | None = None) -> Any:
    """Who acts from the command line, for the audit trail (the address is ``cli``)."""
    from zaplecze.services.audit_trail import Actor

    return Actor(who or _operator(), "cli")


def _operator() -> str:
    import getpass
    import os

    return os.environ.get("ZAPLECZE_USER") or getpass.getuser()


def cmd_recon(args: argparse.Namespace) -> int:
    from zaplecze.services import reconciling

    engine = _book(args).engine
    if args.recon_command == "break":
        after = reconciling.act_on_break(engine, args.break_id, args.action, args.by, args.text,
                                         actor=_cli_actor(args.by))
        print(f"{after.break_id} {after.status.value} owner={after.owner or '-'} "
              f"({len(after.history)} events)")
        return 0
    if not args.file.is_file():
        raise UsageError(f"{args.file} is not a file")
    report = reconciling.reconcile_file(
        engine, args.file, args.by, args.date or dt.date.today(), args.recon_command,
        args.xsd_dir, getattr(args, "depository", None))
    for problem in report.problems:
        print(f"{'warning' if problem.is_warning else 'problem'} {problem}")
    for b in report.new:
        print(f"new break {b.break_id} {b.kind.value}: {b.subject} (ours {b.ours}, "
              f"theirs {b.theirs})")
    for b in report.auto_resolved:
        print(f"resolved {b.break_id}: {b.subject} ({b.resolution_reason})")
    print(f"{report.statements} statement(s) reconciled, {report.unchanged} received before; "
          f"{report.matched} matched, {len(report.new)} new break(s), {len(report.updated)} "
          f"seen again, {len(report.auto_resolved)} resolved by the statement; "
          f"{_refusals(report.problems)} problem(s){_warned(report.problems)}", file=sys.stderr)
    return 1 if _refusals(report.problems) else 0


def cmd_ca(args: argparse.Namespace) -> int:
    from zaplecze.formats.render import render
    from zaplecze.services import ca_desk

    engine = _book(args).engine
    if args.ca_command == "announce":
        if not args.file.is_file():
            raise UsageError(f"{args.file} is not a file")
        report = ca_desk.announce(engine, args.file, args.by)
        for problem in report.problems:
            print(f"{'warning' if problem.is_warning else 'problem'} {problem}")
        for record in report.events:
            print(f"{record.event_id} {record.event_type} {record.isin or '-'}: "
                  f"{record.status.value}")
        print(f"{len(report.events)} event(s) announced or amended, "
              f"{_refusals(report.problems)} problem(s){_warned(report.problems)}",
              file=sys.stderr)
        return 1 if _refusals(report.problems) else 0
    if args.ca_command == "compute":
        record, shown = ca_desk.compute(engine, args.event_id, args.by,
                                        actor=_cli_actor(args.by))
        sys.stdout.write(render(ca_desk.entitlement_rows(shown), args.fmt,
                                title=f"{record.event_id} entitlements") + "\n")
        print(f"{record.event_id}: {record.status.value} by {args.by}; another operator "
              f"approves with `zaplecze ca approve {record.event_id}`", file=sys.stderr)
        return 0
    if args.ca_command == "approve":
        record = ca_desk.approve(engine, args.event_id, args.by, actor=_cli_actor(args.by))
        print(f"{record.event_id}: {record.status.value} by {record.approved_by} "
              f"(computed by {record.prepared_by}); end of day applies it on "
              f"{record.terms.ex_date if record.terms else '?'}")
        return 0
    return _ca_claims_or_reversal(args, engine)


def _ca_claims_or_reversal(args: argparse.Namespace, engine: Any) -> int:
    from zaplecze.formats.render import render
    from zaplecze.services import ca_claims, ca_desk, four_eyes
    from zaplecze.store.db import read_connection

    if args.ca_command == "claims":
        with read_connection(engine) as connection:
            rows = ca_claims.report_rows(connection)
        sys.stdout.write(render(rows, args.fmt, columns=list(ca_claims.COLUMNS),
                                title="market claims") + "\n")
        return 0
    if args.ca_command == "compensate":
        state = ca_claims.compensate(engine, args.claim_id, args.date, _cli_actor(args.by))
        claim = state.claim
        print(f"{claim.claim_id}: {state.status.value} on {state.closed_on} "
              f"({claim.direction.value.lower()} {claim.gross} {claim.currency}, "
              f"{claim.counterparty}, trade {claim.trade_id})")
        return 0
    day = args.date
    if day is None:
        with read_connection(engine) as connection:
            day = ca_claims.open_day(connection)
    made = four_eyes.request(engine, _cli_actor(args.by), ca_desk.REVERSAL_ACTION,
                             args.event_id, {"event_id": args.event_id,
                                             "business_date": day.isoformat(),
                                             "reason": args.reason})
    print(f"request {made.request_id} (hash {made.payload_hash}): reverse {args.event_id} on "
          f"{day}; another person approves with `zaplecze user approve {made.request_id} "
          f"--hash {made.payload_hash}`")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zaplecze.bootstrap import open_book
    from zaplecze.services.demo import run_demo

    run_demo(args.db, args.folder, args.seed, _console(), _console(stderr=True), open_book)
    return 0


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress() -> Any:
    """A progress bar on a terminal; nothing when the output is a file or a pipe."""
    if not sys.stderr.isatty():
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=_console(stderr=True), transient=True)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init, "load": cmd_load, "eod": cmd_eod, "report": cmd_report,
    "audit": cmd_audit, "export": cmd_export, "load-fix": cmd_load_fix, "demo": cmd_demo,
    "settle": cmd_settle, "recon": cmd_recon, "ca": cmd_ca,
    "serve": lambda args: _workbench("cmd_serve", args),
    "user": lambda args: _workbench("cmd_user", args),
    "desk": lambda args: _workbench("cmd_desk", args),
}


def _workbench(name: str, args: argparse.Namespace) -> int:
    from zaplecze.interfaces import cli_workbench

    return int(getattr(cli_workbench, name)(args, _book(args)))


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    from zaplecze.bootstrap import tune_for_batch

    tune_for_batch()
    try:
        code = COMMANDS[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 2
    except Exception as error:
        import sqlite3

        from sqlalchemy.exc import SQLAlchemyError

        driver_error = isinstance(error, sqlite3.Error) or hasattr(error, "sqlstate")
        if not isinstance(error, SQLAlchemyError) and not driver_error:
            raise
        text = str(getattr(error, "orig", error)).strip().splitlines()
        print(f"error: the database refused the command: {text[0] if text else error}; "
              f"nothing of the failed batch was written", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
