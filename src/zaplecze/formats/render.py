"""Rendering report rows: JSON (exact decimals as strings), CSV, or a table for people."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

FORMATS = ("json", "csv", "table")


def render(rows: Sequence[dict[str, Any]], fmt: str, *, columns: Sequence[str] = (),
           title: str = "") -> str:
    names = list(columns) or (list(rows[0]) if rows else [])
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([row.get(name, "") for name in names])
        return buffer.getvalue().rstrip("\n")
    return _table(rows, names, title)


def _table(rows: Sequence[dict[str, Any]], names: list[str], title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None, show_lines=False)
    numeric = {name for name in names if rows and all(_numeric(r.get(name)) for r in rows)}
    for name in names:
        table.add_column(name, justify="right" if name in numeric else "left")
    for row in rows:
        table.add_row(*[str(row.get(name, "")) for name in names])
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(table)
    if not rows:
        console.print("(no rows)")
    return console.export_text().rstrip("\n")


def _numeric(value: Any) -> bool:
    text = str(value)
    return bool(text) and text.lstrip("-").replace(".", "", 1).isdigit()
