"""``zaplecze demo`` (``make demo``): a realistic sample book, end to end, on embedded SQLite.

Generates a seeded book folder (Polish and US clients, stocks on XWAR, XNYS and XNAS, four
months of trades, deposits, a withdrawal refused and one granted, NVIDIA's split, dividends with
withholding), loads it, runs end of day, and prints what happened in a few short tables.

Settlement runs as a conversation: the Warsaw trades (counterparty KDPWCCP, netted at KDPW) and
the US trades (STREET, gross at DTC) have standing settlement instructions, so each day a
stand-in depository answers our instructions (matched, settled — one in five partly, one in
seven failing for lack of securities for three days) before that day's end of day runs.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from zaplecze.kernel.calendar import weekdays
from zaplecze.services import settlement_desk, workbench_demo
from zaplecze.services.audit import verify
from zaplecze.services.book_generator import BookShape, book_period, generate_book
from zaplecze.services.eod import run_eod
from zaplecze.services.load import Loader
from zaplecze.services.reporting import build

# The demo's standing settlement instructions (the project's ssis.csv extension).
DEMO_SSIS = """counterparty,market,currency,place_of_settlement,counterparty_bic,\
counterparty_account,safekeeping_account,payment,netting
KDPWCCP,XWAR,PLN,KDPWPLPWXXX,KDPWPLPWXXX,KDPWCCP-0001,ZAPL-KDPW-01,DVP,NET
STREET,*,USD,DTCYUS33XXX,GSCOUS33XXX,DTC-0005,ZAPL-DTC-01,DVP,GROSS
"""


def run_demo(db: str | None, folder: Path, seed: int, out: Console, err: Console,
             open_book: Callable[..., Any]) -> None:
    """``open_book(url, create=True)`` is handed in by the interface (bootstrap wires it)."""
    shape = BookShape(seed=seed)
    if not out.is_terminal or out.width < 120:
        out = Console(width=120, highlight=False, soft_wrap=True)
    if folder.exists():
        shutil.rmtree(folder)
    files = generate_book(shape, folder)
    (folder / "ssis.csv").write_text(DEMO_SSIS, encoding="utf-8")
    files["ssis.csv"] = 2
    url = db or f"sqlite:///{(folder / 'book.db').resolve()}"
    book = open_book(url, create=True)
    out.rule("[bold]Zaplecze demo: a broker's book, June–September 2024")
    out.print(f"sample book folder [cyan]{folder}[/] (seed {seed}): "
              + ", ".join(f"{count} {name.removesuffix('.csv')}" for name, count in files.items()))
    out.print(f"book: [cyan]{url}[/]")

    load = Loader(book.engine, book.calendar()).load(folder)
    out.print(f"\n[bold]1. load[/] — {sum(load.booked.values())} rows booked, "
              f"{len(load.rejected)} rejected (kept for operators: `zaplecze report rejected`)")
    for problem in load.rejected:
        out.print(f"   [yellow]rejected[/] {problem}", markup=True, highlight=False)

    first, last = book_period(shape)
    days, received = [], 0
    inbox = folder / "inbox"
    for day in weekdays(first, last):
        received += len(settlement_desk.simulate(book.engine, day, inbox / day.isoformat()))
        answers = sorted((inbox / day.isoformat()).glob("*.xml"))
        if answers:
            settlement_desk.receive(book.engine, answers, day)
        days += run_eod(book.engine, day).days
    actions = [a for day in days for a in day.corporate_actions]
    out.print(f"\n[bold]2. end of day[/] through {last}: {len(days)} business days, "
              f"{sum(d.settled for d in days)} trades settled on their date, "
              f"{sum(d.instructed for d in days)} settlement instructions sent, "
              f"{received} depository messages received; corporate actions applied: "
              f"{', '.join(actions) or 'none'}")
    _settlement(book.engine, out, first, last)

    _corporate_actions(book.engine, out, shape.start, last)
    _books(book.engine, out, last)
    audit = verify(book.engine)
    state = "[green]intact[/]" if not audit.problems else "[red]TAMPERED[/]"
    out.print(f"\n[bold]5. audit[/] hash chain over {audit.entries} entries {state}; "
              f"head {audit.head[:24]}… (anchor it outside: `zaplecze audit verify`)")
    out.print(f"\nTry: [cyan].venv/bin/zaplecze --db {url} report positions --as-of {last} "
              f"--basis trade --format table[/]")
    _workbench(book.engine, out, folder, last, url)


def _workbench(engine: Any, out: Console, folder: Path, last: dt.date, url: str) -> None:
    staff = workbench_demo.seed(engine, folder / "workbench", last)
    table = Table(title="6. the workbench: demo staff (password "
                        f"{workbench_demo.DEMO_PASSWORD!r} for all)")
    for column in ("user", "role", "desk"):
        table.add_column(column)
    for member in staff:
        table.add_row(member.username, member.role, member.desk or "every desk")
    out.print()
    out.print(table)
    out.print("   waiting for them: 2 reconciliation breaks at KDPW, a PKO dividend prepared by "
              "ops1 for another person to approve, another to prepare, the failing settlements "
              "and the rejected rows — all in the exception queue")
    out.print(f"\nStart it: [cyan].venv/bin/zaplecze --db {url} serve[/] and open "
              "[cyan]http://127.0.0.1:8000/[/]; each login asks for the user's TOTP code: "
              f"[cyan].venv/bin/zaplecze --db {url} user code ops1[/] (or add the secret from "
              "`user add` to an authenticator app)")


def _settlement(engine: object, out: Console, first: dt.date, last: dt.date) -> None:
    instructions = build(engine, "instructions")  # type: ignore[arg-type]
    by_status = Counter(row["status"] for row in instructions)
    table = Table(title="settlement with KDPW (net) and DTC (gross)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("instructions (sese.023)", str(len(instructions)))
    for status, count in sorted(by_status.items()):
        table.add_row(f"  {status.lower()}", str(count))
    with engine.connect() as connection:  # type: ignore[attr-defined]
        # The parts of partial settlements: keys post:…#n (a bound pattern: psycopg reads a
        # bare % in the statement as a placeholder).
        partial = connection.execute(
            text("SELECT COUNT(*) FROM entries WHERE kind = 'SETTLEMENT' AND entry_key LIKE "
                 ":parts"), {"parts": "%#%"}).scalar()
    table.add_row("partial settlements booked", str(partial))
    failing_days = {row["reference"] for row in instructions if row["reasons"]}
    table.add_row("instructions that failed for a while", str(len(failing_days)))
    for row in build(engine, "penalties", start=first, end=last):  # type: ignore[arg-type]
        table.add_row(f"CSDR penalties {row['month']} {row['counterparty']}",
                      f"{row['net']} {row['currency']} ({row['days']} failing days)")
    fails = build(engine, "fails", as_of=last)  # type: ignore[arg-type]
    table.add_row(f"failing at {last}", str(len(fails)))
    out.print()
    out.print(table)
    example = next((row for row in instructions if row["reasons"]), None)
    if example:
        out.print(f"   e.g. {example['reference']} ({example['direction']} {example['quantity']} "
                  f"{example['isin']}, due {example['settlement_date']}): pending "
                  f"{example['reasons']}, then {example['status'].lower()} — "
                  f"`zaplecze report fails --as-of DATE`, `report penalties`")


def _corporate_actions(engine: object, out: Console, start: dt.date, last: dt.date) -> None:
    dividends = build(engine, "dividends", start=start, end=last)  # type: ignore[arg-type]
    table = Table(title="3. dividends paid, with withholding by tax residence")
    for column in ("account", "event_id", "pay_date", "quantity", "gross", "withholding", "net",
                   "currency"):
        table.add_column(column, justify="right" if column in (
            "quantity", "gross", "withholding", "net") else "left")
    for row in dividends[:12]:
        table.add_row(*(row[c] for c in ("account", "event_id", "pay_date", "quantity", "gross",
                                         "withholding", "net", "currency")))
    out.print()
    out.print(table)
    if len(dividends) > 12:
        out.print(f"   … and {len(dividends) - 12} more rows (`report dividends`)")


def _books(engine: object, out: Console, last: dt.date) -> None:
    positions = build(engine, "positions", as_of=last, basis="trade")  # type: ignore[arg-type]
    cash = build(engine, "cash", as_of=last, basis="settlement")  # type: ignore[arg-type]
    trial = build(engine, "trial-balance", as_of=last)  # type: ignore[arg-type]
    stock = build(engine, "stock-record", as_of=last)  # type: ignore[arg-type]
    realized = build(engine, "realized",  # type: ignore[arg-type]
                     start=dt.date(2000, 1, 1), end=last)
    gains: Counter[str] = Counter()
    for row in realized:
        gains[row["currency"]] += Decimal(row["gain"])  # type: ignore[assignment]
    table = Table(title=f"4. the books at the end of {last}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("positions (account × security)", str(len(positions)))
    table.add_row("cash balances (settled)", str(len(cash)))
    table.add_row("sells realised", str(len(realized)))
    for currency, gain in sorted(gains.items()):
        table.add_row(f"realised gain {currency}", f"{gain:.2f}")
    totals: dict[str, list[Decimal]] = {}
    for row in trial:
        pair = totals.setdefault(row["currency"], [Decimal(0), Decimal(0)])
        pair[0] += Decimal(row["debit"])
        pair[1] += Decimal(row["credit"])
    for currency, (debit, credit) in sorted(totals.items()):
        mark = "=" if debit == credit else "≠"
        table.add_row(f"trial balance {currency}",
                      f"debits {debit:.2f} {mark} credits {credit:.2f}")
    breaks = [row for row in stock if row["break"] != "0"]
    table.add_row("stock record (owned = located)",
                  f"{len(stock)} securities, {len(breaks)} breaks")
    out.print()
    out.print(table)
